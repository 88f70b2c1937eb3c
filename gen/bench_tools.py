"""``sparsegen bench tools``: how fast sparsegen's own tools are (issue 14's targets).

* generation: wall time and peak memory of ``sparsegen gen`` (a child process each, so its
  peak RSS is its own) for ``dense-array`` and ``s2ta`` (aw) at 8x8, 32x32 and 64x64;
* synthesis: cold sky130hd synthesis (Yosys + OpenSTA, a private cache) of the hierarchical
  Verilog sparsegen emits, against the same Verilog flattened first, with both areas;
* layer simulation: cycles per second of the fast C++ harness and of the cocotb reference
  harness on GEMM 256x512x256 (``dense-array`` 8x8 and ``s2ta`` aw 8x8, ``nnz_a`` 2), with the
  outputs checked against golden and the cycles against the cycle model.

Every figure is measured in the run; the machine's load is printed with them because the
times are wall-clock.
"""

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich import box
from rich.table import Table

from ..hw.s2ta import DenseArrayConfig, S2TAConfig
from ..sim.golden.dbb import prune_activations
from ..sim.player import HARNESS_ENV, HARNESSES
from .generate import generate
from .registry import get_design
from .synth import elaborated_verilog, synthesize

__all__ = ["run", "print_table", "GEN_POINTS", "SYNTH_POINTS", "SIM_POINTS", "SIM_SHAPE"]

_SCALAR = {"tpe_rows": 1, "tpe_cols": 1}    # s2ta of 1x1x1 TPEs: R x C multipliers, as dense
GEN_POINTS = [("dense-array", {"rows": n, "cols": n}) for n in (8, 32, 64)] + [
    ("s2ta", {"variant": "aw", "rows": n, "cols": n, **_SCALAR}) for n in (8, 32, 64)]
SYNTH_POINTS = [("dense-array", DenseArrayConfig(rows=4, cols=4)),
                ("s2ta", S2TAConfig(variant="aw", rows=4, cols=4, **_SCALAR)),
                ("dense-array", DenseArrayConfig(rows=8, cols=8)),
                ("s2ta", S2TAConfig(variant="aw", rows=8, cols=8, **_SCALAR))]
SIM_POINTS = [("dense-array", DenseArrayConfig(rows=8, cols=8)),
              ("s2ta", S2TAConfig(variant="aw", rows=8, cols=8, nnz_a=2, **_SCALAR))]


def _gen(name: str, params: dict) -> dict:
    """``sparsegen gen`` in a child process: wall seconds and the child's peak RSS."""
    with tempfile.TemporaryDirectory(prefix="sparsegen-bench-") as out:
        cmd = [sys.executable, "-m", "sparsegen.gen.cli", "gen", name,
               *(x for k, v in params.items() for x in ("-p", f"{k}={v}")), "-o", out]
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        if status != 0:
            raise RuntimeError(f"sparsegen gen {name} {params} failed: "
                               f"{child.stderr.read().decode(errors='replace').strip()}")
        child.stderr.close()
        size = sum(p.stat().st_size for p in Path(out).iterdir())
    return {"design": name, "params": params, "seconds": round(seconds, 2),
            "peak_mb": round(usage.ru_maxrss / 1024), "verilog_bytes": size}


def _synth(name: str, config, tech: str) -> dict:
    """Cold synthesis of the hierarchical Verilog and of the same Verilog flattened (both
    through the same Yosys round trip, :func:`~.synth.elaborated_verilog`)."""
    generated = generate(get_design(name), config)
    row = {"design": name, "config": config.as_dict()}
    for kind in ("hier", "flat"):
        verilog = elaborated_verilog(generated.verilog, generated.top, flatten=kind == "flat")
        with tempfile.TemporaryDirectory(prefix="sparsegen-bench-cache-") as cache:
            result = synthesize(verilog, generated.top, tech, cache_dir=Path(cache),
                                use_cache=False)
        row[f"{kind}_seconds"] = result.seconds
        row[f"{kind}_area_um2"] = result.area_um2
        row[f"{kind}_critical_path_ns"] = result.critical_path_ns
    row["area_ratio"] = row["hier_area_um2"] / row["flat_area_um2"]
    return row


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


