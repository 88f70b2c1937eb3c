"""HighLight on the host: HSS group layout, GEMM tiling, cycle model and layer runs.

``sparsegen sim highlight -p pattern=4:6,2:4 --a A.npy --w W.npy`` runs :data:`HIGHLIGHT`: the
weights are checked against (or, with ``--prune``, pruned to) the active HSS pattern with
the golden functions of ``sim/golden/hss.py``, compressed, and streamed group by group through
the generated Verilog by the stream player (:mod:`.player`); the output is compared bit for bit
with ``A @ W`` (wrapped at ``acc_width``).

Tiling: output tiles of rows x cols, row-major; K is zero-padded to whole rank-1 groups of the
active pattern (H1 * H0 values); every tile streams all groups of K, one transfer per group.
The ``cols`` columns of a tile share rank-1 block lists (``share=cols``, hw/highlight.py).
"""

import math

import numpy as np

from ..hw.highlight import HighLight, HighLightConfig, pattern_text
from . import cycles as cycle_model
from .golden import dbb as gdbb
from .golden import hss as ghss
from .golden.numeric import pad_to_multiple
from .layer import GemmHost, GemmJob, Operands, check_operands, tile_rows
from .stimulus import random_operands

__all__ = [
    "HIGHLIGHT", "hss_acts", "hss_weights", "flat_acts", "flat_weights",
    "prepare_highlight", "highlight_cycles", "ideal_speedup", "nonzero_lane_steps",
    "random_hss_weights", "hss_pe_beats", "flat_pe_beats",
]


def _golden_pattern(pattern) -> ghss.HSSPattern:
    return ghss.HSSPattern(*pattern)


def hss_acts(config, pattern, a) -> np.ndarray:
    """A[M, K] -> [M, Gr, H1max, H0]: each rank-1 group's activations, zero beyond H1."""
    g1, h1, g0, h0 = pattern
    a = pad_to_multiple(np.asarray(a, dtype=np.int64), h1 * h0, axis=1)
    m, groups = a.shape[0], a.shape[1] // (h1 * h0)
    out = np.zeros((m, groups, config.h1_max, h0), dtype=np.int64)
    out[:, :, :h1] = a.reshape(m, groups, h1, h0)
    return out


def hss_weights(config, enc: ghss.WeightHSS) -> dict:
    """Golden HSS encoding -> the fields of :func:`~sparsegen.hw.hss.hss_group_layout`,
    each ``[Gr, N, ...]``: ``block`` [.., G1max], ``value``/``offset`` [.., G1max * G0max]."""
    gr, n, g1, g0 = enc.values.shape
    blocks = np.zeros((gr, n, config.g1_max), dtype=np.int64)
    blocks[..., :g1] = enc.blocks
    fields = {"block": blocks}
    for name, x in (("value", enc.values), ("offset", enc.offsets)):
        wide = np.zeros((gr, n, config.g1_max, config.g0_max), dtype=np.int64)
        wide[..., :g1, :g0] = x
        fields[name] = wide.reshape(gr, n, -1)
    return fields


def flat_acts(config, ratio, a) -> np.ndarray:
    """A[M, K] -> [M, Kb, window]: each flat block of H values, zero beyond H."""
    _, h = ratio
    a = pad_to_multiple(np.asarray(a, dtype=np.int64), h, axis=1)
    m, blocks = a.shape[0], a.shape[1] // h
    out = np.zeros((m, blocks, config.window), dtype=np.int64)
    out[:, :, :h] = a.reshape(m, blocks, h)
    return out


def flat_weights(config, ratio, w) -> dict:
    """W[K, N] -> ``value``/``offset`` [Kb, N, G max] of flat DBB(H, G) (golden encoder)."""
    g, h = ratio
    enc = gdbb.encode_weights(w, h, g)
    fields = {}
    for name, x in (("value", enc.values), ("offset", enc.indices)):
        wide = np.zeros((*x.shape[:2], config.g_max), dtype=np.int64)
        wide[..., :g] = x
        fields[name] = wide
    return fields


