"""``sparsegen bench highlight`` and ``sparsegen bench hss-share``: HighLight's claims on our RTL.

``highlight``: for each of the 12 patterns of the example set (rank1 {4:4,4:5,4:6,4:7} x rank0
{4:4,2:4,1:4}) on GEMM M=64, K=512, N=64 (ReLU-like activations, one dense weight matrix pruned
to each pattern with the golden HSS prune, rank 1 shared by the array's 4 columns): the cycles
of ``highlight`` (4 x 4 cells of 4 multipliers, zero-value gating on, simulated on Verilator,
checked bit-exact against golden and against the cycle model), against ``dense-array`` 8 x 8
(64 multipliers, ZVCG on, the same GEMM with the same pruned weights): speedup at equal clocks,
per area, time at each design's own fmax, energy (actions counted in the RTL run, priced by
the per-action table) and EDP. Below: the two arrays' areas per multiplier and the highlight
array's per-module breakdown; and for three pattern sets the sky130hd areas of one PE:
``hss-mux``, ``gh-flat`` (the same densities as flat G:H ratios, one Hmax:1 mux per lane) and
``dense-pe`` with as many multipliers, each split into group sequencer, muxes and the rest;
and one array cell with HighLight's selection against one with the flat selection.

``hss-share``: what the array's format constraint costs. Gaussian and Laplacian weights
(K=512, N=64, fixed seeds) pruned to every pattern of the example set with plain HSS (rank 1
per column) and with rank 1 shared by tiles of 4 and 8 columns: the retained L1 (sum of |w|)
and L2 (Euclidean norm) of each, as fractions of the unpruned tensor's.
"""

import dataclasses

import numpy as np
from amaranth import signed
from amaranth.back import verilog
from amaranth.lib import data
from rich import box
from rich.table import Table

from ..hw.highlight import HighLight, HighLightConfig, pattern_text
from ..hw.hss import (
    DEFAULT_PATTERNS,
    GHFlatConfig,
    HSSMuxConfig,
    flat_ratios,
    flat_step_layout,
    parse_pattern_set,
)
from ..hw.pe import DensePEConfig
from ..hw.s2ta import DenseArrayConfig
from ..hw.systolic import CellKind, SystolicCell
from ..sim.golden import hss as ghss
from .bench_common import at_fmax
from .generate import generate
from .registry import get_design
from .synth import synthesize

__all__ = ["run", "print_table", "GEMM_SHAPE", "PATTERN_SETS", "area_points", "share_cost",
           "print_share_cost"]

GEMM_SHAPE = (64, 512, 64)

#: The pattern sets of the PE area comparison: the example set (smallest rank-0 G0 = 1), the
#: same rank-1 options with rank-0 {4:4, 2:4} (smallest G0 = 2), and an 8-lane set with H0 = 8
#: (rank 0 {8:8, 4:8}, smallest G0 = 4).
PATTERN_SETS = (DEFAULT_PATTERNS, "4:4,4:5,4:6,4:7 x 4:4,2:4", "4:4,4:6,4:8 x 8:8,4:8")

#: Where each column's figures come from (the README's vocabulary): ``measured`` on the RTL
#: (Verilator runs, Yosys, OpenSTA), ``model`` from an RTL-validated model, ``formula`` derived.
SOURCES = {
    "cycles": "measured", "model_cycles": "model", "dense_cycles": "measured",
    "weight_density": "formula", "density_bound": "formula", "speedup": "formula",
    "ideal_speedup": "formula", "speedup_per_area": "formula", "time_us": "formula",
    "gops_mm2": "formula", "energy_pj": "model", "edp": "formula", "edp_gain": "formula",
    "gated_fraction": "measured", "area_um2": "measured", "fmax_mhz": "measured",
    "area_per_multiplier": "formula", "vs_gh_flat": "formula",
}


