"""scnn-pe and scnn: config validation, Verilog ports, Amaranth simulator vs golden (with and
without random stalls), and the cycle model against the simulated RTL."""

import random
import re

import numpy as np
import pytest
from scnn_reference import ReferenceCrossbars

from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design
from sparsegen.hw import scnn as hw_scnn
from sparsegen.hw.scnn import Cmd, Scnn, ScnnConfig, ScnnPE, ScnnPEConfig, plane_pitch
from sparsegen.hw.sram import sync_memory
from sparsegen.sim import scnn as host
from sparsegen.sim.golden import scnn as gs
from sparsegen.sim.golden.numeric import TensorError
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import pack_many, packed_ints

from helpers import cycle_counter, simulate, stream_get, stream_put

# -- config validation -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ScnnPEConfig, ScnnConfig], ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(f=0), ValueError, "`f` must be between 1 and 16, not 0"),
    (dict(banks=12), ValueError, "`banks` must be a power of two, not 12"),
    (dict(f=3), ValueError, "`banks` must be a power of two, not 12"),
    (dict(i=True), TypeError, "`i` must be an int, not bool True"),
    (dict(acc_width=8), ValueError,
     "`acc_width` must be between `data_width` (16) and 48, not 8"),
    (dict(max_tile_w=7), ValueError,
     "a frame row (`max_tile_w` + `max_s` - 1 = 9) must fit `banks` (8), not exceed it"),
    (dict(bank_depth=16), ValueError,
     "`bank_depth` must be at least 17 to hold `kc` (2) frames of up to 64 accumulators at a "
     "bank-skewed pitch, not 16"),
    (dict(act_depth=17), ValueError,
     "`act_depth` must be at least 18 to hold one channel of a full tile, not 17"),
    (dict(max_r=16), ValueError, "`max_r` must be between 1 and 15, not 16"),
])
def test_config_rejects(cls, kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        cls(**kwargs)


def test_config_defaults_and_derived():
    pe = ScnnPEConfig()
    assert (pe.f, pe.i, pe.banks, pe.data_width, pe.acc_width) == (2, 2, 8, 16, 24)
    assert ScnnPEConfig(f=4, i=4, max_tile_w=8, bank_depth=128, act_depth=64).banks == 32
    assert [plane_pitch(p, 4, 32) for p in (100, 8, 64)] == [104, 8, 72]
    assert plane_pitch(49, 1, 8) == 56
    arr = ScnnConfig(pe_rows=2, pe_cols=3)
    assert arr.multipliers == 24 and arr.pe == ScnnPEConfig()
    with pytest.raises(ValueError, match="`pe_rows` must be between 1 and 16, not 0"):
        ScnnConfig(pe_rows=0)


# -- conversion --------------------------------------------------------------------------------


# The PE's sub-blocks (and the storage inside them): the hierarchy of the area breakdown.
PE_PARTS = ("control", "activations", "act_buffer", "weights", "weight_fifo", "cartesian",
            "multipliers", "crossbar", "accumulators", "banks", "drain")


@pytest.mark.parametrize("name, ports", [
    ("scnn-pe", {"i_halo_h", "i_halo_v", "o_halo", "grid_y", "grid_x", "conflict_stalls"}),
    ("scnn", {"conflict_stalls"}),
])
def test_verilog_ports(name, ports):
    design = get_design(name)
    generated = generate(design, design.config_cls())
    header = re.search(r"^module (\w+)\((.*?)\);", generated.verilog, re.M | re.S)
    assert header.group(1) == design.top
    found = {p.strip() for p in header.group(2).split(",")}
    assert found == {"clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid",
                     "o__ready", "o__payload"} | ports
    # The hierarchy the area breakdown relies on.
    for sub in PE_PARTS:
        assert re.search(rf"^module \S*{sub}\b", generated.verilog, re.M), sub


# -- stimulus ----------------------------------------------------------------------------------


def conv_operands(seed, c, k, h, w, r, s, act_density=0.5, w_density=0.5, width=16):
    rng = np.random.default_rng(seed)
    return (random_operands(rng, (c, h, w), width, act_density),
            random_operands(rng, (k, c, r, s), width, w_density))


def run_amaranth(config, program, *, stalls=False, seed=0, trace=None):
    """Run ``program`` on the component in the Amaranth simulator; returns (output rows,
    cycles from the first input transfer to the last output transfer, stall counter). With a
    ``trace`` dict, ``trace["i"]`` and ``trace["o"]`` get the edges of every input and output
    transfer."""
    array = isinstance(config, ScnnConfig)
    dut = Scnn(config) if array else ScnnPE(config)
    design = get_design("scnn" if array else "scnn-pe")
    layout = generate(design, config).metadata["layouts"]["i__payload"]
    payload, n = host.payload_of(program, with_pe=array)
    words = packed_ints(pack_many(layout, payload, n))
    rng = random.Random(seed)
    idle, stall = (0.3, 0.3) if stalls else (0.0, 0.0)
    got, log = [], {}

    async def producer(ctx):
        shape = dut.i.payload.shape()
        for w in words:
            await stream_put(ctx, dut.i, shape.from_bits(w), rng=rng, idle_prob=idle)

    async def consumer(ctx):
        for _ in range(program.transfers):
            row = await stream_get(ctx, dut.o, rng=rng, stall_prob=stall)
            rows = row if array else [row]
            got.append([[(int(ln.value), int(ln.run), int(ln.valid)) for ln in pe.lanes]
                        for pe in rows])

    def stalls(ctx):
        log["stalls"] = ctx.get(dut.conflict_stalls)

    async def tracer(ctx):
        trace.update(i=[], o=[])
        edge = 0
        while len(trace["o"]) < program.transfers:
            fired = {port: ctx.get(getattr(dut, port).valid) and ctx.get(getattr(dut, port).ready)
                     for port in ("i", "o")}
            await ctx.tick()
            edge += 1
            for port, fire in fired.items():
                if fire:
                    trace[port].append(edge)

    benches = [producer, consumer, cycle_counter(dut, program.transfers, log, on_done=stalls)]
    simulate(dut, *benches, *([tracer] if trace is not None else []))
    return host.decode_outputs(program, got), log["cycles"], log["stalls"]


# -- scnn-pe in the Amaranth simulator -------------------------------------------------------

PE = ScnnPEConfig(f=2, i=2, kc=2, max_tile_w=6, max_tile_h=6, act_depth=32)
ARRAY = ScnnConfig(pe_rows=2, pe_cols=2, f=2, i=2, kc=2, max_tile_w=6, max_tile_h=6,
                   act_depth=24)

PE_CASES = [
    # (C, K, H, W, R, S), pad, act density, weight density, relu
    ((3, 5, 4, 5, 3, 3), 1, 0.5, 0.5, False),
    ((2, 3, 6, 6, 1, 1), 0, 0.6, 0.8, True),
    ((2, 2, 5, 4, 3, 2), 0, 1.0, 1.0, False),     # fully dense
    ((2, 3, 4, 4, 3, 3), 1, 0.0, 0.5, False),     # all-zero activations
    ((3, 2, 6, 6, 3, 3), 0, 0.3, 0.0, True),      # all-zero weights
]


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
@pytest.mark.parametrize("case", PE_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_pe_matches_golden(case, stalls):
    shape, pad, ad, wd, relu = case
    ifmap, filters = conv_operands(sum(shape), *shape, ad, wd)
    program = host.build_program(PE, ifmap, filters, pad, relu=relu)
    out, cycles, stall_count = run_amaranth(PE, program, stalls=stalls, seed=len(shape))
    expected = gs.conv_direct(ifmap, filters, pad)
    if relu:
        expected = np.maximum(expected, 0)
    assert (out == expected).all()
    if not stalls:
        assert (cycles, stall_count) == host.model_cycles(program)


def test_pe_channel_chunks_and_spatial_passes():
    """A plane bigger than the tile (12 passes) and channels beyond the activation buffer."""
    cfg = ScnnPEConfig(f=2, i=2, kc=2, max_tile_w=4, max_tile_h=4, act_depth=8)
    ifmap, filters = conv_operands(11, 4, 3, 6, 7, 3, 3, 0.7, 0.6)
    program = host.build_program(cfg, ifmap, filters, 1)
    assert len(program.plan.passes) == 12
    assert sum(w[0].name == "CONFIG" for w in program.words) > len(program.plan.passes)
    out, cycles, stalls = run_amaranth(cfg, program)
    assert (out == gs.conv_einsum(ifmap, filters, 1)).all()
    assert (cycles, stalls) == host.model_cycles(program)


def test_bank_conflicts_are_counted():
    """Sparse operands scatter products over the banks: some vector pairs collide, the RTL
    stalls and counts exactly the model's conflict stalls."""
    cfg = ScnnPEConfig(f=2, i=2, banks=8, kc=2, max_tile_w=6, max_tile_h=6)
    ifmap, filters = conv_operands(5, 2, 2, 6, 6, 3, 3, 0.4, 0.6)
    program = host.build_program(cfg, ifmap, filters, 1)
    model, model_stalls = host.model_cycles(program)
    assert model_stalls > 0
    out, cycles, stalls = run_amaranth(cfg, program)
    assert (out == gs.conv_einsum(ifmap, filters, 1)).all()
    assert (cycles, stalls) == (model, model_stalls)


def test_bank_skew_removes_dense_conflicts():
    """Dense vector pairs of a 1 x 1 conv hit 2i-bank windows per output channel."""
    ifmap, filters = conv_operands(5, 2, 2, 4, 2, 1, 1, 1.0, 1.0)
    program = host.build_program(PE, ifmap, filters, 0)
    assert host.model_cycles(program)[1] == 0


# -- scnn (array) in the Amaranth simulator ----------------------------------------------------


# The per-PE activation RAMs and the drain's gearbox made the array's Amaranth simulation about
# half again as slow: the dense cases and the odd case's stalled run move to make test-slow (the
# default suite keeps the odd case without stalls, the all-zero case both ways, and dense and
# stalled chained runs in tests/test_scnn_chain.py).
@pytest.mark.parametrize("stalls", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["nostall", "stalls"])
@pytest.mark.parametrize("case", [
    ((3, 5, 9, 7, 3, 3), 1, 0.5, 0.5, False),
    pytest.param(((2, 3, 8, 8, 3, 3), 0, 1.0, 1.0, True), marks=pytest.mark.slow),
    # Dense with ReLU on a 2 x 2 grid, in make test-slow: the double-buffered accumulators made
    # every SCNN Verilator build of the default suite about 4 s (18%) longer to compile, and
    # test_walk_overlaps_the_next_group runs a dense array case with ReLU by default.
    pytest.param(((2, 3, 6, 6, 3, 3), 1, 1.0, 1.0, True), marks=pytest.mark.slow),
], ids=lambda c: "x".join(map(str, c[0])))
def test_array_matches_golden(case, stalls):
    _array_matches_golden(case, stalls)


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
def test_array_matches_golden_on_zeros(stalls):
    _array_matches_golden(((2, 2, 5, 6, 2, 3), 0, 0.0, 1.0, False), stalls)


def _array_matches_golden(case, stalls):
    shape, pad, ad, wd, relu = case
    ifmap, filters = conv_operands(sum(shape) + 1, *shape, ad, wd)
    program = host.build_program(ARRAY, ifmap, filters, pad, relu=relu)
    out, cycles, stall_count = run_amaranth(ARRAY, program, stalls=stalls, seed=3)
    expected = gs.conv_einsum(ifmap, filters, pad)
    if relu:
        expected = np.maximum(expected, 0)
    assert (out == expected).all()
    if not stalls:
        assert (cycles, stall_count) == host.model_cycles(program)


def test_halo_traffic_count():
    ifmap, filters = conv_operands(1, 3, 5, 9, 7, 3, 3)
    program = host.build_program(ARRAY, ifmap, filters, 1)
    plan = program.plan
    hacc = plan.ht + 2
    groups = 3
    per_group = 2 * 1 * 2 * hacc * 2 + 1 * 2 * 2 * 2 * plan.wt
    assert program.halo_traffic == per_group * groups * len(plan.passes)


# -- double-buffered accumulators ------------------------------------------------------------

#: A 1 x 2 grid (the halo crosses between the PEs) of 4 x 3 tiles; the layer of the test below
#: (4 x 4 plane, 3 x 3 filter, pad 1, K = 5) takes two spatial passes of three groups each.
OVERLAP = ScnnConfig(pe_rows=1, pe_cols=2, f=2, i=2, kc=2, max_tile_w=3, max_tile_h=4,
                     bank_depth=9, act_depth=12)


@pytest.mark.parametrize("density, stalls", [(0.0, False), (1.0, False), (0.5, True)],
                         ids=["zero", "dense", "stalls"])
def test_walk_overlaps_the_next_group(density, stalls):
    """The row walk of group g (halo exchange, drain) runs on one accumulator half while the
    words of group g+1 (and of the next pass) are taken and computed into the other: after
    every DRAIN the next word is taken before the first row of the DRAIN's group leaves. Bit
    exact with random input stalls and back-pressure on ``o``; cycles and conflict stalls equal
    to the model at full rate."""
    ifmap, filters = conv_operands(17, 2, 5, 4, 4, 3, 3, density, density)
    program = host.build_program(OVERLAP, ifmap, filters, 1, relu=True)
    assert len(program.plan.passes) == 2 and len(program.drains) == 6
    trace = {}
    out, cycles, stall_count = run_amaranth(OVERLAP, program, stalls=stalls, seed=5,
                                            trace=trace)
    assert (out == np.maximum(gs.conv_direct(ifmap, filters, 1), 0)).all()
    if not stalls:
        assert (cycles, stall_count) == host.model_cycles(program)
    rows = OVERLAP.kc * program.plan.ht
    drains = [j for j, word in enumerate(program.words) if word[0].name == "DRAIN"]
    assert len(trace["i"]) == len(program.words) and len(trace["o"]) == program.transfers
    for d, j in enumerate(drains[:-1]):
        assert trace["i"][j + 1] < trace["o"][d * rows], (d, trace["i"][j:j + 2])


@pytest.mark.parametrize("make, message", [
    (lambda: (np.zeros((2, 5, 5), np.float32), np.zeros((1, 2, 3, 3), np.int64)),
     "tensor `ifmap`: dtype float32 is not an integer dtype"),
    (lambda: (np.zeros((2, 5, 5), np.int64), np.zeros((1, 3, 3, 3), np.int64)),
     "tensor `filters`: has 3 input channels but ifmap has 2"),
    (lambda: (np.zeros((2, 5, 5), np.int64), np.zeros((1, 2, 5, 3), np.int64)),
     "tensor `filters`: R=5 exceeds `max_r` (3)"),
    (lambda: (np.zeros((2, 5, 5), np.int64), np.zeros((1, 2, 3, 4), np.int64)),
     "tensor `filters`: S=4 exceeds `max_s` (3)"),
    (lambda: (np.full((1, 5, 5), 1 << 15, np.int64), np.zeros((1, 1, 3, 3), np.int64)),
     "tensor `ifmap`: value 32768 at index (0, 0, 0) does not fit signed 16-bit"),
])
def test_bad_input_is_named(make, message):
    ifmap, filters = make()
    with pytest.raises(TensorError, match=re.escape(message)):
        host.build_program(ARRAY, ifmap, filters, 0)


def test_tile_too_small_for_filter():
    cfg = ScnnConfig(max_tile_w=1, max_tile_h=6, max_s=3)
    with pytest.raises(TensorError, match="needs tiles of at least 2"):
        host.build_program(cfg, np.ones((1, 6, 6), np.int64), np.ones((1, 1, 3, 3), np.int64))


@pytest.mark.synth
@pytest.mark.slow
def test_synth_breakdown_names_the_parts(tmp_path, monkeypatch):
    """Synthesis smoke test: the PE's parts survive as modules of the area breakdown."""
    from sparsegen.gen.synth import synthesize
    monkeypatch.setenv("SPARSEGEN_CACHE_DIR", str(tmp_path))
    config = ScnnPEConfig(f=2, i=2, kc=1, max_tile_w=3, max_tile_h=3, bank_depth=4,
                          act_depth=5, data_width=8, acc_width=16)
    generated = generate(get_design("scnn-pe"), config)
    result = synthesize(generated.verilog, generated.top, "generic")
    parts = set(PE_PARTS)
    assert {name.split(".")[-1] for name in result.modules} >= parts
    for name in result.modules:
        if name.split(".")[-1] in parts:
            # Its own cells or its submodules' (the weight FIFO is stored in 32-bit parts).
            cells = sum(m["cells"] for n, m in result.modules.items()
                        if n == name or n.startswith(name + "."))
            assert cells > 0, name


#: The timing rule of #9: no registered design at its defaults may have a critical path longer
#: than this multiple of ``dense-array``'s at the same ``data_width`` / ``acc_width``.
TIMING_RULE = 1.25


@pytest.mark.synth
@pytest.mark.slow
def test_critical_paths_within_the_rule(capsys):
    """sky130hd critical paths of scnn-pe and scnn at their defaults against dense-array of the
    same widths (16/24), printed as a table; each within :data:`TIMING_RULE`. Uses the shared
    synthesis cache (a cold run synthesizes the three designs, about a minute)."""
    from sparsegen.gen.registry import make_config
    from sparsegen.gen.synth import synthesize
    rows = []
    for name, params in (("dense-array", {"data_width": 16, "acc_width": 24}),
                         ("scnn-pe", {}), ("scnn", {})):
        design = get_design(name)
        generated = generate(design, make_config(design, params))
        result = synthesize(generated.verilog, generated.top, "sky130hd", timing=True)
        rows.append((name, result.critical_path_ns, result.critical_path))
    base = rows[0][1]
    with capsys.disabled():
        print(f"\n{'design':12} {'critical path ns':>16} {'vs dense-array 16/24':>21}  ends")
        for name, ns, path in rows:
            print(f"{name:12} {ns:16.3f} {ns / base:20.2f}x  {path['start']} -> {path['end']}")
    for name, ns, _ in rows[1:]:
        assert ns <= TIMING_RULE * base, (name, ns, base)


VARIANTS = [
    (ScnnPEConfig(f=4, i=2, banks=16, kc=3, max_tile_w=6, max_tile_h=5, bank_depth=32),
     (3, 7, 5, 6, 2, 1), 0, 0.6, 0.7),
    (ScnnPEConfig(f=1, i=3, banks=8, kc=1, max_tile_w=5, max_tile_h=4, max_r=2, max_s=4,
                  bank_depth=8, act_depth=7), (2, 3, 4, 5, 2, 4), 0, 0.7, 0.9),
    (ScnnPEConfig(f=3, i=1, banks=8, kc=4, max_tile_w=5, max_tile_h=5, bank_depth=40,
                  act_depth=25, data_width=8, acc_width=20), (2, 5, 5, 5, 3, 3), 1, 0.5, 0.5),
    (ScnnConfig(pe_rows=1, pe_cols=3, f=2, i=4, banks=16, kc=2, max_tile_w=4, max_tile_h=7,
                bank_depth=16, act_depth=7), (2, 3, 7, 9, 3, 3), 1, 0.6, 0.6),
    (ScnnConfig(pe_rows=3, pe_cols=1, f=2, i=2, kc=3, max_tile_w=5, max_tile_h=3,
                bank_depth=32), (2, 4, 8, 5, 3, 2), 0, 0.8, 0.6),
]


@pytest.mark.slow
@pytest.mark.parametrize("config, shape, pad, ad, wd", VARIANTS,
                         ids=lambda v: repr(v) if isinstance(v, tuple) else None)
def test_config_variants_match_golden_and_model(config, shape, pad, ad, wd):
    """F != I, non-power-of-two F*I with explicit banks, narrow data, R != S, kc not dividing
    K, one-row and one-column grids, spatial passes and channel chunks."""
    ifmap, filters = conv_operands(sum(shape), *shape, ad, wd, width=config.data_width)
    program = host.build_program(config, ifmap, filters, pad)
    out, cycles, stalls = run_amaranth(config, program)
    expected = gs.conv_direct(ifmap, filters, pad, config.acc_width, config.data_width)
    assert (out == expected).all()
    assert (cycles, stalls) == host.model_cycles(program)


# One small representative of each shape class of VARIANTS (slow) in the default suite: F != I
# both ways, kc not dividing K, a one-row and a one-column grid (multi-pass runs on Verilator
# in tests/test_scnn_cocotb.py). Tiny tiles and banks keep each simulation to a few seconds.
SMALL_VARIANTS = [
    # F=2 > I=1, kc=3 for K=4, a 1 x 2 grid with the halo between its PEs, R != S
    (ScnnConfig(pe_rows=1, pe_cols=2, f=2, i=1, kc=3, max_tile_w=3, max_tile_h=3, max_r=2,
                max_s=2, bank_depth=14, act_depth=9), (2, 4, 3, 5, 2, 2), 0),
    # F=1 < I=2, a 2 x 1 grid (vertical halo only)
    (ScnnConfig(pe_rows=2, pe_cols=1, f=1, i=2, kc=1, max_tile_w=3, max_tile_h=3, max_r=2,
                max_s=2, bank_depth=4, act_depth=5), (2, 2, 5, 3, 2, 2), 0),
]


@pytest.mark.parametrize("config, shape, pad", SMALL_VARIANTS,
                         ids=["f2i1-kc3-1x2", "f1i2-2x1"])
def test_small_config_variants_match_golden_and_model(config, shape, pad):
    ifmap, filters = conv_operands(sum(shape), *shape, 0.7, 0.7, width=config.data_width)
    program = host.build_program(config, ifmap, filters, pad)
    assert config.f != config.i and 1 in (config.pe_rows, config.pe_cols)
    out, cycles, stalls = run_amaranth(config, program)
    expected = gs.conv_direct(ifmap, filters, pad, config.acc_width, config.data_width)
    assert (out == expected).all()
    assert (cycles, stalls) == host.model_cycles(program)


# -- output-channel column groups -----------------------------------------------------------

#: A 1 x 4 grid of small PEs: two column groups of two columns (the halo crosses between the
#: PEs of a group and is dropped between the groups), or four of one.
GROUPED = ScnnConfig(pe_rows=1, pe_cols=4, f=2, i=2, kc=2, max_tile_w=5, max_tile_h=6,
                     bank_depth=15, act_depth=24)

GROUP_CASES = [
    # config, (C, K, H, W, R, S), pad, density, groups, input stalls and back-pressure
    # K = 5: three kc-groups in two rounds, the second group's last round empty; odd plane.
    pytest.param(GROUPED, (2, 5, 5, 7, 3, 3), 1, 0.6, 2, False, marks=pytest.mark.slow),
    pytest.param(GROUPED, (2, 5, 5, 7, 3, 3), 1, 0.6, 2, True, marks=pytest.mark.slow),
    pytest.param(GROUPED, (3, 7, 4, 3, 2, 3), 0, 0.9, 4, False, marks=pytest.mark.slow),
    pytest.param(ARRAY, (2, 3, 6, 5, 3, 3), 1, 1.0, 2, False, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("config, shape, pad, density, groups, stalls", GROUP_CASES,
                         ids=lambda v: repr(v) if isinstance(v, tuple) else None)
def test_column_groups_match_golden_and_model(config, shape, pad, density, groups, stalls):
    """Output channels split over column groups: each group's PEs tile the whole plane and
    take their own WGT words from their columns' lanes. Bit exact (so the halo crossing from
    one group into the next is dropped, and the masks are the group's), and cycle exact to
    the model at full rate."""
    ifmap, filters = conv_operands(sum(shape) + groups, *shape, density, density)
    program = host.build_program(config, ifmap, filters, pad, groups=groups)
    assert program.groups == groups and program.plan.pe_cols == config.pe_cols // groups
    wgt = [cols for kind, cols, *_ in program.words if kind == Cmd.WGT]
    assert any(None in cols for cols in wgt)            # a group's lanes idle in a transfer
    out, cycles, stall_count = run_amaranth(config, program, stalls=stalls, seed=7)
    assert (out == gs.conv_direct(ifmap, filters, pad)).all()
    if not stalls:
        assert (cycles, stall_count) == host.model_cycles(program)


def test_column_groups_split_the_work():
    """The host's side of the groups: every kc-group goes to exactly one column group (the
    weights of a round's transfers are its kc-groups' blocks in order), ACT words are the
    same in every group's matching column, the model equals the reference crossbars, and the
    pair bound bounds the model."""
    ifmap, filters = conv_operands(3, 3, 7, 6, 6, 3, 3, 0.5, 0.5)
    program = host.build_program(GROUPED, ifmap, filters, 1, groups=2)
    assert (program.rounds, len(program.drains)) == (2, 2 * len(program.plan.passes))
    seen = {}

    def same(a, b):
        return repr(a) == repr(b)

    for (kind, cols, *_), key in zip(program.words, program.blocks):
        if kind == Cmd.ACT:
            assert same(cols[0], cols[2]) and same(cols[1], cols[3])
        if kind == Cmd.WGT:
            assert same(cols[0], cols[1]) and same(cols[2], cols[3])
            for j, sub in enumerate(key):
                assert (sub is None) == (cols[2 * j] is None)
                if sub is not None:
                    seen.setdefault(sub[1], set()).add(j)
    assert seen == {0: {0}, 1: {0}, 2: {1}, 3: {1}}
    cycles = host.model_cycles(program)
    assert cycles == host.model_cycles(program, ReferenceCrossbars)
    assert host.pair_bound(program)[0] <= cycles[0]


def test_plan_groups_takes_the_fastest():
    """``plan_groups`` models the candidates in the order of their pair bounds, skips those
    whose bound cannot beat the best so far, and returns the fewest cycles."""
    ifmap, filters = conv_operands(4, 4, 8, 5, 5, 3, 3, 0.4, 0.5)
    plan = host.plan_groups(GROUPED, ifmap, filters, 1)
    assert [row["groups"] for row in plan["tried"]] == [1, 2, 4]
    modelled = {row["groups"]: row["cycles"] for row in plan["tried"] if row["cycles"]}
    assert plan["cycles"] == min(modelled.values()) == modelled[plan["groups"]]
    assert (plan["cycles"], plan["stalls"]) == host.model_cycles(plan["program"])
    for row in plan["tried"]:
        cycles = host.model_cycles(host.build_program(GROUPED, ifmap, filters, 1,
                                                      groups=row["groups"]))[0]
        assert row["bound"] <= cycles and cycles >= plan["cycles"]


@pytest.mark.parametrize("groups", [3, 8, 0, "2"])
def test_bad_groups_are_named(groups):
    ifmap, filters = conv_operands(1, 2, 2, 5, 5, 3, 3)
    with pytest.raises(TensorError, match=re.escape(
            f"`groups` must be a power of two that divides `pe_cols` (4), not {groups!r}")):
        host.build_program(GROUPED, ifmap, filters, 1, groups=groups)


def test_cli_groups(tmp_path, capsys):
    """``sim scnn --groups``: the grouping runs and is reported (a number or ``auto``); bad
    values, other designs and chains get one error line and exit status 2."""
    import json

    from sparsegen.gen.cli import main
    ifmap, filters = conv_operands(2, 2, 5, 6, 6, 3, 3)
    np.save(tmp_path / "I.npy", ifmap.astype(np.int16))
    np.save(tmp_path / "F.npy", filters.astype(np.int16))
    base = ["sim", "scnn", "--ifmap", str(tmp_path / "I.npy"), "--filters",
            str(tmp_path / "F.npy"), "--pad", "1", "--model", "--json"]
    for groups in ("2", "auto"):
        assert main(base + ["--groups", groups]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["groups"] in ((2,) if groups == "2" else (1, 2))
    for args, error in ((["--groups", "3"], "`groups` must be a power of two that divides "
                                            "`pe_cols` (2), not 3"),
                        (["--groups", "two"], "--groups takes a number of groups or `auto`, "
                                              "not 'two'"),
                        (["--groups", "2", "--filters2", str(tmp_path / "F.npy")],
                         "--groups runs one layer: chained layers run ungrouped")):
        assert main(base + args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"sparsegen: error: {error}" in err, err
    assert main(["sim", "dense-array", "--a", str(tmp_path / "F.npy"), "--w",
                 str(tmp_path / "F.npy"), "--groups", "2"]) == 2
    assert "--groups splits the PE columns" in capsys.readouterr().err


# -- the fast (vectorized) crossbar model against the reference ------------------------------


def _random_program(rng):
    """A random layer on a random small grid, crossbar-heavy: F and I of 2-4 on 8 banks, 1-3
    PEs a side, densities from 0.05 to 1, weight FIFOs of 1-4 entries."""
    f, i = (int(x) for x in rng.integers(2, 5, 2))
    cfg = ScnnConfig(pe_rows=int(rng.integers(1, 4)), pe_cols=int(rng.integers(1, 4)), f=f,
                     i=i, banks=8, bank_depth=160,
                     kc=int(rng.integers(1, 5)), max_tile_w=4, max_tile_h=4, max_r=3, max_s=3,
                     act_depth=int(rng.integers(16, 40)), wt_depth=int(rng.integers(1, 5)))
    r, s = (int(x) for x in rng.integers(1, 4, 2))
    c, k = (int(x) for x in rng.integers(1, 7, 2))
    h, w = (int(x) for x in rng.integers(max(r, s), 11, 2))
    ad, wd = rng.uniform(0.05, 1.0, 2)
    ifmap = random_operands(rng, (c, h, w), 16, ad)
    filters = random_operands(rng, (k, c, r, s), 16, wd)
    return host.build_program(cfg, ifmap, filters, int(rng.integers(0, 2)))


def test_fast_crossbar_model_equals_the_reference():
    """``model_cycles`` with the vectorized crossbars (the default) gives the cycles and
    conflict stalls of the one-model-per-PE reference on random programs, stall-heavy ones
    included; the lazily computed pair work matches the reference pair lists."""
    rng = np.random.default_rng(12)
    stalled = 0
    for _ in range(14):
        program = _random_program(rng)
        fast = host.model_cycles(program)
        assert fast == host.model_cycles(program, ReferenceCrossbars)
        stalled += fast[1] > 0
        key = next(k for k in program.blocks if k is not None)
        counts, twice, nrows = program.work.counts(key)
        lists = program.work[key]
        assert [len(pe) for pe in lists] == nrows.tolist()
        for p, pe in enumerate(lists):
            for j, banks in enumerate(pe):
                assert np.bincount(banks, minlength=program.config.banks).tolist() == \
                    counts[p, j].tolist()
                assert twice[p, j] == (len(set(banks)) < len(banks))
    assert stalled >= 5


def test_fast_crossbar_model_takes_plain_pair_lists():
    """A program whose ``work`` is a plain dict of the reference's pair lists runs the fast
    model to the same result."""
    program = _random_program(np.random.default_rng(3))
    expected = host.model_cycles(program)
    program.work = {key: program.work[key] for key in program.blocks if key is not None}
    assert host.model_cycles(program) == expected


def test_act_transfers_fill_the_pe_columns_in_parallel():
    """The parallel IARAM fill (``Scnn``'s ACT transfers, one word per PE column): in every
    run of ACT transfers (one activation load), each column's lane carries its words without
    a gap from the first transfer, the load takes exactly as many transfers as the busiest
    column has words, and every PE gets, in order, all rows of each channel of the load
    (``last`` on a channel's final word), as many as its IARAM rows (``work.acts``, made
    separately from the activation buffer's layout)."""
    rng = np.random.default_rng(12)
    saving = 0
    for _ in range(12):
        program = _random_program(rng)
        cfg = program.config
        loads, run = [], []
        for kind, cols, *_ in program.words + [(None, None)]:
            if kind == Cmd.ACT:
                assert len(cols) == cfg.pe_cols
                run.append(cols)
            elif run:
                loads.append(run)
                run = []
        assert loads
        pidx = 0
        for load in loads:
            per_column = [sum(cols[x] is not None for cols in load) for x in range(cfg.pe_cols)]
            assert len(load) == max(per_column)
            for x, count in enumerate(per_column):
                assert all(cols[x] is not None for cols in load[:count])
            got = {}
            for cols in load:
                for x, lane in enumerate(cols):
                    if lane is not None:
                        y, last, values, runs = lane
                        assert 0 <= y < cfg.pe_rows and len(values) == len(runs) <= cfg.i
                        got.setdefault((y, x), []).append(last)
            assert len(got) == cfg.pes
            lasts = {pe: sum(v) for pe, v in got.items()}
            assert len(set(lasts.values())) == 1            # the same channels for every PE
            saving += sum(map(len, got.values())) - len(load)
            if len(loads) == len(program.plan.passes):      # one load per pass: all channels
                rows = program.work.acts[pidx]
                for (y, x), words in got.items():
                    assert len(words) == sum(len(v) for v, _ in rows[y * cfg.pe_cols + x])
                pidx += 1
    assert saving > 0


# -- accumulator banks read only when asked --------------------------------------------------


def test_bank_reads_only_when_asked(monkeypatch):
    """A _BankSet of two banks (4 rows of 16 bits) under a hand-written sequence on bank 0:
    requests (read-modify-writes, back to back on one row: forwarded), idle cycles with other
    rows on the address, a read without a write (a walk's send), a clear; bank 1 idle. Each
    memory's read enable is high exactly in the cycles with a request or a read (8 of bank 0's
    13 cycles, none of bank 1's: the banks read every cycle before), and every read gives the
    row's value by hand, including back-to-back hits after a read register left idle."""
    mems = []

    def recording(platform, words, width):
        mem, sub = sync_memory(platform, words, width)
        mems.append(mem)
        return mem, sub

    monkeypatch.setattr(hw_scnn, "sync_memory", recording)
    dut = hw_scnn._BankSet(2, 4, 16, 12)
    # Bank 0 per cycle: (en, clear, read, row, add) and the rdata expected in the NEXT cycle
    # (None: not read). Row 1: 0 +5 = 5, +7 = 12 (forwarded), idle, +1 = 13, +2 = 15
    # (forwarded), read 15 (forwarded from the write of its cycle), idle, clear to 0, +4 = 4
    # (the clear forwarded), idle, read 4.
    seq = [(1, 0, 0, 1, 5, 0), (1, 0, 0, 1, 7, 5), (0, 0, 0, 2, 0, None), (0, 0, 0, 3, 9, None),
           (1, 0, 0, 1, 1, 12), (1, 0, 0, 1, 2, 13), (0, 0, 1, 1, 0, 15), (0, 0, 0, 0, 0, None),
           (1, 1, 0, 1, 0, 15), (1, 0, 0, 1, 4, 0), (0, 0, 0, 2, 0, None), (0, 0, 1, 1, 0, 4),
           (0, 0, 0, 3, 0, None)]
    reads = [[0, 0]]
    seen = []

    async def bench(ctx):
        expect = None
        for en, clear, read, row, add, nxt in seq:
            ctx.set(dut.en, en)
            ctx.set(dut.clear, clear)
            ctx.set(dut.read, read)
            ctx.set(dut.row.as_value(), row)            # bank 1 stays on row 0
            ctx.set(dut.add.as_value(), add)
            if expect is not None:
                seen.append((ctx.get(dut.rdata[0]), expect))
            reads[0] = [n + ctx.get(m.r_en) for n, m in zip(reads[0], mems)]
            expect = nxt
            await ctx.tick()

    simulate(dut, bench)
    assert len(mems) == 2
    assert seen == [(e, e) for _, e in seen] and len(seen) == 8
    assert reads[0] == [8, 0]
