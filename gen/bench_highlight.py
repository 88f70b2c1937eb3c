"""``sparsegen bench highlight``: HighLight's claim measured on our RTL.

For each of the 12 patterns of the example set (rank1 {4:4,4:5,4:6,4:7} x rank0 {4:4,2:4,1:4})
on GEMM M=64, K=512, N=64 (ReLU-like activations, one dense weight matrix pruned to each pattern
with the golden HSS prune): the weight density, the cycles of ``highlight`` (4 x 4 cells of 4
multipliers, simulated on Verilator, checked bit-exact against golden and against the cycle
model), the speedup over ``dense-array`` 8 x 8 (64 multipliers, the same count) and the ideal
speedup. Below the rows, the sky130hd areas of one PE: ``hss-mux`` supporting the 12 patterns,
``hss-mux`` supporting one (dense) pattern, ``gh-flat`` supporting the same 12 densities as flat
G:H ratios (and one), and ``dense-pe`` with 4 multipliers (equal peak throughput), split into
the group sequencer, the muxes and the rest; and the areas of the two arrays, for the
speedup per area.
"""

import dataclasses

import numpy as np
from rich.table import Table

from ..hw.highlight import HighLightConfig, pattern_text
from ..hw.hss import DEFAULT_PATTERNS, GHFlatConfig, HSSMuxConfig, flat_ratios
from ..hw.pe import DensePEConfig
from ..hw.s2ta import DenseArrayConfig
from ..sim.golden import hss as ghss
from .bench_common import at_fmax
from .generate import generate
from .registry import get_design
from .synth import synthesize

__all__ = ["run", "print_table", "GEMM_SHAPE", "area_points"]

GEMM_SHAPE = (64, 512, 64)


def area_points() -> list[tuple[str, str, object]]:
    """(label, design, config) of the PEs whose areas the benchmark compares."""
    return [
        ("dense-pe (4 multipliers)", "dense-pe", DensePEConfig(block_size=4)),
        ("hss-mux, 12 patterns", "hss-mux", HSSMuxConfig()),
        ("hss-mux, 1 pattern (4:4,4:4)", "hss-mux", HSSMuxConfig(patterns="4:4 x 4:4")),
        ("gh-flat, 12 ratios", "gh-flat", GHFlatConfig(ratios=flat_ratios(DEFAULT_PATTERNS))),
        ("gh-flat, 1 ratio (16:16)", "gh-flat", GHFlatConfig(ratios="16:16")),
    ]


def _areas(tech, progress):
    rows = []
    for label, name, config in area_points():
        if progress:
            progress(f"synthesizing {label} for {tech}")
        generated = generate(get_design(name), config)
        result = synthesize(generated.verilog, generated.top, tech)
        modules = result.modules
        top = generated.top

        def part(suffix, modules=modules, top=top):
            mod = modules.get(f"{top}.{suffix}")
            return 0.0 if mod is None else mod["area_um2"] * mod.get("instances", 1)
        rows.append({"label": label, "design": name, "config": config.as_dict(),
                     "area_um2": result.area_um2, "cells": result.cells,
                     "sequencer_um2": part("seq"), "mux_um2": part("pe.mux") + part("mux"),
                     "yosys_version": result.yosys_version})
    dense = rows[0]["area_um2"]
    for row in rows:
        row["vs_dense_pe"] = row["area_um2"] / dense
    return rows


def _workload(seed: int = 5):
    m, k, n = GEMM_SHAPE
    rng = np.random.default_rng(seed)
    a = np.maximum(np.clip(np.round(rng.normal(0, 40, (m, k))), -128, 127), 0).astype(np.int64)
    w = np.clip(np.round(rng.normal(0, 30, (k, n))), -128, 127).astype(np.int64)
    return a, w