def area_points() -> list[tuple[str, str, str, object]]:
    """(pattern set, label, design, config) of the PEs whose areas the benchmark compares:
    per set ``hss-mux``, ``gh-flat`` of the same densities and ``dense-pe`` with as many
    multipliers (L = the set's largest G0)."""
    points = []
    for patterns in PATTERN_SETS:
        hss = HSSMuxConfig(patterns=patterns)
        points += [
            (patterns, "hss-mux", "hss-mux", hss),
            (patterns, "gh-flat", "gh-flat", GHFlatConfig(ratios=flat_ratios(patterns),
                                                          lanes=hss.lanes)),
            (patterns, "dense-pe", "dense-pe", DensePEConfig(block_size=hss.lanes)),
        ]
    return points


def _part(result, top, suffix) -> float:
    mod = result.modules.get(f"{top}.{suffix}")
    return 0.0 if mod is None else mod["area_um2"] * mod.get("instances", 1)


def _areas(tech, progress):
    rows = []
    for patterns, label, name, config in area_points():
        if progress:
            progress(f"synthesizing {label} ({patterns}) for {tech}")
        generated = generate(get_design(name), config)
        result = synthesize(generated.verilog, generated.top, tech)
        top = generated.top
        rows.append({"patterns": patterns, "label": label, "design": name,
                     "config": config.as_dict(), "area_um2": result.area_um2,
                     "cells": result.cells, "multipliers": config.multipliers
                     if hasattr(config, "multipliers") else config.lanes,
                     "sequencer_um2": _part(result, top, "seq"),
                     "mux_um2": _part(result, top, "pe.mux"),
                     "fmax_mhz": result.fmax_mhz, "yosys_version": result.yosys_version})
    by_set = {}
    for row in rows:
        by_set.setdefault(row["patterns"], {})[row["label"]] = row
    for group in by_set.values():
        flat = group["gh-flat"]
        for row in group.values():
            row["vs_gh_flat"] = row["area_um2"] / flat["area_um2"]
            row["mux_vs_gh_flat"] = (row["mux_um2"] / flat["mux_um2"]
                                     if flat["mux_um2"] and row["mux_um2"] else None)
    return rows


def _flat_kind(patterns: str) -> CellKind:
    """An array cell for the flat strawman: the row token is the whole window (Hmax values),
    each lane one Hmax:1 mux (:class:`~sparsegen.hw.hss.FlatMux`'s selection)."""
    cfg = GHFlatConfig(ratios=flat_ratios(patterns), lanes=HSSMuxConfig(patterns=patterns).lanes)
    return CellKind("flat-lanes", data.ArrayLayout(signed(cfg.data_width), cfg.window),
                    flat_step_layout(cfg), cfg.lanes,
                    lambda a, w: [(a[w.offset[j]], w.value[j]) for j in range(cfg.lanes)])


def _cell_areas(tech, progress):
    """Per pattern set, the area of one array cell (ZVCG, 8-bit operands, 32-bit sums) with
    HighLight's selection (the step's blocks as row token, H0:1 lane muxes; rank 1 is picked at
    the array edge) and with the flat one (the whole window as row token, Hmax:1 lane muxes),
    each synthesized alone."""
    rows = []
    for patterns in PATTERN_SETS:
        row = {"patterns": patterns}
        kinds = (("hss", HighLight.cell_kind(HighLightConfig(patterns=patterns))),
                 ("flat", _flat_kind(patterns)))
        for label, kind in kinds:
            if progress:
                progress(f"synthesizing a {label} array cell ({patterns}) for {tech}")
            top = f"{label}_cell"
            text = verilog.convert(SystolicCell(kind, 8, 32, zvcg=True), name=top,
                                   emit_src=False, strip_internal_attrs=True)
            row[f"{label}_um2"] = synthesize(text, top, tech).area_um2
        row["hss_vs_flat"] = row["hss_um2"] / row["flat_um2"]
        rows.append(row)
    return rows


