"""scnn-pe and scnn: generated Verilog on Verilator (cocotb) against the golden convolution.

Two kinds of run:

* protocol tests (cocotb tests below): random sparse convolutions of odd shapes, all-zero and
  fully dense operands, streamed by the cocotb drivers with random stalls on both sides;
* layer runs through the stream player (``run_conv``, what ``sparsegen sim scnn`` does):
  full-rate streams whose cycle and conflict-stall counts must equal the cycle model.
"""

import random

import cocotb
import numpy as np
import pytest

from sparsegen.gen.registry import get_design
from sparsegen.hw.scnn import Cmd
from sparsegen.sim import scnn as host
from sparsegen.sim.golden import scnn as gs
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import pack_many, packed_ints
from sparsegen.sim.tb.stream import TB

# (C, K, H, W, R, S), pad, activation density, weight density, relu
CASES = {
    "odd": ((3, 5, 9, 7, 3, 3), 1, 0.5, 0.4, False),
    "zero": ((2, 3, 5, 5, 3, 3), 1, 0.0, 0.5, False),
    "dense": ((2, 3, 6, 5, 3, 3), 0, 1.0, 1.0, True),
    "pointwise": ((4, 3, 5, 6, 1, 1), 0, 0.6, 0.7, False),
}


def conv_operands(seed, c, k, h, w, r, s, act_density, w_density, width=16):
    rng = np.random.default_rng(seed)
    return (random_operands(rng, (c, h, w), width, act_density),
            random_operands(rng, (k, c, r, s), width, w_density))


# -- inside the simulator ------------------------------------------------------------------


@cocotb.test()
@cocotb.parametrize(backpressure=[(0.0, 0.0), (0.3, 0.4)], case=list(CASES))
async def conv_matches_golden(dut, backpressure, case):
    """A convolution streamed as compressed words with random stalls; the drained,
    re-compressed rows decode to the golden output."""
    tb = TB(dut)
    design = get_design(tb.meta["design"])
    config = design.config_cls(**tb.config)
    array = tb.meta["design"] == "scnn"
    shape, pad, ad, wd, relu = CASES[case]
    ifmap, filters = conv_operands(sum(shape), *shape, ad, wd, width=config.data_width)
    program = host.build_program(config, ifmap, filters, pad, relu=relu)
    payload, n = host.payload_of(program, with_pe=array)
    words = packed_ints(pack_many(tb.layout("i__payload"), payload, n))
    rng = random.Random(len(case))
    src = tb.source("i", idle_prob=backpressure[0], rng=rng)
    snk = tb.sink("o", stall_prob=backpressure[1], rng=rng)
    if not array:
        dut.i_halo_h.value = 0
        dut.i_halo_v.value = 0
    await tb.start()
    cocotb.start_soon(snk.run(tb))
    await src.send(words, tb)
    await snk.wait_for(program.transfers, timeout_cycles=2000 + 20 * program.transfers)
    rows = [item if array else [item] for item in snk.items]
    transfers = [[[(ln["value"], ln["run"], ln["valid"]) for ln in pe["lanes"]] for pe in row]
                 for row in rows]
    expected = gs.conv_direct(ifmap, filters, pad, config.acc_width, config.data_width)
    if relu:
        expected = np.maximum(expected, 0)
    assert (host.decode_outputs(program, transfers) == expected).all()


# -- pytest runners ------------------------------------------------------------------------

PE_PARAMS = dict(f=2, i=2, kc=2, max_tile_w=6, max_tile_h=6)
ARRAY_PARAMS = dict(pe_rows=2, pe_cols=2, f=2, i=2, kc=2, max_tile_w=6, max_tile_h=6)


def _generated(name, params):
    from sparsegen.gen.generate import generate
    from sparsegen.gen.registry import make_config
    design = get_design(name)
    config = make_config(design, params)
    return design, config, generate(design, config)


@pytest.mark.verilator
# The 2x2 array's cocotb run (about 50 s) is in make test-slow; the default suite runs the array
# on Verilator through the fast harness (tests/test_sim_cli.py, test_fast_player.py and the hand
# cycle counts) and the PE through cocotb.
@pytest.mark.parametrize("name, params", [
    ("scnn-pe", PE_PARAMS), pytest.param("scnn", ARRAY_PARAMS, marks=pytest.mark.slow)],
    ids=["scnn-pe", "scnn"])
