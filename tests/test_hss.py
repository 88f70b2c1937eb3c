"""hss-mux and gh-flat: config validation, Verilog conversion, Amaranth simulator vs golden
for every pattern of the set (with and without random stalls), latency and throughput."""

import random
import re

import numpy as np
import pytest

from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design
from sparsegen.hw.hss import (
    GHFlatConfig,
    GHFlatPE,
    HSSMuxConfig,
    HSSMuxPE,
    flat_pe_input_layout,
    flat_ratios,
    hss_pe_input_layout,
)
from sparsegen.sim.golden import gemm as ggemm
from sparsegen.sim.highlight import flat_pe_beats, hss_pe_beats, random_hss_weights
from sparsegen.sim.stimulus import random_operands

from helpers import simulate, stream_get, stream_put

# -- config validation ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(patterns="4:4,4:5"), ValueError,
     "`patterns` must look like '4:4,4:5 x 4:4,2:4' (rank-1 G:H options x rank-0 G:H "
     "options), not '4:4,4:5'"),
    (dict(patterns="4:4,5:4 x 4:4"), ValueError,
     "`patterns`: rank-1 option 5:4 must have 1 <= G <= H <= 16"),
    (dict(patterns="4:4 x 4:4,2:4,4:4"), ValueError,
     "`patterns`: rank-0 option 4:4 is listed twice"),
    (dict(patterns="4:4 x 4:4,four"), ValueError,
     "`patterns`: rank-0 option 'four' must look like G:H"),
    (dict(patterns="4:4 x 4:4,2:8"), ValueError,
     "`patterns`: rank-0 options must share one H0, not 4, 8"),
    (dict(patterns="4:4 x 4:4,3:4"), ValueError,
     "`patterns`: rank-0 G0 values 4, 3 must each divide the next larger one"),
    (dict(patterns="4:5 x 4:4,2:4"), ValueError,
     "`patterns` must include a dense pattern (H:H at both ranks), not '4:5 x 4:4,2:4'"),
    (dict(patterns="16:16 x 8:8"), ValueError,
     "`patterns`: rank-1 groups of up to 128 values (H1 * H0) are over 64"),
    (dict(patterns=4), TypeError, "`patterns` must be a str, not int 4"),
    (dict(data_width=17), ValueError, "`data_width` must be between 2 and 16, not 17"),
    (dict(acc_width=4), ValueError, "`acc_width` must be between `data_width` (8) and 64, "
                                    "not 4"),
])
def test_hss_config_rejects(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        HSSMuxConfig(**kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(ratios="4:4,5:4"), ValueError, "`ratios`: ratio 5:4 must have 1 <= G <= H <= 64"),
    (dict(ratios="4:4,4:4"), ValueError, "`ratios`: ratio 4:4 is listed twice"),
    (dict(ratios="4-4"), ValueError, "`ratios`: ratio '4-4' must look like G:H"),
    (dict(lanes=0), ValueError, "`lanes` must be between 1 and 16, not 0"),
    (dict(lanes=True), TypeError, "`lanes` must be an int, not bool True"),
])
def test_flat_config_rejects(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        GHFlatConfig(**kwargs)


def test_derived_sizes():
    cfg = HSSMuxConfig()
    assert len(cfg.pattern_set) == 12 and cfg.pattern_set[0] == (4, 4, 4, 4)
    assert (cfg.lanes, cfg.slots, cfg.h0, cfg.h1_max, cfg.g1_max, cfg.window) == \
        (4, 4, 4, 7, 4, 28)
    assert [cfg.steps(p) for p in cfg.pattern_set[:3]] == [4, 2, 1]
    odd = HSSMuxConfig(patterns="4:4,3:5 x 4:4,2:4")
    assert odd.slots == 2 and odd.steps((3, 5, 2, 4)) == 2
    flat = GHFlatConfig()
    assert flat.ratios == flat_ratios(cfg.patterns)
    assert len(flat.ratio_list) == 12 and (flat.g_max, flat.window) == (16, 28)
    assert [flat.steps(r) for r in flat.ratio_list[:3]] == [4, 2, 1]


def test_component_checks_config_type():
    with pytest.raises(TypeError, match="`config` must be of type HSSMuxConfig, not GHFlatConfig"):
        HSSMuxPE(GHFlatConfig())


# -- conversion ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, params, layout", [
    ("hss-mux", {}, hss_pe_input_layout),
    ("hss-mux", {"patterns": "2:2,1:2 x 2:2,1:2", "data_width": 4}, hss_pe_input_layout),
    ("gh-flat", {}, flat_pe_input_layout),
])
def test_verilog_ports_and_determinism(name, params, layout):
    design = get_design(name)
    config = design.config_cls(**params)
    first, second = generate(design, config), generate(design, config)
    assert first.verilog == second.verilog
    header = re.search(r"^module (\w+)\((.*?)\);", first.verilog, re.M)
    assert header.group(1) == design.top
    ports = {p.strip() for p in header.group(2).split(",")}
    assert ports == {"clk", "rst", "pattern", "i__valid", "i__ready", "i__payload",
                     "o__valid", "o__ready", "o__payload"}
    meta = first.metadata
    assert meta["layouts"]["i__payload"]["width"] == layout(config).size
    assert meta["layouts"]["o__payload"]["width"] == config.acc_width
    modules = set(re.findall(r"^module \\?([^\s(]+)", first.verilog, re.M))
    top = design.top
    assert {f"{top}.seq", f"{top}.pe", f"{top}.pe.lanes", f"{top}.pe.tree"} <= modules
    assert f"{top}.pe.mux" in modules


