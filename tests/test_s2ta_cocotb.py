"""act-dbb, dense-array and s2ta: generated Verilog on Verilator (cocotb) against golden.

Two kinds of run:

* protocol tests (cocotb tests below): random GEMMs of odd shapes streamed by the cocotb drivers
  with random stalls on both sides;
* layer runs through the stream player (``design.host.run``, what ``sparsegen sim`` does): full-rate
  streams whose cycle counts must equal the closed-form model.
"""

import random

import cocotb
import numpy as np
import pytest

from sparsegen.gen.registry import get_design
from sparsegen.sim.golden import dbb as gdbb
from sparsegen.sim.layer import DENSE, S2TA, assemble_output, golden_activations, tile_shape
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import pack_many, packed_ints
from sparsegen.sim.tb.stream import TB

from helpers import keep_largest

# -- inside the simulator ------------------------------------------------------------------


def _dbb_weights(rng, k, n, bz, nnz, width):
    w = random_operands(rng, (k, n), width, density=1.0)
    padded = np.pad(w, ((0, (-k) % bz), (0, 0))).reshape(-1, bz, n)
    for b in range(padded.shape[0]):
        for col in range(n):
            drop = rng.choice(bz, bz - rng.integers(0, nnz + 1), replace=False)
            padded[b, drop, col] = 0
    return padded.reshape(-1, n)[:k]


def gemm_operands(config, m, k, n, seed, density=0.6):
    """Random A and W for ``config``; W obeys the weight DBB bound where the array needs it."""
    rng = np.random.default_rng(seed)
    a = random_operands(rng, (m, k), config.data_width, density=density)
    if getattr(config, "weight_dbb", False):
        w = _dbb_weights(rng, k, n, config.block_size, config.nnz_w, config.data_width)
    else:
        w = random_operands(rng, (k, n), config.data_width, density=density)
    return a, w


