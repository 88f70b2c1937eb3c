"""Benchmark ``scnn``: SCNN against a dense array with the same number of multipliers.

One conv layer (C=32, K=32, 14x14, 3x3, pad 1), weight and activation densities swept
together over {1.0, 0.8, 0.5, 0.3, 0.1}:

* a 2 x 2 array of F=I=4 PEs (64 multipliers) simulated on its generated Verilog (Verilator,
  stream player), with the cycle model alongside; the baseline is ``dense-array`` 8 x 8
  (64 multipliers, ZVCG) running the im2col GEMM of the same operands on its RTL at every
  density (its cycles do not depend on the data, its energy does: ZVCG gates zero operands);
* the paper's design point, 8 x 8 PEs of F=I=4 (1024 multipliers), through the cycle model,
  against ``dense_cycles`` of a 32 x 32 dense array;
* the sky130hd area split of one PE from the per-module synthesis breakdown, synthesized in
  exactly the configuration simulated (:data:`PE_PARAMS`): multipliers, crossbar (product
  register, arbitration, scatter), accumulator banks, buffers in flip-flops (weight FIFO,
  activation row-end bits, small memories), SRAM (memories of at least
  ``hw.sram.MACRO_MIN_BITS`` bits, declared as macros: the 512 x 92 activation buffer, priced by
  the OpenRAM-fitted model of ``gen/sram.py``) and the rest (decoders, halo/drain datapath,
  control). Logic and SRAM areas are reported apart.
"""


import numpy as np
from rich import box
from rich.table import Table

from ..hw.s2ta import DenseArrayConfig
from ..hw.scnn import ScnnConfig, ScnnPEConfig
from ..sim.cycles import dense_cycles
from ..sim.layer import im2col
from ..sim.scnn import build_program, model_cycles
from ..sim.stimulus import random_operands
from .bench_common import at_fmax
from .generate import generate
from .registry import get_design
from .synth import synthesize

__all__ = ["run", "print_table", "area_split", "LAYER", "DENSITIES", "PE_PARAMS", "SOURCES"]

LAYER = dict(c=32, k=32, h=14, w=14, r=3, s=3, pad=1)
DENSITIES = (1.0, 0.8, 0.5, 0.3, 0.1)
#: The PE of both arrays: F=I=4, A=32 banks, kc=8, tiles up to 8 x 8, 512 activation rows
#: (all 32 channels of a dense 8 x 8 tile, so the layer runs in one pass).
PE_PARAMS = dict(f=4, i=4, banks=32, bank_depth=32, kc=8, max_tile_w=8, max_tile_h=8,
                 max_r=3, max_s=3, act_depth=512, wt_depth=4, data_width=16, acc_width=24)
#: Where each figure comes from (the README's vocabulary): ``measured`` on the RTL (Verilator
#: runs and their action counts, Yosys, OpenSTA), ``model`` from an RTL-validated model (the
#: cycle model for the 8x8 point and the 32x32 dense array; energy: RTL-counted actions x the
#: per-action table; SRAM area: the OpenRAM-fitted model), ``formula`` derived from the others.
SOURCES = {
    "cycles": "measured", "model_cycles": "model", "dense_cycles": "measured",
    "speedup": "formula", "utilization": "formula", "conflict_stalls": "measured",
    "halo_traffic": "measured", "macs_nonzero": "formula", "paper_cycles": "model",
    "paper_stalls": "model", "paper_dense_cycles": "model", "paper_speedup": "formula",
    "paper_utilization": "formula", "fmax_mhz": "measured", "dense_fmax_mhz": "measured",
    "time_us": "formula", "dense_time_us": "formula", "energy_pj": "model",
    "dense_energy_pj": "model", "energy_gain": "formula", "edp_gain": "formula",
    "gops_mm2": "formula", "dense_gops_mm2": "formula", "area_um2": "measured",
    "sram_area_um2": "model", "dense_area_um2": "measured",
}
_CATEGORIES = (("multipliers", "multipliers"), ("crossbar", "crossbar"),
               ("accumulators", "accumulator banks"), ("act_buffer", "buffers"),
               ("weight_fifo", "buffers"), ("queue", "buffers"))


