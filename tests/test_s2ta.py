"""act-dbb, dense-array and s2ta: config validation, Verilog ports, Amaranth simulator vs golden,
and the cycle model against the simulated RTL."""

import random
import re

import numpy as np
import pytest

from sparsegen.gen.bench import S2TA_ARRAYS
from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design
from sparsegen.hw.actdbb import ActDBB, ActDBBConfig
from sparsegen.hw.s2ta import S2TA, DenseArray, DenseArrayConfig, S2TAConfig
from sparsegen.sim import cycles, layer
from sparsegen.sim.golden import dbb as gdbb
from sparsegen.sim.layer import DENSE, assemble_output, golden_activations, tile_shape
from sparsegen.sim.layer import S2TA as S2TA_HOST
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import pack_many, packed_ints

from helpers import cycle_counter, keep_largest, simulate, stream_get, stream_put

# -- config validation ---------------------------------------------------------------------


@pytest.mark.parametrize("cls, kwargs, error, message", [
    (ActDBBConfig, dict(nnz_max=9), ValueError,
     "`nnz_max` must be between 1 and `block_size` (8), not 9"),
    (ActDBBConfig, dict(block_size=6), ValueError, "`block_size` must be a power of two, not 6"),
    (DenseArrayConfig, dict(rows=0), ValueError, "`rows` must be between 1 and 64, not 0"),
    (DenseArrayConfig, dict(cols=65), ValueError, "`cols` must be between 1 and 64, not 65"),
    (DenseArrayConfig, dict(zvcg="on"), TypeError, "`zvcg` must be a bool, not str 'on'"),
    (S2TAConfig, dict(variant="wa"), ValueError,
     "`variant` must be one of dense, w, a, aw, not 'wa'"),
    (S2TAConfig, dict(tpe_k=0), ValueError, "`tpe_k` must be between 1 and 16, not 0"),
    (S2TAConfig, dict(variant="aw", nnz_max=2, nnz_a=2, tpe_k=3), ValueError,
     "`tpe_k` must be between 1 and `nnz_max` (2) for variant aw, not 3"),
    (S2TAConfig, dict(out_shift=33), ValueError,
     "`out_shift` must be between 0 and `acc_width` (32), not 33"),
    (S2TAConfig, dict(nnz_w=9), ValueError,
     "`nnz_w` must be between 1 and `block_size` (8), not 9"),
    (S2TAConfig, dict(nnz_max=4, nnz_a=6), ValueError,
     "`nnz_a` must be between 1 and `nnz_max` (4), not 6"),
    (S2TAConfig, dict(block_size=4, nnz_max=4, nnz_a=4, nnz_w=5), ValueError,
     "`nnz_w` must be between 1 and `block_size` (4), not 5"),
    (S2TAConfig, dict(variant=1), TypeError, "`variant` must be a str, not int 1"),
])
def test_config_rejects(cls, kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        cls(**kwargs)


def test_multipliers():
    """rows x cols TPEs of tpe_rows x tpe_cols outputs, tpe_k lanes each (x nnz_w for w)."""
    assert DenseArrayConfig(rows=8, cols=4).multipliers == 32
    assert S2TAConfig(variant="w", rows=4, cols=4, nnz_w=4, tpe_rows=1, tpe_cols=1,
                      tpe_k=1).multipliers == 64
    assert S2TAConfig(variant="w", rows=2, cols=1, nnz_w=2, tpe_rows=3, tpe_cols=2,
                      tpe_k=2).multipliers == 2 * 3 * 2 * 2 * 2
    assert S2TAConfig(variant="aw").multipliers == 64         # default: 1x2 TPEs of 4x2x4
    assert S2TAConfig(variant="dense", rows=4, cols=2, tpe_rows=2, tpe_k=4,
                      tpe_cols=1).multipliers == 64


# -- conversion ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, params, ports", [
    ("act-dbb", {}, {"nnz_a"}),
    ("dense-array", {"rows": 3, "cols": 2}, set()),
    ("s2ta", {"variant": "w", "rows": 2, "cols": 3}, set()),
    ("s2ta", {"variant": "dense", "rows": 2, "cols": 1, "tpe_k": 2}, set()),
    ("s2ta", {"variant": "a", "rows": 2, "cols": 2}, {"nnz_a"}),
    ("s2ta", {"variant": "aw", "rows": 2, "cols": 2, "nnz_max": 4, "nnz_a": 2}, {"nnz_a"}),
])
def test_verilog_ports(name, params, ports):
    design = get_design(name)
    generated = generate(design, design.config_cls(**params))
    header = re.search(r"^module (\w+)\((.*?)\);", generated.verilog, re.M)
    assert header.group(1) == design.top
    found = {p.strip() for p in header.group(2).split(",")}
    assert found == {"clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid",
                     "o__ready", "o__payload"} | ports
    assert generated.verilog == generate(design, design.config_cls(**params)).verilog