def _workload(seed: int = 5):
    m, k, n = GEMM_SHAPE
    rng = np.random.default_rng(seed)
    a = np.maximum(np.clip(np.round(rng.normal(0, 40, (m, k))), -128, 127), 0).astype(np.int64)
    w = np.clip(np.round(rng.normal(0, 30, (k, n))), -128, 127).astype(np.int64)
    return a, w


def _checked(design, config, a, w, tech, what):
    result = design.host.run(design, config, a, w, tech=tech)
    if not result.matches_golden or result.cycles != result.model_cycles:
        raise RuntimeError(f"{what}: golden match {result.matches_golden}, cycles "
                           f"{result.cycles} vs model {result.model_cycles}")
    return result


def _energy_fields(result) -> dict:
    energy = result.energy
    counts = (energy.counts or {}) if energy else {}
    muls = counts.get("mul", 0) + counts.get("mul_gated", 0)
    return {"energy_pj": energy.energy_pj if energy else None,
            "edp": energy.edp if energy else None,
            "energy_breakdown": energy.energy_breakdown if energy else None,
            "energy_note": energy.reason if energy else None,
            "gated_multiplies": counts.get("mul_gated"),
            "gated_fraction": counts["mul_gated"] / muls if muls else None}


def _synth(name, config, tech):
    generated = generate(get_design(name), config)
    return generated, synthesize(generated.verilog, generated.top, tech)


def run(tech: str = "sky130hd", progress=None) -> dict:
    """Cycles, time, energy and EDP of every pattern against the dense array, the arrays'
    areas, and the PE areas of the three pattern sets (module docs)."""
    a, w = _workload()
    dense_design, highlight = get_design("dense-array"), get_design("highlight")
    m, k, n = GEMM_SHAPE
    dense_cfg = DenseArrayConfig(rows=8, cols=8, zvcg=True)
    base = HighLightConfig(rows=4, cols=4)
    arrays, fmax, modules = {}, {}, {}
    for name, config in (("dense-array", dense_cfg), ("highlight", base)):
        if progress:
            progress(f"synthesizing the {name} array for {tech}")
        generated, synthesized = _synth(name, config, tech)
        arrays[name], fmax[name] = synthesized.area_um2, synthesized.fmax_mhz
        modules[name] = {key.split(".", 1)[1]: round(mod["area_um2"]
                                                     * mod.get("instances", 1), 1)
                         for key, mod in synthesized.modules.items() if "." in key}
    rows = []
    sim_cycles = sim_seconds = 0
    macs = m * k * n
    for pattern in base.pattern_set:
        text = pattern_text(pattern)
        config = dataclasses.replace(base, pattern=text)
        pruned = ghss.prune_weights(w, text, share=base.cols)
        if progress:
            progress(f"simulating dense-array 8x8 and highlight 4x4, pattern {text}")
        dense = _checked(dense_design, dense_cfg, a, pruned, tech, f"dense-array {text}")
        result = _checked(highlight, config, a, pruned, tech, f"highlight {text}")
        g1, h1, g0, h0 = pattern
        row = {
            "pattern": text, "density_bound": g1 * g0 / (h1 * h0),
            "weight_density": float(np.count_nonzero(pruned) / pruned.size),
            "flat_ratio": f"{g1 * g0}:{h1 * h0}",
            "cycles": result.cycles, "model_cycles": result.model_cycles,
            "dense_cycles": dense.cycles, "speedup": dense.cycles / result.cycles,
            "ideal_speedup": highlight.host.ideal_speedup(config),
            "matches_golden": result.matches_golden,
            "speedup_per_area": dense.cycles / result.cycles * arrays["dense-array"]
            / arrays["highlight"],
            "highlight": _energy_fields(result), "dense": _energy_fields(dense),
        }
        for key, name, cycles in (("highlight", "highlight", result.cycles),
                                  ("dense", "dense-array", dense.cycles)):
            row[key]["time_us"], row[key]["gops_mm2"] = at_fmax(macs, cycles, fmax[name],
                                                                arrays[name])
            row[key]["fmax_mhz"] = fmax[name]
        hl_edp, dense_edp = row["highlight"]["edp"], row["dense"]["edp"]
        row["edp_gain"] = dense_edp / hl_edp if hl_edp and dense_edp else None
        hl_e, dense_e = row["highlight"]["energy_pj"], row["dense"]["energy_pj"]
        row["energy_gain"] = dense_e / hl_e if hl_e and dense_e else None
        rows.append(row)
        for run_result in (dense, result):
            sim_cycles += run_result.cycles
            sim_seconds += run_result.sim_seconds
    gains = [row["edp_gain"] for row in rows if row["edp_gain"]]
    areas = _areas(tech, progress)
    per_mult = {name: arrays[name] / cfg.multipliers
                for name, cfg in (("dense-array", dense_cfg), ("highlight", base))}
    return {"array_areas_um2": arrays, "fmax_mhz": fmax, "tech": tech,
            "array_modules_um2": modules, "area_per_multiplier": per_mult,
            "area_per_multiplier_ratio": per_mult["highlight"] / per_mult["dense-array"],
            "gemm": dict(zip("MKN", GEMM_SHAPE)),
            "highlight": base.as_dict(), "dense_array": dense_cfg.as_dict(),
            "multipliers": {"highlight": base.multipliers, "dense-array": dense_cfg.multipliers},
            "rows": rows, "edp_gain_geomean": float(np.exp(np.mean(np.log(gains))))
            if gains else None, "areas": areas, "cells": _cell_areas(tech, progress),
            "yosys_version": areas[0]["yosys_version"],
            "sources": SOURCES, "simulated_cycles": sim_cycles,
            "simulation_seconds": round(sim_seconds, 2)}


