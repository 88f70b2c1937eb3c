"""The cocotb side of the stream player (see :mod:`sparsegen.sim.player`).

Environment: ``SPARSEGEN_PLAYER`` holds JSON ``{"inputs": {port: value}, "timeout_cycles": N,
"stats": path}``; the statistics (cycles, counts, wall time, outputs named in ``read``) are
written as JSON to ``stats``.
"""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge

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
    seconds = time.perf_counter() - start
    stats = {
        "done": fired is not timeout,
        "cycles": int(dut.cycles.value),
        "in_count": int(dut.in_count.value),
        "out_count": int(dut.out_count.value),
        "seconds": seconds,
        "read": {name: int(getattr(dut, name).value) for name in job.get("read", [])},
    }
    with open(job["stats"], "w") as f:
        json.dump(stats, f)
    assert stats["done"], (f"player timed out after {job['timeout_cycles']} cycles: "
                           f"{stats['in_count']} steps in, {stats['out_count']} results out")
