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
"""

import dataclasses
import math
import time

import numpy as np

from ..gen.design import Host
from ..gen.generate import generate
from ..hw.scnn import (
    DRAIN_LATENCY,
    WEIGHT_ENTRY_DELAY,
    Cmd,
    Scnn,
    ScnnConfig,
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
           "first_divergence", "model_cycles", "run_conv", "model_conv", "payload_of"]


@dataclasses.dataclass
class Program:
    """Everything a run needs: the input words and how to read the outputs back."""

    config: object
    plan: gs.TilePlan
    shape: tuple                    # (K, C, R, S, pad)
    words: list                     # (kind, pe, last, values, runs, geom) per word
    drains: list                    # (y0, x0, g) per DRAIN, in order
    blocks: list                    # per word: key into `work` (WGT) or None
    work: dict                      # cycle-model inputs per WGT word: bank loads per PE
    expected: np.ndarray
    relu: bool

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


class _CrossbarModel:
    """Cycle-by-cycle model of :class:`~sparsegen.hw.scnn._Crossbar` (two-pair window)."""

    def __init__(self):
        self.old, self.new = [], []     # pending banks of the older and newer pair
        self.now = 0                    # the cycle the registers hold these at its start
        self.stalls = 0

    @staticmethod
    def _grant(old, new):
        used, old_left, new_left = set(), [], []
        for pending, left in ((old, old_left), (new, new_left)):
            for b in pending:
                if b in used:
                    left.append(b)
                else:
                    used.add(b)
        return old_left, new_left

    def issue(self, banks: list, ready: int) -> int:
        """Load a pair at the first cycle >= ``ready`` that allows it; returns that cycle."""
        while True:
            if not self.old and not self.new and self.now < ready:
                self.now = ready
            old_left, new_left = self._grant(self.old, self.new)
            cycle = self.now
            self.now += 1
            if old_left:
                self.stalls += 1
                self.old, self.new = old_left, new_left
            elif cycle >= ready:
                self.old, self.new = new_left, banks
                return cycle
            else:
                self.old, self.new = new_left, []

    def drain(self) -> int:
        """Run without loads until empty; returns the first cycle from which it is idle."""
        while self.old or self.new:
            old_left, new_left = self._grant(self.old, self.new)
            self.now += 1
            if old_left:
                self.stalls += 1
                self.old, self.new = old_left, new_left
            else:
                self.old, self.new = new_left, []
        return self.now - 1


class _PairWork:
    """The crossbar requests of every WGT word (``Program.work``), computed on demand per
    (pass, group, channel) block, vectorized over the block's entries and the PEs.

    ``work[key]`` is the reference form: per PE, per activation row, the list of banks the
    pair's live products request, in priority order (:func:`_pair_banks`).
    :meth:`counts` is the fast model's form: requests per bank ``[PEs, rows, banks]`` and each
    PE's row count (the crossbar's arbitration depends only on how many products of a pair
    want each bank, not on which product that is)."""

    def __init__(self, banks: int, entries: dict):
        self.banks = banks
        self.entries = entries          # (g, ch) -> weight values, bases [entries, F]
        self.acts = {}                  # pass -> rows[pe][ch] = values, offsets [rows, I]
        self.keys = set()
        self._block, self._counts, self._padded = None, None, {}

    def add(self, key):
        self.keys.add(key)

    def __contains__(self, key):
        return key in self.keys

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, key):
        pidx, g, ch, n = key[-4:]           # (pass, group, channel, entry), last
        wv, wb = self.entries[g, ch]
        return [_pair_banks(wv[n:n + 1], wb[n:n + 1], *rows[ch], self.banks)[0]
                for rows in self.acts[pidx]]

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

    def counts(self, key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Requests per bank of the word's pairs ``[PEs, rows, banks]``, whether a pair
        requests some bank twice ``[PEs, rows]``, and rows per PE."""
        pidx, g, ch, n = key[-4:]           # (pass, group, channel, entry), last
        if self._block != (pidx, g, ch):
            av, ao, nrows = self._acts(pidx, ch)
            wv, wb = self.entries[g, ch]
            addr = wb[:, None, None, :, None] + ao[None, :, :, None, :]     # [E, P, R, F, I]
            live = (wv[:, None, None, :, None] != 0) & (av[None, :, :, None, :] != 0)
            e, pes, rows = addr.shape[:3]
            cell = np.arange(e * pes * rows).reshape(e, pes, rows, 1, 1) * self.banks
            flat = (cell + (addr & (self.banks - 1)))[live]
            counts = np.bincount(flat, minlength=e * pes * rows * self.banks)
            counts = counts.reshape(e, pes, rows, self.banks).astype(np.int16)
            self._counts = counts, (counts > 1).any(3), nrows
            self._block = (pidx, g, ch)
        counts, twice, nrows = self._counts
        return counts[n], twice[n], nrows


