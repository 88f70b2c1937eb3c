"""Design-space sweeps: a grid of configs -> area (Yosys) and cycles (closed-form models).

A sweep spec is a TOML file::

    design = "s2ta"
    tech = "sky130hd"                 # optional, default "generic" (no liberty needed)

    [params]                          # a list is an axis of the grid, a scalar is fixed
    variant = ["w", "aw"]
    rows = [4, 8]
    cols = 8
    nnz_a = [2, 4]

    [workload]                        # optional: cycles of an M x K x N GEMM from the
    m = 64                            # design's closed-form cycle model
    k = 512
    n = 64

Every point of the grid is validated before anything runs (a bad point is named with its
parameters); points are synthesized ``-j`` at a time (each synthesis is its own Yosys process,
and results are cached, so a repeated sweep takes seconds). The output folder receives
``sweep.csv`` (one row per point) and ``sweep.json`` (the spec, the tool versions and the
rows), written together at the end: an interrupted or failed sweep writes nothing.

Cycles come from the cycle models the tests check against the RTL cycle for cycle, not from
simulation, so a sweep over hundreds of points stays fast; ``sparsegen sim`` runs a chosen
point on the RTL.
"""

import concurrent.futures
import csv
import dataclasses
import io
import itertools
import json
from pathlib import Path

from .errors import UsageError
from .generate import generate, write_outputs
from .registry import DESIGNS, Design, get_design, make_config, read_toml
from .synth import TECHS, synthesize

__all__ = ["SweepSpec", "load_spec", "points", "run_sweep", "write_results"]


def _closed_form(design: Design):
    """The design's closed-form GEMM cycle model ``f(config, m, k, n)``, or ``None``."""
    return design.host.cycles if design.host is not None else None


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec (see the module docs)."""

    design: Design
    tech: str
    fixed: dict
    axes: dict                      # parameter -> list of values, in the spec's order
    workload: dict | None           # {"m", "k", "n"} or None


def load_spec(path: Path) -> SweepSpec:
    """Read and check a sweep spec; every problem is one :class:`UsageError` line."""
    table = read_toml(path, "sweep spec")
    unknown = set(table) - {"design", "tech", "params", "workload"}
    if unknown:
        raise UsageError(f"sweep spec {path}: unknown key `{sorted(unknown)[0]}` "
                         f"(keys: design, tech, params, workload)")
    if not isinstance(table.get("design"), str):
        raise UsageError(f"sweep spec {path}: `design` must name a design")
    design = get_design(table["design"])
    tech = table.get("tech", "generic")
    if tech not in TECHS:
        raise UsageError(f"sweep spec {path}: unknown tech `{tech}` "
                         f"(choose from {', '.join(TECHS)})")
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise UsageError(f"sweep spec {path}: `params` must be a table")
    fixed, axes = {}, {}
    for name, value in params.items():
        if isinstance(value, list):
            if not value:
                raise UsageError(f"sweep spec {path}: parameter `{name}` has an empty list")
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
            raise UsageError(f"sweep spec {path}: `{design.name}` has no closed-form cycle "
                             f"model (designs with one: {', '.join(with_model)}); drop "
                             f"[workload] for an area-only sweep")
        if set(workload) != {"m", "k", "n"} or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1
                for v in workload.values()):
            raise UsageError(f"sweep spec {path}: [workload] needs positive integers m, k "
                             f"and n, not {workload}")
    return SweepSpec(design, tech, fixed, axes, workload)


def points(spec: SweepSpec) -> list:
    """Every config of the grid, validated; a bad point is a :class:`UsageError` naming it."""
    configs = []
    names = list(spec.axes)
    for values in itertools.product(*spec.axes.values()):
        point = dict(zip(names, values))
        raw = {**spec.fixed, **point}
        known = {p.name for p in spec.design.params}
        for key in raw:
            if key not in known:
                raise UsageError(f"{spec.design.name}: unknown parameter `{key}` "
                                 f"(parameters: {', '.join(sorted(known))})")
        try:
            configs.append(make_config(spec.design, raw))
        except UsageError as exc:
            where = ", ".join(f"{k}={v}" for k, v in point.items()) or "the fixed parameters"
            raise UsageError(f"sweep point {where}: {exc}") from None
    return configs


def _evaluate(spec: SweepSpec, config) -> dict:
    generated = generate(spec.design, config)
    result = synthesize(generated.verilog, generated.top, spec.tech)
    row = {**config.as_dict(),
           "multipliers": getattr(config, "multipliers", None),
           "area_um2": result.area_um2, "cells": result.cells,
           "transistors": result.transistors}
    if spec.workload is not None:
        w = spec.workload
        cycles = _closed_form(spec.design)(config, w["m"], w["k"], w["n"])
        row["cycles"] = cycles
        row["dense_macs_per_cycle"] = round(w["m"] * w["k"] * w["n"] / cycles, 3)
    return row, result.yosys_version


def run_sweep(spec: SweepSpec, jobs: int = 1, progress=None) -> dict:
    """Evaluate every point, ``jobs`` at a time; returns the report (rows in grid order).

    ``progress(done, total)`` is called as points finish.
    """
    configs = points(spec)
    rows: list = [None] * len(configs)
    version = None
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_evaluate, spec, c): i for i, c in enumerate(configs)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            rows[futures[future]], version = future.result()
            if progress:
                progress(done, len(configs))
    return {"design": spec.design.name, "tech": spec.tech, "yosys_version": version,
            "fixed": spec.fixed, "axes": spec.axes, "workload": spec.workload, "rows": rows}


def write_results(out_dir: Path, report: dict) -> tuple[Path, ...]:
    """Write ``sweep.csv`` and ``sweep.json`` into ``out_dir``, both or neither."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(report["rows"][0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(report["rows"])
    return write_outputs(out_dir, {"sweep.csv": buffer.getvalue(),
                                   "sweep.json": json.dumps(report, indent=2) + "\n"})
