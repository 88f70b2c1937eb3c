"""``sparsegen bench tools``: how fast sparsegen's own tools are (issue 14's targets).

* generation: wall time and peak memory of ``sparsegen gen`` (a child process each, so its
  peak RSS is its own) for ``dense-array`` and ``s2ta`` (aw) at 8x8, 32x32 and 64x64;
* synthesis: cold ``sparsegen synth`` of a 32x32 ``s2ta`` (:data:`LARGE_SYNTH`: wall time,
  peak memory); cold sky130hd synthesis (Yosys + OpenSTA, a private cache) of the hierarchical
  Verilog sparsegen emits, against the same Verilog flattened first (the same script on both),
  for four designs, with both areas, their ratio and the difference per kind of cell
  (:func:`cell_groups`); and a control that has no boundary to optimize across:
  :data:`CONTROL_COPIES` unconnected copies of one ``dense-array`` cell (clock shared, every
  other port its own), once as one module instantiated, once flattened;
* layer simulation: for each harness, the clocked loop's rate (``cycles_per_second``, the
  per-cycle cost; for the fast harness also on the loop's processor time,
  ``cpu_cycles_per_second``, which other jobs on the machine hardly change) and the whole
  harness run's (``harness_cycles_per_second``: with process
  start, stimulus load and results read back), on ``dense-array`` 8x8 and ``s2ta`` aw 8x8
  (``nnz_a`` 2), GEMMs of :data:`SIM_POINTS`, outputs checked against golden and cycles
  against the cycle model; ``pack_seconds``, the wall time of packing the run's stimulus
  into the harness's words (:func:`~sparsegen.sim.tb.bits.pack_many`); and, for the fast
  harness, ``model_options``: the C++ options its model was compiled with
  (:func:`~sparsegen.sim.fastplay.model_options`); each design's multipliers;
* the machine's reference: a hand-written 8x8 MAC array with no stream and no harness,
  Verilated and compiled like the fast harness's long runs and clocked from C++
  (:mod:`~sparsegen.sim.reference`), checked against numpy on a short run and timed on
  :data:`REFERENCE_CYCLES`. Rates are the host's (hosts of one kind have differed twofold);
  each harness's loop is printed as a share of the reference, in cycles and in multiplies.

Every figure is measured in the run; the machine's load is printed with them because the
times are wall-clock.

Generation: the core's edge skew, R(R-1)/2 + C(C-1)/2 registers, was elaborated register by
register and took half of a 64 x 64 ``s2ta``'s time; delays of 16 edges and more now come
from shared delay lines (:func:`~sparsegen.hw.systolic.delayed`). On 2026-12-02's host (its
runs 1.5 to 2 times as long as the previous host's, whose ``bench tools`` printed 4.08 s and
12.27 s) ``gen s2ta`` aw 32x32 went 7.03 -> 6.70 s and 64x64 22.97 -> 14.70 s, 386 -> 225 MB
(``bench tools`` before and after); a cold ``synth`` of the 32x32 took 182.6 s, 174.8 s of it
Yosys and OpenSTA (99 s on the previous host).

Cold synthesis of that 32x32 (now printed by this bench, :data:`LARGE_SYNTH`): Yosys took 31 s
(``synth`` 10.0, the liberty ABC 7.2, the generic ABC 4.5), OpenSTA 141 s and 4.35 GB, of which
40 s went to the constraint file's ``set_load 0`` on each of the flat design's 1,969,868 nets
(6 s more to list them), its way of saying "no wires". OpenSTA now reads the liberty without
its default wire-load model instead (:func:`~sparsegen.gen.synth._wire_free`), which gives the
same reports (byte for byte on four designs, and the same 9.2299 ns and area on this one):
OpenSTA 79 s and 2.24 GB; ``sparsegen synth`` cold 205.4 -> 133.2 s wall (both beside another
job on the two cores). ``bench tools`` at e1123c8, alone on the machine (whose reference ran at
2.23 M cycles/s, against 2.99-3.02 M earlier the same day): 145.3 s wall, 136.2 s of it Yosys
and OpenSTA, peak 2,190 MB. On a faster host that evening (reference 3.43 M cycles/s, load
0.55, 7.7 min for the whole bench at 9956e84): ``gen s2ta`` aw 32x32 4.38 s, 64x64 10.09 s and
225 MB, the cold 32x32 ``synth`` 95.5 s (90.4 s of it Yosys and OpenSTA), and the fast
harness's loop 1.47 M (``dense-array`` 8x8) and 0.78 M (``s2ta`` aw 8x8) cycles/s.

Where the hierarchical/flat difference came from, and what remains (sky130hd, Yosys 0.70,
hier / flat area as this bench prints it). Not from the boundaries: no instance of a shared
module has a port tied to a constant, ``synth -hieropt`` changes nothing in the cells, and both
netlists hold the same flip-flops. It came from control decoded inside every cell: each cell
computed its accumulator's restart and its result register's enable from its anti-diagonal's
``valid`` and ``last``, gates (and buffer trees over every accumulator bit) whose inputs all
came from control shared by the cells of an anti-diagonal, which a flattened netlist merges
across them and a hierarchical one maps once per cell (sixteen copies of that cell: 1.0064
sharing nothing but the clock, 1.0100 sharing the sum control). The core now decodes, once per
anti-diagonal, ``add`` and ``capture`` = ``valid & last`` into a signal per tap
(:func:`~sparsegen.hw.systolic.control_layout`) and keeps the drain row one-hot, so no cell or
column decodes shared control. With the flow of the time (before ``synth -noabc``), before ->
after: dense-array 4x4 1.0146 -> 1.0034, s2ta aw 4x4 1.0138 -> 0.9980, highlight 4x4 1.0137
-> 1.0100, dense-array 8x8 1.0154 -> 1.0084, s2ta aw 8x8 1.0311 -> 1.0110.

Measured 2026-12-02 at 391f7bc (``synth -noabc``, the cells' lane-sum stage, the DAP's
blocks as one shared module): dense-array 4x4 1.0002, s2ta aw 4x4 0.9995, s2ta aw 8x8 1.0007,
sod 4x4 1.0066, dense-array 8x8 1.0169, highlight 4x4 1.0319. What moves a ratio by a point
or more is ABC's mapping, which depends on the network around a path and on the order of its
text: naming the per-tap control signals (no gate changed) moved dense-array 8x8 from 1.0106
to 1.0169 and sod 4x4's cells (the dense cell, cells kept / flat) from 1.0066 to 1.0110, and
with the DAP's blocks made one module too s2ta aw 8x8 went from 1.0100 to 1.0007;
dense-array 8x8's +2.28% is all in its adder cells, inside the cells (cells kept / flat
1.0168). HighLight's lies around its cells (cells kept / flat
1.0052): its group sequencer, one instance, merges with its consumers when flattened. Kept a
module of its own in an otherwise flat netlist it cost 14,570 um^2 (before the lane-sum stage:
flat 479,690, flat but the sequencer 494,260, hierarchical 495,724; the rank-1 select kept
alone cost 4,144, the core 6,623); the muxes make up the difference (+16,882 um^2 hier against
flat). What would remove it: the sequencer's block steering and the rank-1 select in one
module (not built).

Two rejected alternatives (measured with the flow before ``synth -noabc``): cells without any
domain reset (reset folded into the decoded control) made their registers enable flip-flops
whose enables ABC never buffers, as it does not see flip-flop pins (the default s2ta's critical
path 9.041 -> 24.341 ns); and ABC's options (``&dch`` without ``-f``, ``dch -f``, ``dch``, no
``&dch``, ``&nf`` with ``-C 32``, ``-E 10`` or ``-F 8 -A 4``) moved the old cells' ratios
between 1.0069 and 1.0489 and every design's figures with them, so the project keeps its script
and prints the difference with the cells-kept split and the breakdown by kind of cell.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich import box
from rich.table import Table

from ..hw.highlight import HighLightConfig
from ..hw.s2ta import DenseArrayConfig, S2TAConfig
from ..hw.sod import SodConfig
from ..sim import fastplay, reference
from ..sim.golden.dbb import prune_activations
from ..sim.player import HARNESS_ENV, HARNESSES
from .generate import generate
from .registry import get_design
from .synth import cell_areas, elaborated_verilog, synthesize

__all__ = ["run", "print_table", "GEN_POINTS", "SYNTH_POINTS", "LARGE_SYNTH", "SIM_POINTS",
           "CONTROL_COPIES", "REFERENCE_CYCLES", "REFERENCE_CHECK_CYCLES",
           "cell_groups", "copies_verilog"]

#: s2ta of 1 x 2 x 1 TPEs (``tpe_k`` keeps its default, 2): one output per cell, as in the dense
#: array, with two kept-activation lanes each, so R x C x 2 multipliers, twice the dense array's.
_SCALAR = {"tpe_rows": 1, "tpe_cols": 1}
GEN_POINTS = [("dense-array", {"rows": n, "cols": n}) for n in (8, 32, 64)] + [
    ("s2ta", {"variant": "aw", "rows": n, "cols": n, **_SCALAR}) for n in (8, 32, 64)]
SYNTH_POINTS = [("dense-array", DenseArrayConfig(rows=4, cols=4)),
                ("s2ta", S2TAConfig(variant="aw", rows=4, cols=4, **_SCALAR)),
                ("highlight", HighLightConfig(rows=4, cols=4)),
                ("dense-array", DenseArrayConfig(rows=8, cols=8)),
                ("s2ta", S2TAConfig(variant="aw", rows=8, cols=8, **_SCALAR)),
                ("sod", SodConfig(rows=4, cols=4))]
#: The large array whose cold synthesis is timed (issue 14: under 3 minutes for sky130hd).
LARGE_SYNTH = ("s2ta", {"variant": "aw", "rows": 32, "cols": 32, **_SCALAR})
#: Design, config and GEMM (M, K, N) per harness of the simulation figures. The fast
#: harness's GEMMs are 2,097,152 input steps, above ``LONG_RUN_STEPS`` (its -O2 model, as
#: ``sparsegen sim`` builds it for such a layer); the cocotb harness's are 524,288 steps
#: (its rate hardly depends on the length, and it runs at tens of thousands of cycles/s).
SIM_POINTS = [("dense-array", DenseArrayConfig(rows=8, cols=8),
               {"fast": (512, 512, 512), "cocotb": (256, 512, 256)}),
              ("s2ta", S2TAConfig(variant="aw", rows=8, cols=8, nnz_a=2, **_SCALAR),
               {"fast": (1024, 1024, 1024), "cocotb": (512, 1024, 512)})]
#: Cycles of the machine's reference run (:mod:`~sparsegen.sim.reference`), and of its check
#: against numpy.
REFERENCE_CYCLES = 20_000_000
REFERENCE_CHECK_CYCLES = 1_000
#: Unconnected copies of one cell in the control synthesis (:func:`copies_verilog`).
CONTROL_COPIES = 16


def _cli(verb: str, name: str, params: dict, *extra: str,
         env: dict | None = None) -> tuple[float, int, str]:
    """``sparsegen VERB NAME -p k=v ... EXTRA`` in a child process: its wall seconds, the peak
    RSS in MB of its largest process (its own or a child's it waited for) and its standard
    output."""
    cmd = [sys.executable, "-m", "sparsegen.gen.cli", verb, name,
           *(x for k, v in params.items() for x in ("-p", f"{k}={v}")), *extra]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err,
                                 env=None if env is None else {**os.environ, **env})
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if status != 0:
            raise RuntimeError(f"sparsegen {verb} {name} {params} failed: "
                               f"{err.read().decode(errors='replace').strip()}")
        return seconds, round(usage.ru_maxrss / 1024), out.read().decode()


def _gen(name: str, params: dict) -> dict:
    """``sparsegen gen`` in a child process: wall seconds and the child's peak RSS."""
    with tempfile.TemporaryDirectory(prefix="sparsegen-bench-") as out:
        seconds, peak_mb, _ = _cli("gen", name, params, "-o", out)
        size = sum(p.stat().st_size for p in Path(out).iterdir())
    return {"design": name, "params": params, "seconds": round(seconds, 2),
            "peak_mb": peak_mb, "verilog_bytes": size}


#: Kinds of sky130hd cell by name (the first pattern that matches); anything else is "logic".
_GROUPS = (("flip-flops", re.compile(r"__(?:s?e?df|dl)[a-z]*_\d+$")),
           ("adder cells (maj3, xor, xnor, fa, ha)",
            re.compile(r"__(?:maj3|x?n?or[23]|xor[23]|xnor[23]|fa|ha)_\d+$")),
           ("muxes", re.compile(r"__mux")),
           ("buffers and delays", re.compile(r"__(?:buf|clkbuf|dlygate|dlymetal|clkdlybuf)")),
           ("inverters", re.compile(r"__(?:inv|clkinv)_")))


def cell_groups(cell_types: dict, areas: dict) -> dict:
    """Area per kind of cell (:data:`_GROUPS`, else ``"logic"``) of a ``cell_types`` count
    (:attr:`~.synth.SynthResult.cell_types`), from the liberty's cell ``areas``."""
    groups = dict.fromkeys([name for name, _ in _GROUPS] + ["logic"], 0.0)
    for cell, count in cell_types.items():
        group = next((name for name, pattern in _GROUPS if pattern.search(cell)), "logic")
        groups[group] += count * areas[cell]
    return {name: round(area, 3) for name, area in groups.items()}


_PORT = re.compile(r"^\s*(input|output)\s+(\[\d+:\d+\]\s+)?(\S+);$", re.M)


def copies_verilog(module: str, verilog_text: str, copies: int, top: str = "copies") -> str:
    """``verilog_text`` plus a top ``top`` holding ``copies`` instances of ``module`` that share
    nothing but ``clk``: every other port of each copy is a port of the top of its own. Mapped
    flat, nothing crosses a copy's boundary, so any area difference against the module mapped
    once is the mapper's, not an optimization across boundaries."""
    escaped = re.escape(module)
    body = re.search(rf"^module \\?{escaped} \(.*?^endmodule", verilog_text, re.M | re.S)
    if body is None:
        raise ValueError(f"no module `{module}` in the Verilog")
    ports = [(kind, width or "", name) for kind, width, name in _PORT.findall(body.group(0))]
    names, lines, instances = ["clk"], ["  input clk;"], []
    for n in range(copies):
        connections = []
        for kind, width, name in ports:
            own = "clk" if name == "clk" else f"{name}_{n}"
            if own != "clk":
                names.append(own)
                lines.append(f"  {kind} {width}{own};")
            connections.append(f".{name}({own})")
        instances.append(f"  \\{module} copy_{n} ({', '.join(connections)});")
    return (verilog_text + f"\nmodule {top}({', '.join(names)});\n" + "\n".join(lines)
            + "\n" + "\n".join(instances) + "\nendmodule\n")


def _hier_and_flat(verilog_text: str, top: str, tech: str, areas: dict,
                   cell: str | None = None) -> dict:
    """Cold synthesis of ``verilog_text`` as it is and flattened (both through the same Yosys
    round trip, :func:`~.synth.elaborated_verilog`, and the same script); with ``cell`` (the
    repeated cell's module) also flattened but for ``cell`` (``cells_*``: every cell one
    instance of the one module mapped once, the blocks around them flat), which splits
    hier - flat into what lies inside the cells (cells - flat) and around them (hier -
    cells)."""
    kinds = {"hier": {"flatten": False}, "flat": {"flatten": True}}
    if cell is not None:
        kinds["cells"] = {"flatten": True, "keep": (cell,)}
    row = {}
    for kind, how in kinds.items():
        text = elaborated_verilog(verilog_text, top, **how)
        with tempfile.TemporaryDirectory(prefix="sparsegen-bench-cache-") as cache:
            result = synthesize(text, top, tech, cache_dir=Path(cache), use_cache=False)
        row[f"{kind}_seconds"] = result.seconds
        row[f"{kind}_area_um2"] = result.area_um2
        row[f"{kind}_critical_path_ns"] = result.critical_path_ns
        row[f"{kind}_groups_um2"] = cell_groups(result.cell_types, areas)
    row["area_ratio"] = row["hier_area_um2"] / row["flat_area_um2"]
    if cell is not None:
        row["cells_area_ratio"] = row["cells_area_um2"] / row["flat_area_um2"]
    return row


def _synth(name: str, config, tech: str, areas: dict) -> dict:
    generated = generate(get_design(name), config)
    return {"design": name, "config": config.as_dict(),
            **_hier_and_flat(generated.verilog, generated.top, tech, areas,
                             cell=f"{generated.top}.cell")}


def _large_synth(tech: str) -> dict:
    """``sparsegen synth`` of :data:`LARGE_SYNTH` in a child process with an empty cache of its
    own, as on a fresh machine (the liberty unpacked, Verilog generated, Yosys, OpenSTA): wall
    seconds, the child's peak RSS, and the run's area and critical path."""
    name, params = LARGE_SYNTH
    with tempfile.TemporaryDirectory(prefix="sparsegen-bench-cold-") as cache:
        seconds, peak_mb, out = _cli("synth", name, params, "--tech", tech, "--json",
                                     env={"SPARSEGEN_CACHE_DIR": cache})
    result = json.loads(out)
    return {"design": name, "params": params, "seconds": round(seconds, 2),
            "peak_mb": peak_mb, "synth_seconds": result["seconds"],
            "area_um2": result["area_um2"], "critical_path_ns": result["critical_path_ns"]}


def _control(tech: str, areas: dict) -> dict:
    """The control of the module docs: :data:`CONTROL_COPIES` unconnected ``dense-array``
    cells."""
    generated = generate(get_design("dense-array"), DenseArrayConfig(rows=1, cols=1))
    module = f"{generated.top}.cell"
    return {"design": f"{CONTROL_COPIES} unconnected {module}", "module": module,
            "copies": CONTROL_COPIES,
            **_hier_and_flat(copies_verilog(module, generated.verilog, CONTROL_COPIES),
                             "copies", tech, areas)}


@contextlib.contextmanager
def _harness(name: str):
    old = os.environ.get(HARNESS_ENV)
    os.environ[HARNESS_ENV] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(HARNESS_ENV, None)
        else:
            os.environ[HARNESS_ENV] = old


def _operands(shape, seed: int = 0):
    """Operands as ``make sim-example`` makes them: ReLU'd A[M, K], DBB 4/8 W[K, N]."""
    m, k, n = shape
    rng = np.random.default_rng(seed)
    a = np.maximum(rng.integers(-128, 128, (m, k)), 0)
    w = prune_activations(rng.integers(-128, 128, (n, k)), 8, 4).T
    return a, w


def _sim(name: str, config, shapes: dict) -> list[dict]:
    design = get_design(name)
    rows = []
    for harness in HARNESSES:
        shape = shapes[harness]
        a, w = _operands(shape)
        with _harness(harness):
            first = design.host.run(design, config, a, w)  # builds (or finds) the model
            result = design.host.run(design, config, a, w)
        if not result.matches_golden or result.cycles != result.model_cycles:
            raise RuntimeError(f"{name} on the {harness} harness: golden "
                               f"{result.matches_golden}, cycles {result.cycles} vs model "
                               f"{result.model_cycles}")
        rows.append({"design": name, "config": config.as_dict(), "shape": list(shape),
                     "multipliers": config.multipliers,
                     "harness": harness, "cycles": result.cycles,
                     "sim_seconds": round(result.sim_seconds, 4),
                     "cycles_per_second": round(result.cycles / result.sim_seconds),
                     "cpu_cycles_per_second": round(result.cycles / result.sim_cpu_seconds)
                     if result.sim_cpu_seconds else None,
                     "harness_seconds": round(result.harness_seconds, 4),
                     "harness_cycles_per_second": round(result.cycles
                                                        / result.harness_seconds),
                     "build_seconds": round(first.build_seconds, 2),
                     "pack_seconds": round(result.pack_seconds, 3),
                     "model_options": " ".join(fastplay.model_options(
                         result.steps >= fastplay.LONG_RUN_STEPS)) if harness == "fast"
                     else None})
    return rows


def _reference() -> dict:
    """The machine's reference rate (:mod:`~sparsegen.sim.reference`): built (or found),
    checked against numpy on a short run, then timed on :data:`REFERENCE_CYCLES`."""
    check = reference.run(REFERENCE_CHECK_CYCLES)
    expected = reference.expected_checksum(REFERENCE_CHECK_CYCLES)
    if check["checksum"] != expected:
        raise RuntimeError(f"the reference MAC array's checksum after "
                           f"{REFERENCE_CHECK_CYCLES} cycles is {check['checksum']}, numpy "
                           f"says {expected}")
    timed = reference.run(REFERENCE_CYCLES)
    return {"array": f"{reference.ROWS}x{reference.COLS}",
            "multipliers": reference.ROWS * reference.COLS, "cycles": timed["cycles"],
            "seconds": round(timed["seconds"], 4),
            "cycles_per_second": round(timed["cycles"] / timed["seconds"]),
            "cpu_cycles_per_second": round(timed["cycles"] / timed["cpu_seconds"])
            if timed["cpu_seconds"] else None}


def run(tech: str = "sky130hd", progress=None) -> dict:
    """Generation, synthesis and simulation speed (see the module docs)."""
    say = progress or (lambda message: None)
    load = os.getloadavg()[0]
    gen_rows = []
    for name, params in GEN_POINTS:
        say(f"generating {name} {params}")
        gen_rows.append(_gen(name, params))
    say("timing the machine's reference: a hand-written 8x8 MAC array")
    ref = _reference()
    sim_rows = []
    for name, config, shapes in SIM_POINTS:
        say(f"simulating {name} {config.rows}x{config.cols} on both harnesses")
        sim_rows.extend(_sim(name, config, shapes))
    areas = cell_areas(tech)
    synth_rows = []
    for name, config in SYNTH_POINTS:
        say(f"synthesizing {name} {config.rows}x{config.cols} hierarchical and flat ({tech})")
        synth_rows.append(_synth(name, config, tech, areas))
    say(f"synthesizing the control: {CONTROL_COPIES} unconnected dense-array cells ({tech})")
    control = _control(tech, areas)
    name, params = LARGE_SYNTH
    say(f"synthesizing {name} {params['rows']}x{params['cols']} cold ({tech}, a child process "
        f"with an empty cache)")
    large = _large_synth(tech)
    return {"tech": tech, "load_average": round(load, 2), "cpus": os.cpu_count(),
            "generation": gen_rows, "simulation": sim_rows, "reference": ref,
            "synthesis": synth_rows,
            "synthesis_control": control, "large_synthesis": large,
            "sources": {"generation": "measured", "simulation": "measured",
                        "synthesis": "measured", "synthesis_control": "measured",
                        "large_synthesis": "measured", "reference": "measured"}}


def _multiplies(row: dict) -> float:
    """Multiplies per second of a simulation row or the reference: cycles/s x multipliers."""
    return row["cycles_per_second"] * row["multipliers"]


def print_table(console, report):
    table = Table(title="generation (`sparsegen gen`, a child process each)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("design", "size", "seconds", "peak MB", "Verilog kB"):
        table.add_column(column, justify="left" if column == "design" else "right")
    for row in report["generation"]:
        p = row["params"]
        name = row["design"] + (f" {p['variant']}" if "variant" in p else "")
        table.add_row(name, f"{p['rows']}x{p['cols']}", f"{row['seconds']:.2f}",
                      f"{row['peak_mb']:,}", f"{row['verilog_bytes'] / 1000:,.0f}")
    console.print(table)
    table = Table(title="layer simulation (measured, checked against golden and the cycle "
                        "model): the clocked loop alone, and the whole harness run with its "
                        "one-time costs (process start, stimulus load, results read back)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("design", "multipliers", "GEMM", "harness", "cycles", "loop s",
                   "loop cycles/s",
                   "loop cycles/s, CPU time", "whole run s", "whole-run cycles/s",
                   "build s (0: reused)", "stimulus pack s"):
        table.add_column(column, justify="left" if column in ("design", "harness")
                         else "right")
    for row in report["simulation"]:
        table.add_row(row["design"], str(row["multipliers"]), "x".join(map(str, row["shape"])),
                      row["harness"],
                      f"{row['cycles']:,}", f"{row['sim_seconds']:.3f}",
                      f"{row['cycles_per_second']:,}",
                      f"{row['cpu_cycles_per_second']:,}" if row["cpu_cycles_per_second"]
                      else "-", f"{row['harness_seconds']:.3f}",
                      f"{row['harness_cycles_per_second']:,}", f"{row['build_seconds']:.1f}",
                      f"{row['pack_seconds']:.2f}")
    console.print(table)
    ref = report["reference"]
    console.print(f"machine reference (sim/reference.py, compiled like the fast harness's "
                  f"long runs): a hand-written {ref['array']} MAC array, no stream, no harness, "
                  f"{ref['multipliers']} multipliers, {ref['cycles_per_second']:,} cycles/s "
                  f"({ref['cpu_cycles_per_second']:,} on CPU time); the fast harness's loop as a "
                  f"share of it, in cycles and in multiplies: " + ", ".join(
                      f"{row['design']} {row['cycles_per_second'] / ref['cycles_per_second']:.0%}"
                      f" and {_multiplies(row) / _multiplies(ref):.0%}"
                      for row in report["simulation"] if row["harness"] == "fast"))
    for row in report["simulation"]:
        if row.get("model_options"):
            console.print(f"[dim]{row['design']} on the fast harness: model compiled with "
                          f"{row['model_options']}[/dim]")
    table = Table(title=f"synthesis, {report['tech']}, cold (Yosys + OpenSTA, measured): "
                        f"hierarchical (as emitted) vs flattened, the same script",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("design", "size", "hier s", "flat s", "hier um^2", "flat um^2",
                   "hier / flat", "cells kept um^2", "cells kept / flat"):
        table.add_column(column, justify="left" if column == "design" else "right")
    rows = [*report["synthesis"], report["synthesis_control"]]
    for row in rows:
        c = row.get("config")
        kept = "cells_area_um2" in row
        table.add_row(row["design"], f"{c['rows']}x{c['cols']}" if c else "1x1",
                      f"{row['hier_seconds']:.1f}", f"{row['flat_seconds']:.1f}",
                      f"{row['hier_area_um2']:,.0f}", f"{row['flat_area_um2']:,.0f}",
                      f"{row['area_ratio']:.4f}",
                      f"{row['cells_area_um2']:,.0f}" if kept else "-",
                      f"{row['cells_area_ratio']:.4f}" if kept else "-")
    console.print(table)
    console.print("[dim]cells kept: flattened but for the repeated cell (one module mapped once, "
                  "counted per instance); hier - cells kept is what the blocks around the cells "
                  "(columns, core) lose, cells kept - flat what the cells lose[/dim]")
    table = Table(title="area by kind of cell against flat, um^2 (measured; % of the flat "
                        "area)", title_justify="left", box=box.SIMPLE_HEAD)
    groups = list(rows[0]["hier_groups_um2"])
    table.add_column("design", justify="left")
    table.add_column("size", justify="right")
    for group in groups:
        table.add_column(group, justify="right")
    for row in rows:
        c = row.get("config")
        flat = row["flat_area_um2"]
        for kind, label in (("hier", "hier"), ("cells", "cells kept")):
            if f"{kind}_groups_um2" not in row:
                continue
            table.add_row(f"{row['design']}: {label} - flat",
                          f"{c['rows']}x{c['cols']}" if c else "1x1", *(
                f"{row[f'{kind}_groups_um2'][g] - row['flat_groups_um2'][g]:+,.0f} "
                f"({(row[f'{kind}_groups_um2'][g] - row['flat_groups_um2'][g]) / flat:+.2%})"
                for g in groups))
    console.print(table)
    large = report["large_synthesis"]
    p = large["params"]
    console.print(f"cold synthesis of {large['design']} {p.get('variant', '')} "
                  f"{p['rows']}x{p['cols']} (`sparsegen synth --tech {report['tech']}`, a child "
                  f"process with an empty cache, as on a fresh machine): {large['seconds']:.1f} s "
                  f"wall, {large['synth_seconds']:.1f} s of it Yosys and OpenSTA, peak "
                  f"{large['peak_mb']:,} MB; {large['area_um2']:,.0f} um^2, critical path "
                  f"{large['critical_path_ns']:.3f} ns")
    console.print(f"[dim]load average {report['load_average']} on {report['cpus']} CPUs "
                  f"when the run started (wall-clock figures)[/dim]")