# -- Amaranth simulator vs golden --------------------------------------------------------------


def _jobs(config, pattern, rng, count, flat):
    """``count`` dot products (beats, expected) with HSS weights of ``pattern``."""
    g1, h1, g0, h0 = pattern
    jobs = []
    for _ in range(count):
        k = int(rng.integers(1, 3 * h1 * h0 + 1))       # partial groups included
        a = random_operands(rng, k, config.data_width, density=0.7)
        w = random_hss_weights(rng, k, 1, pattern, config.data_width,
                               density=float(rng.choice([0.3, 0.9])))[:, 0]
        beats = (flat_pe_beats(config, (g1 * g0, h1 * h0), a, w) if flat
                 else hss_pe_beats(config, pattern, a, w))
        expected = int(ggemm.gemm(a[None], w[:, None], config.acc_width)[0, 0])
        jobs.append((beats, expected))
    return jobs


HSS_PRESETS = [
    HSSMuxConfig(),
    HSSMuxConfig(patterns="2:2,1:2 x 2:2,1:2", data_width=4, acc_width=6),
    HSSMuxConfig(patterns="4:4,3:5,1:3 x 4:4,2:4,1:4", data_width=16, acc_width=40),
]
FLAT_PRESETS = [
    GHFlatConfig(),
    GHFlatConfig(ratios="6:6,4:6,3:9,1:3", lanes=3, data_width=4, acc_width=7),
]


def _run(config, stalls, count=4):
    """Every pattern (ratio) of the set in one simulation; the pattern changes while idle."""
    flat = isinstance(config, GHFlatConfig)
    dut = GHFlatPE(config) if flat else HSSMuxPE(config)
    layout = (flat_pe_input_layout if flat else hss_pe_input_layout)(config)
    if flat:
        # The flat ratio r stands for an HSS pattern with the same density and group size.
        settings = [(g, h, 1, 1) for g, h in config.ratio_list]
    else:
        settings = list(config.pattern_set)
    rng = np.random.default_rng(len(settings))
    batches = [_jobs(config, p, rng, count, flat) for p in settings]
    r = random.Random(11)
    idle, stall = (0.3, 0.4) if stalls else (0.0, 0.0)
    results = []

    async def producer(ctx):
        done = 0
        for index, batch in enumerate(batches):
            while len(results) < done:                  # drained: safe to switch
                await ctx.tick()
            ctx.set(dut.pattern, index)
            for beats, _ in batch:
                for beat in beats:
                    await stream_put(ctx, dut.i, layout.const(beat), rng=r, idle_prob=idle)
            done += len(batch)

    async def consumer(ctx):
        for _ in range(sum(len(b) for b in batches)):
            results.append(await stream_get(ctx, dut.o, rng=r, stall_prob=stall))

    simulate(dut, producer, consumer)
    return results, [expected for batch in batches for _, expected in batch]


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
@pytest.mark.parametrize("config", HSS_PRESETS + FLAT_PRESETS, ids=repr)
def test_amaranth_sim_matches_golden(config, stalls):
    got, expected = _run(config, stalls)
    assert got == expected


