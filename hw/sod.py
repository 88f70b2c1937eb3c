"""Sparse-on-Dense: the dense systolic array fed through bitmap decompressors at its edges.

Sparse-on-Dense (Yoon, Kim, Ryu) keeps a dense (TPU-like) array and puts small decompression
units between the buffer and the array: tensors are stored and moved compressed, computed
dense. Here every row edge (activations A[m0 + r, :]) and every column edge (weights
W[:, n0 + c]) has a :class:`BitmapDecoder` that turns one compressed block of BZ positions of K
into BZ dense values, one per cycle, so the array (:class:`~.systolic.SystolicCore` with the
dense scalar-MAC cell of ``dense-array``) takes one full dense step per cycle whatever the
density: fully dense blocks, all-zero blocks, all-zero rows or columns alike.

Format choice (bitmap + packed values, ``sim/golden/sod.py``) against the paper's CSR/CSC-like
values + indices + pointers, per block of BZ = 8 positions of 8-bit data:

* storage: bitmap BZ + 8 nnz bits, CSR-like log2(BZ) = 3 bits per non-zero plus a count
  (4 bits): 8 + 8 nnz vs 4 + 11 nnz; the bitmap is smaller above nnz = 2 of 8 (density
  above 25%, where weights and post-ReLU activations of the workloads sit) and never more than
  4 bits per block larger below;
* decoder: the bitmap decodes by shifting (the next packed value leaves when the mask's low bit
  is set), with no comparator; CSR needs an index comparator per edge (log2(BZ) bits) and the
  same value register, and its pointer array to find a row's start in the buffer.

Hence the bitmap. Both carry the same values; neither changes the arithmetic.

Block size: the bitmap costs one bit per position whatever BZ is, so BZ does not change the
storage; it sets how wide the buffer's read port is (BZ values + BZ mask bits, read every BZ
cycles) and how many register bits each decoder holds (BZ x (data_width + 1)). Measured on
sky130hd (Yosys + ABC, ``sparsegen synth sod``), decoders and their counter against the whole
8 x 8 array: BZ = 2: 749 um^2 per decoder, 2.62%; BZ = 4: 1,506 um^2, 5.11%; BZ = 8:
2,958 um^2, 9.5% (16 x 16: 1.32% at BZ = 2, 5.03% at BZ = 8; 32 x 32 at BZ = 8: 2.57%).
The default is BZ = 2, the narrowest port, within the paper's few-percent budget at 8 x 8.

The buffer itself is outside (it feeds the input stream): one transfer carries a compressed
block per edge (the mask and BZ packed-value slots; only popcount(mask) of them are stored,
:func:`~sparsegen.sim.golden.sod.stored_bits`), i.e. the buffer's read port is as wide as a
dense block and is read once every BZ cycles.
"""

import dataclasses

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .hier import shared
from .params import Config, check_config, param
from .s2ta import DenseArray, DenseArrayConfig
from .systolic import CellKind, SystolicCore, core_latency, mac_kind, step_layout

__all__ = ["SodConfig", "Sod", "BitmapDecoder", "SodFrontEnd", "block_layout",
           "sod_input_layout"]


@dataclasses.dataclass(frozen=True)
class SodConfig(Config):
    """Configuration of :class:`Sod`."""

    rows: int = param(8, lo=1, hi=64, help="PE rows (output rows per tile)")
    cols: int = param(8, lo=1, hi=64, help="PE columns (output columns per tile)")
    block_size: int = param(2, lo=2, hi=32, pow2=True,
                            help="BZ: positions of K per compressed block (bitmap width)")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")
    zvcg: bool = param(True, help="zero-value clock gating of the product registers")

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols

    @property
    def dense(self) -> DenseArrayConfig:
        """The dense array behind the decompressors."""
        return DenseArrayConfig(rows=self.rows, cols=self.cols, data_width=self.data_width,
                                acc_width=self.acc_width, zvcg=self.zvcg)


