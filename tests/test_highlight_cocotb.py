"""hss-mux, gh-flat and highlight: generated Verilog on Verilator (cocotb) against golden.

The pattern is a run-time input, so one Verilator build per config serves every pattern of its
set: each cocotb test walks all of them (dense included), switching while the design is idle.

* protocol tests (cocotb tests below): random dot products (PEs) and random GEMMs of odd shapes
  (array), streamed by the cocotb drivers with random stalls on both sides;
* layer runs through the stream player (``design.host.run``, what ``sparsegen sim`` does): full-rate
  streams whose cycle counts must equal the closed-form model, for every pattern.
"""

import dataclasses
import random

import cocotb
import numpy as np
import pytest

from sparsegen.gen.registry import get_design
from sparsegen.sim.golden import gemm as ggemm
from sparsegen.sim.highlight import (
    flat_pe_beats,
    hss_pe_beats,
    prepare_highlight,
    random_hss_weights,
)
from sparsegen.sim.layer import assemble_output
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import bit_toggles, pack, pack_many, packed_ints
from sparsegen.sim.tb.stream import TB

# -- inside the simulator ------------------------------------------------------------------


def _settings(config):
    """(port value, HSS pattern whose weights to draw, flat ratio or None) of every setting."""
    if hasattr(config, "ratio_list"):
        return [(r, (g, h, 1, 1), (g, h)) for r, (g, h) in enumerate(config.ratio_list)]
    return [(p, pattern, None) for p, pattern in enumerate(config.pattern_set)]


async def _run_batch(tb, src, snk, words, count, timeout):
    task = cocotb.start_soon(snk.run(tb))
    await src.send(words, tb)
    await snk.wait_for(count, timeout_cycles=timeout)
    task.cancel()
    return snk.items


@cocotb.test()
@cocotb.parametrize(backpressure=[(0.0, 0.0), (0.3, 0.4)])
async def pe_matches_golden(dut, backpressure):
    """Random dot products (partial groups, empty blocks, extremes) for every pattern."""
    tb = TB(dut)
    config = get_design(tb.meta["design"]).config_cls(**tb.config)
    layout = tb.layout("i__payload")
    rng = np.random.default_rng(17)
    await tb.start()
    for index, pattern, ratio in _settings(config):
        g1, h1, g0, h0 = pattern
        jobs = []
        for _ in range(6):
            k = int(rng.integers(1, 3 * h1 * h0 + 1))
            a = random_operands(rng, k, config.data_width, density=0.7)
            w = random_hss_weights(rng, k, 1, pattern, config.data_width,
                                   density=float(rng.choice([0.3, 0.9])))[:, 0]
            beats = (flat_pe_beats(config, ratio, a, w) if ratio else
                     hss_pe_beats(config, pattern, a, w))
            jobs.append((beats, int(ggemm.gemm(a[None], w[:, None], config.acc_width)[0, 0])))
        dut.pattern.value = index
        r = random.Random(index)
        src = tb.source("i", idle_prob=backpressure[0], rng=r)
        snk = tb.sink("o", stall_prob=backpressure[1], rng=r)
        words = [pack(layout, beat) for beats, _ in jobs for beat in beats]
        got = await _run_batch(tb, src, snk, words, len(jobs), 100 + 40 * len(words))
        assert got == [expected for _, expected in jobs], (index, pattern)


@cocotb.test()
@cocotb.parametrize(backpressure=[(0.0, 0.0), (0.3, 0.4)])
async def array_gemm_matches_golden(dut, backpressure):
    """A GEMM of an odd shape (13 x 37 x 11) for every pattern of the set, with stalls."""
    tb = TB(dut)
    base = get_design(tb.meta["design"]).config_cls(**tb.config)
    await tb.start()
    for index, pattern in enumerate(base.pattern_set):
        config = dataclasses.replace(base, pattern="{}:{},{}:{}".format(*pattern))
        rng = np.random.default_rng(index)
        a = random_operands(rng, (13, 37), config.data_width, density=0.7)
        w = random_hss_weights(rng, 37, 11, pattern, config.data_width, share=config.cols)
        job = prepare_highlight(config, a, w)
        assert job.inputs["pattern"] == index
        dut.pattern.value = index
        words = packed_ints(pack_many(tb.layout("i__payload"), job.payload, job.steps))
        r = random.Random(index)
        src = tb.source("i", idle_prob=backpressure[0], rng=r)
        snk = tb.sink("o", stall_prob=backpressure[1], rng=r)
        rows = job.tiles[0] * job.tiles[1] * config.rows
        items = await _run_batch(tb, src, snk, words, rows, 400 + 60 * (rows + job.steps * 4))
        output = assemble_output(np.array(items), job, config.rows, config.cols)
        assert (output == job.expected).all(), config.pattern