def run(tech: str = "sky130hd", progress=None) -> dict:
    """Cycles of every pattern against the dense array, and the PE areas (module docs)."""
    a, w = _workload()
    dense_design, highlight = get_design("dense-array"), get_design("highlight")
    m, k, n = GEMM_SHAPE
    dense_cfg = DenseArrayConfig(rows=8, cols=8)
    base = HighLightConfig(rows=4, cols=4)
    if progress:
        progress("simulating dense-array 8x8 on Verilator")
    dense = dense_design.host.run(dense_design, dense_cfg, a, w)
    if not dense.matches_golden:
        raise RuntimeError("dense-array does not match golden")
    rows = []
    sim_cycles, sim_seconds = dense.cycles, dense.sim_seconds
    for pattern in base.pattern_set:
        text = pattern_text(pattern)
        config = dataclasses.replace(base, pattern=text)
        if progress:
            progress(f"simulating highlight 4x4, pattern {text}, on Verilator")
        pruned = ghss.prune_weights(w, text)
        result = highlight.host.run(highlight, config, a, pruned)
        if not result.matches_golden or result.cycles != result.model_cycles:
            raise RuntimeError(f"highlight {text}: golden match {result.matches_golden}, "
                               f"cycles {result.cycles} vs model {result.model_cycles}")
        g1, h1, g0, h0 = pattern
        rows.append({
            "pattern": text, "density_bound": g1 * g0 / (h1 * h0),
            "weight_density": float(np.count_nonzero(pruned) / pruned.size),
            "flat_ratio": f"{g1 * g0}:{h1 * h0}",
            "cycles": result.cycles, "model_cycles": result.model_cycles,
            "dense_cycles": dense.cycles, "speedup": dense.cycles / result.cycles,
            "ideal_speedup": highlight.host.ideal_speedup(config),
            "matches_golden": result.matches_golden,
        })
        sim_cycles += result.cycles
        sim_seconds += result.sim_seconds
    areas = _areas(tech, progress)
    arrays, fmax = {}, {}
    for name, config in (("dense-array", dense_cfg), ("highlight", base)):
        if progress:
            progress(f"synthesizing the {name} array for {tech}")
        generated = generate(get_design(name), config)
        synthesized = synthesize(generated.verilog, generated.top, tech)
        arrays[name], fmax[name] = synthesized.area_um2, synthesized.fmax_mhz
    macs = m * k * n
    for row in rows:
        row["speedup_per_area"] = row["speedup"] * arrays["dense-array"] / arrays["highlight"]
        for name, cycles in (("dense-array", row["dense_cycles"]), ("highlight", row["cycles"])):
            key = "dense" if name == "dense-array" else "highlight"
            row[f"time_us_{key}"], row[f"gops_mm2_{key}"] = at_fmax(macs, cycles, fmax[name],
                                                                     arrays[name])
    return {"array_areas_um2": arrays, "fmax_mhz": fmax, "tech": tech,
            "gemm": dict(zip("MKN", GEMM_SHAPE)),
            "highlight": base.as_dict(), "dense_array": dense_cfg.as_dict(),
            "multipliers": {"highlight": base.multipliers, "dense-array": dense_cfg.multipliers},
            "rows": rows, "areas": areas, "yosys_version": areas[0]["yosys_version"],
            "simulated_cycles": sim_cycles, "simulation_seconds": round(sim_seconds, 2)}


def _opt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(console, report):
    gemm = report["gemm"]
    areas = report["areas"]
    lines = [f"PE areas, {report['tech']}, {report['yosys_version'].split(' (')[0]} "
             f"(x: vs dense-pe; seq: group sequencer; cell: PE - seq):"]
    for row in areas:
        cell = row["area_um2"] - row["sequencer_um2"]
        lines.append(f"  {row['label']:<29}{row['area_um2']:>8,.0f} um^2 "
                     f"{row['vs_dense_pe']:5.2f}x | seq {row['sequencer_um2']:>6,.0f} "
                     f"mux {row['mux_um2']:>5,.0f} | cell {cell:>6,.0f}")
    arrays = report["array_areas_um2"]
    fmax = report.get("fmax_mhz") or {}
    lines.append(f"Array areas: highlight 4x4 {arrays['highlight']:,.0f} um^2, dense-array 8x8 "
                 f"{arrays['dense-array']:,.0f} um^2 (per area = speedup x dense / highlight)")
    lines.append("fmax (OpenSTA, logic only): " + ", ".join(
        f"{name} {'-' if fmax.get(name) is None else f'{fmax[name]:.1f}'} MHz"
        for name in ("highlight", "dense-array")))
    lines.append("sources: cycles measured (Verilator; model cyc = the cycle model); areas and "
                 "fmax measured (Yosys, OpenSTA); speedup, ideal, per area, GOPS/mm2 formula "
                 "(GOPS/mm2 = 2 x M x N x K / (cycles / own fmax) / area)")
    table = Table(
        title=f"HighLight 4x4 PEs x 4 multipliers vs dense-array 8x8 "
              f"({report['multipliers']['dense-array']} multipliers each), GEMM "
              f"M={gemm['M']} K={gemm['K']} N={gemm['N']}, weights HSS-pruned per pattern",
        title_justify="left", caption="\n".join(lines), caption_justify="left")
    for column in ("pattern", "density", "weights nz", "flat G:H", "highlight cyc",
                   "model cyc", "dense cyc", "speedup", "ideal", "per area", "GOPS/mm2",
                   "dense GOPS/mm2"):
        table.add_column(column, justify="left" if column == "pattern" else "right")
    for row in report["rows"]:
        table.add_row(row["pattern"], f"{row['density_bound']:.3f}",
                      f"{row['weight_density']:.3f}", row["flat_ratio"],
                      f"{row['cycles']:,}", f"{row['model_cycles']:,}",
                      f"{row['dense_cycles']:,}", f"{row['speedup']:.2f}",
                      f"{row['ideal_speedup']:.2f}", f"{row['speedup_per_area']:.2f}",
                      _opt(row.get("gops_mm2_highlight")), _opt(row.get("gops_mm2_dense")))
    console.print(table)
    console.print(f"[dim]simulated {report['simulated_cycles']:,} cycles in "
                  f"{report['simulation_seconds']} s of Verilator; every run matched golden "
                  f"and the cycle model[/dim]")
