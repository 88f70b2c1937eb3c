"""Arithmetic building blocks shared by the PEs: multiplier lanes and a registered adder tree.

These are internal blocks with plain (non-stream) ports: the PE that owns them decides when each
pipeline register loads (``en_*``), so one stall signal governs the whole pipeline. They are
separate modules so that the Verilog hierarchy, and with it the per-block area breakdown of
synthesis, shows what the multipliers and the reduction cost.
"""

from amaranth import Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MultiplierLanes", "AdderTree", "popcount"]


def popcount(bits) -> "Value":  # noqa: F821 - Amaranth value, typed loosely on purpose
    """Number of set bits of ``bits`` as a balanced tree of additions."""
    terms = [bits[i] for i in range(len(bits))]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


class MultiplierLanes(wiring.Component):
    """``lanes`` signed multipliers behind operand registers, with optional zero-value gating.

    Parameters
    ----------
    lanes : int
        Number of multipliers.
    data_width : int
        Width of each signed operand.
    zvcg : bool
        Zero-value clock gating: a lane whose activation or weight is zero keeps its operand
        and product registers unchanged (so the multiplier's inputs do not toggle) and
        contributes a forced zero to ``p``.

    Members
    -------
    en_op : In(1)
        Load ``a``/``w`` into the operand registers (stage 0).
    a, w : In(ArrayLayout(signed(data_width), lanes))
        Operands; element ``j`` of ``a`` is multiplied by element ``j`` of ``w``.
    en_prod : In(1)
        Load the products of the operand registers into the product registers (stage 1).
    p : Out(ArrayLayout(signed(2 * data_width), lanes))
        Registered products (zero for gated lanes).
    zero : Out(lanes)
        Combinational: the lanes of the current ``a``/``w`` that hold a zero operand.

    Timing
    ------
    Two register stages: operands at the ``en_op`` edge, products at the following ``en_prod``
    edge.
    """

    def __init__(self, lanes: int, data_width: int, zvcg: bool):
        self._lanes, self._data_width, self._zvcg = lanes, data_width, zvcg
        operands = data.ArrayLayout(signed(data_width), lanes)
        super().__init__({
            "en_op": In(1),
            "a": In(operands),
            "w": In(operands),
            "en_prod": In(1),
            "p": Out(data.ArrayLayout(signed(2 * data_width), lanes)),
            "zero": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, width = self._lanes, self._data_width
        for j in range(lanes):
            a_op = Signal(signed(width), name=f"a_op{j}")
            w_op = Signal(signed(width), name=f"w_op{j}")
            prod = Signal(signed(2 * width), name=f"prod{j}")
            m.d.comb += self.zero[j].eq((self.a[j] == 0) | (self.w[j] == 0))
            if self._zvcg:
                zero_op = Signal(name=f"zero_op{j}")
                zero_prod = Signal(name=f"zero_prod{j}")
                with m.If(self.en_op):
                    m.d.sync += zero_op.eq(self.zero[j])
                    with m.If(~self.zero[j]):
                        m.d.sync += [a_op.eq(self.a[j]), w_op.eq(self.w[j])]
                with m.If(self.en_prod):
                    m.d.sync += zero_prod.eq(zero_op)
                    with m.If(~zero_op):
                        m.d.sync += prod.eq(a_op * w_op)
                m.d.comb += self.p[j].eq(Mux(zero_prod, 0, prod))
            else:
                with m.If(self.en_op):
                    m.d.sync += [a_op.eq(self.a[j]), w_op.eq(self.w[j])]
                with m.If(self.en_prod):
                    m.d.sync += prod.eq(a_op * w_op)
                m.d.comb += self.p[j].eq(prod)
        return m


class AdderTree(wiring.Component):
    """Registered sum of ``n`` signed terms, reduced as a balanced binary tree.

    Parameters
    ----------
    n : int
        Number of terms.
    width : int
        Width of each signed term; the sum is ``width + ceil(log2(n))`` bits, so it never
        overflows.

    Members
    -------
    en : In(1)
        Load the sum of ``i`` into ``o``.
    i : In(ArrayLayout(signed(width), n))
        Terms.
    o : Out(signed(width + ceil(log2(n))))
        Registered sum.

    Timing
    ------
    One register stage at the output; the tree itself is combinational.
    """

    def __init__(self, n: int, width: int):
        self._n, self._width = n, width
        super().__init__({
            "en": In(1),
            "i": In(data.ArrayLayout(signed(width), n)),
            "o": Out(signed(width + (n - 1).bit_length())),
        })

    def elaborate(self, platform):
        m = Module()
        terms = [self.i[j] for j in range(self._n)]
        while len(terms) > 1:
            pairs = [terms[j] + terms[j + 1] for j in range(0, len(terms) - 1, 2)]
            terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
        with m.If(self.en):
            m.d.sync += self.o.eq(terms[0])
        return m
