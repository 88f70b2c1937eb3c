"""dense-pe and dbb-pe: config validation, Verilog conversion, Amaranth simulator vs golden."""

import random
import re

import numpy as np
import pytest

from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design
from sparsegen.hw.pe import (
    DBBPEConfig,
    DensePE,
    DensePEConfig,
    WeightMuxPE,
    dbb_pe_input_layout,
    dense_pe_input_layout,
)
from sparsegen.sim.stimulus import pe_beats, pe_dot_products

from helpers import simulate, stream_get, stream_put

# -- config validation ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(nnz=9), ValueError, "`nnz` must be between 1 and `block_size` (8), not 9"),
    (dict(nnz=0), ValueError, "`nnz` must be between 1 and `block_size` (8), not 0"),
    (dict(block_size=12, nnz=2), ValueError, "`block_size` must be a power of two, not 12"),
    (dict(block_size=64), ValueError, "`block_size` must be between 2 and 32, not 64"),
    (dict(block_size=1, nnz=1), ValueError, "`block_size` must be between 2 and 32, not 1"),
    (dict(data_width=17), ValueError, "`data_width` must be between 2 and 16, not 17"),
    (dict(data_width=16, acc_width=12), ValueError,
     "`acc_width` must be between `data_width` (16) and 64, not 12"),
    (dict(acc_width=65), ValueError,
     "`acc_width` must be between `data_width` (8) and 64, not 65"),
    (dict(block_size="8"), TypeError, "`block_size` must be an int, not str '8'"),
    (dict(nnz=True), TypeError, "`nnz` must be an int, not bool True"),
    (dict(zvcg=1), TypeError, "`zvcg` must be a bool, not int 1"),
])
def test_dbb_config_rejects(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        DBBPEConfig(**kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(block_size=6), ValueError, "`block_size` must be a power of two, not 6"),
    (dict(data_width=1), ValueError, "`data_width` must be between 2 and 16, not 1"),
    (dict(zvcg="yes"), TypeError, "`zvcg` must be a bool, not str 'yes'"),
])
def test_dense_config_rejects(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        DensePEConfig(**kwargs)


def test_config_edges_accepted():
    assert DBBPEConfig(block_size=2, nnz=2, data_width=2, acc_width=2).lanes == 2
    assert DBBPEConfig(block_size=32, nnz=1, data_width=16, acc_width=64).lanes == 1
    assert DensePEConfig(block_size=32).lanes == 32


def test_component_checks_config_type():
    with pytest.raises(TypeError, match="`config` must be of type DBBPEConfig, not DensePEConfig"):
        WeightMuxPE(DensePEConfig())


# -- conversion ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, params, gated", [
    ("dense-pe", {}, False),
    ("dense-pe", {"zvcg": True}, True),
    ("dbb-pe", {"block_size": 16, "nnz": 2}, False),
    ("dbb-pe", {"zvcg": True}, True),
])
def test_verilog_ports_and_determinism(name, params, gated):
    design = get_design(name)
    config = design.config_cls(**params)
    first, second = generate(design, config), generate(design, config)
    assert first.verilog == second.verilog
    header = re.search(r"^module (\w+)\((.*?)\);", first.verilog, re.M)
    assert header.group(1) == design.top
    ports = {p.strip() for p in header.group(2).split(",")}
    expected = {"clk", "rst", "i__valid", "i__ready", "i__payload",
                "o__valid", "o__ready", "o__payload"} | ({"gated"} if gated else set())
    assert ports == expected
    assert "/work" not in first.verilog and "src =" not in first.verilog
    layout = (dbb_pe_input_layout if name == "dbb-pe" else dense_pe_input_layout)(config)
    meta = first.metadata
    assert meta["layouts"]["i__payload"]["width"] == layout.size
    assert meta["ports"]["i"]["members"]["payload"]["width"] == layout.size
    assert meta["ports"]["o"]["members"]["payload"]["width"] == config.acc_width
    # The submodules survive as their own Verilog modules (per-block area breakdown).
    modules = re.findall(r"^module (\S+)", first.verilog, re.M)
    assert any(m.endswith(".lanes") for m in modules) and any(m.endswith(".tree")
                                                              for m in modules)
    assert any(m.endswith(".mux") for m in modules) == (name == "dbb-pe")


# -- Amaranth simulator vs golden ------------------------------------------------------------

PRESETS = [
    DensePEConfig(block_size=4, data_width=4),
    DensePEConfig(block_size=8, data_width=8, zvcg=True),
    DensePEConfig(block_size=16, data_width=16, acc_width=20),
    DBBPEConfig(block_size=4, nnz=1, data_width=8, zvcg=True),
    DBBPEConfig(block_size=8, nnz=4, data_width=8),
    DBBPEConfig(block_size=8, nnz=8, data_width=4, acc_width=6),
    DBBPEConfig(block_size=16, nnz=2, data_width=16, zvcg=True),
]


def _component(config):
    return WeightMuxPE(config) if isinstance(config, DBBPEConfig) else DensePE(config)


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
@pytest.mark.parametrize("config", PRESETS, ids=repr)
def test_amaranth_sim_matches_golden(config, stalls):
    dut = _component(config)
    layout = (dbb_pe_input_layout if isinstance(config, DBBPEConfig)
              else dense_pe_input_layout)(config)
    jobs = pe_dot_products(config.as_dict(), np.random.default_rng(7), 12)
    rng = random.Random(3)
    idle, stall = (0.3, 0.4) if stalls else (0.0, 0.0)
    results = []

    async def producer(ctx):
        for job in jobs:
            for beat in pe_beats(job):
                await stream_put(ctx, dut.i, layout.const(beat), rng=rng, idle_prob=idle)

    async def consumer(ctx):
        for _ in jobs:
            results.append(await stream_get(ctx, dut.o, rng=rng, stall_prob=stall))
        await ctx.tick().repeat(2)
        if config.zvcg:
            results.append(("gated", ctx.get(dut.gated)))

    simulate(dut, producer, consumer)
    expected = [job.expected for job in jobs]
    if config.zvcg:
        expected.append(("gated", sum(job.gated for job in jobs)))
    assert results == expected


@pytest.mark.parametrize("config", [PRESETS[0], PRESETS[4]], ids=repr)
def test_latency_and_throughput(config):
    """Back-to-back blocks are taken every cycle; a result leaves LATENCY edges after its last
    block."""
    dut = _component(config)
    layout = (dbb_pe_input_layout if isinstance(config, DBBPEConfig)
              else dense_pe_input_layout)(config)
    jobs = pe_dot_products(config.as_dict(), np.random.default_rng(1), 6)
    beats = [beat for job in jobs for beat in pe_beats(job)]
    taken, given = [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        pending = list(beats)
        for cycle in range(len(beats) + 20):
            ctx.set(dut.i.valid, int(bool(pending)))
            if pending:
                ctx.set(dut.i.payload, layout.const(pending[0]))
            i_fire, o_fire = (ctx.get(dut.i.valid) and ctx.get(dut.i.ready),
                              ctx.get(dut.o.valid) and ctx.get(dut.o.ready))
            if i_fire:
                taken.append((cycle, pending.pop(0)["last"]))
            if o_fire:
                given.append(cycle)
            await ctx.tick()

    simulate(dut, bench)
    assert [c for c, _ in taken] == list(range(len(beats)))     # one block per cycle
    last_cycles = [c for c, last in taken if last]
    assert len(given) == len(jobs)
    assert [g - t for g, t in zip(given, last_cycles)] == [dut.LATENCY] * len(jobs)
