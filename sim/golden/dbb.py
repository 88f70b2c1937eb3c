"""Density-bound-block (DBB) formats: check, encode and decode, for weights and activations.

DBB(BZ, NNZ): every block of BZ consecutive elements along K holds at most NNZ non-zeros.
K is axis 0 of W[K, N] and the last axis of A[..., K]; it is zero-padded to whole blocks.

* Weights (static): a tensor over the bound is rejected, naming its first bad block. The
  compressed form keeps NNZ (value, index) slots per block, non-zeros in ascending index order,
  unused slots (0, 0): what ``dbb-pe`` and ``s2ta`` receive.
* Activations (dynamic, lossy): keep the NNZ entries of largest magnitude per block; equal
  magnitudes go to the lower index; a zero is never kept over a non-zero. The compressed form is
  a BZ-bit mask plus NNZ values in ascending index order: what ``act-dbb`` emits.

The activation ranking lives in one place, :func:`_rank_order`; :func:`select_mask`,
:func:`select_order`, :func:`prune_activations` and :func:`encode_activations` all derive from it.
"""

import dataclasses

import numpy as np

from .numeric import TensorError, check_tensor, pad_to_multiple

__all__ = [
    "DBBViolation", "WeightDBB", "ActDBB", "check_weights", "encode_weights",
    "decode_weights", "select_order", "select_mask", "prune_activations", "encode_activations",
    "decode_activations", "activation_slots", "requantize",
]


class DBBViolation(ValueError):
    """A weight tensor breaks its DBB bound; the message names the first violating block.

    Example: "weight `W` breaks DBB(8, 4): block k=8..15 of column n=3 has 5 non-zeros
    (at most 4 allowed)".
    """


@dataclasses.dataclass(frozen=True)
class WeightDBB:
    """Compressed DBB weights of W[K, N].

    Each (block, column) holds ``nnz`` slots: its non-zeros in ascending index order, then
    unused slots with value 0 and index 0.
    """

    values: np.ndarray      # int64 [Kb, N, nnz]
    indices: np.ndarray     # int64 [Kb, N, nnz], positions 0..BZ-1 within the block
    block_size: int
    nnz: int
    k: int                  # K before padding


@dataclasses.dataclass(frozen=True)
class ActDBB:
    """Compressed DBB activations of A[..., K].

    The j-th set bit of a block's mask (counting from index 0) holds the block's j-th value.
    """

    mask: np.ndarray        # bool [..., Kb, BZ]: kept (and non-zero) positions
    values: np.ndarray      # int64 [..., Kb, nnz]: kept values, ascending index order, then 0
    block_size: int
    nnz: int
    k: int                  # K before padding


def _check_params(block_size, nnz) -> tuple[int, int]:
    """Validate DBB(block_size, nnz): 1 <= nnz <= block_size."""
    for what, value in (("block_size", block_size), ("nnz", nnz)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"`{what}` must be an integer, not {value!r}")
    if block_size < 1:
        raise ValueError(f"`block_size` must be at least 1, not {block_size}")
    if not 1 <= nnz <= block_size:
        raise ValueError(f"`nnz` must be between 1 and `block_size` ({block_size}), not {nnz}")
    return int(block_size), int(nnz)