def test_a_broken_weight_encoding_is_caught():
    """The test above can fail: a weight offset off by one changes the result."""
    config = HSS_PRESETS[0]
    dut = HSSMuxPE(config)
    layout = hss_pe_input_layout(config)
    a = np.arange(1, 17)
    w = np.zeros(16, dtype=np.int64)
    w[[1, 6]] = [3, -2]
    beats = hss_pe_beats(config, (4, 4, 2, 4), a, w)
    beats[0]["w"]["offset"][0] += 1
    got = []

    async def bench(ctx):
        ctx.set(dut.pattern, 1)
        for beat in beats:
            await stream_put(ctx, dut.i, layout.const(beat))
        got.append(await stream_get(ctx, dut.o))

    simulate(dut, bench)
    assert got == [3 * 3 - 2 * 7] and got != [3 * 2 - 2 * 7]


@pytest.mark.parametrize("config", [HSS_PRESETS[0], FLAT_PRESETS[0]], ids=repr)
def test_latency_and_throughput(config):
    """Groups are taken every T cycles; a result leaves T + 4 edges after its last group."""
    flat = isinstance(config, GHFlatConfig)
    dut = GHFlatPE(config) if flat else HSSMuxPE(config)
    layout = (flat_pe_input_layout if flat else hss_pe_input_layout)(config)
    index = 3                                      # 4:5,4:4 / 16:20: T = 4
    pattern = (4, 5, 4, 4) if not flat else (16, 20, 1, 1)
    t_steps = 4
    jobs = _jobs(config, pattern, np.random.default_rng(2), 3, flat)
    beats = [beat for beats, _ in jobs for beat in beats]
    taken, given = [], []

    async def bench(ctx):
        ctx.set(dut.pattern, index)
        ctx.set(dut.o.ready, 1)
        pending = list(beats)
        for cycle in range(t_steps * len(beats) + 20):
            ctx.set(dut.i.valid, int(bool(pending)))
            if pending:
                ctx.set(dut.i.payload, layout.const(pending[0]))
            i_fire = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            o_fire = ctx.get(dut.o.valid) and ctx.get(dut.o.ready)
            if i_fire:
                taken.append((cycle, pending.pop(0)["last"]))
            if o_fire:
                given.append(cycle)
            await ctx.tick()

    simulate(dut, bench)
    assert [c for c, _ in taken] == [t_steps * n for n in range(len(beats))]
    last_cycles = [c for c, last in taken if last]
    assert [g - c for g, c in zip(given, last_cycles)] == [t_steps + 4] * len(jobs)


@pytest.mark.synth
@pytest.mark.parametrize("name", ["hss-mux", "gh-flat"])
def test_synthesis_smoke(name, tmp_path, monkeypatch):
    """Both PEs synthesize for sky130hd with the selection logic as its own modules."""
    from sparsegen.gen.synth import synthesize
    monkeypatch.setenv("SPARSEGEN_CACHE_DIR", str(tmp_path))
    design = get_design(name)
    config = (HSSMuxConfig(patterns="4:4,4:6 x 4:4,2:4") if name == "hss-mux"
              else GHFlatConfig(ratios="16:16,8:16,16:24,8:24"))
    generated = generate(design, config)
    result = synthesize(generated.verilog, generated.top, "sky130hd")
    top = generated.top
    assert {f"{top}.seq", f"{top}.pe.mux", f"{top}.pe.lanes"} <= set(result.modules)
    parts = sum(m["area_um2"] * m["instances"] for m in result.modules.values())
    assert parts == pytest.approx(result.area_um2, rel=1e-6) and result.area_um2 > 1000
