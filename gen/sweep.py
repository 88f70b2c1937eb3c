"""Design-space sweeps: grids of configs and studies of several designs over workloads.

Two kinds of spec (TOML). A **grid** names one design; a list is an axis::

    design = "s2ta"
    tech = "sky130hd"                 # optional, default "generic" (no liberty needed)
    [params]                          # a list is an axis of the grid, a scalar is fixed
    variant = ["w", "aw"]
    rows = [4, 8]
    [workload]                        # optional: cycles of an M x K x N GEMM from the
    m = 64                            # design's closed-form cycle model
    k = 512
    n = 64

A **study** (``constraints/sweeps/iso_area.toml``) names several designs and runs each over
shipped workloads (``constraints/workloads.toml``) and densities::

    tech = "sky130hd"
    seed = 1
    workloads = ["resnet50.conv3_3x3", "bert.ffn1"]
    weight_density = [1.0, 0.5]
    act_density = [1.0, 0.5]
    [[designs]]
    label = "dense 10x10"
    design = "dense-array"
    params = { rows = 10, cols = 10 }
    [[designs]]
    label = "scnn 1x1"
    design = "scnn"
    params = { pe_rows = 1, pe_cols = 1 }
    workloads = ["resnet50.conv3_3x3"]        # optional: this design's own workload list

Every point of a study is one design x workload x weight density x activation density: area,
fmax and cells from synthesis (Yosys + OpenSTA, cached), and the layer's cycles, energy and
EDP from the design's RTL-validated models on the workload's seeded tensors
(:mod:`sparsegen.sim.workloads`), each row saying where its figures come from
(``cycles_source``: ``model``). Everything a spec names is checked before anything runs
(unknown design, parameter or workload, a density outside [0, 1], a design that cannot run a
workload): one :class:`UsageError` line.

Execution: points run ``-j`` at a time on a local thread pool or on Dask (``executor="dask"``:
a ``LocalCluster`` of ``jobs`` worker processes, or the scheduler at ``scheduler``). A point
that fails is recorded with its error and the others go on. Each finished point is cached under
``<cache root>/sweep/`` by the point (design, config, workload, densities, seed, tech) and the
tool versions (sparsegen's sources, Yosys, OpenSTA, numpy), so a repeated sweep takes seconds;
failed points are not cached. The output folder receives ``sweep.csv`` and ``sweep.json``,
written together at the end.
"""

import concurrent.futures
import csv
import dataclasses
import functools
import hashlib
import io
import itertools
import json
import time
from pathlib import Path

import numpy as np

from ..sim import workloads as wl
from . import __version__
from .errors import UsageError
from .generate import generate, write_outputs
from .registry import DESIGNS, Design, get_design, make_config, read_toml
from .synth import TECHS, cache_root, sta_version, synthesize, yosys_version

__all__ = ["SweepSpec", "load_spec", "points", "run_sweep", "write_results", "evaluate_point",
           "EXECUTORS"]

EXECUTORS = ("local", "dask")

_GRID_KEYS = {"design", "tech", "params", "workload"}
_STUDY_KEYS = {"tech", "seed", "workloads", "weight_density", "act_density", "designs",
               "title"}
_SOURCES = Path(__file__).resolve().parent.parent


