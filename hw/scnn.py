"""SCNN (ISCA 2017): the Cartesian-product PE (``scnn-pe``) and the planar-tiled PE array
(``scnn``) of the PT-IS-CP-sparse dataflow.

Dataflow. Each PE holds the compressed activations of its planar tile of the input (input
stationary, all channels of the pass). Compressed weights of one output-channel group (``kc``
output channels) are broadcast channel by channel. Every cycle a PE multiplies a vector of
``f`` weights by a vector of ``i`` activations of the same input channel (Cartesian product,
``f x i`` multipliers), computes each product's output coordinate and scatters the products
through an ``(f*i) x banks`` crossbar into accumulator banks that hold the output tile plus its
halo. After the group, halo partial sums go to the neighbouring PEs, and the tile drains
through an optional ReLU and a run-length compressor. The golden model and the format are in
:mod:`sparsegen.sim.golden.scnn`; the host-side schedule in :mod:`sparsegen.sim.scnn`.

Design choices.

* Coordinates are decoded once, when a compressed word enters the PE (one word per cycle, its
  ``(value, run)`` lanes decoded by a chain of small restoring dividers), not in the multiply
  loop. The activation buffer stores each non-zero with its accumulator-frame offset
  ``pos = y*(Wt+S-1) + x``; the weight FIFO stores each weight with
  ``base = k*pitch + (R-1-r)*(Wt+S-1) + (S-1-s)``. A product's accumulator address is then
  ``pos + base``: the coordinate computation of the Cartesian product is ``f*i`` adders.
* Weight blocks are ordered (r, s, k) with k fastest, so the ``f`` weights of a vector mostly
  belong to different output channels (as in SCNN) and their products land in different
  output planes: with s fastest instead, a dense vector pair puts ``min(f, i)`` products on
  the same output coordinate, an unavoidable same-bank conflict.
* Bank hashing is the low ``log2(banks)`` address bits (``banks`` is a power of two). Addresses
  are laid out row-major per output channel, so the ``Wt+S-1`` accumulators of a frame row sit
  in distinct banks: the halo exchange and the drain move a whole row per cycle without
  conflicts. Output channels' frames are ``pitch`` apart, the frame size rounded up to
  ``banks/f`` modulo ``banks`` (:func:`plane_pitch`, at most ``banks-1`` unused accumulators
  per channel): the ``f`` weights of a vector are mostly different output channels, so each
  gets its own window of ``banks/f = 2i`` banks, wide enough for the ``i`` activations of a
  dense vector even when it wraps into the next row (span ``i + S - 1``). Without the skew a
  frame of 100 accumulators with 32 banks puts channels 4 banks apart: the dense benchmark
  layer (``sparsegen bench scnn``) then spent about a quarter of its cycles in conflicts.
  Sparse vectors scatter over the whole frame, and their conflicts remain.
* Arbitration: two product registers form a window of two vector pairs. Per bank, the oldest
  pending product wins (older pair first, then lowest index). Losers of the newer pair move
  to the older register and compete again, with priority, alongside the next pair; only when
  the older register still holds losers after a cycle does the multiplier array stall (a
  conflict stall, counted in ``conflict_stalls``). A single register (stall until the whole
  pair is accumulated) lost about a third of the cycles of the benchmark layer at density
  0.8; the window doubles the crossbar's inputs and quadruples the arbitration comparators
  (``2*f*i`` requesters compare banks pairwise). Products with a zero operand
  (explicit zeros of long runs, unused lanes) do not request a bank.
* Accumulator banks are read-modify-written in one cycle (asynchronous read port), so equal
  addresses in consecutive cycles need no forwarding.
"""

import dataclasses
import math

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .hier import shared
from .params import Config, check_config, param

__all__ = [
    "Cmd", "ScnnPEConfig", "ScnnConfig", "ScnnPE", "Scnn", "RUN_BITS",
    "pe_input_layout", "array_input_layout", "pe_output_layout", "halo_layout", "plane_pitch",
    "WEIGHT_ENTRY_DELAY", "exchange_and_drain_cycles",
]

RUN_BITS = 4
_MAX_RUN = (1 << RUN_BITS) - 1


class Cmd(enum.Enum, shape=2):
    """Kind of an input word."""

    CONFIG = 0      #: tile geometry and ReLU; empties the activation buffer (waits for idle)
    ACT = 1         #: up to ``i`` compressed activations of the current channel
    WGT = 2         #: up to ``f`` compressed weights of the current (group, channel) block
    DRAIN = 3       #: end of the output-channel group: halo exchange, then drain


def _bits(n: int) -> int:
    """Bits to hold 0..n."""
    return max(1, int(n).bit_length())


