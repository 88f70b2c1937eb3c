"""Dot-product processing elements: the dense PE and S2TA's DBB weight-mux PE.

Both PEs consume one block of ``block_size`` (BZ) activations per cycle together with the
matching weight block, accumulate the block dot products of one output, and emit the sum when
the block marked ``last`` has gone through. They differ only in how the weight block arrives and
how many multipliers they need:

* :class:`DensePE` receives BZ dense weights and multiplies in BZ lanes.
* :class:`WeightMuxPE` receives a DBB-compressed block of NNZ (value, index) slots, picks the
  activation for each slot with a BZ:1 mux, and multiplies in NNZ lanes only.

At equal throughput (one block per cycle) their area ratio is the first data point of the
Sparse-on-Dense question: how much does sparse support cost in the PE itself?
"""

import dataclasses

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import AdderTree, MultiplierLanes, popcount
from .dbb import WeightMux, weight_slot_layout
from .params import Config, check_config, param

__all__ = [
    "DensePEConfig", "DBBPEConfig", "DotProductPE", "DensePE", "WeightMuxPE",
    "dense_pe_input_layout", "dbb_pe_input_layout",
]

#: Width of the free-running count of gated lanes; it wraps.
GATED_COUNT_WIDTH = 32


@dataclasses.dataclass(frozen=True)
class DensePEConfig(Config):
    """Configuration of :class:`DensePE`."""

    block_size: int = param(8, lo=2, hi=32, pow2=True,
                            help="BZ: activations and weights consumed per cycle (multipliers)")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")
    zvcg: bool = param(False, help="zero-value clock gating of operand and product registers")

    @property
    def lanes(self) -> int:
        """Multipliers in the PE."""
        return self.block_size

    @property
    def multipliers(self) -> int:
        return self.lanes


@dataclasses.dataclass(frozen=True)
class DBBPEConfig(Config):
    """Configuration of :class:`WeightMuxPE`."""

    block_size: int = param(8, lo=2, hi=32, pow2=True,
                            help="BZ: DBB block size, activations consumed per cycle")
    nnz: int = param(4, lo=1, hi="block_size",
                     help="NNZ: non-zero weights per block (multipliers)")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")
    zvcg: bool = param(False, help="zero-value clock gating of operand and product registers")

    @property
    def lanes(self) -> int:
        """Multipliers in the PE."""
        return self.nnz

    @property
    def multipliers(self) -> int:
        return self.lanes


def dense_pe_input_layout(config: DensePEConfig) -> data.StructLayout:
    """Payload of :class:`DensePE` input: a block of activations, one of weights, ``last``."""
    block = data.ArrayLayout(signed(config.data_width), config.block_size)
    return data.StructLayout({"a": block, "w": block, "last": 1})


def dbb_pe_input_layout(config: DBBPEConfig) -> data.StructLayout:
    """Payload of :class:`WeightMuxPE` input: dense activations, compressed weights, ``last``."""
    slots = weight_slot_layout(config.block_size, config.data_width)
    return data.StructLayout({
        "a": data.ArrayLayout(signed(config.data_width), config.block_size),
        "w": data.ArrayLayout(slots, config.nnz),
        "last": 1,
    })


