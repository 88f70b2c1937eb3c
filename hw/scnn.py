"""SCNN (ISCA 2017): the Cartesian-product PE (``scnn-pe``) and the planar-tiled PE array
(``scnn``) of the PT-IS-CP-sparse dataflow.

Dataflow. Each PE holds the compressed activations of its planar tile of the input (input
stationary, all channels of the pass). Compressed weights of one output-channel group (``kc``
output channels) are broadcast channel by channel. Every cycle a PE multiplies a vector of
``f`` weights by a vector of ``i`` activations of the same input channel (Cartesian product,
``f x i`` multipliers), computes each product's output coordinate and scatters the products
through an ``(f*i) x banks`` crossbar into accumulator banks that hold the output tile plus its
halo. After the group, halo partial sums go to the neighbouring PEs, and the tile drains
through an optional ReLU and a run-length compressor onto ``o`` and, at the same time, into
the PE's output activation RAM (OARAM) in the format of its input activation RAM (IARAM),
while the next group already computes into the second set of accumulator banks (double
buffering, as in SCNN). At a layer boundary (a CONFIG word with ``swap``) the two activation
RAMs swap roles: the next layer reads what the last one wrote, without a copy and without
activation words (as SCNN does). The golden model and the format are in
:mod:`sparsegen.sim.golden.scnn`; the host-side schedule in :mod:`sparsegen.sim.scnn`.

Design choices.

* Coordinates are decoded once, when a compressed word enters the PE (one word per cycle,
  pipelined: a running position through the word's ``(value, run)`` lanes, then per lane a
  short restoring division into row and column, or into (r, s, k)), not in the multiply
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
* Input bandwidth: an ACT transfer into the array carries one ACT word per PE column, each
  lane with a valid bit and the PE row it is for (:func:`array_input_layout`); a WGT transfer
  carries one WGT word per PE column (see column groups below); CONFIG and DRAIN go to all PEs. A
  network's first layer, whose input is not in the IARAMs, thus fills them ``pe_cols`` words
  per cycle: at 8 x 8 PEs of F = I = 4 the one-word stream spent 5-15% of the benchmark
  layers' cycles at full density (12-26% pruned) on the load, where a dense array gets a row of
  activations per cycle at its edge. A lane per column rather than per PE: ``pe_cols`` lanes are as
  wide as the dense array's edge for the same multipliers (8 x 4 = 32 values at the paper's point
  against 32), every PE still takes at most one ACT word per cycle (its decoder is unchanged; a PE
  reads its column's lane) and the host balances nothing (tiles are alike, so columns carry about
  the same number of words). Ungrouped, every column's WGT lane carries the same word (one weight
  word per cycle for the whole array): a weight entry serves every activation row of its channel in
  each PE, so it costs the input nothing while channels have several rows per PE, but with one row
  (the 2 x 2 tiles of 13 x 13 and 14 x 14 planes on 8 x 8 PEs) the WGT words bound compute
  (``sparsegen bench scnn``), which column groups relieve. Cost, by ``sparsegen synth scnn``
  (2 x 2 PEs, sky130hd), with the one broadcast WGT word of before: the array's own logic
  (the lane multiplexers and valid decode) 3,296 um^2 and 421 cells, against 2,798 um^2 and
  373 with the one addressed word; the critical path stays in the PEs (:class:`ScnnPE`,
  Timing).
* Activation RAMs: IARAM and OARAM are ``act_depth`` rows of ``i`` decoded ``(value, pos)``
  non-zeros each, interleaved over :func:`ram_banks` banks so that the drain, which can
  complete several rows from one frame row, writes them in one cycle and never stalls the
  walk. The drain knows each output's (y, x) by counting (no divider): a gearbox packs the
  in-mask non-zeros of each frame row after the carry of the previous ones into rows of
  ``i``, a channel's last row marked (its last complete row waits in the carry until the
  channel goes on). Beside each bank, a row-end bit per row marks a channel's last row: the
  Cartesian sequencer reads it combinationally to choose the next row without waiting for the
  RAM's read. The bits are flip-flops in clock-gated groups of at most 32 consecutive rows
  (:func:`_row_ends`), a group loaded only when a row of it is written (its word with that
  row's bit replaced): as a memory of enable flip-flops they saw every clock edge, 1,632 of
  them per PE at the ``bench scnn`` configuration (816 rows, 4 banks, two RAMs; 56 groups).
  Values are saturated to ``data_width``; ``pos`` is the frame offset of the
  next layer (``S_out`` of the CONFIG word). The output mask of a CONFIG word zeroes outputs
  outside the plane, which are the next layer's zero padding. The last layer's result leaves
  on ``o`` (every layer's does), so the host reads and checks it there.
* Every memory is synchronous (SRAM-ready): the activation RAMs (1R1W, plus the gated
  row-end bits) and the accumulator banks (1R1W each, a pipelined read-modify-write
  with a forwarding register for back-to-back hits on one row). The halo exchange takes two
  cycles per row, horizontally and vertically: a send read, then the receiving
  read-modify-write of the partial sums, which the receiving PE registers at its boundary (as
  between PE macros on a chip; vertically one read port per bank needs the two cycles anyway).
  With the horizontal exchange in one cycle (the neighbour's add in the send's write cycle), a
  sending bank's forwarding register through the rotation into the neighbour's adder was the
  array's critical path: 8.565 ns at the ``bench scnn`` configuration (2 x 2 PEs, sky130hd),
  1.258x ``dense-array``'s. Products are kept to ``acc_width`` bits (sums wrap there).
* Clock gating: besides the memories' rows (register files, :mod:`.sram`), the registers that
  hold data between uses load only when they must, behind clock gates
  (:func:`sparsegen.hw.gate.gated_register`): the Cartesian stages' entries and rows and the
  crossbar's product registers once per pair, the weight decoder's stages and the weight FIFO
  entries (:class:`_Queue`) once per WGT word, each bank's registered request and
  forwarding register once per bank write, the drain row register once per drained frame row,
  the gearbox's stages and the output queue's entries once per own row, and a group of an
  activation RAM bank's row-end bits once per row written into it (an ACT row into the IARAM,
  a drained row into the OARAM). :func:`gated_registers` lists them for the energy model,
  which prices them by these actions' counts.
* The accumulators are double-buffered as in SCNN: two sets of ``banks`` banks (``half0``,
  ``half1``), each bank a 1R1W memory with its own read-modify-write. DRAIN flips them: the row
  walk of the finished group (halo exchange, drain, clear) runs on one set while the next
  group's products go to the other, each set through its own ports, so neither steals the
  other's bank cycles. Two sets rather than one set of twice the depth: a shared memory would
  need two read and two write ports per bank (not an SRAM macro), for the same bits. The
  price is a second set of banks and adders; the walk's copy of the geometry (CONFIG may
  change it during the walk) and a walked-set multiplexer in front of the rotation are small.
  Single-buffered, the walk held the input: ``kc x (2 (Ht+R-1) + 2 (R-1))`` cycles per group
  (12 kc for the 2 x 2 tiles of the 8 x 8 benchmark point).
* Output-channel column groups (our addition; SCNN tiles only planarly): a CONFIG word's
  ``gcols`` splits the PE columns into groups of a power of two; each group covers the whole
  plane with its own tiles and computes its share of the output channels. A PE works with its
  column inside its group (``grid_x`` masked: its tile origin and output mask are the group's)
  and the group's rightmost PE ignores the horizontal halo from its right neighbour (another
  group's; the walk's copy of the geometry says so). Weight words travel one per PE column
  (WGT lanes, as ACT), so each group gets its own weights while the activations are
  replicated into every group's matching lanes. Why: when the plane gives every PE a tile of
  one activation row per channel (the 2 x 2 tiles of 13 x 13 and 14 x 14 planes on 8 x 8 PEs),
  every weight entry costs a cycle with half of the ``i`` lanes empty, and the weight stream
  bounds compute; groups give bigger tiles (more rows per weight entry) and fewer output
  channels per PE. The cost: the per-lane WGT valid into the ready logic, a mask and an
  edge bit per PE.
"""

import dataclasses
import math

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .gate import gated_register, parts
from .hier import shared
from .params import Config, check_config, param
from .sram import sync_memory

__all__ = [
    "Cmd", "ScnnPEConfig", "ScnnConfig", "ScnnPE", "Scnn", "RUN_BITS",
    "pe_input_layout", "array_input_layout", "pe_output_layout", "halo_layout", "plane_pitch",
    "WEIGHT_ENTRY_DELAY", "PRODUCT_LATENCY", "DRAIN_LATENCY", "walk_cycles",
    "OARAM_WRITE_LATENCY", "ram_banks",
    "MAX_GRID", "gated_registers", "gcols_code",
]

RUN_BITS = 4
_MAX_RUN = (1 << RUN_BITS) - 1


def _below(j: int, n):
    """``j < n`` for a constant lane index ``j``; a constant 0 where ``n`` is too narrow ever to
    exceed ``j`` (at the smallest sizes, where Verilator would flag the comparison as
    constant)."""
    return Const(0, 1) if j >= (1 << len(n)) - 1 else j < n


class Cmd(enum.Enum, shape=2):
    """Kind of an input word."""

    CONFIG = 0      #: tile geometry, ReLU, output mask; empties the IARAM (waits for idle);
                    #: with ``geom.swap`` a new layer: IARAM and OARAM swap roles
    ACT = 1         #: up to ``i`` compressed activations of the current channel
    WGT = 2         #: up to ``f`` compressed weights of the current (group, channel) block
    DRAIN = 3       #: end of the output-channel group: flips the accumulator halves


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


MAX_GRID = 16
"""Largest PE grid side (``ScnnConfig.pe_rows``/``pe_cols``): bounds the plane coordinates of
a CONFIG word's output mask."""


def _geom_layout(cfg) -> data.StructLayout:
    """A CONFIG word's fields: tile width/height, filter R/S, ReLU; ``swap`` (a new layer: the
    IARAM and OARAM swap roles, the OARAM write pointer returns to row 0); ``s_out`` (S of the
    layer that reads the OARAM: its rows hold frame offsets for that layer); the output mask
    ``[oy0, oy1) x [ox0, ox1)`` in the pass's plane of PE tiles (``pe_rows*Ht x pe_cols*Wt``,
    with column groups a group's ``pe_rows*Ht x (columns per group)*Wt``): drained outputs
    outside it are zero (the next layer's zero padding, or outputs beyond the plane);
    ``gcols`` the column groups: 0 ungrouped (the grid is one group), ``n > 0`` groups of
    ``2**(n-1)`` PE columns, each covering the whole plane (see :class:`Scnn`)."""
    rows, cols = range(MAX_GRID * cfg.max_tile_h + 1), range(MAX_GRID * cfg.max_tile_w + 1)
    return data.StructLayout({
        "wt": range(cfg.max_tile_w + 1), "ht": range(cfg.max_tile_h + 1),
        "r": range(cfg.max_r + 1), "s": range(cfg.max_s + 1), "relu": 1,
        "swap": 1, "s_out": range(cfg.max_s + 1),
        "oy0": rows, "oy1": rows, "ox0": cols, "ox1": cols,
        "gcols": range(_log2(MAX_GRID) + 2),
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


def _act_lane_layout(cfg: ScnnConfig) -> data.StructLayout:
    """One lane of an array input transfer: a compressed word (``last``, ``count``, ``lanes``),
    ``valid`` (ACT, WGT) and, for ACT, ``row``, the PE row of the lane's column that takes it.
    """
    return data.StructLayout({**_word_fields(cfg), "valid": 1,
                              "row": range(max(cfg.pe_rows, 2))})


def array_input_layout(cfg: ScnnConfig) -> data.StructLayout:
    """An input transfer of the array: ``kind``, ``geom`` (CONFIG) and ``cols``, one lane
    (:func:`_act_lane_layout`) per PE column. ACT: PE ``(y, x)`` takes lane ``x`` when it is
    ``valid`` and its ``row`` is ``y`` (up to ``pe_cols`` ACT words per transfer, one per
    column). WGT: every PE of column ``x`` takes lane ``x`` when it is ``valid`` (``row``
    ignored; the host puts the same word in every lane of a column group). CONFIG and DRAIN
    go to all PEs (lanes unused)."""
    return data.StructLayout({"kind": Cmd, "geom": _geom_layout(cfg),
                              "cols": data.ArrayLayout(_act_lane_layout(cfg), cfg.pe_cols)})


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
        "wtop": range(cfg.frame_max + 1),                   # (R-1) * Wacc + S - 1
        "ht_wacc": range(cfg.frame_max + 1),                # Ht * Wacc
        "ht": range(cfg.max_tile_h + 1),
        "wacc_out": range(cfg.max_tile_w + cfg.max_s),      # Wt + S_out - 1 (OARAM offsets)
        "y_lo": range(cfg.max_tile_h + 1),                  # this PE's output mask, tile rows
        "y_hi": range(cfg.max_tile_h + 1),
        "x_lo": range(cfg.max_tile_w + 1),                  # and columns
        "x_hi": range(cfg.max_tile_w + 1),
        "hedge": 1,                                         # right edge of a column group
    })


