"""SCNN golden models: the compressed-sparse (RLE) format, the direct convolution, and the
PT-IS-CP-sparse dataflow computed tile by tile with halos (pure numpy, no Amaranth).

Format (DESIGN.md). A sequence of values is stored as ``(value, run)`` pairs: ``run`` (4 bits,
0..15) is the number of zeros before ``value`` since the previous pair. A run of more than 15
zeros inserts an explicit zero value: after 15 zeros the 16th is stored as the pair ``(0, 15)``
and counting restarts. Zeros after the last non-zero are not stored; the decoder knows the
length. Encoding rule, in the order of the sequence::

    run = 0
    for v in seq:
        if v != 0 or run == 15: emit (v, run); run = 0
        else: run += 1

Grouping. Weights are compressed per input channel ``c`` and output-channel group ``g`` (``kc``
output channels): the ``kc x R x S`` block ``F[g*kc:(g+1)*kc, c]`` in (r, s, k) order, k
fastest, so consecutive non-zero weights mostly belong to different output channels (the
products of a weight vector then scatter to different output planes). Activations are
compressed per input channel of a planar tile: the ``Ht x Wt`` block of channel ``c`` in
row-major (y, x) order.

Convolution (DESIGN.md): ``O[k,y,x] = sum_{c,r,s} I[c, y+r-p, x+s-p] * F[k,c,r,s]``, stride 1,
zero padding p, wrapped at ``acc_width`` bits.

Dataflow (PT-IS-CP-sparse). The padded input plane is cut into ``pe_rows x pe_cols`` planar
tiles of ``Ht x Wt``; each PE scatters every product of a non-zero weight and a non-zero
activation into an accumulator *frame* of ``(Ht+R-1) x (Wt+S-1)`` per output channel: the
activation at tile position (y, x) times weight (k, r, s) lands at frame position
``(y + R-1-r, x + S-1-s)``. Frame rows ``>= R-1`` and columns ``>= S-1`` are the PE's own
outputs; the top ``R-1`` rows and left ``S-1`` columns are halo partial sums of the neighbours
above and to the left. Exchange order: first every PE adds its left halo columns (all frame
rows) into its left neighbour's columns ``Wt..Wt+S-2``, then its top halo rows (own columns)
into its upper neighbour's rows ``Ht..Ht+R-2``; the top-left corner so reaches the diagonal
neighbour in two hops. Halos leaving the grid are outputs outside the plane (discarded). Planes
larger than the grid are covered by passes whose input regions overlap by ``R-1`` rows (``S-1``
columns).
"""

import dataclasses
import math

import numpy as np

from .numeric import TensorError, check_tensor, wrap

__all__ = [
    "RUN_BITS", "MAX_RUN", "RLEError", "encode_rle", "decode_rle", "check_rle", "rle_positions",
    "encode_weights", "encode_activations", "conv_direct", "conv_einsum", "macs_nonzero",
    "TilePlan", "plan_tiles", "pad_input", "frame_of_tile", "dataflow_conv",
]

RUN_BITS = 4
MAX_RUN = (1 << RUN_BITS) - 1


class RLEError(ValueError):
    """A compressed stream is malformed (run out of range, misplaced explicit zero, too long)."""


def encode_rle(seq) -> tuple[np.ndarray, np.ndarray]:
    """Compress a 1-D integer sequence into ``(values, runs)`` int64 arrays (see module docs)."""
    seq = np.asarray(seq, dtype=np.int64).ravel()
    values, runs = [], []
    run = 0
    for v in seq.tolist():
        if v != 0 or run == MAX_RUN:
            values.append(v)
            runs.append(run)
            run = 0
        else:
            run += 1
    return np.array(values, dtype=np.int64), np.array(runs, dtype=np.int64)


def rle_positions(runs) -> np.ndarray:
    """Position in the decoded sequence of every pair: ``pos[n] = sum(runs[:n+1]) + n``."""
    runs = np.asarray(runs, dtype=np.int64)
    return np.cumsum(runs + 1) - 1