def test_scnn_verilator(name, params):
    from sparsegen.sim.tb.runner import run
    run(_generated(name, params)[2], test_module=__name__, test_filter="conv_matches_golden")


@pytest.mark.verilator
def test_layer_run_cycles_match_model():
    """The player's full-rate run (``sparsegen sim scnn``): bit-exact output, RTL cycles and
    conflict stalls equal to the model, halo traffic reported."""
    design, config, _ = _generated("scnn", ARRAY_PARAMS)
    for case in ("odd", "dense", "zero"):
        shape, pad, ad, wd, relu = CASES[case]
        ifmap, filters = conv_operands(7, *shape, ad, wd)
        result = host.run_conv(design, config, ifmap, filters, pad=pad, relu=relu)
        assert result.matches_golden, case
        expected = gs.conv_einsum(ifmap, filters, pad)
        assert (result.output == (np.maximum(expected, 0) if relu else expected)).all()
        assert result.cycles == result.model_cycles, case
        assert result.conflict_stalls == result.model_conflict_stalls, case
        assert result.halo_traffic > 0
        assert result.macs_nonzero == gs.macs_nonzero(ifmap, filters, pad)
        # Actions counted in the RTL run against the program: halo partial sums (closed
        # form), ACT words, weight entries x PEs, pairs and live products (every live product
        # crosses the crossbar once).
        program = host.build_program(config, ifmap, filters, pad, relu)
        assert result.halo_traffic == program.halo_traffic, case
        kinds = [w[0] for w in program.words]
        work = [program.work[key] for key in program.blocks if key is not None]
        # Activation RAM rows written: the ACT words into the IARAM, the drained rows into
        # the OARAM (counted from the golden convolution, host.oaram_rows).
        assert result.actions["act_write"] == (host.act_words(program)
                                               + host.oaram_rows(program)), case
        assert result.actions["wgt_push"] == kinds.count(Cmd.WGT) * config.pes, case
        # Drained frame rows: kc x (Ht+R-1) per DRAIN and PE, kc x Ht of them own (the
        # drain's clock-gated registers load on these, hw/scnn.py gated_registers).
        plan, walks = program.plan, len(program.drains) * config.pes * config.kc
        assert result.actions["drain_row"] == walks * (plan.ht + plan.r - 1), case
        assert result.actions["drain_push"] == walks * plan.ht, case
        assert result.actions["pair"] == sum(len(pe) for entry in work for pe in entry), case
        live = sum(len(pair) for entry in work for pe in entry for pair in pe)
        assert result.actions["mul"] == result.actions["grant"] == live, case


@pytest.mark.verilator
def test_layer_run_with_an_sram_macro():
    """A PE whose activation RAM banks are SRAM macros (hw/sram.py: 342 rows of 12 bits, 4,104
    bits; four banks per RAM): the macro module's functional model runs on the fast player
    bit-exact, cycles equal to the model."""
    params = dict(pe_rows=1, pe_cols=1, f=1, i=1, banks=4, kc=1, max_tile_w=2, max_tile_h=2,
                  max_r=2, max_s=2, bank_depth=3, act_depth=4 * 342, data_width=8,
                  acc_width=16)
    design, config, generated = _generated("scnn", params)
    assert "module \\scnn.sram_1r1w_342x12 " in generated.verilog
    ifmap, filters = conv_operands(11, 2, 3, 3, 3, 2, 2, 0.7, 0.8, width=8)
    result = host.run_conv(design, config, ifmap, filters, pad=1)
    assert result.matches_golden
    assert (result.cycles, result.conflict_stalls) == (result.model_cycles,
                                                       result.model_conflict_stalls)


@pytest.mark.verilator
@pytest.mark.slow
def test_layer_run_passes_and_chunks():
    """A plane beyond the grid (spatial passes) and channels beyond the activation buffers."""
    params = dict(ARRAY_PARAMS, act_depth=18)
    design, config, _ = _generated("scnn", params)
    ifmap, filters = conv_operands(9, 6, 5, 14, 13, 3, 3, 0.6, 0.5)
    result = host.run_conv(design, config, ifmap, filters, pad=1)
    assert result.passes > 1
    assert result.matches_golden
    assert result.cycles == result.model_cycles


