"""Sparse-on-Dense's compressed operand format: bitmap + packed values per block of K.

A tensor is stored along its reduction axis (the last axis here) in blocks of ``block_size``
(BZ) positions. Each block is a BZ-bit ``mask`` (bit j set when position j holds a non-zero)
and its non-zero values packed in position order into ``values[0 : popcount(mask)]``; the
slots after them are zero. Any density works, from an all-zero block (mask 0, no values) to a
dense one (mask all ones, BZ values); K is zero-padded to whole blocks.

Storage of one block: BZ + nnz x data_width bits (the buffer keeps only the packed values);
:func:`stored_bits` gives a tensor's total. Decoding position j is ``values[popcount(mask[:j])]``
if ``mask[j]`` else 0, which the hardware does by shifting (``hw/sod.py``).
"""

import dataclasses

import numpy as np

from .numeric import pad_to_multiple

__all__ = ["BitmapBlocks", "encode", "decode", "check", "stored_bits", "dense_bits"]


@dataclasses.dataclass(frozen=True)
class BitmapBlocks:
    """A tensor [..., K] in bitmap blocks: ``mask`` [..., Kb] (int64, bit j = position j),
    ``values`` [..., Kb, BZ] (packed non-zeros, zeros after them), the original ``k``."""

    mask: np.ndarray
    values: np.ndarray
    block_size: int
    k: int


def _check_block_size(block_size) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or not 1 <= block_size <= 62:
        raise ValueError(f"`block_size` must be an integer between 1 and 62, not {block_size!r}")
    return block_size


def encode(x, block_size: int) -> BitmapBlocks:
    """Compress ``x`` [..., K] along its last axis into bitmap blocks of ``block_size``."""
    bz = _check_block_size(block_size)
    x = np.asarray(x, dtype=np.int64)
    k = x.shape[-1]
    blocks = pad_to_multiple(x, bz, axis=-1)
    blocks = blocks.reshape(*x.shape[:-1], blocks.shape[-1] // bz, bz)
    nonzero = blocks != 0
    mask = (nonzero.astype(np.int64) << np.arange(bz, dtype=np.int64)).sum(axis=-1)
    # Packed order: a stable sort that puts non-zeros first keeps their position order.
    order = np.argsort(~nonzero, axis=-1, kind="stable")
    values = np.take_along_axis(blocks, order, axis=-1)
    values = np.where(np.take_along_axis(nonzero, order, axis=-1), values, 0)
    return BitmapBlocks(mask=mask, values=values, block_size=bz, k=k)


def check(enc: BitmapBlocks) -> None:
    """Raise ``ValueError`` unless ``enc`` is a well-formed encoding: masks within BZ bits,
    exactly popcount(mask) non-zero packed values per block, zeros after them."""
    bz = enc.block_size
    if enc.values.shape[-1] != bz or enc.values.shape[:-1] != enc.mask.shape:
        raise ValueError(f"values {enc.values.shape} do not match mask {enc.mask.shape} "
                         f"and block size {bz}")
    if (enc.mask < 0).any() or (enc.mask >> bz).any():
        raise ValueError(f"a mask does not fit in {bz} bits")
    count = ((enc.mask[..., None] >> np.arange(bz)) & 1).sum(axis=-1)
    slot = np.arange(bz)
    used = slot < count[..., None]
    if ((enc.values != 0) != used).any():
        raise ValueError("a block's packed values are not popcount(mask) non-zeros "
                         "followed by zeros")


def decode(enc: BitmapBlocks) -> np.ndarray:
    """The dense tensor [..., K] of an encoding."""
    check(enc)
    bz = enc.block_size
    bits = (enc.mask[..., None] >> np.arange(bz)) & 1                       # [..., Kb, BZ]
    slot = np.cumsum(bits, axis=-1) - 1                                      # packed index
    dense = np.where(bits == 1,
                     np.take_along_axis(enc.values, np.clip(slot, 0, bz - 1), axis=-1), 0)
    dense = dense.reshape(*enc.mask.shape[:-1], -1)
    return dense[..., :enc.k]


def stored_bits(x, block_size: int, data_width: int) -> int:
    """Bits a buffer holds for ``x`` [..., K] in this format: BZ mask bits per block and
    ``data_width`` bits per non-zero."""
    enc = encode(x, block_size)
    return int(enc.mask.size * block_size + np.count_nonzero(enc.values) * data_width)


def dense_bits(x, data_width: int) -> int:
    """Bits of ``x`` stored dense."""
    return int(np.asarray(x).size * data_width)
