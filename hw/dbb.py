"""Density-bound-block (DBB) datapath pieces: compressed weight layout and the weight mux.

A DBB(BZ, NNZ) weight block holds at most NNZ non-zeros out of BZ values. It is stored as NNZ
(value, index) slots; ``index`` says which of the BZ activations of the block the value meets
(S2TA's static weight DBB). Unused slots carry value 0.
"""

from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["index_width", "weight_slot_layout", "WeightMux"]


def index_width(block_size: int) -> int:
    """Bits of a position within a block: log2(block_size)."""
    return (block_size - 1).bit_length()


def weight_slot_layout(block_size: int, data_width: int) -> data.StructLayout:
    """One compressed weight: its signed value and its position within the block."""
    return data.StructLayout({
        "value": signed(data_width),
        "index": unsigned(index_width(block_size)),
    })


class WeightMux(wiring.Component):
    """For each of NNZ stored weights, a BZ:1 mux that picks the activation it multiplies.

    Parameters
    ----------
    block_size : int
        BZ, activations per block.
    nnz : int
        Stored weights (and muxes) per block.
    data_width : int
        Width of activations and weight values.

    Members
    -------
    a : In(ArrayLayout(signed(data_width), block_size))
        The dense activation block.
    w : In(ArrayLayout(weight_slot_layout, nnz))
        The compressed weight block.
    a_sel : Out(ArrayLayout(signed(data_width), nnz))
        ``a_sel[j] = a[w[j].index]``.
    w_val : Out(ArrayLayout(signed(data_width), nnz))
        ``w_val[j] = w[j].value``.

    Timing
    ------
    Combinational.
    """

    def __init__(self, block_size: int, nnz: int, data_width: int):
        self._block_size, self._nnz = block_size, nnz
        lanes = data.ArrayLayout(signed(data_width), nnz)
        super().__init__({
            "a": In(data.ArrayLayout(signed(data_width), block_size)),
            "w": In(data.ArrayLayout(weight_slot_layout(block_size, data_width), nnz)),
            "a_sel": Out(lanes),
            "w_val": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        for j in range(self._nnz):
            m.d.comb += [
                self.a_sel[j].eq(self.a[self.w[j].index]),
                self.w_val[j].eq(self.w[j].value),
            ]
        return m
