"""HighLight on the host: HSS group layout, GEMM tiling, cycle model and layer runs.

``sparsegen sim highlight -p pattern=4:6,2:4 --a A.npy --w W.npy`` lands in :func:`run_gemm`:
the weights are checked against (or, with ``--prune``, pruned to) the active HSS pattern with
the golden functions of ``sim/golden/hss.py``, compressed, and streamed group by group through
the generated Verilog by the stream player (:mod:`.player`); the output is compared bit for bit
with ``A @ W`` (wrapped at ``acc_width``).

Tiling: output tiles of rows x cols, row-major; K is zero-padded to whole rank-1 groups of the
active pattern (H1 * H0 values); every tile streams all groups of K, one transfer per group.
"""

import dataclasses
import math

import numpy as np

from ..hw.highlight import HighLightConfig, pattern_text
from . import cycles as cycle_model
from .golden import dbb as gdbb
from .golden import gemm as ggemm
from .golden import hss as ghss
from .golden.numeric import pad_to_multiple
from .layer import GemmJob, LayerResult, _check_operands, _tile_rows, assemble_output

__all__ = [
    "SEQUENCER_STAGES", "hss_acts", "hss_weights", "flat_acts", "flat_weights",
    "prepare_highlight", "highlight_cycles", "ideal_speedup", "run_gemm", "HighLightResult",
    "random_hss_weights", "hss_pe_beats", "flat_pe_beats",
]

#: The group sequencer's register in front of the systolic core.
SEQUENCER_STAGES = 1


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
                       density: float = 0.8) -> np.ndarray:
    """Random W[K, N] that satisfies HSS ``pattern`` (G1, H1, G0, H0): random values at
    ``density``, extremes included, then the golden prune (so blocks and groups are often
    full, sometimes not)."""
    from .stimulus import random_operands
    w = random_operands(rng, (k, n), data_width, density=density)
    return ghss.prune_weights(w, _golden_pattern(pattern))


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


def prepare_highlight(config: HighLightConfig, a, w, *, prune: bool = False) -> GemmJob:
    """Validate A and W, check (or prune) W against the active pattern, lay out the groups.

    Raises
    ------
    TensorError
        Bad dtype, range or shape.
    HSSViolation
        W breaks the active pattern (not raised with ``prune``); names the first bad group.
    """
    a, w = _check_operands(config, a, w)
    pattern = config.active
    golden = _golden_pattern(pattern)
    w = ghss.prune_weights(w, golden) if prune else w
    enc = ghss.encode_weights(w, golden)
    (m, k), n = a.shape, w.shape[1]
    rows, cols = config.rows, config.cols
    mt, nt = math.ceil(m / rows), math.ceil(n / cols)
    acts = _tile_rows(hss_acts(config, pattern, a), rows)      # [mt, R, Gr, H1max, H0]
    groups = acts.shape[2]
    fields = hss_weights(config, enc)                           # [Gr, N, ...]
    steps = mt * nt * groups
    a_steps = np.broadcast_to(acts.transpose(0, 2, 1, 3, 4)[:, None],
                              (mt, nt, groups, rows, config.h1_max, config.h0))
    w_payload = {}
    for name, x in fields.items():
        x = pad_to_multiple(x, cols, axis=1)                    # [Gr, nt*C, F]
        x = x.reshape(groups, nt, cols, -1).transpose(1, 0, 2, 3)   # [nt, Gr, C, F]
        w_payload[name] = np.broadcast_to(x[None], (mt, *x.shape)).reshape(steps, cols, -1)
    last = np.zeros((mt, nt, groups), dtype=np.int64)
    last[..., -1] = 1
    payload = {"a": a_steps.reshape(steps, rows, config.h1_max, config.h0), "w": w_payload,
               "last": last.reshape(-1)}
    return GemmJob(steps=steps, payload=payload, tiles=(mt, nt), shape=(m, k, n),
                   expected=ggemm.gemm(a, w, config.acc_width), a_effective=a, w=w,
                   inputs={"pattern": config.pattern_index})


def highlight_cycles(config: HighLightConfig, m: int, k: int, n: int) -> int:
    """Cycles of ``highlight`` (active pattern) on O[M,N] = A[M,K] W[K,N], as the player counts
    them: the sequencer stage plus the core fed ceil(K / (H1 * H0)) * T steps per tile."""
    g1, h1, g0, h0 = config.active
    steps = math.ceil(k / (h1 * h0)) * config.steps(config.active)
    tiles = cycle_model.tile_counts(m, n, config.rows, config.cols)
    return SEQUENCER_STAGES + cycle_model.core_cycles([steps] * tiles, config.rows, config.cols)


def ideal_speedup(config: HighLightConfig) -> float:
    """Dense MAC slots over the slots the design cannot skip, per multiplier, for the active
    pattern: H1 * H0 / (L * T) (1 / density when G0 divides L and L / G0 divides G1)."""
    g1, h1, g0, h0 = config.active
    return h1 * h0 / (config.lanes * config.steps(config.active))


@dataclasses.dataclass
class HighLightResult(LayerResult):
    """A layer run on ``highlight``: the layer figures plus the pattern and the prune flag."""

    pattern: str = ""
    pruned: bool = False
    density: float = 0.0
    ideal_speedup: float = 1.0

    def extra_json(self) -> dict:
        return {**super().extra_json(), "pattern": self.pattern, "pruned": self.pruned,
                "density": round(self.density, 6), "ideal_speedup": round(self.ideal_speedup, 6)}


def run_gemm(design, config: HighLightConfig, a, w, *, status=None,
             prune: bool = False) -> HighLightResult:
    """Run O = A @ W on the generated Verilog of ``highlight`` with its active pattern.

    ``prune`` applies the golden HSS prune to W first (reported as ``pruned``). The stream
    player (:func:`~.player.play`) runs the groups at full rate; ``pattern`` is driven into
    the port.
    """
    from ..gen.generate import generate
    from .player import play
    from .tb.bits import hex_lines, pack_many, unpack_signed_rows

    job = prepare_highlight(config, a, w, prune=prune)
    generated = generate(design, config)
    words = hex_lines(pack_many(generated.metadata["layouts"]["i__payload"], job.payload,
                                job.steps))
    mt, nt = job.tiles
    model = highlight_cycles(config, *job.shape)
    if status:
        status(f"{design.name}: {job.steps:,} groups, {mt * nt} tiles, pattern "
               f"{pattern_text(config.active)}")
    played = play(generated, words, expect=mt * nt * config.rows, inputs=job.inputs,
                  timeout_cycles=4 * model + 1000, status=status)
    out_rows = unpack_signed_rows(played.results, config.acc_width, config.cols)
    output = assemble_output(out_rows, job, config.rows, config.cols)
    m, k, n = job.shape
    g1, h1, g0, h0 = config.active
    return HighLightResult(
        output=output, cycles=played.cycles, model_cycles=model, macs_total=m * n * k,
        macs_nonzero=ggemm.macs_nonzero(job.a_effective, job.w), multipliers=config.multipliers,
        matches_golden=bool(np.array_equal(output, job.expected)), tiles=mt * nt,
        steps=job.steps, sim_seconds=played.seconds, build_seconds=played.build_seconds,
        pattern=pattern_text(config.active), pruned=prune, density=g1 * g0 / (h1 * h0),
        ideal_speedup=ideal_speedup(config))

