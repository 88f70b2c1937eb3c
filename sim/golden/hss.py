"""Hierarchical structured sparsity (HSS, HighLight) for weights: check, encode, decode, prune.

HSS [(G1, H1), (G0, H0)], written ``G1:H1,G0:H0`` (e.g. ``4:6,2:4``): K (axis 0 of W[K, N]) is
cut into rank-0 blocks of H0 elements, grouped into rank-1 groups of H1 blocks (H1 * H0
elements). W is valid iff every rank-0 block holds at most G0 non-zeros and every rank-1 group
holds at most G1 non-empty rank-0 blocks. G:H = H:H is dense at that rank. K is zero-padded to
whole groups. The density bound is (G1 / H1) * (G0 / H0).

Compressed form (what ``hss-mux`` and ``highlight`` receive), per (group, column):

* rank 1: G1 slots, each naming a non-empty rank-0 block of the group (``blocks``, 0..H1-1),
  in ascending block order; unused slots name block 0 and hold only zero values;
* rank 0: per slot, G0 (value, offset) pairs: the block's non-zeros in ascending offset
  (0..H0-1) order, unused pairs (0, 0).

Prune (lossy, for dense weights): rank 0 first (keep the G0 largest |w| of every H0 block,
ties to the lower index; zeros never count), then rank 1 (keep the G1 rank-0 blocks of every
group with the largest sum of |w| after rank 0, ties to the lower block index).

Rank 1 shared by columns (``share=S``, what the ``highlight`` array needs): the columns of W
are taken in tiles of S (n = 0..S-1, S..2S-1, ...; the last tile may be narrower), and the
columns of a tile share one rank-1 block list per group. The rule becomes: in every group, the
rank-0 blocks that are non-empty in *any* column of the tile number at most G1 (rank 0 stays
per column). The array can then pick a group's blocks once per activation row at its edge for
all S columns, instead of in every cell (hw/highlight.py). Encoding names the tile's blocks
(their union, ascending) in every column's slots; a column whose block is empty holds zero
pairs there. Pruning keeps, per group and tile, the G1 blocks with the largest sum of |w| over
the tile's columns (after the per-column rank-0 prune), ties to the lower block index.
``share=None`` shares rank 1 across all columns (valid for every tile width); ``share=1`` is
plain HSS. ``sparsegen bench hss-share`` prints what sharing costs in kept magnitude.
"""

import dataclasses
import re

import numpy as np

from .dbb import prune_activations
from .numeric import check_tensor, pad_to_multiple

__all__ = ["HSSPattern", "HSSViolation", "WeightHSS", "parse_pattern", "check_weights",
           "encode_weights", "decode_weights", "prune_weights", "group_blocks"]

_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*$")


class HSSViolation(ValueError):
    """A weight tensor breaks its HSS pattern; the message names the first bad group.

    Groups are visited in K order, then by column; within a group the rank-0 rule is checked
    before the rank-1 rule. Examples:

    "weight `W` breaks HSS 4:6,2:4: group k=0..23 of column n=1 has 3 non-zeros in rank-0
    block k=4..7 (at most 2 allowed)";
    "weight `W` breaks HSS 4:6,2:4: group k=24..47 of column n=0 has 5 non-empty rank-0 blocks
    (at most 4 allowed)".
    """


@dataclasses.dataclass(frozen=True)
class HSSPattern:
    """One two-rank HSS pattern: G1 of H1 blocks non-empty, G0 of H0 values per block."""

    g1: int
    h1: int
    g0: int
    h0: int

    def __post_init__(self):
        for name in ("g1", "h1", "g0", "h0"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"`{name}` must be an int, not {value!r}")
        for g, h, rank in ((self.g1, self.h1, 1), (self.g0, self.h0, 0)):
            if not 1 <= g <= h:
                raise ValueError(f"rank-{rank} pattern {g}:{h} must have 1 <= G <= H")

    def __str__(self) -> str:
        return f"{self.g1}:{self.h1},{self.g0}:{self.h0}"

    @property
    def group_size(self) -> int:
        """K elements per rank-1 group: H1 * H0."""
        return self.h1 * self.h0

    @property
    def density(self) -> float:
        """Largest fraction of non-zeros the pattern allows: (G1 / H1) * (G0 / H0)."""
        return self.g1 * self.g0 / (self.h1 * self.h0)

    @property
    def dense(self) -> bool:
        return self.g1 == self.h1 and self.g0 == self.h0


def parse_pattern(pattern) -> HSSPattern:
    """An :class:`HSSPattern` from ``"G1:H1,G0:H0"`` text, a pattern, or ((G1, H1), (G0, H0)).

    Raises
    ------
    ValueError
        Malformed text, or G outside 1..H at a rank.
    """
    if isinstance(pattern, HSSPattern):
        return pattern
    if isinstance(pattern, str):
        match = _PATTERN.match(pattern)
        if match is None:
            raise ValueError(f"HSS pattern must look like 'G1:H1,G0:H0' (e.g. 4:6,2:4), "
                             f"not {pattern!r}")
        return HSSPattern(*(int(g) for g in match.groups()))
    (g1, h1), (g0, h0) = pattern
    return HSSPattern(g1, h1, g0, h0)


