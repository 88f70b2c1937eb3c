"""Clock-gated registers: flip-flops that hold data between uses and load only on an enable that
is on exactly when they must load (a valid, a push, a request), emitted as shared modules whose
flip-flops synthesis clock-gates, as it does the rows of a register file (:mod:`.sram`).

A block asks for one in its ``elaborate``::

    q = gated_register(m, platform, "entry", d=head.as_value(), en=issue)

* The register is split into parts of at most :data:`PART` bits (:func:`parts`), each a
  :class:`GatedRegister`: with the platform that ``gen.generate`` converts with, one shared
  module per width, named ``<top>.gated_reg_<W>`` (:func:`gated_name`). ``gen/synth.py``
  clock-gates these modules: Yosys' ``clockgate`` turns the part's flip-flops, which share the
  enable, into one integrated clock gate (ICG) driving enable-less flip-flops
  (``gen.synth.CLOCKGATE``), so a register that does not load sees no clock edge. A part is
  small enough for the smallest ICG to drive its clock pins, as a placed design's clock tree
  would split it.
* The flip-flops have no reset (``reset_less``): what they hold is qualified by a valid bit
  kept elsewhere (with its reset). A reset would make a synchronous-reset flip-flop, whose
  reset the gate would then have to pass as well; without one, the gate opens exactly on
  ``en`` and the energy model counts the openings from the action that drives ``en``
  (``sim/energy.py``: each gate open per action, its bits written).
"""

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .hier import shared

__all__ = ["PART", "GatedRegister", "gated_register", "gated_name", "parts"]

PART = 32
"""Most flip-flops behind one clock gate (the part width), as the weight and output queues'
parts (:class:`sparsegen.hw.scnn._Queue`) bound an enable's fan-out."""


def parts(width: int) -> list[int]:
    """Widths of the parts of a ``width``-bit gated register: ``ceil(width / PART)`` parts of
    near-equal width, the wider ones first."""
    n = -(-width // PART)
    base, extra = divmod(width, n)
    return [base + (k < extra) for k in range(n)]


def gated_name(width: int) -> str:
    """Base name of a gated register part's shared module: ``gated_reg_<width>``."""
    return f"gated_reg_{width}"


class GatedRegister(wiring.Component):
    """``width`` flip-flops without reset: ``q`` takes ``d`` at the edge when ``en``, else
    holds. Timing: ``q`` from the cycle after the enabled edge."""

    def __init__(self, width: int):
        self._width = width
        super().__init__({"d": In(width), "en": In(1), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        held = Signal(self._width, reset_less=True)
        with m.If(self.en):
            m.d.sync += held.eq(self.d)
        m.d.comb += self.q.eq(held)
        return m


def gated_register(m: Module, platform, name: str, d, en) -> Value:
    """A clock-gated register loading ``d`` when ``en`` (see the module docs), registered in
    ``m`` as ``<name>_g0``, ``<name>_g1``, ... (one submodule per part); returns its output
    (as wide as ``d``)."""
    d = Value.cast(d)
    out, lo = [], 0
    for n, width in enumerate(parts(len(d))):
        reg = GatedRegister(width)
        m.submodules[f"{name}_g{n}"] = shared(platform, reg, name=gated_name(width), key=width)
        m.d.comb += [reg.d.eq(d[lo:lo + width]), reg.en.eq(en)]
        out.append(reg.q)
        lo += width
    return Cat(*out)
