"""sod (Sparse-on-Dense): the bitmap format against an independent oracle, config validation,
Verilog ports, the Amaranth simulator vs golden with stalls, layer runs on Verilator (fast
player: bit-exact, cycles = model) and through cocotb with random back-pressure, the CLI JSON."""

import json
import random
import re
import subprocess
import sys

import cocotb
import numpy as np
import pytest

from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design, make_config
from sparsegen.hw.sod import Sod, SodConfig
from sparsegen.sim.golden import sod as gsod
from sparsegen.sim.layer import assemble_output
from sparsegen.sim.sod import SOD
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import pack_many, packed_ints

from helpers import play_job

# -- the format against an independent oracle ------------------------------------------------


def _oracle_encode(row, bz):
    """Per block, in plain Python: the mask as a sum of bits and the non-zeros in order."""
    blocks = []
    padded = list(row) + [0] * (-len(row) % bz)
    for b in range(0, len(padded), bz):
        block = padded[b:b + bz]
        mask = sum(1 << j for j, x in enumerate(block) if x != 0)
        values = [x for x in block if x != 0]
        blocks.append((mask, values + [0] * (bz - len(values))))
    return blocks


@pytest.mark.parametrize("bz", [2, 4, 8])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_encoding_matches_the_oracle_and_round_trips(bz, density):
    rng = np.random.default_rng(bz)
    x = random_operands(rng, (5, 19), 8, density=density)
    x[1] = 0                                # an all-zero row
    x[2, :bz] = rng.integers(1, 100, bz)    # a full block
    enc = gsod.encode(x, bz)
    for m in range(x.shape[0]):
        got = [(int(enc.mask[m, b]), enc.values[m, b].tolist())
               for b in range(enc.mask.shape[1])]
        assert got == _oracle_encode(x[m].tolist(), bz)
    assert np.array_equal(gsod.decode(enc), x)
    nnz = int(np.count_nonzero(x))
    assert gsod.stored_bits(x, bz, 8) == 5 * -(-19 // bz) * bz + 8 * nnz


def test_malformed_encodings_are_rejected():
    enc = gsod.encode(np.array([[0, 5, 0, 7]]), 2)
    assert enc.mask.tolist() == [[2, 2]] and enc.values.tolist() == [[[5, 0], [7, 0]]]
    bad = gsod.BitmapBlocks(mask=np.array([[3, 2]]), values=enc.values, block_size=2, k=4)
    with pytest.raises(ValueError, match="popcount"):
        gsod.decode(bad)
    with pytest.raises(ValueError, match="fit in 2 bits"):
        gsod.check(gsod.BitmapBlocks(mask=np.array([[4, 2]]), values=enc.values,
                                     block_size=2, k=4))


# -- config and Verilog ------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(rows=0), ValueError, "`rows` must be between 1 and 64, not 0"),
    (dict(block_size=3), ValueError, "`block_size` must be a power of two, not 3"),
    (dict(block_size=64), ValueError, "`block_size` must be between 2 and 32, not 64"),
    (dict(data_width=8, acc_width=4), ValueError,
     "`acc_width` must be between `data_width` (8) and 64, not 4"),
    (dict(zvcg="yes"), TypeError, "`zvcg` must be a bool, not str 'yes'"),
])
def test_config_rejects(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        SodConfig(**kwargs)


def test_verilog_ports_and_one_decoder_module():
    design = get_design("sod")
    generated = generate(design, SodConfig(rows=3, cols=2))
    header = re.search(r"^module (\w+)\((.*?)\);", generated.verilog, re.M)
    assert header.group(1) == "sod"
    assert {p.strip() for p in header.group(2).split(",")} == {
        "clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready",
        "o__payload"}
    # One decoder module, instantiated once per edge (rows + cols).
    assert len(re.findall(r"^module \\sod\.decoder \(", generated.verilog, re.M)) == 1
    assert len(re.findall(r"^\s*\\sod\.decoder\s+dec_[aw]\d+ \(", generated.verilog, re.M)) == 5


# -- Amaranth simulator vs golden -------------------------------------------------------------

CONFIGS = [SodConfig(rows=3, cols=2, block_size=2, acc_width=16),
           SodConfig(rows=2, cols=3, block_size=4, zvcg=False)]


def _operands(m, k, n, seed, density=0.5):
    rng = np.random.default_rng(seed)
    a = random_operands(rng, (m, k), 8, density=density)
    w = random_operands(rng, (k, n), 8, density=density)
    a[0] = 0                                    # an all-zero row of A
    w[:, -1] = 0                                # an all-zero column of W
    w[:min(k, 4), 0] = rng.integers(1, 128, min(k, 4))     # a dense run
    return a, w


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_array_matches_golden(config, stalls):
    a, w = _operands(5, 11, 4, seed=config.rows)
    job = SOD.prepare(config, a, w)
    output, cycles = play_job("sod", Sod(config), config, job, stalls=stalls)
    assert (output == job.expected).all()
    if not stalls:
        assert cycles == SOD.cycles(config, *job.shape)


# -- Verilator: layer runs (fast player) and cocotb with back-pressure ------------------------

SOD_3x4 = dict(rows=3, cols=4, block_size=2)        # also tests/test_cycle_oracles.py's build


@pytest.mark.verilator
def test_layer_runs_are_bit_exact_at_every_density():
    """Odd shapes, densities 0 (all-zero) to 1 (fully dense), all-zero rows and columns: the
    fast player's run equals golden and its cycles the model, which do not depend on density."""
    design = get_design("sod")
    config = make_config(design, SOD_3x4)
    for (m, k, n), density in [((7, 13, 9), 0.3), ((7, 13, 9), 1.0), ((7, 13, 9), 0.0),
                               ((1, 1, 1), 1.0), ((6, 40, 8), 0.6)]:
        a, w = _operands(m, k, n, seed=m * k + n, density=density)
        result = design.host.run(design, config, a, w)
        assert result.matches_golden, (m, k, n, density)
        assert result.cycles == result.model_cycles, (m, k, n, density)


@cocotb.test()
@cocotb.parametrize(backpressure=[(0.0, 0.0), (0.3, 0.4)], shape=[(7, 13, 9), (3, 2, 4)])
async def sod_gemm_matches_golden(dut, backpressure, shape):
    """A GEMM of an odd shape streamed by the cocotb drivers with random stalls."""
    from sparsegen.sim.tb.stream import TB
    tb = TB(dut)
    config = SodConfig(**tb.config)
    a, w = _operands(*shape, seed=sum(shape))
    job = SOD.prepare(config, a, w)
    words = packed_ints(pack_many(tb.layout("i__payload"), job.payload, job.steps))
    rng = random.Random(shape[0])
    src = tb.source("i", idle_prob=backpressure[0], rng=rng)
    snk = tb.sink("o", stall_prob=backpressure[1], rng=rng)
    await tb.start()
    cocotb.start_soon(snk.run(tb))
    await src.send(words, tb)
    rows = job.tiles[0] * job.tiles[1] * config.rows
    await snk.wait_for(rows, timeout_cycles=400 + 40 * rows)
    output = assemble_output(np.array(snk.items), job, config.rows, config.cols)
    assert (output == job.expected).all()


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("params", [SOD_3x4, dict(rows=2, cols=5, block_size=4,
                                                   data_width=16, acc_width=40)])
def test_sod_cocotb(params):
    from sparsegen.sim.tb.runner import run
    design = get_design("sod")
    run(generate(design, make_config(design, params)), test_module=__name__,
        test_filter="sod_gemm_matches_golden")


@pytest.mark.verilator
def test_cli_json_has_the_arrays_keys(tmp_path):
    """`sparsegen sim sod` prints the same JSON keys as `dense-array` (energy fields included;
    --tech generic prices nothing, so no synthesis runs here)."""
    a, w = _operands(7, 13, 9, seed=3)
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "W.npy", w)
    reports = {}
    for name, params in [("sod", SOD_3x4), ("dense-array", dict(rows=4, cols=4))]:
        cmd = [sys.executable, "-m", "sparsegen.gen.cli", "sim", name,
               *(x for k, v in params.items() for x in ("-p", f"{k}={v}")),
               "--a", str(tmp_path / "A.npy"), "--w", str(tmp_path / "W.npy"), "--json",
               "--tech", "generic"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        reports[name] = json.loads(done.stdout)
    sod = reports["sod"]
    assert set(sod) == set(reports["dense-array"])
    assert sod["matches_golden"] is True and sod["cycles"] == sod["model_cycles"]


@pytest.mark.verilator
@pytest.mark.synth
def test_rtl_energy_equals_the_model_energy():
    """The energy of an RTL run (cell actions counted by the harness) equals the closed-form
    counts of `--model`, priced on sky130hd."""
    design = get_design("sod")
    config = make_config(design, SOD_3x4)
    a, w = _operands(7, 13, 9, seed=4, density=0.4)
    rtl = design.host.run(design, config, a, w, tech="sky130hd").as_json()
    model = design.host.model(design, config, a, w, tech="sky130hd").as_json()
    assert rtl["energy_pj"] > 0 and rtl["edp"] > 0
    for key in ("energy_pj", "edp", "time_us", "energy_counts", "energy_breakdown"):
        assert rtl[key] == model[key], key