def check_rle(values, runs, length: int) -> None:
    """Raise :class:`RLEError` unless ``(values, runs)`` is the canonical encoding of some
    sequence of ``length`` values.

    Canonical: runs in 0..15, an explicit zero only with run 15, and the last pair inside the
    sequence.
    """
    values = np.asarray(values, dtype=np.int64)
    runs = np.asarray(runs, dtype=np.int64)
    if values.shape != runs.shape or values.ndim != 1:
        raise RLEError(f"values {values.shape} and runs {runs.shape} must be equal 1-D shapes")
    bad = (runs < 0) | (runs > MAX_RUN)
    if bad.any():
        n = int(np.argmax(bad))
        raise RLEError(f"pair {n}: run {int(runs[n])} is outside 0..{MAX_RUN}")
    bad = (values == 0) & (runs != MAX_RUN)
    if bad.any():
        n = int(np.argmax(bad))
        raise RLEError(f"pair {n}: explicit zero with run {int(runs[n])} (only after "
                       f"{MAX_RUN} zeros)")
    if len(runs) and int(rle_positions(runs)[-1]) >= length:
        raise RLEError(f"the pairs cover {int(rle_positions(runs)[-1]) + 1} values, more than "
                       f"the sequence length {length}")


def decode_rle(values, runs, length: int) -> np.ndarray:
    """The ``length`` values ``(values, runs)`` encode (checked with :func:`check_rle`)."""
    check_rle(values, runs, length)
    out = np.zeros(length, dtype=np.int64)
    if len(runs):
        out[rle_positions(runs)] = values
    return out


def encode_weights(filters, kc: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """``filters[K, C, R, S]`` -> ``blocks[g][c] = (values, runs)`` of the ``kc x R x S`` block
    of group ``g`` in (r, s, k) order, k fastest (K zero-padded to a multiple of ``kc``)."""
    f = np.asarray(filters, dtype=np.int64)
    k, c = f.shape[:2]
    groups = math.ceil(k / kc)
    f = np.pad(f, ((0, groups * kc - k), (0, 0), (0, 0), (0, 0)))
    return [[encode_rle(f[g * kc:(g + 1) * kc, ch].transpose(1, 2, 0)) for ch in range(c)]
            for g in range(groups)]


def encode_activations(tile) -> list[tuple[np.ndarray, np.ndarray]]:
    """``tile[C, Ht, Wt]`` -> per channel ``(values, runs)`` in row-major order."""
    t = np.asarray(tile, dtype=np.int64)
    return [encode_rle(t[ch]) for ch in range(t.shape[0])]


# -- convolution oracles ------------------------------------------------------------------------


def _check_conv(ifmap, filters, pad, data_width):
    ifmap = check_tensor(ifmap, data_width, "ifmap", ndim=3)
    filters = check_tensor(filters, data_width, "filters", ndim=4)
    if filters.shape[1] != ifmap.shape[0]:
        raise TensorError(f"tensor `filters`: has {filters.shape[1]} input channels but ifmap "
                          f"has {ifmap.shape[0]}")
    if isinstance(pad, bool) or not isinstance(pad, int | np.integer) or pad < 0:
        raise TensorError(f"`pad` must be a non-negative integer, not {pad!r}")
    _, h, w = ifmap.shape
    _, _, r, s = filters.shape
    if 0 in ifmap.shape or 0 in filters.shape:
        raise TensorError(f"tensors `ifmap` {ifmap.shape} and `filters` {filters.shape} must "
                          f"not be empty")
    if h + 2 * pad < r or w + 2 * pad < s:
        raise TensorError(f"tensor `filters`: {r}x{s} does not fit the {h}x{w} ifmap with "
                          f"padding {pad}")
    return ifmap, filters


def conv_direct(ifmap, filters, pad: int = 0, acc_width: int = 24,
                data_width: int = 16) -> np.ndarray:
    """The oracle: O[K, P, Q] by the definition, one output at a time (slow, obviously right).
    """
    ifmap, filters = _check_conv(ifmap, filters, pad, data_width)
    c, h, w = ifmap.shape
    k, _, r, s = filters.shape
    p, q = h + 2 * pad - r + 1, w + 2 * pad - s + 1
    out = np.zeros((k, p, q), dtype=np.int64)
    for kk in range(k):
        for y in range(p):
            for x in range(q):
                total = 0
                for cc in range(c):
                    for rr in range(r):
                        for ss in range(s):
                            iy, ix = y + rr - pad, x + ss - pad
                            if 0 <= iy < h and 0 <= ix < w:
                                total += int(ifmap[cc, iy, ix]) * int(filters[kk, cc, rr, ss])
                out[kk, y, x] = total
    return wrap(out, acc_width)


def conv_einsum(ifmap, filters, pad: int = 0, acc_width: int = 24,
                data_width: int = 16) -> np.ndarray:
    """Fast convolution by windows and ``einsum`` (an independent second implementation)."""
    ifmap, filters = _check_conv(ifmap, filters, pad, data_width)
    _, h, w = ifmap.shape
    _, _, r, s = filters.shape
    x = np.pad(ifmap, ((0, 0), (pad, pad), (pad, pad)))
    p, q = h + 2 * pad - r + 1, w + 2 * pad - s + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (r, s), axis=(1, 2))  # C,P,Q,R,S
    return wrap(np.einsum("cpqrs,kcrs->kpq", windows[:, :p, :q], filters), acc_width)


