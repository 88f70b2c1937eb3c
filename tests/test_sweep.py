"""`sparsegen sweep`: grids of configs (areas and model cycles) and studies of several designs
over workloads (local pool and Dask alike, cached, surviving a failing point), as CSV and
JSON."""

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from sparsegen.gen import sweep
from sparsegen.gen.cli import main
from sparsegen.gen.registry import get_design, make_config
from sparsegen.gen.synth import SynthError
from sparsegen.sim.cycles import s2ta_cycles

# Points generating Verilog in threads at once: amaranth's metadata validation (jschon ->
# rfc3986) silences a deprecation of its own with warnings.catch_warnings, which is not
# thread-safe, so another thread can see it raised under pytest's error filter. A third-party
# deprecation, not ours.
pytestmark = [pytest.mark.synth, pytest.mark.filterwarnings(
    "ignore:Please use rfc3986.validators.Validator:DeprecationWarning")]


def sparsegen(*args):
    """``sparsegen ARGS`` in this process (no interpreter start-up per call)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def test_area_sweep_writes_one_row_per_point(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('design = "dbb-pe"\n[params]\nblock_size = 4\nnnz = [1, 2, 4]\n')
    status, out, err = sparsegen("sweep", str(spec), "-o", str(tmp_path / "out"), "-j", "2",
                                 "--json")
    assert status == 0, err
    report = json.loads(out)
    with open(tmp_path / "out" / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["nnz"]) for r in rows] == [1, 2, 4]        # grid order, whatever finished first
    assert [r["nnz"] for r in report["rows"]] == [1, 2, 4]
    assert [r["multipliers"] for r in report["rows"]] == [1, 2, 4]
    transistors = [r["transistors"] for r in report["rows"]]
    assert transistors == sorted(transistors) and transistors[0] < transistors[-1]
    assert all(r["area_um2"] is None for r in report["rows"])      # generic: no liberty
    assert "cycles" not in report["rows"][0]
    assert json.loads((tmp_path / "out" / "sweep.json").read_text()) == report


def test_workload_sweep_reports_the_cycle_model(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('design = "s2ta"\n[params]\nvariant = "aw"\nrows = 2\ncols = 2\n'
                    'tpe_rows = 1\ntpe_k = 1\ntpe_cols = 1\n'
                    'block_size = 4\nnnz_max = 4\nnnz_a = [1, 3]\n'
                    '[workload]\nm = 13\nk = 37\nn = 11\n')
    status, out, err = sparsegen("sweep", str(spec), "-o", str(tmp_path / "out"), "--json")
    assert status == 0, err
    rows = json.loads(out)["rows"]
    design = get_design("s2ta")
    for row, nnz_a in zip(rows, [1, 3], strict=True):
        config = make_config(design, dict(variant="aw", rows=2, cols=2, tpe_rows=1, tpe_k=1,
                                          tpe_cols=1, block_size=4, nnz_max=4, nnz_a=nnz_a))
        assert row["cycles"] == s2ta_cycles(config, 13, 37, 11)
        assert row["multipliers"] == 4
    assert rows[0]["cycles"] < rows[1]["cycles"]


@pytest.mark.parametrize("text, message", [
    ('design = "dbb-pe"\n[params]\nnnzz = [1, 2]\n', "unknown parameter `nnzz`"),
    ('design = "dbb-pe"\n[params]\nblock_size = 8\nnnz = [4, 9]\n',
     "sweep point nnz=9: dbb-pe: `nnz` must be between 1 and `block_size` (8), not 9"),
    ('design = "dbb-pe"\n[workload]\nm = 1\nk = 1\nn = 1\n', "has no closed-form cycle model"),
    ('design = "dbb-pe"\nspeed = 3\n', "unknown key `speed`"),
    ('design = "dbb-pe"\ntech = "tsmc3"\n', "unknown tech `tsmc3`"),
    ('design = "s2ta"\n[workload]\nm = 0\nk = 1\nn = 1\n', "positive integers m, k and n"),
    ('design = "dbb-pe"\n[params]\nnnz = []\n', "`nnz` has an empty list"),
])
def test_bad_specs_are_one_line_and_write_nothing(tmp_path, text, message):
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    status, out, err = sparsegen("sweep", str(spec), "-o", str(tmp_path / "out"))
    assert status == 2
    assert err.startswith("sparsegen: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out").exists()


# -- studies: several designs over workloads ---------------------------------------------------

STUDY = '''tech = "sky130hd"
seed = 3
workloads = ["test.tiny_gemm"]
weight_density = [1.0, 0.4]
act_density = [0.5]
[[designs]]
label = "dense 2x2"
design = "dense-array"
params = { rows = 2, cols = 2 }
[[designs]]
label = "sod 2x2"
design = "sod"
params = { rows = 2, cols = 2 }
'''


def _in_process(capsys, *args):
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_study_local_and_dask_agree_and_rerun_from_cache(tmp_path, capsys):
    """A study on the local pool (-j 2) and on a Dask LocalCluster gives identical rows; a
    rerun takes every point from the cache; each row says where its figures come from."""
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY)
    reports = {}
    for executor in ("local", "dask"):
        status, out, err = _in_process(capsys, "sweep", str(spec), "-o",
                                       str(tmp_path / executor), "-j", "2", "--executor",
                                       executor, "--no-cache", "--json")
        assert status == 0, err
        reports[executor] = json.loads(out)
    local, dask = reports["local"], reports["dask"]
    assert local["points"] == 4 and local["failed"] == 0 and local["cached"] == 0
    assert local["rows"] == dask["rows"]
    for row in local["rows"]:
        assert row["cycles_source"] == "model" and row["area_source"] == "synthesis"
        assert row["cycles"] > 0 and row["energy_pj"] > 0 and row["area_um2"] > 0
    dense, sod = local["rows"][0], local["rows"][2]
    assert (dense["label"], sod["label"]) == ("dense 2x2", "sod 2x2")
    assert sod["macs_total"] == dense["macs_total"] == 9 * 20 * 7
    status, out, err = _in_process(capsys, "sweep", str(spec), "-o", str(tmp_path / "again"),
                                   "--json")
    assert status == 0, err
    again = json.loads(out)
    assert again["cached"] == 4 and again["rows"] == local["rows"]


def test_a_failing_point_is_recorded_and_the_rest_go_on(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY)
    real = sweep.synthesize

    def broken(verilog, top, tech, **kwargs):
        if top == "sod":
            raise SynthError("deliberately broken for the test")
        return real(verilog, top, tech, **kwargs)

    monkeypatch.setattr(sweep, "synthesize", broken)
    status, out, err = _in_process(capsys, "sweep", str(spec), "-o", str(tmp_path / "out"),
                                   "--no-cache", "--json")
    assert status == 1
    assert err.count("\n") == 1 and "2 of 4 sweep points failed" in err
    rows = json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"]
    assert [("error" in r) for r in rows] == [False, False, True, True]
    assert rows[2]["error"] == "SynthError: deliberately broken for the test"


@pytest.mark.parametrize("change, message", [
    (('"test.tiny_gemm"]', '"resnet51.conv1"]'), "unknown workload `resnet51.conv1`"),
    (("[1.0, 0.4]", "[1.0, 1.5]"), "`weight_density` 1.5 is outside [0, 1]"),
    (("act_density = [0.5]", "act_density = [-0.1]"), "`act_density` -0.1 is outside [0, 1]"),
    (('label = "sod 2x2"\ndesign = "sod"\nparams = { rows = 2, cols = 2 }',
      'label = "scnn"\ndesign = "scnn"'),
     "`scnn` (scnn) cannot run workload `test.tiny_gemm`: scnn runs convolutions only"),
    (('label = "sod 2x2"\ndesign = "sod"\nparams = { rows = 2, cols = 2 }',
      'design = "dbb-pe"'), "is a building block"),
    (("rows = 2, cols = 2 }\n[[designs]]", "rows = 2, cols = 99 }\n[[designs]]"),
     "sweep point dense 2x2: dense-array: `cols` must be between 1 and 64, not 99"),
])
def test_bad_studies_are_one_line_before_anything_runs(tmp_path, change, message):
    spec = tmp_path / "spec.toml"
    spec.write_text(STUDY.replace(*change, 1))
    status, out, err = sparsegen("sweep", str(spec), "-o", str(tmp_path / "out"))
    assert status == 2
    assert err.startswith("sparsegen: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_the_shipped_iso_area_spec_loads():
    spec = sweep.load_spec(Path(__file__).resolve().parent.parent / "constraints" / "sweeps"
                           / "iso_area.toml")
    assert spec.kind == "study"
    assert {p["design"] for p in spec.points} == {"dense-array", "sod", "s2ta", "highlight",
                                                  "scnn"}