def _opt(value, fmt="{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def print_table(console, report):
    gemm = report["gemm"]
    arrays, fmax = report["array_areas_um2"], report.get("fmax_mhz") or {}
    table = Table(
        title=f"HighLight 4x4 PEs x 4 multipliers (ZVCG) vs dense-array 8x8 (ZVCG), "
              f"{report['multipliers']['dense-array']} multipliers each, GEMM M={gemm['M']} "
              f"K={gemm['K']} N={gemm['N']}, weights HSS-pruned per pattern (rank 1 shared by "
              f"4 columns), both arrays on the same weights, {report['tech']}",
        title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0),
        caption="sources: cyc measured (Verilator, = golden and the cycle model: model cyc); "
                "gated measured (RTL probes: gated / all lane multiplies); MHz measured "
                "(OpenSTA fmax, logic only); energy model "
                "(actions counted in the RTL run x the per-action table, plus leakage); "
                "density, speedup, ideal, per area, time, EDP and gains formula. speedup = "
                "dense cyc / cyc (equal clocks); per area = speedup x dense area / highlight "
                "area; time = cycles / own fmax; EDP = energy x time; gain = dense / highlight",
        caption_justify="left")
    columns = [("pattern", "left"), ("density", "formula"), ("cyc", "measured"),
               ("model cyc", "model"), ("dense cyc", "measured"), ("speedup", "formula"),
               ("ideal", "formula"), ("per area", "formula"), ("MHz", "measured"),
               ("dense MHz", "measured"), ("time us", "formula"),
               ("dense us", "formula"), ("gated", "measured"), ("energy uJ", "model"),
               ("dense uJ", "model"), ("E gain", "formula"), ("EDP gain", "formula")]
    for column, _ in columns:
        table.add_column(column, justify="left" if column == "pattern" else "right",
                         no_wrap=True)
    for row in report["rows"]:
        hl, dense = row["highlight"], row["dense"]
        table.add_row(row["pattern"], f"{row['density_bound']:.3f}", f"{row['cycles']:,}",
                      f"{row['model_cycles']:,}", f"{row['dense_cycles']:,}",
                      f"{row['speedup']:.2f}", f"{row['ideal_speedup']:.2f}",
                      f"{row['speedup_per_area']:.2f}", _opt(hl["fmax_mhz"], "{:.1f}"),
                      _opt(dense["fmax_mhz"], "{:.1f}"), _opt(hl["time_us"], "{:.1f}"),
                      _opt(dense["time_us"], "{:.1f}"),
                      _opt(hl["gated_fraction"], "{:.0%}"),
                      _opt(hl["energy_pj"] and hl["energy_pj"] / 1e6),
                      _opt(dense["energy_pj"] and dense["energy_pj"] / 1e6),
                      _opt(row["energy_gain"]), _opt(row["edp_gain"]))
    console.print(table)
    per = report["area_per_multiplier"]
    console.print(
        f"arrays (measured: Yosys area, OpenSTA fmax, logic only): highlight 4x4 "
        f"{arrays['highlight']:,.0f} um^2 at {_opt(fmax.get('highlight'), '{:.1f}')} MHz, "
        f"dense-array 8x8 {arrays['dense-array']:,.0f} um^2 at "
        f"{_opt(fmax.get('dense-array'), '{:.1f}')} MHz; area per multiplier "
        f"{per['highlight']:,.0f} vs {per['dense-array']:,.0f} um^2 = "
        f"{report['area_per_multiplier_ratio']:.3f}x (formula); EDP gain geomean over the 12 "
        f"patterns {_opt(report.get('edp_gain_geomean'))} (formula)")
    mods = report["array_modules_um2"]["highlight"]
    console.print("highlight modules (measured, um^2): " + ", ".join(
        f"{name} {area:,.0f}" for name, area in mods.items()))
    _print_pe_areas(console, report)
    console.print(f"[dim]simulated {report['simulated_cycles']:,} cycles in "
                  f"{report['simulation_seconds']} s of Verilator; every run matched golden "
                  f"and the cycle model[/dim]")