def _blocks_last_axis(x: np.ndarray, block_size: int) -> np.ndarray:
    """[..., K] -> [..., Kb, BZ], zero-padding K to whole blocks."""
    x = pad_to_multiple(x, block_size, axis=x.ndim - 1)
    # Kb is spelled out (no -1) so empty tensors reshape too.
    return x.reshape(*x.shape[:-1], x.shape[-1] // block_size, block_size)


def _unblock_last_axis(blocks: np.ndarray, k: int) -> np.ndarray:
    """[..., Kb, BZ] -> [..., K], dropping the padding."""
    return blocks.reshape(*blocks.shape[:-2], blocks.shape[-2] * blocks.shape[-1])[..., :k]


def _compact(blocks: np.ndarray, keep: np.ndarray, nnz: int) -> tuple[np.ndarray, np.ndarray]:
    """Kept entries of [..., BZ] blocks, in ascending index order, packed into ``nnz`` slots.

    ``keep`` has at most ``nnz`` True per block. Returns (values, indices), each int64
    [..., nnz]; unused slots are (0, 0).
    """
    # A stable sort of "not kept" moves the kept positions first and keeps their index order.
    order = np.argsort(~keep, axis=-1, kind="stable")[..., :nnz]
    used = np.take_along_axis(keep, order, axis=-1)
    values = np.where(used, np.take_along_axis(blocks, order, axis=-1), 0)
    indices = np.where(used, order, 0)
    return values.astype(np.int64), indices.astype(np.int64)


# -- weights -----------------------------------------------------------------------------------


def _weight_blocks(w: np.ndarray, block_size: int) -> np.ndarray:
    """int64 W[K, N] -> [Kb, N, BZ] (K zero-padded), the layout of the compressed form."""
    return _blocks_last_axis(w.T, block_size).transpose(1, 0, 2)


def _raise_first_violation(blocks: np.ndarray, nnz: int, k: int, name: str) -> None:
    """Raise :class:`DBBViolation` for the first [Kb, N, BZ] block over ``nnz`` non-zeros."""
    block_size = blocks.shape[-1]
    counts = np.count_nonzero(blocks, axis=-1)                          # [Kb, N]
    # argwhere walks [Kb, N] in C order: the smallest k-block first, then the smallest column.
    bad = np.argwhere(counts > nnz)
    if len(bad):
        kb, n = (int(i) for i in bad[0])
        lo = kb * block_size
        hi = min(lo + block_size, k) - 1            # the last block may be partial
        raise DBBViolation(
            f"weight `{name}` breaks DBB({block_size}, {nnz}): block k={lo}..{hi} of column "
            f"n={n} has {int(counts[kb, n])} non-zeros (at most {nnz} allowed)")


def check_weights(w, block_size: int, nnz: int, name: str = "W") -> None:
    """Check that every block of W[K, N] along K has at most ``nnz`` non-zeros.

    Parameters
    ----------
    w
        Weights W[K, N], any integer dtype.
    block_size, nnz
        The bound DBB(block_size, nnz).
    name
        Name of the tensor in messages.

    Raises
    ------
    DBBViolation
        Naming the first violating block: smallest k-block first, then smallest column.
    TensorError
        ``w`` is not a 2-D integer tensor.
    """
    block_size, nnz = _check_params(block_size, nnz)
    w = check_tensor(w, 64, name, ndim=2)
    _raise_first_violation(_weight_blocks(w, block_size), nnz, w.shape[0], name)


def encode_weights(w, block_size: int, nnz: int, name: str = "W") -> WeightDBB:
    """Compress W[K, N] to ``nnz`` (value, index) slots per block and column.

    Returns
    -------
    WeightDBB
        values and indices [Kb, N, nnz]: non-zeros in ascending index order, unused slots (0, 0).

    Raises
    ------
    DBBViolation
        A block holds more than ``nnz`` non-zeros (see :func:`check_weights`).
    TensorError
        ``w`` is not a 2-D integer tensor.
    """
    block_size, nnz = _check_params(block_size, nnz)
    w = check_tensor(w, 64, name, ndim=2)
    blocks = _weight_blocks(w, block_size)
    _raise_first_violation(blocks, nnz, w.shape[0], name)
    values, indices = _compact(blocks, blocks != 0, nnz)
    return WeightDBB(values, indices, block_size, nnz, w.shape[0])


def decode_weights(enc: WeightDBB) -> np.ndarray:
    """Dense W[K, N] (int64, original K) from its compressed form.

    Raises
    ------
    ValueError
        Values and indices differ in shape or an index is outside 0..block_size-1.
    """
    values = np.asarray(enc.values, dtype=np.int64)
    indices = np.asarray(enc.indices, dtype=np.int64)
    if values.shape != indices.shape or values.ndim != 3:
        raise ValueError(f"weight values {values.shape} and indices {indices.shape} must both "
                         f"be [Kb, N, nnz]")
    _check_indices(indices, enc.block_size)
    kb, n, _ = values.shape
    blocks = np.zeros((kb, n, enc.block_size), dtype=np.int64)
    # Add, do not assign: an unused (0, 0) slot must not overwrite a real value at index 0.
    np.add.at(blocks, (np.arange(kb)[:, None, None], np.arange(n)[None, :, None], indices),
              values)
    return blocks.transpose(0, 2, 1).reshape(kb * enc.block_size, n)[:enc.k]


def _check_indices(indices: np.ndarray, block_size: int) -> None:
    """Slot indices must address a lane of the block (numpy would wrap negative ones)."""
    bad = (indices < 0) | (indices >= block_size)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"index {int(indices[where])} at {where} is outside the block "
                         f"(0..{block_size - 1})")


# -- activations -------------------------------------------------------------------------------


def _rank_order(blocks: np.ndarray) -> np.ndarray:
    """Positions of each [..., BZ] block in the order the hardware ranks them.

    Larger |a| first; equal |a| -> lower index first; zeros after every non-zero.
    The key -|a| is computed as min(a, -a) in int64: exact for every int64, even -2^63 whose
    negation wraps back to itself (so |-2^63| correctly outranks 2^63 - 1). A stable ascending
    sort on that key gives the lower index on ties, and zeros (key 0) sort after all non-zeros
    (key < 0).
    """
    key = np.minimum(blocks, -blocks)
    return np.argsort(key, axis=-1, kind="stable")


def _keep_mask(blocks: np.ndarray, nnz: int) -> np.ndarray:
    """bool [..., BZ]: the first ``nnz`` ranked positions of each int64 block, minus zeros."""
    top = _rank_order(blocks)[..., :nnz]
    mask = np.zeros(blocks.shape, dtype=bool)
    np.put_along_axis(mask, top, True, axis=-1)
    # Zeros rank last, so they only get in when a block has fewer than nnz non-zeros.
    return mask & (blocks != 0)


