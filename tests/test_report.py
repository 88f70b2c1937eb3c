"""`sparsegen report DIR`: figures (PNG and SVG), a self-contained HTML page and the headline
table of a study's sweep.json."""

import contextlib
import io
import json

import pytest
from test_sweep import STUDY  # dense-array and sod 2x2 on a tiny GEMM, two densities

from sparsegen.gen.cli import main
from sparsegen.gen.report import FIGURES, headline, pareto


def run(*args):
    """``sparsegen ARGS`` in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def test_pareto_front():
    pts = [(1.0, 5.0, "a"), (2.0, 3.0, "b"), (2.5, 4.0, "c"), (3.0, 1.0, "d"), (0.5, 9.0, "e")]
    assert [p[2] for p in pareto(pts)] == ["e", "a", "b", "d"]


@pytest.mark.synth
def test_report_writes_figures_page_and_headline(tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY)
    status, _, err = run("sweep", str(spec), "-o", str(tmp_path / "sweep"), "--json")
    assert status == 0, err
    status, out, err = run("report", str(tmp_path / "sweep"), "-o", str(tmp_path / "rep"))
    assert status == 0, err
    for name in FIGURES:
        assert (tmp_path / "rep" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (tmp_path / "rep" / f"{name}.svg").read_bytes()[:2000]
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert 'class="sortable"' in page and "addEventListener('click'" in page
    assert "fastest" in out and "dense 2x2" in out
    # The headline picks the fastest design of each point, from the rows themselves.
    report = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    for line in headline(report):
        rows = [r for r in report["rows"] if r["workload"] == line["workload"]
                and r["weight_density"] == line["weight_density"]]
        best = min(rows, key=lambda r: r["time_us"])
        assert line["time_us"]["best"] == best["label"]
        base = next(r for r in rows if r["label"] == "dense 2x2")
        assert line["time_us"]["gain"] == round(base["time_us"] / best["time_us"], 3)
    saved = json.loads((tmp_path / "rep" / "headline.json").read_text())
    assert saved["headline"] == headline(report)


def test_report_of_a_folder_without_a_study_is_one_line(tmp_path):
    status, _, err = run("report", str(tmp_path))
    assert status == 2 and err.count("\n") == 1 and "cannot read" in err
    (tmp_path / "sweep.json").write_text(json.dumps({"kind": "grid", "rows": []}))
    status, _, err = run("report", str(tmp_path))
    assert status == 2 and "is not a study's sweep" in err