def _print_pe_areas(console, report):
    table = Table(title=f"PE areas per pattern set ({report['tech']}, "
                        f"{report['yosys_version'].split(' (')[0]}): hss-mux vs gh-flat (same "
                        f"densities, one Hmax:1 mux per lane) vs dense-pe (same multipliers)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1, 0, 0),
                  caption="sources: area, seq (group sequencer), mux (the PE's operand "
                          "selection) and fmax measured (Yosys, OpenSTA); rest = area - seq - "
                          "mux and the ratios formula", caption_justify="left")
    for column in ("pattern set", "PE", "mults", "area um2", "seq", "mux", "rest",
                   "vs gh-flat", "mux vs flat", "fmax MHz"):
        table.add_column(column, justify="left" if column in ("pattern set", "PE") else "right",
                         no_wrap=True)
    previous = None
    for row in report["areas"]:
        if previous is not None and row["patterns"] != previous:
            table.add_section()
        rest = row["area_um2"] - row["sequencer_um2"] - row["mux_um2"]
        table.add_row(row["patterns"] if row["patterns"] != previous else "", row["label"],
                      str(row["multipliers"]), f"{row['area_um2']:,.0f}",
                      f"{row['sequencer_um2']:,.0f}", f"{row['mux_um2']:,.0f}",
                      f"{rest:,.0f}", f"{row['vs_gh_flat']:.2f}",
                      _opt(row.get("mux_vs_gh_flat")), _opt(row.get("fmax_mhz"), "{:.1f}"))
        previous = row["patterns"]
    console.print(table)
    rank1 = report["array_modules_um2"]["highlight"].get("rank1")
    cells = report.get("cells") or []
    if cells:
        console.print("array cell, HSS (step's blocks, H0:1 lane muxes) vs flat (whole window, "
                      "Hmax:1 lane muxes), ZVCG, each synthesized alone (measured; ratio "
                      "formula): " + "; ".join(
                          f"{c['patterns']}: {c['hss_um2']:,.0f} vs {c['flat_um2']:,.0f} um^2 "
                          f"= {c['hss_vs_flat']:.2f}x" for c in cells)
                      + (f". HSS adds the edge's rank-1 muxes: {rank1:,.0f} um^2 in the 4x4 "
                         f"highlight array (default set)" if rank1 else ""))


