"""Shared test helpers: Amaranth-simulator stream transfers with optional random stalls, and
skipping techs whose liberty files are absent."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design, make_config
from sparsegen.sim.layer import assemble_output
from sparsegen.sim.tb.bits import pack_many, packed_ints

__all__ = ["stream_put", "stream_get", "simulate", "cycle_counter", "requires_tech",
           "keep_largest", "generated_design", "play_job"]


async def stream_put(ctx, stream, payload, *, rng: random.Random | None = None,
                     idle_prob: float = 0.0):
    """Offer ``payload`` on ``stream`` and wait until it is taken (idle cycles first)."""
    while rng is not None and rng.random() < idle_prob:
        await ctx.tick()
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, rng: random.Random | None = None,
                     stall_prob: float = 0.0):
    """Take one payload from ``stream``, holding ``ready`` low on random cycles."""
    while rng is not None and rng.random() < stall_prob:
        await ctx.tick()
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def simulate(dut, *testbenches, vcd: str | None = None):
    """Run ``dut`` with a 1 MHz clock and the given async testbenches to completion."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def cycle_counter(dut, total: int, log: dict, *, on_done=None):
    """A testbench counting the clock edges from the first transfer on ``dut.i`` to the last of
    ``total`` transfers on ``dut.o``, both included (the ``cycles`` of the cycle models), into
    ``log["cycles"]``; ``on_done(ctx)`` may then read more of the design."""
    async def counter(ctx):
        edge, first, last, outs = 0, None, None, 0
        while outs < total:
            i_fire = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            o_fire = ctx.get(dut.o.valid) and ctx.get(dut.o.ready)
            await ctx.tick()
            edge += 1
            if i_fire and first is None:
                first = edge
            if o_fire:
                outs += 1
                last = edge
        log["cycles"] = last - first + 1
        if on_done is not None:
            on_done(ctx)
    return counter


def requires_tech(tech: str):
    """Skip (with the reason shown) where ``tech``'s liberty files are absent: the PDK folder is
    reference material outside the repository, and the project must run without it."""
    from sparsegen.gen.synth import tech_missing
    reason = tech_missing(tech)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def keep_largest(a, bz, nnz):
    """The oracle of activation DBB: in every block of ``bz`` along K keep the ``nnz`` largest
    |a| (ties to the lower index), by an explicit sort (independent of the golden prune)."""
    m, k = a.shape
    padded = np.pad(a.astype(np.int64), ((0, 0), (0, (-k) % bz)))
    kept = np.zeros_like(padded)
    for i in range(m):
        for b in range(0, padded.shape[1], bz):
            block = padded[i, b:b + bz]
            for j in sorted(range(bz), key=lambda j: (-abs(int(block[j])), j))[:nnz]:
                kept[i, b + j] = block[j]
    return kept[:, :k]


def generated_design(name: str = "dbb-pe", **params):
    """``generate()`` of design ``name`` with ``params`` (validated as the CLI would)."""
    design = get_design(name)
    return generate(design, make_config(design, params))


def play_job(design: str, dut, config, job, *, stalls: bool, inputs=()):
    """Stream a host's prepared GEMM ``job`` through ``dut`` (an array of ``design`` built from
    ``config``) in the Amaranth simulator, with random idle input and output stalls when
    ``stalls``; ``inputs`` are (signal, value) pairs of run-time inputs, set first. Returns
    (the assembled output, the cycle count)."""
    layout = generate(get_design(design), config).metadata["layouts"]["i__payload"]
    words = packed_ints(pack_many(layout, job.payload, job.steps))
    rows_out, log = [], {}
    r = random.Random(5)
    idle, stall = (0.3, 0.3) if stalls else (0.0, 0.0)
    total = job.tiles[0] * job.tiles[1] * config.rows

    async def producer(ctx):
        for signal, value in inputs:
            ctx.set(signal, value)
        shape = dut.i.payload.shape()
        for word in words:
            await stream_put(ctx, dut.i, shape.from_bits(word), rng=r, idle_prob=idle)

    async def consumer(ctx):
        for _ in range(total):
            rows_out.append([int(x) for x in await stream_get(ctx, dut.o, rng=r,
                                                              stall_prob=stall)])

    simulate(dut, producer, consumer, cycle_counter(dut, total, log))
    return assemble_output(np.array(rows_out), job, config.rows, config.cols), log["cycles"]
