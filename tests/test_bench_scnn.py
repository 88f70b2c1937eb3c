"""bench scnn: the 8x8 point's table on a tiny layer (default suite: the code paths, the
breakdown adding up, the cache), and the full bench (slow)."""

import io
import json

import pytest
from rich.console import Console

from sparsegen.gen import bench_scnn
from sparsegen.hw.scnn import Cmd, ScnnConfig
from sparsegen.sim import scnn as host
from sparsegen.sim import workloads as wl


def test_paper_layers_are_shipped_with_their_shapes():
    shipped = wl.load_workloads()
    for name in bench_scnn.PAPER_LAYERS:
        layer = shipped[name]
        assert layer.source and layer.dims["stride"] == 1 and layer.dims["R"] == 3, name
    # Hand-computed GEMM shapes (AlexNet conv3: 13x13 outputs, 3x3x256 -> 384).
    assert shipped["alexnet.conv3"].gemm_shape == (13 * 13, 3 * 3 * 256, 384)
    assert shipped["googlenet.inception4a_3x3"].gemm_shape == (14 * 14, 3 * 3 * 96, 208)


def test_bench_paper_table_on_a_tiny_layer(tmp_path, monkeypatch):
    """The 8x8 point's code paths without RTL: the breakdown adds up to the model's cycles,
    the speedup is dense / scnn, a second run reads the content-keyed cache, the table prints
    its labelled columns and the targets."""
    monkeypatch.setenv("SPARSEGEN_CACHE_DIR", str(tmp_path))
    points = ((1.0, 1.0), (0.35, 0.45))
    report = bench_scnn.run(layers=("test.tiny_conv",), points=points, rtl=False)
    rows = report["paper"]
    assert [(r["w"], r["a"]) for r in rows] == list(points)
    for r in rows:
        assert sum(r["breakdown"].values()) == r["cycles"]
        assert r["breakdown"]["conflicts"] >= 0 and r["breakdown"]["compute"] > 0
        assert r["speedup"] == r["dense_cycles"] / r["cycles"]
        if r["groups"] == 1:
            assert r["chained_speedup"] == r["dense_cycles"] / (
                r["cycles"] - r["breakdown"]["load"])
        else:                   # a grouped layer does not chain
            assert r["chained_speedup"] is None
        # The grouping that ran is the fastest of those modelled (plan_groups).
        modelled = [t["cycles"] for t in r["tried"] if t["cycles"] is not None]
        assert r["cycles"] == min(modelled) and r["grid"][1] * r["groups"] == 8
        # No layer beats its pair bound: the cycles are at least the pairs of a PE.
        assert r["speedup"] <= r["pair_bound"]
        assert r["energy_pj"] is None and not r["cached"]
    again = bench_scnn.run(layers=("test.tiny_conv",), points=points, rtl=False)
    assert all(r["cached"] for r in again["paper"])
    assert [r["cycles"] for r in again["paper"]] == [r["cycles"] for r in rows]
    out = io.StringIO()
    bench_scnn.print_table(Console(file=out, width=250), report)
    text = out.getvalue()
    assert "test.tiny_conv" in text and "confl model" in text and "pairs/s" in text
    assert "target full_speedup" in text and "target pruned_speedup" in text
    assert "its pair bound" in text
    json.dumps(report)


@pytest.mark.slow
def test_full_bench_scnn():
    """The whole bench (RTL 2x2 runs, syntheses, the 8x8 table on the paper layers): the
    2x2 runs agree with the model, the model-count energy estimate is within 10% of the
    RTL-counted energy, every paper point has its energy and per-area figures."""
    report = bench_scnn.run()
    for r in report["rows"]:
        assert r["cycles"] == r["model_cycles"]
        assert abs(r["model_energy_ratio"] - 1) < 0.10, r["density"]
    assert len(report["paper"]) == len(bench_scnn.PAPER_LAYERS) * len(bench_scnn.PAPER_POINTS)
    for r in report["paper"]:
        assert r["energy_pj"] > 0 and r["gops_mm2"] > 0 and r["dense_gops_mm2"] > 0


@pytest.mark.parametrize("groups", [1, 2])
def test_model_counts_match_the_pair_lists(groups):
    """The 8x8 energy's action counts (formula) against the reference pair lists of every WGT
    word: pairs, live products (= grants), weight pushes, ACT words (and OARAM rows);
    ungrouped and in two column groups."""
    layer = wl.load_workloads()["test.tiny_conv"]
    ops = wl.tensors(layer, 0.6, 0.5, 3, data_width=16)
    config = ScnnConfig(pe_rows=2, pe_cols=2, **bench_scnn.PE_PARAMS)
    program = host.build_program(config, ops.ifmap, ops.filters, 1, groups=groups)
    counts = bench_scnn._counts_of(program)
    work = [program.work[key] for key in program.blocks if key is not None]
    assert counts["pair"] == sum(len(pe) for entry in work for pe in entry)
    assert counts["pair_max"] == max(sum(len(entry[n]) for entry in work) for n in range(4))
    assert counts["mul"] == counts["grant"] == sum(
        len(pair) for entry in work for pe in entry for pair in pe) > 0
    kinds = [w[0] for w in program.words]
    # Every PE of a column takes the WGT word in its column's lane.
    assert counts["wgt_push"] == sum(2 * (lane is not None) for kind, cols, *_ in program.words
                                     if kind == Cmd.WGT for lane in cols)
    # ACT words: one per IARAM row of every PE (its channels' rows of i activations), in
    # transfers of up to one word per PE column.
    rows = sum(len(ch[0]) for pass_ in program.work.acts.values() for pe in pass_ for ch in pe)
    assert counts["act_words"] == rows
    assert counts["act_transfers"] == kinds.count(Cmd.ACT) < rows
    assert counts["act_write"] == rows + host.oaram_rows(program)
