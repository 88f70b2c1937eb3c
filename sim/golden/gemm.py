"""Bit-exact GEMM and PE models: products and sums wrap at ``acc_width`` bits (signed).

Exactness. Hardware wraps after every product and every addition. Reduction modulo 2^acc_width
(acc_width <= 64) is a ring homomorphism from the integers (and from Z/2^64) onto Z/2^acc_width,
so any computation that is exact modulo 2^64 and is reduced once at the end by
:func:`~.numeric.wrap` gives the hardware's result bit for bit. The models therefore compute:

* in int64 when no partial sum can leave the int64 range (checked from the operands' largest
  magnitudes): numpy's int64 matmul is then exact;
* otherwise in uint64, whose overflow wraps modulo 2^64 by definition (signed int64 overflow in
  numpy's C loops is not something to rely on). Casting int64 to uint64 keeps the residue
  modulo 2^64, so the uint64 result viewed as int64 is congruent to the exact result.
"""

import numpy as np

from .numeric import TensorError, check_tensor, wrap

__all__ = ["gemm", "dot_blocks", "dbb_dot", "gated_lanes_dense", "gated_lanes_dbb",
           "macs_nonzero"]

_INT64_MAX = (1 << 63) - 1


def _max_magnitude(x: np.ndarray) -> int:
    """Largest |x| as a Python int (exact even for -2^63)."""
    if x.size == 0:
        return 0
    return max(-int(x.min()), int(x.max()))


def _matmul_mod64(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """int64 A @ W, exact modulo 2^64 (exact outright when it fits int64)."""
    k = a.shape[-1]
    if _max_magnitude(a) * _max_magnitude(w) * k <= _INT64_MAX:
        return a @ w                        # no partial sum can overflow: exact
    return (a.view(np.uint64) @ w.view(np.uint64)).view(np.int64)


def _sum_products_mod64(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sum(x * y) over all elements, modulo 2^64 (uint64 arithmetic wraps by definition)."""
    products = x.view(np.uint64) * y.view(np.uint64)
    return products.sum(dtype=np.uint64).view(np.int64)


def _check_same_shape(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    if x.shape != y.shape:
        raise TensorError(f"tensor `{y_name}`: shape {y.shape} does not match `{x_name}` "
                          f"{x.shape}")


def _selected_activations(a: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """a_blocks[b, indices[b, s]] for every block b and slot s: the dbb-pe's BZ:1 muxes."""
    bz = a.shape[1]
    bad = (indices < 0) | (indices >= bz)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise TensorError(f"tensor `indices`: value {int(indices[where])} at index {where} is "
                          f"outside the block (0..{bz - 1})")
    return np.take_along_axis(a, indices, axis=1)


def _dbb_operands(a_blocks, values, indices):
    """Validate dbb-pe operands: a [nblocks, BZ], values and indices [nblocks, nnz]."""
    a = check_tensor(a_blocks, 64, "a_blocks", ndim=2)
    v = check_tensor(values, 64, "values", ndim=2)
    i = check_tensor(indices, 64, "indices", ndim=2)
    _check_same_shape(v, i, "values", "indices")
    if v.shape[0] != a.shape[0]:
        raise TensorError(f"tensor `values`: has {v.shape[0]} blocks but `a_blocks` has "
                          f"{a.shape[0]}")
    return a, v, _selected_activations(a, i)


def gemm(a, w, acc_width: int = 32) -> np.ndarray:
    """O[M, N] = A[M, K] @ W[K, N] with every product and sum wrapping at ``acc_width`` bits.

    Parameters
    ----------
    a, w
        Integer tensors A[M, K] and W[K, N] (any integer dtype, values fitting int64).
    acc_width
        Signed accumulator width, 1..64.

    Returns
    -------
    np.ndarray
        int64 [M, N], each entry in the signed ``acc_width``-bit range.

    Raises
    ------
    TensorError
        Non-integer dtype, not 2-D, or K of ``a`` and ``w`` differ.
    """
    a = check_tensor(a, 64, "A", ndim=2)
    w = check_tensor(w, 64, "W", ndim=2)
    if a.shape[1] != w.shape[0]:
        raise TensorError(f"tensor `W`: has {w.shape[0]} rows but `A` has K={a.shape[1]} "
                          f"columns")
    return wrap(_matmul_mod64(a, w), acc_width)


def dot_blocks(a_blocks, w_blocks, acc_width: int) -> int:
    """The ``dense-pe`` result of one dot product: the wrapped sum of all lane products.

    Parameters
    ----------
    a_blocks, w_blocks
        Activation and weight blocks, both [nblocks, BZ].
    acc_width
        Signed accumulator width, 1..64.
    """
    a = check_tensor(a_blocks, 64, "a_blocks", ndim=2)
    w = check_tensor(w_blocks, 64, "w_blocks", ndim=2)
    _check_same_shape(a, w, "a_blocks", "w_blocks")
    return int(wrap(_sum_products_mod64(a, w), acc_width))


def dbb_dot(a_blocks, values, indices, acc_width: int) -> int:
    """The ``dbb-pe`` result: sum over blocks b and slots s of values[b, s] *
    a_blocks[b, indices[b, s]], wrapped at ``acc_width`` bits.

    Parameters
    ----------
    a_blocks
        Activation blocks [nblocks, BZ].
    values, indices
        Compressed weights [nblocks, nnz] (one column of :class:`~.dbb.WeightDBB`); unused
        slots are (0, 0) and contribute nothing.
    acc_width
        Signed accumulator width, 1..64.

    Raises
    ------
    TensorError
        Shapes disagree or an index is outside 0..BZ-1.
    """
    _, v, selected = _dbb_operands(a_blocks, values, indices)
    return int(wrap(_sum_products_mod64(selected, v), acc_width))


def gated_lanes_dense(a_blocks, w_blocks) -> int:
    """Lanes (block, lane) that zero-value clock gating idles: a zero activation or weight."""
    a = check_tensor(a_blocks, 64, "a_blocks", ndim=2)
    w = check_tensor(w_blocks, 64, "w_blocks", ndim=2)
    _check_same_shape(a, w, "a_blocks", "w_blocks")
    return int(np.count_nonzero((a == 0) | (w == 0)))


def gated_lanes_dbb(a_blocks, values, indices) -> int:
    """Slots (block, slot) the ``dbb-pe`` gates: a zero value or a zero selected activation."""
    _, v, selected = _dbb_operands(a_blocks, values, indices)
    return int(np.count_nonzero((v == 0) | (selected == 0)))


def macs_nonzero(a, w) -> int:
    """Number of products A[m, k] * W[k, n] whose operands are both non-zero.

    Computed as a matmul of the int64 non-zero masks (the count is at most M*N*K).
    """
    a = check_tensor(a, 64, "A", ndim=2)
    w = check_tensor(w, 64, "W", ndim=2)
    if a.shape[1] != w.shape[0]:
        raise TensorError(f"tensor `W`: has {w.shape[0]} rows but `A` has K={a.shape[1]} "
                          f"columns")
    return int(np.sum((a != 0).astype(np.int64) @ (w != 0).astype(np.int64)))