def _operands(density: float, seed: int):
    rng = np.random.default_rng(seed)
    ly = LAYER
    ifmap = random_operands(rng, (ly["c"], ly["h"], ly["w"]), 16, density)
    filters = random_operands(rng, (ly["k"], ly["c"], ly["r"], ly["s"]), 16, density)
    return ifmap, filters


def area_split(tech: str, config: ScnnPEConfig) -> dict:
    """Per-category area of one PE from the hierarchical synthesis breakdown."""
    design = get_design("scnn-pe")
    generated = generate(design, config)
    result = synthesize(generated.verilog, generated.top, tech)
    split = {"multipliers": 0.0, "crossbar": 0.0, "accumulator banks": 0.0, "buffers": 0.0,
             "SRAM (macros)": 0.0, "other": 0.0}
    for name, module in result.modules.items():
        if "macro" in module:
            split["SRAM (macros)"] += module["macro"]["sram_area_um2"] * module["instances"]
            continue
        area = (module["area_um2"] or 0.0) * module["instances"]
        label = next((lab for key, lab in _CATEGORIES if name.endswith("." + key)
                      or f".{key}." in name), "other")
        split[label] += area
    return {"total_um2": result.area_um2 + result.sram_area_um2,
            "logic_um2": result.area_um2, "sram_um2": result.sram_area_um2,
            "split_um2": split, "cells": result.cells,
            "critical_path_ns": result.critical_path_ns, "fmax_mhz": result.fmax_mhz,
            "yosys_version": result.yosys_version, "seconds": result.seconds}