class _ReferenceCrossbars:
    """The PEs' crossbars as one :class:`_CrossbarModel` per PE, pair by pair: the simple
    reference that :class:`_Crossbars` is tested equal to."""

    def __init__(self, npes: int, banks: int):
        self.xbars = [_CrossbarModel() for _ in range(npes)]
        self.loaded = [-1] * npes       # cycle the PE's last pair entered the crossbar

    def entry(self, work, key, start: int) -> list:
        """Issue every pair of a weight entry taken at ``start - WEIGHT_ENTRY_DELAY``;
        returns each PE's pop cycle (its last pair's issue)."""
        pops = []
        for p, pairs in enumerate(work[key]):
            for banks in pairs:
                issue = max(start, self.loaded[p])
                self.loaded[p] = self.xbars[p].issue(banks, issue + 1)
            pops.append(issue)
        return np.array(pops)

    def idle(self) -> int:
        """The first cycle at which every PE's product stage and crossbar are empty."""
        return max(max(x.drain(), loaded + 1) for x, loaded in zip(self.xbars, self.loaded))

    @property
    def stalls(self) -> int:
        return sum(x.stalls for x in self.xbars)


class _Crossbars:
    """:class:`_ReferenceCrossbars` vectorized over the PEs (numpy), with the same results:
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
        """As :meth:`_ReferenceCrossbars.entry`."""
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
        pops = np.empty(len(nrows), dtype=np.int64)
        for j in range(counts.shape[1]):
            issue = np.maximum(start, self.loaded)
            ready = issue + 1
            load = counts[:, j]
            if j == 0 and self.clean.all():     # every PE issues a row 0
                self.loaded = fire = np.maximum(self.now, ready)
                self.now = fire + 1
                self.new = load
                self.clean = ~twice[:, j]
                pops = issue
                continue
            active = nrows > j
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
        """As :meth:`_ReferenceCrossbars.idle`."""
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


def build_program(config, ifmap, filters, pad: int = 0, relu: bool = False) -> Program:
    """Validate the layer for ``config`` (``ScnnConfig`` or ``ScnnPEConfig``, a 1 x 1 grid)
    and build the word stream, the output map and the cycle-model inputs.

    Raises
    ------
    TensorError
        Wrong dtype, range or shape, or a filter the config cannot hold (named).
    """
    ifmap, filters = _check(config, ifmap, filters, pad)
    c = ifmap.shape[0]
    k, _, r, s = filters.shape
    plan = gs.plan_tiles(ifmap.shape[1], ifmap.shape[2], r, s, pad, config.pe_rows,
                         config.pe_cols, config.max_tile_h, config.max_tile_w)
    ht, wt = plan.ht, plan.wt
    wacc = wt + s - 1
    plane = plane_pitch(wacc * (ht + r - 1), config.f, config.banks)
    blocks = gs.encode_weights(filters, config.kc)
    groups = len(blocks)
    entries = {(g, ch): _weight_entries(*blocks[g][ch], config.kc, s, r, wacc, plane,
                                         config.f)
               for g in range(groups) for ch in range(c)}
    geom = (wt, ht, r, s, int(relu))
    words, drains, keys = [], [], []
    work = _PairWork(config.banks, entries)
    pes = [(y, x) for y in range(config.pe_rows) for x in range(config.pe_cols)]

    def word(kind, pe=0, last=0, values=(), runs=(), key=None):
        words.append((kind, pe, last, list(values), list(runs), geom))
        keys.append(key)

    for pidx, (y0, x0) in enumerate(plan.passes):
        region = gs.pad_input(ifmap, pad, plan, y0, x0)
        acts = [gs.encode_activations(region[:, y * ht:(y + 1) * ht, x * wt:(x + 1) * wt])
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
            for p in range(len(pes)):
                for ch in chunk:
                    parts = _rows(*acts[p][ch], config.i)
                    for n, (v, rr) in enumerate(parts):
                        word(Cmd.ACT, p, int(n == len(parts) - 1), v, rr)

        def weights(g, chunk, pidx=pidx):
            for ch in chunk:
                parts = _rows(*blocks[g][ch], config.f)
                for n, (v, rr) in enumerate(parts):
                    key = (pidx, g, ch, n)
                    work.add(key)
                    word(Cmd.WGT, 0, int(n == len(parts) - 1), v, rr, key)

        if len(chunks) == 1:
            load(chunks[0])
        for g in range(groups):
            for chunk in chunks:
                if len(chunks) > 1:
                    load(chunk)
                weights(g, chunk)
            word(Cmd.DRAIN)
            drains.append((y0, x0, g))
    expected = gs.conv_einsum(ifmap, filters, pad, config.acc_width, config.data_width)
    if relu:
        expected = np.maximum(expected, 0)
    return Program(config, plan, (k, c, r, s, pad), words, drains, keys, work, expected, relu)


def payload_of(program: Program, with_pe: bool) -> tuple[dict, int]:
    """The words as nested arrays for :func:`~.tb.bits.pack_many`, and their count."""
    n = len(program.words)
    lanes = max(program.config.f, program.config.i)
    values = np.zeros((n, lanes), dtype=np.int64)
    runs = np.zeros((n, lanes), dtype=np.int64)
    kind, pe, last, count = (np.zeros(n, dtype=np.int64) for _ in range(4))
    for j, (kd, p, lst, v, rr, _) in enumerate(program.words):
        kind[j], pe[j], last[j], count[j] = kd.value, p, lst, len(v)
        values[j, :len(v)] = v
        runs[j, :len(rr)] = rr
    wt, ht, r, s, relu = program.words[0][5]
    full = lambda x: np.full(n, x, dtype=np.int64)      # noqa: E731
    payload = {"kind": kind, "last": last, "count": count,
               "lanes": {"value": values, "run": runs},
               "geom": {"wt": full(wt), "ht": full(ht), "r": full(r), "s": full(s),
                        "relu": full(relu)}}
    if with_pe:
        payload["pe"] = pe
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
    out = np.zeros((k, plan.p, plan.q), dtype=np.int64)
    pes = [(y, x) for y in range(cfg.pe_rows) for x in range(cfg.pe_cols)]
    per_drain = cfg.kc * ht
    if len(transfers) != per_drain * len(program.drains):
        raise ValueError(f"expected {per_drain * len(program.drains)} output rows, got "
                         f"{len(transfers)}")
    for d, (y0, x0, g) in enumerate(program.drains):
        ny = min(plan.out_rows, plan.p - y0)
        nx = min(plan.out_cols, plan.q - x0)
        full = np.zeros((cfg.kc, cfg.pe_rows * ht, cfg.pe_cols * wt), dtype=np.int64)
        for p, (py, px) in enumerate(pes):
            for kk in range(cfg.kc):
                rows = transfers[d * per_drain + kk * ht: d * per_drain + (kk + 1) * ht]
                pairs = [(v, rn) for row in rows for (v, rn, ok) in row[p] if ok]
                values = np.array([v for v, _ in pairs], dtype=np.int64)
                runs = np.array([rn for _, rn in pairs], dtype=np.int64)
                tile = gs.decode_rle(values, runs, ht * wt).reshape(ht, wt)
                full[kk, py * ht:(py + 1) * ht, px * wt:(px + 1) * wt] = tile
        k0 = g * cfg.kc
        kn = min(cfg.kc, k - k0)
        out[k0:k0 + kn, y0:y0 + ny, x0:x0 + nx] = full[:kn, :ny, :nx]
    return out


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
    drains = {(y0, x0, g): d for d, (y0, x0, g) in enumerate(program.drains)}
    places = []
    for k, y, x in wrong:
        y0 = y - y % plan.out_rows
        x0 = x - x % plan.out_cols
        yy, xx = y - y0, x - x0
        transfer = (drains[y0, x0, k // cfg.kc] * cfg.kc * plan.ht + (k % cfg.kc) * plan.ht
                    + yy % plan.ht)
        pe = (int(yy // plan.ht), int(xx // plan.wt))
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


def model_cycles(program: Program, crossbars=None, times: list | None = None
                 ) -> tuple[int, int]:
    """Trace-driven cycle model of the RTL: ``(cycles, conflict_stalls)``.

    Cycles run from the edge that takes the first word to the edge of the last output row,
    both included, with the input offered every cycle and the output never back-pressured.
    Rules (see the Timing of :class:`~sparsegen.hw.scnn.ScnnPE`): one word per cycle; ACT
    always taken; WGT entry ``e`` waits until every PE popped entry ``e - wt_depth``; a PE
    issues a (weight entry, activation row) pair from :data:`~sparsegen.hw.scnn.
    WEIGHT_ENTRY_DELAY` cycles after the entry's word was taken, and not before the cycle its
    previous pair left the product stage for the crossbar (one product stage); the crossbar
    loads a pair from the cycle after its issue, as its arbitration allows (simulated cycle by
    cycle, :class:`_CrossbarModel`); an entry leaves the FIFO when its last row issues;
    CONFIG and DRAIN wait for empty decoders, FIFOs and product stages and idle crossbars;
    DRAIN also waits for the previous group's row walk to end (the accumulators are double
    buffered: the walk of a group, :func:`~sparsegen.hw.scnn.walk_cycles` cycles from the cycle
    after its DRAIN, runs on one half while the next group computes into the other, and the
    next DRAIN is taken from the cycle after the walk's last); input is taken again right after
    DRAIN, and each group's last row leaves :data:`~sparsegen.hw.scnn.DRAIN_LATENCY` cycles
    after its walk's last cycle (the end of the layer waits for the last walk). The timing
    facts are read from ``hw/scnn.py``, where they are stated.

    ``crossbars`` makes the PEs' crossbar models from ``(PEs, banks)``: :class:`_Crossbars`
    (vectorized over the PEs) by default; the tests pass :class:`_ReferenceCrossbars` (one
    simple model per PE) and check the results equal. ``times``, when given, receives the
    cycle each word is taken (the bench's cycle breakdown).
    """
    cfg, plan = program.config, program.plan
    npes = cfg.pe_rows * cfg.pe_cols
    walk = walk_cycles(cfg.kc, plan.ht, plan.r)
    t_last, walk_free, last_out = -1, 0, -1
    xbars = (crossbars or _Crossbars)(npes, cfg.banks)
    pops = []                           # cycle of each FIFO entry's pop, per PE
    for (kind, *_), key in zip(program.words, program.blocks):
        t = t_last + 1
        if kind == Cmd.WGT:
            e = len(pops)
            if e >= cfg.wt_depth:
                t = max(t, int(pops[e - cfg.wt_depth].max()) + 1)
            pops.append(xbars.entry(program.work, key, t + WEIGHT_ENTRY_DELAY))
        elif kind in (Cmd.CONFIG, Cmd.DRAIN):
            t = max(t, xbars.idle())
            if kind == Cmd.DRAIN:
                t = max(t, walk_free)
                last_out = t + walk + DRAIN_LATENCY
                walk_free = t + walk + 1
        t_last = t
        if times is not None:
            times.append(t)
    return last_out + 1, xbars.stalls


@dataclasses.dataclass
class ScnnResult(RunFigures):
    """A convolution run on ``scnn``: the common figures plus crossbar stalls, halo traffic,
    input words, passes, the planar tile and (RTL runs) the PEs' action counts
    (``Scnn.probes``)."""

    conflict_stalls: int
    model_conflict_stalls: int
    halo_traffic: int
    words: int
    passes: int
    tile: tuple
    relu: bool = False
    actions: dict | None = None

    def extra_json(self) -> dict:
        return {"relu": self.relu, "conflict_stalls": self.conflict_stalls,
                "actions": self.actions,
                "model_conflict_stalls": self.model_conflict_stalls,
                "halo_traffic": self.halo_traffic, "steps": self.words,
                "passes": self.passes, "tile": list(self.tile)}


#: Why ``sim --model`` of ``scnn`` reports null energy figures.
ENERGY_MISSING = ("SCNN's energy is priced from actions counted in the RTL run; the cycle "
                  "model does not count them")


def run_conv(design, config, ifmap, filters, *, pad: int = 0, relu: bool = False,
             status=None, tech=None) -> ScnnResult:
    """Run a stride-1 convolution on the generated Verilog of ``scnn`` through the stream
    player (Verilator), compare it with the golden convolution, and predict its cycles.
    The run counts the PEs' actions (``Scnn.probes``): ``halo_traffic`` is its count of
    partial sums exchanged, and with a ``tech`` the energy figures are priced from the counts
    (:func:`~.energy.scnn_layer_energy`)."""
    if not isinstance(config, ScnnConfig):
        raise TypeError(f"run_conv needs a ScnnConfig, not {type(config).__name__}")
    program = build_program(config, ifmap, filters, pad, relu)
    generated = generate(design, config)
    payload, n = payload_of(program, with_pe=True)
    words = pack_many(generated.metadata["layouts"]["i__payload"], payload, n)
    model, model_stalls = model_cycles(program)
    played = play(generated, words, expect=program.transfers, timeout_cycles=4 * model + 1000,
                  read=["conflict_stalls"], status=status, probes=Scnn.probes(config))
    out_layout = generated.metadata["layouts"]["o__payload"]
    transfers = []
    for line in played.results.split():
        rows = unpack(out_layout, int(line, 16))
        transfers.append([[(ln["value"], ln["run"], ln["valid"]) for ln in row["lanes"]]
                          for row in rows])
    output = decode_outputs(program, transfers)
    divergence = first_divergence(program, output, played.result_cycles)
    k, c, r, s, _ = program.shape
    ifmap_c = check_tensor(ifmap, config.data_width, "ifmap", ndim=3)
    return ScnnResult(
        output=output, cycles=played.cycles, model_cycles=model,
        macs_total=k * c * r * s * program.plan.p * program.plan.q,
        macs_nonzero=gs.macs_nonzero(ifmap_c, filters, pad), multipliers=config.multipliers,
        matches_golden=divergence is None, first_divergence=divergence,
        conflict_stalls=played.read["conflict_stalls"], model_conflict_stalls=model_stalls,
        halo_traffic=played.probes["halo"], actions=dict(played.probes), words=n,
        passes=len(program.plan.passes),
        tile=(program.plan.ht, program.plan.wt), sim_seconds=played.seconds,
        build_seconds=played.build_seconds, relu=relu,
        energy=None if tech is None else scnn_layer_energy(
            generated.verilog, generated.top, config, Scnn.memories(config), played.probes,
            played.cycles, tech))


def model_conv(design, config, ifmap, filters, *, pad: int = 0, relu: bool = False,
               status=None, tech=None) -> ScnnResult:
    """The figures of :func:`run_conv` without building RTL: the output from the golden
    convolution, cycles and conflict stalls from the trace-driven model (checked equal to the
    RTL by the tests) run on the same compressed program."""
    if not isinstance(config, ScnnConfig):
        raise TypeError(f"model_conv needs a ScnnConfig, not {type(config).__name__}")
    start = time.perf_counter()
    program = build_program(config, ifmap, filters, pad, relu)
    model, model_stalls = model_cycles(program)
    k, c, r, s, _ = program.shape
    ifmap_c = check_tensor(ifmap, config.data_width, "ifmap", ndim=3)
    return ScnnResult(
        output=program.expected, cycles=model, model_cycles=model,
        macs_total=k * c * r * s * program.plan.p * program.plan.q,
        macs_nonzero=gs.macs_nonzero(ifmap_c, filters, pad), multipliers=config.multipliers,
        matches_golden=None, conflict_stalls=model_stalls, model_conflict_stalls=model_stalls,
        halo_traffic=program.halo_traffic, words=len(program.words),
        passes=len(program.plan.passes), tile=(program.plan.ht, program.plan.wt),
        sim_seconds=time.perf_counter() - start, build_seconds=0.0, relu=relu, source="model",
        energy=None if tech is None else no_energy(tech, ENERGY_MISSING))


SCNN = Host(workload="conv", run=run_conv, model=model_conv, options=frozenset({"relu"}))
"""``scnn``: stride-1 convolutions natively; its cycle model is trace-driven (no closed form)."""