class DotProductPE(wiring.Component):
    """The dot-product pipeline PEs share; subclasses supply the lane operands in
    :meth:`_operands` (DensePE, WeightMuxPE, and the HSS and flat G:H PEs of ``hw.hss``).

    Stages (all advance together on ``advance``): 0 operand registers, 1 product registers,
    2 adder-tree register, 3 accumulator and output register.
    """

    #: Clock edges from the edge that accepts a ``last`` block to the edge at which its dot
    #: product leaves through ``o`` (with ``o.ready`` high): ``o.valid`` rises one edge earlier.
    LATENCY = 4

    def __init__(self, config, input_layout):
        self._config = config
        members = {
            "i": In(stream.Signature(input_layout)),
            "o": Out(stream.Signature(signed(config.acc_width))),
        }
        if config.zvcg:
            members["gated"] = Out(unsigned(GATED_COUNT_WIDTH))
        super().__init__(members)

    @property
    def config(self):
        return self._config

    def _operands(self, m):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        cfg = self._config

        m.submodules.lanes = lanes = MultiplierLanes(cfg.lanes, cfg.data_width, cfg.zvcg)
        m.submodules.tree = tree = AdderTree(cfg.lanes, 2 * cfg.data_width)
        a_lanes, w_lanes = self._operands(m)
        m.d.comb += [lanes.a.eq(a_lanes), lanes.w.eq(w_lanes), tree.i.eq(lanes.p)]

        # One stall signal for the whole pipeline: it moves whenever the output register is
        # empty or being read. Bubbles travel as cleared valid bits.
        advance = Signal()
        take = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            take.eq(self.i.valid & self.i.ready),
        ]
        valid = [Signal(name=f"valid{s}") for s in range(3)]
        last = [Signal(name=f"last{s}") for s in range(3)]
        with m.If(advance):
            m.d.sync += [valid[0].eq(take), valid[1].eq(valid[0]), valid[2].eq(valid[1])]
            m.d.sync += [last[0].eq(self.i.payload.last), last[1].eq(last[0]),
                         last[2].eq(last[1])]
        m.d.comb += [
            lanes.en_op.eq(take),
            lanes.en_prod.eq(advance & valid[0]),
            tree.en.eq(advance & valid[1]),
        ]

        acc = Signal(signed(cfg.acc_width))
        total = Signal(signed(cfg.acc_width))
        m.d.comb += total.eq(acc + tree.o)      # truncation to acc_width is the wrap-around
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid[2] & last[2])
            with m.If(valid[2]):
                m.d.sync += acc.eq(total)
                with m.If(last[2]):
                    m.d.sync += [self.o.payload.eq(total), acc.eq(0)]

        if cfg.zvcg:
            with m.If(take):
                m.d.sync += self.gated.eq(self.gated + popcount(lanes.zero))
        return m


class DensePE(DotProductPE):
    """Dense dot-product PE: BZ multipliers, an adder tree and an accumulator.

    Parameters
    ----------
    config : DensePEConfig

    Members
    -------
    i : In(stream.Signature(dense_pe_input_layout(config)))
        One block per transfer: ``a`` and ``w`` (BZ signed values each) and ``last``, set on the
        final block of a dot product.
    o : Out(stream.Signature(signed(acc_width)))
        One transfer per dot product: the sum over its blocks of ``sum_j a[j] * w[j]``,
        wrapped to ``acc_width`` bits.
    gated : Out(unsigned(32)), only with ``zvcg``
        Free-running count of gated lanes (lanes with a zero activation or weight) over all
        accepted blocks; it wraps. Energy models read it.

    Timing
    ------
    Throughput one block per cycle. Latency :attr:`LATENCY` (4): a dot product leaves at the
    4th clock edge after the edge that accepted its ``last`` block (``o.valid`` rises after the
    3rd). While ``o`` is stalled
    (``o.valid & ~o.ready``) the whole pipeline holds and ``i.ready`` is low; otherwise
    ``i.ready`` is high.
    """

    def __init__(self, config: DensePEConfig):
        check_config(self, config, DensePEConfig)
        super().__init__(config, dense_pe_input_layout(config))

    def _operands(self, m):
        return self.i.payload.a, self.i.payload.w


class WeightMuxPE(DotProductPE):
    """S2TA's DBB weight-mux PE: NNZ multipliers fed through BZ:1 activation muxes.

    Parameters
    ----------
    config : DBBPEConfig

    Members
    -------
    i : In(stream.Signature(dbb_pe_input_layout(config)))
        One block per transfer: ``a`` (BZ dense activations), ``w`` (NNZ compressed weight
        slots, ``value`` and ``index``) and ``last``, set on the final block of a dot product.
    o : Out(stream.Signature(signed(acc_width)))
        One transfer per dot product: the sum over its blocks of
        ``sum_j w[j].value * a[w[j].index]``, wrapped to ``acc_width`` bits.
    gated : Out(unsigned(32)), only with ``zvcg``
        Free-running count of gated slots (zero weight value or zero selected activation).

    Timing
    ------
    Same as :class:`DensePE`: one block per cycle, latency :attr:`LATENCY` (4) edges; the mux
    sits in front of the operand registers, so it adds no stage.
    """

    def __init__(self, config: DBBPEConfig):
        check_config(self, config, DBBPEConfig)
        super().__init__(config, dbb_pe_input_layout(config))

    def _operands(self, m):
        cfg = self._config
        m.submodules.mux = mux = WeightMux(cfg.block_size, cfg.nnz, cfg.data_width)
        m.d.comb += [mux.a.eq(self.i.payload.a), mux.w.eq(self.i.payload.w)]
        return mux.a_sel, mux.w_val
