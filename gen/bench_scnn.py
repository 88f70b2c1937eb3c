"""Benchmark ``scnn``: SCNN against a dense array with the same number of multipliers.

One conv layer (C=32, K=32, 14x14, 3x3, pad 1), weight and activation densities swept
together over {1.0, 0.8, 0.5, 0.3, 0.1}:

* a 2 x 2 array of F=I=4 PEs (64 multipliers) simulated on its generated Verilog (Verilator,
  stream player), with the cycle model alongside; the baseline is ``dense-array`` 8 x 8
  (64 multipliers, ZVCG) running the im2col GEMM of the same operands on its RTL at every
  density (its cycles do not depend on the data, its energy does: ZVCG gates zero operands);
* the paper's design point, 8 x 8 PEs of F=I=4 (1024 multipliers), through the cycle model,
  against ``dense_cycles`` of a 32 x 32 dense array, on the published conv layers of
  :data:`PAPER_LAYERS` at the densities of :data:`PAPER_POINTS` (w = a from 1.0 to 0.1 and the
  pruned point w 0.35 / a 0.45; operands from ``tensors`` of sim/workloads.py), each point
  in the output-channel column grouping with the fewest model cycles
  (:func:`~..sim.scnn.plan_groups`: 1, 2, 4 or 8 groups of PE columns, each tiling the whole
  plane; the ``grid`` column), with the cycle breakdown (compute, conflict stalls, load,
  halo, drain: the model's timeline, :func:`_timeline`), energy and per-area columns and
  issue #12's targets. The model results are cached by content
  (:func:`model_point`, ``$SPARSEGEN_CACHE_DIR/bench-scnn``). Energy of the 8x8 point: action
  counts from the model run (pairs, live products, ACT words, weight pushes: exact) and the
  accumulator banks' walk accesses at the 2x2 RTL run's rate per accumulator (density 1.0),
  priced by the per-action table with the 2x2 array's synthesis x 16; the same estimator on
  the 2x2 runs is printed against their RTL-counted energy. The dense baseline gets the same
  on-chip buffer capacity as SCNN's memories (:func:`dense_buffers`), priced by gen/sram.py
  in area, access energy and leakage;
* the sky130hd area split of one PE from the per-module synthesis breakdown, synthesized in
  exactly the configuration simulated (:data:`PE_PARAMS`): multipliers, crossbar (product
  register, arbitration, scatter), accumulator banks, buffers in flip-flops (weight FIFO,
  activation row-end bits, small memories), SRAM (memories of at least
  ``hw.sram.MACRO_MIN_BITS`` bits, declared as macros: the two activation RAMs of 816 rows,
  4 banks of 204 x 92 bits each, priced by the OpenRAM-fitted model of ``gen/sram.py``) and the
  rest (decoders, halo/drain datapath, control). Logic and SRAM areas are reported apart.
"""


import functools
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
from rich import box
from rich.table import Table

from ..hw.s2ta import DenseArrayConfig
from ..hw.scnn import Cmd, Scnn, ScnnConfig, ScnnPEConfig, walk_cycles
from ..hw.sram import regfile_name
from ..sim import scnn as scnn_host
from ..sim import workloads as wl
from ..sim.cycles import dense_cycles
from ..sim.energy import scnn_layer_energy
from ..sim.golden import scnn as gs
from ..sim.layer import im2col
from ..sim.scnn import build_program, model_cycles
from ..sim.stimulus import random_operands
from .bench_common import at_fmax
from .cachefile import read_entry, write_entry
from .generate import generate
from .registry import get_design
from .sram import sram_model
from .synth import cache_root, synthesize

__all__ = ["run", "print_table", "area_split", "model_point", "LAYER", "DENSITIES",
           "PE_PARAMS", "SOURCES", "PAPER_LAYERS", "PAPER_POINTS", "TARGETS"]