def macs_nonzero(ifmap, filters, pad: int = 0) -> int:
    """Products of the convolution whose activation and weight are both non-zero."""
    a = (np.asarray(ifmap) != 0).astype(np.int64)
    f = (np.asarray(filters) != 0).astype(np.int64)
    _, h, w = a.shape
    _, _, r, s = f.shape
    x = np.pad(a, ((0, 0), (pad, pad), (pad, pad)))
    p, q = h + 2 * pad - r + 1, w + 2 * pad - s + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (r, s), axis=(1, 2))[:, :p, :q]
    return int(np.einsum("cpqrs,kcrs->", windows, f))


# -- planar tiling ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """How a padded input plane is cut into PE tiles and passes.

    A pass covers input rows ``[y0, y0 + pe_rows*ht)`` (columns likewise) of the padded plane
    (zero beyond its end) and yields the complete outputs ``[y0, y0 + out_rows)``.
    """

    pe_rows: int
    pe_cols: int
    ht: int
    wt: int
    r: int
    s: int
    p: int                # output rows
    q: int                # output columns

    @property
    def out_rows(self) -> int:
        return self.pe_rows * self.ht - (self.r - 1)

    @property
    def out_cols(self) -> int:
        return self.pe_cols * self.wt - (self.s - 1)

    @property
    def passes(self) -> list[tuple[int, int]]:
        """(y0, x0) of every spatial pass, row-major."""
        return [(y, x) for y in range(0, self.p, self.out_rows)
                for x in range(0, self.q, self.out_cols)]


def plan_tiles(h: int, w: int, r: int, s: int, pad: int, pe_rows: int, pe_cols: int,
               max_h: int, max_w: int) -> TilePlan:
    """Choose the tile size: the smallest that covers the plane in one pass, else the largest.

    Tiles are at least ``R-1`` rows and ``S-1`` columns, so a halo lands in the neighbour's
    own region (one hop).

    Raises
    ------
    TensorError
        The filter needs a taller (wider) tile than ``max_h`` (``max_w``) allows.
    """
    p, q = h + 2 * pad - r + 1, w + 2 * pad - s + 1
    dims = []
    for out, k, pes, limit, what in ((p, r, pe_rows, max_h, "max_tile_h"),
                                     (q, s, pe_cols, max_w, "max_tile_w")):
        t = min(limit, max(k - 1, 1, math.ceil((out + k - 1) / pes)))
        # A tile holds at least a halo's R-1 (S-1), and the PEs' tiles together at least the
        # filter's R (S) rows (columns), so that one output position lies within them.
        need = max(k - 1, math.ceil(k / pes))
        if t < need:
            raise TensorError(f"tensor `filters`: a {r}x{s} filter needs tiles of at least "
                              f"{need} (`{what}` is {limit})")
        dims.append(t)
    return TilePlan(pe_rows, pe_cols, dims[0], dims[1], r, s, p, q)


def pad_input(ifmap: np.ndarray, pad: int, plan: TilePlan, y0: int, x0: int) -> np.ndarray:
    """The input region of the pass at (y0, x0): ``[C, pe_rows*Ht, pe_cols*Wt]`` of the
    zero-padded plane (zeros beyond it)."""
    c, h, w = ifmap.shape
    x = np.pad(ifmap, ((0, 0), (pad, pad), (pad, pad)))
    hh, ww = plan.pe_rows * plan.ht, plan.pe_cols * plan.wt
    region = np.zeros((c, hh, ww), dtype=np.int64)
    part = x[:, y0:y0 + hh, x0:x0 + ww]
    region[:, :part.shape[1], :part.shape[2]] = part
    return region


def frame_of_tile(tile: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """The accumulator frame ``[K, Ht+R-1, Wt+S-1]`` one PE builds from its tile, by scattering
    every non-zero product to its output coordinate (int64, not wrapped)."""
    c, ht, wt = tile.shape
    k, _, r, s = filters.shape
    frame = np.zeros((k, ht + r - 1, wt + s - 1), dtype=np.int64)
    for ch in range(c):
        values, runs = encode_rle(tile[ch])
        pos = rle_positions(runs)
        keep = values != 0
        ys, xs, a = pos[keep] // wt, pos[keep] % wt, values[keep]
        for rr in range(r):
            for ss in range(s):
                w = filters[:, ch, rr, ss]
                if not w.any() or not len(a):
                    continue
                np.add.at(frame, (slice(None), ys + r - 1 - rr, xs + s - 1 - ss),
                          w[:, None] * a[None, :])
    return frame


def dataflow_conv(ifmap, filters, pad: int, plan: TilePlan, acc_width: int = 24,
                  data_width: int = 16) -> np.ndarray:
    """O[K, P, Q] by the PT-IS-CP-sparse dataflow: per pass, per PE frame, halo exchange
    (left columns first, then top rows), own regions assembled."""
    ifmap, filters = _check_conv(ifmap, filters, pad, data_width)
    k, _, r, s = filters.shape
    ht, wt = plan.ht, plan.wt
    out = np.zeros((k, plan.p, plan.q), dtype=np.int64)
    for y0, x0 in plan.passes:
        region = pad_input(ifmap, pad, plan, y0, x0)
        frames = [[frame_of_tile(region[:, i * ht:(i + 1) * ht, j * wt:(j + 1) * wt], filters)
                   for j in range(plan.pe_cols)] for i in range(plan.pe_rows)]
        for i in range(plan.pe_rows):               # left halo columns, all rows
            for j in range(1, plan.pe_cols):
                frames[i][j - 1][:, :, wt:wt + s - 1] += frames[i][j][:, :, :s - 1]
        for i in range(1, plan.pe_rows):            # then top halo rows, own columns
            for j in range(plan.pe_cols):
                frames[i - 1][j][:, ht:ht + r - 1, s - 1:] += frames[i][j][:, :r - 1, s - 1:]
        full = np.zeros((k, plan.pe_rows * ht, plan.pe_cols * wt), dtype=np.int64)
        for i in range(plan.pe_rows):
            for j in range(plan.pe_cols):
                full[:, i * ht:(i + 1) * ht, j * wt:(j + 1) * wt] = frames[i][j][:, r - 1:,
                                                                                  s - 1:]
        ny = min(plan.out_rows, plan.p - y0)
        nx = min(plan.out_cols, plan.q - x0)
        out[:, y0:y0 + ny, x0:x0 + nx] = full[:, :ny, :nx]
    return wrap(out, acc_width)
