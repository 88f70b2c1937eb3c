"""cocotb drivers for ``amaranth.lib.stream`` ports, and the clock/reset every testbench needs.

Sampling rule: each driver decides in the ReadOnly phase of a cycle (all combinational logic
settled, including ``ready`` that depends on the other side) whether a transfer happens at the
coming rising edge, and changes its own outputs only right after that edge. This is exact on
Verilator and Icarus alike, whatever order the coroutines run in.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from .bits import pack, unpack
from .runner import load_meta

__all__ = ["TB", "StreamSource", "StreamSink"]


class TB:
    """Clock, reset and the design metadata of a generated design under test.

    Attributes: ``dut``, ``meta`` (the ``<top>.json`` contents), ``config`` (its config),
    ``cycle`` (rising edges since :meth:`start`).
    """

    def __init__(self, dut, period_ns: int = 10):
        self.dut = dut
        self.meta = load_meta()
        self.config = self.meta["config"]
        self.period_ns = period_ns
        self.cycle = 0

    async def start(self, reset_cycles: int = 2):
        """Start the clock and the cycle counter, then hold reset for ``reset_cycles``."""
        Clock(self.dut.clk, self.period_ns, unit="ns").start()
        cocotb.start_soon(self._count())
        self.dut.rst.value = 1
        for _ in range(reset_cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    def layout(self, port: str) -> dict:
        """Layout description of a port, e.g. ``i__payload``."""
        return self.meta["layouts"][port]

    def source(self, name: str, **kwargs) -> "StreamSource":
        return StreamSource(self.dut, name, self.layout(f"{name}__payload"), **kwargs)

    def sink(self, name: str, **kwargs) -> "StreamSink":
        return StreamSink(self.dut, name, self.layout(f"{name}__payload"), **kwargs)


class StreamSource:
    """Drives ``<name>__valid``/``__payload`` from a list of payload values (nested values for
    :func:`~.bits.pack`, or already packed ints).

    ``idle_prob`` is the chance of inserting an idle cycle before a beat (random stalls on the
    producer side); ``rng`` makes it reproducible.
    """

    def __init__(self, dut, name: str, layout: dict, *, idle_prob: float = 0.0,
                 rng: random.Random | None = None):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.layout = layout
        self.idle_prob = idle_prob
        self.rng = rng or random.Random(0)
        self.sent_cycles: list[int] = []     # index of the edge of each accepted transfer
        self.valid.value = 0

    async def send(self, beats, tb: TB | None = None):
        """Send every beat; returns after the last one was accepted."""
        for beat in beats:
            while self.rng.random() < self.idle_prob:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            # Pre-packed beats (ints, e.g. from bits.packed_ints) skip the per-beat packing.
            self.payload.value = beat if isinstance(beat, int) else pack(self.layout, beat)
            while True:
                await ReadOnly()
                fired = bool(self.ready.value)
                if fired and tb is not None:
                    # In ReadOnly the edge count is settled; the transfer is the next edge.
                    self.sent_cycles.append(tb.cycle + 1)
                await RisingEdge(self.clk)
                if fired:
                    break
        self.valid.value = 0


class StreamSink:
    """Accepts transfers on ``<name>__valid``/``__ready``, with random back-pressure.

    ``stall_prob`` is the chance that ``ready`` is low in a cycle. Received payloads are
    unpacked through the layout into :attr:`items`.
    """

    def __init__(self, dut, name: str, layout: dict, *, stall_prob: float = 0.0,
                 rng: random.Random | None = None):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.layout = layout
        self.stall_prob = stall_prob
        self.rng = rng or random.Random(1)
        self.items: list = []
        self.cycles: list[int] = []          # index of the edge of each transfer
        self.ready.value = 0

    async def run(self, tb: TB | None = None):
        """Receive forever (start with ``cocotb.start_soon``)."""
        while True:
            ready = self.rng.random() >= self.stall_prob
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value:
                self.items.append(unpack(self.layout, self.payload.value.to_unsigned()))
                if tb is not None:
                    self.cycles.append(tb.cycle + 1)
            await RisingEdge(self.clk)

    async def wait_for(self, count: int, timeout_cycles: int):
        """Wait until ``count`` items arrived; fail after ``timeout_cycles`` edges."""
        for _ in range(timeout_cycles):
            if len(self.items) >= count:
                return
            await RisingEdge(self.clk)
        raise AssertionError(f"timeout: {len(self.items)} of {count} results after "
                             f"{timeout_cycles} cycles")
