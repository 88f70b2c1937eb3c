"""scnn: two conv layers chained through the PEs' activation RAMs (layer 1 drains its ReLU'd
output into the OARAMs, which become layer 2's IARAMs at the swap). Bit-exact against an
independent oracle (two direct convolution loops), RTL cycles and conflict stalls equal to the
model per layer, the OARAM writes counted, and bad chains refused with one named error."""

import functools
import random
import re

import numpy as np
import pytest

from sparsegen.gen.generate import describe_shape
from sparsegen.gen.registry import get_design, make_config
from sparsegen.hw.scnn import Cmd, Scnn, ScnnConfig
from sparsegen.sim import scnn as host
from sparsegen.sim.golden import scnn as gs
from sparsegen.sim.golden.numeric import TensorError
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import pack_many, packed_ints

from helpers import simulate, stream_get, stream_put

#: The default ``scnn`` (2 x 2 PEs, f = i = 2, kc = 2, 6 x 6 tiles, 32 IARAM rows): the build
#: the other SCNN layer runs use (tests/test_scnn_cocotb.py, tests/test_cycle_oracles.py).
PARAMS = {}


def oracle(ifmap, filters, pad, filters2, pad2, relu, cfg):
    """Layer 1 by the definition, ReLU, saturation to ``data_width`` (the OARAM's width),
    layer 2 by the definition (ReLU when asked)."""
    top = (1 << (cfg.data_width - 1)) - 1
    o1 = np.maximum(gs.conv_direct(ifmap, filters, pad, cfg.acc_width, cfg.data_width), 0)
    o2 = gs.conv_direct(np.minimum(o1, top), filters2, pad2, cfg.acc_width, cfg.data_width)
    return o1, (np.maximum(o2, 0) if relu else o2)


def operands(seed, c, k1, h, w, r1, s1, k2, r2, s2, ad, wd, width=16, scale=1):
    """A chain's ifmap, filters and filters2 at the given densities (values divided by
    ``scale``, zeros kept where the division would make them)."""
    rng = np.random.default_rng(seed)

    def shrink(x):
        y = x // scale
        return np.where((x != 0) & (y == 0), 1, y)
    return (shrink(random_operands(rng, (c, h, w), width, ad)),
            shrink(random_operands(rng, (k1, c, r1, s1), width, wd)),
            shrink(random_operands(rng, (k2, k1, r2, s2), width, wd)))


# shape (C, K1, H, W, R1, S1, K2, R2, S2), pad, pad2, act density, weight density, scale, relu
CASES = {
    # odd plane, 3x3 then a 2x3 filter (R != S, S_out = S), K1 = 3 not a multiple of kc
    "odd": ((3, 3, 9, 7, 3, 3, 2, 2, 3), 1, 1, 0.5, 0.5, 256, True),
    # every activation and weight non-zero; a pointwise layer 2 (S_out = 1 != S)
    "dense": ((2, 2, 6, 5, 3, 3, 3, 1, 1), 1, 0, 1.0, 1.0, 1024, False),
    # an all-zero input: empty channels all the way (one zero row each in the IARAMs)
    "zero": ((2, 3, 7, 6, 3, 3, 2, 3, 3), 1, 1, 0.0, 0.5, 1, False),
    # 6x6 tiles of sparse data: runs of more than 15 zeros in the ACT words and the outputs
    "long-runs": ((2, 2, 9, 9, 3, 3, 2, 3, 3), 1, 1, 0.1, 0.3, 64, False),
    # full-range 16-bit operands: layer 1's outputs saturate in the OARAM
    "saturate": ((2, 2, 5, 5, 3, 3, 2, 3, 3), 1, 1, 0.6, 0.6, 1, False),
}


