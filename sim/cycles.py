"""Closed-form cycle models of the systolic arrays, for sweeps where RTL simulation is too slow.

``cycles`` everywhere means clock cycles of the design for a whole layer, all tiles: from the
clock edge that accepts the first input step to the edge at which the last result row leaves,
both included, with the input fed at full rate and the output never back-pressured (what the
stream player does). Pipeline depths are read from ``hw/`` (stated once there); tests check
these models against the RTL cycle for cycle and against hand-derived counts.
"""

import math

from ..hw.s2ta import S2TA, DenseArray
from ..hw.systolic import CellKind, core_latency

__all__ = ["core_cycles", "tile_counts", "dense_cycles", "s2ta_steps_per_tile", "s2ta_cycles",
           "s2ta_ideal_speedup"]


def core_cycles(steps_per_tile: list[int], kind: CellKind, rows: int, cols: int,
                drain_rows: int | None = None) -> int:
    """Cycles of :class:`~sparsegen.hw.systolic.SystolicCore` of cells of ``kind`` for tiles
    of the given step counts fed back to back; ``drain_rows`` result rows per tile (default
    ``rows``; tensor cells drain rows x their output rows).

    Non-last steps are accepted every cycle. A tile's last step waits until the previous
    tile's final result row has left: with E the edge of the previous last step, its rows
    leave at E + L ... E + L + D - 1 (L = :func:`~sparsegen.hw.systolic.core_latency` of the
    kind, D = drain rows), so the next last step is accepted at max(start + S - 1, E + L + D).
    """
    latency = core_latency(kind, rows, cols)
    rows = rows if drain_rows is None else drain_rows
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
    return core_cycles([k] * tiles, DenseArray.cell_kind(config), config.rows, config.cols)


def s2ta_steps_per_tile(config, k: int) -> int:
    """Core steps (= input transfers) per output tile of ``s2ta`` over a reduction of ``k``:
    ``dense`` ceil(K / B); ``w`` ceil(ceil(K / BZ) / B); ``a``/``aw`` ceil(K / BZ) blocks of
    ceil(nnz_a / B) steps (B = ``tpe_k``, run-time ``nnz_a``)."""
    if config.variant == "dense":
        return math.ceil(k / config.tpe_k)
    blocks = math.ceil(k / config.block_size)
    if config.variant == "w":
        return math.ceil(blocks / config.tpe_k)
    return blocks * config.steps_per_block


def s2ta_cycles(config, m: int, k: int, n: int) -> int:
    """Cycles of ``s2ta`` (with its run-time ``nnz_a``) on O[M,N] = A[M,K] W[K,N]: tiles of
    R*A x C*C' outputs, :func:`s2ta_steps_per_tile` steps each, R*A drain rows, behind the
    front end (:data:`~sparsegen.hw.s2ta.S2TA.front_end_stages`, none) and before the output
    DAP's stage (:meth:`~sparsegen.hw.s2ta.S2TA.back_end_stages`: 1 with the DAP, else 0; it
    never holds the drain while the output is not back-pressured)."""
    tiles = tile_counts(m, n, config.tile_rows, config.tile_cols)
    return (S2TA.front_end_stages(config)
            + core_cycles([s2ta_steps_per_tile(config, k)] * tiles, S2TA.cell_kind(config),
                          config.rows, config.cols, config.tile_rows)
            + S2TA.back_end_stages(config))


def s2ta_ideal_speedup(config) -> float:
    """Dense MAC slots over the slots the variant cannot skip, per multiplier.

    ``dense``: 1; ``w``: BZ/nnz_w (each of its nnz_w lanes per block covers BZ/nnz_w dense
    slots); ``a`` and ``aw``: BZ / (B ceil(nnz_a / B)) (a block costs ceil(nnz_a / B) steps of
    B lanes instead of BZ dense slots).
    """
    if config.variant == "dense":
        return 1.0
    if config.act_dbb:
        return config.block_size / (config.tpe_k * config.steps_per_block)
    return config.block_size / config.nnz_w