def random_hss_weights(rng: np.random.Generator, k: int, n: int, pattern, data_width: int,
                       density: float = 0.8, share: int | None = None) -> np.ndarray:
    """Random W[K, N] that satisfies HSS ``pattern`` (G1, H1, G0, H0) with rank 1 shared by
    tiles of ``share`` columns (``None``: all N, which fits every array width; 1: plain HSS):
    random values at ``density``, extremes included, then the golden prune (so blocks and
    groups are often full, sometimes not)."""
    w = random_operands(rng, (k, n), data_width, density=density)
    return ghss.prune_weights(w, _golden_pattern(pattern), share=share)


def hss_pe_beats(config, pattern, a, w) -> list[dict]:
    """Input payloads of ``hss-mux`` for one dot product a[K] . w[K] under ``pattern``."""
    acts = hss_acts(config, pattern, np.asarray(a)[None])[0]              # [Gr, H1max, H0]
    enc = ghss.encode_weights(np.asarray(w)[:, None], _golden_pattern(pattern))
    fields = {name: x[:, 0] for name, x in hss_weights(config, enc).items()}
    groups = acts.shape[0]
    return [{"a": acts[g].tolist(), "w": {name: x[g].tolist() for name, x in fields.items()},
             "last": int(g == groups - 1)} for g in range(groups)]


def flat_pe_beats(config, ratio, a, w) -> list[dict]:
    """Input payloads of ``gh-flat`` for one dot product a[K] . w[K] under flat ``ratio``."""
    acts = flat_acts(config, ratio, np.asarray(a)[None])[0]               # [Kb, window]
    fields = {name: x[:, 0] for name, x in
              flat_weights(config, ratio, np.asarray(w)[:, None]).items()}
    blocks = acts.shape[0]
    return [{"a": acts[b].tolist(), "w": {name: x[b].tolist() for name, x in fields.items()},
             "last": int(b == blocks - 1)} for b in range(blocks)]


def _operands(config: HighLightConfig, a, w, *, prune: bool = False) -> Operands:
    """Check A and W; W must meet the active HSS pattern with rank 1 shared by the ``cols``
    columns of each tile (``prune``: pruned to it first with the golden prune).

    Raises
    ------
    TensorError
        Bad dtype, range or shape.
    HSSViolation
        W breaks the active pattern (not raised with ``prune``); names the first bad group
        (and, for the shared rank-1 rule, its tile's columns).
    """
    a, w = check_operands(config, a, w)
    golden = _golden_pattern(config.active)
    w = ghss.prune_weights(w, golden, share=config.cols) if prune else w
    ghss.check_weights(w, golden, share=config.cols)
    return Operands(a, w, a, {"pattern": config.pattern_index})


def _encode(config: HighLightConfig, w) -> dict:
    """W -> the fields of :func:`hss_weights` with N padded to whole tiles, ``[Gr, nt*C, ..]``
    (the tiles share rank 1, so every column of a tile names the same blocks)."""
    enc = ghss.encode_weights(pad_to_multiple(w, config.cols, axis=1),
                              _golden_pattern(config.active), share=config.cols)
    return hss_weights(config, enc)


def _steps(config: HighLightConfig, ops: Operands, tiles) -> dict:
    """One rank-1 group per transfer: each row's dense group of activations, the tile's block
    list and each column's rank-0 pairs (golden HSS encoding, rank 1 shared by the tile);
    every tile streams all groups of K."""
    mt, nt = tiles
    rows, cols = config.rows, config.cols
    acts = tile_rows(hss_acts(config, config.active, ops.a), rows)  # [mt, R, Gr, H1max, H0]
    groups = acts.shape[2]
    fields = _encode(config, ops.w)                             # [Gr, nt*C, ...]
    steps = mt * nt * groups
    a_steps = np.broadcast_to(acts.transpose(0, 2, 1, 3, 4)[:, None],
                              (mt, nt, groups, rows, config.h1_max, config.h0))

    def per_step(x):                                            # [Gr, nt, ...] -> [steps, ...]
        x = x.transpose(1, 0, *range(2, x.ndim))
        return np.broadcast_to(x[None], (mt, *x.shape)).reshape(steps, *x.shape[2:])
    w_payload = {name: per_step(fields[name].reshape(groups, nt, cols, -1))
                 for name in ("value", "offset")}
    blocks = per_step(fields["block"].reshape(groups, nt, cols, -1)[:, :, 0])
    last = np.zeros((mt, nt, groups), dtype=np.int64)
    last[..., -1] = 1
    return {"a": a_steps.reshape(steps, rows, config.h1_max, config.h0), "w": w_payload,
            "shared": {"block": blocks}, "last": last.reshape(-1)}