def run(tech: str = "sky130hd", progress=None) -> dict:
    """Cycles, speedups, utilization, stalls and the PE area split (see the module docs)."""
    say = progress or (lambda message: None)
    ly = LAYER
    small = ScnnConfig(pe_rows=2, pe_cols=2, **PE_PARAMS)
    paper = ScnnConfig(pe_rows=8, pe_cols=8, **PE_PARAMS)
    dense_small = DenseArrayConfig(rows=8, cols=8, data_width=16, acc_width=24, zvcg=True)
    dense_paper = DenseArrayConfig(rows=32, cols=32, data_width=16, acc_width=24, zvcg=True)
    scnn_design = get_design("scnn")

    dense_design = get_design("dense-array")
    rows = []
    for n, density in enumerate(DENSITIES):
        ifmap, filters = _operands(density, 100 + n)
        say(f"density {density}: dense-array 8x8 on the im2col GEMM (RTL)")
        a, w, _ = im2col(ifmap, filters, padding=ly["pad"])
        dense_run = dense_design.host.run(dense_design, dense_small, a, w, tech=tech)
        dense_energy = dense_run.energy
        if not dense_run.matches_golden or dense_run.cycles != dense_run.model_cycles:
            raise RuntimeError("dense-array run does not match its golden model or cycle model")
        dense_paper_cycles = dense_cycles(dense_paper, *a.shape, w.shape[1])
        say(f"density {density}: scnn 2x2 on Verilator")
        result = scnn_design.host.run(scnn_design, small, ifmap, filters, pad=ly["pad"],
                                      tech=tech)
        if not result.matches_golden or result.cycles != result.model_cycles:
            raise RuntimeError(f"scnn run differs from the golden conv or the cycle model at "
                               f"density {density}")
        energy = result.energy
        scnn_area = (energy.area_um2 + energy.counts["sram_area_um2"]
                     if energy.area_um2 is not None else None)
        time_us, gops = (at_fmax(result.macs_total, result.cycles, energy.fmax_mhz, scnn_area)
                         if scnn_area else (None, None))
        d_time, d_gops = (at_fmax(result.macs_total, dense_run.cycles, dense_energy.fmax_mhz,
                                  dense_energy.area_um2)
                          if dense_energy.area_um2 else (None, None))
        e, d_e = energy.energy_pj, dense_energy.energy_pj
        say(f"density {density}: scnn 8x8 cycle model")
        big, big_stalls = model_cycles(build_program(paper, ifmap, filters, ly["pad"]))
        rows.append({
            "density": density, "cycles": result.cycles, "model_cycles": result.model_cycles,
            "dense_cycles": dense_run.cycles, "speedup": dense_run.cycles / result.cycles,
            "utilization": result.utilization, "conflict_stalls": result.conflict_stalls,
            "halo_traffic": result.halo_traffic, "macs_nonzero": result.macs_nonzero,
            "paper_cycles": big, "paper_stalls": big_stalls,
            "paper_dense_cycles": dense_paper_cycles,
            "paper_speedup": dense_paper_cycles / big,
            "paper_utilization": result.macs_nonzero / (paper.multipliers * big),
            "sim_seconds": result.sim_seconds,
            "fmax_mhz": energy.fmax_mhz, "dense_fmax_mhz": dense_energy.fmax_mhz,
            "area_um2": energy.area_um2, "sram_area_um2": energy.counts and
            energy.counts["sram_area_um2"], "dense_area_um2": dense_energy.area_um2,
            "time_us": time_us, "dense_time_us": d_time, "energy_pj": e,
            "dense_energy_pj": d_e, "energy_gain": d_e / e if e and d_e else None,
            "edp_gain": (d_e * d_time) / (e * time_us) if e and d_e and time_us else None,
            "gops_mm2": gops, "dense_gops_mm2": d_gops,
            "energy_breakdown": energy.energy_breakdown,
        })

    say(f"synthesizing scnn-pe for {tech}")
    area = area_split(tech, small.pe)
    say(f"synthesizing dense-array 8x8 for {tech}")
    dense_gen = generate(get_design("dense-array"), dense_small)
    dense_area = synthesize(dense_gen.verilog, dense_gen.top, tech).area_um2
    speedups = [(r["density"], r["speedup"]) for r in rows]
    return {"tech": tech, "layer": ly, "pe": small.pe.as_dict(), "rows": rows,
            "area": area, "dense_area_um2": dense_area,
            "multipliers": {"scnn 2x2": small.multipliers, "scnn 8x8": paper.multipliers},
            "sources": SOURCES,
            "break_even_density": _break_even(speedups)}


def _break_even(points):
    """Density at which the speedup crosses 1, by linear interpolation (None if it does not).
    """
    points = sorted(points)
    for (d0, s0), (d1, s1) in zip(points, points[1:]):
        if (s0 - 1) * (s1 - 1) <= 0 and s0 != s1:
            return d0 + (1 - s0) * (d1 - d0) / (s1 - s0)
    return None