LAYER = dict(c=32, k=32, h=14, w=14, r=3, s=3, pad=1)
DENSITIES = (1.0, 0.8, 0.5, 0.3, 0.1)
#: The PE of both arrays: F=I=4, A=32 banks, kc=8, tiles up to 8 x 8, 16 weight FIFO entries and
#: 816 activation rows per RAM, sized as the paper sizes its activation RAM: 1 MB for the 64 PEs
#: (a summary of the paper: study.space, "SCNN: An accelerator for compressed-sparse
#: convolutional neural networks"), 16 KB per PE, 8 KB each for the IARAM and the OARAM, which in
#: the paper's format (a 16-bit value and a 4-bit zero run per non-zero) hold 3,276 non-zeros:
#: 819 rows of i = 4, rounded down to a multiple of the 4 banks. With 512 rows VGG-16 conv5_2's
#: 512 channels overflowed a PE at every grouping but the 2x2 tiles and were reloaded in chunks
#: (8x4 x2 at w 0.35 / a 0.45: 1.59x the dense array; with 816 rows 2.96x, cycle model). The
#: FIFO decouples the PEs, which take the broadcast weights in lock step but spend different
#: numbers of cycles on a channel (their tiles hold different numbers of non-zeros): at w 0.35 /
#: a 0.45 on GoogLeNet 3a (4x4 tiles) the 8x8 point runs 2.63x the dense array with 4 entries,
#: 2.88x with 8, 3.00x with 16 and 3.07x with the paper's 50 (cycle model, 512 rows); 16 takes
#: most of it for a third of the 50 entries' flip-flops.
PE_PARAMS = dict(f=4, i=4, banks=32, bank_depth=32, kc=8, max_tile_w=8, max_tile_h=8,
                 max_r=3, max_s=3, act_depth=816, wt_depth=16, data_width=16, acc_width=24)
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
#: What the bench can say about the paper's own PE area proportions.
PAPER_AREA_NOTE = (
    "paper's PE area proportions: not compared (SCNN's per-PE area table could not be sourced: "
    "searches of the stored pages and docs for an SCNN PE area breakdown found the abstract "
    "and summaries only: 8x8 PEs of 4x4 multipliers, 32 accumulator banks, 1 MB of activation "
    "RAM)")
#: The sources of the 8x8 point's figures (``report["paper"]`` rows).
PAPER_SOURCES = {
    "cycles": "model", "conflict_stalls": "model", "dense_cycles": "formula",
    "speedup": "formula", "utilization": "formula", "breakdown.conflicts": "model",
    "breakdown.compute": "model", "breakdown.load": "model", "breakdown.halo": "model",
    "breakdown.drain": "model", "energy_pj": "model", "dense_energy_pj": "model",
    "energy_gain": "formula", "gops_mm2": "formula", "dense_gops_mm2": "formula",
    "area_um2": "formula", "dense_area_um2": "formula", "fmax_mhz": "measured",
    "macs_nonzero": "formula", "pairs_per_second": "measured", "pair_fill": "formula",
    "plane_fill": "formula", "chained_speedup": "formula", "pair_bound": "formula",
    "groups": "model", "grid": "model", "tried": "model",
}
_CATEGORIES = (("multipliers", "multipliers"), ("crossbar", "crossbar"),
               ("accumulators", "accumulator banks"), ("act_buffer", "buffers"),
               ("weight_fifo", "buffers"), ("queue", "buffers"))


#: The paper's networks (constraints/workloads.toml names each shape's source): AlexNet conv3
#: (13x13, 256->384), GoogLeNet inception (4a) 3x3 (14x14, 96->208) and (3a) 3x3 (28x28,
#: 96->128), VGG-16 conv5_2 (14x14, 512->512). Stride-1 3x3 layers whose activations fit a PE's
#: 816 activation rows in one chunk at 8x8 PEs ungrouped; the 28x28 one gives every PE a 4x4
#: tile, the others 2x2. Left out: the 5x5 ones (the PE is built for 3x3: ``max_r``), the
#: 56x56+ ones (VGG conv1-3: several spatial passes, minutes of model per density) and the 7x7
#: ones (most of the 8x8 PEs idle).
PAPER_LAYERS = ("alexnet.conv3", "googlenet.inception4a_3x3", "googlenet.inception3a_3x3",
                "vgg16.conv5_2")
#: (weight density, activation density): w = a from 1.0 to 0.1, and the typical pruned point
#: (SCNN: weights about a third, activations under a half after ReLU).
PAPER_POINTS = ((1.0, 1.0), (0.8, 0.8), (0.6, 0.6), (0.4, 0.4), (0.2, 0.2), (0.1, 0.1),
                (0.35, 0.45))
#: Issue #12's targets for the 8x8 point against a 32x32 dense array: speedup at full density,
#: at the pruned point; the paper's energy gain at the pruned point (for comparison).
TARGETS = {"full_density": 1.0, "pruned": (0.35, 0.45), "full_speedup": 0.75,
           "pruned_speedup": 2.5, "paper_energy_gain": 2.3}
SEED = 2017
#: What a cached 8x8 point depends on besides its inputs: the model's code, and the version of
#: :func:`model_point`'s own figures (bump it when they change).
_CODE = ("sim/scnn.py", "hw/scnn.py", "sim/golden/scnn.py")
_POINT_VERSION = 7


