"""`sparsegen sweep`: a grid of configs -> areas and model cycles, written as CSV and JSON."""

import csv
import json
import subprocess
import sys

import pytest

from sparsegen.gen.registry import get_design, make_config
from sparsegen.sim.cycles import s2ta_cycles

pytestmark = pytest.mark.synth


def sparsegen(*args):
    result = subprocess.run([sys.executable, "-m", "sparsegen.gen.cli", *args],
                            capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


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
                    'block_size = 4\nnnz_max = 4\nnnz_a = [1, 3]\n'
                    '[workload]\nm = 13\nk = 37\nn = 11\n')
    status, out, err = sparsegen("sweep", str(spec), "-o", str(tmp_path / "out"), "--json")
    assert status == 0, err
    rows = json.loads(out)["rows"]
    design = get_design("s2ta")
    for row, nnz_a in zip(rows, [1, 3], strict=True):
        config = make_config(design, dict(variant="aw", rows=2, cols=2, block_size=4,
                                          nnz_max=4, nnz_a=nnz_a))
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