def nonzero_lane_steps(config: HighLightConfig, a, w) -> int:
    """Cell steps with at least one lane whose activation and weight are both non-zero (the
    steps ZVCG does not leave idle), from the encoding the hardware receives: step t of a
    group carries slots t*P .. t*P+P-1 (P = L / G0) of every column, each slot's pairs at
    k = group start + block * H0 + offset."""
    g1, h1, g0, h0 = config.active
    fields = _encode(config, w)
    groups, n = fields["block"].shape[:2]
    per_step = config.lanes // g0
    t_count = config.steps(config.active)
    values = fields["value"].reshape(groups, n, config.g1_max, config.g0_max)[..., :g1, :g0]
    offsets = fields["offset"].reshape(groups, n, config.g1_max, config.g0_max)[..., :g1, :g0]
    k = (np.arange(groups)[:, None, None, None] * h1 * h0
         + fields["block"][..., :g1, None] * h0 + offsets)      # [Gr, N, G1, G0]
    a_pad = np.pad(np.asarray(a) != 0, ((0, 0), (0, groups * h1 * h0 - a.shape[1])))
    live = a_pad[:, k] & (values != 0)[None]                    # [M, Gr, N, G1, G0]
    slots = np.pad(live.any(axis=-1), ((0, 0),) * 3 + ((0, t_count * per_step - g1),))
    hit = slots.reshape(*slots.shape[:3], t_count, per_step).any(axis=-1)   # [M, Gr, N, T]
    return int(hit[:, :, :w.shape[1]].sum())


def _groups(config: HighLightConfig, k: int) -> int:
    """Rank-1 groups of the active pattern along K (padded): input transfers per tile."""
    g1, h1, g0, h0 = config.active
    return math.ceil(k / (h1 * h0))


def prepare_highlight(config: HighLightConfig, a, w, *, prune: bool = False) -> GemmJob:
    """Validate A and W, check (or prune) W against the active pattern, lay out the groups
    (:meth:`~.layer.GemmHost.prepare` of :data:`HIGHLIGHT`)."""
    return HIGHLIGHT.prepare(config, a, w, prune=prune)


def highlight_cycles(config: HighLightConfig, m: int, k: int, n: int) -> int:
    """Cycles of ``highlight`` (active pattern) on O[M,N] = A[M,K] W[K,N], as the player counts
    them: the sequencer stage plus the core fed ceil(K / (H1 * H0)) * T steps per tile."""
    steps = _groups(config, k) * config.steps(config.active)
    tiles = cycle_model.tile_counts(m, n, config.rows, config.cols)
    return HighLight.SEQUENCER_STAGES + cycle_model.core_cycles(
        [steps] * tiles, HighLight.cell_kind(config), config.rows, config.cols)


def ideal_speedup(config: HighLightConfig) -> float:
    """Dense MAC slots over the slots the design cannot skip, per multiplier, for the active
    pattern: H1 * H0 / (L * T) (1 / density when G0 divides L and L / G0 divides G1)."""
    g1, h1, g0, h0 = config.active
    return h1 * h0 / (config.lanes * config.steps(config.active))


def _figures(config: HighLightConfig, options: dict) -> dict:
    g1, h1, g0, h0 = config.active
    return {"pattern": pattern_text(config.active), "pruned": bool(options.get("prune")),
            "density": round(g1 * g0 / (h1 * h0), 6),
            "ideal_speedup": round(ideal_speedup(config), 6)}


HIGHLIGHT = GemmHost(operands=_operands, steps=_steps, steps_per_tile=_groups,
                     cycles=highlight_cycles, ideal_speedup=ideal_speedup, figures=_figures,
                     options=frozenset({"prune"}),
                     nonzero_steps=lambda config, ops: nonzero_lane_steps(config, ops.a, ops.w)
                     if config.zvcg else 0)
"""``highlight``: one rank-1 group per transfer, T(pattern) core steps per group, the pattern
driven into its port; ``prune`` prunes dense weights to the active pattern first."""