@functools.cache
def _code_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(str(_POINT_VERSION).encode())
    for name in _CODE:
        h.update((root / name).read_bytes())
    return h.hexdigest()


def _counts_of(program) -> dict:
    """Action counts the model run implies (formula, exact for these): pairs (one per weight
    entry and activation row of its channel, per PE; ``pair_max`` those of the busiest PE),
    live products (non-zero weights of the entry x non-zero activations of the channel, per
    PE: every one crosses the crossbar once), activation RAM row writes (ACT words,
    :func:`~..sim.scnn.act_words`, and the rows drained into the OARAMs,
    :func:`~..sim.scnn.oaram_rows`), ACT transfers (up to one word per PE column each), weight
    entries pushed (every PE of a column group takes its group's WGT words), drained frame
    rows (``drain_row``) and own rows among them (``drain_push``), and DRAINs."""
    work = program.work
    live = wgt = 0
    npes = program.config.pe_rows * program.config.pe_cols
    pairs = np.zeros(npes, dtype=np.int64)
    rows, nz = {}, {}
    for (kind, *_), key in zip(program.words, program.blocks):
        if kind != Cmd.WGT:
            continue
        for pidx, g, ch, n in (sub for sub in key if sub is not None):
            pes = work.pes_of(g, npes)
            if (pidx, g, ch) not in rows:
                acts = [work.acts[pidx][p][ch] for p in pes]
                rows[pidx, g, ch] = np.array([len(v) for v, _ in acts], dtype=np.int64)
                nz[pidx, g, ch] = sum(int(np.count_nonzero(v)) for v, _ in acts)
            wgt += len(pes)
            pairs[pes] += rows[pidx, g, ch]
            live += int(np.count_nonzero(work.entries[g, ch][0][n])) * nz[pidx, g, ch]
    kinds = [w[0] for w in program.words]
    plan, cfg = program.plan, program.config
    return {"pair": int(pairs.sum()), "pair_max": int(pairs.max()), "mul": live,
            "grant": live,
            "act_words": scnn_host.act_words(program), "act_transfers": kinds.count(Cmd.ACT),
            "act_write": scnn_host.act_words(program) + scnn_host.oaram_rows(program),
            "wgt_push": wgt,
            # Every DRAIN's walk drains kc x (Ht+R-1) frame rows per PE, kc x Ht of them own.
            "drain_row": len(program.drains) * npes * cfg.kc * (plan.ht + plan.r - 1),
            "drain_push": len(program.drains) * npes * cfg.kc * plan.ht,
            "drains": len(program.drains)}