@pytest.fixture(scope="module")
def scnn():
    """The default ``scnn``, its Verilog generated once for the module (elaborating SCNN takes
    seconds)."""
    design = get_design("scnn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(host, "generate", functools.cache(host.generate))
        yield design, make_config(design, PARAMS)


@pytest.mark.verilator
def test_chained_layers_on_the_player(scnn):
    """Every case on the fast player (one build): both layers' outputs equal the oracle, the
    cycles and conflict stalls of the run and of each layer equal the model's, and the
    activation RAM writes counted in the RTL are the ACT words plus the drained rows."""
    design, config = scnn
    for case, (shape, pad, pad2, ad, wd, scale, relu) in CASES.items():
        ifmap, filters, filters2 = operands(len(case), *shape, ad, wd, scale=scale)
        result = host.run_conv(design, config, ifmap, filters, pad=pad, relu=relu,
                               filters2=filters2, pad2=pad2)
        o1, o2 = oracle(ifmap, filters, pad, filters2, pad2, relu, config)
        assert result.matches_golden, (case, result.first_divergence)
        assert (result.output == o2).all(), case
        chain = host.build_chain(config, ifmap, filters, pad, filters2, pad2, relu)
        shift = pad2
        assert (chain.first.expected[:len(o1), shift:, shift:] == o1).all(), case
        if case == "saturate":
            assert (o1 > (1 << 15) - 1).any()
        if case == "long-runs":
            acts = [col for w in chain.words if w[0] == Cmd.ACT for col in w[1] if col]
            assert any(run == 15 for col in acts for run in col[3])
        assert (result.cycles, result.conflict_stalls) == (
            result.model_cycles, result.model_conflict_stalls), case
        assert [layer["cycles"] for layer in result.layers] == [
            layer["model_cycles"] for layer in result.layers], case
        split = result.layers[1]["model_split"]
        assert split["load"] == 0 and result.layers[0]["model_split"]["load"] > 0
        acts = host.act_words(chain)
        assert result.actions["act_write"] == acts + host.oaram_rows(chain), case


@pytest.mark.verilator
def test_grouped_layer_on_the_player(scnn):
    """Output-channel column groups (``groups=2``: one column each) on the default build: an
    odd plane in two spatial passes, K = 5 (three kc-groups: the second column group's last
    round is empty), the halo between the groups dropped, ReLU; bit exact against the direct
    convolution, cycles and conflict stalls as the model's, the activation RAM writes counted
    in the RTL are the ACT words plus the drained rows (each group drains its own channels).
    A grouped layer does not chain (its OARAMs hold its group's channels only)."""
    design, config = scnn
    rng = np.random.default_rng(12)
    ifmap = random_operands(rng, (3, 5, 7), 16, 0.6)
    filters = random_operands(rng, (5, 3, 3, 3), 16, 0.6)
    result = host.run_conv(design, config, ifmap, filters, pad=1, relu=True, groups=2)
    assert (result.output == np.maximum(gs.conv_direct(ifmap, filters, 1), 0)).all()
    assert result.matches_golden and result.passes == 2 and result.as_json()["groups"] == 2
    assert (result.cycles, result.conflict_stalls) == (result.model_cycles,
                                                       result.model_conflict_stalls)
    program = host.build_program(config, ifmap, filters, 1, relu=True, groups=2)
    assert result.actions["act_write"] == host.act_words(program) + host.oaram_rows(program)
    with pytest.raises(TensorError, match="^chained layers run ungrouped"):
        host.model_conv(design, config, ifmap, filters, pad=1, filters2=np.ones((1, 5, 1, 1),
                        np.int64), groups=2)


def _amaranth_chain(config, chain, seed):
    """Run ``chain`` on :class:`Scnn` in the Amaranth simulator with random idle input
    cycles and output back-pressure; returns both layers' decoded outputs."""
    dut = Scnn(config)
    layout = describe_shape(dut.i.payload.shape())
    payload, n = host.payload_of(chain, with_pe=True)
    words = packed_ints(pack_many(layout, payload, n))
    rng = random.Random(seed)
    got = []

    async def producer(ctx):
        shape = dut.i.payload.shape()
        for w in words:
            await stream_put(ctx, dut.i, shape.from_bits(w), rng=rng, idle_prob=0.3)

    async def consumer(ctx):
        for _ in range(chain.transfers):
            rows = await stream_get(ctx, dut.o, rng=rng, stall_prob=0.5)
            got.append([[(int(ln.value), int(ln.run), int(ln.valid)) for ln in pe.lanes]
                        for pe in rows])

    simulate(dut, producer, consumer)
    return host.decode_chain(chain, got)


def test_chained_layers_with_backpressure():
    """A small chain in the Amaranth simulator, random stalls on both sides (the walk waits on
    ``o`` while the gearbox writes the OARAMs): both layers bit-exact."""
    config = ScnnConfig(pe_rows=2, pe_cols=1, f=2, i=2, kc=1, max_tile_w=5, max_tile_h=3,
                        bank_depth=5, act_depth=10)
    ifmap, filters, filters2 = operands(5, 1, 2, 3, 2, 3, 3, 1, 3, 3, 0.8, 0.8, scale=256)
    chain = host.build_chain(config, ifmap, filters, 1, filters2, 1)
    o1, o2 = _amaranth_chain(config, chain, 1)
    ref1, ref2 = oracle(ifmap, filters, 1, filters2, 1, False, config)
    assert (o1[:, 1:, 1:] == ref1).all() and (o1[:, :1] == 0).all() and (o1[:, :, :1] == 0).all()
    assert (o2 == ref2).all() and ref2.any()


# -- bad chains ------------------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda: (np.ones((2, 6, 6)), np.ones((3, 2, 3, 3)), np.ones((2, 4, 3, 3))),
     "tensor `filters2`: has 4 input channels but layer 1 makes 3 output channels"),
    (lambda: (np.ones((2, 6, 6)), np.ones((3, 2, 3, 3)), np.ones((2, 3, 4, 3))),
     "tensor `filters2`: 4x3 exceeds `max_r` x `max_s` (3x3)"),
    (lambda: (np.ones((1, 12, 6)), np.ones((2, 1, 3, 3)), np.ones((2, 2, 3, 3))),
     "chained layers run in one pass on the same tiles: the height needs tiles of 7 on 2 PEs, "
     "more than `max_tile_h` (6)"),
    # 12 dense channels of a 5x5 output tile: 12 x 13 rows of two, more than 32
    (lambda: (np.ones((1, 8, 8)), np.ones((12, 1, 3, 3)), np.ones((1, 12, 1, 1))),
     "layer 2's input does not fit the IARAM: PE (0, 0) holds 156 rows of `i` (2) non-zeros "
     "of layer 1's output tile, more than `act_depth` (32)"),
])
def test_bad_chains_are_named(scnn, make, message):
    ifmap, filters, filters2 = (x.astype(np.int64) for x in make())
    with pytest.raises(TensorError, match=f"^{re.escape(message)}$"):
        host.build_chain(scnn[1], ifmap, filters, 1, filters2, 0)


