"""``sparsegen report DIR``: figures, a self-contained HTML page and the headline table of a
study's ``sweep.json`` (``sparsegen sweep`` on a study spec, e.g.
``constraints/sweeps/iso_area.toml``).

Figures (matplotlib, PNG and SVG):

* ``area_cycles``: area (synthesis) against the suite's cycles (sum over the workloads, cycle
  models), one panel per density pair, with the Pareto front (no other design is both
  smaller and faster);
* ``throughput_density``: dense-equivalent GOPS per mm^2 at each design's own fmax (geometric
  mean over the workloads) against the weight density, one panel per activation density;
* ``energy_edp``: energy and EDP per design and workload at the densest and the sparsest
  density pair (log scale).

The headline table compares, for every workload and density pair, the fastest design, the
lowest-energy one and the lowest-EDP one, each with its gain over the baseline (the first
design of the spec, ``dense-array`` in the shipped study). Every figure says its source:
areas synthesis, fmax static timing (OpenSTA), cycles and energy the RTL-validated models.
"""

import base64
import html
import io
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

from rich.table import Table

from .errors import UsageError
from .generate import write_outputs

__all__ = ["load_report", "headline", "print_headline", "render_report", "pareto"]

FIGURES = ("area_cycles", "throughput_density", "energy_edp")



def _legend_right(fig, ax) -> None:
    """The figure's legend at its right edge, with the plots laid out in the room left of it,
    however long the design labels are (the legend is measured, not guessed)."""
    handles, names = ax.get_legend_handles_labels()
    legend = fig.legend(handles, names, loc="center right", fontsize=9)
    fig.canvas.draw()
    width = legend.get_window_extent().width / fig.dpi + 0.15
    fig.tight_layout(rect=(0, 0, 1 - width / fig.get_figwidth(), 1))

def load_report(folder: Path) -> dict:
    """The study report in ``folder/sweep.json``; anything else is a one-line UsageError."""
    path = Path(folder) / "sweep.json"
    try:
        report = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if report.get("kind") != "study":
        raise UsageError(f"{path} is not a study's sweep (run `sparsegen sweep` on a spec "
                         f"with [[designs]], e.g. constraints/sweeps/iso_area.toml)")
    return report


def _ok(report) -> list:
    return [r for r in report["rows"] if "error" not in r]


def _labels(report) -> list:
    return list(dict.fromkeys(r["label"] for r in report["rows"]))


def _pairs(report) -> list:
    return list(dict.fromkeys((r["weight_density"], r["act_density"]) for r in report["rows"]))


