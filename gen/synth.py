"""Yosys synthesis (pyosys, in-process) for area, cells and a transistor estimate.

The pass sequences live in ``constraints/synth.ys`` (liberty techs) and
``constraints/synth_generic.ys``; the technologies and where their liberty files are found in
``constraints/techs.toml``. Results are cached as JSON, keyed by the sha256 of everything that
determines them (Verilog, top, tech, script, Yosys version, liberty names), so a sweep never
synthesizes the same design twice.
"""

import dataclasses
import fnmatch
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

__all__ = ["TECHS", "SynthError", "SynthResult", "synthesize", "yosys_version", "cache_root"]

_REPO = Path(__file__).resolve().parent.parent
_CONSTRAINTS = _REPO / "constraints"
TECHS = ("generic", "osu018", "sky130hd", "asap7")


class SynthError(RuntimeError):
    """Synthesis could not run: missing liberty, unknown tech, or a Yosys failure."""


@dataclasses.dataclass(frozen=True)
class SynthResult:
    """Area report of one synthesis run."""

    top: str
    tech: str
    area_um2: float | None
    cells: int
    transistors: int | None
    modules: dict
    yosys_version: str
    liberty: list[str] | None
    seconds: float
    cached: bool = False

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


def cache_root() -> Path:
    """``$SPARSEGEN_CACHE_DIR`` or ``<repo>/build/cache``."""
    return Path(os.environ.get("SPARSEGEN_CACHE_DIR", _REPO / "build" / "cache"))


def yosys_version() -> str:
    """The version line of the Yosys in use, e.g. ``Yosys 0.70 (git sha1 28ba3cb92)``."""
    from importlib.metadata import version
    return f"Yosys {version('pyosys')} (pyosys)"


def _techs() -> dict:
    with open(_CONSTRAINTS / "techs.toml", "rb") as f:
        return tomllib.load(f)


def _liberty_files(tech: str, spec: dict) -> list[Path]:
    """Locate (and gunzip once, into the cache) the tech's liberty files."""
    setting = spec["dir_setting"]
    base = Path(os.environ[setting]) if os.environ.get(setting) else \
        (_REPO / spec["default_dir"]).resolve()
    files = []
    for name in spec["liberty"]:
        path = base / name
        if not path.exists():
            raise SynthError(f"tech `{tech}` needs {Path(name).name}: set {setting} to a folder "
                             f"holding {Path(name).parent}/ (looked in {base})"
                             if Path(name).parent != Path(".") else
                             f"tech `{tech}` needs {name}: set {setting} to the folder holding "
                             f"it, or run `make setup` (looked in {base})")
        if path.suffix == ".gz":
            # ABC has been seen to fail on gzipped liberty: unpack once into the cache.
            unpacked = cache_root() / "liberty" / tech / path.stem
            if not unpacked.exists():
                unpacked.parent.mkdir(parents=True, exist_ok=True)
                tmp = unpacked.with_suffix(".tmp")
                with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(unpacked)
            path = unpacked
        files.append(path)
    return files


