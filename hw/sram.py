"""Memories that a chip builds as SRAM macros: a synchronous 1R1W memory block that simulates as
an Amaranth ``Memory`` and, above :data:`MACRO_MIN_BITS`, is emitted as a module of its own whose
name declares it a macro, so that synthesis can set it apart.

A design asks for a memory with :func:`sync_memory` in its ``elaborate``::

    mem, m.submodules.rows = sync_memory(platform, words=512, width=92)
    m.d.comb += [mem.r_addr.eq(...), mem.r_en.eq(...), row.eq(mem.r_data), ...]

* Below :data:`MACRO_MIN_BITS` (``words x width``) the memory is flip-flops: a macro's fixed
  periphery would cost more than the array. With the platform that ``gen.generate`` converts
  with, it is one shared module per size too, named ``<top>.regfile_1r1w_<W>x<B>``
  (:func:`regfile_name`), whose rows ``gen/synth.py`` clock-gates as a register file is built:
  Yosys' ``clockgate`` gives each set of flip-flops that share a write enable (a row; and the
  read register, on the read enable) one integrated clock gate (ICG) of the liberty, so a row
  not written sees no clock edge and needs no enable multiplexer (``gen.synth.CLOCKGATE``).
  The energy model prices these flip-flops by the ICGs' cycles and the rows written, not by a
  held flip-flop's clock every cycle (``sim/energy.py``).
* At or above it, with the platform that ``gen.generate`` converts with, the block is one
  shared module per size (:func:`sparsegen.hw.hier.shared`), named ``<top>.sram_1r1w_<W>x<B>``
  (:func:`macro_name`): its Verilog is the functional model (what Verilator simulates), and
  ``gen/synth.py`` replaces it with a timing shell, reports its area apart from the logic
  (priced by ``gen/sram.py``'s OpenRAM-fitted model) and times its ports as a register's. In
  the Amaranth simulator it is the functional model itself.

The macro's ports (the documented port list ``gen/synth.py`` relies on), all on the rising edge
of the ``sync`` clock (``clk``, and ``rst``, which the memory ignores):

========  ====  =========================================================================
port      dir   meaning
========  ====  =========================================================================
r_addr    in    read address (``ceil(log2(W))`` bits, at least 1)
r_en      in    read enable: ``r_data`` takes the word at ``r_addr`` at the edge
r_data    out   the word read at the last enabled edge (held otherwise); a write to the same
                word at the same edge is not seen (read-before-write)
w_addr    in    write address
w_en      in    write enable
w_data    in    the word written at the edge (``B`` bits)
========  ====  =========================================================================
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .hier import shared

__all__ = ["MACRO_MIN_BITS", "SyncMemory", "sync_memory", "macro_name", "regfile_name"]

MACRO_MIN_BITS = 4096
"""Smallest memory (``words x width`` bits) built as a macro. The OpenRAM-fitted model
(``gen/sram.py``) prices a macro at about 10.9 um^2 per bit, 16.4 per word and 96,900 of fixed
periphery; a flip-flop array with its read multiplexer costs about 40 um^2 per bit on sky130hd
(measured: SCNN's 32 x 44 activation buffer, 1,408 bits, 55,546 um^2, 39.4 per bit). The two
cross near 3,300 bits; at 4,096 bits the macro is the smaller (tests/test_sram.py checks it)."""


def macro_name(words: int, width: int) -> str:
    """Base name of a macro's module: ``sram_1r1w_<words>x<width>``."""
    return f"sram_1r1w_{words}x{width}"


def regfile_name(words: int, width: int) -> str:
    """Base name of a clock-gated flip-flop memory's module: ``regfile_1r1w_<words>x<width>``."""
    return f"regfile_1r1w_{words}x{width}"


class SyncMemory(wiring.Component):
    """A synchronous 1R1W memory of ``words`` x ``width`` bits (see the module docs for the
    ports). Timing: a read or write at an edge; read data from the next cycle."""

    def __init__(self, words: int, width: int):
        self._words, self._width = words, width
        addr = range(max(words, 2))     # a one-word memory still has a 1-bit address
        super().__init__({
            "r_addr": In(addr), "r_en": In(1), "r_data": Out(width),
            "w_addr": In(addr), "w_en": In(1), "w_data": In(width),
        })

    @property
    def bits(self) -> int:
        return self._words * self._width

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._width, depth=max(self._words, 2), init=[])
        rd = mem.read_port()
        wr = mem.write_port()
        m.d.comb += [rd.addr.eq(self.r_addr), rd.en.eq(self.r_en), self.r_data.eq(rd.data),
                     wr.addr.eq(self.w_addr), wr.en.eq(self.w_en), wr.data.eq(self.w_data)]
        return m


def sync_memory(platform, words: int, width: int):
    """A :class:`SyncMemory` and what to register as the submodule: the memory itself (the
    Amaranth simulator), or the instance of its shared module: a macro at
    :data:`MACRO_MIN_BITS` and above, a clock-gated register file below."""
    mem = SyncMemory(words, width)
    name = macro_name if mem.bits >= MACRO_MIN_BITS else regfile_name
    return mem, shared(platform, mem, name=name(words, width), key=(words, width))