@dataclasses.dataclass(frozen=True)
class _ScnnFields(Config):
    """The PE parameters both SCNN configs share, their validation and derived sizes."""

    f: int = param(2, lo=1, hi=16, help="F: non-zero weights per multiply vector")
    i: int = param(2, lo=1, hi=16, help="I: non-zero activations per multiply vector")
    banks: int = param(None, lo=2, hi=256, pow2=True, default_from="2*f*i",
                       help="A: accumulator banks (power of two)")
    bank_depth: int = param(18, lo=1, hi=4096, help="accumulators per bank")
    kc: int = param(2, lo=1, hi=64, help="output channels per group (accumulated at once)")
    max_tile_w: int = param(6, lo=1, hi=64, help="largest planar tile width Wt")
    max_tile_h: int = param(6, lo=1, hi=64, help="largest planar tile height Ht")
    max_r: int = param(3, lo=1, hi=15, help="largest filter height R")
    max_s: int = param(3, lo=1, hi=15, help="largest filter width S")
    act_depth: int = param(32, lo=1, hi=65536,
                           help="activation buffer rows (i compressed activations each)")
    wt_depth: int = param(4, lo=1, hi=256, help="weight FIFO entries (f weights each)")
    data_width: int = param(16, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(24, lo="data_width", hi=48,
                           help="accumulator width in bits; sums wrap around")

    def __post_init__(self):
        if self.banks is None:
            object.__setattr__(self, "banks", 2 * self.f * self.i)
        super().__post_init__()

    def _check(self):
        row = self.max_tile_w + self.max_s - 1
        if row > self.banks:
            raise ValueError(f"a frame row (`max_tile_w` + `max_s` - 1 = {row}) must fit "
                             f"`banks` ({self.banks}), not exceed it")
        need = math.ceil(self.accumulators / self.banks)
        if self.bank_depth < need:
            raise ValueError(f"`bank_depth` must be at least {need} to hold `kc` ({self.kc}) "
                             f"frames of up to {self.frame_max} accumulators at a bank-skewed "
                             f"pitch, not {self.bank_depth}")
        rows = math.ceil(self.max_tile_h * self.max_tile_w / self.i)
        if self.act_depth < rows:
            raise ValueError(f"`act_depth` must be at least {rows} to hold one channel of a "
                             f"full tile, not {self.act_depth}")

    @property
    def frame_max(self) -> int:
        """Accumulators per output channel: (max_tile_h + max_r - 1) x (max_tile_w + max_s - 1).
        """
        return (self.max_tile_h + self.max_r - 1) * (self.max_tile_w + self.max_s - 1)

    @property
    def pitch_max(self) -> int:
        """Largest distance of two output channels' frames (see :func:`plane_pitch`)."""
        return self.frame_max + self.banks - 1

    @property
    def accumulators(self) -> int:
        """Highest accumulator address + 1: ``(kc-1) * pitch_max + frame_max``."""
        return (self.kc - 1) * self.pitch_max + self.frame_max

    @property
    def lanes(self) -> int:
        """(value, run) lanes of an input word: max(f, i)."""
        return max(self.f, self.i)

    @property
    def halo_lanes(self) -> int:
        return max(self.max_tile_w, self.max_s - 1)

    @property
    def addr_width(self) -> int:
        return _bits(self.accumulators - 1)


@dataclasses.dataclass(frozen=True)
class ScnnPEConfig(_ScnnFields):
    """Configuration of :class:`ScnnPE`."""

    @property
    def multipliers(self) -> int:
        return self.f * self.i

    @property
    def pe_rows(self) -> int:
        return 1

    @property
    def pe_cols(self) -> int:
        return 1


@dataclasses.dataclass(frozen=True)
class ScnnConfig(_ScnnFields):
    """Configuration of :class:`Scnn`: a ``pe_rows x pe_cols`` grid of identical PEs."""

    pe_rows: int = param(2, lo=1, hi=16, help="PE grid rows (planar tiles along the height)")
    pe_cols: int = param(2, lo=1, hi=16, help="PE grid columns (tiles along the width)")

    @property
    def pes(self) -> int:
        return self.pe_rows * self.pe_cols

    @property
    def multipliers(self) -> int:
        return self.pes * self.f * self.i

    @property
    def pe(self) -> ScnnPEConfig:
        """The config of each PE."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(ScnnPEConfig)}
        return ScnnPEConfig(**fields)


# -- layouts ---------------------------------------------------------------------------------


def plane_pitch(plane: int, f: int, banks: int) -> int:
    """Address distance of consecutive output channels' frames: the frame size ``plane``
    rounded up to ``banks // f`` modulo ``banks`` (bank skew, see the module docs)."""
    return plane + ((banks // f - plane) % banks)


def _geom_layout(cfg) -> data.StructLayout:
    return data.StructLayout({
        "wt": range(cfg.max_tile_w + 1), "ht": range(cfg.max_tile_h + 1),
        "r": range(cfg.max_r + 1), "s": range(cfg.max_s + 1), "relu": 1,
    })


def _word_fields(cfg) -> dict:
    pair = data.StructLayout({"value": signed(cfg.data_width), "run": unsigned(RUN_BITS)})
    return {"last": 1, "count": range(cfg.lanes + 1), "lanes": data.ArrayLayout(pair, cfg.lanes)}


def _pe_input_fields(cfg) -> dict:
    return {"kind": Cmd, **_word_fields(cfg), "geom": _geom_layout(cfg)}


def pe_input_layout(cfg) -> data.StructLayout:
    """One input word of a PE.

    ``kind`` (:class:`Cmd`); ``lanes[0:count]`` the ``(value, run)`` pairs of an ACT/WGT word;
    ``last`` ends the current channel (ACT) or (group, channel) block (WGT); ``geom`` the tile
    width/height, filter R/S and ReLU flag of a CONFIG word.
    """
    return data.StructLayout(_pe_input_fields(cfg))


def array_input_layout(cfg: ScnnConfig) -> data.StructLayout:
    """An input word of the array: a PE word plus ``pe``, the PE (row-major) an ACT word is
    for; every other kind is broadcast."""
    return data.StructLayout({**_pe_input_fields(cfg), "pe": range(cfg.pes)})


def pe_output_layout(cfg) -> data.StructLayout:
    """One drained frame row: ``max_tile_w`` lanes of ``(value, run, valid)`` (the re-compressed
    row; valid lanes in order form the channel's RLE stream) and ``last`` (group's final row).
    """
    lane = data.StructLayout({"value": signed(cfg.acc_width), "run": unsigned(RUN_BITS),
                              "valid": 1})
    return data.StructLayout({"lanes": data.ArrayLayout(lane, cfg.max_tile_w), "last": 1})


def halo_layout(cfg) -> data.ArrayLayout:
    """Partial sums of one halo transfer (one frame row segment per cycle)."""
    return data.ArrayLayout(signed(cfg.acc_width), cfg.halo_lanes)


# Inside the PE.


def _word_layout(cfg) -> data.StructLayout:
    """The compressed part of an ACT or WGT word: ``lanes[0:count]`` and ``last``."""
    return data.StructLayout(_word_fields(cfg))


def _tile_layout(cfg) -> data.StructLayout:
    """The tile geometry of the last CONFIG word and the sizes derived from it once."""
    return data.StructLayout({
        "wt": range(cfg.max_tile_w + 1),
        "r": range(cfg.max_r + 1),
        "s": range(cfg.max_s + 1),
        "relu": 1,
        "wacc": range(cfg.max_tile_w + cfg.max_s),          # frame row: Wt + S - 1
        "hacc": range(cfg.max_tile_h + cfg.max_r),          # frame rows: Ht + R - 1
        "pitch": range(cfg.pitch_max + 1),                  # frame distance (bank-skewed)
        "kc_pitch": range(cfg.kc * cfg.pitch_max + 1),      # kc * pitch
        "wtop": range(cfg.frame_max + 1),                   # (R-1) * Wacc + S - 1
        "ht_wacc": range(cfg.frame_max + 1),                # Ht * Wacc
    })


def _act_row_layout(cfg) -> data.StructLayout:
    entry = data.StructLayout({"value": signed(cfg.data_width),
                               "pos": unsigned(_bits(cfg.frame_max - 1))})
    return data.StructLayout({"lanes": data.ArrayLayout(entry, cfg.i), "last": 1})


def _row_read_signature(depth: int, layout) -> wiring.Signature:
    """An asynchronous read port of the activation buffer, seen from the reader."""
    return wiring.Signature({"addr": Out(range(depth)), "data": In(layout)})


def _weight_entry_layout(cfg) -> data.StructLayout:
    entry = data.StructLayout({"value": signed(cfg.data_width),
                               "base": unsigned(cfg.addr_width)})
    return data.StructLayout({"lanes": data.ArrayLayout(entry, cfg.f), "last": 1})


def _products_layout(cfg) -> data.ArrayLayout:
    """The ``f*i`` products of a (weight entry, activation row) pair, ``f*I + i`` order; a
    product with a zero operand is not ``live`` (it requests no bank)."""
    product = data.StructLayout({"live": 1, "addr": unsigned(cfg.addr_width),
                                 "value": signed(2 * cfg.data_width)})
    return data.ArrayLayout(product, cfg.f * cfg.i)


def _bank_writes_layout(cfg) -> data.ArrayLayout:
    """Per accumulator bank: the product granted to it this cycle (``en``), its bank row."""
    write = data.StructLayout({"en": 1, "row": unsigned(_bits(cfg.bank_depth - 1)),
                               "value": signed(2 * cfg.data_width)})
    return data.ArrayLayout(write, cfg.banks)


def _sum_bits(cfg) -> int:
    """Width of accumulator-address sums before they are reduced (decoders, row walk)."""
    return _bits(2 * cfg.kc * cfg.pitch_max + 64)


def _frame_row_layout(cfg) -> data.StructLayout:
    """One frame row of the halo exchange or the drain, as the row walk visits it: ``base``
    its first accumulator address; ``own`` not one of the top ``R-1`` halo rows, ``first`` the
    first own row of a channel, ``last`` the group's final row."""
    return data.StructLayout({"phase": _State, "base": unsigned(_sum_bits(cfg)), "own": 1,
                              "first": 1, "last": 1})


def _drain_row_layout(cfg) -> data.StructLayout:
    """A drained frame row: the ``max_tile_w`` accumulators of its own columns, in order."""
    return data.StructLayout({"values": data.ArrayLayout(signed(cfg.acc_width), cfg.max_tile_w),
                              "own": 1, "first": 1, "last": 1})


# -- timing facts (read by the cycle model) --------------------------------------------------

WEIGHT_ENTRY_DELAY = 1
"""Cycles from the edge that takes a WGT word to the first cycle its weight entry can meet an
activation row (the weight FIFO's write-to-read latency)."""


def exchange_and_drain_cycles(kc: int, ht: int, r: int) -> int:
    """Cycles from the edge that takes DRAIN to the edge of the group's last output row, with
    ``o`` never back-pressured: ``kc x (Ht+R-1)`` rows of horizontal halo exchange, ``kc x
    (R-1)`` of vertical exchange and ``kc x (Ht+R-1)`` drain rows, one per cycle."""
    return kc * (2 * (ht + r - 1) + r - 1)


# -- building blocks -------------------------------------------------------------------------


def _log2(n: int) -> int:
    return n.bit_length() - 1


class _State(enum.Enum, shape=2):
    """What a PE does: run the Cartesian product, or walk the frame rows after DRAIN."""

    RUN = 0
    HALO_H = 1
    HALO_V = 2
    DRAIN = 3


class _Control(wiring.Component):
    """The PE's sequencer: takes input words, holds the tile geometry, hands ACT and WGT words
    to their decoders and, after DRAIN, walks the frame rows of the halo exchange and the drain.

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(pe_input_layout(cfg)))
        The PE's input words (see :class:`ScnnPE`).
    o_act : Out(stream.Signature(_word_layout(cfg), always_ready=True))
        ACT words, taken in the RUN state.
    o_wgt : Out(stream.Signature(_word_layout(cfg)))
        WGT words, taken in the RUN state while the weight FIFO has room.
    idle : In(1)
        No weight entry is queued and no product is left in the crossbar after this cycle's
        grants. CONFIG and DRAIN wait for it.
    tile : Out(_tile_layout(cfg))
        The geometry of the last CONFIG word and its derived sizes (registers).
    new_tile : Out(1)
        A CONFIG word is taken: the activation buffer and the decoder cursors start over.
    rewind : Out(1)
        A CONFIG or DRAIN word is taken: the next weight entry meets activation row 0.
    o_row : Out(stream.Signature(_frame_row_layout(cfg)))
        The frame rows after DRAIN, channel by channel in each phase: ``kc x (Ht+R-1)`` rows
        in phase HALO_H, ``kc x (R-1)`` in HALO_V (none when ``R = 1``), ``kc x (Ht+R-1)`` in
        DRAIN. Not valid in the RUN state.

    Timing
    ------
    One input word per cycle; ``i.ready`` depends combinationally on ``idle`` (the crossbar's
    arbitration) and on ``o_wgt.ready`` (the FIFO's fill level). A CONFIG word's geometry is in
    ``tile`` from the next cycle. DRAIN leaves the RUN state at its edge; the row walk then
    offers one row per cycle and advances on each transfer, back to RUN at the edge of the last
    row (:func:`exchange_and_drain_cycles` cycles without back-pressure), where input is taken
    again. Longest path: the CONFIG word's geometry products, ``(Wt+S-1) x (Ht+R-1)``, its
    rounding to the skewed pitch and ``kc x pitch``, into the ``tile`` registers.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(pe_input_layout(cfg))),
            "o_act": Out(stream.Signature(_word_layout(cfg), always_ready=True)),
            "o_wgt": Out(stream.Signature(_word_layout(cfg))),
            "idle": In(1),
            "tile": Out(_tile_layout(cfg)),
            "new_tile": Out(1),
            "rewind": Out(1),
            "o_row": Out(stream.Signature(_frame_row_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        word, tile, row = self.i.payload, self.tile, self.o_row.payload
        state = Signal(_State)
        run = state == _State.RUN
        with m.Switch(word.kind):
            with m.Case(Cmd.CONFIG, Cmd.DRAIN):
                m.d.comb += self.i.ready.eq(run & self.idle)
            with m.Case(Cmd.ACT):
                m.d.comb += self.i.ready.eq(run)
            with m.Case(Cmd.WGT):
                m.d.comb += self.i.ready.eq(run & self.o_wgt.ready)
        take = self.i.valid & self.i.ready
        take_config = take & (word.kind == Cmd.CONFIG)
        take_drain = take & (word.kind == Cmd.DRAIN)
        for o, kind in ((self.o_act, Cmd.ACT), (self.o_wgt, Cmd.WGT)):
            m.d.comb += [o.valid.eq(self.i.valid & run & (word.kind == kind)),
                         o.payload.last.eq(word.last), o.payload.count.eq(word.count),
                         o.payload.lanes.eq(word.lanes)]
        m.d.comb += [self.new_tile.eq(take_config), self.rewind.eq(take_config | take_drain)]

        with m.If(take_config):
            g = word.geom
            wacc = g.wt + g.s - 1
            frame = Signal(range(cfg.frame_max + 1))
            pitch = Signal(range(cfg.pitch_max + 1))
            # Rounding up to banks/f modulo banks: the low log2(banks) bits of the difference.
            m.d.comb += [frame.eq(wacc * (g.ht + g.r - 1)),
                         pitch.eq(frame + (Const(cfg.banks // cfg.f) - frame)[:_log2(cfg.banks)])]
            m.d.sync += [
                tile.wt.eq(g.wt), tile.r.eq(g.r), tile.s.eq(g.s), tile.relu.eq(g.relu),
                tile.wacc.eq(wacc), tile.hacc.eq(g.ht + g.r - 1), tile.pitch.eq(pitch),
                tile.kc_pitch.eq(cfg.kc * pitch), tile.wtop.eq((g.r - 1) * wacc + g.s - 1),
                tile.ht_wacc.eq(g.ht * wacc),
            ]

        # Row walk: channel pk, row prow of its frame, at address pbase = pkbase + prow * Wacc.
        pk = Signal(range(cfg.kc))
        prow = Signal(range(cfg.max_tile_h + cfg.max_r))
        pbase = Signal(_sum_bits(cfg))
        pkbase = Signal(_sum_bits(cfg))
        last_k = pk == cfg.kc - 1
        last_row = Mux(state == _State.HALO_V, prow == tile.r - 2, prow == tile.hacc - 1)
        m.d.comb += [
            self.o_row.valid.eq(~run),
            row.phase.eq(state), row.base.eq(pbase),
            row.own.eq(prow >= tile.r - 1), row.first.eq(prow == tile.r - 1),
            row.last.eq(last_k & (prow == tile.hacc - 1)),
        ]
        with m.If(take_drain):
            m.d.sync += [state.eq(_State.HALO_H), pk.eq(0), prow.eq(0), pbase.eq(0),
                         pkbase.eq(0)]
        with m.If(self.o_row.valid & self.o_row.ready):
            m.d.sync += [prow.eq(prow + 1), pbase.eq(pbase + tile.wacc)]
            with m.If(last_row):
                m.d.sync += [prow.eq(0), pk.eq(pk + 1), pkbase.eq(pkbase + tile.pitch),
                             pbase.eq(pkbase + tile.pitch)]
                with m.If(last_k):
                    m.d.sync += [pk.eq(0), pbase.eq(0), pkbase.eq(0)]
                    with m.If(state == _State.HALO_H):
                        m.d.sync += state.eq(Mux(tile.r == 1, _State.DRAIN, _State.HALO_V))
                    with m.Elif(state == _State.HALO_V):
                        m.d.sync += state.eq(_State.DRAIN)
                    with m.Else():
                        m.d.sync += state.eq(_State.RUN)
        return m


def _divide(m, t, d, width, name, bits=5):
    """Restoring division of ``t`` by a run-time ``d`` for quotients below 2**bits.

    Returns the remainder signal and the quotient bits as ``[(b, taken)]``; callers add
    ``taken << b`` multiples of whatever the quotient scales."""
    takes = []
    rem = t
    for b in reversed(range(bits)):
        step = d << b
        take = Signal(name=f"{name}_q{b}")
        nxt = Signal(width, name=f"{name}_r{b}")
        m.d.comb += [take.eq(rem >= step), nxt.eq(Mux(take, rem - step, rem))]
        takes.append((b, take))
        rem = nxt
    return rem, takes


def _scaled(takes, x):
    """sum(x << b for the quotient bits b taken)."""
    total = Const(0, 1)
    for b, take in takes:
        total = total + Mux(take, x << b, 0)
    return total


def _known_low_bits(value, residue: int, banks: int):
    """``value``, known to equal ``residue`` modulo ``banks`` (a frame pitch or a multiple of
    it, :func:`plane_pitch`), with its low ``log2(banks)`` bits written as that constant.

    Synthesis keeps the hierarchy, so a block cannot see that its producer's low bits are
    constant; stated here, they drop out of the weight decoders' adders (about 0.5% of the PE's
    area). Valid once a CONFIG word has set the geometry."""
    lg = _log2(banks)
    return Cat(Const(residue % banks, lg), value[lg:])


class _ActBuffer(wiring.Component):
    """The input-stationary activation buffer: ``depth`` rows of ``i`` decoded non-zeros.

    Members: ``w_en``/``w_addr``/``w_data`` (a write at the edge) and ``read`` (an
    asynchronous read port, :func:`_row_read_signature`).
    """

    def __init__(self, depth, layout):
        self._depth, self._layout = depth, layout
        addr = range(depth)
        super().__init__({
            "w_en": In(1), "w_addr": In(addr), "w_data": In(layout),
            "read": In(_row_read_signature(depth, layout)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._layout, depth=self._depth, init=[])
        rd = mem.read_port(domain="comb")
        wr = mem.write_port()
        m.d.comb += [rd.addr.eq(self.read.addr), self.read.data.eq(rd.data),
                     wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]
        return m


class _Activations(wiring.Component):
    """Activation decode and buffer: turns ACT words' ``(value, run)`` lanes into
    ``(value, pos)`` entries (``pos = y*(Wt+S-1) + x``, the offset in the accumulator frame)
    and stores them, ``i`` per row, in the activation buffer (``act_buffer``).

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(_word_layout(cfg), always_ready=True))
        ACT words: a channel's compressed activations in order, ``last`` on its final word.
    tile : In(_tile_layout(cfg))
        Tile geometry; ``wt`` and ``wacc`` are used.
    clear : In(1)
        Start over (a CONFIG word): the buffer is empty and the cursor at the tile's origin.
    read : In(_row_read_signature(cfg.act_depth, _act_row_layout(cfg)))
        The buffer's read port: ``addr`` a row, ``data`` its ``i`` entries and ``last`` (the
        channel's final row), combinationally.

    Timing
    ------
    One word per cycle, never stalls; the decoded row is written at the edge that takes the
    word and is readable from the next cycle. Longest path: the cursor through the ``i``
    lanes' restoring dividers by ``Wt`` (5 compare-subtract steps each, in series from lane to
    lane), then the ``pos`` adder into the buffer's write data.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_word_layout(cfg), always_ready=True)),
            "tile": In(_tile_layout(cfg)),
            "clear": In(1),
            "read": In(_row_read_signature(cfg.act_depth, _act_row_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        row_layout = _act_row_layout(cfg)
        m.submodules.act_buffer = buf = _ActBuffer(cfg.act_depth, row_layout)
        wiring.connect(m, wiring.flipped(self.read), buf.read)
        frame_bits = _bits(2 * cfg.frame_max + 64)
        word, wt, wacc = self.i.payload, self.tile.wt, self.tile.wacc

        act_wr = Signal(range(cfg.act_depth + 1))
        ax = Signal(range(cfg.max_tile_w + 1))            # cursor column (may equal Wt)
        arb = Signal(frame_bits)                          # cursor row base y * Wacc
        row_in = Signal(row_layout)
        x_cur, rb_cur = ax, arb
        for j in range(cfg.i):
            valid = j < word.count
            t = Signal(range(cfg.max_tile_w + _MAX_RUN + 2), name=f"ad{j}_t")
            m.d.comb += t.eq(x_cur + word.lanes[j].run)
            rem, takes = _divide(m, t, wt, t.shape(), f"ad{j}")
            rb = Signal(frame_bits, name=f"ad{j}_rb")
            m.d.comb += rb.eq(rb_cur + _scaled(takes, wacc))
            m.d.comb += [row_in.lanes[j].value.eq(Mux(valid, word.lanes[j].value, 0)),
                         row_in.lanes[j].pos.eq(rb + rem)]
            nx = Signal(range(cfg.max_tile_w + 1), name=f"ad{j}_x")
            nrb = Signal(frame_bits, name=f"ad{j}_nrb")
            m.d.comb += [nx.eq(Mux(valid, rem + 1, x_cur)), nrb.eq(Mux(valid, rb, rb_cur))]
            x_cur, rb_cur = nx, nrb
        m.d.comb += row_in.last.eq(word.last)

        take = self.i.valid
        m.d.comb += [buf.w_en.eq(take), buf.w_addr.eq(act_wr), buf.w_data.eq(row_in)]
        with m.If(take):
            m.d.sync += act_wr.eq(act_wr + 1)
            with m.If(word.last):
                m.d.sync += [ax.eq(0), arb.eq(0)]
            with m.Else():
                m.d.sync += [ax.eq(x_cur), arb.eq(rb_cur)]
        with m.If(self.clear):
            m.d.sync += [act_wr.eq(0), ax.eq(0), arb.eq(0)]
        return m


class _Weights(wiring.Component):
    """Weight decode and FIFO: turns WGT words' ``(value, run)`` lanes into ``(value, base)``
    entries (``base = k*pitch + (R-1-r)*(Wt+S-1) + (S-1-s)``) and queues them, ``f`` per entry,
    in the weight FIFO (``weight_fifo``).

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(_word_layout(cfg)))
        WGT words: a (group, channel) block's compressed weights in (r, s, k) order, ``last`` on
        its final word. Not ready while the FIFO is full.
    tile : In(_tile_layout(cfg))
        Tile geometry; ``s``, ``wacc``, ``pitch``, ``kc_pitch`` and ``wtop`` are used.
    clear : In(1)
        Start over (a CONFIG word): the cursor at (r, s, k) = (0, 0, 0).
    o : Out(stream.Signature(_weight_entry_layout(cfg)))
        The head of the FIFO: ``f`` (value, base) lanes and ``last`` (the block's final entry).

    Timing
    ------
    One word per cycle while the FIFO (``wt_depth`` entries) has room; an entry pushed at an
    edge is on ``o`` from the next cycle (:data:`WEIGHT_ENTRY_DELAY`). Longest path: the
    cursor through the ``f`` lanes' two restoring dividers each (by ``kc``, then by ``S``: 10
    compare-subtract steps per lane, in series from lane to lane), then the ``base`` adders
    into the FIFO's write data.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_word_layout(cfg))),
            "tile": In(_tile_layout(cfg)),
            "clear": In(1),
            "o": Out(stream.Signature(_weight_entry_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        went = _weight_entry_layout(cfg)
        m.submodules.weight_fifo = fifo = SyncFIFO(width=went.size, depth=cfg.wt_depth)
        addr_bits = _sum_bits(cfg)
        word, tile = self.i.payload, self.tile
        s, wacc, wtop = tile.s, tile.wacc, tile.wtop
        plane = _known_low_bits(tile.pitch, cfg.banks // cfg.f, cfg.banks)
        kcplane = _known_low_bits(tile.kc_pitch, cfg.kc * (cfg.banks // cfg.f), cfg.banks)

        # Block order is (r, s, k), k fastest: the cursor k may equal kc (normalized by the
        # next lane's division).
        wk = Signal(range(cfg.kc + 1))                    # cursor k
        ws = Signal(range(cfg.max_s))                     # cursor s
        wr_ = Signal(range(cfg.max_r + 1))                # cursor r
        wrw = Signal(addr_bits)                           # r * Wacc
        wkb = Signal(addr_bits)                           # k * pitch
        entry = Signal(went)
        k_cur, s_cur, r_cur, rw_cur, kb_cur = wk, ws, wr_, wrw, wkb
        for j in range(cfg.f):
            valid = j < word.count
            run_j = word.lanes[j].run
            t1 = Signal(range(cfg.kc + _MAX_RUN + 2), name=f"wd{j}_t1")
            kb1 = Signal(addr_bits, name=f"wd{j}_kb1")
            m.d.comb += [t1.eq(k_cur + run_j),
                         kb1.eq(kb_cur + _scaled([(b, run_j[b]) for b in range(RUN_BITS)],
                                                 plane))]
            rem1, takes1 = _divide(m, t1, Const(cfg.kc), t1.shape(), f"wd{j}k")
            kbe = Signal(addr_bits, name=f"wd{j}_kbe")
            t2 = Signal(range(cfg.max_s + 40), name=f"wd{j}_t2")
            m.d.comb += [kbe.eq(kb1 - _scaled(takes1, kcplane)),
                         t2.eq(s_cur + _scaled(takes1, Const(1, 1)))]
            rem2, takes2 = _divide(m, t2, s, t2.shape(), f"wd{j}s")
            re_ = Signal(range(cfg.max_r + 40), name=f"wd{j}_re")
            rwe = Signal(addr_bits, name=f"wd{j}_rwe")
            m.d.comb += [re_.eq(r_cur + _scaled(takes2, Const(1, 1))),
                         rwe.eq(rw_cur + _scaled(takes2, wacc))]
            m.d.comb += [entry.lanes[j].value.eq(Mux(valid, word.lanes[j].value, 0)),
                         entry.lanes[j].base.eq(kbe + wtop - rwe - rem2)]
            nk = Signal(range(cfg.kc + 1), name=f"wd{j}_k")
            ns = Signal(range(cfg.max_s), name=f"wd{j}_s")
            nr = Signal(range(cfg.max_r + 1), name=f"wd{j}_r")
            nrw = Signal(addr_bits, name=f"wd{j}_nrw")
            nkb = Signal(addr_bits, name=f"wd{j}_nkb")
            m.d.comb += [nk.eq(Mux(valid, rem1 + 1, k_cur)), ns.eq(Mux(valid, rem2, s_cur)),
                         nr.eq(Mux(valid, re_, r_cur)), nrw.eq(Mux(valid, rwe, rw_cur)),
                         nkb.eq(Mux(valid, kbe + plane, kb_cur))]
            k_cur, s_cur, r_cur, rw_cur, kb_cur = nk, ns, nr, nrw, nkb
        m.d.comb += entry.last.eq(word.last)

        take = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(fifo.w_rdy), fifo.w_en.eq(take), fifo.w_data.eq(entry),
                     self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.o.ready)]
        with m.If(take):
            with m.If(word.last):
                m.d.sync += [wk.eq(0), ws.eq(0), wr_.eq(0), wrw.eq(0), wkb.eq(0)]
            with m.Else():
                m.d.sync += [wk.eq(k_cur), ws.eq(s_cur), wr_.eq(r_cur), wrw.eq(rw_cur),
                             wkb.eq(kb_cur)]
        with m.If(self.clear):
            m.d.sync += [wk.eq(0), ws.eq(0), wr_.eq(0), wrw.eq(0), wkb.eq(0)]
        return m


class _Multipliers(wiring.Component):
    """The F x I Cartesian-product multiplier array (combinational): ``p[f*I + i] = w[f]*a[i]``.
    """

    def __init__(self, f, i, width):
        self._f, self._i = f, i
        super().__init__({
            "a": In(data.ArrayLayout(signed(width), i)),
            "w": In(data.ArrayLayout(signed(width), f)),
            "p": Out(data.ArrayLayout(signed(2 * width), f * i)),
        })

    def elaborate(self, platform):
        m = Module()
        for f in range(self._f):
            for i in range(self._i):
                m.d.comb += self.p[f * self._i + i].eq(self.w[f] * self.a[i])
        return m


class _Cartesian(wiring.Component):
    """The Cartesian product: pairs the head weight entry with each activation row of its
    channel in turn, multiplies them (``multipliers``, F x I) and computes every product's
    accumulator address ``pos + base``.

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i_wgt : In(stream.Signature(_weight_entry_layout(cfg)))
        Weight entries; one is taken when it has met the channel's last activation row.
    act : Out(_row_read_signature(cfg.act_depth, _act_row_layout(cfg)))
        Reads the activation row to pair with the head entry.
    rewind : In(1)
        The next entry meets activation row 0 (a CONFIG or DRAIN word; the FIFO is empty).
    o : Out(stream.Signature(_products_layout(cfg)))
        The pair's ``f*i`` products with their addresses; valid while an entry is present.

    Timing
    ------
    Combinational: one pair per cycle, as fast as ``o`` takes them (the crossbar stalls it on
    conflicts). After an entry's last row the next entry of the same (group, channel) block
    rewinds to the channel's first row, the next block's goes on to the following channel.
    Longest path: the row pointer through the activation buffer's read multiplexer into the
    ``data_width`` x ``data_width`` multipliers, ending in the crossbar's product register.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i_wgt": In(stream.Signature(_weight_entry_layout(cfg))),
            "act": Out(_row_read_signature(cfg.act_depth, _act_row_layout(cfg))),
            "rewind": In(1),
            "o": Out(stream.Signature(_products_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.multipliers = mul = _Multipliers(cfg.f, cfg.i, cfg.data_width)
        head, act, out = self.i_wgt.payload, self.act.data, self.o.payload
        chan_start = Signal(range(cfg.act_depth + 1))     # first row of the current channel
        cur_row = Signal(range(cfg.act_depth + 1))
        m.d.comb += self.act.addr.eq(cur_row)
        for i in range(cfg.i):
            m.d.comb += mul.a[i].eq(act.lanes[i].value)
        for f in range(cfg.f):
            m.d.comb += mul.w[f].eq(head.lanes[f].value)
            for i in range(cfg.i):
                j = f * cfg.i + i
                m.d.comb += [
                    out[j].live.eq((act.lanes[i].value != 0) & (head.lanes[f].value != 0)),
                    out[j].addr.eq(act.lanes[i].pos + head.lanes[f].base),
                    out[j].value.eq(mul.p[j]),
                ]
        m.d.comb += [self.o.valid.eq(self.i_wgt.valid),
                     self.i_wgt.ready.eq(self.o.ready & act.last)]
        with m.If(self.o.valid & self.o.ready):
            with m.If(act.last):
                with m.If(head.last):
                    m.d.sync += [chan_start.eq(cur_row + 1), cur_row.eq(cur_row + 1)]
                with m.Else():
                    m.d.sync += cur_row.eq(chan_start)
            with m.Else():
                m.d.sync += cur_row.eq(cur_row + 1)
        with m.If(self.rewind):
            m.d.sync += [chan_start.eq(0), cur_row.eq(0)]
        return m


class _Crossbar(wiring.Component):
    """Two product registers, per-bank fixed-priority arbitration, the scatter crossbar from
    their ``2 x F*I`` products to the A banks, and the conflict-stall counter.

    The *newer* register takes a vector pair from ``i``; the *older* one holds the leftovers
    of the previous pair. Every cycle each bank grants its oldest requester (older register
    first, then lowest index). When the older register has nothing left after the grants,
    the newer register's leftovers move into it and a new pair may load (``i.ready``);
    otherwise both keep their leftovers and the multiplier array stalls (a conflict stall).

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(_products_layout(cfg)))
        Vector pairs' products; ready when the older register empties this cycle.
    o : Out(_bank_writes_layout(cfg))
        Per bank, the product granted this cycle (``en``) and its bank row.
    idle : Out(1)
        Nothing remains in either register after this cycle's grants.
    conflict_stalls : Out(32)
        Cycles in which the older register kept products (``i`` not ready), wrapping.

    Timing
    ------
    A product is granted at the earliest the cycle after its pair loads; one pair per cycle
    while every product finds its bank free within two cycles. Longest path: the product
    registers' addresses through the pairwise bank comparisons and the ``2*f*i``-deep priority
    chain to a grant, then the per-bank selection of row and product, continuing into the
    accumulators' read-modify-write adder.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_products_layout(cfg))),
            "o": Out(_bank_writes_layout(cfg)),
            "idle": Out(1),
            "conflict_stalls": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        n, lg = cfg.f * cfg.i, _log2(cfg.banks)
        older, newer = Signal(_products_layout(cfg)), Signal(_products_layout(cfg))
        # Requesters in priority order: older register, then newer, lowest index first.
        pending = [older[j] for j in range(n)] + [newer[j] for j in range(n)]
        bank = [p.addr[:lg] for p in pending]
        granted = Signal(2 * n)
        for j in range(2 * n):
            blocked = Const(0, 1)
            for k in range(j):
                blocked = blocked | (pending[k].live & (bank[k] == bank[j]))
            m.d.comb += granted[j].eq(pending[j].live & ~blocked)
        old_left, new_left = Signal(n), Signal(n)
        m.d.comb += [old_left.eq(Cat(p.live for p in pending[:n]) & ~granted[:n]),
                     new_left.eq(Cat(p.live for p in pending[n:]) & ~granted[n:])]
        m.d.comb += [self.i.ready.eq(old_left == 0),
                     self.idle.eq((old_left == 0) & (new_left == 0))]
        for b in range(cfg.banks):
            sel = [granted[j] & (bank[j] == b) for j in range(2 * n)]
            row = Const(0, unsigned(_bits(cfg.bank_depth - 1)))
            val = Const(0, signed(2 * cfg.data_width))
            for j in range(2 * n):
                row = row | Mux(sel[j], pending[j].addr[lg:], 0)
                val = val | Mux(sel[j], pending[j].value, 0)
            m.d.comb += [self.o[b].en.eq(Cat(*sel).any()), self.o[b].row.eq(row),
                         self.o[b].value.eq(val)]

        with m.If(old_left == 0):
            m.d.sync += older.eq(newer)
            m.d.sync += [older[j].live.eq(new_left[j]) for j in range(n)]
            with m.If(self.i.valid):
                m.d.sync += newer.eq(self.i.payload)
            with m.Else():
                m.d.sync += [newer[j].live.eq(0) for j in range(n)]
        with m.Else():
            m.d.sync += [older[j].live.eq(old_left[j]) for j in range(n)]
            m.d.sync += [newer[j].live.eq(new_left[j]) for j in range(n)]
        stalls = Signal(32)
        with m.If(old_left != 0):
            m.d.sync += stalls.eq(stalls + 1)
        m.d.comb += self.conflict_stalls.eq(stalls)
        return m


class _Banks(wiring.Component):
    """A banks of ``depth`` accumulators: one read-modify-write per bank and cycle
    (``rdata + add``, or 0 with ``clear``), plus a second read port (``row2``/``rdata2``) for
    the halo send path.

    Members: per bank ``en``, ``clear``, ``row``, ``add`` (the write at the edge) with
    ``rdata`` (``row``'s accumulator, combinationally), and ``row2``/``rdata2``.
    """

    def __init__(self, banks, depth, acc_width, add_width):
        self._banks, self._depth, self._acc = banks, depth, acc_width
        rows = data.ArrayLayout(unsigned(_bits(depth - 1)), banks)
        accs = data.ArrayLayout(signed(acc_width), banks)
        super().__init__({
            "en": In(banks), "clear": In(banks), "row": In(rows),
            "add": In(data.ArrayLayout(signed(add_width), banks)),
            "rdata": Out(accs), "row2": In(rows), "rdata2": Out(accs),
        })

    def elaborate(self, platform):
        m = Module()
        for b in range(self._banks):
            m.submodules[f"bank{b}"] = mem = Memory(shape=signed(self._acc), depth=self._depth,
                                                    init=[])
            rd = mem.read_port(domain="comb")
            rd2 = mem.read_port(domain="comb")
            wr = mem.write_port()
            m.d.comb += [
                rd.addr.eq(self.row[b]), self.rdata[b].eq(rd.data),
                rd2.addr.eq(self.row2[b]), self.rdata2[b].eq(rd2.data),
                wr.addr.eq(self.row[b]), wr.en.eq(self.en[b]),
                wr.data.eq(Mux(self.clear[b], 0, rd.data + self.add[b])),
            ]
        return m


class _Accumulators(wiring.Component):
    """The accumulator banks (``banks``) and what drives their ports: crossbar products in the
    RUN state; in the halo phases a received row segment added in and the sent one read (and,
    horizontally, cleared); in the drain a frame row's own columns read and cleared.

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i_banks : In(_bank_writes_layout(cfg))
        The crossbar's granted products, added while no frame row is walked.
    i_row : In(stream.Signature(_frame_row_layout(cfg)))
        The frame row of the halo exchange or drain; halo rows are taken every cycle, drain
        rows when ``o_row`` takes them.
    o_row : Out(stream.Signature(_drain_row_layout(cfg)))
        In the DRAIN phase, the row's ``max_tile_w`` own columns in order (``own``, ``first``
        and ``last`` passed on); they are cleared at the edge that transfers them.
    tile : In(_tile_layout(cfg))
        Tile geometry; ``wt``, ``s`` and ``ht_wacc`` are used.
    i_halo_h, i_halo_v : In(halo_layout(cfg))
        Partial sums received in the HALO_H (columns ``Wt..Wt+S-2``) and HALO_V (rows
        ``Ht..Ht+R-2``) phases.
    o_halo : Out(halo_layout(cfg))
        Partial sums sent: a row's left ``S-1`` columns (HALO_H), then the own columns of a top
        row (HALO_V); lanes beyond them are zero.

    Timing
    ------
    One frame row per cycle, one read-modify-write per bank and cycle; a write is visible to
    the next cycle's read, so no forwarding is needed. Longest path: a halo row's window, its
    base address through the per-bank offset subtraction and compare to a bank row, the bank's
    read multiplexer over ``bank_depth`` rows and the ``acc_width`` adder into the write port.
    The drain's read goes on through the rotation of banks to columns into :class:`_Drain`:
    the PE's critical path (see :class:`ScnnPE`).
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i_banks": In(_bank_writes_layout(cfg)),
            "i_row": In(stream.Signature(_frame_row_layout(cfg))),
            "o_row": Out(stream.Signature(_drain_row_layout(cfg))),
            "tile": In(_tile_layout(cfg)),
            "i_halo_h": In(halo_layout(cfg)),
            "i_halo_v": In(halo_layout(cfg)),
            "o_halo": Out(halo_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lg = _log2(cfg.banks)
        m.submodules.banks = banks = _Banks(cfg.banks, cfg.bank_depth, cfg.acc_width,
                                            max(2 * cfg.data_width, cfg.acc_width))
        row, tile, out = self.i_row.payload, self.tile, self.o_row.payload
        h_phase = self.i_row.valid & (row.phase == _State.HALO_H)
        v_phase = self.i_row.valid & (row.phase == _State.HALO_V)
        d_phase = self.i_row.valid & (row.phase == _State.DRAIN)
        m.d.comb += [
            self.o_row.valid.eq(d_phase),
            self.i_row.ready.eq(Mux(row.phase == _State.DRAIN, self.o_row.ready, 1)),
            out.own.eq(row.own), out.first.eq(row.first), out.last.eq(row.last),
        ]

        # Row windows: send (this PE's halo), receive (the neighbour's), drain (own columns).
        send_base = Signal(_sum_bits(cfg))
        recv_base = Signal(_sum_bits(cfg))
        send_n = Signal(range(cfg.halo_lanes + 1))
        m.d.comb += [
            send_base.eq(Mux(h_phase, row.base, row.base + tile.s - 1)),
            recv_base.eq(Mux(h_phase, row.base + tile.wt, row.base + tile.s - 1 + tile.ht_wacc)),
            send_n.eq(Mux(h_phase, tile.s - 1, Mux(v_phase, tile.wt, 0))),
        ]
        halo_in = Signal(halo_layout(cfg))
        m.d.comb += halo_in.eq(Mux(h_phase, self.i_halo_h, self.i_halo_v))
        drain_base = send_base                      # row.base + S - 1 outside HALO_H
        for b in range(cfg.banks):
            o_r = Signal(lg, name=f"recv_off{b}")
            o_s = Signal(lg, name=f"send_off{b}")
            m.d.comb += [o_r.eq(b - recv_base[:lg]), o_s.eq(b - send_base[:lg])]
            hit_r = o_r < send_n
            hit_s = o_s < send_n
            hit_d = o_s < tile.wt
            row_r = (recv_base + o_r)[lg:]
            row_s = (send_base + o_s)[lg:]
            m.d.comb += banks.row2[b].eq(row_s)
            with m.If(h_phase | v_phase):
                with m.If(hit_r):
                    m.d.comb += [banks.en[b].eq(1), banks.row[b].eq(row_r),
                                 banks.add[b].eq(halo_in[o_r])]
                with m.Elif(h_phase & hit_s):
                    m.d.comb += [banks.en[b].eq(1), banks.clear[b].eq(1), banks.row[b].eq(row_s)]
            with m.Elif(d_phase):
                m.d.comb += [banks.en[b].eq(hit_d & self.o_row.ready), banks.clear[b].eq(1),
                             banks.row[b].eq(row_s)]
            with m.Else():
                product = self.i_banks[b]
                m.d.comb += [banks.en[b].eq(product.en), banks.row[b].eq(product.row),
                             banks.add[b].eq(product.value)]
        for j in range(cfg.halo_lanes):
            m.d.comb += self.o_halo[j].eq(
                Mux(j < send_n, banks.rdata2[(send_base + j)[:lg]], 0))
        for j in range(cfg.max_tile_w):
            m.d.comb += out.values[j].eq(banks.rdata[(drain_base + j)[:lg]])
        return m


class _Drain(wiring.Component):
    """The drain: optional ReLU and run-length re-compression of the own frame rows, the run
    of zeros carried from row to row within a channel.

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(_drain_row_layout(cfg)))
        Frame rows; halo rows (not ``own``) are taken and dropped, own rows when ``o`` takes
        them. ``first`` restarts the run count (a new channel).
    tile : In(_tile_layout(cfg))
        Tile geometry; ``wt`` (valid lanes) and ``relu`` are used.
    o : Out(stream.Signature(pe_output_layout(cfg)))
        The re-compressed rows (see :class:`ScnnPE`).

    Timing
    ------
    Combinational but for the run carried between rows: a row leaves in the cycle it arrives,
    ``o`` back-pressure holds ``i``. Longest path: the run count through the ``max_tile_w``
    lanes in series (each a ReLU mux, a zero test and an increment), after the accumulators'
    bank-to-column rotation.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_drain_row_layout(cfg))),
            "tile": In(_tile_layout(cfg)),
            "o": Out(stream.Signature(pe_output_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        row, out = self.i.payload, self.o.payload
        carry = Signal(RUN_BITS)                    # zeros at the end of the previous row
        m.d.comb += [self.i.ready.eq(~row.own | self.o.ready),
                     self.o.valid.eq(self.i.valid & row.own), out.last.eq(row.last)]
        cnt = Mux(row.first, 0, carry)
        for j in range(cfg.max_tile_w):
            raw = row.values[j]
            v = Signal(signed(cfg.acc_width), name=f"drain{j}")
            m.d.comb += v.eq(Mux(self.tile.relu & raw[-1], 0, raw))
            valid = j < self.tile.wt
            emit = valid & ((v != 0) | (cnt == _MAX_RUN))
            m.d.comb += [out.lanes[j].value.eq(Mux(emit, v, 0)),
                         out.lanes[j].run.eq(Mux(emit, cnt, 0)),
                         out.lanes[j].valid.eq(emit)]
            nxt = Signal(RUN_BITS, name=f"run{j}")
            m.d.comb += nxt.eq(Mux(emit, 0, Mux(valid, cnt + 1, cnt)))
            cnt = nxt
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += carry.eq(cnt)
        return m


class ScnnPE(wiring.Component):
    """The SCNN processing element: compressed activation buffer, weight FIFO, F x I
    Cartesian-product multipliers, coordinate computation, scatter crossbar with bank
    arbitration, accumulator banks (tile plus halo), halo exchange ports and a drain with
    optional ReLU and run-length re-compression.

    Sub-blocks, in the order data flows: ``control`` (:class:`_Control`: input words, tile
    geometry, the row walk after DRAIN), ``activations`` (:class:`_Activations`: ACT decode and
    the activation buffer), ``weights`` (:class:`_Weights`: WGT decode and the weight FIFO),
    ``cartesian`` (:class:`_Cartesian`: pairing, multipliers, product addresses), ``crossbar``
    (:class:`_Crossbar`: arbitration window, scatter, conflict stalls), ``accumulators``
    (:class:`_Accumulators`: banks, halo send and receive, drain read) and ``drain``
    (:class:`_Drain`: ReLU and run-length compression).

    Parameters
    ----------
    config : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(pe_input_layout(config)))
        Commands (:class:`Cmd`): CONFIG (geometry; waits until the PE is idle and empties the
        activation buffer), ACT words (channels in order, ``last`` ends a channel; an empty
        channel is one word with ``count = 0``), WGT words (for each channel in order, its
        ``kc x R x S`` block in (r, s, k) order; ``last`` ends it), DRAIN (after the group's
        last channel; waits until idle). Several CONFIG/ACT/WGT sequences may precede a
        DRAIN (channel passes): CONFIG does not touch the accumulators.
    o : Out(stream.Signature(pe_output_layout(config)))
        The drained tile, ``kc x Ht`` frame rows, channel by channel; the valid lanes of a
        channel's rows are its compressed ``Ht x Wt`` tile (run counting restarts per channel).
    i_halo_h, i_halo_v : In(halo_layout(config))
        Halo partial sums from the right neighbour (horizontal phase) and from the PE below
        (vertical phase); tie to zero for a lone PE.
    o_halo : Out(halo_layout(config))
        This PE's halo partial sums, for the left neighbour, then for the PE above.
    conflict_stalls : Out(32)
        Cycles in which the crossbar could not grant every pending product (bank conflicts).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`ScnnPEConfig`.

    Timing
    ------
    One input word per cycle. ACT words are always accepted in the RUN state; WGT words while
    the weight FIFO has room (the word is decoded on the way in, a pushed entry is usable
    :data:`WEIGHT_ENTRY_DELAY` cycle later). The multiplier array takes one (weight entry,
    activation row) pair per cycle unless the crossbar's older register still holds products
    that lost arbitration (a conflict stall, see :class:`_Crossbar`). A weight entry meets
    every activation row of its channel (an empty channel is one row of zeros), then leaves
    the FIFO. CONFIG and DRAIN are accepted once the FIFO is empty and the crossbar empties
    this cycle. After DRAIN: ``kc x (Ht+R-1)`` cycles of horizontal halo exchange, ``kc x
    (R-1)`` of vertical exchange, then ``kc x (Ht+R-1)`` drain cycles (one frame row each; halo
    rows are cleared without output), during which the input is not accepted
    (:func:`exchange_and_drain_cycles`). ``o`` back-pressure stalls the drain. All of this is
    exactly the model in :func:`sparsegen.sim.scnn.model_cycles`. What limits the clock, as
    measured by ``sparsegen synth`` (default config, sky130hd: 15.1 ns): the drain, from the
    row walk's base address (``control``) through the drain window's bank rows and reads and
    the bank-to-column rotation (``accumulators``) and the run-length chain across the row
    (``drain``) to ``o.payload``.
    """

    def __init__(self, config: ScnnPEConfig):
        check_config(self, config, ScnnPEConfig)
        self._config = config
        super().__init__({
            "i": In(stream.Signature(pe_input_layout(config))),
            "o": Out(stream.Signature(pe_output_layout(config))),
            "i_halo_h": In(halo_layout(config)),
            "i_halo_v": In(halo_layout(config)),
            "o_halo": Out(halo_layout(config)),
            "conflict_stalls": Out(32),
        })

    @property
    def config(self) -> ScnnPEConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.control = control = _Control(cfg)
        m.submodules.activations = acts = _Activations(cfg)
        m.submodules.weights = weights = _Weights(cfg)
        m.submodules.cartesian = cart = _Cartesian(cfg)
        m.submodules.crossbar = xbar = _Crossbar(cfg)
        m.submodules.accumulators = accs = _Accumulators(cfg)
        m.submodules.drain = drain = _Drain(cfg)

        wiring.connect(m, wiring.flipped(self.i), control.i)
        wiring.connect(m, control.o_act, acts.i)
        wiring.connect(m, control.o_wgt, weights.i)
        wiring.connect(m, weights.o, cart.i_wgt)
        wiring.connect(m, cart.act, acts.read)
        wiring.connect(m, cart.o, xbar.i)
        wiring.connect(m, control.o_row, accs.i_row)
        wiring.connect(m, accs.o_row, drain.i)
        wiring.connect(m, drain.o, wiring.flipped(self.o))
        m.d.comb += [block.tile.eq(control.tile) for block in (acts, weights, accs, drain)]
        m.d.comb += [
            acts.clear.eq(control.new_tile),
            weights.clear.eq(control.new_tile),
            cart.rewind.eq(control.rewind),
            control.idle.eq(~weights.o.valid & xbar.idle),
            accs.i_banks.eq(xbar.o),
            accs.i_halo_h.eq(self.i_halo_h),
            accs.i_halo_v.eq(self.i_halo_v),
            self.o_halo.eq(accs.o_halo),
            self.conflict_stalls.eq(xbar.conflict_stalls),
        ]
        return m


class Scnn(wiring.Component):
    """A ``pe_rows x pe_cols`` array of :class:`ScnnPE` over a planar-tiled input: activations
    routed to their PE, weights broadcast, halo partial sums exchanged between neighbours.

    Parameters
    ----------
    config : ScnnConfig

    Members
    -------
    i : In(stream.Signature(array_input_layout(config)))
        PE words (see :class:`ScnnPE`); an ACT word goes to PE ``pe`` (row-major), every other
        word to all PEs (the weight broadcast). A word is taken when every PE can take it.
    o : Out(stream.Signature(ArrayLayout(pe_output_layout(config), pe_rows * pe_cols)))
        The PEs drain in lock step: element ``p`` of a transfer is PE ``p``'s frame row.
    conflict_stalls : Out(32)
        Sum of the PEs' conflict-stall counters.

    Raises
    ------
    TypeError
        ``config`` is not a :class:`ScnnConfig`.

    Timing
    ------
    As :class:`ScnnPE`, with the slowest PE setting the pace: a WGT word waits until every
    PE's weight FIFO has room, CONFIG and DRAIN until every PE is idle (the PEs' load imbalance
    shows up here). All PEs take DRAIN in the same cycle and then exchange halos in lock step:
    in each horizontal-phase cycle every PE sends one frame row's left ``S-1`` partial sums to
    its left neighbour, which adds them into its columns ``Wt..Wt+S-2``; in each vertical-phase
    cycle every PE sends the own columns of one of its top ``R-1`` rows to the PE above, which
    adds them into its rows ``Ht..Ht+R-2``. Halos leaving the grid are outputs outside the
    plane and are dropped.
    """

    def __init__(self, config: ScnnConfig):
        check_config(self, config, ScnnConfig)
        self._config = config
        super().__init__({
            "i": In(stream.Signature(array_input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(pe_output_layout(config), config.pes))),
            "conflict_stalls": Out(32),
        })

    @property
    def config(self) -> ScnnConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        pes = {}
        for y in range(cfg.pe_rows):
            for x in range(cfg.pe_cols):
                # One Verilog module for all PEs (hw/hier.py). Edge PEs keep their halo logic
                # with constant inputs, as identical PE macros in a chip would.
                pes[y, x] = pe = ScnnPE(cfg.pe)
                m.submodules[f"pe{y}_{x}"] = shared(platform, pe, name="pe", key=cfg.pe)
        order = [pes[y, x] for y in range(cfg.pe_rows) for x in range(cfg.pe_cols)]
        readies = Cat(*(pe.i.ready for pe in order))
        m.d.comb += self.i.ready.eq(readies.all())
        word = self.i.payload
        broadcast = word.kind != Cmd.ACT
        total = Const(0, 32)
        for n, pe in enumerate(order):
            others = Cat(*(q.i.ready for q in order if q is not pe))
            others_ready = others.all() if len(order) > 1 else Const(1, 1)
            m.d.comb += [
                pe.i.valid.eq(self.i.valid & others_ready & (broadcast | (word.pe == n))),
                pe.i.payload.kind.eq(word.kind), pe.i.payload.last.eq(word.last),
                pe.i.payload.count.eq(word.count), pe.i.payload.lanes.eq(word.lanes),
                pe.i.payload.geom.eq(word.geom),
                pe.o.ready.eq(self.o.ready),
                self.o.payload[n].eq(pe.o.payload),
            ]
            total = (total + pe.conflict_stalls)[:32]
        for (y, x), pe in pes.items():
            if (y, x + 1) in pes:
                m.d.comb += pe.i_halo_h.eq(pes[y, x + 1].o_halo)
            if (y + 1, x) in pes:
                m.d.comb += pe.i_halo_v.eq(pes[y + 1, x].o_halo)
        m.d.comb += [self.o.valid.eq(order[0].o.valid), self.conflict_stalls.eq(total)]
        return m