@dataclasses.dataclass(frozen=True)
class WeightHSS:
    """Compressed HSS weights of W[K, N] (Gr = rank-1 groups after padding K)."""

    blocks: np.ndarray      # int64 [Gr, N, G1]: rank-0 block of each rank-1 slot, 0..H1-1
    values: np.ndarray      # int64 [Gr, N, G1, G0]
    offsets: np.ndarray     # int64 [Gr, N, G1, G0]: position within the block, 0..H0-1
    pattern: HSSPattern
    k: int                  # K before padding


def group_blocks(w: np.ndarray, pattern: HSSPattern) -> np.ndarray:
    """int64 W[K, N] -> [Gr, N, H1, H0] (K zero-padded to whole groups)."""
    w = pad_to_multiple(w, pattern.group_size, axis=0)
    groups = w.shape[0] // pattern.group_size
    return w.reshape(groups, pattern.h1, pattern.h0, w.shape[1]).transpose(0, 3, 1, 2)


def _share(share, n: int) -> int:
    """Columns per rank-1 tile: ``None`` = all ``n`` columns; at least 1."""
    if share is None:
        return max(1, n)
    if isinstance(share, bool) or not isinstance(share, int | np.integer) or share < 1:
        raise ValueError(f"`share` must be a positive int or None, not {share!r}")
    return int(share)


def _tile_nonempty(nonempty: np.ndarray, share: int) -> np.ndarray:
    """[Gr, N, H1] per-column non-empty blocks -> [Gr, N, H1]: the union over each column's
    tile of ``share`` columns (repeated for every column of the tile)."""
    gr, n, h1 = nonempty.shape
    pad = -n % share
    wide = np.pad(nonempty, ((0, 0), (0, pad), (0, 0)))
    union = wide.reshape(gr, -1, share, h1).any(axis=2)          # [Gr, tiles, H1]
    return np.repeat(union, share, axis=1)[:, :n]


def _raise_first_violation(groups: np.ndarray, p: HSSPattern, k: int, name: str,
                           share: int = 1) -> None:
    counts = np.count_nonzero(groups, axis=-1)                  # [Gr, N, H1]
    over0 = counts > p.g0                                       # rank-0 blocks over G0
    used = _tile_nonempty(counts > 0, share)                    # share = 1: the column's own
    over1 = np.count_nonzero(used, axis=-1) > p.g1              # [Gr, N]
    bad = np.argwhere(over0.any(axis=-1) | over1)               # C order: group, then column
    if not len(bad):
        return
    g, n = (int(i) for i in bad[0])
    lo = g * p.group_size
    span = f"group k={lo}..{min(lo + p.group_size, k) - 1}"
    where = f"weight `{name}` breaks HSS {p}: {span} of column n={n}"
    if over0[g, n].any():
        b = int(np.flatnonzero(over0[g, n])[0])
        blo = lo + b * p.h0
        raise HSSViolation(f"{where} has {int(counts[g, n, b])} non-zeros in rank-0 block "
                           f"k={blo}..{min(blo + p.h0, k) - 1} (at most {p.g0} allowed)")
    if share == 1:
        raise HSSViolation(f"{where} has {int(np.count_nonzero(counts[g, n]))} non-empty "
                           f"rank-0 blocks (at most {p.g1} allowed)")
    first = n - n % share
    last = min(first + share, groups.shape[1]) - 1
    raise HSSViolation(f"weight `{name}` breaks HSS {p} with rank 1 shared by {share} columns: "
                       f"{span} of columns n={first}..{last} has "
                       f"{int(np.count_nonzero(used[g, n]))} rank-0 blocks non-empty in some "
                       f"column (at most {p.g1} allowed)")


def _weights(w, name):
    return check_tensor(w, 64, name, ndim=2)


def check_weights(w, pattern, name: str = "W", share: int | None = 1) -> None:
    """Check that W[K, N] satisfies HSS ``pattern`` along K, rank 1 shared by tiles of
    ``share`` columns (module docs; 1 = plain HSS, ``None`` = all columns).

    Raises
    ------
    HSSViolation
        Naming the first bad group (K order, then column; for a shared rank-1 rule, the tile's
        columns) and what is wrong in it.
    TensorError
        ``w`` is not a 2-D integer tensor.
    ValueError
        ``share`` is not a positive int or None.
    """
    p = parse_pattern(pattern)
    w = _weights(w, name)
    _raise_first_violation(group_blocks(w, p), p, w.shape[0], name, _share(share, w.shape[1]))


