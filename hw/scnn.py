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

from .params import Config, check_config, param

__all__ = [
    "Cmd", "ScnnPEConfig", "ScnnConfig", "ScnnPE", "Scnn", "RUN_BITS",
    "pe_input_layout", "array_input_layout", "pe_output_layout", "halo_layout", "plane_pitch",
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


def _pe_input_fields(cfg) -> dict:
    pair = data.StructLayout({"value": signed(cfg.data_width), "run": unsigned(RUN_BITS)})
    return {
        "kind": Cmd,
        "last": 1,
        "count": range(cfg.lanes + 1),
        "lanes": data.ArrayLayout(pair, cfg.lanes),
        "geom": _geom_layout(cfg),
    }


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


def _act_row_layout(cfg) -> data.StructLayout:
    entry = data.StructLayout({"value": signed(cfg.data_width),
                               "pos": unsigned(_bits(cfg.frame_max - 1))})
    return data.StructLayout({"lanes": data.ArrayLayout(entry, cfg.i), "last": 1})


def _weight_entry_layout(cfg) -> data.StructLayout:
    entry = data.StructLayout({"value": signed(cfg.data_width),
                               "base": unsigned(cfg.addr_width)})
    return data.StructLayout({"lanes": data.ArrayLayout(entry, cfg.f), "last": 1})


# -- building blocks -------------------------------------------------------------------------


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


class _Crossbar(wiring.Component):
    """Two product registers, per-bank fixed-priority arbitration and the scatter crossbar
    from their ``2 x F*I`` products to the A banks.

    The *newer* register takes a vector pair (``load``); the *older* one holds the leftovers
    of the previous pair. Every cycle each bank grants its oldest requester (older register
    first, then lowest index). When the older register has nothing left after the grants,
    the newer register's leftovers move into it and a new pair may load (``can_load``);
    otherwise both keep their leftovers and the multiplier array stalls (``stall``).

    Members: ``load`` (take ``valid/addr/prod``; only when ``can_load``), ``can_load``,
    ``stall`` (a conflict stall: older products remain), ``idle`` (nothing remains after
    this cycle's grants), and per bank ``en``/``row``/``data``: the granted product and its
    bank-local row.

    Timing: a product is granted at the earliest one cycle after its pair loads; one pair per
    cycle while every product finds its bank free within two cycles.
    """

    def __init__(self, n, banks, addr_width, prod_width, row_width):
        self._n, self._banks = n, banks
        self._lg = banks.bit_length() - 1
        super().__init__({
            "load": In(1),
            "valid": In(n),
            "addr": In(data.ArrayLayout(unsigned(addr_width), n)),
            "prod": In(data.ArrayLayout(signed(prod_width), n)),
            "can_load": Out(1),
            "stall": Out(1),
            "idle": Out(1),
            "en": Out(banks),
            "row": Out(data.ArrayLayout(unsigned(row_width), banks)),
            "data": Out(data.ArrayLayout(signed(prod_width), banks)),
        })

    def elaborate(self, platform):
        m = Module()
        n, lg = self._n, self._lg
        old_v, new_v = Signal(n), Signal(n)
        old_a, new_a = Signal.like(self.addr), Signal.like(self.addr)
        old_p, new_p = Signal.like(self.prod), Signal.like(self.prod)
        # Requesters in priority order: older register, then newer, lowest index first.
        valid = [old_v[j] for j in range(n)] + [new_v[j] for j in range(n)]
        addr = [old_a[j] for j in range(n)] + [new_a[j] for j in range(n)]
        prod = [old_p[j] for j in range(n)] + [new_p[j] for j in range(n)]
        bank = [a[:lg] for a in addr]
        granted = Signal(2 * n)
        for j in range(2 * n):
            blocked = Const(0, 1)
            for k in range(j):
                blocked = blocked | (valid[k] & (bank[k] == bank[j]))
            m.d.comb += granted[j].eq(valid[j] & ~blocked)
        old_left = old_v & ~granted[:n]
        new_left = new_v & ~granted[n:]
        m.d.comb += [self.can_load.eq(old_left == 0), self.stall.eq(old_left != 0),
                     self.idle.eq((old_left == 0) & (new_left == 0))]
        for b in range(self._banks):
            sel = [granted[j] & (bank[j] == b) for j in range(2 * n)]
            row = Const(0, self.row.shape().elem_shape)
            val = Const(0, self.prod.shape().elem_shape)
            for j in range(2 * n):
                row = row | Mux(sel[j], addr[j][lg:], 0)
                val = val | Mux(sel[j], prod[j], 0)
            m.d.comb += [self.en[b].eq(Cat(*sel).any()), self.row[b].eq(row),
                         self.data[b].eq(val)]
        with m.If(old_left == 0):
            m.d.sync += [old_v.eq(new_left), old_a.eq(new_a), old_p.eq(new_p)]
            with m.If(self.load):
                m.d.sync += [new_v.eq(self.valid), new_a.eq(self.addr), new_p.eq(self.prod)]
            with m.Else():
                m.d.sync += new_v.eq(0)
        with m.Else():
            m.d.sync += [old_v.eq(old_left), new_v.eq(new_left)]
        return m


class _Accumulators(wiring.Component):
    """A banks of ``depth`` accumulators: one read-modify-write per bank and cycle
    (``rdata + add``, or 0 with ``clear``), plus a second read port (``row2``/``rdata2``) for
    the halo send path."""

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


class _ActBuffer(wiring.Component):
    """The input-stationary activation buffer: ``depth`` rows of ``i`` decoded non-zeros."""

    def __init__(self, depth, layout):
        self._depth, self._layout = depth, layout
        addr = range(depth)
        super().__init__({
            "w_en": In(1), "w_addr": In(addr), "w_data": In(layout),
            "r_addr": In(addr), "r_data": Out(layout),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._layout, depth=self._depth, init=[])
        rd = mem.read_port(domain="comb")
        wr = mem.write_port()
        m.d.comb += [rd.addr.eq(self.r_addr), self.r_data.eq(rd.data),
                     wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]
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


class _State(enum.Enum, shape=2):
    RUN = 0
    HALO_H = 1
    HALO_V = 2
    DRAIN = 3


class ScnnPE(wiring.Component):
    """The SCNN processing element: compressed activation buffer, weight FIFO, F x I
    Cartesian-product multipliers, coordinate computation, scatter crossbar with bank
    arbitration, accumulator banks (tile plus halo), halo exchange ports and a drain with
    optional ReLU and run-length re-compression.

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
    the weight FIFO has room (the word is decoded on the way in, a pushed entry is usable the
    next cycle). The multiplier array takes one (weight entry, activation row) pair per cycle
    unless the crossbar's older register still holds products that lost arbitration (a
    conflict stall, see :class:`_Crossbar`). A weight entry meets every activation row of its
    channel (an empty channel is one row of zeros), then leaves the FIFO. CONFIG and DRAIN are
    accepted once the FIFO is empty and the crossbar empties this cycle. After
    DRAIN: ``kc x (Ht+R-1)`` cycles of horizontal halo exchange, ``kc x (R-1)`` of vertical
    exchange, then ``kc x (Ht+R-1)`` drain cycles (one frame row each; halo rows are cleared
    without output), during which the input is not accepted. ``o`` back-pressure stalls the
    drain. All of this is exactly the model in :func:`sparsegen.sim.scnn.model_cycles`.
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
        nb, lg = cfg.banks, cfg.banks.bit_length() - 1
        awidth = cfg.addr_width
        row_width = _bits(cfg.bank_depth - 1)
        frame_bits = _bits(2 * cfg.frame_max + 64)
        addr_bits = _bits(2 * cfg.kc * cfg.pitch_max + 64)

        m.submodules.multipliers = mul = _Multipliers(cfg.f, cfg.i, cfg.data_width)
        m.submodules.crossbar = xbar = _Crossbar(cfg.f * cfg.i, nb, awidth,
                                                 2 * cfg.data_width, row_width)
        m.submodules.accumulators = acc = _Accumulators(nb, cfg.bank_depth, cfg.acc_width,
                                                        max(2 * cfg.data_width, cfg.acc_width))
        row_layout = _act_row_layout(cfg)
        m.submodules.act_buffer = abuf = _ActBuffer(cfg.act_depth, row_layout)
        went = _weight_entry_layout(cfg)
        m.submodules.weight_fifo = fifo = SyncFIFO(width=went.size, depth=cfg.wt_depth)

        # -- geometry registers (CONFIG) ------------------------------------------------------
        wt = Signal(range(cfg.max_tile_w + 1))
        ht = Signal(range(cfg.max_tile_h + 1))
        r = Signal(range(cfg.max_r + 1))
        s = Signal(range(cfg.max_s + 1))
        relu = Signal()
        wacc = Signal(range(cfg.max_tile_w + cfg.max_s))
        hacc = Signal(range(cfg.max_tile_h + cfg.max_r))
        plane = Signal(range(cfg.pitch_max + 1))      # frame pitch (skewed)
        rwacc = Signal(range(cfg.frame_max + 1))     # R * Wacc
        wtop = Signal(range(cfg.frame_max + 1))      # (R-1) * Wacc + S - 1
        htwacc = Signal(range(cfg.frame_max + 1))    # Ht * Wacc
        kcplane = Signal(range(cfg.kc * cfg.pitch_max + 1))

        state = Signal(_State)
        word = self.i.payload
        kind = word.kind
        idle = (fifo.level == 0) & xbar.idle
        run = state == _State.RUN
        with m.Switch(kind):
            with m.Case(Cmd.CONFIG, Cmd.DRAIN):
                m.d.comb += self.i.ready.eq(run & idle)
            with m.Case(Cmd.ACT):
                m.d.comb += self.i.ready.eq(run)
            with m.Case(Cmd.WGT):
                m.d.comb += self.i.ready.eq(run & fifo.w_rdy)
        take = self.i.valid & self.i.ready

        # -- activation decode: (value, run) lanes -> (value, frame offset) ----------------------
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
        take_act = take & (kind == Cmd.ACT)
        m.d.comb += [abuf.w_en.eq(take_act), abuf.w_addr.eq(act_wr), abuf.w_data.eq(row_in)]
        with m.If(take_act):
            m.d.sync += act_wr.eq(act_wr + 1)
            with m.If(word.last):
                m.d.sync += [ax.eq(0), arb.eq(0)]
            with m.Else():
                m.d.sync += [ax.eq(x_cur), arb.eq(rb_cur)]

        # -- weight decode: (value, run) lanes -> (value, base offset) ---------------------------
        # Block order is (r, s, k), k fastest: the cursor k may equal kc (normalized by the
        # next lane's division).
        wk = Signal(range(cfg.kc + 1))                    # cursor k
        ws = Signal(range(cfg.max_s))                     # cursor s
        wr_ = Signal(range(cfg.max_r + 1))                # cursor r
        wrw = Signal(addr_bits)                           # r * Wacc
        wkb = Signal(addr_bits)                           # k * plane
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
        take_wgt = take & (kind == Cmd.WGT)
        m.d.comb += [fifo.w_en.eq(take_wgt), fifo.w_data.eq(entry)]
        with m.If(take_wgt):
            with m.If(word.last):
                m.d.sync += [wk.eq(0), ws.eq(0), wr_.eq(0), wrw.eq(0), wkb.eq(0)]
            with m.Else():
                m.d.sync += [wk.eq(k_cur), ws.eq(s_cur), wr_.eq(r_cur), wrw.eq(rw_cur),
                             wkb.eq(kb_cur)]

        # -- CONFIG ---------------------------------------------------------------------------
        chan_start = Signal(range(cfg.act_depth + 1))
        cur_row = Signal(range(cfg.act_depth + 1))
        with m.If(take & (kind == Cmd.CONFIG)):
            g = word.geom
            wacc_n = g.wt + g.s - 1
            frame = Signal(range(cfg.frame_max + 1))
            pitch = Signal(range(cfg.pitch_max + 1))
            m.d.comb += [frame.eq(wacc_n * (g.ht + g.r - 1)),
                         pitch.eq(frame + (Const(cfg.banks // cfg.f) - frame)[:lg])]
            m.d.sync += [
                wt.eq(g.wt), ht.eq(g.ht), r.eq(g.r), s.eq(g.s), relu.eq(g.relu),
                wacc.eq(wacc_n), hacc.eq(g.ht + g.r - 1),
                plane.eq(pitch), rwacc.eq(g.r * wacc_n),
                wtop.eq((g.r - 1) * wacc_n + g.s - 1), htwacc.eq(g.ht * wacc_n),
                act_wr.eq(0), chan_start.eq(0), cur_row.eq(0),
                kcplane.eq(cfg.kc * pitch),
                ax.eq(0), arb.eq(0), wk.eq(0), ws.eq(0), wr_.eq(0), wrw.eq(0), wkb.eq(0),
            ]

        # -- multiply: weight entry x activation row, coordinates, into the crossbar ---------
        head = went(fifo.r_data)
        act = abuf.r_data
        issue = run & fifo.r_rdy & xbar.can_load
        m.d.comb += abuf.r_addr.eq(cur_row)
        for i in range(cfg.i):
            m.d.comb += mul.a[i].eq(act.lanes[i].value)
        for f in range(cfg.f):
            m.d.comb += mul.w[f].eq(head.lanes[f].value)
            for i in range(cfg.i):
                j = f * cfg.i + i
                m.d.comb += [
                    xbar.valid[j].eq((act.lanes[i].value != 0) & (head.lanes[f].value != 0)),
                    xbar.addr[j].eq(act.lanes[i].pos + head.lanes[f].base),
                    xbar.prod[j].eq(mul.p[j]),
                ]
        m.d.comb += [xbar.load.eq(issue), fifo.r_en.eq(issue & act.last)]
        with m.If(issue):
            with m.If(act.last):
                with m.If(head.last):
                    m.d.sync += [chan_start.eq(cur_row + 1), cur_row.eq(cur_row + 1)]
                with m.Else():
                    m.d.sync += cur_row.eq(chan_start)
            with m.Else():
                m.d.sync += cur_row.eq(cur_row + 1)
        stalls = Signal(32)
        with m.If(xbar.stall):
            m.d.sync += stalls.eq(stalls + 1)
        m.d.comb += self.conflict_stalls.eq(stalls)

        # -- halo exchange and drain ---------------------------------------------------------
        pk = Signal(range(cfg.kc))
        prow = Signal(range(cfg.max_tile_h + cfg.max_r))
        pbase = Signal(addr_bits)
        pkbase = Signal(addr_bits)
        carry = Signal(RUN_BITS)
        own = prow >= r - 1
        advance = Signal()
        m.d.comb += advance.eq(~own | self.o.ready)
        last_k = pk == cfg.kc - 1

        with m.If(take & (kind == Cmd.DRAIN)):
            m.d.sync += [state.eq(_State.HALO_H), pk.eq(0), prow.eq(0), pbase.eq(0),
                         pkbase.eq(0), chan_start.eq(0), cur_row.eq(0)]
        with m.If(state == _State.HALO_H):
            m.d.sync += [prow.eq(prow + 1), pbase.eq(pbase + wacc)]
            with m.If(prow == hacc - 1):
                m.d.sync += [prow.eq(0), pk.eq(pk + 1), pkbase.eq(pkbase + plane),
                             pbase.eq(pkbase + plane)]
                with m.If(last_k):
                    m.d.sync += [pk.eq(0), pbase.eq(0), pkbase.eq(0),
                                 state.eq(Mux(r == 1, _State.DRAIN, _State.HALO_V))]
        with m.Elif(state == _State.HALO_V):
            m.d.sync += [prow.eq(prow + 1), pbase.eq(pbase + wacc)]
            with m.If(prow == r - 2):
                m.d.sync += [prow.eq(0), pk.eq(pk + 1), pkbase.eq(pkbase + plane),
                             pbase.eq(pkbase + plane)]
                with m.If(last_k):
                    m.d.sync += [pk.eq(0), pbase.eq(0), pkbase.eq(0),
                                 state.eq(_State.DRAIN)]
        with m.Elif(state == _State.DRAIN):
            with m.If(advance):
                m.d.sync += [prow.eq(prow + 1), pbase.eq(pbase + wacc)]
                with m.If(prow == hacc - 1):
                    m.d.sync += [prow.eq(0), pk.eq(pk + 1), pkbase.eq(pkbase + plane),
                                 pbase.eq(pkbase + plane)]
                    with m.If(last_k):
                        m.d.sync += [pk.eq(0), pbase.eq(0), pkbase.eq(0),
                                     state.eq(_State.RUN)]

        # Row windows: send (this PE's halo), receive (the neighbour's), drain (own columns).
        h_phase = state == _State.HALO_H
        v_phase = state == _State.HALO_V
        d_phase = state == _State.DRAIN
        send_base = Signal(addr_bits)
        recv_base = Signal(addr_bits)
        send_n = Signal(range(cfg.halo_lanes + 1))
        m.d.comb += [
            send_base.eq(Mux(h_phase, pbase, pbase + s - 1)),
            recv_base.eq(Mux(h_phase, pbase + wt, pbase + s - 1 + htwacc)),
            send_n.eq(Mux(h_phase, s - 1, Mux(v_phase, wt, 0))),
        ]
        halo_in = Signal(halo_layout(cfg))
        m.d.comb += halo_in.eq(Mux(h_phase, self.i_halo_h, self.i_halo_v))
        drain_base = send_base                      # pbase + S - 1 outside HALO_H
        for b in range(nb):
            o_r = Signal(lg, name=f"recv_off{b}")
            o_s = Signal(lg, name=f"send_off{b}")
            m.d.comb += [o_r.eq(b - recv_base[:lg]), o_s.eq(b - send_base[:lg])]
            hit_r = o_r < send_n
            hit_s = o_s < send_n
            hit_d = o_s < wt
            row_r = (recv_base + o_r)[lg:]
            row_s = (send_base + o_s)[lg:]
            m.d.comb += acc.row2[b].eq(row_s)
            with m.If(h_phase | v_phase):
                with m.If(hit_r):
                    m.d.comb += [acc.en[b].eq(1), acc.row[b].eq(row_r),
                                 acc.add[b].eq(halo_in.as_value().word_select(
                                     o_r, cfg.acc_width).as_signed())]
                with m.Elif(h_phase & hit_s):
                    m.d.comb += [acc.en[b].eq(1), acc.clear[b].eq(1), acc.row[b].eq(row_s)]
            with m.Elif(d_phase):
                m.d.comb += [acc.en[b].eq(hit_d & advance), acc.clear[b].eq(1),
                             acc.row[b].eq(row_s)]
            with m.Else():
                m.d.comb += [acc.en[b].eq(xbar.en[b]), acc.row[b].eq(xbar.row[b]),
                             acc.add[b].eq(xbar.data[b])]
        for j in range(cfg.halo_lanes):
            idx = (send_base + j)[:lg]
            m.d.comb += self.o_halo[j].eq(Mux(j < send_n, acc.rdata2.as_value().word_select(
                idx, cfg.acc_width).as_signed(), 0))

        # Drain: own columns of the row, ReLU, run-length compression across lanes and rows.
        cnt = Mux(prow == r - 1, 0, carry)
        out = self.o.payload
        for j in range(cfg.max_tile_w):
            raw = acc.rdata.as_value().word_select((drain_base + j)[:lg], cfg.acc_width)
            v = Signal(signed(cfg.acc_width), name=f"drain{j}")
            m.d.comb += v.eq(Mux(relu & raw[-1], 0, raw.as_signed()))
            valid = j < wt
            emit = valid & ((v != 0) | (cnt == _MAX_RUN))
            m.d.comb += [out.lanes[j].value.eq(Mux(emit, v, 0)),
                         out.lanes[j].run.eq(Mux(emit, cnt, 0)),
                         out.lanes[j].valid.eq(emit)]
            nxt = Signal(RUN_BITS, name=f"run{j}")
            m.d.comb += nxt.eq(Mux(emit, 0, Mux(valid, cnt + 1, cnt)))
            cnt = nxt
        m.d.comb += [self.o.valid.eq(d_phase & own), out.last.eq(last_k & (prow == hacc - 1))]
        with m.If(d_phase & own & self.o.ready):
            m.d.sync += carry.eq(cnt)
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
                pes[y, x] = m.submodules[f"pe{y}_{x}"] = ScnnPE(cfg.pe)
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