# -- pytest runners ------------------------------------------------------------------------

PE_CONFIGS = [
    ("hss-mux", {}),
    ("hss-mux", dict(patterns="4:4,3:5,1:3 x 4:4,2:4,1:4", data_width=4, acc_width=9)),
    ("gh-flat", {}),
]
ARRAY_CONFIGS = [
    ("highlight", dict(rows=2, cols=3)),
    # In make test-slow (a 15 s cocotb build); the 2x3 array covers the default suite.
    pytest.param("highlight", dict(rows=3, cols=2, patterns="2:2,1:3 x 2:2,1:2", data_width=16,
                                   acc_width=40), marks=pytest.mark.slow),
]


def _id(value):
    return value if isinstance(value, str) else ",".join(f"{k}={v}" for k, v in value.items())


def _generated(name, params):
    from sparsegen.gen.generate import generate
    from sparsegen.gen.registry import make_config
    design = get_design(name)
    config = make_config(design, params)
    return design, config, generate(design, config)


@pytest.mark.verilator
@pytest.mark.parametrize("name, params", PE_CONFIGS, ids=_id)
def test_pe_verilator(name, params):
    from sparsegen.sim.tb.runner import run
    run(_generated(name, params)[2], test_module=__name__, test_filter="pe_matches_golden")


@pytest.mark.verilator
@pytest.mark.parametrize("name, params", ARRAY_CONFIGS, ids=_id)
def test_array_verilator(name, params):
    from sparsegen.sim.tb.runner import run
    run(_generated(name, params)[2], test_module=__name__,
        test_filter="array_gemm_matches_golden")


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize("name, params", [
    ("highlight", dict(rows=4, cols=4)),
    ("highlight", dict(rows=2, cols=5, patterns="4:4,3:5,1:3 x 4:4,2:4,1:4", data_width=4,
                       acc_width=9)),
    ("hss-mux", dict(patterns="8:8,2:8 x 2:2,1:2", data_width=16, acc_width=64)),
    ("gh-flat", dict(ratios="8:8,3:8,1:8,5:40", lanes=2, data_width=2, acc_width=5)),
], ids=_id)
def test_more_configs_verilator(name, params):
    from sparsegen.sim.tb.runner import run
    run(_generated(name, params)[2], test_module=__name__,
        test_filter="array_gemm_matches_golden" if name == "highlight" else "pe_matches_golden")


def _layer_runs(patterns, shapes, prune_patterns):
    design, base, _ = _generated("highlight", dict(rows=2, cols=3))
    rng = np.random.default_rng(5)
    for pattern in patterns:
        config = dataclasses.replace(base, pattern="{}:{},{}:{}".format(*pattern))
        for m, k, n in shapes(pattern):
            a = random_operands(rng, (m, k), 8, density=0.7)
            w = random_hss_weights(rng, k, n, pattern, 8, share=config.cols)
            result = design.host.run(design, config, a, w)
            assert result.matches_golden, (pattern, (m, k, n))
            assert result.cycles == result.model_cycles, (pattern, (m, k, n))
        if pattern in prune_patterns:
            dense_w = random_operands(rng, (40, 7), 8, density=1.0)
            result = design.host.run(design, config, random_operands(rng, (6, 40), 8),
                                     dense_w, prune=True)
            assert result.matches_golden and result.as_json()["pruned"] is True
            assert result.cycles == result.model_cycles


EXAMPLE_SET = get_design("highlight").config_cls().pattern_set


