"""highlight: config validation, Verilog ports, the host mapping, the Amaranth simulator vs golden
and the cycle model against the simulated RTL."""

import re

import numpy as np
import pytest

from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design
from sparsegen.hw.highlight import HighLight, HighLightConfig, highlight_input_layout
from sparsegen.sim import cycles
from sparsegen.sim.golden.hss import HSSViolation, check_weights
from sparsegen.sim.highlight import (
    highlight_cycles,
    ideal_speedup,
    prepare_highlight,
    random_hss_weights,
)
from sparsegen.sim.stimulus import random_operands

from helpers import play_job

# -- config validation ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(pattern="3:6,2:4"), ValueError,
     "`pattern` 3:6,2:4 is not in `patterns` (4:4,4:5,4:6,4:7 x 4:4,2:4,1:4)"),
    (dict(pattern="4:6"), ValueError,
     "`pattern` must be 'dense' or look like 'G1:H1,G0:H0' (e.g. 4:6,2:4), not '4:6'"),
    (dict(patterns="2:2,1:2 x 2:2,1:2", pattern="4:4,4:4"), ValueError,
     "`pattern` 4:4,4:4 is not in `patterns` (2:2,1:2 x 2:2,1:2)"),
    (dict(patterns="4:4 x 3:4"), ValueError,
     "`patterns` must include a dense pattern (H:H at both ranks), not '4:4 x 3:4'"),
    (dict(rows=0), ValueError, "`rows` must be between 1 and 64, not 0"),
    (dict(cols=65), ValueError, "`cols` must be between 1 and 64, not 65"),
    (dict(pattern=3), TypeError, "`pattern` must be a str, not int 3"),
])
def test_config_rejects(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        HighLightConfig(**kwargs)


def test_active_pattern_and_multipliers():
    cfg = HighLightConfig()
    assert cfg.active == (4, 4, 4, 4) and cfg.pattern_index == 0
    assert cfg.multipliers == 4 * 4 * 4
    cfg = HighLightConfig(pattern=" 4:6 , 2:4 ")
    assert cfg.active == (4, 6, 2, 4) and cfg.pattern_index == 7
    assert HighLightConfig(patterns="2:3,3:3 x 1:2,2:2").active == (3, 3, 2, 2)


def test_ideal_speedup_is_one_over_density_for_the_example_set():
    cfg = HighLightConfig()
    for g1, h1, g0, h0 in cfg.pattern_set:
        one = HighLightConfig(pattern=f"{g1}:{h1},{g0}:{h0}")
        assert ideal_speedup(one) == pytest.approx(h1 * h0 / (g1 * g0))
    # Where G0 does not fill the lanes evenly in time, the lost slots count.
    odd = HighLightConfig(patterns="4:4,3:5 x 4:4,2:4", pattern="3:5,2:4")
    assert ideal_speedup(odd) == pytest.approx(20 / (4 * 2))


# -- conversion ----------------------------------------------------------------------------


def test_verilog_ports():
    design = get_design("highlight")
    config = HighLightConfig(rows=2, cols=3)
    generated = generate(design, config)
    header = re.search(r"^module (\w+)\((.*?)\);", generated.verilog, re.M)
    assert header.group(1) == "highlight"
    assert {p.strip() for p in header.group(2).split(",")} == {
        "clk", "rst", "pattern", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready",
        "o__payload"}
    meta = generated.metadata
    assert meta["layouts"]["i__payload"]["width"] == highlight_input_layout(config).size
    assert meta["layouts"]["o__payload"]["width"] == 3 * 32
    assert meta["ports"]["pattern"]["width"] == 4


def test_pattern_does_not_change_the_hardware():
    """The pattern is a run-time input: every pattern of a set shares one Verilog build."""
    design = get_design("highlight")
    texts = {generate(design, HighLightConfig(rows=2, cols=2, pattern=p)).verilog
             for p in ("dense", "4:7,1:4", "4:5,2:4")}
    assert len(texts) == 1


# -- host mapping --------------------------------------------------------------------------


def test_weights_breaking_the_pattern_are_named():
    cfg = HighLightConfig(pattern="4:6,2:4")
    w = np.zeros((30, 3), dtype=np.int64)
    w[24:27, 2] = 1
    with pytest.raises(HSSViolation, match=r"^weight `W` breaks HSS 4:6,2:4: group k=24\.\.29 "
                       r"of column n=2 has 3 non-zeros in rank-0 block k=24\.\.27 "
                       r"\(at most 2 allowed\)$"):
        prepare_highlight(cfg, np.ones((2, 30), dtype=np.int64), w)


def test_columns_of_a_tile_must_share_rank_1():
    """Plain per-column HSS is not enough: the cols columns of a tile share one block list per
    group (the rank-1 selection is made once per row); the error names the group and tile."""
    cfg = HighLightConfig(rows=2, cols=2, pattern="4:6,2:4")
    w = np.zeros((24, 3), dtype=np.int64)
    w[[0, 4], 0] = 1
    w[[8, 12, 16], 1] = 1                       # tile n=0..1: 5 blocks; column 2 alone: fine
    check_weights(w, "4:6,2:4")
    with pytest.raises(HSSViolation, match=r"^weight `W` breaks HSS 4:6,2:4 with rank 1 shared "
                       r"by 2 columns: group k=0\.\.23 of columns n=0\.\.1 has 5 rank-0 blocks "
                       r"non-empty in some column \(at most 4 allowed\)$"):
        prepare_highlight(cfg, np.ones((2, 24), dtype=np.int64), w)
    job = prepare_highlight(cfg, np.ones((2, 24), dtype=np.int64), w, prune=True)
    check_weights(job.w, "4:6,2:4", share=2)
    assert np.count_nonzero(job.w[:, :2]) == 4 and job.w[:, 2].tolist() == w[:, 2].tolist()
    # Each step's block list is the tile's: one per transfer, G1max long, not one per column.
    assert job.payload["shared"]["block"].shape == (job.steps, cfg.g1_max)
    assert job.payload["w"]["value"].shape == (job.steps, 2, cfg.g1_max * cfg.g0_max)


def test_cells_keep_only_rank_0_lane_muxes():
    """A cell's row token is the step's S = L / min G0 selected blocks (not the whole group)
    and its only operand muxes are L H0:1 lane muxes; the H1max:1 block muxes are R x S at the
    edge. Default set: S = 4 blocks of 4 x 8 bits, L = 4 lanes of (8-bit value, 2-bit offset).
    """
    cfg = HighLightConfig(rows=4, cols=4)
    cell = HighLight.cell_actions(cfg)
    assert cell["token_bits"] == 4 * 4 * 8 + 4 * (8 + 2)
    assert cell["selections"] == [(4, 8)] * 4
    assert cell["edge_selections"] == [(7, 32)] * 16
    two = HighLight.cell_actions(HighLightConfig(patterns="4:4,4:7 x 4:4,2:4"))
    assert two["token_bits"] == 2 * 4 * 8 + 4 * (8 + 2) and len(two["edge_selections"]) == 8


def test_prune_makes_dense_weights_fit():
    cfg = HighLightConfig(pattern="4:7,1:4")
    rng = np.random.default_rng(3)
    a = random_operands(rng, (3, 40), 8)
    w = random_operands(rng, (40, 5), 8, density=1.0)
    with pytest.raises(HSSViolation):
        prepare_highlight(cfg, a, w)
    job = prepare_highlight(cfg, a, w, prune=True)
    check_weights(job.w, "4:7,1:4", share=cfg.cols)
    assert np.count_nonzero(job.w) <= 5 * 2 * 4          # 2 groups of 28, 4 values each
    assert job.inputs == {"pattern": cfg.pattern_index}


def test_cycle_model_counts_groups_and_steps():
    cfg = HighLightConfig(rows=2, cols=2, pattern="4:6,2:4")     # 24 K per group, T = 2
    groups = -(-37 // 24)
    assert highlight_cycles(cfg, 3, 37, 3) == 1 + cycles.core_cycles(
        [groups * 2] * 4, HighLight.cell_kind(cfg), 2, 2)


# -- the array in the Amaranth simulator --------------------------------------------------------

SIM_CONFIGS = [
    HighLightConfig(rows=2, cols=3, pattern="dense"),
    HighLightConfig(rows=2, cols=3, pattern="4:6,2:4"),
    HighLightConfig(rows=3, cols=2, pattern="4:7,1:4", data_width=4, acc_width=10),
    HighLightConfig(rows=2, cols=2, patterns="4:4,3:5 x 4:4,2:4,1:4", pattern="3:5,2:4"),
]


@pytest.mark.parametrize("stalls", [False, True], ids=["nostall", "stalls"])
@pytest.mark.parametrize("config", SIM_CONFIGS, ids=lambda c: f"{c.rows}x{c.cols}-{c.pattern}")
def test_array_matches_golden(config, stalls):
    rng = np.random.default_rng(config.rows * 10 + config.cols)
    m, k, n = 5, 37, 4
    a = random_operands(rng, (m, k), config.data_width, density=0.7)
    w = random_hss_weights(rng, k, n, config.active, config.data_width, share=config.cols)
    job = prepare_highlight(config, a, w)
    dut = HighLight(config)
    output, cycles = play_job("highlight", dut, config, job, stalls=stalls,
                              inputs=[(dut.pattern, job.inputs["pattern"])])
    assert (output == job.expected).all()
    if not stalls:
        assert cycles == highlight_cycles(config, m, k, n)


def test_bench_hss_share_reports_what_sharing_costs():
    """`sparsegen bench hss-share`: sharing rank 1 keeps no more magnitude than per-column HSS
    (it is a further constraint), the more columns the less, and costs nothing where rank 1 is
    dense; every row's pruned tensors met their format (the bench checks them)."""
    from sparsegen.gen.bench_highlight import share_cost
    report = share_cost()
    assert len(report["rows"]) == 2 * 12
    for row in report["rows"]:
        for kind in ("l1", "l2"):
            one, four, eight = (row[f"{kind}_share{s}"] for s in (1, 4, 8))
            assert 0 < eight <= four <= one <= 1
            if row["pattern"].startswith("4:4,"):
                assert one == four == eight
            else:
                assert four < one
    dense = next(r for r in report["rows"] if r["pattern"] == "4:4,4:4")
    assert dense["l1_share1"] == dense["l2_share8"] == 1.0