def ram_banks(cfg) -> int:
    """Banks of each activation RAM (IARAM, OARAM): row ``a`` is in bank ``a mod banks``.
    A drained frame row can complete up to ``ceil((i + max_tile_w) / i)`` rows of ``i``
    non-zeros in one cycle (the carry of up to ``i`` left by the previous frame row plus its
    own); that many consecutive rows fall in distinct banks, so the drain writes them at once
    and never waits. A power of two (the bank is the address's low bits)."""
    rows = -(-(cfg.i + cfg.max_tile_w) // cfg.i)
    return 1 << (rows - 1).bit_length()


def _ram_write_layout(cfg) -> data.ArrayLayout:
    """Per OARAM bank, one row written by the drain: ``en``, the bank's ``row``, the row's
    ``data`` (:func:`_act_row_layout`) and ``last`` (its channel's final row)."""
    rows = math.ceil(cfg.act_depth / ram_banks(cfg))
    write = data.StructLayout({"en": 1, "row": range(max(rows, 2)), "last": 1,
                               "data": _act_row_layout(cfg)})
    return data.ArrayLayout(write, ram_banks(cfg))


def _act_row_layout(cfg) -> data.StructLayout:
    """A row of the activation buffer: ``i`` decoded non-zeros ``(value, pos)``."""
    entry = data.StructLayout({"value": signed(cfg.data_width),
                               "pos": unsigned(_bits(cfg.frame_max - 1))})
    return data.StructLayout({"lanes": data.ArrayLayout(entry, cfg.i)})


def _row_read_signature(depth: int, layout) -> wiring.Signature:
    """The activation buffer's read port, seen from the reader: ``addr`` with ``en`` reads a
    row at the edge (``data`` holds it from the next cycle until the next enabled read);
    ``last`` tells combinationally whether ``addr`` is its channel's final row."""
    return wiring.Signature({"addr": Out(range(max(depth, 2))), "en": Out(1),
                             "data": In(layout), "last": In(1)})


def _weight_entry_layout(cfg) -> data.StructLayout:
    entry = data.StructLayout({"value": signed(cfg.data_width),
                               "base": unsigned(cfg.addr_width)})
    return data.StructLayout({"lanes": data.ArrayLayout(entry, cfg.f), "last": 1})


def _wgt_position_bits(cfg) -> int:
    """Width of a weight lane's position in its flattened ``kc x R x S`` block, runs included
    (the weight decoder's first stage)."""
    return _bits(cfg.kc * cfg.max_r * cfg.max_s + (_MAX_RUN + 1) * cfg.f)


def _wgt_coords_layout(cfg) -> data.StructLayout:
    """A weight lane's ``(k, r, s)`` (the weight decoder's second stage)."""
    return data.StructLayout({"k": range(max(cfg.kc, 2)), "r": range(cfg.max_r + 1),
                              "s": range(cfg.max_s + 1)})


def gated_registers(cfg) -> dict[str, list[int]]:
    """The clock-gated registers of one PE (:func:`sparsegen.hw.gate.gated_register`), as the
    widths of their parts (each part one clock gate): per action of :meth:`Scnn.probes` that
    loads them, the parts one occurrence opens, and ``all``, every part of the PE.

    * ``pair``: one of the crossbar's two product registers (addresses and values of the
      pair's ``f x i`` products), the Cartesian issue stage's weight entry and its row stage's
      (activation row, weight entry);
    * ``bank_write``: the bank's registered request (operation, row, addend) and, in the write
      cycle, its forwarding register (a bank write is one request, written the cycle after);
    * ``wgt_push``: the weight decoder's two stages and the FIFO entry written (every WGT word
      taken is one entry pushed);
    * ``drain_row``: the drain row register (every frame row the walk drains);
    * ``drain_push``: the gearbox's two stages and the output queue's entry (every own row,
      i.e. not a halo row, that enters the drain);
    * ``act_write``: the group of row-end bits (:func:`_row_ends`) of the activation RAM
      bank a row is written into (an ACT row into the IARAM, a drained row into the OARAM):
      one gate, listed at the bank's widest group (the groups differ by at most one bit).
    """
    n, row = cfg.f * cfg.i, _act_row_layout(cfg).size
    went = _weight_entry_layout(cfg).size
    pair = parts(n * (cfg.addr_width + _product_bits(cfg)))
    staged = parts(went) + parts(row + went)
    bank = parts(2 + _bits(cfg.bank_depth - 1) + _product_bits(cfg)) + parts(cfg.acc_width)
    s1 = parts(1 + cfg.f * (cfg.data_width + _wgt_position_bits(cfg)))
    s2 = parts(1 + cfg.f * (cfg.data_width + _wgt_coords_layout(cfg).size))
    entry = cfg.data_width + _bits(cfg.frame_max - 1)        # an OARAM row's (value, pos)
    most = -(-(cfg.i + cfg.max_tile_w) // cfg.i)
    g1 = parts(_bits(cfg.frame_max - 1) + 1 + cfg.max_tile_w * (1 + cfg.data_width))
    st = parts(1 + _bits(most) + (most + 1) * cfg.i * entry)
    queue = parts(pe_output_layout(cfg).size)
    drain_row = parts(_drain_row_layout(cfg).size)
    ends = parts(math.ceil(cfg.act_depth / ram_banks(cfg)))
    return {"pair": pair + staged, "bank_write": bank, "wgt_push": s1 + s2 + parts(went),
            "drain_row": drain_row, "drain_push": g1 + st + queue, "act_write": [max(ends)],
            "all": 2 * pair + staged + 2 * cfg.banks * bank + s1 + s2
            + max(cfg.wt_depth, 2) * parts(went) + drain_row + g1 + st
            + _Drain.DEPTH * queue + 2 * ram_banks(cfg) * ends}


def _product_bits(cfg) -> int:
    """Bits of a product as the PE keeps it: the full ``2 * data_width``, or the low
    ``acc_width`` when fewer (the accumulators wrap at ``acc_width``, so higher bits never
    reach a sum: the multipliers, the crossbar and the adders drop them)."""
    return min(2 * cfg.data_width, cfg.acc_width)


def _products_layout(cfg) -> data.ArrayLayout:
    """The ``f*i`` products of a (weight entry, activation row) pair, ``f*I + i`` order; a
    product with a zero operand is not ``live`` (it requests no bank)."""
    product = data.StructLayout({"live": 1, "addr": unsigned(cfg.addr_width),
                                 "value": signed(_product_bits(cfg))})
    return data.ArrayLayout(product, cfg.f * cfg.i)


def _bank_writes_layout(cfg) -> data.ArrayLayout:
    """Per accumulator bank: the product granted to it this cycle (``en``), its bank row."""
    write = data.StructLayout({"en": 1, "row": unsigned(_bits(cfg.bank_depth - 1)),
                               "value": signed(_product_bits(cfg))})
    return data.ArrayLayout(write, cfg.banks)


def _bank_request_layout(row_bits: int, add_bits: int) -> data.StructLayout:
    """A bank's registered request (:class:`_BankSet`): ``clear`` (write 0), ``halo`` (add the
    received partial sum), the bank ``row`` and the product to ``add``."""
    return data.StructLayout({"clear": 1, "halo": 1, "row": unsigned(row_bits),
                              "add": signed(add_bits)})


def _sum_bits(cfg) -> int:
    """Width of accumulator-address sums before they are reduced (decoders, row walk)."""
    return _bits(2 * cfg.kc * cfg.pitch_max + 64)


def _frame_row_layout(cfg) -> data.StructLayout:
    """One frame row of the halo exchange or the drain, as the row walk visits it: ``base``
    its first accumulator address; ``recv`` the second cycle of a vertical-exchange row (the
    receiving read-modify-write; the first cycle reads the row to send); ``own`` not one of the
    top ``R-1`` halo rows, ``first`` the first own row of a channel, ``last`` the group's final
    row."""
    return data.StructLayout({"phase": _State, "base": unsigned(_sum_bits(cfg)), "recv": 1,
                              "own": 1, "first": 1, "last": 1})


def _drain_row_layout(cfg) -> data.StructLayout:
    """A drained frame row after the ReLU: the ``max_tile_w`` accumulators of its own columns
    in order, which of them are non-zero (``nz``) and inside the tile (``valid``)."""
    return data.StructLayout({"values": data.ArrayLayout(signed(cfg.acc_width), cfg.max_tile_w),
                              "nz": cfg.max_tile_w, "valid": cfg.max_tile_w,
                              "own": 1, "first": 1, "last": 1})


# -- timing facts (read by the cycle model) --------------------------------------------------

WEIGHT_ENTRY_DELAY = 3
"""Cycles from the edge that takes a WGT word to the first cycle its weight entry can be issued
to the multipliers: the weight decoder's three stages (lane positions, their division into
``(r, s, k)``, the ``base`` adders) end in the FIFO write, and the FIFO head is read the cycle
after (:class:`_Weights`)."""

PRODUCT_LATENCY = 2
"""Cycles from a (weight entry, activation row) pair's issue to the first cycle the crossbar can
load it: the activation buffer's synchronous read into the row stage, whose row goes into the
product stage's register (1), then the multipliers into the crossbar (1) (:class:`_Cartesian`).
The stages advance together: while the product stage holds a pair the crossbar cannot load,
the row stage and the issue wait too (the model's rule, :func:`sparsegen.sim.scnn.
model_cycles`)."""

DRAIN_LATENCY = 3
"""Cycles from the cycle the row walk requests a drain row to the cycle that row leaves on
``o``: the banks' synchronous read (1), the rotation of banks to columns and the ReLU into the
drain row register (1), the run-length compression into the output queue (1)
(:class:`_Accumulators`, :class:`_Drain`)."""


OARAM_WRITE_LATENCY = 3
"""Cycles from the one in which a drained row enters the drain (:class:`_Drain`) to the first in
which a swapping CONFIG can be taken after it: the gearbox's two stages (in-mask non-zeros and
their offsets, then packing into rows of ``i``) and the OARAM write. With
:data:`DRAIN_LATENCY`: a swapping CONFIG is taken at the earliest ``OARAM_WRITE_LATENCY - 1``
cycles after the last drained row left ``o``."""


def walk_cycles(kc: int, ht: int, r: int) -> int:
    """Cycles of the row walk after DRAIN: ``kc x (Ht+R-1)`` rows of horizontal halo exchange
    and ``kc x (R-1)`` rows of vertical exchange, both at two cycles a row (a send read, then
    the receiving read-modify-write of the partial sums the neighbour sent, registered at the
    PE boundary), and ``kc x (Ht+R-1)`` drain rows, one per cycle, with ``o`` never
    back-pressured. It runs on the accumulator half not in use: input is taken again the cycle
    after DRAIN, the next DRAIN the cycle after the walk's last; the last output row leaves
    :data:`DRAIN_LATENCY` cycles after the walk's last cycle."""
    return kc * (3 * (ht + r - 1) + 2 * (r - 1))


# -- building blocks -------------------------------------------------------------------------


def _log2(n: int) -> int:
    return n.bit_length() - 1


def gcols_code(group_cols: int | None) -> int:
    """The CONFIG word's ``gcols`` for column groups ``group_cols`` PE columns wide (a power of
    two), or for no grouping (``None``): 0 ungrouped, else ``log2(group_cols) + 1``."""
    return 0 if group_cols is None else _log2(group_cols) + 1


class _State(enum.Enum, shape=2):
    """Where the row walk after DRAIN is (the Cartesian product runs in every state, on the
    other accumulator half)."""

    IDLE = 0
    HALO_H = 1
    HALO_V = 2
    DRAIN = 3


class _Control(wiring.Component):
    """The PE's sequencer: takes input words, holds the tile geometry, hands ACT and WGT words
    to their decoders, chooses the accumulator half the products go to and, after DRAIN, walks
    the frame rows of the halo exchange and the drain on the other half.

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(pe_input_layout(cfg)))
        The PE's input words (see :class:`ScnnPE`).
    o_act : Out(stream.Signature(_word_layout(cfg), always_ready=True))
        ACT words, always taken.
    o_wgt : Out(stream.Signature(_word_layout(cfg)))
        WGT words, taken while the weight FIFO has room.
    idle : In(1)
        No weight entry is queued and no product is left in the crossbar after this cycle's
        grants. CONFIG and DRAIN wait for it.
    tile : Out(_tile_layout(cfg))
        The geometry of the last CONFIG word and its derived sizes (registers).
    walk_tile : Out(_tile_layout(cfg))
        ``tile`` as it was when the last DRAIN was taken: the geometry of the group being
        walked (a CONFIG word may change ``tile`` during the walk).
    active : Out(1)
        The accumulator half that products go to (a register); the walk uses the other one.
        DRAIN flips it.
    new_tile : Out(1)
        A CONFIG word is taken: the activation buffer and the decoder cursors start over.
    rewind : Out(1)
        A CONFIG or DRAIN word is taken: the next weight entry meets activation row 0.
    swap : Out(1)
        A CONFIG word with ``geom.swap`` is taken: a new layer, the activation RAMs swap roles.
    grid_y, grid_x : In(range(MAX_GRID))
        This PE's place in the grid: the output mask's plane coordinates become tile rows and
        columns here (``tile.y_lo`` ...).
    drain_busy : In(1)
        Drained rows are still on their way into the OARAM; a swapping CONFIG waits for it.
    o_row : Out(stream.Signature(_frame_row_layout(cfg)))
        The frame rows after DRAIN, channel by channel in each phase: ``kc x (Ht+R-1)`` rows
        in phase HALO_H, ``kc x (R-1)`` in HALO_V (none when ``R = 1``), ``kc x (Ht+R-1)`` in
        DRAIN. Not valid in the IDLE state.

    Timing
    ------
    One input word per cycle; ``i.ready`` depends combinationally on ``idle`` (the crossbar's
    arbitration) and on ``o_wgt.ready`` (the FIFO's fill level). A CONFIG word's geometry is in
    ``tile`` from the next cycle. DRAIN waits for ``idle`` and for the previous walk to end
    (state IDLE, a register); at its edge ``active`` flips and the walk of the group just
    finished starts on the other half: it offers one row per cycle from the next cycle and
    advances on each transfer, back to IDLE at the edge of the last row (:func:`walk_cycles`
    cycles without back-pressure; a halo row, horizontal or vertical, takes two cycles,
    ``recv`` marks the second),
    from where the next DRAIN can be taken. ACT, WGT and CONFIG words are taken during the
    walk (the next group computes into ``active``). Longest path: the CONFIG word's
    geometry product ``(Wt+S-1) x (Ht+R-1)`` and its rounding to the skewed pitch into the
    ``tile`` registers.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "grid_y": In(range(MAX_GRID)), "grid_x": In(range(MAX_GRID)),
            "drain_busy": In(1), "swap": Out(1),
            "i": In(stream.Signature(pe_input_layout(cfg))),
            "o_act": Out(stream.Signature(_word_layout(cfg), always_ready=True)),
            "o_wgt": Out(stream.Signature(_word_layout(cfg))),
            "idle": In(1),
            "tile": Out(_tile_layout(cfg)),
            "walk_tile": Out(_tile_layout(cfg)),
            "active": Out(1),
            "new_tile": Out(1),
            "rewind": Out(1),
            "o_row": Out(stream.Signature(_frame_row_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        word, tile, row = self.i.payload, self.tile, self.o_row.payload
        state = Signal(_State)
        walk_free = state == _State.IDLE
        with m.Switch(word.kind):
            with m.Case(Cmd.CONFIG):
                # A swapping CONFIG (a new layer) also waits until the last walk has ended and
                # its rows are in the OARAM.
                m.d.comb += self.i.ready.eq(
                    self.idle & ~(word.geom.swap & (self.drain_busy | ~walk_free)))
            with m.Case(Cmd.DRAIN):
                m.d.comb += self.i.ready.eq(self.idle & walk_free)
            with m.Case(Cmd.ACT):
                m.d.comb += self.i.ready.eq(1)
            with m.Case(Cmd.WGT):
                m.d.comb += self.i.ready.eq(self.o_wgt.ready)
        take = self.i.valid & self.i.ready
        take_config = take & (word.kind == Cmd.CONFIG)
        take_drain = take & (word.kind == Cmd.DRAIN)
        for o, kind in ((self.o_act, Cmd.ACT), (self.o_wgt, Cmd.WGT)):
            m.d.comb += [o.valid.eq(self.i.valid & (word.kind == kind)),
                         o.payload.last.eq(word.last), o.payload.count.eq(word.count),
                         o.payload.lanes.eq(word.lanes)]
        m.d.comb += [self.new_tile.eq(take_config), self.rewind.eq(take_config | take_drain),
                     self.swap.eq(take_config & word.geom.swap)]

        # The next tile, computed from the word whatever its kind (combinational signals
        # assigned under take_config would put the late take_config in front of the
        # multipliers and comparators): the registers load it when a CONFIG word is taken.
        g = word.geom
        wacc = g.wt + g.s - 1
        frame = Signal(range(cfg.frame_max + 1))
        pitch = Signal(range(cfg.pitch_max + 1))
        # Rounding up to banks/f modulo banks: the low log2(banks) bits of the difference.
        m.d.comb += [frame.eq(wacc * (g.ht + g.r - 1)),
                     pitch.eq(frame + (Const(cfg.banks // cfg.f) - frame)[:_log2(cfg.banks)])]
        # The column within the PE's column group (a mask of grid_x); the group's rightmost
        # PE drops the horizontal halo from its right neighbour (another group).
        gmask = Signal(range(MAX_GRID), name="gmask")
        with m.Switch(g.gcols):
            for n in range(1, _log2(MAX_GRID) + 2):
                with m.Case(n):
                    m.d.comb += gmask.eq((1 << (n - 1)) - 1)
            with m.Default():
                m.d.comb += gmask.eq(MAX_GRID - 1)
        gx = Signal(range(MAX_GRID), name="group_x")
        m.d.comb += gx.eq(self.grid_x & gmask)
        # The output mask in this PE's tile: [edge - origin] clamped to [0, size].
        masks = {}
        for axis, (e0, e1), grid, size in (("y", (g.oy0, g.oy1), self.grid_y, g.ht),
                                           ("x", (g.ox0, g.ox1), gx, g.wt)):
            origin = grid * size
            for end, edge in (("lo", e0), ("hi", e1)):
                local = Signal(signed(len(edge) + 1), name=f"mask_{axis}_{end}")
                m.d.comb += local.eq(edge - origin)
                masks[f"{axis}_{end}"] = Mux(local < 0, 0, Mux(local > size, size, local))
        with m.If(take_config):
            m.d.sync += [
                tile.wt.eq(g.wt), tile.r.eq(g.r), tile.s.eq(g.s), tile.relu.eq(g.relu),
                tile.wacc.eq(wacc), tile.hacc.eq(g.ht + g.r - 1), tile.pitch.eq(pitch),
                tile.wtop.eq((g.r - 1) * wacc + g.s - 1),
                tile.ht_wacc.eq(g.ht * wacc),
                tile.ht.eq(g.ht), tile.wacc_out.eq(g.wt + g.s_out - 1),
                tile.hedge.eq((g.gcols != 0) & (gx == gmask)),
                *(getattr(tile, name).eq(value) for name, value in masks.items()),
            ]

        # Row walk: channel pk, row prow of its frame, at address pbase = pkbase + prow * Wacc,
        # in the geometry of the walked group.
        geo = self.walk_tile
        with m.If(take_drain):
            m.d.sync += [geo.eq(tile), self.active.eq(~self.active)]
        pk = Signal(range(max(cfg.kc, 2)))
        prow = Signal(range(cfg.max_tile_h + cfg.max_r))
        pbase = Signal(_sum_bits(cfg))
        pkbase = Signal(_sum_bits(cfg))
        recv = Signal()                 # HALO_H, HALO_V: the row's second (receiving) cycle
        halo = (state == _State.HALO_H) | (state == _State.HALO_V)
        last_k = pk == cfg.kc - 1
        last_row = Mux(state == _State.HALO_V, prow == geo.r - 2, prow == geo.hacc - 1)
        m.d.comb += [
            self.o_row.valid.eq(~walk_free),
            row.phase.eq(state), row.base.eq(pbase), row.recv.eq(recv),
            row.own.eq(prow >= geo.r - 1), row.first.eq(prow == geo.r - 1),
            row.last.eq(last_k & (prow == geo.hacc - 1)),
        ]
        with m.If(take_drain):
            m.d.sync += [state.eq(_State.HALO_H), pk.eq(0), prow.eq(0), pbase.eq(0),
                         pkbase.eq(0), recv.eq(0)]
        step = self.o_row.valid & self.o_row.ready
        with m.If(step & halo):
            m.d.sync += recv.eq(~recv)
        with m.If(step & (~halo | recv)):
            m.d.sync += [prow.eq(prow + 1), pbase.eq(pbase + geo.wacc)]
            with m.If(last_row):
                m.d.sync += [prow.eq(0), pk.eq(pk + 1), pkbase.eq(pkbase + geo.pitch),
                             pbase.eq(pkbase + geo.pitch)]
                with m.If(last_k):
                    m.d.sync += [pk.eq(0), pbase.eq(0), pkbase.eq(0)]
                    with m.If(state == _State.HALO_H):
                        m.d.sync += state.eq(Mux(geo.r == 1, _State.DRAIN, _State.HALO_V))
                    with m.Elif(state == _State.HALO_V):
                        m.d.sync += state.eq(_State.DRAIN)
                    with m.Else():
                        m.d.sync += state.eq(_State.IDLE)
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


class _Queue(wiring.Component):
    """A synchronous first-word-fall-through queue of ``width`` bits and ``depth`` entries,
    with the members of :class:`amaranth.lib.fifo.SyncFIFO` and its timing, whose entries are
    clock-gated registers (:func:`sparsegen.hw.gate.gated_register`): an entry's gates open
    only when it is written (a push), where a ``SyncFIFO``'s storage rows are enable
    flip-flops clocked every cycle. Read combinationally at the consume pointer.

    An entry is gated in parts of at most :data:`sparsegen.hw.gate.PART` bits, each behind its
    own gate. Why parts: the flow maps each block's logic with ABC, which cannot see flip-flop
    loads; one write-enable net into a wide entry of enable flip-flops drove hundreds of enable
    pins from a single small gate (13 ns measured for a 175-bit entry), as one clock gate
    would drive their clock pins.
    """

    def __init__(self, width, depth):
        self._width, self._depth = width, depth
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        produce, consume = Signal(range(depth)), Signal(range(depth))
        level = Signal(range(depth + 1))
        do_write = self.w_en & self.w_rdy
        do_read = self.r_en & self.r_rdy
        m.d.comb += [self.w_rdy.eq(level != depth), self.r_rdy.eq(level != 0),
                     self.level.eq(level)]
        data_out = Const(0, self._width)
        for n in range(depth):
            row = gated_register(m, platform, f"entry{n}", self.w_data, do_write & (produce == n))
            data_out = data_out | Mux(consume == n, row, 0)
        m.d.comb += self.r_data.eq(data_out)
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == depth - 1, 0, produce + 1))
        with m.If(do_read):
            m.d.sync += consume.eq(Mux(consume == depth - 1, 0, consume + 1))
        with m.If(do_write & ~do_read):
            m.d.sync += level.eq(level + 1)
        with m.If(do_read & ~do_write):
            m.d.sync += level.eq(level - 1)
        return m


class _ActBuffer(wiring.Component):
    """The two activation RAMs of a PE, IARAM and OARAM: each ``depth`` rows of ``i`` decoded
    non-zeros, interleaved over ``banks`` synchronous 1R1W memories (row ``a`` in bank ``a mod
    banks``; ``ram<n>_<b>``: SRAM macros where large), beside a flip-flop bit per row
    (``ends<n>_<b>``, :func:`_row_ends`) that marks a channel's final row, read
    combinationally by the Cartesian sequencer to choose the next row without waiting for the
    read. The bits are clock-gated registers of at most 32 consecutive rows each
    (:func:`_row_ends`; a bank of one row is one flip-flop), a group loaded only when the
    bank is written in one of its rows. ``sel`` says which RAM is
    the IARAM; ``swap`` flips it (ping-pong: the rows a layer drained into its OARAM are the
    next layer's input, no copy).

    Members: ``swap``; ``w_en``/``w_addr``/``w_data``/``w_last`` (an ACT row written into the
    IARAM at the edge); ``o_w`` (:func:`_ram_write_layout`: up to ``banks`` drained rows
    written into the OARAM at the edge, one per bank); ``read`` (:func:`_row_read_signature`,
    of the IARAM).
    """

    def __init__(self, depth, layout, banks, write_layout):
        self._depth, self._layout, self._banks = depth, layout, banks
        addr = range(max(depth, 2))
        super().__init__({
            "swap": In(1),
            "w_en": In(1), "w_addr": In(addr), "w_data": In(layout), "w_last": In(1),
            "o_w": In(write_layout),
            "read": In(_row_read_signature(depth, layout)),
        })

    def elaborate(self, platform):
        m = Module()
        nb, lg = self._banks, _log2(self._banks)
        rows = math.ceil(self._depth / nb)

        def split(addr):
            """(bank, bank row) of a row address."""
            return (addr[:lg] if lg else Const(0, 1)), addr[lg:]

        sel = Signal()
        with m.If(self.swap):
            m.d.sync += sel.eq(~sel)
        r_bank, r_row = split(self.read.addr)
        w_bank, w_row = split(self.w_addr)
        # The RAM and bank of the last enabled read, choosing its data.
        r_sel_q = Signal()
        r_bank_q = Signal.like(r_bank)
        with m.If(self.read.en):
            m.d.sync += [r_sel_q.eq(sel), r_bank_q.eq(r_bank)]
        data, last = Const(0, self._layout.size), Const(0, 1)
        for n in range(2):
            iaram = sel == n
            for b in range(nb):
                mem, m.submodules[f"ram{n}_{b}"] = sync_memory(platform, rows, self._layout.size)
                here = r_bank == b
                act_w = self.w_en & iaram & (w_bank == b)
                out_w = self.o_w[b].en & ~iaram
                row = Mux(iaram, w_row, self.o_w[b].row)
                if len(w_row):  # named; a one-row bank's row address has no bits (no signal)
                    named = Signal.like(w_row, name=f"w_row{n}_{b}")
                    m.d.comb += named.eq(row)
                    row = named
                m.d.comb += [
                    mem.r_addr.eq(r_row), mem.r_en.eq(self.read.en & iaram & here),
                    mem.w_en.eq(act_w | out_w), mem.w_addr.eq(row),
                    mem.w_data.eq(Mux(iaram, self.w_data, self.o_w[b].data)),
                ]
                ends = _row_ends(m, platform, f"ends{n}_{b}", rows, act_w | out_w, row,
                                 Mux(iaram, self.w_last, self.o_w[b].last))
                data = data | Mux((r_sel_q == n) & (r_bank_q == b), mem.r_data, 0)
                last = last | (iaram & here & ends.bit_select(r_row, 1))
        m.d.comb += [self.read.data.eq(data), self.read.last.eq(last)]
        return m


def _row_ends(m, platform, name, rows, en, row, bit) -> Value:
    """The row-end bits of one activation RAM bank of ``rows`` rows: ``bit`` written into row
    ``row`` at the edge when ``en``; returns the ``rows`` bits (row ``r`` is bit ``r``), read
    combinationally. The rows are split as a gated register's parts
    (:func:`sparsegen.hw.gate.parts`: at most ``PART`` each, near-equal, 204 rows are 30 + 6 x
    29), each group a clock-gated register (``<name>_<k>_g0``) loaded only when a row of its
    group is written: its word with the written row's bit replaced."""
    groups, lo = [], 0
    for k, width in enumerate(parts(rows)):
        hits = Signal(width, name=f"{name}_{k}_hit")     # the written row, one-hot in the group
        q = Signal(width, name=f"{name}_{k}_q")
        m.d.comb += hits.eq(Cat(row == lo + j for j in range(width)))
        d = Cat(Mux(hits[j], bit, q[j]) for j in range(width))
        m.d.comb += q.eq(gated_register(m, platform, f"{name}_{k}", d, en & hits.any()))
        groups.append(q)
        lo += width
    return Cat(*groups)


def _prefix_positions(m, cursor, word, lanes, width, name):
    """Positions of a word's lanes in their (flattened) block: lane ``j`` at ``cursor +
    sum(run_l + 1 for l < j) + run_j``; returns the lane positions and the cursor after the
    word's ``count`` valid lanes. A chain of ``lanes`` small adders (no division)."""
    positions, cur = [], cursor
    for j in range(lanes):
        pos = Signal(width, name=f"{name}{j}_p")
        nxt = Signal(width, name=f"{name}{j}_n")
        m.d.comb += [pos.eq(cur + word.lanes[j].run),
                     nxt.eq(Mux(j < word.count, pos + 1, cur))]
        positions.append(pos)
        cur = nxt
    return positions, cur


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
        Tile geometry; ``wt`` and ``s`` are used.
    clear : In(1)
        Start over (a CONFIG word): the buffer is empty and the cursor at the tile's origin.
    read : In(_row_read_signature(cfg.act_depth, _act_row_layout(cfg)))
        The IARAM's read port.
    swap : In(1)
        A new layer: the IARAM and the OARAM swap roles (:class:`_ActBuffer`).
    i_ram : In(_ram_write_layout(cfg))
        Drained rows for the OARAM (:class:`_Drain`).

    Timing
    ------
    One word per cycle, never stalls, in two stages: the lanes' positions in the channel's
    flattened tile (``p = y*Wt + x``: a running cursor plus the runs, a chain of ``i`` small
    adders) into a register, then, per lane independently, ``y = p // Wt`` (a restoring
    divider with ``log2(max_tile_h)`` steps) and ``pos = p + y*(S-1)`` into the buffer. A row
    is written at the edge after the one that takes its word, and readable from the cycle
    after (every ACT word is followed by at least one other word before a WGT entry can read
    it).
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_word_layout(cfg), always_ready=True)),
            "tile": In(_tile_layout(cfg)),
            "clear": In(1),
            "read": In(_row_read_signature(cfg.act_depth, _act_row_layout(cfg))),
            "swap": In(1),
            "i_ram": In(_ram_write_layout(cfg)),
            "probe_write": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        row_layout = _act_row_layout(cfg)
        m.submodules.act_buffer = buf = _ActBuffer(cfg.act_depth, row_layout, ram_banks(cfg),
                                                   _ram_write_layout(cfg))
        wiring.connect(m, wiring.flipped(self.read), buf.read)
        m.d.comb += [buf.swap.eq(self.swap), buf.o_w.eq(self.i_ram)]
        word = self.i.payload
        p_width = _bits(cfg.max_tile_h * cfg.max_tile_w + (_MAX_RUN + 1) * cfg.i)

        # Stage 1: lane positions in the flattened tile.
        act_wr = Signal(range(cfg.act_depth + 1))
        cursor = Signal(p_width)
        positions, nxt = _prefix_positions(m, cursor, word, cfg.i, p_width, "ad")
        s1_valid, s1_last = Signal(), Signal()
        s1_addr = Signal(range(cfg.act_depth + 1))
        s1_value = Signal(data.ArrayLayout(signed(cfg.data_width), cfg.i))
        s1_p = Signal(data.ArrayLayout(unsigned(p_width), cfg.i))
        take = self.i.valid
        m.d.sync += s1_valid.eq(take)
        with m.If(take):
            m.d.sync += [s1_last.eq(word.last), s1_addr.eq(act_wr), act_wr.eq(act_wr + 1),
                         cursor.eq(Mux(word.last, 0, nxt))]
            m.d.sync += [s1_value[j].eq(Mux(j < word.count, word.lanes[j].value, 0))
                         for j in range(cfg.i)]
            m.d.sync += [s1_p[j].eq(positions[j]) for j in range(cfg.i)]
        with m.If(self.clear):
            m.d.sync += [act_wr.eq(0), cursor.eq(0)]

        # Stage 2: rows and columns, frame offsets, the buffer write.
        row_in = Signal(row_layout)
        s_minus_1 = Signal(range(max(cfg.max_s, 2)))
        m.d.comb += s_minus_1.eq(self.tile.s - 1)
        for j in range(cfg.i):
            rem, takes = _divide(m, s1_p[j], self.tile.wt, p_width, f"ad{j}",
                                 bits=_bits(cfg.max_tile_h - 1))
            m.d.comb += [row_in.lanes[j].value.eq(s1_value[j]),
                         row_in.lanes[j].pos.eq(s1_p[j] + _scaled(takes, s_minus_1))]
        m.d.comb += [buf.w_en.eq(s1_valid), buf.w_addr.eq(s1_addr), buf.w_data.eq(row_in),
                     buf.w_last.eq(s1_last), self.probe_write.eq(s1_valid)]
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
        its final word. Not ready while the FIFO and the decoder hold ``wt_depth`` entries.
    tile : In(_tile_layout(cfg))
        Tile geometry; ``s``, ``pitch`` and ``wtop`` are used.
    clear : In(1)
        Start over (a CONFIG word): the cursor at (r, s, k) = (0, 0, 0).
    o : Out(stream.Signature(_weight_entry_layout(cfg)))
        The head of the FIFO: ``f`` (value, base) lanes and ``last`` (the block's final entry).
    busy : Out(1)
        An entry is in the decoder or the FIFO.

    Timing
    ------
    One word per cycle while fewer than ``wt_depth`` entries are in the decoder and the FIFO;
    three stages: the lanes' positions ``q = (r*S + s)*kc + k`` in the block (a running cursor
    plus the runs), then per lane ``(rs, k) = divmod(q, kc)`` (a constant divisor) and
    ``(r, s) = divmod(rs, S)`` (a restoring divider with ``log2(max_r)`` steps), then the
    ``base`` shift-and-add sums into the FIFO. An entry is on ``o`` from the third cycle after
    the word is taken (:data:`WEIGHT_ENTRY_DELAY`).
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_word_layout(cfg))),
            "tile": In(_tile_layout(cfg)),
            "clear": In(1),
            "o": Out(stream.Signature(_weight_entry_layout(cfg))),
            "busy": Out(1),
            "probe_push": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        went = _weight_entry_layout(cfg)
        # At least two entries stored (a one-entry queue has 0-bit pointers); `i.ready` keeps
        # the fill to wt_depth.
        m.submodules.weight_fifo = fifo = _Queue(went.size, max(cfg.wt_depth, 2))
        word, tile = self.i.payload, self.tile
        q_width = _wgt_position_bits(cfg)
        values = data.ArrayLayout(signed(cfg.data_width), cfg.f)

        # Stage 1: lane positions in the flattened block.
        cursor = Signal(q_width)
        positions, nxt = _prefix_positions(m, cursor, word, cfg.f, q_width, "wd")
        # The stages' data registers load once per WGT word, clock-gated (its take, then the
        # first stage's valid): every word taken becomes one entry pushed.
        s1_valid, s1_last = Signal(), Signal()
        s1_value = Signal(values)
        s1_q = Signal(data.ArrayLayout(unsigned(q_width), cfg.f))
        take = self.i.valid & self.i.ready
        m.d.sync += s1_valid.eq(take)
        with m.If(take):
            m.d.sync += cursor.eq(Mux(word.last, 0, nxt))
        m.d.comb += Cat(s1_last, s1_value, s1_q).eq(gated_register(
            m, platform, "s1", Cat(word.last,
                                   Cat(Mux(j < word.count, word.lanes[j].value, 0)
                                       [:cfg.data_width] for j in range(cfg.f)),
                                   Cat(positions)), take))
        with m.If(self.clear):
            m.d.sync += cursor.eq(0)

        # Stage 2: (r, s, k) of every lane.
        coords = _wgt_coords_layout(cfg)
        s2_valid, s2_last = Signal(), Signal()
        s2_value = Signal(values)
        s2 = Signal(data.ArrayLayout(coords, cfg.f))
        s2_d = Signal.like(s2)
        m.d.sync += s2_valid.eq(s1_valid)
        for j in range(cfg.f):
            k, takes_k = _divide(m, s1_q[j], Const(cfg.kc), q_width, f"wd{j}k",
                                 bits=_bits(cfg.max_r * cfg.max_s - 1))
            rs = Signal(range(cfg.max_r * cfg.max_s * 2), name=f"wd{j}_rs")
            m.d.comb += rs.eq(_scaled(takes_k, Const(1, 1)))
            sj, takes_s = _divide(m, rs, tile.s, rs.shape(), f"wd{j}s",
                                  bits=_bits(cfg.max_r - 1))
            m.d.comb += [s2_d[j].k.eq(k), s2_d[j].s.eq(sj),
                         s2_d[j].r.eq(_scaled(takes_s, Const(1, 1)))]
        m.d.comb += Cat(s2_last, s2_value, s2).eq(gated_register(
            m, platform, "s2", Cat(s1_last, s1_value, s2_d), s1_valid))

        # Stage 3: accumulator-address bases into the FIFO.
        plane = _known_low_bits(tile.pitch, cfg.banks // cfg.f, cfg.banks)
        entry = Signal(went)
        for j in range(cfg.f):
            kb = _scaled([(b, s2[j].k[b]) for b in range(len(s2[j].k))], plane)
            rw = _scaled([(b, s2[j].r[b]) for b in range(len(s2[j].r))], tile.wacc)
            m.d.comb += [entry.lanes[j].value.eq(s2_value[j]),
                         entry.lanes[j].base.eq(kb + tile.wtop - rw - s2[j].s)]
        m.d.comb += entry.last.eq(s2_last)

        inflight = Signal(range(cfg.wt_depth + 3))
        m.d.comb += inflight.eq(fifo.level + s1_valid + s2_valid)
        m.d.comb += [self.i.ready.eq(inflight < cfg.wt_depth),
                     fifo.w_en.eq(s2_valid), fifo.w_data.eq(entry),
                     self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.o.ready),
                     self.busy.eq(s1_valid | s2_valid | fifo.r_rdy),
                     self.probe_push.eq(s2_valid)]
        return m