@pytest.mark.verilator
def test_layer_run_cycles_match_model():
    """The player's full-rate run (what `sparsegen sim` does), every pattern of the example
    set on one build: bit-exact output, RTL cycles equal to the model; a tiny GEMM; --prune.
    """
    _layer_runs(EXAMPLE_SET, lambda p: [(13, 37, 11)] + ([(1, 1, 1)] if p[0] == p[1] and
                                                         p[2] == p[3] else []),
                prune_patterns={(4, 6, 2, 4)})


@pytest.mark.slow
@pytest.mark.verilator
def test_layer_run_cycles_match_model_sweep():
    """As above, every pattern on several shapes (tile multiples, K over many groups), and
    --prune for every pattern."""
    _layer_runs(EXAMPLE_SET, lambda p: [(1, 1, 1), (4, 200, 6), (7, 3 * p[1] * p[3] + 1, 5)],
                prune_patterns=set(EXAMPLE_SET))


@pytest.mark.verilator
def test_cli_sim(tmp_path):
    """`sparsegen sim highlight`: bit-exact O, --prune reported, one-line errors, no output on
    error (rows/cols as the layer test above, so the Verilator build is shared)."""
    import json
    import subprocess
    import sys

    def sparsegen(*args):
        result = subprocess.run([sys.executable, "-m", "sparsegen.gen.cli", "sim", "highlight",
                                 "-p", "rows=2", "-p", "cols=3", "--tech", "generic", *args],
                                capture_output=True, text=True, cwd=tmp_path)
        return result.returncode, result.stdout, result.stderr

    rng = np.random.default_rng(8)
    a = random_operands(rng, (9, 50), 8).astype(np.int8)
    dense = random_operands(rng, (50, 5), 8, density=1.0).astype(np.int16)
    w = random_hss_weights(rng, 50, 5, (4, 6, 2, 4), 8, share=3).astype(np.int32)
    for name, x in (("A", a), ("W", w), ("D", dense)):
        np.save(tmp_path / f"{name}.npy", x)
    status, out, err = sparsegen("-p", "pattern=4:6,2:4", "--a", "A.npy", "--w", "W.npy",
                                 "-o", "O.npy", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["matches_golden"] and report["cycles"] == report["model_cycles"]
    assert report["pattern"] == "4:6,2:4" and report["pruned"] is False
    assert (np.load(tmp_path / "O.npy") == a.astype(np.int64) @ w.astype(np.int64)).all()

    status, out, err = sparsegen("-p", "pattern=4:6,2:4", "--a", "A.npy", "--w", "D.npy",
                                 "-o", "bad.npy", "--json")
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("sparsegen: error: weight `W` breaks HSS 4:6,2:4: group k=0..23 of "
                          "column n=0 has ")
    assert not (tmp_path / "bad.npy").exists()

    status, out, err = sparsegen("-p", "pattern=3:6,2:4", "--a", "A.npy", "--w", "W.npy")
    assert (status, err) == (2, "sparsegen: error: highlight: `pattern` 3:6,2:4 is not in "
                                "`patterns` (4:4,4:5,4:6,4:7 x 4:4,2:4,1:4)\n")

    status, out, err = sparsegen("-p", "pattern=4:6,2:4", "--a", "A.npy", "--w", "D.npy",
                                 "--prune", "-o", "P.npy", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["pruned"] is True and report["matches_golden"]
    from sparsegen.sim.golden.hss import prune_weights
    expected = a.astype(np.int64) @ prune_weights(dense, "4:6,2:4", share=3)
    assert (np.load(tmp_path / "P.npy") == expected).all()


@pytest.mark.verilator
def test_layer_run_accumulators_wrap():
    """Sums past the 32-bit accumulator wrap (two's complement, as the golden model says): the
    dense pattern on the layer-test build, 8-bit products of about 2**14, 147456 of them per
    output (9216 groups of 4 steps, well under a second on the fast player); the expected
    output is int64 @ wrapped explicitly."""
    design, base, _ = _generated("highlight", dict(rows=2, cols=3))
    config = dataclasses.replace(base, pattern="4:4,4:4")
    rng = np.random.default_rng(3)
    k = 147456
    a = np.where(rng.random((2, k)) < 0.99, -128, 127).astype(np.int64)
    w = np.where(rng.random((k, 3)) < 0.99, -128, 127).astype(np.int64)
    exact = a @ w
    expected = (exact + (1 << 31)) % (1 << 32) - (1 << 31)
    assert (expected != exact).any()
    result = design.host.run(design, config, a, w)
    assert (result.output == expected).all()
    assert result.matches_golden and result.cycles == result.model_cycles


@pytest.mark.verilator
def test_zero_operands_gate_multipliers():
    """Zero-value gating counted in the RTL run: every lane slot either multiplies or is gated,
    the multiplies done are exactly the products of two non-zero operands (counted by golden,
    independently of the hardware), and `sim --json` reports the gated lanes and what gating
    saved. The config is tests/test_energy_layer.py's highlight case (one Verilator build)."""
    from sparsegen.gen import synth
    from sparsegen.gen.registry import make_config
    from sparsegen.sim.golden.gemm import macs_nonzero
    if synth.timing_missing("sky130hd"):
        pytest.skip(synth.timing_missing("sky130hd"))
    design = get_design("highlight")
    config = make_config(design, dict(rows=2, cols=2, pattern="4:6,2:4"))
    rng = np.random.default_rng(21)
    a = random_operands(rng, (5, 48), 8, density=0.6)
    a[:, :24] = 0                                   # the first group meets zero activations
    w = random_hss_weights(rng, 48, 3, (4, 6, 2, 4), 8, share=2)
    result = design.host.run(design, config, a, w, tech="sky130hd")
    assert result.matches_golden and result.cycles == result.model_cycles
    counts = result.energy.counts
    # 3 x 2 tiles x 2 groups x T = 2 steps x 4 cells = 96 cell steps of 4 lanes.
    assert counts["mul"] + counts["mul_gated"] == 96 * 4
    assert counts["mul"] == macs_nonzero(a, w) > 0
    assert counts["add_idle"] > 0                   # steps of the zero group: all lanes gated
    report = result.as_json()
    assert report["energy_counts"]["mul_gated"] == counts["mul_gated"]
    assert report["gating_saving_pj"] > 0


@pytest.mark.slow
@pytest.mark.verilator
def test_energy_estimate_agrees_with_opensta():
    """highlight 2x2 (no gating) at 4:7,1:4, where every group is one step, so the input
    stream's toggle rate is the rate at which the cells' tokens change: the action-count
    estimate (cell lane muxes and the edge's rank-1 block muxes included) against OpenSTA's
    whole-design power at that uniform activity, in tests/test_energy_layer.py's band. At
    T > 1 the held input toggles T times less often than the steps it feeds, so the uniform
    activity undercounts and the check does not apply (4:4,4:4 gave 1.72)."""
    from sparsegen.gen import synth
    from sparsegen.gen.energy import measure
    from sparsegen.gen.generate import generate
    from sparsegen.gen.registry import make_config
    from sparsegen.sim.highlight import HIGHLIGHT
    if synth.timing_missing("sky130hd"):
        pytest.skip(synth.timing_missing("sky130hd"))
    design = get_design("highlight")
    config = make_config(design, dict(rows=2, cols=2, zvcg=False, pattern="4:7,1:4"))
    rng = np.random.default_rng(9)
    a, w = rng.integers(-128, 128, (8, 112)), rng.integers(-128, 128, (112, 4))
    result = design.host.run(design, config, a, w, tech="sky130hd", prune=True)
    assert result.matches_golden
    job = HIGHLIGHT.prepare(config, a, w, prune=True)
    generated = generate(design, config)
    layout = generated.metadata["layouts"]["i__payload"]
    activity = (bit_toggles(pack_many(layout, job.payload, job.steps))
                / (layout["width"] * result.cycles))
    power = measure(generated.verilog, generated.top, "sky130hd", activity=activity)
    sta_pj = (power["total_w"] - power["leakage_w"]) * power["clock_ns"] * 1e3 * result.cycles
    estimate = sum(v for k, v in result.energy.energy_breakdown.items() if k != "leakage")
    print(f"activity {activity:.3f}: estimate {estimate:.1f} pJ, OpenSTA {sta_pj:.1f} pJ, "
          f"ratio {estimate / sta_pj:.3f}")
    assert 0.75 <= estimate / sta_pj <= 1.15
