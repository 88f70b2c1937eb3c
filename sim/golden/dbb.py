"""Density-bound-block (DBB) formats: check, encode and decode, for weights and activations.

DBB(BZ, NNZ): every block of BZ consecutive elements along K holds at most NNZ non-zeros.
K is axis 0 of W[K, N] and the last axis of A[..., K]; it is zero-padded to whole blocks.

* Weights (static): a tensor over the bound is rejected, naming its first bad block. The
  compressed form keeps NNZ (value, index) slots per block, non-zeros in ascending index order,
  unused slots (0, 0): what ``dbb-pe`` and ``s2ta`` receive.
* Activations (dynamic, lossy): keep the NNZ entries of largest magnitude per block; equal
  magnitudes go to the lower index; a zero is never kept. The compressed form is a BZ-bit mask
  plus NNZ values in ascending index order: what ``act-dbb`` emits.
"""

import dataclasses

import numpy as np

from .numeric import pad_to_multiple

__all__ = [
    "DBBViolation", "WeightDBB", "ActDBB", "check_weights", "encode_weights",
    "decode_weights", "select_mask", "prune_activations", "encode_activations",
    "decode_activations",
]


class DBBViolation(ValueError):
    """A weight tensor breaks its DBB bound; the message names the first violating block."""


@dataclasses.dataclass(frozen=True)
class WeightDBB:
    """Compressed DBB weights of W[K, N]."""

    values: np.ndarray      # int64 [Kb, N, nnz]
    indices: np.ndarray     # int64 [Kb, N, nnz], positions 0..BZ-1 within the block
    block_size: int
    nnz: int
    k: int                  # K before padding


@dataclasses.dataclass(frozen=True)
class ActDBB:
    """Compressed DBB activations of A[..., K]."""

    mask: np.ndarray        # bool [..., Kb, BZ]: kept (and non-zero) positions
    values: np.ndarray      # int64 [..., Kb, nnz]: kept values, ascending index order
    block_size: int
    nnz: int
    k: int


def _weight_blocks(w, block_size):
    """W[K, N] -> [Kb, BZ, N] (zero-padded)."""
    w = np.asarray(w, dtype=np.int64)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D [K, N], got shape {w.shape}")
    w = pad_to_multiple(w, block_size, axis=0)
    return w.reshape(-1, block_size, w.shape[1])


def check_weights(w, block_size: int, nnz: int, name: str = "W") -> None:
    """Raise :class:`DBBViolation` unless every block of W[K, N] has at most ``nnz`` non-zeros.

    The first violating block is the one with the smallest k, then the smallest column.
    """
    counts = np.count_nonzero(_weight_blocks(w, block_size), axis=1)       # [Kb, N]
    bad = np.argwhere(counts > nnz)
    if len(bad):
        kb, n = (int(i) for i in bad[0])
        lo = kb * block_size
        raise DBBViolation(
            f"weight `{name}` breaks DBB({block_size}, {nnz}): block k={lo}..{lo + block_size - 1}"
            f" of column n={n} has {counts[kb, n]} non-zeros (at most {nnz} allowed)")


def _compact(blocks, keep, nnz):
    """Kept entries of [..., BZ] blocks, in ascending index order, into ``nnz`` slots.

    Returns (values, indices), each [..., nnz]; unused slots are 0. ``keep`` has at most
    ``nnz`` True per block.
    """
    if nnz > blocks.shape[-1]:
        raise ValueError(f"nnz ({nnz}) exceeds the block size ({blocks.shape[-1]})")
    # A stable sort of "not kept" puts the kept positions first, in ascending index order.
    order = np.argsort(~keep, axis=-1, kind="stable")[..., :nnz]
    kept = np.take_along_axis(keep, order, axis=-1)
    values = np.where(kept, np.take_along_axis(blocks, order, axis=-1), 0)
    indices = np.where(kept, order, 0)
    return values.astype(np.int64), indices.astype(np.int64)


def encode_weights(w, block_size: int, nnz: int, name: str = "W") -> WeightDBB:
    """Compress W[K, N] to ``nnz`` (value, index) slots per block and column.

    Raises
    ------
    DBBViolation
        A block holds more than ``nnz`` non-zeros.
    """
    check_weights(w, block_size, nnz, name)
    blocks = _weight_blocks(w, block_size).transpose(0, 2, 1)              # [Kb, N, BZ]
    values, indices = _compact(blocks, blocks != 0, nnz)
    return WeightDBB(values, indices, block_size, nnz, np.asarray(w).shape[0])


def decode_weights(enc: WeightDBB) -> np.ndarray:
    """Dense W[K, N] (int64) from its compressed form."""
    kb, n, _ = enc.values.shape
    blocks = np.zeros((kb, n, enc.block_size), dtype=np.int64)
    # Unused slots are (0, 0); adding instead of assigning keeps a real value at index 0.
    np.add.at(blocks, (np.arange(kb)[:, None, None], np.arange(n)[None, :, None],
                       enc.indices), enc.values)
    return blocks.transpose(0, 2, 1).reshape(kb * enc.block_size, n)[:enc.k]


def select_mask(blocks: np.ndarray, nnz: int) -> np.ndarray:
    """Keep mask of the top-``nnz`` activations of each block along the last axis.

    Rank rule: larger |a| first, equal |a| -> lower index first; zeros are never kept.
    Implemented as a stable sort on -|a| (stability gives the lower index on ties).
    """
    mags = np.abs(blocks.astype(np.int64))
    order = np.argsort(-mags, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(blocks.shape[-1]), axis=-1)
    return (rank < nnz) & (blocks != 0)


def _act_blocks(a, block_size):
    a = np.asarray(a, dtype=np.int64)
    k = a.shape[-1]
    a = pad_to_multiple(a, block_size, axis=a.ndim - 1)
    return a.reshape(*a.shape[:-1], -1, block_size), k


def prune_activations(a, block_size: int, nnz: int) -> np.ndarray:
    """Dynamic activation DBB along the last axis: the top-``nnz`` per block survive, the rest
    become zero. Same shape as ``a``, int64."""
    blocks, k = _act_blocks(a, block_size)
    kept = np.where(select_mask(blocks, nnz), blocks, 0)
    return kept.reshape(*kept.shape[:-2], -1)[..., :k]


def encode_activations(a, block_size: int, nnz: int) -> ActDBB:
    """Compress A[..., K]: per block a BZ-bit mask and ``nnz`` kept values."""
    blocks, k = _act_blocks(a, block_size)
    mask = select_mask(blocks, nnz)
    values, _ = _compact(blocks, mask, nnz)
    return ActDBB(mask, values, block_size, nnz, k)


def decode_activations(enc: ActDBB) -> np.ndarray:
    """Dense (pruned) activations from mask and values."""
    # The j-th set bit of a block's mask holds its j-th value.
    slot = np.cumsum(enc.mask, axis=-1) - 1
    slot = np.where(enc.mask, slot, 0)
    dense = np.where(enc.mask, np.take_along_axis(enc.values, slot, axis=-1), 0)
    return dense.reshape(*dense.shape[:-2], -1)[..., :enc.k]