def test_cli_refuses_bad_chains(tmp_path, capsys):
    """``sim scnn --filters2``: one error line and exit status 2 for a bad chain, and for the
    options where they do not belong."""
    from sparsegen.gen.cli import main
    np.save(tmp_path / "I.npy", np.ones((2, 6, 6), np.int16))
    np.save(tmp_path / "F.npy", np.ones((3, 2, 3, 3), np.int16))
    np.save(tmp_path / "F2.npy", np.ones((2, 4, 3, 3), np.int16))
    base = ["sim", "scnn", "--ifmap", str(tmp_path / "I.npy"), "--filters",
            str(tmp_path / "F.npy")]
    for args, error in (
            (["--filters2", str(tmp_path / "F2.npy")],
             "tensor `filters2`: has 4 input channels but layer 1 makes 3 output channels"),
            (["--pad2", "1"], "--pad2 is the padding of the --filters2 layer; give --filters2"),
            (["--filters2", str(tmp_path / "F2.npy"), "--pad2", "-1"],
             "--pad2 must not be negative, not -1")):
        assert main(base + args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"sparsegen: error: {error}" in err, err
    assert main(["sim", "dense-array", "--a", str(tmp_path / "I.npy"), "--w",
                 str(tmp_path / "I.npy"), "--filters2", str(tmp_path / "F2.npy")]) == 2
    assert "--filters2 chains two convolutions" in capsys.readouterr().err


def test_model_reports_each_layer(scnn):
    """``--model`` of a chain: per-layer cycles that add up to the run's, each split into load,
    compute and walk that add up to it; the output is the oracle's."""
    design, config = scnn
    shape, pad, pad2, ad, wd, scale, relu = CASES["odd"]
    ifmap, filters, filters2 = operands(3, *shape, ad, wd, scale=scale)
    result = design.host.model(design, config, ifmap, filters, pad=pad, relu=relu,
                               filters2=filters2, pad2=pad2)
    assert (result.output == oracle(ifmap, filters, pad, filters2, pad2, relu, config)[1]).all()
    assert sum(layer["model_cycles"] for layer in result.layers) == result.cycles
    for layer in result.layers:
        split = layer["model_split"]
        assert split["load"] + split["compute"] + split["walk"] == layer["model_cycles"]
    report = result.as_json()
    assert report["layers"][1]["shape"]["C"] == 4       # K1 = 3 rounded up to kc = 2