def model_point(config, ifmap, filters, pad: int, groups: int | str = "auto") -> dict:
    """The 8x8 point of one layer and density through the cycle model, cached by content
    (config, operands, ``groups``, the model's code): cycles and conflict stalls, the cycle
    breakdown, the action counts (:func:`_counts_of`), the model's speed, and the
    output-channel column groups it ran with (``groups``; ``"auto"``: the fastest by
    :func:`~..sim.scnn.plan_groups`, every candidate's pair bound and cycles in ``tried``)."""
    h = hashlib.sha256(json.dumps([config.as_dict(), pad, groups, _code_digest()]).encode())
    for x in (ifmap, filters):
        h.update(np.ascontiguousarray(x, dtype=np.int64).tobytes())
        h.update(str(x.shape).encode())
    path = cache_root() / "bench-scnn" / f"{h.hexdigest()}.json"
    entry = read_entry(path)
    if entry is not None:
        return entry | {"cached": True}
    start = time.perf_counter()
    if groups == "auto":
        # The candidates' programs and models are all counted as the model's time.
        built = start
        chosen = scnn_host.plan_groups(config, ifmap, filters, pad)
        program, cycles, stalls, times = (chosen[k] for k in ("program", "cycles", "stalls",
                                                              "times"))
        tried = chosen["tried"]
    else:
        program = build_program(config, ifmap, filters, pad, groups=groups)
        built = time.perf_counter()
        times = []
        cycles, stalls = model_cycles(program, times=times)
        tried = None
    modelled = time.perf_counter()
    free, _ = model_cycles(program, functools.partial(scnn_host._Crossbars, conflicts=False))
    counts = _counts_of(program)
    plan, kc = program.plan, config.kc
    parts = _timeline(program, times, cycles)
    walk = walk_cycles(kc, plan.ht, plan.r)
    # The walk's drain is one cycle per frame row (kc x (Ht+R-1)); the rest is halo exchange.
    drain_rows = kc * (plan.ht + plan.r - 1)
    halo = round(parts["walk"] * (walk - drain_rows) / walk)
    entry = {
        "cycles": cycles, "conflict_stalls": stalls, "conflict_free_cycles": free,
        "breakdown": {"compute": parts["compute"] - (cycles - free),
                      "conflicts": cycles - free, "load": parts["load"], "halo": halo,
                      "drain": parts["walk"] - halo},
        "counts": counts, "tile": [plan.ht, plan.wt], "passes": len(plan.passes),
        "groups": program.groups, "grid": [config.pe_rows, program.group_cols],
        "tried": tried,
        "frame": kc * (plan.ht + plan.r - 1) * (plan.wt + plan.s - 1),
        "build_seconds": round(built - start, 3),
        "model_seconds": round(modelled - built, 3),
        "pairs_per_second": round(counts["pair"] / max(modelled - built, 1e-9)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_entry(path, entry)
    return entry | {"cached": False}


def _timeline(program, times: list, cycles: int) -> dict:
    """Where the model's cycles go, from the cycle each word was taken: the gap before a word
    is ``load`` (ACT, CONFIG), ``compute`` (WGT: the FIFO waits for the multipliers; DRAIN:
    the crossbars empty) or ``walk`` (a DRAIN held by the previous group's row walk: taken
    exactly when that walk ends; and the last walk with the drain latency after the last
    word)."""
    cfg, plan = program.config, program.plan
    walk = walk_cycles(cfg.kc, plan.ht, plan.r)
    parts = {"load": 0, "compute": 0, "walk": 0}
    before, walk_free = -1, None
    for (kind, *_), t in zip(program.words, times):
        gap = t - before
        if kind in (Cmd.ACT, Cmd.CONFIG):
            parts["load"] += gap
        elif kind == Cmd.DRAIN:
            held = walk_free is not None and t == walk_free and t > before + 1
            parts["walk" if held else "compute"] += gap
            walk_free = t + walk + 1
        else:
            parts["compute"] += gap
        before = t
    parts["walk"] += cycles - 1 - before
    return parts


def _bank_rates(actions: dict, counts: dict, pes: int, frame: int) -> dict:
    """Accumulator bank reads and writes beyond one per grant (the row walk: halo exchange,
    drain, clear), per DRAIN, PE and frame accumulator, from an RTL run's counts."""
    per = counts["drains"] * pes * frame
    return {name: (actions[name] - actions["grant"]) / per
            for name in ("bank_read", "bank_write")}


def _model_probes(counts: dict, rates: dict, pes: int, frame: int) -> dict:
    """The probe counts a run would give, from the model's counts (:func:`_counts_of`) and the
    bank rates of the RTL run (:func:`_bank_rates`)."""
    walk = counts["drains"] * pes * frame
    return {**{k: counts[k] for k in ("pair", "mul", "grant", "act_write", "wgt_push",
                                      "drain_row", "drain_push")},
            **{name: counts["grant"] + rate * walk for name, rate in rates.items()}}


def dense_buffers(config: ScnnConfig) -> dict:
    """The fair dense baseline's on-chip buffers (rule): the same capacity as the SCNN
    array's memories (``Scnn.memories``), in 32-bit words priced by the SRAM model
    (gen/sram.py): an input activation buffer holding all PEs' input activation RAMs, an
    output buffer holding their output RAMs (when the PE has them: ``act_banks`` counts both
    RAMs' banks), and a weight buffer holding all PEs' weight FIFOs."""
    mem = Scnn.memories(config)
    pes = config.pe_rows * config.pe_cols
    banks = mem.get("act_banks")
    act_bits = pes * mem["act"][0] * mem["act"][1] * (banks // 2 if banks else 1)
    wgt_bits = pes * config.wt_depth * mem["wgt_entry_bits"]
    model = sram_model()
    out = {}
    for name, bits in (("act_in", act_bits), ("act_out", act_bits if banks else 0),
                       ("weights", wgt_bits)):
        if not bits:
            continue
        est = model.estimate(math.ceil(bits / 32), 32)
        out[name] = {"bits": bits, "area_um2": est.area_um2, "access_pj": est.read_pj,
                     "leakage_w": est.leakage_w}
    return out


def _dense_buffer_energy(buffers: dict, m: int, k: int, n: int, rows: int, cols: int,
                         time_us: float | None) -> float:
    """Buffer energy of the dense array on O[M,N] = A[M,K] W[K,N] (formula): A read once per
    column tile, W once per row tile, O written once, 16-bit values in 32-bit words, plus the
    buffers' leakage over the layer's time."""
    words = {"act_in": math.ceil(m * k * math.ceil(n / cols) / 2),
             "weights": math.ceil(k * n * math.ceil(m / rows) / 2),
             "act_out": math.ceil(m * n / 2)}
    access = sum(words[name] * buffers[name]["access_pj"] for name in words
                 if name in buffers)
    leak = sum(b["leakage_w"] for b in buffers.values()) * (time_us or 0.0) * 1e6
    return access + leak


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
    # The flip-flop memories are shared modules named by their size (hw/sram.py), not by
    # where they sit: an accumulator bank's size or an activation RAM bank's.
    mem = Scnn.memories(config)
    regfiles = {regfile_name(*mem["bank"]): "accumulator banks",
                regfile_name(*mem["act"]): "buffers"}
    for name, module in result.modules.items():
        if "macro" in module:
            split["SRAM (macros)"] += module["macro"]["sram_area_um2"] * module["instances"]
            continue
        area = (module["area_um2"] or 0.0) * module["instances"]
        label = next((lab for key, lab in _CATEGORIES if name.endswith("." + key)
                      or f".{key}." in name), regfiles.get(name.rpartition(".")[2], "other"))
        split[label] += area
    return {"total_um2": result.area_um2 + result.sram_area_um2,
            "logic_um2": result.area_um2, "sram_um2": result.sram_area_um2,
            "split_um2": split, "cells": result.cells,
            "critical_path_ns": result.critical_path_ns, "fmax_mhz": result.fmax_mhz,
            "yosys_version": result.yosys_version, "seconds": result.seconds}


def run(tech: str = "sky130hd", progress=None, *, layers=PAPER_LAYERS, points=PAPER_POINTS,
        rtl: bool = True) -> dict:
    """Cycles, speedups, utilization, stalls, energy and the PE area split (see the module
    docs); ``layers`` and ``points`` the 8x8 point's table; ``rtl=False`` skips the 2x2 RTL
    runs and the syntheses (no energy, area or per-area figures)."""
    say = progress or (lambda message: None)
    ly = LAYER
    small = ScnnConfig(pe_rows=2, pe_cols=2, **PE_PARAMS)
    paper = ScnnConfig(pe_rows=8, pe_cols=8, **PE_PARAMS)
    dense_small = DenseArrayConfig(rows=8, cols=8, data_width=16, acc_width=24, zvcg=True)
    dense_paper = DenseArrayConfig(rows=32, cols=32, data_width=16, acc_width=24, zvcg=True)
    scnn_design = get_design("scnn")

    dense_design = get_design("dense-array")
    rows = []
    for n, density in enumerate(DENSITIES if rtl else ()):
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
            "energy_breakdown": energy.energy_breakdown, "actions": result.actions,
            "dense_macs": result.macs_total,
            "nonzero_fraction": result.macs_nonzero / result.macs_total,
        })
        if e is not None:
            # The 8x8 energy estimator (model counts, bank rates of the density-1.0 run) on
            # this very run: its ratio to the RTL-counted energy.
            program = build_program(small, ifmap, filters, ly["pad"])
            point = _counts_of(program)
            frame = small.kc * (program.plan.ht + program.plan.r - 1) * (
                program.plan.wt + program.plan.s - 1)
            if density == DENSITIES[0]:
                rates = _bank_rates(result.actions, point, small.pe_rows * small.pe_cols,
                                    frame)
            gen_small = generate(scnn_design, small)
            estimate = scnn_layer_energy(
                gen_small.verilog, gen_small.top, small, Scnn.memories(small),
                _model_probes(point, rates, small.pe_rows * small.pe_cols, frame),
                result.cycles, tech)
            rows[-1]["model_energy_pj"] = estimate.energy_pj
            rows[-1]["model_energy_ratio"] = estimate.energy_pj / e

    area = dense_area = None
    if rtl:
        say(f"synthesizing scnn-pe for {tech}")
        area = area_split(tech, small.pe)
        say(f"synthesizing dense-array 8x8 for {tech}")
        dense_gen = generate(get_design("dense-array"), dense_small)
        dense_area = synthesize(dense_gen.verilog, dense_gen.top, tech).area_um2
    speedups = [(r["density"], r["speedup"]) for r in rows]
    paper_rows = _paper_rows(say, tech, paper, dense_paper, layers, points, rows,
                             rates if rows and rows[0].get("model_energy_pj") else None,
                             dense_area)
    return {"tech": tech, "layer": ly, "pe": small.pe.as_dict(), "rows": rows,
            "area": area, "dense_area_um2": dense_area,
            "multipliers": {"scnn 2x2": small.multipliers, "scnn 8x8": paper.multipliers},
            "sources": {**SOURCES, "paper": PAPER_SOURCES}, "paper": paper_rows,
            "targets": _targets(paper_rows),
            "dense_buffers": dense_buffers(paper),
            "break_even_density": _break_even(speedups)}


def _paper_rows(say, tech, paper, dense_paper, layers, points, rtl_rows, rates, dense_area):
    """The 8x8 point (model) against the 32x32 dense array on the paper's layers."""
    shipped = wl.load_workloads()
    buffers = dense_buffers(paper)
    scale = paper.pe_rows * paper.pe_cols // 4
    small_row = rtl_rows[0] if rtl_rows and rtl_rows[0].get("model_energy_pj") else None
    if small_row is not None:
        # Dense energy per MAC slot (RTL, dense-array 8x8 with ZVCG) against the fraction of
        # products with both operands non-zero: a line through the RTL runs.
        fit = np.polyfit([r["nonzero_fraction"] for r in rtl_rows],
                         [r["dense_energy_pj"] / r["dense_macs"] for r in rtl_rows], 1)
        gen_small = generate(get_design("scnn"), ScnnConfig(pe_rows=2, pe_cols=2, **PE_PARAMS))
    out = []
    for name in layers:
        layer = shipped[name]
        m, k, n = layer.gemm_shape
        for wd, ad in points:
            say(f"{name} w{wd} a{ad}: scnn 8x8 cycle model")
            ops = wl.tensors(layer, wd, ad, SEED, data_width=16)
            point = model_point(paper, ops.ifmap, ops.filters, layer.dims["pad"])
            dcyc = dense_cycles(dense_paper, m, k, n)
            nonzero = gs.macs_nonzero(ops.ifmap, ops.filters, layer.dims["pad"])
            load = point["breakdown"]["load"]
            # Chained: a layer of one pass and one load, ungrouped (a grouped layer's OARAMs
            # hold only its column group's channels: the next layer cannot read them).
            one_load = (point["passes"] == 1 and point["groups"] == 1
                        and load == point["counts"]["act_transfers"] + 1)
            row = {"layer": name, "w": wd, "a": ad, "cycles": point["cycles"],
                   "dense_cycles": dcyc, "speedup": dcyc / point["cycles"],
                   "chained_speedup": dcyc / (point["cycles"] - load) if one_load else None,
                   "groups": point["groups"], "grid": point["grid"], "tried": point["tried"],
                   # The most the layer can gain: a PE issues one (weight entry, activation
                   # row) pair per cycle at best, so with no conflict stall, load or walk the
                   # cycles would be the busiest PE's pairs.
                   "pair_bound": dcyc / point["counts"]["pair_max"],
                   "utilization": nonzero / (paper.multipliers * point["cycles"]),
                   "conflict_stalls": point["conflict_stalls"],
                   "breakdown": point["breakdown"], "tile": point["tile"],
                   "pair_fill": point["counts"]["mul"] / (point["counts"]["pair"] * paper.f
                                                          * paper.i),
                   # Every column group covers the plane: the positions of one group's tiles.
                   "plane_fill": m / (paper.pe_rows * point["tile"][0] * point["grid"][1]
                                      * point["tile"][1] * point["passes"]),
                   "macs": layer.macs, "macs_nonzero": nonzero,
                   "model_seconds": point["model_seconds"],
                   "build_seconds": point["build_seconds"], "pairs": point["counts"]["pair"],
                   "pairs_per_second": point["pairs_per_second"], "cached": point["cached"],
                   "energy_pj": None, "dense_energy_pj": None, "energy_gain": None,
                   "gops_mm2": None, "dense_gops_mm2": None}
            if small_row is not None:
                e = scnn_layer_energy(
                    gen_small.verilog, gen_small.top, paper, Scnn.memories(paper),
                    _model_probes(point["counts"], rates, paper.pe_rows * paper.pe_cols,
                                  point["frame"]), point["cycles"], tech, scale=scale)
                area = e.area_um2 + e.counts["sram_area_um2"]
                _, gops = at_fmax(layer.macs, point["cycles"], e.fmax_mhz, area)
                d_area = dense_area * 16 + sum(b["area_um2"] for b in buffers.values())
                d_time, d_gops = at_fmax(layer.macs, dcyc, small_row["dense_fmax_mhz"], d_area)
                d_e = (layer.macs * float(np.polyval(fit, nonzero / layer.macs))
                       + _dense_buffer_energy(buffers, m, k, n, dense_paper.rows,
                                              dense_paper.cols, d_time))
                row.update(energy_pj=e.energy_pj, dense_energy_pj=d_e,
                           energy_gain=d_e / e.energy_pj, gops_mm2=gops,
                           dense_gops_mm2=d_gops, area_um2=area, dense_area_um2=d_area,
                           fmax_mhz=e.fmax_mhz)
            out.append(row)
    return out


def _worst(rows, bound) -> dict:
    """A speedup target on its slowest layer: the speedup, met or not, the layer and its
    pair bound."""
    slowest = min(rows, key=lambda r: r["speedup"], default=None)
    if slowest is None:
        return {"value": None, "bound": bound, "met": None, "layer": None,
                "pair_bound": None}
    return {"value": slowest["speedup"], "bound": bound, "met": slowest["speedup"] >= bound,
            "layer": slowest["layer"], "pair_bound": slowest["pair_bound"]}


def _targets(paper_rows) -> dict:
    """Issue #12's targets on every layer (met when the worst layer meets it)."""
    full = [r for r in paper_rows if (r["w"], r["a"]) == (1.0, 1.0)]
    pruned = [r for r in paper_rows if (r["w"], r["a"]) == TARGETS["pruned"]]
    gains = [r["energy_gain"] for r in pruned if r["energy_gain"] is not None]
    return {
        "full_speedup": _worst(full, TARGETS["full_speedup"]),
        "pruned_speedup": _worst(pruned, TARGETS["pruned_speedup"]),
        "pruned_energy_gain": {"value": min(gains, default=None),
                               "paper": TARGETS["paper_energy_gain"]},
    }


def _break_even(points):
    """Density at which the speedup crosses 1, by linear interpolation (None if it does not).
    """
    points = sorted(points)
    for (d0, s0), (d1, s1) in zip(points, points[1:]):
        if (s0 - 1) * (s1 - 1) <= 0 and s0 != s1:
            return d0 + (1 - s0) * (d1 - d0) / (s1 - s0)
    return None


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_paper(console, report):
    """The 8x8 point's tables (one per layer), its targets and the model's speed."""
    rows = report["paper"]
    for name in dict.fromkeys(r["layer"] for r in rows):
        mine = [r for r in rows if r["layer"] == name]
        t = Table(title=f"scnn 8x8 PEs (F=I=4, 1,024 mults, cycle model) vs dense-array 32x32 "
                        f"(1,024 mults): {name}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1, 0, 0))
        for column in ("w", "a", "grid", "tile", "cycles", "dense", "speedup", "chained",
                       "bound", "util",
                       "fill",
                       "plane",
                       "compute", "confl",
                       "load", "halo", "drain", "E uJ", "dense uJ", "E gain", "GOPS/mm2",
                       "dense GOPS/mm2"):
            t.add_column(column, justify="right", no_wrap=True)
        for r in mine:
            b = r["breakdown"]
            t.add_row(f"{r['w']:.2f}", f"{r['a']:.2f}", _grid(r),
                      f"{r['tile'][0]}x{r['tile'][1]}", f"{r['cycles']:,}",
                      f"{r['dense_cycles']:,}", f"{r['speedup']:.2f}",
                      _fmt(r["chained_speedup"], ".2f"), f"{r['pair_bound']:.2f}",
                      f"{r['utilization']:.1%}",
                      f"{r['pair_fill']:.1%}",
                      f"{r['plane_fill']:.1%}", f"{b['compute']:,}", f"{b['conflicts']:,}",
                      f"{b['load']:,}", f"{b['halo']:,}", f"{b['drain']:,}",
                      _fmt(r["energy_pj"] and r["energy_pj"] / 1e6, ".2f"),
                      _fmt(r["dense_energy_pj"] and r["dense_energy_pj"] / 1e6, ".2f"),
                      _fmt(r["energy_gain"], ".2f"), _fmt(r["gops_mm2"], ".2f"),
                      _fmt(r["dense_gops_mm2"], ".2f"))
        console.print(t)
    console.print(
        "sources: grid model (the PE grid each output-channel column group tiles the plane on"
        ", x the number of groups when grouped: the fewest model cycles of 1, 2, 4 or 8 "
        "groups, sim/scnn.py plan_groups; tile = its planar tile per PE); cycles model; "
        "chained = dense / (cycles - load) (formula, ungrouped layers of one pass "
        "and one activation load: the ACT words come before any WGT word, so without them every"
        " later word is taken load cycles earlier; a chained layer's input is in the IARAMs "
        "already); bound = dense / (the busiest PE's pairs) (formula: the speedup if every PE "
        "issued a pair every cycle, with no conflict stall, load or walk); confl model (cycles "
        "- cycles of the same program with a conflict-free crossbar); compute, load, halo, "
        "drain model (the gap before each word taken: ACT and CONFIG load; WGT, and DRAIN "
        "waiting for the crossbars, compute less confl; a DRAIN held by the previous group's "
        "walk, and the last walk, halo + drain in walk_cycles' proportions); dense formula "
        "(dense_cycles); speedup, util formula; fill = live products / (pairs x F x I), plane ="
        " output positions / positions of the PEs' tiles (formula); E uJ model (action counts "
        "from the model run, bank walk accesses at the 2x2 RTL run's rate per accumulator, x "
        "the per-action table; logic priced from the 2x2 synthesis x 16); dense uJ model (dense"
        " energy per MAC of the dense-array 8x8 RTL runs, a line in the non-zero product "
        "fraction, + its buffers: formula accesses x SRAM model + leakage); GOPS/mm2 formula "
        "(dense MACs x 2 / time at each one's fmax / area; scnn: 16 x the 2x2 array's logic + "
        "SRAM; dense: 16 x the 8x8 array + its buffers)")
    bufs = report["dense_buffers"]
    console.print("dense baseline buffers (rule: the SCNN array's activation and weight "
                  "memory capacity; model areas): " + ", ".join(
                      f"{k} {v['bits'] / 8192:,.0f} KB {v['area_um2'] / 1e6:.2f} mm2"
                      for k, v in bufs.items()))
    for key, t in report["targets"].items():
        if "bound" in t:
            verdict = "-" if t["met"] is None else ("met" if t["met"] else "NOT met")
            where = (f" ({t['layer']}; its pair bound {t['pair_bound']:.2f})"
                     if t.get("layer") else "")
            console.print(f"target {key}: worst layer {_fmt(t['value'], '.2f')} (>= "
                          f"{t['bound']}) {verdict}{where}")
        else:
            console.print(f"{key}: dense energy / scnn energy {_fmt(t['value'], '.2f')} on "
                          f"the worst layer (paper: {t['paper']}, scnn {t['paper']}x less)")
    run = [r for r in rows if not r["cached"]]
    pairs = sum(r["pairs"] for r in rows)
    seconds = sum(r["model_seconds"] for r in rows)
    console.print(f"[dim]cycle model: {pairs:,} pair issues in {seconds:,.1f} s of model "
                  f"({pairs / max(seconds, 1e-9):,.0f} pairs/s; program build "
                  f"{sum(r['build_seconds'] for r in rows):,.1f} s); {len(rows) - len(run)} of "
                  f"{len(rows)} points from the cache[/dim]")


def _grid(row) -> str:
    """A point's grouping: ``8x8``, or ``8x2 x4`` (four column groups of 8 x 2 PEs)."""
    grid = f"{row['grid'][0]}x{row['grid'][1]}"
    return grid if row["groups"] == 1 else f"{grid} x{row['groups']}"


def print_table(console, report):
    if report["rows"]:
        _print_rtl(console, report)
    print_paper(console, report)


def _print_rtl(console, report):
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

    fmt = _fmt
    for r in report["rows"]:
        clocked.add_row(f"{r['density']:.1f}", fmt(r["fmax_mhz"], ".1f"),
                        fmt(r["dense_fmax_mhz"], ".1f"), fmt(r["time_us"], ",.1f"),
                        fmt(r["dense_time_us"], ",.1f"),
                        fmt(r["energy_pj"] and r["energy_pj"] / 1e6, ".2f"),
                        fmt(r["dense_energy_pj"] and r["dense_energy_pj"] / 1e6, ".2f"),
                        fmt(r["energy_gain"], ".2f"), fmt(r["edp_gain"], ".2f"),
                        fmt(r["gops_mm2"], ".2f"), fmt(r["dense_gops_mm2"], ".2f"))
    console.print(clocked)
    ratios = [(r["density"], r.get("model_energy_ratio")) for r in report["rows"]]
    if any(ratio is not None for _, ratio in ratios):
        console.print("energy estimator of the 8x8 point on these 2x2 runs (model counts, bank "
                      "walk rate of the 1.0 run; model) / RTL-counted energy (model): " + ", ".join(
                          f"w=a {d:.1f} {_fmt(ratio, '.3f')}" for d, ratio in ratios))
    area = report["area"]
    split = area["split_um2"]
    mult = split["multipliers"] or float("nan")
    pe = report["pe"]
    at = Table(title=f"scnn-pe area split ({report['tech']}, {area['yosys_version']}): the PE "
                     f"of both arrays, F=I={pe['f']}, A={pe['banks']} banks of "
                     f"{pe['bank_depth']} x {pe['acc_width']} bits, {pe['act_depth']} "
                     f"activation rows, {pe['wt_depth']} weight FIFO entries (measured: Yosys "
                     f"areas; SRAM: model)",
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
    console.print(PAPER_AREA_NOTE)