def _closed_form(design: Design):
    """The design's closed-form GEMM cycle model ``f(config, m, k, n)``, or ``None``."""
    return design.host.cycles if design.host is not None else None


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed spec: ``kind`` ``grid`` or ``study``, the tech, and its points (plain dicts,
    each evaluated by :func:`evaluate_point`, in output order)."""

    kind: str
    tech: str
    title: str
    points: tuple
    axes: tuple = ()                 # grid: the parameters that vary (table columns)
    summary: dict = dataclasses.field(default_factory=dict)


def _bad(path, message) -> UsageError:
    return UsageError(f"sweep spec {path}: {message}")


def _tech(path, table) -> str:
    tech = table.get("tech", "generic")
    if tech not in TECHS:
        raise _bad(path, f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    return tech


def _config(design: Design, raw: dict, where: str):
    known = {p.name for p in design.params}
    for key in raw:
        if key not in known:
            raise UsageError(f"{design.name}: unknown parameter `{key}` "
                             f"(parameters: {', '.join(sorted(known))})")
    try:
        return make_config(design, raw)
    except UsageError as exc:
        raise UsageError(f"sweep point {where}: {exc}") from None


def _load_grid(path, table) -> SweepSpec:
    unknown = set(table) - _GRID_KEYS
    if unknown:
        raise _bad(path, f"unknown key `{sorted(unknown)[0]}` (keys: design, tech, params, "
                         f"workload; a study has: {', '.join(sorted(_STUDY_KEYS))})")
    if not isinstance(table.get("design"), str):
        raise _bad(path, "`design` must name a design")
    design = get_design(table["design"])
    tech = _tech(path, table)
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise _bad(path, "`params` must be a table")
    fixed, axes = {}, {}
    for name, value in params.items():
        if isinstance(value, list):
            if not value:
                raise _bad(path, f"parameter `{name}` has an empty list")
            axes[name] = value
        else:
            fixed[name] = value
    workload = table.get("workload")
    if workload is not None and not isinstance(workload, dict):
        raise UsageError(f"sweep spec {path}: `workload` must be a table [workload] with m, k "
                         f"and n, not {type(workload).__name__} {workload!r}")
    if workload is not None:
        if _closed_form(design) is None:
            with_model = [d.name for d in DESIGNS.values() if _closed_form(d) is not None]
            raise _bad(path, f"`{design.name}` has no closed-form cycle model (designs with "
                             f"one: {', '.join(with_model)}); drop [workload] for an "
                             f"area-only sweep")
        if set(workload) != {"m", "k", "n"} or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1
                for v in workload.values()):
            raise _bad(path, f"[workload] needs positive integers m, k and n, not {workload}")
    pts = []
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values))
        where = ", ".join(f"{k}={v}" for k, v in point.items()) or "the fixed parameters"
        config = _config(design, {**fixed, **point}, where)
        pts.append({"kind": "grid", "design": design.name, "params": config.as_dict(),
                    "tech": tech, "gemm": workload})
    title = f"{design.name} sweep, {tech}" + (
        f", GEMM {workload['m']}x{workload['k']}x{workload['n']}" if workload else "")
    return SweepSpec("grid", tech, title, tuple(pts), tuple(axes),
                     {"design": design.name, "fixed": fixed, "axes": axes,
                      "workload": workload})


def _densities(path, table, key) -> list:
    values = table.get(key, [1.0])
    values = values if isinstance(values, list) else [values]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise _bad(path, f"`{key}` {v!r} is outside [0, 1]")
    if not values:
        raise _bad(path, f"`{key}` is an empty list")
    return [float(v) for v in values]


def _load_study(path, table) -> SweepSpec:
    unknown = set(table) - _STUDY_KEYS
    if unknown:
        raise _bad(path, f"unknown key `{sorted(unknown)[0]}` (a study has: "
                         f"{', '.join(sorted(_STUDY_KEYS))})")
    tech = _tech(path, table)
    seed = table.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _bad(path, f"`seed` must be a non-negative integer, not {seed!r}")
    shipped = wl.load_workloads()
    names = table.get("workloads")
    if not isinstance(names, list) or not names:
        raise _bad(path, "`workloads` must list workload names (constraints/workloads.toml)")
    for name in names:
        if name not in shipped:
            raise _bad(path, f"unknown workload `{name}` (workloads: {', '.join(shipped)})")
    wds = _densities(path, table, "weight_density")
    ads = _densities(path, table, "act_density")
    entries = table["designs"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _bad(path, "`designs` must be an array of tables ([[designs]])")
    pts = []
    for n, entry in enumerate(entries):
        extra = set(entry) - {"design", "label", "params", "workloads"}
        if extra:
            raise _bad(path, f"[[designs]] #{n + 1}: unknown key `{sorted(extra)[0]}` "
                             f"(keys: design, label, params, workloads)")
        if not isinstance(entry.get("design"), str):
            raise _bad(path, f"[[designs]] #{n + 1}: `design` must name a design")
        design = get_design(entry["design"])
        label = str(entry.get("label", design.name))
        config = _config(design, entry.get("params", {}), f"{label}")
        mine = entry.get("workloads", names)
        if not isinstance(mine, list) or not mine:
            raise _bad(path, f"`{label}`: `workloads` must list workload names")
        for name in mine:
            if name not in shipped:
                raise _bad(path, f"unknown workload `{name}` (workloads: "
                                 f"{', '.join(shipped)})")
        for name in mine:
            reason = wl.cannot_run(design.host, shipped[name])
            if reason:
                raise _bad(path, f"`{label}` ({design.name}) cannot run workload `{name}`: "
                                 f"{design.name} {reason}")
        for name, wd, ad in itertools.product(mine, wds, ads):
            pts.append({"kind": "study", "design": design.name, "label": label,
                        "params": config.as_dict(), "tech": tech, "seed": seed,
                        "workload": shipped[name].as_json(), "weight_density": wd,
                        "act_density": ad})
    title = str(table.get("title", f"study, {tech}"))
    return SweepSpec("study", tech, title, tuple(pts),
                     summary={"seed": seed, "workloads": names, "weight_density": wds,
                              "act_density": ads,
                              "designs": [{"label": str(e.get("label", e["design"])),
                                           "design": e["design"],
                                           "params": e.get("params", {})} for e in entries]})


def load_spec(path: Path) -> SweepSpec:
    """Read and check a spec, every point of it; every problem is one :class:`UsageError`."""
    table = read_toml(path, "sweep spec")
    if "designs" in table:
        return _load_study(path, table)
    return _load_grid(path, table)


def points(spec: SweepSpec) -> list:
    """The spec's points (validated when the spec was loaded)."""
    return list(spec.points)


