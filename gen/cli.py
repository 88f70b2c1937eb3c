"""The ``sparsegen`` command line: list, gen, lint, synth, sim, bench, sweep, report.

Every user error (unknown design or parameter, bad value, unwritable folder, missing liberty)
ends as one ``sparsegen: error: ...`` line on stderr and exit status 2; nothing is written
unless all of it can be.
"""

import argparse
import io
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..sim.energy import DEFAULT_TECH as ENERGY_TECH
from ..sim.golden.dbb import DBBViolation
from ..sim.golden.hss import HSSViolation
from ..sim.golden.numeric import TensorError, check_tensor
from ..sim.golden.scnn import RLEError
from ..sim.layer import describe_divergence, im2col, run_chain
from ..sim.tb.runner import SimulationError
from ..sim.verilator import LintError, lint
from . import __version__, children
from .bench import BENCHES, load_bench, run_bench
from .errors import UsageError
from .generate import check_output_folder, generate, write_outputs
from .registry import DESIGNS, get_design, make_config, parse_params, refuse_unused
from .report import print_headline, render_report
from .sweep import EXECUTORS, load_spec, points, run_sweep, write_results
from .synth import (
    TECHS,
    TIMING_IGNORES,
    ClockError,
    SynthError,
    check_clock_ns,
    synthesize,
    tech_missing,
    timing_missing,
)

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line, like every other sparsegen error."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _add_design_args(p: argparse.ArgumentParser):
    p.add_argument("design", help="design name (see `sparsegen list`)")
    p.add_argument("-p", "--param", dest="params", action="append", default=[],
                   metavar="KEY=VALUE", help="set a parameter (repeatable)")
    p.add_argument("-c", "--config", type=Path, metavar="CFG.toml",
                   help="read parameters from a TOML file (-p values win)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparsegen", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sparsegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")

    p = sub.add_parser("list", help="designs, their parameters, defaults and ranges")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("gen", help="generate Verilog and JSON metadata for a design")
    _add_design_args(p)
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                   help="output folder; receives <top>.v and <top>.json")

    p = sub.add_parser("sim", help="run a GEMM or convolution on a design's Verilog "
                                   "(Verilator) and check it against the golden model")
    _add_design_args(p)
    p.add_argument("--a", type=Path, metavar="A.npy", help="activations A[M, K]")
    p.add_argument("--w", type=Path, metavar="W.npy", help="weights W[K, N]")
    p.add_argument("--w2", type=Path, metavar="W2.npy",
                   help="s2ta a/aw: a second layer's weights W2[N, N2]; layer 1's output DAP "
                        "blocks (ReLU, >> out_shift, top nnz_a) are its activations; -o "
                        "writes layer 2's O, --json adds `layer1`")
    p.add_argument("--ifmap", type=Path, metavar="I.npy",
                   help="convolution input [C, H, W] (instead of --a/--w)")
    p.add_argument("--filters", type=Path, metavar="F.npy", help="filters [K, C, R, S]")
    p.add_argument("--filters2", type=Path, metavar="F2.npy",
                   help="scnn: a second conv layer's filters [K2, K, R2, S2], chained: it reads "
                        "layer 1's ReLU'd output (saturated to data_width) from the PEs' "
                        "OARAMs; -o writes layer 2's O, --json adds per-layer `layers`")
    p.add_argument("--pad2", type=int, default=0,
                   help="the second layer's zero padding (default 0)")
    p.add_argument("--groups", metavar="G|auto",
                   help="scnn: split the PE columns into G output-channel column groups (a "
                        "power of two dividing pe_cols; each tiles the whole plane), or "
                        "`auto`: the fewest model cycles (default 1)")
    p.add_argument("--stride", type=int, default=1, help="convolution stride (default 1)")
    p.add_argument("--pad", type=int, default=0, help="convolution zero padding (default 0)")
    p.add_argument("--prune", action="store_true",
                   help="prune dense weights to the design's pattern first (golden prune)")
    p.add_argument("--relu", action="store_true",
                   help="ReLU on the outputs, in the hardware's drain (designs that have one)")
    p.add_argument("-o", "--out", type=Path, metavar="O.npy",
                   help="write the output tensor (O[M, N], or [K, P, Q] for a convolution)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--model", action="store_true",
                   help="answer from the RTL-validated cycle model and the golden model, "
                        "without building RTL (seconds for any layer size)")
    p.add_argument("--tech", default=ENERGY_TECH,
                   help=f"technology the layer's energy, time and EDP are priced on (default "
                        f"{ENERGY_TECH}); one without an energy table or liberty gives null "
                        f"energy figures and says why")


    p = sub.add_parser("bench", help=f"measure and print a comparison table "
                                     f"({', '.join(BENCHES)})")
    p.add_argument("name", choices=list(BENCHES), help="which benchmark")
    p.add_argument("--tech", default="sky130hd", help="technology for areas (default sky130hd)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("sweep", help="a grid of configs, or a study of several designs over "
                                     "workloads: area, fmax, cycles, energy")
    p.add_argument("spec", type=Path, metavar="SPEC.toml",
                   help="a grid (design, [params] lists are axes, optional [workload] m/k/n) "
                        "or a study ([[designs]], workloads, densities; see "
                        "constraints/sweeps/iso_area.toml)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                   help="output folder; receives sweep.csv and sweep.json")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="evaluate N points at a time (default 1)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local thread pool (default) or dask (a LocalCluster of N workers, or "
                        "--scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:8786); with --executor dask")
    p.add_argument("--no-cache", action="store_true", help="ignore cached points")
    p.add_argument("--yes", action="store_true",
                   help=f"run a sweep of more than {LARGE_SWEEP} points without asking")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")

    p = sub.add_parser("report", help="figures (PNG, SVG), an HTML page and the headline "
                                      "table of a study's sweep.json")
    p.add_argument("dir", type=Path, metavar="DIR", help="folder holding sweep.json")
    p.add_argument("-o", "--out", type=Path, metavar="OUT",
                   help="output folder (default: DIR)")

    p = sub.add_parser("lint", help="generate a design and lint it with Verilator")
    _add_design_args(p)

    p = sub.add_parser("synth", help="synthesize a design with Yosys and report its area "
                                     "and (OpenSTA) its critical path")
    _add_design_args(p)
    p.add_argument("--tech", default="generic",
                   help="generic, osu018, sky130hd or asap7 (default: generic)")
    p.add_argument("--clock-ns", type=float, metavar="NS",
                   help="clock period for the mapping's delay target and timing (default: the "
                        "tech's, constraints/techs.toml; sky130hd 10)")
    p.add_argument("--timing", action="store_true",
                   help="require static timing (an error where OpenSTA is missing); without "
                        "it timing runs where it can")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-cache", action="store_true", help="ignore cached synthesis results")
    return parser


def _design_and_config(args):
    design = get_design(args.design)
    values = parse_params(design, args.params, args.config)
    config = make_config(design, values)
    refuse_unused(design, config, values)
    return design, config


def _check_tech(tech: str, *, liberty: bool = False) -> None:
    """Before any work: ``tech`` is known and, where the run will synthesize with it, its
    liberty files are found here (a missing ASAP7 liberty fails in a second, not after minutes
    of simulation)."""
    if tech not in TECHS:
        raise UsageError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    if liberty and tech_missing(tech):
        raise UsageError(tech_missing(tech))


def _cmd_list(args, console):
    if args.json:
        print(json.dumps({name: {
            "summary": d.summary,
            "params": {s.name: {"type": s.type.__name__,
                                "default": s.default_text if s.default_from else s.default,
                                "range": s.describe_range(), "help": s.help}
                       for s in d.params},
        } for name, d in DESIGNS.items()}, indent=2))
        return
    for name, design in DESIGNS.items():
        table = Table(title=f"[bold]{name}[/bold]: {design.summary}", title_justify="left",
                      show_edge=False)
        for column in ("parameter", "default", "range", "meaning"):
            table.add_column(column)
        for s in design.params:
            table.add_row(s.name, s.default_text, s.describe_range(), s.help)
        console.print(table)
        console.print()


def _cmd_gen(args, console):
    design, config = _design_and_config(args)
    check_output_folder(args.out)
    start = time.perf_counter()
    generated = generate(design, config)
    paths = generated.write(args.out)
    seconds = time.perf_counter() - start
    for path in paths:
        console.print(f"wrote {path}")
    console.print(f"[dim]{design.name}: generated in {seconds:.2f} s[/dim]")


def _cmd_lint(args, console):
    design, config = _design_and_config(args)
    generated = generate(design, config)
    with tempfile.TemporaryDirectory(prefix="sparsegen-lint-") as tmp:
        path = Path(tmp) / f"{generated.top}.v"
        path.write_text(generated.verilog)
        try:
            lint(path, generated.top)
        except LintError as exc:
            raise UsageError(str(exc)) from None
    console.print(f"{design.name}: verilator lint clean")


def _cmd_synth(args, console):
    _check_tech(args.tech, liberty=True)
    if args.clock_ns is not None:
        if args.tech == "generic":
            raise UsageError("--clock-ns needs a liberty tech (osu018, sky130hd, asap7): "
                             "`generic` gates have no delays")
        try:
            check_clock_ns(args.clock_ns)
        except ClockError as exc:
            raise UsageError(f"--clock-ns: {exc}") from None
    if args.timing and timing_missing(args.tech):
        raise UsageError(f"--timing: {timing_missing(args.tech)}")
    design, config = _design_and_config(args)
    generated = generate(design, config)
    try:
        with console.status(f"synthesizing {design.name} for {args.tech} with Yosys",
                            spinner="dots"):
            result = synthesize(generated.verilog, generated.top, args.tech,
                                use_cache=not args.no_cache, clock_ns=args.clock_ns,
                                timing=True if args.timing else None)
    except SynthError as exc:
        raise UsageError(str(exc)) from None
    report = {"design": design.name, "config": config.as_dict(),
              "multipliers": getattr(config, "multipliers", None), **result.as_json()}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    _print_synth(console, report)


def _print_synth(console, report):
    area = report["area_um2"]
    table = Table(title=f"{report['design']} on {report['tech']}", title_justify="left",
                  show_edge=False)
    for column in ("module", "instances", "cells", "area (um^2)"):
        table.add_column(column, justify="right" if column != "module" else "left")
    for name, mod in report["modules"].items():
        mod_area = "-" if mod.get("area_um2") is None else f"{mod['area_um2']:,.1f}"
        table.add_row(name, str(mod.get("instances", 1)), f"{mod['cells']:,}", mod_area)
    table.add_row("[bold]total[/bold]", "", f"[bold]{report['cells']:,}[/bold]",
                  "-" if area is None else f"[bold]{area:,.1f}[/bold]")
    console.print(table)
    extra = [f"{report['yosys_version']}",
             f"liberty: {', '.join(report['liberty']) if report['liberty'] else 'none'}"]
    if report.get("transistors"):
        extra.append(f"~{report['transistors']:,} transistors (Yosys CMOS estimate)")
    if report.get("multipliers") is not None:
        extra.append(f"{report['multipliers']:,} multipliers")
    cached = " (cached)" if report.get("cached") else ""
    extra.append(f"{report['seconds']:.1f} s{cached}")
    console.print("[dim]" + "; ".join(extra) + "[/dim]")
    _print_timing(console, report)


def _print_timing(console, report):
    if report.get("critical_path_ns") is None:
        console.print(f"no timing: {report['timing_missing']}", soft_wrap=True)
        return
    path = report["critical_path"]
    met = "[green]met[/green]" if report["slack_ns"] >= 0 else "[red]missed[/red]"
    console.print(f"critical path [bold]{report['critical_path_ns']:.2f} ns[/bold] "
                  f"(fmax {report['fmax_mhz']:,.1f} MHz), clock {report['clock_ns']:g} ns "
                  f"{met} by {abs(report['slack_ns']):.2f} ns", soft_wrap=True)
    blocks = ", ".join(b or report["top"] for b in path["blocks"])
    console.print(f"  from {path['start_kind']} {path['start']} to {path['end_kind']} "
                  f"{path['end']}, through {blocks}", soft_wrap=True)
    console.print(f"[dim]  {report['sta_version']} on the mapped netlist; ignores: "
                  f"{TIMING_IGNORES}[/dim]", soft_wrap=True)


#: Largest tensor file `sim` reads (bytes): far above any real layer, below what a mistaken
#: path (a disk image, /dev/zero) would take to read.
MAX_TENSOR_BYTES = 1 << 32


def _load_tensor(path: Path, name: str):
    """A tensor from a ``.npy`` file; anything else (missing, a folder, a device, not a
    ``.npy``, truncated, pickled objects) is one :class:`UsageError` naming the tensor."""
    try:
        if path.is_dir():
            raise UsageError(f"cannot read tensor `{name}` from {path}: it is a folder")
        if path.exists() and not path.is_file():
            raise UsageError(f"cannot read tensor `{name}` from {path}: not a regular file")
        size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"cannot read tensor `{name}` from {path}: {exc.strerror}") from None
    if size > MAX_TENSOR_BYTES:
        raise UsageError(f"tensor `{name}` in {path} is {size / 2**30:.1f} GiB: larger than "
                         f"the {MAX_TENSOR_BYTES / 2**30:.0f} GiB sim reads")
    try:
        return np.load(path, allow_pickle=False)
    except OSError as exc:
        raise UsageError(f"cannot read tensor `{name}` from {path}: "
                         f"{exc.strerror or exc}") from None
    except Exception as exc:       # the file's content: not .npy, truncated, bad header, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if size == 0:
            reason = "the file is empty"
        raise UsageError(f"tensor `{name}` in {path} is not a readable .npy array: "
                         f"{reason}") from None


