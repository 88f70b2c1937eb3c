"""``sparsegen bench timing``: every design's critical path at its defaults against the dense
baseline, the 1.25x rule of the timing work.

Each registered design is synthesized at its default config for the tech (Yosys, mapped towards
the tech's default clock) and timed by OpenSTA; its reference is ``dense-array`` at its default
size with the same ``data_width`` and ``acc_width``, synthesized the same way. The rule: no
registered design's critical path exceeds :data:`RULE` times its reference's. A design whose
worst path runs from an input port to an output port has no register on it (a combinational
block, timed by whatever registers its user puts around it): shown, marked ``comb``, and not
held to the rule.

What the ratios measure: each design is mapped towards the tech's default clock (10 ns on
sky130hd) by ``constraints/synth.ys``, whose ``synth -noabc`` keeps Yosys' Brent-Kung carry
trees for ABC's timing-driven mapping. Before (2026-12-02) an area-only ABC pass inside
``synth`` turned accumulators with an enable or a clear into ripple carries, so the same
32-bit accumulate measured 4.80-10.50 ns by its phrasing and the ratios compared phrasings:
dense-array 8/32 10.705 ns then, 5.430 ns now, dense-pe 10.177 -> 4.951 ns.
"""

from rich.table import Table

from .generate import generate
from .registry import DESIGNS, make_config
from .synth import SynthError, synthesize, timing_missing

__all__ = ["RULE", "SOURCES", "run", "print_table"]

#: A design's critical path may be at most this many times its dense reference's.
RULE = 1.25

SOURCES = {"area_um2": "measured", "critical_path_ns": "measured", "fmax_mhz": "measured",
           "reference_ns": "measured", "ratio": "formula", "verdict": "formula"}


def _timed(name: str, values: dict, tech: str):
    design = DESIGNS[name]
    generated = generate(design, make_config(design, values))
    return synthesize(generated.verilog, generated.top, tech, timing=True)


def run(tech: str = "sky130hd", progress=None) -> dict:
    """Synthesize and time every design at its defaults and its dense reference.

    Raises
    ------
    SynthError
        OpenSTA is absent (the table is nothing but timing) or Yosys failed.
    """
    missing = timing_missing(tech)
    if missing:
        raise SynthError(f"bench timing: {missing}")
    references: dict = {}
    rows = []
    for name, design in DESIGNS.items():
        config = make_config(design, {})
        widths = {k: getattr(config, k) for k in ("data_width", "acc_width")
                  if hasattr(config, k)}
        if progress:
            progress(f"bench timing: {name}")
        result = _timed(name, {}, tech)
        key = tuple(sorted(widths.items()))
        if key not in references:
            references[key] = _timed("dense-array", widths, tech)
        reference = references[key]
        path = result.critical_path or {}
        combinational = (path.get("start_kind"), path.get("end_kind")) == ("input", "output")
        ratio = result.critical_path_ns / reference.critical_path_ns
        rows.append({
            "design": name, "config": config.as_dict(),
            "reference": " ".join(["dense-array", *(f"{k}={v}" for k, v in widths.items())]),
            "area_um2": result.area_um2, "critical_path_ns": result.critical_path_ns,
            "fmax_mhz": result.fmax_mhz, "reference_ns": reference.critical_path_ns,
            "ratio": round(ratio, 3), "start": path.get("start"), "end": path.get("end"),
            "verdict": "comb" if combinational else ("ok" if ratio <= RULE else "SLOW"),
        })
    return {"tech": tech, "rule": RULE, "rows": rows, "sources": SOURCES,
            "yosys_version": result.yosys_version, "sta_version": result.sta_version,
            "clock_ns": result.clock_ns, "liberty": result.liberty}


def print_table(console, report):
    table = Table(title=f"critical paths at the defaults, {report['tech']} (rule: at most "
                        f"{report['rule']}x dense-array of the same widths)",
                  title_justify="left", show_edge=False)
    for column, source in (("design", None), ("area um2", "area_um2"),
                           ("path ns", "critical_path_ns"), ("fmax MHz", "fmax_mhz"),
                           ("reference", None), ("ref ns", "reference_ns"),
                           ("ratio", "ratio"), ("rule", "verdict"), ("from -> to", None)):
        label = f"{column}\n[dim]{report['sources'][source]}[/dim]" if source else column
        left = column in ("design", "reference", "from -> to")
        table.add_column(label, justify="left" if left else "right")
    for r in report["rows"]:
        verdict = {"ok": "[green]ok[/green]", "SLOW": "[red]SLOW[/red]",
                   "comb": "[dim]comb[/dim]"}[r["verdict"]]
        table.add_row(r["design"], f"{r['area_um2']:,.0f}", f"{r['critical_path_ns']:.2f}",
                      f"{r['fmax_mhz']:,.1f}", r["reference"], f"{r['reference_ns']:.2f}",
                      f"{r['ratio']:.2f}x", verdict, f"{r['start']} -> {r['end']}")
    console.print(table)
    console.print(f"[dim]{report['yosys_version']}; {report['sta_version']}; liberty "
                  f"{', '.join(report['liberty'] or [])}; clock target {report['clock_ns']:g} "
                  f"ns; logic delay only (no wires, ideal clock)[/dim]", soft_wrap=True)