# -- one point ---------------------------------------------------------------------------------


def _params_text(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _grid_row(point: dict, design: Design, config, result) -> dict:
    row = {**config.as_dict(), "multipliers": getattr(config, "multipliers", None),
           "area_um2": result.area_um2, "cells": result.cells,
           "transistors": result.transistors}
    w = point["gemm"]
    if w is not None:
        cycles = _closed_form(design)(config, w["m"], w["k"], w["n"])
        row["cycles"] = cycles
        row["cycles_source"] = "model"
        row["dense_macs_per_cycle"] = round(w["m"] * w["k"] * w["n"] / cycles, 3)
    return row


def _study_row(point: dict, design: Design, config, result) -> dict:
    load = point["workload"]
    workload = wl.Workload(load["name"], load["kind"], load["source"],
                           {k: v for k, v in load.items()
                            if k not in ("name", "kind", "source")})
    ops = wl.tensors(workload, point["weight_density"], point["act_density"], point["seed"],
                     data_width=config.data_width)
    fitted = wl.fit(design.host, config, workload, ops, point["act_density"],
                    point["weight_density"])
    run = design.host.model(design, fitted.config, *fitted.args, tech=point["tech"],
                            **fitted.options).as_json()
    m, k, n = workload.gemm_shape
    fmax = result.fmax_mhz
    time_us = run["cycles"] / fmax if fmax else None
    # Logic (liberty cells) plus the memories synthesis kept as SRAM macros (priced by
    # gen/sram.py): the silicon the design takes.
    area = (result.area_um2 + (result.sram_area_um2 or 0.0)
            if result.area_um2 is not None else None)
    area_mm2 = area / 1e6 if area else None
    gops = 2 * m * k * n / (time_us * 1e3) if time_us else None
    return {
        "label": point["label"], "design": design.name, "params": _params_text(point["params"]),
        "run_setting": _params_text({k: v for k, v in fitted.config.as_dict().items()
                                     if v != point["params"].get(k)}),
        "workload": workload.name, "kind": workload.kind, "m": m, "k": k, "n": n,
        "weight_density": point["weight_density"], "act_density": point["act_density"],
        "weight_density_run": fitted.weight_density, "act_density_run": fitted.act_density,
        "multipliers": run["multipliers"], "area_um2": area,
        "logic_area_um2": result.area_um2, "sram_area_um2": result.sram_area_um2,
        "area_source": "synthesis", "fmax_mhz": fmax, "fmax_source": "sta",
        "cycles": run["cycles"], "cycles_source": run["source"],
        "macs_total": run["macs_total"], "macs_nonzero": run["macs_nonzero"],
        "utilization": run["utilization"], "time_us": round(time_us, 6) if time_us else None,
        "gops": round(gops, 3) if gops else None,
        "gops_per_mm2": round(gops / area_mm2, 3) if gops and area_mm2 else None,
        "energy_pj": run["energy_pj"], "edp": run["edp"],
        "energy_source": "model" if run["energy_pj"] is not None else None,
        "energy_note": run.get("energy_note"),
    }


def evaluate_point(point: dict) -> dict:
    """One point's row: synthesis, and for a workload the models' cycles and energy.

    Never raises for a point's own failure: the row then holds ``error`` (the exception's
    type and first line) and the point's identity."""
    design = get_design(point["design"])
    try:
        config = make_config(design, point["params"])
        generated = generate(design, config)
        result = synthesize(generated.verilog, generated.top, point["tech"])
        if point["kind"] == "grid":
            return _grid_row(point, design, config, result)
        return _study_row(point, design, config, result)
    except Exception as exc:                # a failing point is recorded, the sweep goes on
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        row = ({**point["params"]} if point["kind"] == "grid" else {
            "label": point["label"], "design": point["design"],
            "params": _params_text(point["params"]), "workload": point["workload"]["name"],
            "weight_density": point["weight_density"], "act_density": point["act_density"]})
        row["error"] = f"{type(exc).__name__}: {message}"
        return row


# -- cache -------------------------------------------------------------------------------------


@functools.cache
def tool_versions() -> dict:
    """What a cached point depends on besides the point: sparsegen's sources that compute a
    row (hw, sim, gen but its command line, benches and report; constraints), Yosys, OpenSTA
    and numpy."""
    digest = hashlib.sha256()
    for pattern in ("hw/*.py", "sim/**/*.py", "gen/*.py", "constraints/*.toml",
                    "constraints/*.ys", "constraints/*.tcl", "constraints/energy/*"):
        for path in sorted(_SOURCES.glob(pattern)):
            if path.parent.name == "gen" and path.stem.startswith(("cli", "bench", "report")):
                continue
            digest.update(str(path.relative_to(_SOURCES)).encode())
            digest.update(path.read_bytes())
    return {"sparsegen": __version__, "sources_sha256": digest.hexdigest()[:16],
            "yosys": yosys_version(), "opensta": sta_version(), "numpy": np.__version__}


def _cache_path(point: dict) -> Path:
    key = json.dumps({"point": point, "versions": tool_versions()}, sort_keys=True)
    return cache_root() / "sweep" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _cached(point: dict) -> dict | None:
    try:
        return json.loads(_cache_path(point).read_text())
    except (OSError, ValueError):
        return None


def _store(point: dict, row: dict) -> None:
    if "error" in row:
        return
    path = _cache_path(point)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row))
    tmp.replace(path)


