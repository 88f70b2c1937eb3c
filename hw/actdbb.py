"""S2TA's dynamic activation DBB unit (DAP): keep the top-``nnz_a`` activations of each block.

Selection rule (DESIGN.md, shared with ``sim/golden/dbb.prune_activations``): per block of BZ
activations keep the ``nnz_a`` entries with the largest magnitude; equal magnitudes go to the
lower index; a zero is never kept; a block with fewer non-zeros keeps all of them.
"""

import dataclasses

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import popcount
from .dbb import index_width, weight_slot_layout
from .hier import shared
from .params import Config, check_config, param

__all__ = ["ActDBBConfig", "ActDBB", "DrainDAP", "act_dbb_output_layout",
           "drain_dap_output_layout", "rank_keep", "compact_slots", "requantize"]


@dataclasses.dataclass(frozen=True)
class ActDBBConfig(Config):
    """Configuration of :class:`ActDBB`."""

    block_size: int = param(8, lo=2, hi=32, pow2=True, help="BZ: activations per block")
    nnz_max: int = param(4, lo=1, hi="block_size",
                         help="largest run-time nnz_a the unit supports (output slots)")
    data_width: int = param(8, lo=2, hi=16, help="signed activation width in bits")


def act_dbb_output_layout(block_size: int, nnz_max: int, data_width: int) -> data.StructLayout:
    """A compressed activation block: BZ-bit ``mask`` and ``nnz_max`` (value, index) slots.

    Slots hold the kept activations in ascending index order; unused slots are (0, 0).
    """
    return data.StructLayout({
        "mask": block_size,
        "slots": data.ArrayLayout(weight_slot_layout(block_size, data_width), nnz_max),
    })


def rank_keep(m: Module, values, nnz, data_width: int):
    """Combinational top-``nnz`` selection by parallel rank counting; returns the keep mask.

    Element ``i`` is beaten by ``j`` when ``|a_j| > |a_i|``, or ``|a_j| == |a_i|`` and
    ``j < i``. ``i`` is kept when it is non-zero and fewer than ``nnz`` elements beat it.
    Each unordered pair is compared once (BZ(BZ-1)/2 magnitude comparators), each rank is a
    popcount of BZ-1 bits, then one small compare against ``nnz``. A sorting network would
    need about as many comparators (19 for BZ=8, but each drives a data-width swap mux) and
    log^2(BZ) levels of them in series; rank counting has one comparator level, so it is both
    smaller and shallower here, and it yields the mask the output format needs directly.
    """
    n = len(values)
    mags = []
    for i, v in enumerate(values):
        mag = Signal(unsigned(data_width), name=f"mag{i}")    # |-2^(w-1)| = 2^(w-1) fits
        # Unsigned values (the output DAP's, after its ReLU) are their own magnitude.
        m.d.comb += mag.eq(Mux(v < 0, -v, v) if v.shape().signed else v)
        mags.append(mag)
    beats = [[None] * n for _ in range(n)]      # beats[j][i]: j beats i
    for i in range(n):
        for j in range(i + 1, n):
            # j > i: i (the lower index) wins ties.
            i_wins = Signal(name=f"win{i}_{j}")
            m.d.comb += i_wins.eq(mags[i] >= mags[j])
            beats[i][j], beats[j][i] = i_wins, ~i_wins
    keep = Signal(n)
    for i in range(n):
        rank = popcount(Cat(*(beats[j][i] for j in range(n) if j != i)))
        m.d.comb += keep[i].eq((values[i] != 0) & (rank < nnz))
    return keep


def compact_slots(m: Module, keep, values, nnz_max: int, data_width: int,
                  block_size: int | None = None):
    """Combinational compaction of the kept ``values`` into ``nnz_max`` (value, index) slots in
    ascending index order (unused slots (0, 0)); slot s takes the element whose kept-prefix
    count is s. ``block_size`` (default ``len(values)``; larger for a short last block) sets
    the index width. Returns the slots signal."""
    bz = len(values)
    slots = Signal(data.ArrayLayout(weight_slot_layout(block_size or bz, data_width), nnz_max))
    prefix = [popcount(keep[:i]) if i else Const(0, 1) for i in range(bz)]
    for s in range(nnz_max):
        hit = [keep[i] & (prefix[i] == s) for i in range(bz)]
        # At most one element hits a slot, so OR-ing the gated candidates is a mux.
        value, index = 0, 0
        for i in range(bz):
            value = value | Mux(hit[i], values[i].as_unsigned(), 0)
            index = index | Mux(hit[i], i, 0)
        m.d.comb += [slots[s].value.eq(value[:data_width].as_signed()),
                     slots[s].index.eq(index[:index_width(block_size or bz)])]
    return slots