def select_mask(blocks, nnz: int) -> np.ndarray:
    """Keep mask of the top-``nnz`` activations of each block along the last axis.

    Parameters
    ----------
    blocks
        Activations [..., BZ], any integer dtype fitting int64.
    nnz
        Entries kept per block (at most; zeros are never kept).

    Returns
    -------
    np.ndarray
        bool [..., BZ], True where kept; a block with fewer non-zeros than ``nnz`` keeps all.
    """
    blocks = check_tensor(blocks, 64, "A")
    if blocks.ndim < 1:
        raise TensorError("tensor `A`: expected at least 1 dimension, got 0")
    _check_params(blocks.shape[-1], nnz)
    return _keep_mask(blocks, nnz)


def select_order(block, nnz: int) -> np.ndarray:
    """Indices of one block's kept activations, in the order the hardware ranks them.

    Parameters
    ----------
    block
        One 1-D block of BZ activations.
    nnz
        Entries kept (at most).

    Returns
    -------
    np.ndarray
        int64 indices, descending |a|, ties by lower index, non-zeros only; length
        min(nnz, number of non-zeros).
    """
    block = check_tensor(block, 64, "A", ndim=1)
    _check_params(block.shape[0], nnz)
    top = _rank_order(block)[:nnz]
    return top[block[top] != 0].astype(np.int64)


def _act_blocks(a, block_size: int, nnz: int) -> tuple[np.ndarray, int]:
    """A[..., K] -> ([..., Kb, BZ] int64 blocks, K)."""
    block_size, nnz = _check_params(block_size, nnz)
    a = check_tensor(a, 64, "A")
    if a.ndim < 1:
        raise TensorError("tensor `A`: expected at least 1 dimension, got 0")
    return _blocks_last_axis(a, block_size), a.shape[-1]


def prune_activations(a, block_size: int, nnz: int) -> np.ndarray:
    """Dynamic activation DBB along the last axis: the top-``nnz`` of each block survive.

    Parameters
    ----------
    a
        Activations [..., K] (1-D or [M, K]), any integer dtype; K need not be a multiple of
        ``block_size`` (it is zero-padded, which never changes what is kept).
    block_size, nnz
        DBB(block_size, nnz).

    Returns
    -------
    np.ndarray
        int64, the shape of ``a``: kept entries keep their value, the rest become 0.
    """
    blocks, k = _act_blocks(a, block_size, nnz)
    kept = np.where(_keep_mask(blocks, nnz), blocks, 0)
    return _unblock_last_axis(kept, k)


def encode_activations(a, block_size: int, nnz: int) -> ActDBB:
    """Compress A[..., K]: per block a BZ-bit keep mask and ``nnz`` kept values.

    Returns
    -------
    ActDBB
        mask [..., Kb, BZ] and values [..., Kb, nnz] (ascending index order, unused slots 0).
    """
    blocks, k = _act_blocks(a, block_size, nnz)
    mask = _keep_mask(blocks, nnz)
    values, _ = _compact(blocks, mask, nnz)
    return ActDBB(mask, values, int(block_size), int(nnz), int(k))


def decode_activations(enc: ActDBB) -> np.ndarray:
    """Dense (pruned) activations [..., K] (int64, original K) from mask and values.

    Raises
    ------
    ValueError
        The mask and values disagree in shape, or a block's mask has more than ``nnz`` bits.
    """
    mask = np.asarray(enc.mask, dtype=bool)
    values = np.asarray(enc.values, dtype=np.int64)
    if mask.shape[:-1] != values.shape[:-1] or mask.shape[-1] != enc.block_size \
            or values.shape[-1] != enc.nnz:
        raise ValueError(f"activation mask {mask.shape} and values {values.shape} do not fit "
                         f"DBB({enc.block_size}, {enc.nnz})")
    if (mask.sum(axis=-1) > enc.nnz).any():
        raise ValueError(f"an activation mask has more than {enc.nnz} bits set")
    # The j-th set bit of a block's mask holds its j-th value.
    slot = np.where(mask, np.cumsum(mask, axis=-1) - 1, 0)
    dense = np.where(mask, np.take_along_axis(values, slot, axis=-1), 0)
    return _unblock_last_axis(dense, enc.k)


def activation_slots(a, block_size: int, nnz: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compress A[..., K] into the (value, index) slots ``s2ta`` a/aw take and its output DAP
    emits: (mask [..., Kb, BZ] bool, values [..., Kb, nnz], indices [..., Kb, nnz]), kept
    entries in ascending index order, unused slots (0, 0). Same selection as
    :func:`encode_activations`."""
    blocks, _ = _act_blocks(a, block_size, nnz)
    mask = _keep_mask(blocks, nnz)
    values, indices = _compact(blocks, mask, nnz)
    return mask, values, indices


def requantize(o, shift: int, data_width: int) -> np.ndarray:
    """The output DAP's requantization of sums: ReLU, arithmetic shift right by ``shift``,
    saturation to [0, 2^(data_width-1) - 1]. int64, the shape of ``o``."""
    o = np.asarray(o, dtype=np.int64)
    return np.minimum(np.maximum(o, 0) >> shift, (1 << (data_width - 1)) - 1)