#: The GEMM of the simulation figures: long enough (524,313 cycles on dense-array 8x8) that the
#: harness's start-up does not count.
SIM_SHAPE = (256, 512, 256)


def _operands(seed: int = 0):
    """Operands as ``make sim-example`` makes them: ReLU'd A[M, K], DBB 4/8 W[K, N]."""
    m, k, n = SIM_SHAPE
    rng = np.random.default_rng(seed)
    a = np.maximum(rng.integers(-128, 128, (m, k)), 0)
    w = prune_activations(rng.integers(-128, 128, (n, k)), 8, 4).T
    return a, w


def _sim(name: str, config) -> list[dict]:
    design = get_design(name)
    a, w = _operands()
    rows = []
    for harness in HARNESSES:
        with _harness(harness):
            first = design.host.run(design, config, a, w)  # builds (or finds) the model
            result = design.host.run(design, config, a, w)
        if not result.matches_golden or result.cycles != result.model_cycles:
            raise RuntimeError(f"{name} on the {harness} harness: golden "
                               f"{result.matches_golden}, cycles {result.cycles} vs model "
                               f"{result.model_cycles}")
        rows.append({"design": name, "config": config.as_dict(), "harness": harness,
                     "cycles": result.cycles, "sim_seconds": round(result.sim_seconds, 4),
                     "cycles_per_second": round(result.cycles / result.sim_seconds),
                     "build_seconds": round(first.build_seconds, 2)})
    return rows


def run(tech: str = "sky130hd", progress=None) -> dict:
    """Generation, synthesis and simulation speed (see the module docs)."""
    say = progress or (lambda message: None)
    load = os.getloadavg()[0]
    gen_rows = []
    for name, params in GEN_POINTS:
        say(f"generating {name} {params}")
        gen_rows.append(_gen(name, params))
    sim_rows = []
    for name, config in SIM_POINTS:
        say(f"simulating {name} {config.rows}x{config.cols} on both harnesses")
        sim_rows.extend(_sim(name, config))
    synth_rows = []
    for name, config in SYNTH_POINTS:
        say(f"synthesizing {name} {config.rows}x{config.cols} hierarchical and flat ({tech})")
        synth_rows.append(_synth(name, config, tech))
    return {"tech": tech, "load_average": round(load, 2), "cpus": os.cpu_count(),
            "generation": gen_rows, "simulation": sim_rows, "synthesis": synth_rows,
            "sources": {"generation": "measured", "simulation": "measured",
                        "synthesis": "measured"}}


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
    table = Table(title="layer simulation, GEMM {}x{}x{} (measured, checked against golden "
                        "and the cycle model)".format(*SIM_SHAPE), title_justify="left",
                  box=box.SIMPLE_HEAD)
    for column in ("design", "harness", "cycles", "sim s", "cycles/s", "build s (0: reused)"):
        table.add_column(column, justify="left" if column in ("design", "harness")
                         else "right")
    for row in report["simulation"]:
        table.add_row(row["design"], row["harness"], f"{row['cycles']:,}",
                      f"{row['sim_seconds']:.3f}", f"{row['cycles_per_second']:,}",
                      f"{row['build_seconds']:.1f}")
    console.print(table)
    table = Table(title=f"synthesis, {report['tech']}, cold (Yosys + OpenSTA): hierarchical "
                        f"(as emitted) vs flattened", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for column in ("design", "size", "hier s", "flat s", "hier um^2", "flat um^2",
                   "hier / flat"):
        table.add_column(column, justify="left" if column == "design" else "right")
    for row in report["synthesis"]:
        c = row["config"]
        table.add_row(row["design"], f"{c['rows']}x{c['cols']}", f"{row['hier_seconds']:.1f}",
                      f"{row['flat_seconds']:.1f}", f"{row['hier_area_um2']:,.0f}",
                      f"{row['flat_area_um2']:,.0f}", f"{row['area_ratio']:.3f}")
    console.print(table)
    console.print(f"[dim]load average {report['load_average']} on {report['cpus']} CPUs "
                  f"when the run started (wall-clock figures)[/dim]")
