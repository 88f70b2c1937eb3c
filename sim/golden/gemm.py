"""Bit-exact GEMM and PE models with ``acc_width`` wrap-around.

Exactness: int64 arithmetic wraps modulo 2^64, and reducing modulo 2^acc_width (acc_width <= 64)
is a ring homomorphism from Z/2^64 onto Z/2^acc_width, so wrapping once at the end of an int64
matmul gives exactly what hardware gets by wrapping after every product and addition.
"""

import numpy as np

from .numeric import wrap

__all__ = ["gemm", "dot_blocks", "dbb_dot", "gated_lanes_dense", "gated_lanes_dbb",
           "macs_nonzero"]


def gemm(a, w, acc_width: int = 32) -> np.ndarray:
    """O[M, N] = A[M, K] @ W[K, N], every product and sum wrapping at ``acc_width`` bits."""
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    # numpy's integer matmul wraps modulo 2^64 like the int64 it computes in (see above).
    with np.errstate(over="ignore"):
        return wrap(a @ w, acc_width)


def dot_blocks(a_blocks, w_blocks, acc_width: int) -> int:
    """``dense-pe``: the wrapped sum of all lane products of one dot product's blocks."""
    a = np.asarray(a_blocks, dtype=np.int64)
    w = np.asarray(w_blocks, dtype=np.int64)
    return int(wrap(np.sum(a * w), acc_width))


def dbb_dot(a_blocks, values, indices, acc_width: int) -> int:
    """``dbb-pe``: sum over blocks b and slots j of values[b, j] * a_blocks[b, indices[b, j]].
    """
    a = np.asarray(a_blocks, dtype=np.int64)
    selected = np.take_along_axis(a, np.asarray(indices, dtype=np.int64), axis=1)
    return int(wrap(np.sum(selected * np.asarray(values, dtype=np.int64)), acc_width))


def gated_lanes_dense(a_blocks, w_blocks) -> int:
    """Lanes (block, lane) that zero-value clock gating idles: a zero activation or weight."""
    return int(np.count_nonzero((np.asarray(a_blocks) == 0) | (np.asarray(w_blocks) == 0)))


def gated_lanes_dbb(a_blocks, values, indices) -> int:
    """Slots (block, slot) gated in ``dbb-pe``: a zero value or a zero selected activation."""
    a = np.asarray(a_blocks, dtype=np.int64)
    selected = np.take_along_axis(a, np.asarray(indices, dtype=np.int64), axis=1)
    return int(np.count_nonzero((selected == 0) | (np.asarray(values) == 0)))


def macs_nonzero(a, w) -> int:
    """Products A[m, k] * W[k, n] with both operands non-zero."""
    nz_a = (np.asarray(a) != 0).astype(np.int64)
    nz_w = (np.asarray(w) != 0).astype(np.int64)
    return int(np.sum(nz_a @ nz_w))