def _geomean(values) -> float | None:
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The (x, y, name) points no other point beats in both x and y (smaller is better),
    sorted by x."""
    front = []
    for x, y, name in sorted(points):
        if not front or y < front[-1][1]:
            front.append((x, y, name))
    return front


def headline(report) -> list[dict]:
    """Per workload and density pair: the fastest, lowest-energy and lowest-EDP design and
    each one's gain over the baseline (the spec's first design) on the same point."""
    base = _labels(report)[0]
    groups = defaultdict(dict)
    for r in _ok(report):
        groups[(r["workload"], r["weight_density"], r["act_density"])][r["label"]] = r
    out = []
    for (workload, wd, ad), by in groups.items():
        line = {"workload": workload, "weight_density": wd, "act_density": ad,
                "baseline": base}
        for metric in ("time_us", "energy_pj", "edp"):
            have = {k: v[metric] for k, v in by.items() if v.get(metric)}
            if not have:
                line[metric] = None
                continue
            best = min(have, key=have.get)
            ref = have.get(base)
            line[metric] = {"best": best, "value": have[best],
                            "gain": round(ref / have[best], 3) if ref else None}
        out.append(line)
    return out


def _fmt_best(cell) -> str:
    if not cell:
        return "-"
    gain = "" if cell["gain"] is None else f" ({cell['gain']:.2f}x)"
    return f"{cell['best']}{gain}"


def print_headline(console, report) -> None:
    """The headline table (and the per-design summary) in the terminal."""
    table = Table(title=f"{report['title']}: best design per workload and weight (w) / "
                        f"activation (a) density, gain over {_labels(report)[0]} (cycles and "
                        f"energy: RTL-validated models; fmax: OpenSTA; area: Yosys)",
                  title_justify="left", show_edge=False)
    for col in ("workload", "w", "a", "fastest", "lowest energy", "lowest EDP"):
        table.add_column(col, justify="left" if col == "workload" else "right",
                         no_wrap=col == "workload")
    for line in headline(report):
        table.add_row(line["workload"], f"{line['weight_density']:g}",
                      f"{line['act_density']:g}", _fmt_best(line["time_us"]),
                      _fmt_best(line["energy_pj"]), _fmt_best(line["edp"]))
    console.print(table)
    summary = Table(title="per design (geometric mean over the points it ran)",
                    title_justify="left", show_edge=False)
    for col in ("design", "area mm^2", "fmax MHz", "GOPS/mm^2", "speedup vs base",
                "energy vs base", "failed"):
        summary.add_column(col, justify="left" if col == "design" else "right",
                           no_wrap=col == "design")
    for row in design_summary(report):
        summary.add_row(row["label"], _num(row["area_mm2"], 3), _num(row["fmax_mhz"], 1),
                        _num(row["gops_per_mm2"], 2), _num(row["speedup"], 2, "x"),
                        _num(row["energy_ratio"], 2, "x"), str(row["failed"]))
    console.print(summary)


def _num(value, digits, suffix="") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def design_summary(report) -> list[dict]:
    """Per design: area, fmax, geometric-mean GOPS/mm^2, and its geometric-mean time and
    energy against the baseline on the points both ran (speedup = base time / time; energy
    ratio = energy / base energy)."""
    base = _labels(report)[0]
    rows = _ok(report)
    by_key = {(r["label"], r["workload"], r["weight_density"], r["act_density"]): r
              for r in rows}
    out = []
    for label in _labels(report):
        mine = [r for r in rows if r["label"] == label]
        speed, energy = [], []
        for r in mine:
            b = by_key.get((base, r["workload"], r["weight_density"], r["act_density"]))
            if b and r["time_us"] and b["time_us"]:
                speed.append(b["time_us"] / r["time_us"])
            if b and r["energy_pj"] and b["energy_pj"]:
                energy.append(r["energy_pj"] / b["energy_pj"])
        out.append({
            "label": label,
            "area_mm2": mine[0]["area_um2"] / 1e6 if mine and mine[0]["area_um2"] else None,
            "fmax_mhz": mine[0]["fmax_mhz"] if mine else None,
            "gops_per_mm2": _geomean(r["gops_per_mm2"] for r in mine),
            "speedup": _geomean(speed), "energy_ratio": _geomean(energy),
            "failed": sum(1 for r in report["rows"] if r["label"] == label and "error" in r),
        })
    return out


# -- figures -----------------------------------------------------------------------------------


def _figures(report) -> dict[str, object]:
    # matplotlib is imported here: only `report` needs it, and its import (about a second)
    # would otherwise be paid by every sparsegen command.
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = _ok(report)
    labels = _labels(report)
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    markers = dict(zip(labels, "osD^vP*Xh<>"))
    pairs = _pairs(report)
    figs = {}

    # 1. area vs the suite's cycles: a panel per density pair (rows: activation densities,
    # columns: weight densities), Pareto front
    wds = sorted({wd for wd, _ in pairs}, reverse=True)
    ads = sorted({ad for _, ad in pairs}, reverse=True)
    fig, axes = plt.subplots(len(ads), len(wds), figsize=(4.0 * len(wds) + 1.8,
                                                          3.6 * len(ads)), squeeze=False)
    for (r_i, ad), (c_i, wd) in itertools.product(enumerate(ads), enumerate(wds)):
        ax = axes[r_i][c_i]
        pts = []
        for label in labels:
            mine = [r for r in rows if r["label"] == label and r["weight_density"] == wd
                    and r["act_density"] == ad]
            if not mine or len(mine) < len(report["workloads"]):
                continue                # a design that missed a workload has no suite total
            x = mine[0]["area_um2"] / 1e6
            y = sum(r["cycles"] for r in mine) / 1e6
            pts.append((x, y, label))
            ax.scatter(x, y, color=colors[label], marker=markers[label], s=60, label=label,
                       zorder=3)
        front = pareto(pts)
        if front:
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="0.5",
                    linestyle="--", zorder=2, label="Pareto front")
            ax.scatter([p[0] for p in front], [p[1] for p in front], s=160, facecolors="none",
                       edgecolors="0.3", zorder=4, label="on the front")
        ax.set_title(f"weights {wd:g}, activations {ad:g} dense", fontsize=10)
        ax.set_xlabel("area (mm$^2$, sky130hd synthesis)")
        ax.set_ylabel("cycles, sum over workloads\n(millions, cycle model)")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Area vs cycles (lower left is better)", fontsize=11)
    _legend_right(fig, axes[0][0])
    figs["area_cycles"] = fig

    # 2. throughput per area vs weight density, one panel per activation density
    fig, axes = plt.subplots(1, len(ads), figsize=(4.2 * len(ads) + 1.5, 4.2), squeeze=False,
                             sharey=True)
    for ax, ad in zip(axes[0], ads):
        for label in labels:
            xs, ys = [], []
            for wd in wds:
                g = _geomean(r["gops_per_mm2"] for r in rows if r["label"] == label
                             and r["weight_density"] == wd and r["act_density"] == ad)
                if g:
                    xs.append(wd)
                    ys.append(g)
            if xs:
                ax.plot(xs, ys, marker=markers[label], color=colors[label], label=label)
        ax.set_title(f"activation density {ad:g}", fontsize=10)
        ax.set_xlabel("weight density")
        ax.set_ylabel("dense-equivalent GOPS/mm$^2$ at own fmax\n(geomean over workloads)")
        ax.set_yscale("log")
        ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("Throughput per area vs density (higher is better)", fontsize=11)
    _legend_right(fig, axes[0][0])
    figs["throughput_density"] = fig

    # 3. energy and EDP per design and workload, densest and sparsest pair
    shown = [pairs[0]] if len(pairs) == 1 else [max(pairs), min(pairs)]
    workloads = report["workloads"]
    fig, axes = plt.subplots(2, len(shown), figsize=(max(6.0, 1.1 * len(workloads)) *
                                                     len(shown) + 1.5, 7.5), squeeze=False)
    width = 0.8 / max(1, len(labels))
    for col, (wd, ad) in enumerate(shown):
        for row_i, (metric, unit, scale) in enumerate([("energy_pj", "energy (uJ)", 1e-6),
                                                       ("edp", "EDP (uJ x us)", 1e-6)]):
            ax = axes[row_i][col]
            for j, label in enumerate(labels):
                vals = []
                for w in workloads:
                    r = next((r for r in rows if r["label"] == label and r["workload"] == w
                              and r["weight_density"] == wd and r["act_density"] == ad), None)
                    vals.append(r[metric] * scale if r and r.get(metric) else 0)
                xs = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(workloads))]
                ax.bar(xs, vals, width, color=colors[label], label=label)
            ax.set_yscale("log")
            ax.set_ylabel(f"{unit}, model")
            ax.set_xticks(range(len(workloads)))
            ax.set_xticklabels([w.replace(".", "\n", 1) for w in workloads], fontsize=8)
            ax.set_title(f"{unit.split(' ')[0]}: weights {wd:g}, activations {ad:g}",
                         fontsize=10)
            ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.suptitle("Energy and EDP per layer (lower is better; designs without an energy "
                 "model have no bar)", fontsize=11)
    _legend_right(fig, axes[0][0])
    figs["energy_edp"] = fig
    return figs


def _render(fig, fmt: str) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=110, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v || a.cells[col].textContent;
      var y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _html_table(columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for v in row:
            sort = "" if not isinstance(v, (int, float)) else f' data-v="{v}"'
            text = "-" if v is None else f"{v:,.4g}" if isinstance(v, float) else str(v)
            cells.append(f"<td{sort}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


_ROW_COLUMNS = ["label", "workload", "weight_density", "act_density", "weight_density_run",
                "act_density_run", "run_setting", "area_um2", "fmax_mhz", "cycles",
                "cycles_source", "time_us", "gops_per_mm2", "energy_pj", "edp", "error"]


def _page(report, pngs: dict) -> str:
    lines = headline(report)
    head_rows = [[h["workload"], h["weight_density"], h["act_density"],
                  _fmt_best(h["time_us"]), _fmt_best(h["energy_pj"]), _fmt_best(h["edp"])]
                 for h in lines]
    summ = [[s["label"], s["area_mm2"], s["fmax_mhz"], s["gops_per_mm2"], s["speedup"],
             s["energy_ratio"], s["failed"]] for s in design_summary(report)]
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"><figcaption>{name}</figcaption></figure>'
        for name, data in pngs.items())
    base = html.escape(_labels(report)[0])
    versions = html.escape(", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report['title'])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1400px; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #eee; cursor: pointer; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(report['title'])}</h1>
<p>{report['points']} points on {html.escape(report['tech'])}, {report['failed']} failed.
Areas: Yosys synthesis; fmax: OpenSTA on the mapped netlist; cycles and energy: the designs'
RTL-validated models on seeded tensors (each row's <code>cycles_source</code>). Gains are over
<b>{base}</b> on the same workload and densities. Tools: {versions}.
Click a column header to sort.</p>
<h2>Headline</h2>
{_html_table(["workload", "weight density", "act density", "fastest", "lowest energy",
              "lowest EDP"], head_rows)}
<h2>Per design</h2>
{_html_table(["design", "area mm^2", "fmax MHz", "GOPS/mm^2 (geomean)",
              f"speedup vs {_labels(report)[0]}", f"energy vs {_labels(report)[0]}",
              "failed points"], summ)}
<h2>Figures</h2>
{images}
<h2>All points</h2>
{_html_table(_ROW_COLUMNS, [[r.get(c) for c in _ROW_COLUMNS] for r in report["rows"]])}
<script>{_SORT_JS}</script>
</body></html>
"""


def render_report(folder: Path, out: Path, console=None) -> tuple[Path, ...]:
    """Write the figures (PNG and SVG), ``report.html`` and ``headline.json`` into ``out``;
    print the headline table on ``console``."""
    report = load_report(folder)
    if not _ok(report):
        raise UsageError(f"{Path(folder) / 'sweep.json'}: every point failed; nothing to plot")
    figs = _figures(report)
    files, pngs = {}, {}
    for name, fig in figs.items():
        pngs[name] = files[f"{name}.png"] = _render(fig, "png")
        files[f"{name}.svg"] = _render(fig, "svg")
    files["report.html"] = _page(report, pngs)
    files["headline.json"] = json.dumps({"headline": headline(report),
                                         "designs": design_summary(report)}, indent=2) + "\n"
    if console is not None:
        print_headline(console, report)
    return write_outputs(out, files)
