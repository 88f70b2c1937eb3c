"""SCNN host side: tiling a convolution over the PE grid, the input word stream, reading the
drained outputs back, the cycle model, and the layer runner behind ``sparsegen sim scnn``.

The host does what SCNN's driver would: zero-pads the plane (padding zeros are free in the
compressed format), cuts it into one ``Ht x Wt`` tile per PE (:func:`~.golden.scnn.plan_tiles`;
several spatial passes with overlapping input regions when the plane exceeds the grid),
compresses every tile channel and every weight block with the golden encoder, and when the
channels of a pass do not fit a PE's activation buffer, splits them into chunks that reload the
buffer for every output-channel group (the accumulators keep their partial sums across chunks).

Word stream of a pass (one chunk)::

    CONFIG, ACT (all PEs, all channels), then per group g: WGT (channels in order), DRAIN

and with several chunks: per group g, per chunk: CONFIG, ACT (chunk), WGT (g, chunk); DRAIN.
The ACT words of a load travel in parallel, one lane per PE column (``Scnn``'s input): each
column's words, its PEs top to bottom and their channels in order, fill its lane from the
load's first transfer, so a load takes as many transfers as its busiest column has words.
WGT words travel in the same lanes, every lane the same word unless the layer is split into
output-channel column groups (``build_program(..., groups=G)``, :func:`plan_groups`): then
"group" above is a round, in which each column group takes its own kc-group's words in its
lanes while the activations are replicated into every group's matching columns.
"""

import collections
import dataclasses
import math
import time

import numpy as np

from ..gen.design import Host
from ..gen.generate import generate
from ..hw.scnn import (
    DRAIN_LATENCY,
    OARAM_WRITE_LATENCY,
    PRODUCT_LATENCY,
    WEIGHT_ENTRY_DELAY,
    Cmd,
    Scnn,
    ScnnConfig,
    gcols_code,
    plane_pitch,
    walk_cycles,
)
from .energy import no_energy, scnn_layer_energy
from .golden import scnn as gs
from .golden.numeric import TensorError, check_tensor
from .layer import RunFigures
from .player import play
from .tb.bits import pack_many, unpack

__all__ = ["SCNN", "Program", "ScnnResult", "build_program", "decode_outputs",
           "first_divergence", "model_cycles", "run_conv", "model_conv", "payload_of",
           "act_words", "pair_bound", "group_choices", "plan_groups", "check_groups"]


@dataclasses.dataclass
class Program:
    """Everything a run needs: the input words and how to read the outputs back."""

    config: object
    plan: gs.TilePlan
    shape: tuple                    # (K, C, R, S, pad)
    words: list                     # (kind, cols, last, values, runs, geom) per transfer:
    #   CONFIG/DRAIN: cols 0, last/values/runs empty; ACT, WGT: cols has one entry per PE
    #   column, (PE row (0 for WGT), last, values, runs) or None, last/values/runs are empty
    drains: list                    # (y0, x0, round) per DRAIN, in order
    blocks: list                    # per word: key into `work` (WGT: one (pass, kc-group,
    #   channel, entry) or None per column group) or None
    work: dict                      # cycle-model inputs per WGT word: bank loads per PE
    expected: np.ndarray
    relu: bool
    operands: tuple = ()            # (ifmap, filters) as checked
    groups: int = 1                 # output-channel column groups (see build_program)
    rounds: int = 0                 # DRAINs per pass: kc-groups per column group

    @property
    def group_cols(self) -> int:
        """PE columns per column group."""
        return self.config.pe_cols // self.groups

    @property
    def transfers(self) -> int:
        """Output transfers: ``kc x Ht`` frame rows per DRAIN."""
        return len(self.drains) * self.config.kc * self.plan.ht

    @property
    def halo_traffic(self) -> int:
        """Partial sums sent between neighbouring PEs (both phases, all groups and passes), in
        closed form: the formula the RTL count (``Scnn.probes``' ``halo``) is tested against
        and ``sim --model`` reports."""
        cfg, plan = self.config, self.plan
        hacc = plan.ht + plan.r - 1
        per = (cfg.pe_rows * (cfg.pe_cols - 1) * cfg.kc * hacc * (plan.s - 1)
               + (cfg.pe_rows - 1) * cfg.pe_cols * cfg.kc * (plan.r - 1) * plan.wt)
        return per * len(self.drains)


def _check(config, ifmap, filters, pad):
    ifmap = check_tensor(ifmap, config.data_width, "ifmap", ndim=3)
    filters = check_tensor(filters, config.data_width, "filters", ndim=4)
    if filters.shape[1] != ifmap.shape[0]:
        raise TensorError(f"tensor `filters`: has {filters.shape[1]} input channels but ifmap "
                          f"has {ifmap.shape[0]}")
    if 0 in ifmap.shape or 0 in filters.shape:
        raise TensorError(f"tensors `ifmap` {ifmap.shape} and `filters` {filters.shape} must "
                          f"not be empty")
    _, _, r, s = filters.shape
    if r > config.max_r:
        raise TensorError(f"tensor `filters`: R={r} exceeds `max_r` ({config.max_r})")
    if s > config.max_s:
        raise TensorError(f"tensor `filters`: S={s} exceeds `max_s` ({config.max_s})")
    if isinstance(pad, bool) or not isinstance(pad, int | np.integer) or pad < 0:
        raise TensorError(f"`pad` must be a non-negative integer, not {pad!r}")
    h, w = ifmap.shape[1:]
    if h + 2 * pad < r or w + 2 * pad < s:
        raise TensorError(f"tensor `filters`: {r}x{s} does not fit the {h}x{w} ifmap with "
                          f"padding {pad}")
    return ifmap, filters


def _rows(values, runs, lanes):
    """Split a channel's pairs into words of ``lanes`` (at least one, possibly empty)."""
    n = len(values)
    out = []
    for start in range(0, max(n, 1), lanes):
        out.append((values[start:start + lanes], runs[start:start + lanes]))
    return out


def _rows_of(values, addresses, lanes):
    """Pack (value, address) pairs into rows of ``lanes``, zero-filled: two [rows, lanes]
    arrays, at least one row."""
    rows = max(1, math.ceil(len(values) / lanes))
    v = np.zeros(rows * lanes, dtype=np.int64)
    a = np.zeros(rows * lanes, dtype=np.int64)
    v[:len(values)] = values
    a[:len(values)] = addresses
    return v.reshape(rows, lanes), a.reshape(rows, lanes)