def requantize(value, shift: int, data_width: int):
    """ReLU, arithmetic shift right by ``shift``, saturation to [0, 2^(data_width-1) - 1] of a
    signed sum (``sim/golden/dbb.requantize``). Returns an unsigned(data_width - 1) value."""
    top = (1 << (data_width - 1)) - 1
    width = len(value)
    if shift >= width:
        return Const(0, data_width - 1)
    shifted = value[shift:width - 1]                # the sign bit is handled by the ReLU
    # Clamp only where the shifted sum can exceed the top (not at the smallest sizes, where
    # the comparison would be constant).
    clamped = Mux(shifted > top, top, shifted) if (1 << len(shifted)) - 1 > top else shifted
    return Mux(value[width - 1], 0, clamped)[:data_width - 1]


def drain_dap_output_layout(*, lanes: int, block_size: int, nnz_max: int, data_width: int,
                            acc_width: int) -> data.StructLayout:
    """A :class:`DrainDAP` result: the row's ``sum`` (in the low bits) and its ``act``,
    ceil(lanes / block_size) compressed blocks."""
    block = act_dbb_output_layout(block_size, nnz_max, data_width)
    return data.StructLayout({
        "sum": data.ArrayLayout(signed(acc_width), lanes),
        "act": data.ArrayLayout(block, -(-lanes // block_size)),
    })


class _DapBlock(wiring.Component):
    """One block of :class:`DrainDAP`: its ``n`` sums requantized, the top ``nnz_a`` kept
    (:func:`rank_keep`), the keep mask and the values registered on ``load``, compacted behind
    that register (:func:`compact_slots`). ``n`` < ``block_size`` for a short last block (its
    missing values are zeros). A module of its own, one per size, shared by the blocks
    (:func:`~.hier.shared`): the DAP's logic is per block, so a wide array's drain does not
    elaborate and convert it once per block."""

    def __init__(self, *, n: int, block_size: int, nnz_max: int, data_width: int,
                 acc_width: int, shift: int):
        self.n = n
        self.key = (n, block_size, nnz_max, data_width, acc_width, shift)
        super().__init__({
            "sums": In(data.ArrayLayout(signed(acc_width), n)),
            "nnz_a": In(range(1, nnz_max + 1), init=nnz_max),
            "load": In(1),
            "o": Out(act_dbb_output_layout(block_size, nnz_max, data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        n, block_size, nnz_max, width, _, shift = self.key
        values = []
        for i in range(n):
            q = Signal(unsigned(width), name=f"q{i}")      # < 2^(width-1): non-negative
            m.d.comb += q.eq(requantize(self.sums[i], shift, width))
            values.append(q)
        keep = rank_keep(m, values, self.nnz_a, width)
        # The stage: the block's keep mask and values; compaction runs behind it.
        kept = Signal(n, name="keep")
        held = [Signal(unsigned(width), name=f"v{i}") for i in range(n)]
        with m.If(self.load):
            m.d.sync += [kept.eq(keep), *(h.eq(v) for h, v in zip(held, values))]
        m.d.comb += [self.o.mask.eq(kept),
                     self.o.slots.eq(compact_slots(m, kept, held, nnz_max, width, block_size))]
        return m


class DrainDAP(wiring.Component):
    """S2TA's DAP on an array's output path: a drained row of sums -> DBB-compressed
    activation blocks for the next layer, the sums passed on beside them.

    Each of the ``lanes`` sums is requantized (:func:`requantize`: ReLU, ``>> shift``,
    saturated), then every block of ``block_size`` consecutive values (the last one short
    when ``block_size`` does not divide ``lanes``: its missing values count as zeros) is
    reduced to its top ``nnz_a`` by magnitude (:func:`rank_keep`, the rule of
    ``prune_activations``) and compacted (:func:`compact_slots`). Values are non-negative
    after the ReLU, so no magnitude logic is built. ``nnz_max`` slots per block.

    Members
    -------
    i : In(stream.Signature(ArrayLayout(signed(acc_width), lanes)))
        Drained rows of sums.
    nnz_a : In(range(1, nnz_max + 1))
    o : Out(stream.Signature(drain_dap_output_layout(...)))
        ``sum``: the row; ``act``: ``n`` = ceil(lanes / block_size) blocks, ``mask`` and
        ``slots`` of each.

    Timing
    ------
    One register stage, between the selection and the compaction (it holds the row's sums,
    each block's keep mask and requantized values): :attr:`LATENCY` = 1 edge from taking a
    row to offering it on ``o``; one row per cycle, a stalled ``o`` holds the stage and lowers
    ``i.ready``. Combinational, the array's drain mux, the requantization, the rank counting
    and the compaction in series were the default ``s2ta``'s critical path once its cells had
    their lane-sum stage (sky130hd: 7.65 ns against ``dense-array``'s 5.16; the stage after
    the requantization instead left 6.56 ns behind it, rank counting 3.2 and compaction 3.1;
    here neither side is the design's critical path).
    """

    LATENCY = 1

    def __init__(self, *, lanes: int, block_size: int, nnz_max: int, data_width: int,
                 acc_width: int, shift: int):
        self._lanes, self._bz, self._nnz_max = lanes, block_size, nnz_max
        self._width, self._acc_width, self._shift = data_width, acc_width, shift
        self.n_blocks = -(-lanes // block_size)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(acc_width), lanes))),
            "nnz_a": In(range(1, nnz_max + 1), init=nnz_max),
            "o": Out(stream.Signature(drain_dap_output_layout(
                lanes=lanes, block_size=block_size, nnz_max=nnz_max, data_width=data_width,
                acc_width=acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        load = Signal()
        m.d.comb += load.eq(advance & self.i.valid)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        with m.If(load):
            m.d.sync += self.o.payload.sum.eq(self.i.payload)
        # One module per block size (the last block may be short), instantiated per block.
        for b in range(self.n_blocks):
            lo = b * self._bz
            block = _DapBlock(n=min(self._bz, self._lanes - lo), block_size=self._bz,
                              nnz_max=self._nnz_max, data_width=self._width,
                              acc_width=self._acc_width, shift=self._shift)
            m.submodules[f"block{b}"] = shared(platform, block, name="dap_block", key=block.key)
            m.d.comb += [*(block.sums[i].eq(self.i.payload[lo + i]) for i in range(block.n)),
                         block.nnz_a.eq(self.nnz_a), block.load.eq(load),
                         self.o.payload.act[b].eq(block.o)]
        return m

    @staticmethod
    def register_bits(*, lanes: int, data_width: int, acc_width: int) -> int:
        """Bits of the stage's registers loaded with each row: per lane its sum, its keep bit
        and its requantized value (``data_width`` - 1 bits: the top one is always 0, a
        constant synthesis drops). The energy model prices them per drained row."""
        return lanes * (acc_width + 1 + data_width - 1)


class ActDBB(wiring.Component):
    """Dynamic activation DBB compression, one block per cycle.

    Parameters
    ----------
    config : ActDBBConfig
    side : shape-castable
        Payload carried alongside each block (default 1 bit).

    Members
    -------
    nnz_a : In(range(1, nnz_max + 1))
        Run-time bound: activations kept per block. Change it only between layers (while no
        block is in flight).
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(signed(data_width), BZ),
                                          "side": side})))
        Dense activation blocks. ``side`` (constructor argument, 1 bit by default, where it
        marks the last block of a dot product) travels with the block unchanged; an array
        uses it to keep the weights in step with the activations.
    o : Out(stream.Signature(StructLayout({"block": act_dbb_output_layout, "side": side})))
        The compressed block: ``mask`` of the kept positions and the kept values in ascending
        index order in ``slots`` (with their indices).

    Timing
    ------
    Two register stages (selection, then compaction): :attr:`LATENCY` = 2 edges from the edge
    that accepts a block to the edge where it leaves with ``o.ready`` high. One block per
    cycle; a stalled ``o`` holds the pipeline and lowers ``i.ready``.
    """

    LATENCY = 2

    def __init__(self, config: ActDBBConfig, *, side=1):
        check_config(self, config, ActDBBConfig)
        self._config = config
        cfg = config
        super().__init__({
            "nnz_a": In(range(1, cfg.nnz_max + 1), init=cfg.nnz_max),
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(signed(cfg.data_width), cfg.block_size),
                "side": side}))),
            "o": Out(stream.Signature(data.StructLayout({
                "block": act_dbb_output_layout(cfg.block_size, cfg.nnz_max, cfg.data_width),
                "side": side}))),
        })

    @property
    def config(self) -> ActDBBConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        bz, width = cfg.block_size, cfg.data_width

        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        take = self.i.valid & self.i.ready

        # Stage 1: select.
        values = [self.i.payload.a[i] for i in range(bz)]
        keep = rank_keep(m, values, self.nnz_a, width)
        s1_valid = Signal()
        s1_side = Signal.like(self.i.payload.side)
        s1_keep = Signal(bz)
        s1_a = Signal(data.ArrayLayout(signed(width), bz))
        with m.If(advance):
            m.d.sync += s1_valid.eq(take)
            with m.If(take):
                m.d.sync += [s1_keep.eq(keep), s1_a.eq(self.i.payload.a),
                             s1_side.eq(self.i.payload.side)]

        # Stage 2: compact the kept values into slots in ascending index order.
        slots = compact_slots(m, s1_keep, [s1_a[i] for i in range(bz)], cfg.nnz_max, width)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(s1_valid)
            with m.If(s1_valid):
                m.d.sync += [self.o.payload.block.mask.eq(s1_keep),
                             self.o.payload.block.slots.eq(slots),
                             self.o.payload.side.eq(s1_side)]
        return m
