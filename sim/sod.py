"""Sparse-on-Dense on the host: bitmap-compressed operand blocks, GEMM tiling, cycle model.

``sparsegen sim sod --a A.npy --w W.npy`` runs :data:`SOD`: A's rows and W's columns are
compressed along K into bitmap blocks with the golden encoder (``sim/golden/sod.py``; any
density, no format bound to break), each tile streams one block per edge per transfer, and the
decompressors in front of the dense array expand them back into one dense step per cycle. The
output is compared bit for bit with ``A @ W`` (wrapped at ``acc_width``).
"""

import math

from ..hw.sod import Sod
from . import cycles as cycle_model
from .golden import sod as gsod
from .golden.numeric import pad_to_multiple
from .layer import GemmHost, Operands, check_operands, per_tile, tile_rows

__all__ = ["SOD", "sod_cycles"]


def _operands(config, a, w) -> Operands:
    a, w = check_operands(config, a, w)
    return Operands(a, w, a, {})


def _blocks(x, rows: int, bz: int):
    """x [M, K] -> bitmap blocks per tile row: masks [mt, Kb, R], values [mt, Kb, R, BZ]."""
    enc = gsod.encode(tile_rows(x, rows), bz)              # mask [mt, R, Kb]
    return enc.mask.transpose(0, 2, 1), enc.values.transpose(0, 2, 1, 3)


def _steps(config, ops: Operands, tiles) -> dict:
    """One K-block per transfer: a compressed block of A's row per row edge, of W's column
    per column edge."""
    bz = config.block_size
    a_mask, a_values = _blocks(ops.a, config.rows, bz)
    w_mask, w_values = _blocks(pad_to_multiple(ops.w, config.cols, axis=1).T, config.cols, bz)
    a_m, w_m, last = per_tile(a_mask, w_mask)
    a_v, w_v, _ = per_tile(a_values, w_values)
    return {"a": {"mask": a_m, "values": a_v}, "w": {"mask": w_m, "values": w_v},
            "last": last}


def sod_cycles(config, m: int, k: int, n: int) -> int:
    """Cycles of ``sod`` on O[M,N] = A[M,K] W[K,N]: the decoders' register stage, then a dense
    tile of ceil(K / BZ) x BZ steps per output tile."""
    tiles = cycle_model.tile_counts(m, n, config.rows, config.cols)
    steps = math.ceil(k / config.block_size) * config.block_size
    return (Sod.front_end_stages(config)
            + cycle_model.core_cycles([steps] * tiles, Sod.cell_kind(config), config.rows,
                                      config.cols))


SOD = GemmHost(
    operands=_operands, steps=_steps,
    steps_per_tile=lambda config, k: math.ceil(k / config.block_size),
    cycles=sod_cycles, ideal_speedup=lambda config: 1.0)
"""``sod``: one compressed block per transfer, BZ dense steps per block."""
