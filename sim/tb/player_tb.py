"""The cocotb side of the stream player (see :mod:`sparsegen.sim.player`).

Environment: ``SPARSEGEN_PLAYER`` holds JSON ``{"inputs": {port: value}, "timeout_cycles": N,
"stats": path}``; the statistics (cycles, counts, wall time, outputs named in ``read``) are
written as JSON to ``stats`` once the player has ``settled`` (the window after the last
expected result in which it looks for extra results).
"""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge

from ..fastplay import STATS

PLAYER_ENV = "SPARSEGEN_PLAYER"


@cocotb.test()
async def play(dut):
    """Reset, set the run-time inputs, let the player stream everything, record counters."""
    job = json.loads(os.environ[PLAYER_ENV])
    Clock(dut.clk, 10, unit="ns").start()
    for name, value in job.get("inputs", {}).items():
        getattr(dut, name).value = value
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    start = time.perf_counter()
    timeout = ClockCycles(dut.clk, job["timeout_cycles"])
    fired = await First(RisingEdge(dut.done), timeout)
    done = fired is not timeout
    if done:
        # The strictness window after the last expected result (sim/fastplay.py
        # player_rules) is bounded by the run itself.
        await RisingEdge(dut.settled)
    seconds = time.perf_counter() - start
    stats = {"done": done, "seconds": seconds,
             **{name: int(getattr(dut, name).value) for name in STATS},
             "read": {name: int(getattr(dut, name).value)
                      for name in (*job.get("read", []), *job.get("probes", []))}}
    with open(job["stats"], "w") as f:
        json.dump(stats, f)
    assert stats["done"], (f"player timed out after {job['timeout_cycles']} cycles: "
                           f"{stats['in_count']} steps in, {stats['out_count']} results out")