def block_layout(block_size: int, data_width: int) -> data.StructLayout:
    """One compressed block of an edge: the BZ-bit ``mask`` (bit j: position j is non-zero)
    and ``values``, the non-zeros packed in position order (slots past popcount(mask) unused)."""
    return data.StructLayout({
        "mask": block_size,
        "values": data.ArrayLayout(signed(data_width), block_size),
    })


def sod_input_layout(config: SodConfig) -> data.StructLayout:
    """Payload of :class:`Sod`'s input: a compressed block per row and per column, ``last``
    on the tile's final block."""
    block = block_layout(config.block_size, config.data_width)
    return data.StructLayout({
        "a": data.ArrayLayout(block, config.rows),
        "w": data.ArrayLayout(block, config.cols),
        "last": 1,
    })


class BitmapDecoder(wiring.Component):
    """One edge's decompressor: a compressed block in, one dense value per cycle out.

    Parameters
    ----------
    block_size, data_width : int

    Members
    -------
    i_load : In(1)
        Take ``i_block`` (at this edge; it wins over ``i_next``).
    i_block : In(block_layout(block_size, data_width))
        The block to take.
    i_next : In(1)
        ``o_value`` was taken: move to the next position.
    o_value : Out(signed(data_width))
        The dense value of the current position: the next packed value if the position's mask
        bit is set, else 0.

    Two shift registers, the mask (BZ bits) and the packed values (BZ x data_width): the low
    mask bit says whether the current position is non-zero; moving on shifts the mask by one
    and, when that bit was set, the values by one slot, so the next non-zero is always in slot
    0. No BZ:1 mux, no counter, no comparator: a 2:1 load/shift choice per register bit and
    ``data_width`` AND gates.

    Timing
    ------
    Combinational from the registers to ``o_value`` (one AND level); loaded at the edge of
    ``i_load``, so a block's position 0 is on ``o_value`` one edge after it was taken.
    """

    def __init__(self, block_size: int, data_width: int):
        self._bz, self._width = block_size, data_width
        super().__init__({
            "i_load": In(1),
            "i_block": In(block_layout(block_size, data_width)),
            "i_next": In(1),
            "o_value": Out(signed(data_width)),
        })

    @property
    def key(self) -> tuple:
        return (self._bz, self._width)

    def elaborate(self, platform):
        m = Module()
        bz = self._bz
        mask = Signal(bz)
        values = Signal(data.ArrayLayout(signed(self._width), bz))
        nonzero = mask[0]
        with m.If(self.i_load):
            m.d.sync += [mask.eq(self.i_block.mask), values.eq(self.i_block.values)]
        with m.Elif(self.i_next):
            m.d.sync += mask.eq(mask >> 1)
            with m.If(nonzero):
                m.d.sync += [values[j].eq(values[j + 1]) for j in range(bz - 1)]
                m.d.sync += values[bz - 1].eq(0)
        m.d.comb += self.o_value.eq(Mux(nonzero, values[0], 0))
        return m