def _check_tensor_output(path: Path) -> None:
    """``-o`` of ``sim`` is exactly the file written: a ``.npy`` path in a writable folder,
    not an existing folder. Checked before any work."""
    if path.is_dir():
        raise UsageError(f"-o {path} is a folder; give the .npy file to write")
    if path.suffix != ".npy":
        raise UsageError(f"-o {path}: the output tensor is written as .npy; give a path "
                         f"ending in .npy")
    if not path.parent.is_dir():
        raise UsageError(f"-o {path}: folder {path.parent} does not exist")
    check_output_folder(path.parent, "folder of -o")


def _save_tensor(path: Path, array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_outputs(path.parent, {path.name: buffer.getvalue()})


#: Share of this machine's available memory one convolution's lowered operands may take.
MEMORY_SHARE = 0.5


def _available_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 8 << 30


def _check_conv_size(ifmap_shape, filters_shape, stride: int, pad: int) -> None:
    """Refuse, before any work, a convolution whose padded input or lowered operands would not
    fit in memory (for example a huge ``--pad``), naming the options and the estimate."""
    c, h, wd = ifmap_shape
    kk, _, r, s = filters_shape
    p = (h + 2 * pad - r) // stride + 1
    q = (wd + 2 * pad - s) // stride + 1
    padded = c * (h + 2 * pad) * (wd + 2 * pad)
    lowered = max(p, 0) * max(q, 0) * (r * s * c + kk)     # im2col A plus the output
    need = 8 * (padded + lowered)                          # int64 elements
    budget = int(_available_bytes() * MEMORY_SHARE)
    if need > budget:
        raise UsageError(f"convolution too large for this machine: --pad {pad} --stride {stride} "
                         f"on a {c}x{h}x{wd} ifmap with {r}x{s} filters needs about "
                         f"{need / 2**30:,.1f} GiB of int64 operands ({budget / 2**30:,.1f} GiB "
                         f"available for it)")


def _cmd_sim(args, console):
    design, config = _design_and_config(args)
    host = design.host
    if host is None:
        raise UsageError(f"`sim` runs layers on arrays ("
                         f"{', '.join(d.name for d in DESIGNS.values() if d.host)}); "
                         f"`{design.name}` is a building block: its tests simulate it")

    def taking(option):
        return ", ".join(d.name for d in DESIGNS.values() if d.host and option in d.host.options)

    if args.prune and "prune" not in host.options:
        raise UsageError(f"--prune is for designs with a weight pattern to prune to "
                         f"({taking('prune')}), not `{design.name}`")
    if args.relu and "relu" not in host.options:
        raise UsageError(f"--relu is for designs that apply ReLU as they drain "
                         f"({taking('relu')}), not `{design.name}`")
    conv = args.ifmap is not None or args.filters is not None
    if conv:
        if args.ifmap is None or args.filters is None:
            raise UsageError("a convolution needs both --ifmap and --filters")
        if args.a is not None or args.w is not None:
            raise UsageError("give either --a/--w or --ifmap/--filters, not both")
        if args.stride < 1:
            raise UsageError(f"--stride must be at least 1, not {args.stride}")
        if args.pad < 0:
            raise UsageError(f"--pad must not be negative, not {args.pad}")
        if host.workload == "conv" and args.stride != 1:
            raise UsageError(f"`{design.name}` runs stride-1 convolutions only, "
                             f"not --stride {args.stride}")
    elif host.workload == "conv":
        raise UsageError(f"`{design.name}` runs convolutions: give --ifmap I.npy "
                         f"--filters F.npy [--pad P]")
    elif args.a is None or args.w is None:
        raise UsageError("give the operands: --a A.npy --w W.npy (or --ifmap/--filters)")
    if args.w2 is not None and "chain" not in host.options:
        raise UsageError(f"--w2 chains two layers through an output DAP "
                         f"({taking('chain')}), not `{design.name}`")
    if args.w2 is not None and (conv or args.prune or args.relu):
        raise UsageError("--w2 takes a GEMM (--a/--w) and no --prune/--relu")
    if args.filters2 is not None and "conv_chain" not in host.options:
        raise UsageError(f"--filters2 chains two convolutions through the PEs' activation "
                         f"RAMs ({taking('conv_chain')}), not `{design.name}`")
    if args.filters2 is not None and not conv:
        raise UsageError("--filters2 needs the first layer's --ifmap and --filters")
    if args.pad2 != 0 and args.filters2 is None:
        raise UsageError("--pad2 is the padding of the --filters2 layer; give --filters2")
    if args.pad2 < 0:
        raise UsageError(f"--pad2 must not be negative, not {args.pad2}")
    if args.groups is not None:
        if "groups" not in host.options:
            raise UsageError(f"--groups splits the PE columns into output-channel groups "
                             f"({taking('groups')}), not `{design.name}`")
        if args.filters2 is not None:
            raise UsageError("--groups runs one layer: chained layers run ungrouped (a "
                             "grouped layer's OARAMs hold only its group's channels)")
        if args.groups != "auto" and not args.groups.isdigit():
            raise UsageError(f"--groups takes a number of groups or `auto`, not "
                             f"{args.groups!r}")
    if args.out is not None:
        _check_tensor_output(args.out)
    options = {name: True for name in ("prune", "relu") if getattr(args, name)}
    if args.groups is not None:
        options["groups"] = args.groups if args.groups == "auto" else int(args.groups)
    _check_tech(args.tech, liberty=True)
    options["tech"] = args.tech
    runner = host.model if args.model else host.run
    first = None                    # layer 1 of a --w2 chain
    quiet = args.json or not console.is_terminal
    try:
        with console.status("", spinner="dots") if not quiet else _nullcontext() as status:
            say = (lambda msg: status.update(msg)) if status is not None else None
            if conv:
                ifmap = check_tensor(_load_tensor(args.ifmap, "ifmap"), config.data_width,
                                     "ifmap", ndim=3)
                filters = check_tensor(_load_tensor(args.filters, "filters"),
                                       config.data_width, "filters", ndim=4)
                _check_conv_size(ifmap.shape, filters.shape, args.stride, args.pad)
                conv_shape = {"C": int(ifmap.shape[0]), "H": int(ifmap.shape[1]),
                              "W": int(ifmap.shape[2]), "K": int(filters.shape[0]),
                              "R": int(filters.shape[2]), "S": int(filters.shape[3]),
                              "stride": args.stride, "pad": args.pad}
            if host.workload == "conv":
                if args.filters2 is not None:
                    filters2 = check_tensor(_load_tensor(args.filters2, "filters2"),
                                            config.data_width, "filters2", ndim=4)
                    options.update(filters2=filters2, pad2=args.pad2)
                result = runner(design, config, ifmap, filters, pad=args.pad, status=say,
                                **options)
                output = result.output
                shape = {"conv": conv_shape}
                if args.filters2 is not None:
                    shape["conv2"] = {"K": int(filters2.shape[0]), "R": int(filters2.shape[2]),
                                      "S": int(filters2.shape[3]), "pad": args.pad2}
            else:
                if conv:
                    a, w, out_shape = im2col(ifmap, filters, stride=args.stride,
                                             padding=args.pad)
                else:
                    a, w = _load_tensor(args.a, "A"), _load_tensor(args.w, "W")
                    out_shape = None
                if not args.model:
                    _warn_if_long(host, config, a, w)
                if args.w2 is not None:
                    first, result = run_chain(design, config, a, w,
                                              _load_tensor(args.w2, "W2"), status=say,
                                              tech=args.tech, model=args.model)
                else:
                    result = runner(design, config, a, w, status=say, **options)
                output = result.output
                if out_shape is not None:
                    kk, p, q = out_shape
                    output = output.T.reshape(kk, p, q)
                shape = {"M": int(a.shape[0]), "K": int(a.shape[1]), "N": int(w.shape[1])}
                if conv:
                    shape["conv"] = conv_shape
                if first is not None:
                    shape["N2"] = int(result.output.shape[1])
    except (TensorError, DBBViolation, HSSViolation, RLEError) as exc:   # the tensors' fault
        raise UsageError(str(exc)) from None
    except SimulationError as exc:
        print(f"sparsegen: error: simulation failed: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 1
    except SynthError as exc:
        print(f"sparsegen: error: energy needs synthesis, which failed: "
              f"{str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    if args.out is not None:
        _save_tensor(args.out, output)
    report = {"design": design.name, "config": config.as_dict(), "shape": shape,
              **result.as_json()}
    if first is not None:
        report["layer1"] = first.as_json()
        if first.matches_golden is False:
            result.matches_golden = False
            result.first_divergence = first.first_divergence
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_sim(console, report)
    if result.matches_golden is False:
        where = (f": {describe_divergence(result.first_divergence)}"
                 if result.first_divergence else "")
        print(f"sparsegen: error: the Verilog output differs from the golden model{where}",
              file=sys.stderr)
        return 1
    return 0


#: RTL runs estimated above this many cycles get a note with the time they will take.
LONG_RUN_CYCLES = 30_000_000


def _warn_if_long(host, config, a, w) -> None:
    """Before a very long RTL run: one note on stderr with its cycle count (from the cycle
    model) and a time estimate, and the way to answer in seconds instead (``--model``)."""
    if host.cycles is None or getattr(a, "ndim", 0) != 2 or getattr(w, "ndim", 0) != 2:
        return
    try:
        cycles = host.cycles(config, int(a.shape[0]), int(a.shape[1]), int(w.shape[1]))
    except (TypeError, ValueError):
        return          # shapes that do not fit are refused with their own error later
    if cycles > LONG_RUN_CYCLES:
        print(f"sparsegen: note: about {cycles:,} cycles on the RTL: about "
              f"{cycles / 1e6 / 60:,.0f} min at 1 M cycles/s; `--model` answers in seconds",
              file=sys.stderr)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_SIM_ROWS = [
    ("cycles", "cycles (RTL)", "{:,}"),
    ("model_cycles", "cycles (model)", "{:,}"),
    ("macs_total", "MACs total", "{:,}"),
    ("macs_nonzero", "MACs non-zero", "{:,}"),
    ("multipliers", "multipliers", "{:,}"),
    ("utilization", "utilization", "{:.1%}"),
    ("tiles", "tiles", "{:,}"),
    ("steps", "steps", "{:,}"),
]
"""Report keys shown first, in this order; any other scalar key of the report follows."""


_ENERGY_KEYS = ("tech", "energy_pj", "energy_breakdown", "time_us", "edp", "fmax_mhz",
                "area_um2", "energy_counts", "gating_saving_pj", "energy_note")


def _energy_rows(table, report):
    """The energy rows of the sim table: figures and breakdown, or the one-line reason."""
    tech = report.get("tech")
    if report.get("energy_pj") is None:
        table.add_row(f"energy ({tech})", f"none: {report.get('energy_note') or 'not priced'}")
        return
    table.add_row("fmax", f"{report['fmax_mhz']:,.1f} MHz ({tech})")
    table.add_row("area", f"{report['area_um2']:,.0f} um^2")
    table.add_row("time", f"{report['time_us']:,.3f} us")
    table.add_row("energy", f"{report['energy_pj'] / 1e3:,.3f} nJ")
    for kind, pj in report["energy_breakdown"].items():
        if pj:
            table.add_row(f"  {kind.replace('_', ' ')}", f"{pj / 1e3:,.3f} nJ")
    table.add_row("EDP", f"{report['edp'] / 1e3:,.3f} nJ x us")
    gated = (report.get("energy_counts") or {}).get("mul_gated")
    if gated:
        table.add_row("gated multiplies", f"{gated:,} (saved "
                      f"{report['gating_saving_pj'] / 1e3:,.3f} nJ)")


def _print_sim(console, report):
    shape = report["shape"]
    if "M" in shape:
        what = f"GEMM M={shape['M']} K={shape['K']} N={shape['N']}"
    else:
        what = "conv"
    if "conv" in shape:
        c = shape["conv"]
        what += (f" (conv C={c['C']} {c['H']}x{c['W']} K={c['K']} {c['R']}x{c['S']}"
                 f" stride {c['stride']} pad {c['pad']})" if "M" in shape else
                 f" C={c['C']} {c['H']}x{c['W']} K={c['K']} {c['R']}x{c['S']} pad {c['pad']}")
    if "conv2" in shape:
        c = shape["conv2"]
        what += f", then K2={c['K']} {c['R']}x{c['S']} pad {c['pad']}"
    table = Table(title=f"{report['design']}: {what}", title_justify="left", show_edge=False,
                  show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    model = report.get("source") == "model"
    if model:
        table.add_row("source", "cycle model + golden model (no RTL run)")
    else:
        ok = "[green]yes[/green]" if report["matches_golden"] else "[red]NO[/red]"
        table.add_row("matches golden", ok)
    shown = {"design", "config", "shape", "matches_golden", "sim_seconds", "cycles_per_second",
             "harness_seconds", "harness_cycles_per_second",
             "build_seconds", "source", *_ENERGY_KEYS}
    for key, label, fmt in _SIM_ROWS:
        if model and key == "model_cycles":
            shown.add(key)
            continue
        if report.get(key) is not None:
            table.add_row("cycles (model)" if model and key == "cycles" else label,
                          fmt.format(report[key]))
        shown.add(key)
    for key, value in report.items():
        if key not in shown and isinstance(value, (int, float, str, bool)):
            table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int)
                          and not isinstance(value, bool) else str(value))
    for layer in report.get("layers") or []:
        split = layer["model_split"]
        rtl = "" if layer["cycles"] is None else f"{layer['cycles']:,} (RTL), "
        table.add_row(f"layer {layer['layer']} cycles",
                      f"{rtl}{layer['model_cycles']:,} (model: load {split['load']:,}, "
                      f"compute {split['compute']:,}, walk {split['walk']:,})")
    _energy_rows(table, report)
    if model:
        table.add_row("model time", f"{report['sim_seconds']:.2f} s")
    elif report.get("sim_seconds") is not None:
        table.add_row("simulation", f"{report['sim_seconds']:.2f} s, "
                                    f"{report.get('cycles_per_second') or 0:,} cycles/s "
                                    f"(clocked loop)")
        if report.get("harness_seconds") is not None:
            table.add_row("whole harness run", f"{report['harness_seconds']:.2f} s, "
                          f"{report['harness_cycles_per_second']:,} cycles/s (with process "
                          f"start, stimulus load, results read back)")
    console.print(table)


def _cmd_bench(args, console):
    if args.tech not in TECHS or args.tech == "generic":
        raise UsageError(f"bench needs a liberty tech for areas (choose from "
                         f"{', '.join(t for t in TECHS if t != 'generic')}), not `{args.tech}`")
    _check_tech(args.tech, liberty=True)
    try:
        report = run_bench(args.name, console, args.tech, args.json)
    except SynthError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        load_bench(args.name)[1](console, report)
        console.print(f"[dim]{args.name}: {report['wall_seconds']} s wall[/dim]")


def _cmd_sweep(args, console):
    if args.jobs < 1:
        raise UsageError(f"-j must be at least 1, not {args.jobs}")
    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    spec = load_spec(args.spec)
    all_points = points(spec)           # every point was validated by load_spec
    total = len(all_points)
    _check_tech(spec.tech, liberty=True)
    check_output_folder(args.out)
    if total > LARGE_SWEEP and not args.yes:
        _confirm_large_sweep(console, all_points, args.jobs, spec.tech)
    run = dict(jobs=args.jobs, executor=args.executor, scheduler=args.scheduler,
               use_cache=not args.no_cache)
    if args.json or not console.is_terminal:
        report = run_sweep(spec, **run)
    else:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"sweeping {total} points ({spec.tech}, {args.executor})",
                                total=total)
            report = run_sweep(spec, progress=lambda done, _: bar.update(task, completed=done),
                               **run)
    paths = write_results(args.out, report)
    if args.json:
        print(json.dumps(report, indent=2))
    elif spec.kind == "study":
        print_headline(console, report)
    else:
        _print_grid(console, spec, report)
    if not args.json:
        for path in paths:
            console.print(f"wrote {path}")
        console.print(f"[dim]{report['points']} points, {report['cached']} from cache, "
                      f"{report['wall_seconds']} s wall[/dim]")
    if report["failed"]:
        first = next(r["error"] for r in report["rows"] if "error" in r)
        print(f"sparsegen: error: {report['failed']} of {report['points']} sweep points "
              f"failed (recorded in sweep.json; first: {first})", file=sys.stderr)
        return 1
    return 0


#: Sweeps of more points than this ask first (or need --yes).
LARGE_SWEEP = 400
#: Rough cost of one point's synthesis (a liberty tech with timing, or generic gates) and of
#: its model run, for the estimate shown before a large sweep (an 8x8 array, cold cache).
SYNTH_SECONDS = {"liberty": 60.0, "generic": 5.0}
MODEL_SECONDS = 1.0


def _confirm_large_sweep(console, all_points, jobs: int, tech: str) -> None:
    """Show a large sweep's size and a rough cold-cache estimate; go on only on a "y" at a
    terminal, and refuse without one (``--yes`` skips the question)."""
    designs = {json.dumps([p.get("design"), p.get("params")], sort_keys=True, default=str)
               for p in all_points}
    synth = SYNTH_SECONDS["generic" if tech == "generic" else "liberty"]
    seconds = (len(designs) * synth + len(all_points) * MODEL_SECONDS) / jobs
    what = (f"{len(all_points):,} points ({len(designs):,} distinct configs to synthesize): "
            f"up to about {seconds / 3600:,.1f} h with -j {jobs} on a cold cache")
    if not sys.stdin.isatty():
        raise UsageError(f"a large sweep: {what}; pass --yes to run it")
    answer = console.input(f"sweep of {what}. Run it? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("sweep not started")


def _print_grid(console, spec, report):
    table = Table(title=spec.title, title_justify="left", show_edge=False)
    metrics = [k for k in ("multipliers", "area_um2", "cells", "transistors", "cycles",
                           "dense_macs_per_cycle", "error")
               if any(r.get(k) is not None for r in report["rows"])]
    for column in [*spec.axes, *metrics]:
        table.add_column(column, justify="right")
    for row in report["rows"]:
        table.add_row(*[str(row[a]) for a in spec.axes], *[
            "-" if row.get(k) is None else f"{row[k]:,.1f}" if isinstance(row[k], float)
            else f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k in metrics])
    console.print(table)


def _cmd_report(args, console):
    out = args.out or args.dir
    paths = render_report(args.dir, out, console)
    for path in paths:
        console.print(f"wrote {path}")
    return 0


_COMMANDS = {"list": _cmd_list, "gen": _cmd_gen, "lint": _cmd_lint, "synth": _cmd_synth,
             "sim": _cmd_sim, "bench": _cmd_bench, "sweep": _cmd_sweep,
             "report": _cmd_report}


_EXIT_ON_INTERRUPT = False
"""Set by :func:`main` when it runs as the script: Ctrl-C then exits at once."""


def _on_interrupt(signum, frame):
    """SIGINT: end every child process group (Yosys, OpenSTA, Verilator builds and runs) and
    refuse new ones. Run as the script, exit right away (worker threads may be in the middle of
    Python work that would take seconds to finish; every cache entry is written to a temporary
    name and renamed, so none is left half-made), unless a set of output files is being put
    in place, which the unwinding then cleans up. Called from ``main(argv)`` (tests), unwind."""
    children.interrupt()
    if _EXIT_ON_INTERRUPT and not children.in_critical():
        children.end_all(grace=0.3)
        print("sparsegen: interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    raise KeyboardInterrupt


def _save_bug_report(exc: BaseException, argv) -> Path | None:
    """Write the traceback of an internal error to a log file; its path, or None if even
    that fails."""
    try:
        fd, path = tempfile.mkstemp(prefix="sparsegen-bug-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            log.write(f"sparsegen {__version__}\nargv: {sys.argv if argv is None else argv}\n\n")
            log.write("".join(traceback.format_exception(exc)))
        return Path(path)
    except OSError:
        return None


def _run(argv, console) -> int:
    """Parse and run one command. Errors the user or the machine can cause are one
    ``sparsegen: error:`` line and status 2; anything else is a bug: one line, the traceback
    saved to a log, status 1."""
    try:
        args = _build_parser().parse_args(argv)
        return _COMMANDS[args.command](args, console) or 0
    except UsageError as exc:
        print(f"sparsegen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        children.interrupt()
        children.end_all(grace=1.0)
        print("sparsegen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print("sparsegen: error: out of memory: the run is larger than this machine can hold "
              "(try a smaller layer, or `sim --model` for an estimate)", file=sys.stderr)
        return 2
    except OSError as exc:
        # The machine refused something: a full disk, a read-only or vanished folder.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"sparsegen: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:                # anything else is a bug, not a user error
        log = _save_bug_report(exc, argv)
        saved = f"; traceback saved to {log}" if log else ""
        print(f"sparsegen: internal error (a bug in sparsegen, please report it): "
              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{saved}",
              file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sparsegen`` script; returns the exit status.

    Ctrl-C ends every child process at once and returns 130 (see :mod:`.children`); run as
    the script (``argv`` None) it then exits without waiting for worker threads to finish
    their current Python work.
    """
    global _EXIT_ON_INTERRUPT
    # Redirected output (a file, a pipe, a CI log) keeps the wide bench tables whole: rich
    # would otherwise fit them to 80 columns and cut every cell to "...".
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    console = Console(stderr=False, highlight=False, width=200 if wide else None)
    children.reset()
    _EXIT_ON_INTERRUPT = argv is None
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_interrupt) if in_main_thread else None
    try:
        status = _run(argv, console)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    if status == 130 and argv is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return status


if __name__ == "__main__":
    sys.exit(main())