@cocotb.test()
@cocotb.parametrize(backpressure=[(0.0, 0.0), (0.3, 0.4)], shape=[(13, 37, 11), (4, 8, 3)])
async def array_gemm_matches_golden(dut, backpressure, shape):
    """A GEMM of an odd shape, tiled by the host, streamed with random stalls."""
    tb = TB(dut)
    design = get_design(tb.meta["design"])
    config = design.config_cls(**tb.config)
    a, w = gemm_operands(config, *shape, seed=sum(shape))
    job = {"dense-array": DENSE, "s2ta": S2TA}[design.name].prepare(config, a, w)
    words = packed_ints(pack_many(tb.layout("i__payload"), job.payload, job.steps))
    rng = random.Random(shape[0])
    src = tb.source("i", idle_prob=backpressure[0], rng=rng)
    snk = tb.sink("o", stall_prob=backpressure[1], rng=rng)
    if "nnz_a" in job.inputs:
        dut.nnz_a.value = job.inputs["nnz_a"]
    await tb.start()
    cocotb.start_soon(snk.run(tb))
    await src.send(words, tb)
    trows, tcols = tile_shape(config)
    rows = job.tiles[0] * job.tiles[1] * trows
    await snk.wait_for(rows, timeout_cycles=200 + 20 * rows)
    dap = getattr(config, "has_out_dap", False)
    sums = [item["sum"] if dap else item for item in snk.items]
    output = assemble_output(np.array(sums), job, trows, tcols)
    assert (output == job.expected).all()
    if dap:
        golden = golden_activations(config, job.expected, job.tiles)
        mt, nt = job.tiles
        for n, item in enumerate(snk.items):
            tile, row = divmod(n, trows)
            m = (tile // nt) * trows + row
            for b, block in enumerate(item["act"] if m < shape[0] else []):
                col = (tile % nt) * config.out_blocks + b
                assert [s["value"] for s in block["slots"]] == golden.values[m, col].tolist()
                assert [s["index"] for s in block["slots"]] == golden.indices[m, col].tolist()


@cocotb.test()
@cocotb.parametrize(stall=[0.0, 0.5])
async def act_dbb_matches_golden(dut, stall):
    """Blocks with ties, extremes and zeros; every run-time nnz_a setting."""
    tb = TB(dut)
    cfg = tb.config
    bz, width, nnz_max = cfg["block_size"], cfg["data_width"], cfg["nnz_max"]
    rng = np.random.default_rng(bz)
    blocks = random_operands(rng, (40, bz), width, density=0.6)
    lo = -(1 << (width - 1))
    blocks[:8] = rng.choice([lo, -lo - 1, 2, -2, 0], size=(8, bz))
    blocks[8] = 0
    await tb.start()
    for nnz in range(1, nnz_max + 1):
        dut.nnz_a.value = nnz
        src = tb.source("i", idle_prob=stall, rng=random.Random(nnz))
        snk = tb.sink("o", stall_prob=stall, rng=random.Random(nnz + 1))
        task = cocotb.start_soon(snk.run(tb))
        await src.send([{"a": b.tolist(), "side": 1} for b in blocks], tb)
        await snk.wait_for(len(blocks), timeout_cycles=400)
        task.cancel()
        kept = gdbb.select_mask(blocks, nnz)
        for n, item in enumerate(snk.items):
            positions = np.flatnonzero(kept[n]).tolist()
            assert item["block"]["mask"] == sum(1 << i for i in positions), (nnz, n)
            slots = [(s["value"], s["index"]) for s in item["block"]["slots"]]
            expected = [(int(blocks[n, i]), i) for i in positions]
            assert slots == expected + [(0, 0)] * (nnz_max - len(expected)), (nnz, n)
            assert item["side"] == 1


# -- pytest runners ------------------------------------------------------------------------

ARRAY_CONFIGS = [
    ("dense-array", dict(rows=4, cols=3, zvcg=True)),
    ("dense-array", dict(rows=2, cols=5, data_width=16, acc_width=40)),
    ("s2ta", dict(variant="dense", rows=2, cols=2, tpe_rows=2, tpe_k=3, tpe_cols=1,
                  zvcg=True)),
    # In make test-slow (its cocotb build costs about 13 s of a default suite at its budget);
    # variant w stays in the default suite with the 4x2 array below.
    pytest.param("s2ta", dict(variant="w", rows=3, cols=2, tpe_rows=1, tpe_k=1, tpe_cols=2,
                              block_size=8, nnz_w=4), marks=pytest.mark.slow),
    ("s2ta", dict(variant="w", rows=4, cols=2, tpe_rows=1, tpe_k=2, tpe_cols=1, block_size=4,
                  nnz_w=1, data_width=4, acc_width=12)),
    ("s2ta", dict(variant="a", rows=2, cols=1, tpe_rows=2, tpe_k=2, tpe_cols=3, block_size=8,
                  nnz_max=8, nnz_a=3)),
    ("s2ta", dict(variant="a", rows=2, cols=4, tpe_rows=1, tpe_k=2, tpe_cols=1, block_size=16,
                  nnz_max=4, nnz_a=4, zvcg=True)),
    ("s2ta", dict(variant="aw", rows=2, cols=2, tpe_rows=2, tpe_k=1, tpe_cols=4, block_size=8,
                  nnz_w=4, nnz_max=8, nnz_a=2)),
    ("s2ta", dict(variant="aw", rows=2, cols=2, tpe_rows=1, tpe_k=1, tpe_cols=1, block_size=4,
                  nnz_w=2, nnz_max=2, nnz_a=1, data_width=16)),
]
"""Every variant, TPE shapes as in tests/test_cycle_oracles.py (the same builds), output DAPs
with full (tile columns 8 = BZ) and short blocks."""

ACT_DBB_CONFIGS = [
    dict(block_size=4, nnz_max=2, data_width=4),
    dict(block_size=8, nnz_max=8, data_width=8),
    # The widest unit (a 24 s cocotb build) runs in make test-slow; the two above cover the
    # unit in the default suite.
    pytest.param(dict(block_size=16, nnz_max=4, data_width=16), marks=pytest.mark.slow),
]


def _id(value):
    return value if isinstance(value, str) else ",".join(f"{k}={v}" for k, v in value.items())


def _generated(name, params):
    from sparsegen.gen.generate import generate
    from sparsegen.gen.registry import make_config
    design = get_design(name)
    return design, make_config(design, params), generate(design, make_config(design, params))


@pytest.mark.verilator
@pytest.mark.parametrize("name, params", ARRAY_CONFIGS, ids=_id)
def test_array_verilator(name, params):
    from sparsegen.sim.tb.runner import run
    run(_generated(name, params)[2], test_module=__name__, test_filter="array_gemm_matches_golden")


@pytest.mark.verilator
@pytest.mark.parametrize("params", ACT_DBB_CONFIGS, ids=_id)
def test_act_dbb_verilator(params):
    from sparsegen.sim.tb.runner import run
    run(_generated("act-dbb", params)[2], test_module=__name__,
        test_filter="act_dbb_matches_golden")


@pytest.mark.verilator
@pytest.mark.parametrize("name, params", ARRAY_CONFIGS, ids=_id)
def test_layer_run_cycles_match_model(name, params):
    """The player's full-rate run: bit-exact output, RTL cycles equal to the model."""
    design, config, _ = _generated(name, params)
    trows, tcols = tile_shape(config)
    for shape in [(13, 37, 11), (1, 1, 1), (2 * trows, 40, 3 * tcols)]:
        a, w = gemm_operands(config, *shape, seed=7)
        result = design.host.run(design, config, a, w)
        assert result.matches_golden, shape
        assert result.cycles == result.model_cycles, shape


# -- coverage: accumulator wrap-around and DAP ties, on the builds above ----------------------


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Exact int64 sums (no overflow below 2**62) wrapped to signed ``bits``, written out."""
    half = 1 << (bits - 1)
    return (x + half) % (2 * half) - half


def _extremes(rng, shape, width, p_low=0.99):
    """Mostly the most negative value, else the most positive: products near the largest,
    of one sign, whose sums wrap."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return np.where(rng.random(shape) < p_low, lo, hi).astype(np.int64)


@pytest.mark.verilator
@pytest.mark.parametrize("name, params, shape", [
    # 16-bit products of about 2**30, 40-bit sums: 1200 of them pass 2**39.
    ("dense-array", dict(rows=2, cols=5, data_width=16, acc_width=40), (3, 1200, 6)),
    # 4-bit products of about 64, one per block (nnz_w 1), 12-bit sums: 160 blocks pass 2047.
    ("s2ta", dict(variant="w", rows=4, cols=2, tpe_rows=1, tpe_k=2, tpe_cols=1, block_size=4,
                  nnz_w=1, data_width=4, acc_width=12), (5, 640, 3)),
    # 8-bit products of about 2**14, 32-bit sums: 147456 products pass 2**31 (18432 blocks of
    # 4 steps each (nnz_a 8, tpe_k 2), well under a second on the fast player).
    ("s2ta", dict(variant="a", rows=2, cols=1, tpe_rows=2, tpe_k=2, tpe_cols=3, block_size=8,
                  nnz_max=8, nnz_a=8), (2, 147456, 2)),
    # 16-bit products of 2**30, one kept per block (nnz_a 1), 32-bit sums: 3 blocks pass 2**31.
    ("s2ta", dict(variant="aw", rows=2, cols=2, tpe_rows=1, tpe_k=1, tpe_cols=1, block_size=4,
                  nnz_w=2, nnz_max=2, nnz_a=1, data_width=16), (3, 12, 3)),
    # The dense tensor array: 8-bit products of 2**14 summed 3 per step, 32-bit sums.
    ("s2ta", dict(variant="dense", rows=2, cols=2, tpe_rows=2, tpe_k=3, tpe_cols=1,
                  zvcg=True), (2, 147456, 2)),
], ids=["dense-array", "s2ta-w", "s2ta-a", "s2ta-aw", "s2ta-dense"])
def test_layer_run_accumulators_wrap(name, params, shape):
    """Sums past the accumulator's range wrap (two's complement, as the golden model says) on
    every array family; the expected output is int64 @ wrapped explicitly, on the pruned
    activations for a/aw (kept by an explicit sort)."""
    design, config, _ = _generated(name, params)
    m, k, n = shape
    rng = np.random.default_rng(k)
    a = _extremes(rng, (m, k), config.data_width)
    w = _extremes(rng, (k, n), config.data_width)
    if getattr(config, "weight_dbb", False):
        bz, keep = config.block_size, config.nnz_w
        for b in range(0, k, bz):
            for col in range(n):
                w[b + rng.choice(bz, bz - keep, replace=False), col] = 0
    kept = keep_largest(a, config.block_size, config.nnz_a) if getattr(
        config, "act_dbb", False) else a
    exact = kept @ w
    expected = _wrap(exact, config.acc_width)
    assert (expected != exact).any()
    result = design.host.run(design, config, a, w)
    assert (result.output == expected).all()
    assert result.matches_golden and result.cycles == result.model_cycles


DAP_CONFIGS = [
    ("s2ta", dict(ARRAY_CONFIGS[5][1], nnz_a=3)),
    ("s2ta", dict(ARRAY_CONFIGS[5][1], nnz_a=1)),
    ("s2ta", ARRAY_CONFIGS[7][1]),
    ("s2ta", ARRAY_CONFIGS[8][1]),
]


@pytest.mark.verilator
@pytest.mark.parametrize("name, params", DAP_CONFIGS, ids=_id)
def test_layer_run_dap_ties(name, params):
    """Tie-heavy activations into the a/aw arrays (compressed by the host as the layer before's
    DAP would): blocks of equal magnitudes of both signs, the most negative value against the
    most positive (|-128| = 128 beats 127), zeros; the kept entries must be those of an
    explicit sort with ties to the lower index."""
    design, config, _ = _generated(name, params)
    width, bz = config.data_width, config.block_size
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    rng = np.random.default_rng(bz + config.nnz_a)
    a = rng.choice([lo, hi, -hi, 3, -3, 0], size=(9, 5 * bz)).astype(np.int64)
    a[0] = hi                                       # all equal: the first nnz_a are kept
    a[1, ::2], a[1, 1::2] = hi, lo                  # lo beats hi wherever it stands
    a[2, :] = 3 * np.where(np.arange(5 * bz) % 3, 1, -1)   # equal magnitudes, both signs
    if config.weight_dbb:
        w = random_operands(rng, (5 * bz, 7), width, density=1.0)
        for b in range(0, 5 * bz, bz):
            for col in range(7):
                w[b + rng.choice(bz, bz - config.nnz_w, replace=False), col] = 0
    else:
        w = random_operands(rng, (5 * bz, 7), width, density=0.9)
    kept = keep_largest(a, bz, config.nnz_a)
    # The blocks really tie at the cut: the nnz_a-th and the next magnitude are equal.
    mags = -np.sort(-np.abs(a.reshape(-1, bz)), axis=1)
    if config.nnz_a < bz:
        assert (mags[:, config.nnz_a - 1] == mags[:, config.nnz_a]).sum() >= 10
    result = design.host.run(design, config, a, w)
    assert (result.output == _wrap(kept @ w, config.acc_width)).all()
    assert result.matches_golden


@pytest.mark.verilator
@pytest.mark.parametrize("name, params", DAP_CONFIGS, ids=_id)
def test_layer_run_output_dap_ties(name, params):
    """The output DAP on tie-heavy sums: with ``out_shift`` 0 most sums saturate to the
    largest activation or clip to 0, so blocks tie at the cut; its blocks, decoded, must be an
    explicit ReLU + shift + saturate (written out below) and an explicit sort with ties to
    the lower index (``keep_largest``), block by block within each tile's columns."""
    design, config, _ = _generated(name, dict(params, out_shift=0))
    m, k, n = 9, 3 * config.block_size, 2 * tile_shape(config)[1] + 1
    a, w = gemm_operands(config, m, k, n, seed=3, density=0.9)
    result = design.host.run(design, config, a, w)
    assert result.matches_golden
    top = (1 << (config.data_width - 1)) - 1
    q = np.array([[min(max(int(x), 0), top) for x in row] for row in result.output])
    tcols = tile_shape(config)[1]
    expected = np.zeros_like(q)
    for t in range(0, n, tcols):                    # blocks restart in every column tile
        expected[:, t:t + tcols] = keep_largest(q[:, t:t + tcols], config.block_size,
                                                config.nnz_a)
    assert (result.activations.dense == expected).all()
    assert (q == top).sum() >= 10
    if min(config.block_size, tcols) > config.nnz_a:   # blocks the DAP must cut
        assert (expected != q).any()