class SodFrontEnd(wiring.Component):
    """The decompressors of every edge and their shared position counter.

    Parameters
    ----------
    config : SodConfig

    Members
    -------
    i : In(stream.Signature(sod_input_layout(config)))
        A compressed block per edge.
    o : Out(stream.Signature(step_layout(dense kind, rows, cols)))
        Dense steps: one value per row and per column, ``last`` on the final position of a
        ``last`` block.

    Timing
    ------
    One register stage (the decoders' block registers): a block taken at edge E gives its BZ
    steps on ``o`` from E + 1, one per cycle while ``o.ready``; the next block is taken at the
    edge its predecessor's final step leaves, so steps flow every cycle. The longest path is
    the counter compare -> ``i.ready`` -> load select of the block registers.
    """

    #: Register stages between ``i`` and ``o`` (the decoders' block registers).
    STAGES = 1

    def __init__(self, config: SodConfig):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(sod_input_layout(config))),
            "o": Out(stream.Signature(step_layout(mac_kind(config.data_width),
                                                  config.rows, config.cols))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        full = Signal()                             # the decoders hold a block
        last = Signal()                             # ... which is the tile's last
        j = Signal(range(cfg.block_size))           # position within the block
        final = j == cfg.block_size - 1
        advance = Signal()
        load = Signal()
        m.d.comb += [
            self.i.ready.eq(~full | (self.o.ready & final)),
            load.eq(self.i.valid & self.i.ready),
            advance.eq(self.o.valid & self.o.ready),
            self.o.valid.eq(full),
            self.o.payload.last.eq(last & final),
        ]
        with m.If(load):
            m.d.sync += [full.eq(1), last.eq(self.i.payload.last), j.eq(0)]
        with m.Elif(advance):
            m.d.sync += j.eq(j + 1)
            with m.If(final):
                m.d.sync += full.eq(0)
        edges = ([("a", r) for r in range(cfg.rows)] + [("w", c) for c in range(cfg.cols)])
        for side, n in edges:
            dec = BitmapDecoder(cfg.block_size, cfg.data_width)
            m.submodules[f"dec_{side}{n}"] = shared(platform, dec, name="decoder", key=dec.key)
            m.d.comb += [
                dec.i_load.eq(load),
                dec.i_block.eq(self.i.payload[side][n]),
                dec.i_next.eq(advance),
                self.o.payload[side][n].eq(dec.o_value),
            ]
        return m


class Sod(wiring.Component):
    """Sparse-on-Dense: bitmap decompressors in front of an R x C dense systolic array.

    Parameters
    ----------
    config : SodConfig

    Members
    -------
    i : In(stream.Signature(sod_input_layout(config)))
        One compressed K-block per transfer: ``a[r]`` the block of A[m0 + r, kb*BZ:(kb+1)*BZ],
        ``w[c]`` that of W[kb*BZ:(kb+1)*BZ, n0 + c], ``last`` on the tile's final block.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), cols)))
        Result rows of each tile, row 0 first, as ``dense-array``.

    Timing
    ------
    BZ dense steps per block, one per cycle, behind :attr:`SodFrontEnd.STAGES` register stage;
    fill and drain as :class:`~.systolic.SystolicCore`, so a tile of Kb blocks costs the cycles
    of a dense tile of K' = Kb x BZ (K padded to whole blocks). :attr:`LATENCY` edges from
    accepting a tile's last block to its first result row. The clock is limited by the cell's
    multiplier stage, as ``dense-array``; the decoders add one AND level before the core's step
    register.
    """

    def __init__(self, config: SodConfig):
        check_config(self, config, SodConfig)
        self._config = config
        self.LATENCY = (core_latency(self.cell_kind(config), config.rows, config.cols)
                        + self.front_end_stages(config) + config.block_size - 1)
        super().__init__({
            "i": In(stream.Signature(sod_input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.acc_width), config.cols))),
        })

    @staticmethod
    def front_end_stages(config: SodConfig) -> int:
        """Register stages in front of the core (the decoders'); read by the cycle model."""
        return SodFrontEnd.STAGES

    @property
    def config(self) -> SodConfig:
        return self._config

    @staticmethod
    def cell_kind(cfg: SodConfig) -> CellKind:
        """The cells' kind: the dense array's MAC (three stages)."""
        return mac_kind(cfg.data_width)

    @staticmethod
    def probes(cfg: SodConfig) -> dict[str, list[str]]:
        """Energy probes: the dense cells' (:meth:`DenseArray.probes`); the decoders' flip-flops
        are priced by the layer energy as registers (held every cycle), their shifts are not
        counted as actions."""
        return DenseArray.probes(cfg.dense)

    @staticmethod
    def cell_actions(cfg: SodConfig) -> dict:
        """As :meth:`DenseArray.cell_actions` (the cells are the dense array's), with
        ``steps_per_transfer`` BZ: every block becomes BZ core steps."""
        return {**DenseArray.cell_actions(cfg.dense), "steps_per_transfer": cfg.block_size}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.front = front = SodFrontEnd(cfg)
        m.submodules.core = core = SystolicCore(mac_kind(cfg.data_width), cfg.rows,
                                                cfg.cols, cfg.data_width, cfg.acc_width,
                                                cfg.zvcg)
        wiring.connect(m, wiring.flipped(self.i), front.i)
        wiring.connect(m, front.o, core.i)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        return m
