"""Closed-form cycle models of the systolic arrays, for sweeps where RTL simulation is too slow.

``cycles`` everywhere means clock cycles of the design for a whole layer, all tiles: from the
clock edge that accepts the first input step to the edge at which the last result row leaves,
both included, with the input fed at full rate and the output never back-pressured (what the
stream player does). Pipeline depths are read from ``hw/`` (stated once there); tests check
these models against the RTL cycle for cycle and against hand-derived counts.
"""

import math

from ..hw.s2ta import S2TA
from ..hw.systolic import core_latency

__all__ = ["core_cycles", "tile_counts", "dense_cycles", "s2ta_cycles", "s2ta_ideal_speedup"]


def core_cycles(steps_per_tile: list[int], rows: int, cols: int) -> int:
    """Cycles of :class:`~sparsegen.hw.systolic.SystolicCore` for tiles of the given step
    counts fed back to back.

    Non-last steps are accepted every cycle. A tile's last step waits until the previous
    tile's final result row has left: with E the edge of the previous last step, its rows
    leave at E + L ... E + L + rows - 1 (L = core latency), so the next last step is accepted
    at max(start + S - 1, E + L + rows).
    """
    latency = core_latency(rows, cols)
    last = None
    for steps in steps_per_tile:
        start = 0 if last is None else last + 1
        earliest = start + steps - 1
        last = earliest if last is None else max(earliest, last + latency + rows)
    return last + latency + rows - 1 + 1


def tile_counts(m: int, n: int, rows: int, cols: int) -> int:
    """Output tiles of an M x N GEMM on an R x C array (edges padded)."""
    return math.ceil(m / rows) * math.ceil(n / cols)


def dense_cycles(config, m: int, k: int, n: int) -> int:
    """Cycles of ``dense-array`` on O[M,N] = A[M,K] W[K,N]: one K step per cycle per tile."""
    tiles = tile_counts(m, n, config.rows, config.cols)
    return core_cycles([k] * tiles, config.rows, config.cols)


def s2ta_cycles(config, m: int, k: int, n: int) -> int:
    """Cycles of ``s2ta`` (with its run-time ``nnz_a``) on O[M,N] = A[M,K] W[K,N].

    ``w``: one K block per cycle. ``a``/``aw``: ``nnz_a`` core steps per block, behind the
    activation front end (:data:`~sparsegen.hw.s2ta.S2TA.front_end_stages`).
    """
    tiles = tile_counts(m, n, config.rows, config.cols)
    blocks = math.ceil(k / config.block_size)
    if config.act_dbb:
        return (S2TA.front_end_stages(config)
                + core_cycles([blocks * config.nnz_a] * tiles, config.rows, config.cols))
    return core_cycles([blocks] * tiles, config.rows, config.cols)


def s2ta_ideal_speedup(config) -> float:
    """Dense MAC slots over the slots the variant cannot skip, per multiplier.

    ``w``: BZ/nnz_w (each of its nnz_w multipliers covers BZ/nnz_w dense slots per cycle);
    ``a`` and ``aw``: BZ/nnz_a (a block costs nnz_a cycles of one multiplier instead of BZ).
    """
    if config.act_dbb:
        return config.block_size / config.nnz_a
    return config.block_size / config.nnz_w