# -- the cost of sharing rank 1 ----------------------------------------------------------------

SHARE_SHAPE = (512, 64)
SHARES = (1, 4, 8)


def _distributions(seed: int = 11) -> dict[str, np.ndarray]:
    """Gaussian and Laplacian W[K, N], scaled to integers (2**12 per unit: the prune compares
    magnitudes, so the scale only sets the resolution)."""
    rng = np.random.default_rng(seed)
    scale = 2 ** 12
    return {"gaussian": np.round(rng.normal(0, 1, SHARE_SHAPE) * scale).astype(np.int64),
            "laplacian": np.round(rng.laplace(0, 1, SHARE_SHAPE) * scale).astype(np.int64)}


def share_cost(tech: str = "sky130hd", progress=None) -> dict:
    """Retained L1 and L2 of plain vs tile-shared rank-1 HSS pruning (module docs); ``tech``
    is unused (no synthesis)."""
    rank1, rank0 = parse_pattern_set(DEFAULT_PATTERNS)
    rows = []
    for dist, w in _distributions().items():
        l1, l2 = np.abs(w).sum(), np.sqrt((w.astype(np.float64) ** 2).sum())
        for g1, h1 in rank1:
            for g0, h0 in rank0:
                text = f"{g1}:{h1},{g0}:{h0}"
                row = {"distribution": dist, "pattern": text}
                for share in SHARES:
                    kept = ghss.prune_weights(w, text, share=share)
                    ghss.check_weights(kept, text, share=share)
                    row[f"l1_share{share}"] = float(np.abs(kept).sum() / l1)
                    row[f"l2_share{share}"] = float(
                        np.sqrt((kept.astype(np.float64) ** 2).sum()) / l2)
                rows.append(row)
    return {"shape": dict(zip("KN", SHARE_SHAPE)), "shares": list(SHARES), "rows": rows,
            "sources": {"l1": "measured (golden prune of the stated tensors)",
                        "l2": "measured (golden prune of the stated tensors)",
                        "loss": "formula"}}


def print_share_cost(console, report):
    shares = report["shares"]
    table = Table(title=f"Retained weight magnitude, HSS prune with rank 1 per column (share 1) "
                        f"vs shared by tiles of {' / '.join(map(str, shares[1:]))} columns, "
                        f"W[{report['shape']['K']}, {report['shape']['N']}]",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1, 0, 0),
                  caption="L1 = sum |kept| / sum |w|, L2 = ||kept|| / ||w|| (measured on the "
                          "golden prune); loss = 1 - shared / share-1 (formula)",
                  caption_justify="left")
    table.add_column("weights", no_wrap=True)
    table.add_column("pattern", no_wrap=True)
    for kind in ("L1", "L2"):
        for share in shares:
            table.add_column(f"{kind} s{share}", justify="right", no_wrap=True)
        for share in shares[1:]:
            table.add_column(f"{kind} loss s{share}", justify="right", no_wrap=True)
    previous = None
    for row in report["rows"]:
        if previous is not None and row["distribution"] != previous:
            table.add_section()
        cells = []
        for kind in ("l1", "l2"):
            cells += [f"{row[f'{kind}_share{s}']:.3f}" for s in shares]
            cells += [f"{1 - row[f'{kind}_share{s}'] / row[f'{kind}_share1']:.1%}"
                      for s in shares[1:]]
        table.add_row(row["distribution"] if row["distribution"] != previous else "",
                      row["pattern"], *cells)
        previous = row["distribution"]
    console.print(table)