def encode_weights(w, pattern, name: str = "W", share: int | None = 1) -> WeightHSS:
    """Compress W[K, N] to HSS slots (see the module docs for the layout); with ``share`` > 1
    the columns of each tile name the same blocks (the union of their non-empty ones).

    Raises
    ------
    HSSViolation, TensorError, ValueError
        As :func:`check_weights`.
    """
    p = parse_pattern(pattern)
    w = _weights(w, name)
    groups = group_blocks(w, p)                                 # [Gr, N, H1, H0]
    share = _share(share, w.shape[1])
    _raise_first_violation(groups, p, w.shape[0], name, share)
    # Rank 1: the non-empty blocks first, in ascending order (stable sort of "empty").
    nonempty = _tile_nonempty((groups != 0).any(axis=-1), share)    # [Gr, N, H1]
    order = np.argsort(~nonempty, axis=-1, kind="stable")[..., :p.g1]
    used = np.take_along_axis(nonempty, order, axis=-1)
    blocks = np.where(used, order, 0)
    chosen = np.take_along_axis(groups, order[..., None], axis=2)   # [Gr, N, G1, H0]
    # Rank 0: the block's non-zeros first, in ascending offset order.
    keep = chosen != 0
    offs = np.argsort(~keep, axis=-1, kind="stable")[..., :p.g0]
    live = np.take_along_axis(keep, offs, axis=-1) & used[..., None]
    values = np.where(live, np.take_along_axis(chosen, offs, axis=-1), 0)
    offsets = np.where(live, offs, 0)
    return WeightHSS(blocks.astype(np.int64), values.astype(np.int64),
                     offsets.astype(np.int64), p, w.shape[0])


def decode_weights(enc: WeightHSS) -> np.ndarray:
    """Dense W[K, N] (int64, original K) from its compressed form.

    Raises
    ------
    ValueError
        Inconsistent shapes, or a block index or offset outside its range.
    """
    p = enc.pattern
    blocks = np.asarray(enc.blocks, dtype=np.int64)
    values = np.asarray(enc.values, dtype=np.int64)
    offsets = np.asarray(enc.offsets, dtype=np.int64)
    if blocks.ndim != 3 or values.shape != offsets.shape or values.shape != (
            *blocks.shape, p.g0) or blocks.shape[-1] != p.g1:
        raise ValueError(f"HSS blocks {blocks.shape}, values {values.shape} and offsets "
                         f"{offsets.shape} do not fit [Gr, N, {p.g1}(, {p.g0})]")
    for what, x, hi in (("block index", blocks, p.h1), ("offset", offsets, p.h0)):
        bad = (x < 0) | (x >= hi)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{what} {int(x[where])} at {where} is outside 0..{hi - 1}")
    gr, n, _ = blocks.shape
    dense = np.zeros((gr, n, p.h1, p.h0), dtype=np.int64)
    # Add, do not assign: unused (0, 0) pairs and slots must not overwrite real values.
    np.add.at(dense, (np.arange(gr)[:, None, None, None], np.arange(n)[None, :, None, None],
                      blocks[..., None], offsets), values)
    return dense.transpose(0, 2, 3, 1).reshape(gr * p.group_size, n)[:enc.k]


def prune_weights(w, pattern, name: str = "W", share: int | None = 1) -> np.ndarray:
    """Prune dense W[K, N] to HSS ``pattern``: rank 0 first, then rank 1 (module docs), rank 1
    shared by tiles of ``share`` columns.

    Returns
    -------
    np.ndarray
        int64 W of the same shape that satisfies the pattern; kept entries keep their value.
    """
    p = parse_pattern(pattern)
    w = _weights(w, name)
    (k, n), share = w.shape, _share(share, w.shape[1])
    # Rank 0: the activation-DBB top-k rule along K (largest |w|, ties to the lower index).
    w0 = prune_activations(pad_to_multiple(w, p.group_size, axis=0).T, p.h0, p.g0).T
    groups = group_blocks(w0, p)                                # [Gr, N, H1, H0]
    # |w| summed in int64 (exact for any data width up to 32 bits), over each tile's columns.
    sums = np.abs(groups).sum(axis=-1)                          # [Gr, N, H1]
    sums = pad_to_multiple(sums, share, axis=1)
    sums = sums.reshape(sums.shape[0], -1, share, p.h1).sum(axis=2)     # [Gr, tiles, H1]
    top = np.argsort(-sums, axis=-1, kind="stable")[..., :p.g1]
    keep = np.zeros(sums.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=-1)
    keep = np.repeat(keep, share, axis=1)[:, :n]                # [Gr, N, H1]
    pruned = np.where(keep[..., None], groups, 0)
    gr, n = pruned.shape[:2]
    return pruned.transpose(0, 2, 3, 1).reshape(gr * p.group_size, n)[:k]