class _Multipliers(wiring.Component):
    """The F x I Cartesian-product multiplier array (combinational): ``p[f*I + i] = w[f]*a[i]``,
    the low ``product_width`` bits."""

    def __init__(self, f, i, width, product_width):
        self._f, self._i = f, i
        super().__init__({
            "a": In(data.ArrayLayout(signed(width), i)),
            "w": In(data.ArrayLayout(signed(width), f)),
            "p": Out(data.ArrayLayout(signed(product_width), f * i)),
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
        Weight entries; one is taken when it is issued with the channel's last activation row.
    act : Out(_row_read_signature(cfg.act_depth, _act_row_layout(cfg)))
        Reads the activation row to pair with the head entry.
    rewind : In(1)
        The next entry meets activation row 0 (a CONFIG or DRAIN word; nothing is in flight).
    o : Out(stream.Signature(_products_layout(cfg)))
        The pair's ``f*i`` products with their addresses.
    busy : Out(1)
        A pair is in the row or the product stage.

    Timing
    ------
    Three stages, advancing together when the product stage is empty or hands its pair to
    ``o`` in this cycle (otherwise all three hold: the activation buffer keeps its read data
    while not read). Issue: the head entry and the next row's address (the row-end flags
    choose it) go into the row stage's register and the activation buffer's read. Row: the
    buffer's row (the select of its RAM and bank) and the entry into the product stage's
    registers. Product: the registered row and entry through the ``data_width`` x
    ``data_width`` multipliers and the address adders to ``o``, held while ``o`` is not ready
    (the crossbar stalls it on conflicts). One pair per cycle; a pair issued at cycle ``a`` is
    offered from ``a + PRODUCT_LATENCY`` (:data:`PRODUCT_LATENCY`), later when the pair ahead
    waits for the crossbar. The row register cuts what was the PE's longest path (the IARAM's
    bank select, then the multipliers, into the crossbar's register).
    After an entry's last row the next entry of the same (group, channel) block rewinds to the
    channel's first row, the next block's goes on to the following channel.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i_wgt": In(stream.Signature(_weight_entry_layout(cfg))),
            "act": Out(_row_read_signature(cfg.act_depth, _act_row_layout(cfg))),
            "rewind": In(1),
            "o": Out(stream.Signature(_products_layout(cfg))),
            "busy": Out(1),
            "probe_pair": Out(1),
            "probe_mul": Out(cfg.f * cfg.i),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.multipliers = mul = _Multipliers(cfg.f, cfg.i, cfg.data_width,
                                                      _product_bits(cfg))
        head, act, out = self.i_wgt.payload, self.act.data, self.o.payload

        # Issue stage. The three stages advance together (``advance``): when the product
        # stage is empty or hands its pair to ``o`` in this cycle.
        chan_start = Signal(range(cfg.act_depth + 1))     # first row of the current channel
        cur_row = Signal(range(cfg.act_depth + 1))
        r_valid, p_valid, advance = Signal(), Signal(), Signal()
        r_entry = Signal(_weight_entry_layout(cfg))
        issue = Signal()
        m.d.comb += [advance.eq(~p_valid | self.o.ready),
                     issue.eq(self.i_wgt.valid & advance),
                     self.act.addr.eq(cur_row), self.act.en.eq(issue),
                     self.i_wgt.ready.eq(issue & self.act.last)]
        with m.If(advance):
            m.d.sync += r_valid.eq(issue)
        # The stages' data registers load once per pair, clock-gated (an issue, then the
        # row stage's advance): each issued pair moves through both and leaves on ``o``.
        m.d.comb += r_entry.eq(gated_register(m, platform, "r_entry", head, issue))
        with m.If(issue):
            with m.If(self.act.last):
                with m.If(head.last):
                    m.d.sync += [chan_start.eq(cur_row + 1), cur_row.eq(cur_row + 1)]
                with m.Else():
                    m.d.sync += cur_row.eq(chan_start)
            with m.Else():
                m.d.sync += cur_row.eq(cur_row + 1)
        with m.If(self.rewind):
            m.d.sync += [chan_start.eq(0), cur_row.eq(0)]

        # Row stage: the buffer's row (read at the issue edge, held by the buffer while the
        # stages stand still) and the entry into the product stage's registers.
        p_row = Signal(_act_row_layout(cfg))
        p_entry = Signal(_weight_entry_layout(cfg))
        with m.If(advance):
            m.d.sync += p_valid.eq(r_valid)
        m.d.comb += Cat(p_row, p_entry).eq(gated_register(
            m, platform, "p_pair", Cat(act, r_entry), advance & r_valid))

        # Product stage.
        for i in range(cfg.i):
            m.d.comb += mul.a[i].eq(p_row.lanes[i].value)
        for f in range(cfg.f):
            m.d.comb += mul.w[f].eq(p_entry.lanes[f].value)
            for i in range(cfg.i):
                j = f * cfg.i + i
                m.d.comb += [
                    out[j].live.eq((p_row.lanes[i].value != 0) & (p_entry.lanes[f].value != 0)),
                    out[j].addr.eq(p_row.lanes[i].pos + p_entry.lanes[f].base),
                    out[j].value.eq(mul.p[j]),
                ]
        m.d.comb += [self.o.valid.eq(p_valid), self.busy.eq(r_valid | p_valid)]
        # Energy probes (Scnn.probes): a pair leaves the product stage; its live products.
        fire = self.o.valid & self.o.ready
        m.d.comb += [self.probe_pair.eq(fire),
                     self.probe_mul.eq(Mux(fire, Cat(p.live for p in out), 0))]
        return m


class _Crossbar(wiring.Component):
    """Two product registers, per-bank fixed-priority arbitration, the scatter crossbar from
    their ``2 x F*I`` products to the A banks, and the conflict-stall counter.

    The *newer* register takes a vector pair from ``i``; the *older* one holds the leftovers
    of the previous pair. Every cycle each bank grants its oldest requester (older register
    first, then lowest index). When the older register has nothing left after the grants,
    the newer register's leftovers become the older ones and a new pair may load
    (``i.ready``); otherwise both keep their leftovers and the multiplier array stalls (a
    conflict stall). The two registers take turns rather than copy: a pair loads into the
    register that has just emptied, which then is the newer, and a 1-bit pointer says which
    is older; so a register's addresses and values load once per pair, behind clock gates
    (:func:`sparsegen.hw.gate.gated_register`), where a copy loaded the older register almost
    every cycle. Only the live bits follow the grants every cycle.

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
    chain to a grant, then the per-bank selection of row and product into the banks' read
    (the add happens in the banks' next cycle).
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_products_layout(cfg))),
            "o": Out(_bank_writes_layout(cfg)),
            "idle": Out(1),
            "conflict_stalls": Out(32),
            "probe_grant": Out(cfg.banks),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        n, lg = cfg.f * cfg.i, _log2(cfg.banks)
        payload = self.i.payload
        # Two product registers that take turns (``older`` names the one holding the older
        # pair): a pair loads into the register that has just emptied, so each register's
        # addresses and values load once per pair, clock-gated (``load``), and never move;
        # only the live bits follow the grants every cycle.
        older = Signal()
        live = [Signal(n, name=f"live{r}") for r in range(2)]
        load = [Signal(name=f"load{r}") for r in range(2)]
        entry = data.StructLayout({"addr": unsigned(cfg.addr_width),
                                   "value": signed(_product_bits(cfg))})
        regs = []
        for r in range(2):
            held = Signal(data.ArrayLayout(entry, n), name=f"pair{r}")
            m.d.comb += held.eq(gated_register(
                m, platform, f"pair{r}", Cat(Cat(p.addr, p.value) for p in payload), load[r]))
            regs.append(held)
        bank = [[regs[r][j].addr[:lg] for j in range(n)] for r in range(2)]
        # Per bank the oldest pending product wins: the older register first, then the lowest
        # index. Within a register a product is blocked by a lower index on its bank; across,
        # the newer register's by any of the older's.
        granted = [Signal(n, name=f"granted{r}") for r in range(2)]
        for r in range(2):
            newer_here = older != r
            for j in range(n):
                within = Const(0, 1)
                for k in range(j):
                    within = within | (live[r][k] & (bank[r][k] == bank[r][j]))
                cross = Const(0, 1)
                for k in range(n):
                    cross = cross | (live[1 - r][k] & (bank[1 - r][k] == bank[r][j]))
                m.d.comb += granted[r][j].eq(live[r][j] & ~within & ~(newer_here & cross))
        left = [Signal(n, name=f"left{r}") for r in range(2)]
        m.d.comb += [left[r].eq(live[r] & ~granted[r]) for r in range(2)]
        # Reduced before the pointer selects them: ``idle`` (into the PE's CONFIG/DRAIN
        # acceptance) does not wait for it at all.
        empty = [Signal(name=f"empty{r}") for r in range(2)]
        m.d.comb += [empty[r].eq(left[r] == 0) for r in range(2)]
        old_empty = Signal()
        m.d.comb += [old_empty.eq(Mux(older, empty[1], empty[0])),
                     self.i.ready.eq(old_empty), self.idle.eq(empty[0] & empty[1])]
        for b in range(cfg.banks):
            sel = [granted[r][j] & (bank[r][j] == b) for r in range(2) for j in range(n)]
            src = [regs[r][j] for r in range(2) for j in range(n)]
            row = Const(0, unsigned(_bits(cfg.bank_depth - 1)))
            val = Const(0, signed(_product_bits(cfg)))
            for pick, p in zip(sel, src):
                row = row | Mux(pick, p.addr[lg:], 0)
                val = val | Mux(pick, p.value, 0)
            m.d.comb += self.probe_grant[b].eq(self.o[b].en)
            m.d.comb += [self.o[b].en.eq(Cat(*sel).any()), self.o[b].row.eq(row),
                         self.o[b].value.eq(val)]

        # When the older register empties, the newer becomes the older (its leftovers stay
        # where they are) and the emptied one takes the next pair.
        with m.If(old_empty):
            m.d.sync += older.eq(~older)
        for r in range(2):
            m.d.comb += load[r].eq(old_empty & self.i.valid & (older == r))
            m.d.sync += live[r].eq(Mux(load[r], Cat(p.live for p in payload), left[r]))
        stalls = Signal(32)
        with m.If(~old_empty):
            m.d.sync += stalls.eq(stalls + 1)
        m.d.comb += self.conflict_stalls.eq(stalls)
        return m


class _BankSet(wiring.Component):
    """A banks of ``depth`` accumulators, each a synchronous 1R1W memory (an SRAM macro where
    it is large) with a pipelined read-modify-write: one half of :class:`_Banks`.

    Members, per bank: ``row`` (the row read at the edge) with ``en`` (write it back in the
    next cycle), ``clear`` (as 0), ``halo`` (add ``halo_add`` instead of ``add``) and ``add``
    (a product); ``read`` (read ``row`` without writing it back: a walk's send); ``halo_add``
    (the received partial sum, given in the write cycle) and ``rdata`` (in the write cycle: the
    row read at the previous edge, forwarded from the write of that same cycle when it hit the
    same row). A bank's read enable is ``en | read``: its read register loads (and its clock
    gate opens) only for a row someone needs, as an SRAM's or a gated register file's would;
    otherwise it holds, and ``rdata`` is meaningless in the next cycle (nothing uses it then).

    Timing
    ------
    A request at cycle ``t`` reads at the edge ending ``t``; at ``t + 1`` ``rdata`` holds the
    row and ``rdata + add`` (or 0) is written at the edge ending ``t + 1``. A request for the
    row being written in its own cycle reads the old value; the forwarding register replaces
    it with the value written, so back-to-back requests to one row add up. The forwarding
    decision is made in the read's own cycle (a read, the write of that edge, the same row),
    so a read register that skipped cycles in between changes nothing. The request's
    operation, row and addend and the forwarded sum are clock-gated registers
    (:func:`sparsegen.hw.gate.gated_register`) that load only with a request and a write:
    their gates open once per bank write each. Longest path: the
    memory's read (flip-flops: the registered row through the ``depth``:1 read multiplexer),
    the forwarding multiplexer and the ``acc_width`` adder into the write.
    """

    def __init__(self, banks, depth, acc_width, add_width):
        self._banks, self._depth, self._acc = banks, depth, acc_width
        rows = data.ArrayLayout(unsigned(_bits(depth - 1)), banks)
        accs = data.ArrayLayout(signed(acc_width), banks)
        super().__init__({
            "en": In(banks), "clear": In(banks), "halo": In(banks), "row": In(rows),
            "read": In(banks), "add": In(data.ArrayLayout(signed(add_width), banks)),
            "halo_add": In(accs), "rdata": Out(accs),
        })

    def elaborate(self, platform):
        m = Module()
        for b in range(self._banks):
            mem, m.submodules[f"bank{b}"] = sync_memory(platform, self._depth, self._acc)
            en_q = Signal(name=f"en{b}_q")
            fwd = Signal(name=f"fwd{b}")
            wdata = Signal(signed(self._acc), name=f"wdata{b}")
            # The request's operation, row and addend load only with a request (its clock
            # gate opens once per bank write), the forwarded sum only with a write: both are
            # read only in the cycle after (``en_q``, ``fwd``).
            req = Signal(_bank_request_layout(len(self.row[b]), len(self.add[b])),
                         name=f"req{b}_q")
            m.d.comb += req.eq(gated_register(
                m, platform, f"req{b}", Cat(self.clear[b], self.halo[b], self.row[b],
                                            self.add[b]), self.en[b]))
            clear_q, halo_q, row_q, add_q = req.clear, req.halo, req.row, req.add
            fwd_data = Signal(signed(self._acc), name=f"fwd{b}_data")
            m.d.comb += fwd_data.eq(gated_register(m, platform, f"fwd{b}", wdata, en_q))
            m.d.sync += en_q.eq(self.en[b])
            m.d.comb += [
                mem.r_addr.eq(self.row[b]), mem.r_en.eq(self.en[b] | self.read[b]),
                self.rdata[b].eq(Mux(fwd, fwd_data, mem.r_data.as_signed())),
                wdata.eq(Mux(clear_q, 0,
                             self.rdata[b] + Mux(halo_q, self.halo_add[b], add_q))),
                mem.w_addr.eq(row_q), mem.w_en.eq(en_q), mem.w_data.eq(wdata),
            ]
            m.d.sync += fwd.eq(en_q & (self.row[b] == row_q))
        return m


class _Banks(wiring.Component):
    """The double-buffered accumulator banks: two sets of ``banks`` x ``depth`` accumulators
    (``half0``, ``half1``, each a :class:`_BankSet`: a 1R1W memory per bank with its own
    read-modify-write), one taking the crossbar's products while the row walk reads, adds into
    and clears the other, each set through its own ports.

    Members: ``active`` (the set the products go to, the other is walked); per bank the
    product request ``p_en``/``p_row``/``p_add`` and the walk's request ``en``/``clear``/
    ``halo``/``row`` (see :class:`_BankSet`); ``halo_add`` (the received partial sums, given in
    the write cycle) and ``rdata`` (``rdata[h]``: set ``h``'s rows in the write cycle; the
    reader selects the walked set); ``probe_read``
    and ``probe_write`` (the energy probes of :meth:`Scnn.probes`: bank ``b`` of set ``h`` at
    ``h * banks + b``, read: a request, or ``w_read``, a walk read that writes nothing).

    Timing
    ------
    As :class:`_BankSet`. ``active`` routes the requests of its cycle; a request's write
    happens in its own set the cycle after, whatever ``active`` is then (the halves may flip
    between a request and its write). Longest path: the set's.
    """

    def __init__(self, banks, depth, acc_width, add_width):
        self._banks, self._args = banks, (banks, depth, acc_width, add_width)
        rows = data.ArrayLayout(unsigned(_bits(depth - 1)), banks)
        accs = data.ArrayLayout(signed(acc_width), banks)
        super().__init__({
            "active": In(1),
            "p_en": In(banks), "p_row": In(rows),
            "p_add": In(data.ArrayLayout(signed(add_width), banks)),
            "en": In(banks), "clear": In(banks), "halo": In(banks), "row": In(rows),
            "w_read": In(banks),
            "halo_add": In(accs), "rdata": Out(data.ArrayLayout(accs, 2)),
            "probe_read": Out(2 * banks), "probe_write": Out(2 * banks),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._banks
        for h in range(2):
            m.submodules[f"half{h}"] = half = _BankSet(*self._args)
            m.d.comb += self.rdata[h].eq(half.rdata)
            mine = self.active == h
            for b in range(n):
                en = Mux(mine, self.p_en[b], self.en[b])
                m.d.comb += [
                    half.en[b].eq(en),
                    half.read[b].eq(~mine & self.w_read[b]),
                    half.clear[b].eq(~mine & self.clear[b]),
                    half.halo[b].eq(~mine & self.halo[b]),
                    half.row[b].eq(Mux(mine, self.p_row[b], self.row[b])),
                    half.add[b].eq(self.p_add[b]),
                    half.halo_add[b].eq(self.halo_add[b]),
                    self.probe_write[h * n + b].eq(en),
                    self.probe_read[h * n + b].eq(en | half.read[b]),     # its read enable
                ]
        return m


class _Accumulators(wiring.Component):
    """The double-buffered accumulator banks (``banks``, :class:`_Banks`) and what drives their
    ports: crossbar products into the active half; on the other half the row walk's requests:
    in the halo phases a received row segment added in and the sent one read (and,
    horizontally, cleared); in the drain a frame row's own columns read and cleared.

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i_banks : In(_bank_writes_layout(cfg))
        The crossbar's granted products, added into the ``active`` half.
    active : In(1)
        The half the products go to; frame rows are walked on the other.
    i_row : In(stream.Signature(_frame_row_layout(cfg)))
        The frame row of the halo exchange or drain; halo rows are taken every cycle, drain
        rows while the drain has room (``room``).
    room : In(1)
        The drain can take one more row.
    o_row : Out(stream.Signature(_drain_row_layout(cfg), always_ready=True))
        In the DRAIN phase, the row's ``max_tile_w`` own columns in order after the ReLU
        (``own``, ``first`` and ``last`` passed on), from a register.
    inflight : Out(range(3))
        Drain rows requested and not yet on ``o_row`` or on it now.
    tile : In(_tile_layout(cfg))
        Geometry of the walked group; ``wt``, ``s``, ``relu``, ``ht_wacc`` and ``hedge`` are
        used.
    i_halo_h, i_halo_v : In(halo_layout(cfg))
        Partial sums received in the HALO_H (columns ``Wt..Wt+S-2``) and HALO_V (rows
        ``Ht..Ht+R-2``) phases, in the send's write cycle (registered here).
    o_halo : Out(halo_layout(cfg))
        Partial sums sent: a row's left ``S-1`` columns (HALO_H), then the own columns of a top
        row (HALO_V); lanes beyond them are zero.

    Timing
    ------
    Three stages. Request (the cycle a row is walked or a product granted): per bank, the
    row's window (send, receive, drain) from its base address, the bank row and the
    operation into the banks' read. Write (the next cycle): the read rows rotated from banks
    to the window's lanes: sent on ``o_halo`` (the neighbour registers them, horizontally
    and vertically alike, and adds them one cycle later, when its receiving request, the
    second cycle of the row, is in its write cycle), or, for a drain
    row, through the ReLU into the drain row register (the third stage, ``o_row``). One
    product and one walk request per bank and cycle, each on its own half.
    """

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i_banks": In(_bank_writes_layout(cfg)),
            "active": In(1),
            "i_row": In(stream.Signature(_frame_row_layout(cfg))),
            "room": In(1),
            "o_row": Out(stream.Signature(_drain_row_layout(cfg), always_ready=True)),
            "inflight": Out(range(3)),
            "tile": In(_tile_layout(cfg)),
            "i_halo_h": In(halo_layout(cfg)),
            "i_halo_v": In(halo_layout(cfg)),
            "o_halo": Out(halo_layout(cfg)),
            "probe_read": Out(2 * cfg.banks),
            "probe_write": Out(2 * cfg.banks),
            "probe_hsend": Out(cfg.halo_lanes),
            "probe_vsend": Out(cfg.halo_lanes),
            "probe_drain": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lg = _log2(cfg.banks)
        m.submodules.banks = banks = _Banks(cfg.banks, cfg.bank_depth, cfg.acc_width,
                                            _product_bits(cfg))
        m.d.comb += [banks.active.eq(self.active),
                     self.probe_read.eq(banks.probe_read), self.probe_write.eq(banks.probe_write)]
        for b in range(cfg.banks):
            product = self.i_banks[b]
            m.d.comb += [banks.p_en[b].eq(product.en), banks.p_row[b].eq(product.row),
                         banks.p_add[b].eq(product.value)]
        row, tile = self.i_row.payload, self.tile
        h_phase = self.i_row.valid & (row.phase == _State.HALO_H)
        h_send = h_phase & ~row.recv
        h_recv = h_phase & row.recv
        v_send = self.i_row.valid & (row.phase == _State.HALO_V) & ~row.recv
        v_recv = self.i_row.valid & (row.phase == _State.HALO_V) & row.recv
        d_phase = self.i_row.valid & (row.phase == _State.DRAIN)
        m.d.comb += self.i_row.ready.eq(Mux(row.phase == _State.DRAIN, self.room, 1))

        # Request stage: row windows: send (this PE's halo), receive (the neighbour's), drain
        # (own columns).
        send_base = Signal(_sum_bits(cfg))
        recv_base = Signal(_sum_bits(cfg))
        send_n = Signal(range(cfg.halo_lanes + 1))
        recv_n = Signal(range(cfg.halo_lanes + 1))
        m.d.comb += [
            send_base.eq(Mux(h_phase, row.base, row.base + tile.s - 1)),
            recv_base.eq(Mux(h_phase, row.base + tile.wt, row.base + tile.s - 1 + tile.ht_wacc)),
            send_n.eq(Mux(h_send, tile.s - 1, Mux(v_send, tile.wt, 0))),
            # A column group's rightmost PE adds nothing horizontally (its right neighbour
            # is in another group); the walk keeps its two cycles a row all the same.
            recv_n.eq(Mux(h_recv, Mux(tile.hedge, 0, tile.s - 1), Mux(v_recv, tile.wt, 0))),
        ]
        # The drain window is the send window: row.base + S - 1 outside HALO_H.
        recv_q = []                     # per bank: its received lane, one-hot
        for b in range(cfg.banks):
            o_r = Signal(lg, name=f"recv_off{b}")
            o_s = Signal(lg, name=f"send_off{b}")
            m.d.comb += [o_r.eq(b - recv_base[:lg]), o_s.eq(b - send_base[:lg])]
            hit_r = o_r < recv_n
            hit_s = o_s < send_n
            hit_d = o_s < tile.wt
            row_r = (recv_base + o_r)[lg:]
            row_s = (send_base + o_s)[lg:]
            # Energy probes (Scnn.probes): a vertical send reads without writing back.
            m.d.comb += banks.w_read[b].eq(v_send & hit_s)
            sel = Signal(cfg.halo_lanes, name=f"recv{b}_q")
            m.d.sync += sel.eq(Cat(o_r == j for j in range(cfg.halo_lanes)))
            recv_q.append(sel)
            with m.If(h_recv | v_recv):
                m.d.comb += [banks.en[b].eq(hit_r), banks.halo[b].eq(1), banks.row[b].eq(row_r)]
            with m.Elif(h_send):
                m.d.comb += [banks.en[b].eq(hit_s), banks.clear[b].eq(1), banks.row[b].eq(row_s)]
            with m.Elif(v_send | d_phase):
                m.d.comb += [banks.en[b].eq(d_phase & hit_d & self.room), banks.clear[b].eq(1),
                             banks.row[b].eq(row_s)]

        # Write stage: halo lanes in, halo lanes out, the drain row's columns. The rotation
        # of banks to lanes is an AND-OR over a registered one-hot select per lane (a lane
        # outside the window selects nothing and reads 0): one select register per (lane,
        # bank) drives only its lane's bits, where a shared binary offset fanned out to every
        # lane's multiplexer through a chain of buffers. The walked half is part of the
        # one-hot select (one register per lane, half and bank) for the same reason: a shared
        # half-select register in front of the rotation drove every bank's bits and was the
        # array's critical path (7.75 ns against 7.21 single-buffered). The receiving side
        # selects its lane the same way (a one-hot select per bank, lane and phase; a binary
        # lane register and a shared phase bit drove every bank's bits into both halves'
        # adders).
        w_drain = Signal()
        w_flags = Signal(data.StructLayout({"own": 1, "first": 1, "last": 1}))
        halo_q = Signal(halo_layout(cfg))
        m.d.sync += [w_drain.eq(d_phase & self.room),
                     halo_q.eq(Mux(row.phase == _State.HALO_H, self.i_halo_h, self.i_halo_v)),
                     w_flags.own.eq(row.own), w_flags.first.eq(row.first),
                     w_flags.last.eq(row.last)]
        for b in range(cfg.banks):
            received = Const(0, signed(cfg.acc_width))
            for j in range(cfg.halo_lanes):
                received = received | Mux(recv_q[b][j], halo_q[j], 0)
            m.d.comb += banks.halo_add[b].eq(received)
        rotated = []
        for j in range(cfg.halo_lanes):
            used = Mux(d_phase, _below(j, tile.wt), _below(j, send_n))
            lane = Const(0, signed(cfg.acc_width))
            for h in range(2):
                for b in range(cfg.banks):
                    pick = Signal(name=f"pick{j}_{h}_{b}")
                    m.d.sync += pick.eq(used & (self.active != h)
                                        & ((send_base + j)[:lg] == b))
                    lane = lane | Mux(pick, banks.rdata[h][b], 0)
            rot = Signal(signed(cfg.acc_width), name=f"lane{j}")
            m.d.comb += rot.eq(lane)
            rotated.append(rot)
        m.d.comb += [self.o_halo[j].eq(rotated[j]) for j in range(cfg.halo_lanes)]
        m.d.comb += [self.probe_hsend[j].eq(h_send & _below(j, send_n))
                     for j in range(cfg.halo_lanes)]
        m.d.comb += [self.probe_vsend[j].eq(v_send & _below(j, send_n))
                     for j in range(cfg.halo_lanes)]

        # Drain row register: the ReLU and the lanes' zero and in-tile flags.
        out = self.o_row.payload
        d_valid = Signal()
        m.d.sync += d_valid.eq(w_drain)
        m.d.comb += [self.o_row.valid.eq(d_valid), self.inflight.eq(w_drain + d_valid)]
        # A clock-gated register: it loads once per drain row (``probe_drain``).
        drained = Signal(_drain_row_layout(cfg))
        m.d.comb += [drained.own.eq(w_flags.own), drained.first.eq(w_flags.first),
                     drained.last.eq(w_flags.last)]
        for j in range(cfg.max_tile_w):
            raw = rotated[j]                    # max_tile_w <= halo_lanes
            v = Signal(signed(cfg.acc_width), name=f"relu{j}")
            m.d.comb += v.eq(Mux(tile.relu & raw[-1], 0, raw))
            m.d.comb += [drained.values[j].eq(v), drained.nz[j].eq(v != 0),
                         drained.valid[j].eq(_below(j, tile.wt))]
        m.d.comb += [out.eq(gated_register(m, platform, "drain_row", drained, w_drain)),
                     self.probe_drain.eq(w_drain)]
        return m


class _Drain(wiring.Component):
    """The drain: the output mask, run-length re-compression of the own frame rows onto ``o``
    (the run of zeros carried from row to row within a channel, into a small output queue),
    and the gearbox that packs the same non-zeros, with their frame offsets for the next
    layer, into rows of ``i`` for the OARAM.

    Parameters
    ----------
    cfg : ScnnPEConfig

    Members
    -------
    i : In(stream.Signature(_drain_row_layout(cfg), always_ready=True))
        Frame rows after the ReLU; halo rows (not ``own``) are dropped. ``first`` restarts the
        run count and the row count ``y`` (a new channel).
    tile : In(_tile_layout(cfg))
        ``ht``, the output mask (``y_lo`` ...) and ``wacc_out`` are used.
    swap : In(1)
        A new layer: the OARAM is written from row 0 again.
    inflight : In(range(3))
        Rows requested from the accumulators that have not reached ``i`` yet or are on it.
    room : Out(1)
        One more row may be requested: the queue will have a place for it whatever ``o``
        does.
    o : Out(stream.Signature(pe_output_layout(cfg)))
        The re-compressed rows (see :class:`ScnnPE`), from the queue. Outputs outside the
        mask are zeros.
    o_ram : Out(_ram_write_layout(cfg))
        OARAM rows, one per bank at most: each channel's in-mask non-zeros in row-major order,
        ``i`` per row as ``(value, pos)`` with ``value`` saturated to ``data_width`` and
        ``pos = y*(Wt+S_out-1) + x`` (the activation side's format), the channel's last row
        marked ``last``; an all-zero channel is one row of zeros. Rows past ``act_depth`` are
        dropped.
    busy : Out(1)
        A row is in flight towards the OARAM.

    Timing
    ------
    A row on ``i`` is compressed and queued at the edge (a chain through the ``max_tile_w``
    lanes, each a zero test and a 4-bit increment) and leaves on ``o`` from the next cycle.
    ``room`` counts the queue's rows, those in flight and one leaving this cycle, so without
    back-pressure the drain never waits. :data:`DRAIN_LATENCY` counts this stage. The gearbox
    takes every row without waiting, in three stages: the row's in-mask non-zeros, saturated,
    and its offset base (a counter, no multiplier) into registers; their places after the
    carry of the previous row (a prefix count over the lanes), the full rows and the new carry
    into the packing register; the rows' rotation to their banks into the OARAM at the edge
    (:func:`ram_banks` makes every row's bank distinct). :data:`OARAM_WRITE_LATENCY`.
    """

    DEPTH = 3

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(_drain_row_layout(cfg), always_ready=True)),
            "tile": In(_tile_layout(cfg)),
            "swap": In(1),
            "inflight": In(range(3)),
            "room": Out(1),
            "o": Out(stream.Signature(pe_output_layout(cfg))),
            "o_ram": Out(_ram_write_layout(cfg)),
            "busy": Out(1),
            "probe_owrite": Out(ram_banks(cfg)),
            "probe_push": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        layout = pe_output_layout(cfg)
        m.submodules.queue = queue = _Queue(layout.size, self.DEPTH)
        row, tile = self.i.payload, self.tile
        push = self.i.valid & row.own

        # The output mask: this row (y counted from the channel's first own row) and columns.
        y_next = Signal(range(cfg.max_tile_h + 1))
        y = Signal(range(cfg.max_tile_h + 1))
        m.d.comb += y.eq(Mux(row.first, 0, y_next))
        row_in = (y >= tile.y_lo) & (y < tile.y_hi)
        values, nzs = [], []
        for j in range(cfg.max_tile_w):
            keep = row_in & (tile.x_lo <= j) & _below(j, tile.x_hi)
            v = Signal(signed(cfg.acc_width), name=f"masked{j}")
            nz = Signal(name=f"nz{j}")
            m.d.comb += [v.eq(Mux(keep, row.values[j], 0)), nz.eq(keep & row.nz[j])]
            values.append(v)
            nzs.append(nz)

        # Run-length compression onto o.
        out = Signal(layout)
        carry = Signal(RUN_BITS)                    # zeros at the end of the previous row
        cnt = Mux(row.first, 0, carry)
        for j in range(cfg.max_tile_w):
            valid = row.valid[j]
            emit = valid & (nzs[j] | (cnt == _MAX_RUN))
            m.d.comb += [out.lanes[j].value.eq(Mux(emit, values[j], 0)),
                         out.lanes[j].run.eq(Mux(emit, cnt, 0)),
                         out.lanes[j].valid.eq(emit)]
            nxt = Signal(RUN_BITS, name=f"run{j}")
            m.d.comb += nxt.eq(Mux(emit, 0, Mux(valid, cnt + 1, cnt)))
            cnt = nxt
        m.d.comb += out.last.eq(row.last)
        with m.If(push):
            m.d.sync += [carry.eq(cnt), y_next.eq(y + 1)]
        pop = queue.r_rdy & self.o.ready
        used = Signal(range(self.DEPTH + 4))
        m.d.comb += [
            queue.w_en.eq(push), queue.w_data.eq(out),
            self.o.valid.eq(queue.r_rdy), self.o.payload.eq(queue.r_data),
            queue.r_en.eq(self.o.ready),
            used.eq(queue.level + self.inflight - pop),
            self.room.eq(used < self.DEPTH),
            self.probe_push.eq(push),
        ]
        self._gearbox(m, platform, push, y, values, nzs)
        return m

    def _gearbox(self, m, platform, push, y, values, nzs):
        """The OARAM path (see the Timing paragraph of the class)."""
        cfg, tile, row = self._cfg, self.tile, self.i.payload
        entry = _act_row_layout(cfg).members["lanes"].elem_shape
        n_lanes, width = cfg.max_tile_w, cfg.data_width
        nb, lg = ram_banks(cfg), _log2(ram_banks(cfg))
        most = -(-(cfg.i + n_lanes) // cfg.i)              # rows completed by one frame row
        slots = most * cfg.i
        top, bottom = (1 << (width - 1)) - 1, -(1 << (width - 1))

        # Stage 1: saturated in-mask values, their flags, the row's offset base y*(Wt+S_out-1).
        base_next = Signal(entry.members["pos"])
        base = Signal(entry.members["pos"])
        m.d.comb += base.eq(Mux(row.first, 0, base_next))
        # The stages' data registers are clock-gated: they load once per own row (``push``,
        # then ``g1_valid``, the same rows a cycle later).
        g1_valid, g1_end = Signal(), Signal()
        g1_base = Signal.like(base)
        g1_v = Signal(data.ArrayLayout(signed(width), n_lanes))
        g1_nz = Signal(n_lanes)
        m.d.sync += g1_valid.eq(push)
        with m.If(push):
            m.d.sync += base_next.eq(base + tile.wacc_out)
        m.d.comb += Cat(g1_base, g1_end, g1_nz, g1_v).eq(gated_register(
            m, platform, "g1", Cat(base, y == tile.ht - 1, Cat(*nzs),
                                   Cat(Mux(v > top, top, Mux(v < bottom, bottom, v))[:width]
                                       for v in values)), push))

        # Stage 2: pack after the carry: 1 to i entries left by the previous rows of the
        # channel (a complete row waits there until the channel goes on: the row that ends
        # a channel is marked so when it is written), none at a channel's start.
        c_n = Signal(range(cfg.i + 1))
        c_e = Signal(data.ArrayLayout(entry, cfg.i))
        places, count = [], c_n
        for j in range(n_lanes):
            place = Signal(range(slots + 1), name=f"place{j}")
            m.d.comb += place.eq(count)
            places.append(place)
            count = place + g1_nz[j]
        total = Signal(range(slots + 1))
        m.d.comb += total.eq(count)
        packed = Signal(data.ArrayLayout(entry, slots))
        for t in range(slots):
            value, pos = Const(0, signed(width)), Const(0, entry.members["pos"])
            if t < cfg.i:
                here = t < c_n
                value = value | Mux(here, c_e[t].value, 0)
                pos = pos | Mux(here, c_e[t].pos, 0)
            for j in range(max(0, t - cfg.i), n_lanes):           # place_j <= i + j
                here = g1_nz[j] & (places[j] == t)
                value = value | Mux(here, g1_v[j], 0)
                pos = pos | Mux(here, g1_base + j, 0)
            m.d.comb += [packed[t].value.eq(value), packed[t].pos.eq(pos)]
        full = Signal(range(most + 1))         # rows written while the channel goes on
        # total <= most * i: k = most never counts (and would be a constant comparison).
        m.d.comb += full.eq(sum((total > k * cfg.i).as_unsigned() for k in range(1, most)))
        some = Signal(range(most + 1))         # rows when the channel ends: at least one
        m.d.comb += some.eq(Mux(total == 0, 1, full + 1))
        st_valid, st_end = Signal(), Signal()
        st_rows = Signal(range(most + 1))
        st = Signal(data.ArrayLayout(entry, slots))
        m.d.sync += st_valid.eq(g1_valid)
        carried = Signal.like(c_e)              # the entries after the full rows
        for k in range(most):
            with m.If(full == k):
                m.d.comb += [carried[t].eq(packed[k * cfg.i + t]) for t in range(cfg.i)]
        rows_d = Signal.like(st_rows)
        m.d.comb += rows_d.eq(Mux(g1_end, some, full))
        m.d.comb += Cat(st_end, st_rows, st, c_e).eq(gated_register(
            m, platform, "st", Cat(g1_end, rows_d, packed, carried), g1_valid))
        with m.If(g1_valid):
            m.d.sync += c_n.eq(Mux(g1_end, 0, total - full * cfg.i))

        # Stage 3: rows to banks, written at the edge.
        wptr = Signal(range(cfg.act_depth + most + 1))
        with m.If(st_valid & (wptr < cfg.act_depth)):
            m.d.sync += wptr.eq(wptr + st_rows)
        with m.If(self.swap):
            m.d.sync += wptr.eq(0)
        for b in range(nb):
            k = Signal(max(lg, 1), name=f"bank{b}_k")
            m.d.comb += k.eq((b - wptr[:lg]) if lg else 0)
            addr = Signal(range(cfg.act_depth + most + nb), name=f"bank{b}_addr")
            m.d.comb += addr.eq(wptr + k)
            port = self.o_ram[b]
            m.d.comb += [port.en.eq(st_valid & (k < st_rows) & (addr < cfg.act_depth)),
                         port.row.eq(addr[lg:]), port.last.eq(st_end & (k == st_rows - 1))]
            for r in range(min(nb, most)):
                with m.If(k == r):
                    m.d.comb += [port.data.lanes[lane].eq(st[r * cfg.i + lane])
                                 for lane in range(cfg.i)]
        m.d.comb += self.busy.eq((self.inflight != 0) | g1_valid | st_valid)
        # Energy probe (Scnn.probes): the rows stage 2 packs for the OARAM, counted a cycle
        # before their write (so a run's last rows count before its last output leaves).
        w_next = Signal.like(wptr)
        m.d.comb += w_next.eq(Mux(st_valid & (wptr < cfg.act_depth), wptr + st_rows, wptr))
        for k in range(min(nb, most)):
            m.d.comb += self.probe_owrite[k].eq(
                g1_valid & (k < Mux(g1_end, some, full)) & (w_next + k < cfg.act_depth))


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
        Commands (:class:`Cmd`): CONFIG (geometry, output mask; waits until the PE is idle and
        empties the IARAM; with ``geom.swap``, a layer's first word, also until the drained
        rows are in the OARAM, then swaps the RAMs and the OARAM is written from row 0), ACT
        words (channels in order, ``last`` ends a channel; an empty channel is one word with
        ``count = 0``), WGT words (for each channel in order, its
        ``kc x R x S`` block in (r, s, k) order; ``last`` ends it), DRAIN (after the group's
        last channel; waits until idle and until the previous group's walk has ended; then
        flips the accumulator halves). Several CONFIG/ACT/WGT sequences may precede a DRAIN
        (channel passes): CONFIG does not touch the accumulators.
    o : Out(stream.Signature(pe_output_layout(config)))
        The drained tile, ``kc x Ht`` frame rows, channel by channel; the valid lanes of a
        channel's rows are its compressed ``Ht x Wt`` tile (run counting restarts per channel).
        The same outputs go into the OARAM (:class:`_Drain`).
    grid_y, grid_x : In(range(MAX_GRID))
        The PE's place in the array (0 for a lone PE): places the output mask in its tile.
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
    One input word per cycle. ACT words are always accepted; WGT words while the weight
    decoder and FIFO hold fewer than ``wt_depth`` entries (a word's entry can issue
    :data:`WEIGHT_ENTRY_DELAY` cycles after it is taken). The Cartesian stage issues one
    (weight entry, activation row) pair per cycle; the pair spends a cycle in the row stage
    (the activation buffer's read into a register) and one in the product stage (the
    multipliers) and loads into the crossbar :data:`PRODUCT_LATENCY` cycles after its issue,
    unless the crossbar's older register still holds products that lost arbitration (a
    conflict stall, see :class:`_Crossbar`; the product stage then holds its pair, and the row
    stage and the issue wait). A weight entry meets every activation row of its channel (an
    empty channel is one row of zeros), then leaves the FIFO. CONFIG is accepted once the decoder,
    the FIFO and the product stage are empty and the crossbar empties this cycle; DRAIN as CONFIG
    and, in addition, once the previous group's row walk has ended. From the cycle after DRAIN the
    row walk of the group runs on one accumulator half (:func:`walk_cycles`): ``2 kc x
    (Ht+R-1)`` cycles of horizontal halo exchange, ``2 kc x (R-1)`` of vertical exchange, then
    ``kc x (Ht+R-1)`` drain cycles (one frame row each; halo rows are cleared without output);
    each row leaves :data:`DRAIN_LATENCY` cycles after the walk requests it. Meanwhile input is
    taken as before DRAIN and the next group computes into the other half; the next DRAIN
    waits for the walk's end (the cycle after its last), and the stream's last row leaves
    :data:`DRAIN_LATENCY` cycles after the last walk. ``o`` back-pressure stalls the walk when
    the output queue could overflow (and so the next DRAIN, not the other words). A swapping
    CONFIG (a layer's first word) waits for the walk's end too and is taken
    :data:`OARAM_WRITE_LATENCY` cycles after the last drained row entered the drain at the
    earliest. All of this is exactly the model in :func:`sparsegen.sim.scnn.model_cycles`. What
    limits the clock, as measured by ``sparsegen synth`` (sky130hd): with ``synth -noabc``
    (2026-12-02, against ``dense-array`` 16/24's 6.390 ns) the default config 6.47 ns, its
    2 x 2 ``scnn`` 7.12 ns, the PE that ``bench scnn`` synthesizes (816 activation rows)
    7.217 ns and its 2 x 2 array 7.405 ns (``bench timing``, ``bench scnn``). Measured with the
    earlier flow (against 16/24's 6.806 ns): at the default config 6.816 ns (1.00x), the
    product stage (the registered row and entry through the multipliers into a crossbar
    product register; 6.961
    ns before the pipeline registers were clock-gated, hw/gate.py); the 2 x 2 ``scnn``
    7.710 ns (1.13x), the PEs' conflict-stall counters into the array's sum (8.118 ns before
    the clock gating, from a crossbar register to another PE's tile geometry register; both
    measured before the next-tile change below; 7.391 ns, a
    horizontal halo write through ``o_halo`` into the neighbour's bank row, before the
    received halo was registered); the
    2 x 2 array at the ``bench scnn`` configuration 8.080 ns (1.19x; 8.565 ns before), the same
    product stage; the PE that ``bench scnn`` synthesizes (act_depth 512 in
    SRAM macros, 8 x 8 tiles, kc 8, wt_depth 16) 7.658 ns (1.13x) with the clock gating and
    the next-tile change below (a68b2ed: the drain's OARAM write pointer into the write enables
    of the row-end flags; logic 2,289,772 um^2); 8.435 ns (1.24x) with the clock gating but
    before the next-tile change (c72b521), a crossbar product register through the
    grants into ``idle`` and the CONFIG word's load of the tile geometry
    (8.903 ns before the clock gating, the same path through the copying product registers;
    7.660 ns before the output-channel column groups, the drain's OARAM write pointer into the
    write enables of the row-end flags). The CONFIG word's next tile (pitch, group column,
    output mask) is computed outside ``take_config``, which only enables the tile registers:
    with the column groups' mask computed under it, ``take_config`` ran in front of the mask
    multiplier (8.903 ns at the bench configuration); computed outside, measured before the
    clock gating, the bench-config PE closed at 8.043 ns (the product stage) and its 2 x 2
    array at 7.691 ns (the drain's OARAM write pointer). Before the row stage
    (:data:`PRODUCT_LATENCY` 1) the IARAM's read, through the select of its RAM and bank, went
    straight into the multipliers: 7.877 ns at the default config, 8.609 ns (1.265x) at the
    benchmark's.
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
            "grid_y": In(range(MAX_GRID)),
            "grid_x": In(range(MAX_GRID)),
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
        m.d.comb += [block.tile.eq(control.tile) for block in (acts, weights)]
        m.d.comb += [accs.tile.eq(control.walk_tile), accs.active.eq(control.active),
                     drain.tile.eq(control.walk_tile)]
        m.d.comb += [
            control.grid_y.eq(self.grid_y), control.grid_x.eq(self.grid_x),
            control.drain_busy.eq(drain.busy),
            acts.swap.eq(control.swap), drain.swap.eq(control.swap),
            acts.i_ram.eq(drain.o_ram),
            acts.clear.eq(control.new_tile),
            weights.clear.eq(control.new_tile),
            cart.rewind.eq(control.rewind),
            control.idle.eq(~weights.busy & ~cart.busy & xbar.idle),
            accs.room.eq(drain.room),
            drain.inflight.eq(accs.inflight),
            accs.i_banks.eq(xbar.o),
            accs.i_halo_h.eq(self.i_halo_h),
            accs.i_halo_v.eq(self.i_halo_v),
            self.o_halo.eq(accs.o_halo),
            self.conflict_stalls.eq(xbar.conflict_stalls),
        ]
        return m


class Scnn(wiring.Component):
    """A ``pe_rows x pe_cols`` array of :class:`ScnnPE` over a planar-tiled input: activations
    routed to their PE, weights one word per PE column (broadcast down the column), halo partial
    sums exchanged between neighbours; optionally split into column groups (``gcols``) that
    compute different output channels on the whole plane each.

    Parameters
    ----------
    config : ScnnConfig

    Members
    -------
    i : In(stream.Signature(array_input_layout(config)))
        Transfers of PE words (see :class:`ScnnPE`, :func:`array_input_layout`): an ACT
        transfer carries up to one ACT word per PE column, lane ``x`` for PE ``(row, x)``; a
        WGT transfer up to one WGT word per column, lane ``x`` for every PE of column ``x``;
        CONFIG and DRAIN go to all PEs. A transfer is taken when every PE it addresses can
        take it.
    o : Out(stream.Signature(ArrayLayout(pe_output_layout(config), pe_rows * pe_cols)))
        The PEs drain in lock step: element ``p`` of a transfer is PE ``p``'s frame row. Every
        layer drains here (and into the PEs' OARAMs); for chained layers the host reads the
        last one's result, and checks the earlier ones, from these rows.
    conflict_stalls : Out(32)
        Sum of the PEs' conflict-stall counters.

    Raises
    ------
    TypeError
        ``config`` is not a :class:`ScnnConfig`.

    Timing
    ------
    As :class:`ScnnPE`, one transfer per cycle: an ACT transfer gives each PE at most one
    word (a PE takes one per cycle), so loading the PEs' IARAMs takes as many cycles as the
    PE column with the most ACT words (its PEs' words in one lane). The slowest PE sets the
    pace: a WGT word waits until every
    PE's weight FIFO has room, CONFIG and DRAIN until every PE is idle (the PEs' load imbalance
    shows up here). All PEs take DRAIN in the same cycle (their walks end in the same cycle) and
    then exchange halos in lock step on their walked halves:
    in each horizontal-phase row (two cycles) every PE sends one frame row's left ``S-1``
    partial sums to its left neighbour, which registers them and adds them into its columns
    ``Wt..Wt+S-2`` in the next cycle; in each vertical-phase row (two cycles) every PE sends the
    own columns of one of its top ``R-1`` rows to the PE above, which adds them, registered
    alike, into its rows ``Ht..Ht+R-2``. No combinational path crosses a PE boundary. Halos
    leaving the grid are outputs outside the plane and are dropped, and so are those that
    cross from one column group into the next (``gcols`` of the walked group's CONFIG).
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

    @staticmethod
    def probes(cfg: ScnnConfig) -> dict[str, list[str]]:
        """Where a layer harness sees the actions of every PE (1-bit Verilog expressions over
        the PE's sub-blocks' ``probe_*`` ports, paths relative to this design's top module;
        a harness adds up the true ones every cycle):

        * ``pair``: a (weight entry, activation row) pair leaves the product stage: ``f x i``
          multiplies and one activation buffer read;
        * ``mul``: one term per product of the pair with both operands non-zero;
        * ``grant``: one term per bank: a product crosses the crossbar into it;
        * ``bank_read``, ``bank_write``: one term per bank of each accumulator half: its row is
          read, written back (every write is a read-modify-write's add, a halo add or a clear);
        * ``act_write``: one term per row written into an activation RAM: an ACT word's row
          into the IARAM, and one term per OARAM bank for the drain's rows;
        * ``wgt_push``: a weight entry enters the FIFO;
        * ``drain_row``: a frame row of the walk's drain enters the drain row register;
        * ``drain_push``: an own frame row (not a halo row) enters the drain's output queue;
        * ``halo``: one term per partial sum sent to a neighbour that exists (horizontally
          from PEs with a left neighbour, vertically from PEs with one above).
        """
        def bits(port, width):
            """The 1-bit terms of a ``width``-bit port (a 1-bit port takes no index)."""
            return [port] if width == 1 else [f"{port}[{j}]" for j in range(width)]

        probes = {name: [] for name in ("pair", "mul", "grant", "bank_read", "bank_write",
                                        "act_write", "wgt_push", "drain_row", "drain_push",
                                        "halo")}
        for y in range(cfg.pe_rows):
            for x in range(cfg.pe_cols):
                pe = f"pe{y}_{x}."
                probes["pair"].append(f"{pe}cartesian.probe_pair")
                probes["mul"] += bits(f"{pe}cartesian.probe_mul", cfg.f * cfg.i)
                probes["grant"] += bits(f"{pe}crossbar.probe_grant", cfg.banks)
                for name, port in (("bank_read", "probe_read"), ("bank_write", "probe_write")):
                    probes[name] += bits(f"{pe}accumulators.{port}", 2 * cfg.banks)
                probes["act_write"].append(f"{pe}activations.probe_write")
                probes["act_write"] += bits(f"{pe}drain.probe_owrite", ram_banks(cfg))
                probes["wgt_push"].append(f"{pe}weights.probe_push")
                probes["drain_row"].append(f"{pe}accumulators.probe_drain")
                probes["drain_push"].append(f"{pe}drain.probe_push")
                for port, sends in (("probe_hsend", x > 0), ("probe_vsend", y > 0)):
                    if sends:
                        probes["halo"] += bits(f"{pe}accumulators.{port}", cfg.halo_lanes)
        return probes

    @staticmethod
    def memories(cfg: ScnnConfig) -> dict:
        """Sizes the energy model prices each probed access at: ``act`` and ``bank``
        ``(words, bits)`` of one bank of an activation RAM (IARAM or OARAM) and one
        accumulator bank (an SRAM macro at ``hw.sram.MACRO_MIN_BITS`` and above, else
        flip-flops), ``act_banks`` (activation RAM banks per PE, both RAMs: their leakage),
        ``bank_count`` (accumulator bank memories per PE: ``banks`` in each of the two halves),
        ``wgt_entry_bits`` (a weight FIFO entry), ``product_bits`` (a crossbar transfer),
        ``requesters`` (crossbar inputs per bank), ``gated_registers`` (the PE's clock-gated
        pipeline registers, weight FIFO entries and row-end bits, :func:`gated_registers`).
        Every memory reads only when asked (a read register loads, and its clock gate opens,
        once per probed read)."""
        return {"act": (math.ceil(cfg.act_depth / ram_banks(cfg)), _act_row_layout(cfg).size),
                "act_banks": 2 * ram_banks(cfg),
                "bank": (cfg.bank_depth, cfg.acc_width), "bank_count": 2 * cfg.banks,
                "wgt_entry_bits": _weight_entry_layout(cfg).size,
                "gated_registers": gated_registers(cfg),
                "product_bits": _product_bits(cfg), "requesters": 2 * cfg.f * cfg.i}

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
        word = self.i.payload
        act = word.kind == Cmd.ACT
        wgt = word.kind == Cmd.WGT
        # Which PEs a transfer addresses: ACT, lane x's PE of its row; WGT, every PE of column
        # x (lane x valid); CONFIG and DRAIN, all. It is taken when each of them can take it.
        addressed = []
        for n, pe in enumerate(order):
            y, x = divmod(n, cfg.pe_cols)
            lane = word.cols[x]
            mine = Signal(name=f"addressed{y}_{x}")
            m.d.comb += mine.eq(Mux(act, lane.valid & (lane.row == y),
                                    Mux(wgt, lane.valid, 1)))
            addressed.append(mine)
        can = [pe.i.ready | ~mine for pe, mine in zip(order, addressed)]
        m.d.comb += self.i.ready.eq(Cat(*can).all())
        total = Const(0, 32)
        for n, pe in enumerate(order):
            others = Cat(*(c for q, c in zip(order, can) if q is not pe))
            others_ready = others.all() if len(order) > 1 else Const(1, 1)
            y, x = divmod(n, cfg.pe_cols)
            # Every PE reads its column's lane (CONFIG and DRAIN carry no lane fields).
            lane = word.cols[x]
            m.d.comb += [
                pe.i.payload.kind.eq(word.kind), pe.i.payload.geom.eq(word.geom),
                pe.i.payload.last.eq(lane.last), pe.i.payload.count.eq(lane.count),
                pe.i.payload.lanes.eq(lane.lanes),
                pe.i.valid.eq(self.i.valid & others_ready & addressed[n]),
                pe.o.ready.eq(self.o.ready),
                self.o.payload[n].eq(pe.o.payload),
            ]
            total = (total + pe.conflict_stalls)[:32]
        for (y, x), pe in pes.items():
            m.d.comb += [pe.grid_y.eq(y), pe.grid_x.eq(x)]
            if (y, x + 1) in pes:
                m.d.comb += pe.i_halo_h.eq(pes[y, x + 1].o_halo)
            if (y + 1, x) in pes:
                m.d.comb += pe.i_halo_v.eq(pes[y + 1, x].o_halo)
        m.d.comb += [self.o.valid.eq(order[0].o.valid), self.conflict_stalls.eq(total)]
        return m