def test_nnz_a_does_not_change_the_hardware():
    """nnz_a is a run-time setting: configs differing only in it share one Verilog build."""
    design = get_design("s2ta")
    one = generate(design, S2TAConfig(variant="aw", nnz_a=2))
    two = generate(design, S2TAConfig(variant="aw", nnz_a=5))
    assert one.verilog == two.verilog


# -- act-dbb in the Amaranth simulator ---------------------------------------------------------


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
@pytest.mark.parametrize("config", [ActDBBConfig(block_size=4, nnz_max=2, data_width=4),
                                    ActDBBConfig(block_size=8, nnz_max=8, data_width=8),
                                    ActDBBConfig(block_size=16, nnz_max=5, data_width=16)],
                         ids=repr)
def test_act_dbb_matches_golden(config, stalls):
    rng = np.random.default_rng(config.block_size)
    blocks = random_operands(rng, (60, config.block_size), config.data_width, density=0.6)
    # Ties of equal magnitude and both signs, the most negative value, all-zero blocks.
    lo = -(1 << (config.data_width - 1))
    blocks[:10] = rng.choice([lo, -lo - 1, 3, -3, 0], size=(10, config.block_size))
    blocks[10] = 0
    settings = sorted({1, config.nnz_max, max(1, config.nnz_max // 2)})
    for nnz in settings:
        dut = ActDBB(config)
        r = random.Random(nnz)
        idle, stall = (0.3, 0.4) if stalls else (0.0, 0.0)
        got = []

        async def producer(ctx, nnz=nnz, dut=dut, r=r, idle=idle):
            ctx.set(dut.nnz_a, nnz)
            for block in blocks:
                await stream_put(ctx, dut.i, {"a": block.tolist(), "side": 0}, rng=r,
                                 idle_prob=idle)

        async def consumer(ctx, dut=dut, r=r, stall=stall):
            for _ in blocks:
                out = await stream_get(ctx, dut.o, rng=r, stall_prob=stall)
                slots = [(out.block.slots[s].value, out.block.slots[s].index)
                         for s in range(config.nnz_max)]
                got.append((out.block.mask, slots))

        simulate(dut, producer, consumer)
        kept = gdbb.select_mask(blocks, nnz)
        for n, (mask, slots) in enumerate(got):
            positions = np.flatnonzero(kept[n]).tolist()
            assert mask == sum(1 << i for i in positions), (nnz, n)
            expected = [(int(blocks[n, i]), i) for i in positions]
            assert slots == expected + [(0, 0)] * (config.nnz_max - len(expected)), (nnz, n)


# -- arrays in the Amaranth simulator ---------------------------------------------------------


def _dbb_weights(rng, k, n, bz, nnz, width):
    w = random_operands(rng, (k, n), width, density=1.0)
    padded = np.pad(w, ((0, (-k) % bz), (0, 0))).reshape(-1, bz, n)
    for b in range(padded.shape[0]):
        for col in range(n):
            drop = rng.choice(bz, bz - rng.integers(0, nnz + 1), replace=False)
            padded[b, drop, col] = 0
    return padded.reshape(-1, n)[:k]


def _gemm_operands(config, m, k, n, seed):
    rng = np.random.default_rng(seed)
    a = random_operands(rng, (m, k), config.data_width, density=0.6)
    if isinstance(config, S2TAConfig) and config.weight_dbb:
        w = _dbb_weights(rng, k, n, config.block_size, config.nnz_w, config.data_width)
    else:
        w = random_operands(rng, (k, n), config.data_width, density=0.7)
    return a, w


ARRAYS = [
    DenseArrayConfig(rows=3, cols=2, data_width=8, acc_width=16, zvcg=True),
    S2TAConfig(variant="dense", rows=2, cols=2, tpe_rows=2, tpe_k=3, tpe_cols=1, zvcg=True),
    S2TAConfig(variant="w", rows=2, cols=1, tpe_rows=1, tpe_k=2, tpe_cols=3, block_size=4,
               nnz_w=2),
    S2TAConfig(variant="a", rows=1, cols=2, tpe_rows=3, tpe_k=2, tpe_cols=2, block_size=4,
               nnz_max=4, nnz_a=3, zvcg=True, out_shift=6),
    S2TAConfig(variant="aw", rows=2, cols=2, tpe_rows=2, tpe_k=1, tpe_cols=2, block_size=4,
               nnz_w=2, nnz_max=4, nnz_a=2, out_shift=5),
    S2TAConfig(variant="aw", rows=2, cols=1, tpe_rows=1, tpe_k=2, tpe_cols=3, block_size=4,
               nnz_w=3, nnz_max=4, nnz_a=4, acc_width=12, out_dap=False),
]
"""Every variant and several TPE shapes (A x B x C' of 2x3x1, 1x2x3, 3x2x2, 2x1x2): odd tile
shapes, ZVCG on and off, the output DAP with full and short blocks (tile columns 4 and 3 at
BZ 4) and without it, a 12-bit accumulator that wraps."""


def _component(config):
    return DenseArray(config) if isinstance(config, DenseArrayConfig) else S2TA(config)


def _host(config):
    """The sim layer's GEMM host of the array family of ``config``."""
    return DENSE if isinstance(config, DenseArrayConfig) else S2TA_HOST


def _read_row(out, config):
    """A result row (sums) and, with the output DAP, its blocks' (values, indices)."""
    if not getattr(config, "has_out_dap", False):
        return [int(x) for x in out], None
    blocks = [([int(out.act[b].slots[j].value) for j in range(config.nnz_max)],
               [int(out.act[b].slots[j].index) for j in range(config.nnz_max)])
              for b in range(config.out_blocks)]
    return [int(x) for x in out.sum], blocks


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
@pytest.mark.parametrize("config", ARRAYS, ids=repr)
def test_array_matches_golden(config, stalls):
    a, w = _gemm_operands(config, 5, 11, 4, seed=config.rows * 10 + config.cols)
    job = _host(config).prepare(config, a, w)
    dut = _component(config)
    layout = generate(get_design("dense-array" if isinstance(config, DenseArrayConfig)
                                 else "s2ta"), config).metadata["layouts"]["i__payload"]
    words = packed_ints(pack_many(layout, job.payload, job.steps))
    trows, tcols = tile_shape(config)
    rows_out, blocks_out = [], []
    r = random.Random(5)
    idle, stall = (0.3, 0.3) if stalls else (0.0, 0.0)
    cycle_log = {}
    total = job.tiles[0] * job.tiles[1] * trows

    async def producer(ctx):
        if "nnz_a" in job.inputs:
            ctx.set(dut.nnz_a, job.inputs["nnz_a"])
        shape = dut.i.payload.shape()
        for word in words:
            await stream_put(ctx, dut.i, shape.from_bits(word), rng=r, idle_prob=idle)

    async def consumer(ctx):
        for _ in range(total):
            sums, blocks = _read_row(await stream_get(ctx, dut.o, rng=r, stall_prob=stall),
                                     config)
            rows_out.append(sums)
            blocks_out.append(blocks)

    simulate(dut, producer, consumer, cycle_counter(dut, total, cycle_log))
    output = assemble_output(np.array(rows_out), job, trows, tcols)
    assert (output == job.expected).all()
    if getattr(config, "has_out_dap", False):
        # The DAP's blocks, row by row, against the golden requantize + top-nnz_a of each row.
        golden = golden_activations(config, job.expected, job.tiles)
        mt, nt = job.tiles
        for t in range(mt * nt):
            for row in range(trows):
                m = (t // nt) * trows + row
                if m >= job.shape[0]:
                    continue
                for b in range(config.out_blocks):
                    values, indices = blocks_out[t * trows + row][b]
                    col = (t % nt) * config.out_blocks + b
                    assert values == golden.values[m, col].tolist(), (t, row, b)
                    assert indices == golden.indices[m, col].tolist(), (t, row, b)
    if not stalls:
        assert cycle_log["cycles"] == _host(config).cycles(config, *job.shape)


@pytest.mark.parametrize("config", [c for c in ARRAYS if getattr(c, "weight_dbb", False)],
                         ids=repr)
def test_weight_dbb_violation_is_named(config):
    w = np.zeros((9, 2), dtype=np.int64)
    w[0:config.nnz_w + 1, 1] = 1
    with pytest.raises(gdbb.DBBViolation, match=r"block k=0\.\.\d+ of column n=1 has "):
        S2TA_HOST.prepare(config, np.ones((2, 9), dtype=np.int64), w)


def test_cycle_model_blocks_on_draining_tiles():
    """Short tiles (fewer steps than fill + drain) are paced by the drain guard."""
    # Tile of 2 steps on a 4 x 4 core: a tile's last step waits for the previous drain.
    # Scalar MACs (three stages): L = 4 + 4 + 2 = 10.
    mac = DenseArray.cell_kind(DenseArrayConfig())
    assert cycles.core_cycles([2, 2], mac, 4, 4) == 1 + (10 + 4) + 10 + 4
    assert cycles.core_cycles([100], mac, 4, 4) == 99 + 10 + 4
    # TPEs of 2 lanes per output register their lane sum (four stages): L = 4 + 4 + 3 = 11.
    tpe = S2TA.cell_kind(S2TAConfig(variant="dense", tpe_rows=1, tpe_k=2, tpe_cols=1))
    assert cycles.core_cycles([2, 2], tpe, 4, 4) == 1 + (11 + 4) + 11 + 4


# -- chained layers and bytes moved (fast player) ---------------------------------------------

CHAIN = dict(variant="aw", rows=2, cols=2, tpe_rows=2, tpe_k=1, tpe_cols=4, block_size=8,
             nnz_w=4, nnz_max=8)                 # tests/test_cycle_oracles.py's S2TA_AW build


@pytest.mark.verilator
def test_two_chained_layers_stream_the_output_dap_blocks():
    """Layer 1's DAP blocks (RTL) are layer 2's input as they are: layer 2's output equals an
    independent oracle of the whole chain (explicit ReLU/shift/saturate and sort-based top-2
    per block of N1 within each tile's 8 columns = BZ, then int64 @)."""
    design = get_design("s2ta")
    config = S2TAConfig(**CHAIN, nnz_a=2, out_shift=9)
    rng = np.random.default_rng(21)
    a = np.maximum(rng.integers(-60, 100, (11, 40)), 0)
    w = _dbb_weights(rng, 40, 16, 8, 4, 8)
    w2 = _dbb_weights(rng, 16, 9, 8, 4, 8)
    first, second = layer.run_chain(design, config, a, w, w2)
    assert first.matches_golden and second.matches_golden
    assert first.cycles == first.model_cycles and second.cycles == second.model_cycles
    o1 = keep_largest(a, 8, 2) @ w
    a2 = keep_largest(np.minimum(np.maximum(o1, 0) // 512, 127), 8, 2)
    assert (first.activations.dense == a2).all()
    assert 0 < (a2 != 0).sum() < a2.size          # the DAP kept some, pruned others
    assert (second.output == a2 @ w2).all()
    model_first, model_second = layer.run_chain(design, config, a, w, w2, model=True)
    assert (model_second.output == second.output).all()
    assert model_second.cycles == second.cycles


@pytest.mark.parametrize("params", [dict(CHAIN, nnz_a=3), dict(CHAIN, variant="a", nnz_a=2),
                                    ARRAYS[1].as_dict(), ARRAYS[2].as_dict()], ids=repr)
def test_bytes_moved_formula_equals_the_stream(params):
    """``bytes_moved`` (a formula) against the stream the host lays out: activation bytes are
    the row tokens of every transfer, weight bytes the column tokens of the first step of
    every K block (a/aw repeat it on the block's other steps)."""
    config = S2TAConfig(**params)
    m, k, n = 13, 37, 19
    a, w = _gemm_operands(config, m, k, n, seed=4)
    job = S2TA_HOST.prepare(config, a, w)
    layout = generate(get_design("s2ta"), config).metadata["layouts"]["i__payload"]
    fields = layout["fields"]
    bytes_moved = layer.s2ta_traffic(config, m, k, n)
    assert bytes_moved["act_in"] * 8 == job.steps * fields["a"]["shape"]["width"]
    reads = job.steps // (config.steps_per_block if config.act_dbb else 1)
    assert bytes_moved["weights"] * 8 == reads * fields["w"]["shape"]["width"]
    if config.has_out_dap:
        trows = tile_shape(config)[0]
        slot = config.data_width + (config.block_size - 1).bit_length()
        assert bytes_moved["act_out"] * 8 == (job.tiles[0] * job.tiles[1] * trows
                                              * config.out_blocks * config.nnz_a * slot)


def test_bench_arrays_have_equal_multipliers():
    """bench s2ta compares at equal multipliers: every array of it has 64."""
    assert {key: config.multipliers for key, (_, config) in S2TA_ARRAYS.items()} == {
        "dense": 64, "sta": 64, "w": 64, "a": 64, "aw": 64}


@pytest.mark.parametrize("params, refused", [
    (dict(variant="w", nnz_a=2), "nnz_a"), (dict(variant="dense", nnz_w=2), "nnz_w"),
    (dict(variant="a", nnz_w=2), "nnz_w"), (dict(variant="aw", out_dap=False, out_shift=3),
                                            "out_shift")])
def test_parameters_without_effect_are_named(params, refused):
    assert refused in S2TAConfig(**params).unused_params()
    assert S2TAConfig(variant="aw").unused_params() == {}