# -- running -----------------------------------------------------------------------------------


def _run_local(todo, jobs, done):
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(evaluate_point, p): i for i, p in todo}
        for future in concurrent.futures.as_completed(futures):
            done(futures[future], future.result())


def _run_dask(todo, jobs, done, scheduler):
    # Dask is imported here, not at the top: it is needed only for --executor dask, and its
    # import costs about a second that every other sparsegen command would pay.
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=":0")     # any free port
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        futures = client.map(evaluate_point, [p for _, p in todo], pure=False)
        index = {f.key: i for f, (i, _) in zip(futures, todo)}
        for future in as_completed(futures):
            done(index[future.key], future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(spec: SweepSpec, jobs: int = 1, progress=None, executor: str = "local",
              scheduler: str | None = None, use_cache: bool = True) -> dict:
    """Evaluate every point (cache first), ``jobs`` at a time on ``executor``; returns the
    report, rows in the spec's order. ``progress(done, total)`` is called as points finish."""
    start = time.perf_counter()
    pts = list(spec.points)
    rows: list = [None] * len(pts)
    todo = []
    for i, point in enumerate(pts):
        hit = _cached(point) if use_cache else None
        if hit is None:
            todo.append((i, point))
        else:
            rows[i] = hit
    finished = [len(pts) - len(todo)]
    if progress:
        progress(finished[0], len(pts))

    def done(i, row):
        rows[i] = row
        _store(pts[i], row)
        finished[0] += 1
        if progress:
            progress(finished[0], len(pts))

    if todo:
        if executor == "dask":
            _run_dask(todo, jobs, done, scheduler)
        else:
            _run_local(todo, jobs, done)
    failed = sum("error" in r for r in rows)
    return {"kind": spec.kind, "title": spec.title, "tech": spec.tech, **spec.summary,
            "versions": tool_versions(), "executor": executor, "points": len(pts),
            "cached": len(pts) - len(todo), "failed": failed,
            "wall_seconds": round(time.perf_counter() - start, 2), "rows": rows}


def write_results(out_dir: Path, report: dict) -> tuple[Path, ...]:
    """Write ``sweep.csv`` and ``sweep.json`` into ``out_dir``, both or neither."""
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in report["rows"] for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report["rows"])
    return write_outputs(out_dir, {"sweep.csv": buffer.getvalue(),
                                   "sweep.json": json.dumps(report, indent=2) + "\n"})