def print_table(console, report):
    ly = report["layer"]
    mults = report["multipliers"]
    table = Table(title=f"SCNN vs dense-array at equal multipliers, conv C={ly['c']} "
                        f"K={ly['k']} {ly['h']}x{ly['w']} {ly['r']}x{ly['s']} pad {ly['pad']}",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1, 0, 0),
                  caption=f"left: scnn 2x2 PEs of F=I=4 on Verilator ({mults['scnn 2x2']} "
                          f"mults) vs dense-array 8x8 RTL; right: scnn 8x8 PEs cycle model "
                          f"({mults['scnn 8x8']} mults) vs dense 32x32 model. speedup = dense "
                          f"cycles / scnn cycles; util = non-zero MACs / (mults x cycles); "
                          f"stalls = crossbar conflict stalls summed over PEs; halo = partial "
                          f"sums exchanged. sources: cycles, dense, stalls, halo measured "
                          f"(Verilator; halo counted in the run); model, 8x8 cyc and its "
                          f"dense model; speedup and util formula",
                  caption_justify="left")
    for column in ("w=a", "cycles", "model", "dense", "speedup", "util", "stalls", "halo",
                   "8x8 cyc", "dense", "speedup", "util"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in report["rows"]:
        table.add_row(f"{r['density']:.1f}", f"{r['cycles']:,}", f"{r['model_cycles']:,}",
                      f"{r['dense_cycles']:,}", f"{r['speedup']:.2f}",
                      f"{r['utilization']:.1%}", f"{r['conflict_stalls']:,}",
                      f"{r['halo_traffic']:,}", f"{r['paper_cycles']:,}",
                      f"{r['paper_dense_cycles']:,}", f"{r['paper_speedup']:.2f}",
                      f"{r['paper_utilization']:.1%}")
    console.print(table)
    clocked = Table(title="at each design's own clock (scnn 2x2 vs dense-array 8x8, the same "
                          "runs)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                    padding=(0, 1, 0, 0),
                    caption="sources: MHz measured (OpenSTA, logic only; SRAM macros timed "
                            "as registers); energy model (actions counted in the RTL run x "
                            "the per-action table, SRAM accesses by the OpenRAM-fitted model, "
                            "plus leakage); time = cycles / fmax, GOPS/mm2 = dense MACs x 2 / "
                            "time / area (scnn: logic + SRAM), gains: formula",
                    caption_justify="left")
    for column in ("w=a", "MHz", "dense MHz", "time us", "dense us", "energy uJ", "dense uJ",
                   "E gain", "EDP gain", "GOPS/mm2", "dense GOPS/mm2"):
        clocked.add_column(column, justify="right", no_wrap=True)

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)
    for r in report["rows"]:
        clocked.add_row(f"{r['density']:.1f}", fmt(r["fmax_mhz"], ".1f"),
                        fmt(r["dense_fmax_mhz"], ".1f"), fmt(r["time_us"], ",.1f"),
                        fmt(r["dense_time_us"], ",.1f"),
                        fmt(r["energy_pj"] and r["energy_pj"] / 1e6, ".2f"),
                        fmt(r["dense_energy_pj"] and r["dense_energy_pj"] / 1e6, ".2f"),
                        fmt(r["energy_gain"], ".2f"), fmt(r["edp_gain"], ".2f"),
                        fmt(r["gops_mm2"], ".2f"), fmt(r["dense_gops_mm2"], ".2f"))
    console.print(clocked)
    area = report["area"]
    split = area["split_um2"]
    mult = split["multipliers"] or float("nan")
    at = Table(title=f"scnn-pe area split ({report['tech']}, {area['yosys_version']}), "
                     f"F=I={report['pe']['f']}, A={report['pe']['banks']}, "
                     f"{report['pe']['act_depth']} activation rows (measured: Yosys areas; "
                     f"SRAM: model)",
               title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
               padding=(0, 1, 0, 0))
    for column in ("part", "area um^2", "share", "vs multipliers"):
        at.add_column(column, justify="left" if column == "part" else "right")
    for label, value in split.items():
        at.add_row(label, f"{value:,.0f}", f"{value / area['total_um2']:.1%}",
                   f"{value / mult:.2f}")
    at.add_row("logic", f"{area['logic_um2']:,.0f}",
               f"{area['logic_um2'] / area['total_um2']:.1%}", f"{area['logic_um2'] / mult:.2f}")
    at.add_row("total", f"{area['total_um2']:,.0f}", "100.0%",
               f"{area['total_um2'] / mult:.2f}")
    console.print(at)
    be = report["break_even_density"]
    full = next(r for r in report["rows"] if r["density"] == 1.0)
    console.print(
        f"break-even density (2x2, RTL): {'none in range' if be is None else f'{be:.2f}'}; "
        f"at full density SCNN runs at {full['speedup']:.0%} of dense (8x8 model: "
        f"{full['paper_speedup']:.0%}); crossbar / multipliers = "
        f"{split['crossbar'] / mult:.2f}; dense-array 8x8 area {report['dense_area_um2']:,.0f}"
        f" um^2 vs 4 scnn PEs {4 * area['total_um2']:,.0f} um^2")