def _run_script(script: str, values: dict, work: Path, log: Path) -> None:
    """Run the filled-in script in a child Python with pyosys.

    A child process keeps Yosys' log off the console (it goes to ``log``) and contains its
    failures: Yosys exits the process on some errors, which must not end the caller.
    """
    lines = [" ".join(line.format(**values).split()) for line in script.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    script_file = work / "run.ys"
    script_file.write_text("\n".join(lines) + "\n")
    with open(log, "w") as out:
        result = subprocess.run([sys.executable, "-m", "sparsegen.gen.synth", str(script_file)],
                                stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if "ERROR" in ln]
        raise SynthError(errors[-1].strip() if errors else f"exit status {result.returncode}")


def _worker(script_file: str) -> None:
    """Child side of :func:`_run_script`: one pyosys design, the script's passes in order."""
    from pyosys import libyosys as ys
    design = ys.Design()
    for line in Path(script_file).read_text().splitlines():
        ys.run_pass(line, design)


def _parse_stat(stat: dict, top: str, tech_has_area: bool):
    modules = {}
    names = {name.lstrip("\\"): info for name, info in stat["modules"].items()}
    instances = {top: 1}
    # Walk the hierarchy from the top to count how often each module is instantiated.
    order = [top]
    for name in order:
        for cell, count in names[name].get("num_cells_by_type", {}).items():
            if cell in names:
                instances[cell] = instances.get(cell, 0) + count * instances[name]
                if cell not in order:
                    order.append(cell)
    for name in order:
        info = names[name]
        children = {c: n for c, n in info.get("num_cells_by_type", {}).items() if c in names}
        own_cells = info["num_cells"] - sum(children.values())
        area = info.get("area") if tech_has_area else None
        if area is not None and children:
            # `area` of a parent includes its submodules: report its own logic only.
            area -= sum(n * names[c]["area"] for c, n in children.items())
        modules[name] = {"instances": instances[name], "cells": own_cells,
                         "area_um2": None if area is None else round(area, 4)}
    cells = sum(m["cells"] * m["instances"] for m in modules.values())
    return modules, cells


def synthesize(verilog: str, top: str, tech: str = "generic", *, use_cache: bool = True,
               cache_dir: Path | None = None) -> SynthResult:
    """Synthesize ``verilog`` (top module ``top``) for ``tech``.

    Raises
    ------
    SynthError
        Unknown tech, a missing liberty (naming the setting that locates it), or a failed run.
    """
    techs = _techs()
    if tech not in techs:
        raise SynthError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    spec = techs[tech]
    generic = tech == "generic"
    liberty = [] if generic else _liberty_files(tech, spec)
    script = (_CONSTRAINTS / ("synth_generic.ys" if generic else "synth.ys")).read_text()
    cache = (cache_dir or cache_root()) / "synth"
    key = hashlib.sha256("\n".join([
        verilog, top, tech, script, yosys_version(), *(p.name for p in liberty),
        *spec.get("dont_use", []),
    ]).encode()).hexdigest()
    cached_file = cache / f"{key}.json"
    if use_cache and cached_file.exists():
        data = json.loads(cached_file.read_text())
        return SynthResult(**{**data, "cached": True})

    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=cache, prefix=f"{top}-{tech}-") as work:
        work = Path(work)
        (work / f"{top}.v").write_text(verilog)
        log = cache / f"{key}.log"
        values = {
            "verilog": work / f"{top}.v", "top": top, "stat_json": work / "stat.json",
            "liberty": " ".join(f"-liberty {p}" for p in liberty),
            "dont_use": " ".join(f"-dont_use {d}" for d in _dont_use(spec, liberty)),
        }
        try:
            _run_script(script, values, work, log)
            stat = json.loads((work / "stat.json").read_text())
        except (SynthError, OSError, ValueError) as exc:
            raise SynthError(f"Yosys failed on `{top}` for {tech}: {exc} (log: {log})") \
                from None
    modules, cells = _parse_stat(stat, top, not generic)
    area = None if generic else round(stat["design"]["area"], 4)
    transistors = stat["design"].get("estimated_num_transistors")
    if isinstance(transistors, str):
        # "N+" marks cells the CMOS model has no count for; the generic flow avoids them.
        transistors = int(transistors.rstrip("+"))
    if not generic:
        transistors = synthesize(verilog, top, "generic", use_cache=use_cache,
                                 cache_dir=cache_dir).transistors
    result = SynthResult(
        top=top, tech=tech, area_um2=area, cells=cells,
        transistors=None if transistors is None else int(transistors), modules=modules,
        yosys_version=stat.get("creator", yosys_version()).split(",")[0] + ")"
        if "(" in stat.get("creator", "") else yosys_version(), liberty=[p.name for p in liberty] or None,
        seconds=round(time.perf_counter() - start, 3))
    tmp = cached_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.as_json(), indent=1))
    tmp.replace(cached_file)
    return result


def _dont_use(spec: dict, liberty: list[Path]) -> list[str]:
    """Expand the tech's dont_use glob patterns to cell names (Yosys wants names)."""
    patterns = spec.get("dont_use", [])
    if not patterns:
        return []
    names = []
    for path in liberty:
        with open(path, errors="replace") as f:
            for line in f:
                stripped = line.strip()
                if stripped.startswith("cell") and "(" in stripped:
                    name = stripped.split("(", 1)[1].split(")", 1)[0].strip().strip('"')
                    if any(fnmatch.fnmatch(name, p) for p in patterns):
                        names.append(name)
    return names


if __name__ == "__main__":
    _worker(sys.argv[1])