def _act_rows(values, runs, wt, wacc, lanes):
    """The activation buffer rows of one channel: values and frame offsets [rows, I]."""
    pos = gs.rle_positions(runs)
    return _rows_of(values, (pos // wt) * wacc + pos % wt, lanes)


def _weight_entries(values, runs, kc, s, r, wacc, plane, lanes):
    """Weight FIFO entries of one block ((r, s, k) order): values and bases [entries, F]."""
    pos = gs.rle_positions(runs)
    rs, k = np.divmod(pos, kc)
    rr, ss = np.divmod(rs, s)
    base = k * plane + (r - 1 - rr) * wacc + (s - 1 - ss)
    return _rows_of(values, base, lanes)


def _pair_banks(wv, wb, av, ao, banks):
    """Banks requested by the products of every (weight entry, activation row) pair, in the
    crossbar's priority order ``f * I + i`` (products with a zero operand request none)."""
    addr = wb[:, None, :, None] + ao[None, :, None, :]            # [E, rows, F, I]
    live = (wv[:, None, :, None] != 0) & (av[None, :, None, :] != 0)
    bank = addr & (banks - 1)
    e, rows = bank.shape[:2]
    bank = bank.reshape(e, rows, -1)
    live = live.reshape(e, rows, -1)
    return [[bank[n, j][live[n, j]].tolist() for j in range(rows)] for n in range(e)]


class _PairWork:
    """The crossbar requests of every WGT word (``Program.work``), computed on demand per
    (pass, kc-group, channel) block, vectorized over the block's entries and the PEs.

    A WGT word's key is a tuple with one ``(pass, kc-group, channel, entry)`` (or ``None``)
    per column group; a kc-group's entries go to the PEs of its column group
    (``members[kc-group]``, all PEs when absent), the other PEs get no pair from that part.
    ``work[key]`` is the reference form: per PE, per activation row, the list of banks the
    pair's live products request, in priority order (:func:`_pair_banks`).
    :meth:`counts` is the fast model's form: requests per bank ``[PEs, rows, banks]`` and each
    PE's row count (the crossbar's arbitration depends only on how many products of a pair
    want each bank, not on which product that is)."""

    def __init__(self, banks: int, entries: dict, members: dict | None = None):
        self.banks = banks
        self.entries = entries          # (g, ch) -> weight values, bases [entries, F]
        self.members = members or {}    # g -> (column group, its PE indices)
        self.acts = {}                  # pass -> rows[pe][ch] = values, offsets [rows, I]
        self.keys = set()
        self._blocks, self._padded = {}, {}

    def add(self, key):
        self.keys.add(key)

    def __contains__(self, key):
        return key in self.keys

    def __len__(self):
        return len(self.keys)

    def pes_of(self, g, npes: int):
        """The PE indices that take kc-group ``g``'s weights."""
        return self.members[g][1] if g in self.members else np.arange(npes)

    def __getitem__(self, key):
        out = None
        for sub in key:
            if sub is None:
                continue
            pidx, g, ch, n = sub
            wv, wb = self.entries[g, ch]
            rows = self.acts[pidx]
            out = out or [[] for _ in rows]
            for p in self.pes_of(g, len(rows)):
                out[p] = _pair_banks(wv[n:n + 1], wb[n:n + 1], *rows[p][ch], self.banks)[0]
        return out

    def _acts(self, pidx, ch):
        """The PEs' activation rows of a channel, zero-padded to the longest: values and
        offsets ``[PEs, rows, I]``, and each PE's row count."""
        if (pidx, ch) not in self._padded:
            rows = [r[ch] for r in self.acts[pidx]]
            nrows = np.array([len(v) for v, _ in rows], dtype=np.int64)
            lanes = rows[0][0].shape[1]
            av = np.zeros((len(rows), nrows.max(), lanes), dtype=np.int64)
            ao = np.zeros_like(av)
            for p, (v, o) in enumerate(rows):
                av[p, :len(v)], ao[p, :len(o)] = v, o
            if any(key[0] != pidx for key in self._padded):
                self._padded = {}
            self._padded[pidx, ch] = av, ao, nrows
        return self._padded[pidx, ch]

    def _part(self, sub):
        """:meth:`counts` of one column group's part ``(pass, g, channel, entry)``, over the
        PEs of its column group only; the block's counts are kept per column group."""
        pidx, g, ch, n = sub
        group, pes = self.members.get(g, (0, None))
        block, cached = self._blocks.get(group, (None, None))
        if block != (pidx, g, ch):
            av, ao, nrows = self._acts(pidx, ch)
            if pes is not None:
                nrows = nrows[pes]
                av, ao = av[pes, :nrows.max()], ao[pes, :nrows.max()]
            wv, wb = self.entries[g, ch]
            addr = wb[:, None, None, :, None] + ao[None, :, :, None, :]     # [E, P, R, F, I]
            live = (wv[:, None, None, :, None] != 0) & (av[None, :, :, None, :] != 0)
            e, npes, rows = addr.shape[:3]
            cell = np.arange(e * npes * rows).reshape(e, npes, rows, 1, 1) * self.banks
            flat = (cell + (addr & (self.banks - 1)))[live]
            counts = np.bincount(flat, minlength=e * npes * rows * self.banks)
            counts = counts.reshape(e, npes, rows, self.banks).astype(np.int16)
            cached = counts, (counts > 1).any(3), nrows
            self._blocks[group] = (pidx, g, ch), cached
        counts, twice, nrows = cached
        return pes, counts[n], twice[n], nrows

    def counts(self, key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Requests per bank of the word's pairs ``[PEs, rows, banks]``, whether a pair
        requests some bank twice ``[PEs, rows]``, and rows per PE (0 for the PEs of column
        groups the word has no part for)."""
        parts = [self._part(sub) for sub in key if sub is not None]
        if len(parts) == 1 and parts[0][0] is None:
            return parts[0][1:]
        npes = len(self.acts[next(sub for sub in key if sub is not None)[0]])
        rows = max(c.shape[1] for _, c, _, _ in parts)
        counts = np.zeros((npes, rows, self.banks), dtype=np.int16)
        twice = np.zeros((npes, rows), dtype=bool)
        nrows = np.zeros(npes, dtype=np.int64)
        for pes, c, t, r in parts:
            counts[pes, :c.shape[1]], twice[pes, :t.shape[1]], nrows[pes] = c, t, r
        return counts, twice, nrows


class _Crossbars:
    """The PEs' crossbars (:class:`~sparsegen.hw.scnn._Crossbar`, two-pair window) vectorized
    over the PEs (numpy); tests/scnn_reference.py holds the one-model-per-PE reference it is
    tested equal to:
    each PE's two pending pairs are request counts per bank (``old``, ``new``), and all PEs
    step through a pair's cycles together, each under its own mask. ``conflicts=False``
    gives every pair a conflict-free crossbar (no requests), for the cycle breakdown.

    Fast path: a PE is *clean* when its older pair is empty and no bank is requested twice by
    its newer one. A clean PE grants all of the newer pair in its next cycle without a stall,
    so its next pair loads at ``max(now, ready)`` (idle cycles in between change nothing),
    leaving it clean again unless that pair requests a bank twice. While every PE that issues
    is clean, a pair issue is a few array operations; otherwise :meth:`_step` runs cycle by
    cycle."""

    def __init__(self, npes: int, banks: int, conflicts: bool = True):
        self.old = np.zeros((npes, banks), dtype=np.int16)
        self.new = np.zeros((npes, banks), dtype=np.int16)
        self.now = np.zeros(npes, dtype=np.int64)
        self.loaded = np.full(npes, -1, dtype=np.int64)
        # The Cartesian pipeline (hw.scnn.PRODUCT_LATENCY): the previous pair's issue and the
        # cycle it entered the product stage, the load of the pair before it.
        self.issued = np.full(npes, -1, dtype=np.int64)
        self.entered = np.full(npes, -1, dtype=np.int64)
        self.loaded_before = np.full(npes, -1, dtype=np.int64)
        self.stall_count = np.zeros(npes, dtype=np.int64)
        self.conflicts = conflicts
        self.clean = np.ones(npes, dtype=bool)
        self.pairs = 0

    def _step(self, mask, ready, load):
        """One cycle of every PE in ``mask`` (PEs [n]); ``load`` [n, banks] the pair each
        waits to load at ``ready``. Returns (fired mask, the cycle)."""
        old, new, now = self.old, self.new, self.now
        empty = ~(old.any(1) | new.any(1))
        now[:] = np.where(mask & empty & (now < ready), ready, now)
        won = old > 0
        old_left = old - won
        new_left = new - (~won & (new > 0))
        cycle = now.copy()
        now += mask
        stall = mask & old_left.any(1)
        fire = mask & ~stall & (cycle >= ready)
        self.stall_count += stall
        m = mask[:, None]
        self.old = np.where(m, np.where(stall[:, None], old_left, new_left), old)
        self.new = np.where(m, np.where(stall[:, None], new_left,
                                        np.where(fire[:, None], load, 0)), new)
        return fire, cycle

    def entry(self, work, key, start: int) -> np.ndarray:
        """Issue every pair of a weight entry taken at ``start - WEIGHT_ENTRY_DELAY``;
        returns each PE's pop cycle (its last pair's issue)."""
        if hasattr(work, "counts"):
            counts, twice, nrows = work.counts(key)
        else:                           # a plain dict of the reference's pair lists
            lists = work[key]
            nrows = np.array([len(pe) for pe in lists], dtype=np.int64)
            counts = np.zeros((len(lists), nrows.max(), self.old.shape[1]), dtype=np.int16)
            for p, pe in enumerate(lists):
                for j, banks in enumerate(pe):
                    np.add.at(counts[p, j], banks, 1)
            twice = (counts > 1).any(2)
        if not self.conflicts:
            counts, twice = np.zeros_like(counts), np.zeros_like(twice)
        self.pairs += int(nrows.sum())
        every = bool((nrows > 0).all())     # else PEs of other column groups sit it out
        pops = np.full(len(nrows), -1, dtype=np.int64)
        for j in range(counts.shape[1]):
            # The stages advance together: a pair issues once the one two ahead has left the
            # product stage, and not while the previous one waits there for the crossbar
            # (from the cycle it entered to the cycle before its load).
            issue = np.maximum(np.maximum(start, self.issued + 1), self.loaded_before)
            issue = np.where((self.entered <= issue) & (issue < self.loaded), self.loaded, issue)
            ready = np.maximum(issue + PRODUCT_LATENCY, self.loaded + 1)    # it enters
            load = counts[:, j]
            active = nrows > j
            self.issued = np.where(active, issue, self.issued)
            self.entered = np.where(active, ready, self.entered)
            self.loaded_before = np.where(active, self.loaded, self.loaded_before)
            if j == 0 and every and self.clean.all():     # every PE issues a row 0
                self.loaded = fire = np.maximum(self.now, ready)
                self.now = fire + 1
                self.new = load
                self.clean = ~twice[:, j]
                pops = issue
                continue
            if self.clean[active].all():
                fire = np.maximum(self.now, ready)
                self.loaded = np.where(active, fire, self.loaded)
                self.now = np.where(active, fire + 1, self.now)
                self.new = np.where(active[:, None], load, self.new)
                self.clean = np.where(active, ~twice[:, j], self.clean)
            else:
                pending = active.copy()
                while pending.any():
                    fire, cycle = self._step(pending, ready, load)
                    self.loaded = np.where(fire, cycle, self.loaded)
                    pending &= ~fire
                self.clean = ~self.old.any(1) & ~(self.new > 1).any(1)
            pops = np.where(active, issue, pops)
        return pops

    def idle(self) -> int:
        """The first cycle at which every PE's product stage and crossbar are empty."""
        busy = self.old.any(1) | self.new.any(1)
        while busy.any():
            old, new = self.old, self.new
            won = old > 0
            old_left = old - won
            new_left = new - (~won & (new > 0))
            stall = busy & old_left.any(1)
            self.stall_count += stall
            self.now += busy
            m = busy[:, None]
            self.old = np.where(m, np.where(stall[:, None], old_left, new_left), old)
            self.new = np.where(m, np.where(stall[:, None], new_left, 0), new)
            busy = self.old.any(1) | self.new.any(1)
        self.clean[:] = True
        return int(max((self.now - 1).max(), (self.loaded + 1).max()))

    @property
    def stalls(self) -> int:
        return int(self.stall_count.sum())


GEOM_FIELDS = ("wt", "ht", "r", "s", "relu", "swap", "s_out", "oy0", "oy1", "ox0", "ox1",
               "gcols")
"""The fields of a CONFIG word's ``geom`` (:func:`~sparsegen.hw.scnn.pe_input_layout`), in the
order of a word's geometry tuple."""


@dataclasses.dataclass(frozen=True)
class _Link:
    """How a layer sits in a chain: the planar tile both layers use, the output mask (the
    next layer's zero padding, in the plane of PE tiles), the next layer's S (the OARAM's
    offsets are for it) and, for the second layer, the IARAM as the first left it (per PE,
    per channel: rows of ``(values, pos)``), which replaces the ACT load."""

    tile: tuple
    mask: tuple
    s_out: int
    iaram: list | None = None


def _plan(config, ifmap, r, s, pad, link, cols):
    """The tile plan on ``pe_rows x cols`` PEs (a column group):
    :func:`~.golden.scnn.plan_tiles`, or a chain's fixed tile in one pass."""
    if link is None:
        return gs.plan_tiles(ifmap.shape[1], ifmap.shape[2], r, s, pad, config.pe_rows,
                             cols, config.max_tile_h, config.max_tile_w)
    ht, wt = link.tile
    p, q = ifmap.shape[1] + 2 * pad - r + 1, ifmap.shape[2] + 2 * pad - s + 1
    return gs.TilePlan(config.pe_rows, config.pe_cols, ht, wt, r, s, p, q)


def check_groups(config, groups) -> int:
    """``groups`` as a number of column groups for ``config``: a power of two that divides
    ``pe_cols`` (a lone PE: 1).

    Raises
    ------
    TensorError
        Any other value (named)."""
    cols = getattr(config, "pe_cols", 1)
    if (isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1
            or groups & (groups - 1) or cols % groups):
        raise TensorError(f"`groups` must be a power of two that divides `pe_cols` ({cols}), "
                          f"not {groups!r}")
    return int(groups)


def build_program(config, ifmap, filters, pad: int = 0, relu: bool = False, *,
                  link: _Link | None = None, groups: int = 1) -> Program:
    """Validate the layer for ``config`` (``ScnnConfig`` or ``ScnnPEConfig``, a 1 x 1 grid)
    and build the word stream, the output map and the cycle-model inputs. The first CONFIG
    word starts a layer (``swap``: the activation RAMs swap roles). ``link`` places the layer
    in a chain (:func:`build_chain`).

    ``groups`` splits the PE columns into that many column groups (our addition to SCNN's
    planar tiling, see ``hw/scnn.py``): tiles are planned on the ``pe_rows x pe_cols/groups``
    sub-grid, the output channels' kc-groups split into ``groups`` contiguous parts of
    ``rounds = ceil(kc-groups / groups)`` (the last part padded with empty kc-groups, no WGT
    words: every group drains ``rounds`` times a pass, DRAIN is common), each part's WGT words
    in its columns' lanes (transfer ``t`` of a round carries every group's ``t``-th word) and
    the ACT words of tile column ``x`` in the lanes of every group's column ``x``.

    Raises
    ------
    TensorError
        Wrong dtype, range or shape, a filter the config cannot hold, or bad ``groups``
        (named).
    """
    ifmap, filters = _check(config, ifmap, filters, pad)
    groups = check_groups(config, groups)
    if groups > 1 and link is not None:
        raise TensorError("chained layers run ungrouped: a grouped layer's OARAMs hold only "
                          "its column group's output channels")
    c = ifmap.shape[0]
    k, _, r, s = filters.shape
    pe_cols = getattr(config, "pe_cols", 1)
    cols = pe_cols // groups
    plan = _plan(config, ifmap, r, s, pad, link, cols)
    ht, wt = plan.ht, plan.wt
    wacc = wt + s - 1
    plane = plane_pitch(wacc * (ht + r - 1), config.f, config.banks)
    blocks = gs.encode_weights(filters, config.kc)
    kgroups = len(blocks)
    rounds = math.ceil(kgroups / groups)
    entries = {(g, ch): _weight_entries(*blocks[g][ch], config.kc, s, r, wacc, plane,
                                         config.f)
               for g in range(kgroups) for ch in range(c)}
    pes = [(y, x) for y in range(config.pe_rows) for x in range(pe_cols)]
    members = {} if groups == 1 else {
        g: (g // rounds, np.array([p for p, (_, x) in enumerate(pes)
                                   if x // cols == g // rounds]))
        for g in range(kgroups)}
    mask = (0, config.pe_rows * ht, 0, cols * wt) if link is None else link.mask
    gcols = gcols_code(None if groups == 1 else cols)
    geom = (wt, ht, r, s, int(relu), 0, s if link is None else link.s_out, *mask, gcols)
    words, drains, keys = [], [], []
    work = _PairWork(config.banks, entries, members)

    def word(kind, cols=0, key=None):
        swap = int(kind == Cmd.CONFIG and not words)        # the layer's first CONFIG
        words.append((kind, cols, 0, [], [], (*geom[:5], swap, *geom[6:])))
        keys.append(key)

    for pidx, (y0, x0) in enumerate(plan.passes):
        if link is not None and link.iaram is not None:
            acts = None
            rows = link.iaram
        else:
            region = gs.pad_input(ifmap, pad, plan, y0, x0)
            acts = [gs.encode_activations(region[:, y * ht:(y + 1) * ht,
                                                 (x % cols) * wt:(x % cols + 1) * wt])
                    for y, x in pes]
            rows = [[_act_rows(*acts[p][ch], wt, wacc, config.i) for ch in range(c)]
                    for p in range(len(pes))]
        work.acts[pidx] = rows
        # Channel chunks: as many channels as fit every PE's activation buffer.
        chunks, start = [], 0
        while start < c:
            end, used = start, [0] * len(pes)
            while end < c:
                need = [used[p] + len(rows[p][end][0]) for p in range(len(pes))]
                if max(need) > config.act_depth:
                    break
                used, end = need, end + 1
            chunks.append(range(start, end))
            start = end

        def load(chunk, acts=acts):
            word(Cmd.CONFIG)
            if acts is None:
                return
            # Each PE column's words (its PEs top to bottom, channels in order) in its lane:
            # transfer t carries every column's t-th word (``Scnn``'s parallel ACT load).
            lanes = [[(y, int(n == len(parts) - 1), v, rr)
                      for y in range(config.pe_rows)
                      for ch in chunk
                      for parts in [_rows(*acts[y * pe_cols + x][ch], config.i)]
                      for n, (v, rr) in enumerate(parts)]
                     for x in range(pe_cols)]
            _lanes(lanes)

        def _lanes(lanes, kind=Cmd.ACT, parts=None):
            for t in range(max(map(len, lanes))):
                word(kind, tuple(lane[t] if t < len(lane) else None for lane in lanes),
                     None if parts is None else tuple(
                         part[t] if t < len(part) else None for part in parts))

        def weights(rnd, chunk, pidx=pidx):
            # Column group j's kc-group j * rounds + rnd (none past the last), in its lanes.
            parts = []
            for j in range(groups):
                g = j * rounds + rnd
                part = []
                for ch in chunk if g < kgroups else ():
                    split = _rows(*blocks[g][ch], config.f)
                    for n, (v, rr) in enumerate(split):
                        key = (pidx, g, ch, n)
                        work.add(key)
                        part.append(((0, int(n == len(split) - 1), v, rr), key))
                parts.append(part)
            lanes = [[w for w, _ in parts[x // cols]] for x in range(pe_cols)]
            _lanes(lanes, Cmd.WGT, [[key for _, key in part] for part in parts])

        if len(chunks) == 1:
            load(chunks[0])
        for rnd in range(rounds):
            for chunk in chunks:
                if len(chunks) > 1:
                    load(chunk)
                weights(rnd, chunk)
            word(Cmd.DRAIN)
            drains.append((y0, x0, rnd))
    expected = gs.conv_einsum(ifmap, filters, pad, config.acc_width, config.data_width)
    if relu:
        expected = np.maximum(expected, 0)
    return Program(config, plan, (k, c, r, s, pad), words, drains, keys, work, expected, relu,
                   (ifmap, filters), groups, rounds)


def oaram_rows(program) -> int:
    """Rows the drains write into the OARAMs of all PEs in a run (:class:`Program` or
    :class:`Chain`): per PE, output channel and group, the in-mask non-zeros of its drained
    tile (after the ReLU) in rows of ``i``, at least one per channel, at most ``act_depth``
    per PE and layer (the write pointer starts over at each layer's swap; rows past the RAM
    are dropped). The drained tile includes outputs past the plane's edge: the convolution
    of the pass's input region, zero beyond it."""
    if isinstance(program, Chain):
        return oaram_rows(program.first) + oaram_rows(program.second)
    cfg, plan = program.config, program.plan
    (ifmap, filters), pad = program.operands, program.shape[4]
    ht, wt = plan.ht, plan.wt
    oy0, oy1, ox0, ox1 = program.words[0][5][GEOM_FIELDS.index("oy0"):][:4]
    groups, cols = program.groups, program.group_cols
    # Column group j drains kc-groups j * rounds ... (j + 1) * rounds - 1 (empty ones: zeros).
    weights = np.zeros((groups * program.rounds * cfg.kc, *filters.shape[1:]), dtype=np.int64)
    weights[:len(filters)] = filters
    used = np.zeros((cfg.pe_rows, cfg.pe_cols), dtype=np.int64)
    for y0, x0 in plan.passes:
        region = np.pad(gs.pad_input(ifmap, pad, plan, y0, x0),
                        ((0, 0), (0, plan.r - 1), (0, plan.s - 1)))
        out = gs.conv_einsum(region, weights, 0, cfg.acc_width, cfg.data_width)
        if program.relu:
            out = np.maximum(out, 0)
        keep = np.zeros(out.shape[1:], dtype=bool)
        keep[oy0:oy1, ox0:ox1] = True
        nz = ((out != 0) & keep).reshape(groups, -1, cfg.pe_rows, ht, cols, wt)
        per = nz.sum(axis=(3, 5))                   # [group, channel, pe_row, group column]
        rows = np.maximum(1, -(-per // cfg.i)).sum(axis=1)
        used += np.concatenate(list(rows), axis=1)
    return int(np.minimum(used, cfg.act_depth).sum())


def act_words(program) -> int:
    """ACT words the PEs take in a run (:class:`Program` or :class:`Chain`; each is one row
    written into a PE's IARAM), summed over the lanes of the ACT transfers."""
    return sum(col is not None for kind, cols, *_ in program.words if kind == Cmd.ACT
               for col in cols)


def payload_of(program: Program, with_pe: bool) -> tuple[dict, int]:
    """The transfers as nested arrays for :func:`~.tb.bits.pack_many`, and their count: in
    the array's layout (:func:`~sparsegen.hw.scnn.array_input_layout`) ``with_pe``, else a
    lone PE's (a 1 x 1 grid: lane 0's word)."""
    cfg = program.config
    n, cols = len(program.words), cfg.pe_cols
    values = np.zeros((n, cols, cfg.lanes), dtype=np.int64)
    runs = np.zeros((n, cols, cfg.lanes), dtype=np.int64)
    valid, row, last, count = (np.zeros((n, cols), dtype=np.int64) for _ in range(4))
    kind = np.zeros(n, dtype=np.int64)
    geom = np.zeros((n, len(GEOM_FIELDS)), dtype=np.int64)
    for j, (kd, lanes, _, _, _, g) in enumerate(program.words):
        kind[j], geom[j] = kd.value, g
        for x, lane in enumerate(lanes if kd in (Cmd.ACT, Cmd.WGT) else ()):
            if lane is not None:
                row[j, x], last[j, x], lv, lr = lane
                valid[j, x], count[j, x] = 1, len(lv)
                values[j, x, :len(lv)] = lv
                runs[j, x, :len(lr)] = lr
    word = [{"last": last[:, x], "count": count[:, x],
             "lanes": {"value": values[:, x], "run": runs[:, x]}} for x in range(cols)]
    payload = {"kind": kind, "geom": {name: geom[:, n] for n, name in enumerate(GEOM_FIELDS)}}
    if with_pe:
        payload["cols"] = [w | {"valid": valid[:, x], "row": row[:, x]}
                           for x, w in enumerate(word)]
    else:
        payload |= word[0]
    return payload, n


def decode_outputs(program: Program, transfers: list) -> np.ndarray:
    """Reassemble O[K, P, Q] from the drained rows.

    ``transfers[t][p]`` is PE ``p``'s row of transfer ``t``: a list of ``(value, run, valid)``
    lanes. The valid lanes of a channel's ``Ht`` rows are its RLE stream, decoded (and checked)
    by the golden decoder.
    """
    cfg, plan = program.config, program.plan
    k = program.shape[0]
    ht, wt = plan.ht, plan.wt
    cols = program.group_cols
    out = np.zeros((k, plan.p, plan.q), dtype=np.int64)
    pes = [(y, x) for y in range(cfg.pe_rows) for x in range(cfg.pe_cols)]
    per_drain = cfg.kc * ht
    if len(transfers) != per_drain * len(program.drains):
        raise ValueError(f"expected {per_drain * len(program.drains)} output rows, got "
                         f"{len(transfers)}")
    for d, (y0, x0, rnd) in enumerate(program.drains):
        ny = min(plan.out_rows, plan.p - y0)
        nx = min(plan.out_cols, plan.q - x0)
        # Per column group, its plane of tiles.
        full = np.zeros((program.groups, cfg.kc, cfg.pe_rows * ht, cols * wt), dtype=np.int64)
        for p, (py, px) in enumerate(pes):
            j, gx = divmod(px, cols)
            for kk in range(cfg.kc):
                rows = transfers[d * per_drain + kk * ht: d * per_drain + (kk + 1) * ht]
                pairs = [(v, rn) for row in rows for (v, rn, ok) in row[p] if ok]
                values = np.array([v for v, _ in pairs], dtype=np.int64)
                runs = np.array([rn for _, rn in pairs], dtype=np.int64)
                tile = gs.decode_rle(values, runs, ht * wt).reshape(ht, wt)
                full[j, kk, py * ht:(py + 1) * ht, gx * wt:(gx + 1) * wt] = tile
        for j in range(program.groups):
            k0 = (j * program.rounds + rnd) * cfg.kc
            kn = min(cfg.kc, k - k0)
            if kn > 0:
                out[k0:k0 + kn, y0:y0 + ny, x0:x0 + nx] = full[j, :kn, :ny, :nx]
    return out


def decode_chain(chain: "Chain", transfers: list) -> tuple[np.ndarray, np.ndarray]:
    """Both layers' outputs from a chained run's rows (:func:`decode_outputs` of each):
    layer 1's on the plane shifted by ``pad2`` (masked: what its OARAMs hold before the
    saturation to ``data_width``), then layer 2's O2[K2, P2, Q2]."""
    n = chain.first.transfers
    return (decode_outputs(chain.first, transfers[:n]),
            decode_outputs(chain.second, transfers[n:]))


def first_divergence(program: Program, output: np.ndarray, result_cycles=None) -> dict | None:
    """Where a run's O[K, P, Q] first differs from golden, in the order the grid drained it
    (pass, output-channel group, channel, frame row, PE, column), or ``None`` when it does not.

    Returns ``{"index": [k, y, x], "pass": ..., "tile": [py, px], "row": ..., "column": ...,
    "got": ..., "expected": ..., "cycle": ..., "mismatches": ...}``: the output element, its
    spatial pass, the PE whose planar tile holds it and its row and column there, both values,
    the cycle at which its drained row left (``None`` without ``result_cycles``, the player's
    per-result cycles), and how many elements differ.
    """
    wrong = np.argwhere(output != program.expected)
    if len(wrong) == 0:
        return None
    cfg, plan = program.config, program.plan
    drains = {(y0, x0, rnd): d for d, (y0, x0, rnd) in enumerate(program.drains)}
    places = []
    for k, y, x in wrong:
        y0 = y - y % plan.out_rows
        x0 = x - x % plan.out_cols
        yy, xx = y - y0, x - x0
        group, rnd = divmod(k // cfg.kc, program.rounds)
        transfer = (drains[y0, x0, rnd] * cfg.kc * plan.ht + (k % cfg.kc) * plan.ht
                    + yy % plan.ht)
        pe = (int(yy // plan.ht), int(group * program.group_cols + xx // plan.wt))
        places.append((transfer, pe, int(xx % plan.wt), plan.passes.index((y0, x0)),
                       int(yy % plan.ht)))
    first = min(range(len(wrong)), key=lambda j: places[j][:3])
    transfer, pe, col, pass_index, row = places[first]
    k, y, x = (int(v) for v in wrong[first])
    cycle = (int(result_cycles[transfer]) if result_cycles is not None
             and transfer < len(result_cycles) else None)
    return {"index": [k, y, x], "pass": pass_index, "tile": list(pe), "row": row,
            "column": col, "got": int(output[k, y, x]),
            "expected": int(program.expected[k, y, x]), "cycle": cycle,
            "mismatches": len(wrong)}


def model_cycles(program, crossbars=None, times: list | None = None) -> tuple[int, int]:
    """Trace-driven cycle model of the RTL: ``(cycles, conflict_stalls)``.

    Cycles run from the edge that takes the first word to the edge of the last output row,
    both included, with the input offered every cycle and the output never back-pressured.
    Rules (see the Timing of :class:`~sparsegen.hw.scnn.ScnnPE` and ``Scnn``): one transfer
    per cycle (an ACT transfer, up to one ACT word per PE column, is one cycle of the load);
    ACT always taken; WGT entry ``e`` waits until every PE popped entry ``e - wt_depth``; a PE
    issues a (weight entry, activation row) pair from :data:`~sparsegen.hw.scnn.
    WEIGHT_ENTRY_DELAY` cycles after the entry's word was taken, and not before the cycle the
    pair two ahead left the product stage for the crossbar, nor while the previous pair waits
    there (the Cartesian stages advance together); the crossbar loads a pair from
    :data:`~sparsegen.hw.scnn.PRODUCT_LATENCY` cycles after its issue (or the cycle after the
    previous pair's load), as its arbitration allows (simulated cycle by cycle,
    :class:`_Crossbars`); an entry leaves the FIFO when its last row issues;
    CONFIG and DRAIN wait for empty decoders, FIFOs and product stages and idle crossbars;
    DRAIN also waits for the previous group's row walk to end (the accumulators are double
    buffered: the walk of a group, :func:`~sparsegen.hw.scnn.walk_cycles` cycles of the DRAIN
    word's geometry from the cycle after its DRAIN, runs on one half while the next group
    computes into the other, and the next DRAIN is taken from the cycle after the walk's last);
    input is taken again right after DRAIN, and each group's last row leaves
    :data:`~sparsegen.hw.scnn.DRAIN_LATENCY` cycles after its walk's last cycle (the end of the
    layer waits for the last walk); a swapping CONFIG (a layer's first word) after a DRAIN
    waits until the drained rows are in the OARAM: from
    :data:`~sparsegen.hw.scnn.OARAM_WRITE_LATENCY` - 1 cycles after the last row left. The
    timing facts are read from ``hw/scnn.py``, where they are stated.

    ``crossbars`` makes the PEs' crossbar models from ``(PEs, banks)``: :class:`_Crossbars`
    (vectorized over the PEs) by default; the tests pass the simple one-model-per-PE reference
    of tests/scnn_reference.py and check the results equal. ``times``, when given, receives the
    cycle each word is taken (the bench's cycle breakdown).
    """
    cycles, stalls, _ = model_layers(program, crossbars=crossbars, times=times)
    return cycles, stalls


def model_layers(program, crossbars=None,
                 times: list | None = None) -> tuple[int, int, list[dict]]:
    """:func:`model_cycles` with each layer's share: ``(cycles, conflict_stalls, layers)``,
    ``layers[n] = {"cycles", "load", "walk", "compute", "end"}``: the cycles from the previous
    layer's last output row (the first: from the first word) to this layer's (``end``, the
    cycle it leaves); ``load`` the cycles that take ACT transfers (the IARAM fill), ``walk`` the
    cycles spent waiting on row walks (halo exchange and drain, which otherwise overlap the
    next group's compute): DRAIN waiting for the previous walk, the layer's last walk after its
    last DRAIN up to its last row, a swapping CONFIG's wait for the OARAM; ``compute`` the
    rest (multiplies, conflict stalls, pipeline fill and other waits). ``crossbars`` and
    ``times`` as in :func:`model_cycles`."""
    cfg = program.config
    npes = cfg.pe_rows * cfg.pe_cols
    t_last, walk_free, last_out = -1, 0, -1
    xbars = (crossbars or _Crossbars)(npes, cfg.banks)
    cols = program.group_cols
    # Per column group: its PEs and the pop cycles (per PE) of its last wt_depth entries.
    group_pes = [np.array([p for p in range(npes) if (p % cfg.pe_cols) // cols == j])
                 for j in range(program.groups)]
    pops = [collections.deque(maxlen=cfg.wt_depth) for _ in range(program.groups)]
    layers = []
    for (kind, lanes, *_, geom), key in zip(program.words, program.blocks):
        t = t_last + 1
        if kind == Cmd.WGT:
            # A transfer waits until every PE it addresses has room: popped the entry
            # wt_depth before the new one.
            mine = [j for j in range(program.groups) if lanes[j * cols] is not None]
            for j in mine:
                if len(pops[j]) == cfg.wt_depth:
                    t = max(t, int(pops[j][0][group_pes[j]].max()) + 1)
            popped = xbars.entry(program.work, key, t + WEIGHT_ENTRY_DELAY)
            for j in mine:
                pops[j].append(popped)
        elif kind in (Cmd.CONFIG, Cmd.DRAIN):
            t = max(t, xbars.idle())
            swap = kind == Cmd.CONFIG and geom[GEOM_FIELDS.index("swap")]
            if swap or not layers:
                layers.append({"load": 0, "walk": 0})
            if swap and last_out >= 0:
                ready = t
                t = max(t, last_out - 1 + OARAM_WRITE_LATENCY)
                layers[-1]["walk"] += t - max(ready, last_out + 1)
            if kind == Cmd.DRAIN:
                before = t
                t = max(t, walk_free)
                walk = walk_cycles(cfg.kc, geom[GEOM_FIELDS.index("ht")],
                                   geom[GEOM_FIELDS.index("r")])
                last_out = t + walk + DRAIN_LATENCY
                walk_free = t + walk + 1
                layers[-1]["walk"] += t - before
                layers[-1]["end"] = last_out
                layers[-1]["drain"] = t
        elif kind == Cmd.ACT:
            layers[-1]["load"] += 1
        t_last = t
        if times is not None:
            times.append(t)
    before = -1
    for layer in layers:
        layer["walk"] += layer["end"] - layer.pop("drain")
        layer["cycles"] = layer["end"] - before
        layer["compute"] = layer["cycles"] - layer["load"] - layer["walk"]
        before = layer["end"]
    return last_out + 1, xbars.stalls, layers


def pair_bound(program) -> tuple[int, int]:
    """A lower bound of the program's cycles from its pairs (formula): between two barriers
    (CONFIG, DRAIN: every PE idle) a segment takes at least its barrier word, its ACT
    transfers (all before its first WGT word) and the pairs of its busiest PE (one issue per
    cycle), whatever the conflicts and walks add; and the busiest PE's pairs in all.
    Returns ``(bound, busiest PE's pairs)``."""
    cfg, work = program.config, program.work
    npes = cfg.pe_rows * cfg.pe_cols
    rows, segment, total = {}, np.zeros(npes, dtype=np.int64), np.zeros(npes, dtype=np.int64)
    bound = acts = 0
    for (kind, *_), key in zip(program.words, program.blocks):
        if kind == Cmd.ACT:
            acts += 1
        elif kind == Cmd.WGT:
            for sub in key:
                if sub is None:
                    continue
                pidx, g, ch, _ = sub
                if (pidx, ch) not in rows:
                    rows[pidx, ch] = np.array([len(r[ch][0]) for r in work.acts[pidx]])
                pes = work.pes_of(g, npes)
                segment[pes] += rows[pidx, ch][pes]
        else:
            bound += acts + int(segment.max()) + 1
            total += segment
            segment[:] = acts = 0
    return bound + acts + int(segment.max()), int((total + segment).max())


def group_choices(config) -> list[int]:
    """The column-group counts ``config`` can run: powers of two dividing ``pe_cols``."""
    cols = getattr(config, "pe_cols", 1)
    return [g for g in (1 << n for n in range(cols.bit_length())) if cols % g == 0]


def plan_groups(config, ifmap, filters, pad: int = 0, relu: bool = False) -> dict:
    """Choose the column groups of a layer: the fewest cycles of the cycle model over
    :func:`group_choices` (those whose tiles fit). Candidates run in the order of their
    :func:`pair_bound`, and one whose bound is not below the best cycles found so far is not
    modelled (its cycles cannot be fewer); ties go to fewer groups.

    Returns ``{"groups", "program", "cycles", "stalls", "times", "tried"}``: the choice, its
    program, its model cycles and stalls, the cycle each word was taken, and per candidate
    ``{"groups", "bound", "cycles"}`` (``cycles`` None where it was not modelled)."""
    programs = {}
    for g in group_choices(config):
        try:
            programs[g] = build_program(config, ifmap, filters, pad, relu, groups=g)
        except TensorError:
            if g == 1:
                raise
    bounds = {g: pair_bound(program)[0] for g, program in programs.items()}
    best, tried = None, []
    for g in sorted(programs, key=lambda g: (bounds[g], g)):
        row = {"groups": g, "bound": bounds[g], "cycles": None}
        tried.append(row)
        if best is not None and bounds[g] >= best["cycles"]:
            continue
        times = []
        cycles, stalls = model_cycles(programs[g], times=times)
        row["cycles"] = cycles
        if best is None or (cycles, g) < (best["cycles"], best["groups"]):
            best = {"groups": g, "program": programs[g], "cycles": cycles, "stalls": stalls,
                    "times": times}
    return best | {"tried": sorted(tried, key=lambda row: row["groups"])}


@dataclasses.dataclass
class Chain:
    """Two convolutions as one word stream: the first drains its ReLU'd output into the
    OARAMs, whose rows the second reads as its IARAM after the swap (no ACT words). Quacks
    like a :class:`Program` where a run needs one (words, blocks, work, transfers)."""

    first: Program
    second: Program
    input2: np.ndarray              # layer 2's input as the OARAMs hold it [C2, P1, Q1]
    filters2: np.ndarray            # as given [K2, K1, R2, S2]

    @property
    def config(self):
        return self.first.config

    @property
    def words(self) -> list:
        return self.first.words + self.second.words

    @property
    def blocks(self) -> list:
        return ([None if k is None else (0, k) for k in self.first.blocks]
                + [None if k is None else (1, k) for k in self.second.blocks])

    @property
    def work(self):
        return _ChainWork((self.first.work, self.second.work))

    @property
    def transfers(self) -> int:
        return self.first.transfers + self.second.transfers

    groups = 1                      # chained layers run ungrouped (build_program)

    @property
    def group_cols(self) -> int:
        return self.config.pe_cols


class _ChainWork:
    """The layers' :class:`_PairWork` under the keys ``(layer, key)`` of :attr:`Chain.blocks`.
    """

    def __init__(self, works):
        self.works = works

    def __getitem__(self, key):
        return self.works[key[0]][key[1]]

    def counts(self, key):
        return self.works[key[0]].counts(key[1])


def _tile_side(out1, pad1, r1, pad2, r2, pes, limit, what, axis):
    """A chain's tile height (width): one pass for both layers on the same tiles."""
    side = max(r1 - 1, r2 - 1, 1,
               math.ceil((out1 + r1 - 1 + pad2) / pes),     # layer 1, shifted by pad2
               math.ceil((out1 + 2 * pad2) / pes))          # layer 2's padded input
    if side > limit:
        raise TensorError(f"chained layers run in one pass on the same tiles: {axis} needs "
                          f"tiles of {side} on {pes} PEs, more than `{what}` ({limit})")
    return side


def build_chain(config, ifmap, filters, pad: int, filters2, pad2: int,
                relu: bool = False) -> Chain:
    """Two chained stride-1 convolutions: ``O2 = conv(clip(relu(conv(I, F, pad))), F2, pad2)``
    (``relu`` on ``O2`` too when asked; ``clip`` saturates to ``data_width``, the OARAM's
    width). Both layers use one planar tile and one spatial pass, so every PE's output tile of
    layer 1 is its input tile of layer 2: layer 1 runs on the plane shifted by ``pad2`` rows
    and columns and masks its outputs to the layer-1 plane, so that its OARAM holds layer 2's
    zero padding as nothing. Layer 2 reads ``ceil(K1 / kc) * kc`` channels (zero filters for
    the padding channels of layer 1's last group).

    Raises
    ------
    TensorError
        A bad tensor, ``filters2`` whose input channels are not layer 1's output channels, a
        chain that does not fit one pass of the tile sizes, or layer 2's input (layer 1's
        output tile) not fitting a PE's ``act_depth`` IARAM rows (named).
    """
    ifmap, filters = _check(config, ifmap, filters, pad)
    filters2 = check_tensor(filters2, config.data_width, "filters2", ndim=4)
    k1, _, r1, s1 = filters.shape
    k2, c2, r2, s2 = filters2.shape
    if c2 != k1:
        raise TensorError(f"tensor `filters2`: has {c2} input channels but layer 1 makes {k1} "
                          f"output channels")
    if 0 in filters2.shape:
        raise TensorError(f"tensor `filters2` {filters2.shape} must not be empty")
    if r2 > config.max_r or s2 > config.max_s:
        raise TensorError(f"tensor `filters2`: {r2}x{s2} exceeds `max_r` x `max_s` "
                          f"({config.max_r}x{config.max_s})")
    if isinstance(pad2, bool) or not isinstance(pad2, int | np.integer) or pad2 < 0:
        raise TensorError(f"`pad2` must be a non-negative integer, not {pad2!r}")
    p1 = ifmap.shape[1] + 2 * pad - r1 + 1
    q1 = ifmap.shape[2] + 2 * pad - s1 + 1
    if p1 + 2 * pad2 < r2 or q1 + 2 * pad2 < s2:
        raise TensorError(f"tensor `filters2`: {r2}x{s2} does not fit layer 1's {p1}x{q1} "
                          f"output with padding {pad2}")
    ht = _tile_side(p1, pad, r1, pad2, r2, config.pe_rows, config.max_tile_h, "max_tile_h",
                    "the height")
    wt = _tile_side(q1, pad, s1, pad2, s2, config.pe_cols, config.max_tile_w, "max_tile_w",
                    "the width")
    shift = pad2
    first = build_program(
        config, np.pad(ifmap, ((0, 0), (shift, 0), (shift, 0))), filters, pad, relu=True,
        link=_Link((ht, wt), (shift, shift + p1, shift, shift + q1), s2))
    first.expected[:, :shift, :] = 0
    first.expected[:, :, :shift] = 0
    # Layer 2's input as the drains leave it: the plane of PE tiles, channels of every group.
    channels = math.ceil(k1 / config.kc) * config.kc
    plane = np.zeros((channels, config.pe_rows * ht, config.pe_cols * wt), dtype=np.int64)
    plane[:k1, :p1 + shift, :q1 + shift] = first.expected
    top = (1 << (config.data_width - 1)) - 1
    plane = np.clip(plane, -top - 1, top)
    wacc2 = wt + s2 - 1
    iaram = []
    for y in range(config.pe_rows):
        for x in range(config.pe_cols):
            tile = plane[:, y * ht:(y + 1) * ht, x * wt:(x + 1) * wt].reshape(channels, -1)
            per = []
            for ch in range(channels):
                nz = np.flatnonzero(tile[ch])
                per.append(_rows_of(tile[ch, nz], (nz // wt) * wacc2 + nz % wt, config.i))
            need = sum(len(v) for v, _ in per)
            if need > config.act_depth:
                raise TensorError(f"layer 2's input does not fit the IARAM: PE ({y}, {x}) "
                                  f"holds {need} rows of `i` ({config.i}) non-zeros of layer "
                                  f"1's output tile, more than `act_depth` ({config.act_depth})")
            iaram.append(per)
    input2 = plane[:, shift:shift + p1, shift:shift + q1]
    padded2 = np.zeros((k2, channels, r2, s2), dtype=np.int64)
    padded2[:, :k1] = filters2
    second = build_program(config, input2, padded2, pad2, relu,
                           link=_Link((ht, wt), (0, config.pe_rows * ht, 0,
                                                 config.pe_cols * wt), s2, iaram))
    return Chain(first, second, input2, filters2)


@dataclasses.dataclass
class ScnnResult(RunFigures):
    """A convolution run on ``scnn``: the common figures plus crossbar stalls, halo traffic,
    input words, passes, the planar tile, (RTL runs) the PEs' action counts
    (``Scnn.probes``), the output-channel column groups it ran with (``groups``) and, for
    two chained layers, each layer's figures (``layers``: its
    cycles as the RTL run measured them, to the cycle its last output row left, and the cycle
    model's, split into load, compute and walk, see :func:`model_layers`)."""

    conflict_stalls: int
    model_conflict_stalls: int
    halo_traffic: int
    words: int
    passes: int
    tile: tuple
    relu: bool = False
    actions: dict | None = None
    layers: list | None = None
    groups: int = 1

    def extra_json(self) -> dict:
        return {"relu": self.relu, "groups": self.groups,
                "conflict_stalls": self.conflict_stalls,
                "actions": self.actions,
                "model_conflict_stalls": self.model_conflict_stalls,
                "halo_traffic": self.halo_traffic, "steps": self.words,
                "passes": self.passes, "tile": list(self.tile),
                **({"layers": self.layers} if self.layers is not None else {})}


#: Why ``sim --model`` of ``scnn`` reports null energy figures.
ENERGY_MISSING = ("SCNN's energy is priced from actions counted in the RTL run; the cycle "
                  "model does not count them")


def _prepare(config, ifmap, filters, pad, relu, filters2, pad2, what, groups=1):
    """The program of a run (one layer, or a chain with ``filters2``), its per-layer
    programs and shared figures: ``(program, layers, figures)``. ``groups``: column groups
    (:func:`build_program`), or ``"auto"`` (:func:`plan_groups`)."""
    if not isinstance(config, ScnnConfig):
        raise TypeError(f"{what} needs a ScnnConfig, not {type(config).__name__}")
    if groups != 1 and filters2 is not None:
        raise TensorError("chained layers run ungrouped: a grouped layer's OARAMs hold only "
                          "its column group's output channels (`groups` must be 1)")
    if groups == "auto":
        groups = plan_groups(config, ifmap, filters, pad, relu)["groups"]
    if filters2 is None:
        program = build_program(config, ifmap, filters, pad, relu, groups=groups)
        layers = [(program, check_tensor(ifmap, config.data_width, "ifmap", ndim=3), filters)]
    else:
        program = build_chain(config, ifmap, filters, pad, filters2, pad2, relu)
        k1 = program.filters2.shape[1]
        layers = [(program.first, check_tensor(ifmap, config.data_width, "ifmap", ndim=3),
                   filters), (program.second, program.input2[:k1], program.filters2)]
    macs_total = macs_nonzero = halo = 0
    for layer, inputs, weights in layers:
        _, _, r, s, lpad = layer.shape
        macs_total += (len(weights) * inputs.shape[0] * r * s * layer.plan.p * layer.plan.q)
        macs_nonzero += gs.macs_nonzero(inputs, weights, lpad)
        halo += layer.halo_traffic
    plan = layers[0][0].plan
    figures = dict(macs_total=macs_total, macs_nonzero=macs_nonzero,
                   multipliers=config.multipliers, words=len(program.words),
                   passes=len(plan.passes), tile=(plan.ht, plan.wt), relu=relu,
                   groups=program.groups)
    return program, [layer for layer, _, _ in layers], halo, figures


def _layer_reports(layers, model_layers_, ends, matches):
    """Per-layer figures of a chained run (``None`` for one layer): RTL cycles from the
    previous layer's last output row to this one's (``ends``: their cycles, or ``None`` from
    the model), the model's split."""
    if len(layers) == 1:
        return None
    reports, before = [], 0
    for n, (layer, model) in enumerate(zip(layers, model_layers_)):
        k, c, r, s, pad = layer.shape
        reports.append({
            "layer": n + 1, "shape": {"K": k, "C": c, "R": r, "S": s, "pad": pad},
            "cycles": None if ends is None else int(ends[n]) - before,
            "model_cycles": model["cycles"],
            "model_split": {"load": model["load"], "compute": model["compute"],
                            "walk": model["walk"], "source": "model"},
            "matches_golden": matches[n]})
        before = 0 if ends is None else int(ends[n])
    return reports


def run_conv(design, config, ifmap, filters, *, pad: int = 0, relu: bool = False,
             status=None, tech=None, filters2=None, pad2: int = 0,
             groups: int | str = 1) -> ScnnResult:
    """Run a stride-1 convolution (or, with ``filters2``, two chained ones: :func:`build_chain`)
    on the generated Verilog of ``scnn`` through the stream player (Verilator), compare it
    with the golden convolution, and predict its cycles. The output is the last layer's, as it
    leaves on the array's ``o`` (a chain's first layer drains on ``o`` too, into its OARAMs at
    the same time; both are compared). The run counts the PEs' actions (``Scnn.probes``):
    ``halo_traffic`` is its count of partial sums exchanged, and with a ``tech`` the energy
    figures (of the whole run) are priced from the counts (:func:`~.energy.scnn_layer_energy`).
    ``groups``: output-channel column groups (:func:`build_program`) or ``"auto"``
    (:func:`plan_groups`).
    """
    program, layers, _, figures = _prepare(config, ifmap, filters, pad, relu, filters2, pad2,
                                           "run_conv", groups)
    generated = generate(design, config)
    payload, n = payload_of(program, with_pe=True)
    words = pack_many(generated.metadata["layouts"]["i__payload"], payload, n)
    model, model_stalls, split = model_layers(program)
    played = play(generated, words, expect=program.transfers, timeout_cycles=4 * model + 1000,
                  read=["conflict_stalls"], status=status, probes=Scnn.probes(config))
    out_layout = generated.metadata["layouts"]["o__payload"]
    transfers = []
    for line in played.results.split():
        rows = unpack(out_layout, int(line, 16))
        transfers.append([[(ln["value"], ln["run"], ln["valid"]) for ln in row["lanes"]]
                          for row in rows])
    divergence, matches, ends, start = None, [], [], 0
    for layer in layers:
        stop = start + layer.transfers
        output = decode_outputs(layer, transfers[start:stop])
        found = first_divergence(layer, output, played.result_cycles[start:stop])
        matches.append(found is None)
        if found is not None and divergence is None:
            divergence = found if len(layers) == 1 else {"layer": len(matches), **found}
        ends.append(played.result_cycles[stop - 1] if stop else 0)
        start = stop
    return ScnnResult(
        output=output, cycles=played.cycles, model_cycles=model,
        matches_golden=divergence is None, first_divergence=divergence,
        conflict_stalls=played.read["conflict_stalls"], model_conflict_stalls=model_stalls,
        halo_traffic=played.probes["halo"], actions=dict(played.probes),
        sim_seconds=played.seconds, build_seconds=played.build_seconds,
        layers=_layer_reports(layers, split, ends, matches), **figures,
        energy=None if tech is None else scnn_layer_energy(
            generated.verilog, generated.top, config, Scnn.memories(config), played.probes,
            played.cycles, tech))


def model_conv(design, config, ifmap, filters, *, pad: int = 0, relu: bool = False,
               status=None, tech=None, filters2=None, pad2: int = 0,
               groups: int | str = 1) -> ScnnResult:
    """The figures of :func:`run_conv` without building RTL: the output from the golden
    convolution, cycles and conflict stalls from the trace-driven model (checked equal to the
    RTL by the tests) run on the same compressed program."""
    start = time.perf_counter()
    program, layers, halo, figures = _prepare(config, ifmap, filters, pad, relu, filters2,
                                              pad2, "model_conv", groups)
    model, model_stalls, split = model_layers(program)
    return ScnnResult(
        output=layers[-1].expected, cycles=model, model_cycles=model,
        matches_golden=None, conflict_stalls=model_stalls, model_conflict_stalls=model_stalls,
        halo_traffic=halo, sim_seconds=time.perf_counter() - start, build_seconds=0.0,
        source="model", layers=_layer_reports(layers, split, None, [None] * len(layers)),
        **figures, energy=None if tech is None else no_energy(tech, ENERGY_MISSING))


SCNN = Host(workload="conv", run=run_conv, model=model_conv,
            options=frozenset({"relu", "conv_chain", "groups"}))
"""``scnn``: stride-1 convolutions natively; its cycle model is trace-driven (no closed form)."""