@pytest.mark.verilator
def test_cli_sim_scnn(tmp_path, capsys):
    """``sparsegen sim scnn``: output file equal to the direct convolution, JSON report;
    bad tensors are one error line and exit status 2."""
    import json

    from sparsegen.gen.cli import main
    ifmap, filters = conv_operands(3, 3, 5, 9, 7, 3, 3, 0.5, 0.5)
    np.save(tmp_path / "I.npy", ifmap.astype(np.int16))
    np.save(tmp_path / "F.npy", filters.astype(np.int32))
    out = tmp_path / "O.npy"
    args = ["sim", "scnn", "--ifmap", str(tmp_path / "I.npy"), "--filters",
            str(tmp_path / "F.npy"), "--pad", "1", "-o", str(out), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (np.load(out) == gs.conv_direct(ifmap, filters, 1)).all()
    assert report["matches_golden"] and report["cycles"] == report["model_cycles"]
    for key in ("macs_total", "macs_nonzero", "utilization", "conflict_stalls",
                "halo_traffic"):
        assert key in report
    assert report["macs_total"] == 5 * 3 * 9 * 9 * 7
    np.save(tmp_path / "bad.npy", filters[:, :, :, :2].astype(np.float64))
    assert main(["sim", "scnn", "--ifmap", str(tmp_path / "I.npy"), "--filters",
                 str(tmp_path / "bad.npy")]) == 2
    assert "tensor `filters`: dtype float64" in capsys.readouterr().err
    big = np.zeros((5, 3, 4, 3), dtype=np.int8)
    np.save(tmp_path / "big.npy", big)
    assert main(["sim", "scnn", "--ifmap", str(tmp_path / "I.npy"), "--filters",
                 str(tmp_path / "big.npy")]) == 2
    assert "R=4 exceeds `max_r` (3)" in capsys.readouterr().err


@pytest.mark.verilator
def test_layer_run_passes_chunks_and_wrap():
    """The default-suite representative of the slow test above, on the ARRAY_PARAMS build:
    two spatial passes (a 14-row plane, 6-row tiles), channel chunks (three near-dense channels
    of a 6 x 6 tile need about 3 x 17 rows of the 32-row activation buffers), kc = 2 not
    dividing K = 3, and 16-bit operands whose sums wrap the 24-bit accumulators. The expected
    output is a direct int64 loop, wrapped explicitly."""
    design, config, _ = _generated("scnn", ARRAY_PARAMS)
    ifmap, filters = conv_operands(21, 3, 3, 14, 9, 3, 3, 0.95, 0.6)
    program = host.build_program(config, ifmap, filters, 1)
    configs = sum(word[0].name == "CONFIG" for word in program.words)
    assert len(program.plan.passes) == 2 and configs > 2
    x = np.pad(ifmap, ((0, 0), (1, 1), (1, 1)))
    exact = np.zeros((3, 14, 9), dtype=np.int64)
    for k, c, r, s in np.ndindex(filters.shape):
        exact[k] += filters[k, c, r, s] * x[c, r:r + 14, s:s + 9]
    expected = (exact + (1 << 23)) % (1 << 24) - (1 << 23)
    assert (expected != exact).any()
    result = host.run_conv(design, config, ifmap, filters, pad=1)
    assert result.passes == 2
    assert (result.output == expected).all() and result.matches_golden
    assert result.cycles == result.model_cycles
    assert result.conflict_stalls == result.model_conflict_stalls


@pytest.mark.verilator
@pytest.mark.synth
@pytest.mark.slow
def test_layer_energy_from_rtl_counts():
    """``sim scnn`` on sky130hd: energy from the run's action counts (synthesizes the default
    array once for area and fmax): the breakdown adds up, time is cycles / fmax, every
    counted action is priced, and the multiplies are the live products counted."""
    design, config, _ = _generated("scnn", ARRAY_PARAMS)
    shape, pad, ad, wd, relu = CASES["odd"]
    ifmap, filters = conv_operands(7, *shape, ad, wd)
    result = host.run_conv(design, config, ifmap, filters, pad=pad, relu=relu,
                           tech="sky130hd")
    energy = result.energy
    assert energy.energy_pj == pytest.approx(sum(energy.energy_breakdown.values()), abs=0.01)
    assert energy.time_us == pytest.approx(result.cycles / energy.fmax_mhz, rel=1e-5)
    assert energy.counts["mul"] == result.actions["mul"] > 0
    assert all(energy.energy_breakdown[k] > 0 for k in ("mul", "xbar", "bank_read",
                                                        "act_read", "reg_bit_hold", "leakage"))
