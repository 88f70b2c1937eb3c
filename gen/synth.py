"""Yosys synthesis (pyosys 0.70) for area, cell counts and a transistor estimate, and static
timing (OpenSTA) of the same mapped netlist for the critical path.

The pass sequence lives in ``constraints/synth.ys``; the technologies, where their liberty
files are found and their default clock periods, in ``constraints/techs.toml``; the timing
script and constraints in ``constraints/sta.tcl`` and ``constraints/clock.sdc``. The hierarchy
is kept, so every result carries a per-module breakdown, and timing names its path by
hierarchical instance names. Results are cached as JSON, keyed by the sha256 of everything that
determines them (Verilog, top, tech and its definition, clock period, Yosys and timing scripts,
Yosys and OpenSTA versions, liberty contents), so a sweep never synthesizes the same design
twice.

One mapping serves area and timing: flip-flops by ``dfflibmap``, logic by ``abc -D`` with the
clock period as its delay target, then ``stat`` for the area and OpenSTA on that netlist for
the timing. What the timing figure is, and what it ignores, is in :func:`static_timing`.

Yosys runs through pyosys in a child Python process, one fresh design per run. pyosys 0.70 does
not raise on a Yosys error: Yosys ends the whole process (exit status 1). A child process keeps
such a failure, and Yosys' console output, away from the caller; the log goes to a file.

Settings (environment variables):

* ``SPARSEGEN_PDK_DIR``: folder holding ``sky130hd/`` and/or ``asap7/``, searched first. Then
  each tech's ``search`` folders of ``constraints/techs.toml``: for ``sky130hd`` the liberty that
  ships with the project (``constraints/pdk/``, see its NOTICE.md), so the default flow needs no
  setting; ``asap7`` does not ship and needs the setting.
* ``SPARSEGEN_OSU018_DIR``: folder holding ``osu018_stdcells.lib``; default
  ``<repo>/build/pdk/osu018``, which ``make setup`` fills.
* ``SPARSEGEN_CACHE_DIR``: cache root; default ``<repo>/build/cache``. Unpacked liberty files go
  to ``<root>/liberty/<tech>/``, results to ``<root>/synth/<hash>.json`` (with the run's Yosys
  log beside it as ``<hash>.log`` and OpenSTA's report as ``<hash>.sta.log``).
* ``SPARSEGEN_STA``: the OpenSTA binary, a name looked up on ``PATH`` or a path; default
  ``sta`` (Debian's ``opensta``, which ``make setup`` installs where it can). Where it is not
  found, timing is ``None`` with the reason in ``timing_missing``.
"""

import dataclasses
import functools
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from . import children
from .cachefile import read_entry, write_entry
from .errors import usable_folder
from .sram import sram_model

__all__ = [
    "TECHS", "SynthError", "UnknownTechError", "SynthResult", "synthesize", "yosys_version",
    "cache_root", "tech_missing", "liberty_sources", "ClockError", "check_clock_ns",
    "sta_version", "timing_missing", "static_timing", "TIMING_IGNORES", "map_netlist",
    "static_power", "elaborated_verilog", "cell_areas", "gated_modules", "CLOCKGATE",
    "GATE_MIN_BITS",
]

_REPO = Path(__file__).resolve().parent.parent
_CONSTRAINTS = _REPO / "constraints"
_SCRIPT = _CONSTRAINTS / "synth.ys"
_TECHS_TOML = _CONSTRAINTS / "techs.toml"
_STA_SCRIPT = _CONSTRAINTS / "sta.tcl"
_SDC = _CONSTRAINTS / "clock.sdc"
_LOAD_DESIGN = _CONSTRAINTS / "load_design.tcl"
_POWER_SCRIPT = _CONSTRAINTS / "energy" / "power.tcl"
_GATES_SHUT = _CONSTRAINTS / "energy" / "gates_shut.tcl"

CLOCK_NS_RANGE = (0.01, 10_000.0)
"""Accepted clock periods in ns (100 GHz to 100 kHz): anything outside is a typo."""

_CLOCK_PORT = "clk"  # Amaranth's `sync` domain clock, the port constraints/clock.sdc times

TIMING_IGNORES = ("ideal clock (no clock tree, skew or uncertainty); no wires (pin loads only, "
                  "no placement); port delays 0; setup only; the liberty's corner only")
"""What the timing figure leaves out, in one line (shown next to it; :func:`static_timing`)."""

TECHS = ("generic", "osu018", "sky130hd", "asap7")
"""Technology names, in the order the command line lists them."""

# The child process: one fresh pyosys design, the filled-in script's commands in order. A Yosys
# error ends this process with status 1 after writing "ERROR: ..." to the log.
_WORKER = """\
import sys
from pyosys import libyosys as ys
design = ys.Design()
with open(sys.argv[1]) as script:
    for command in script.read().splitlines():
        ys.run_pass(command, design)
"""


class SynthError(RuntimeError):
    """Synthesis could not run: a missing liberty file or a Yosys failure.

    The message is one line that names what is missing (and the setting that locates it) or
    the failing top module, the tech, Yosys' last error line and the path of the full log.
    """


class UnknownTechError(SynthError, ValueError):
    """A tech name that is not one of :data:`TECHS` (a ``ValueError`` and a ``SynthError``)."""


class ClockError(SynthError, ValueError):
    """A clock period that is not a number of ns in :data:`CLOCK_NS_RANGE`, or one given for
    ``generic`` (a ``ValueError`` and a ``SynthError``)."""


@dataclasses.dataclass(frozen=True)
class SynthResult:
    """What one synthesis run reports.

    Members
    -------
    top : str
        The top module.
    tech : str
        One of :data:`TECHS`.
    area_um2 : float or None
        Total cell area in um^2 (hierarchy flattened); ``None`` for ``generic``.
    cells : int
        Total number of cells, hierarchy flattened (each instance of a module counted), not
        counting the submodule instances themselves.
    transistors : int or None
        Yosys' static-CMOS transistor estimate of the generic gate mapping of the same netlist
        (``stat -tech cmos``), for every tech. A lower bound when the design has async-reset
        flip-flops or latches, which the CMOS model does not price.
    modules : dict
        Module name -> ``{"area_um2", "cells", "transistors", "instances"}``: the module's own
        logic, excluding its submodules, and how often it occurs in the flattened hierarchy.
        ``sum(m[k] * m["instances"])`` over the modules gives the totals. Names are Yosys'
        (Amaranth names a submodule ``<top>.<name>``), top first, then in hierarchy order.
    yosys_version : str
        As reported by the library, e.g. ``"Yosys 0.70 (git sha1 28ba3cb92)"``.
    liberty : list of str or None
        File names of the liberty files read (unpacked names), ``None`` for ``generic``.
    seconds : float
        Wall time of the run, synthesis and static timing (of the original run when
        ``cached``).
    clock_ns : float or None
        The clock period the mapping aimed at (``abc -D``) and timing checked against;
        ``None`` for ``generic``.
    critical_path_ns : float or None
        The shortest clock period the worst setup path allows: ``clock_ns - slack_ns``, i.e.
        its data arrival plus the capturing flip-flop's setup time (see :func:`static_timing`
        for what it ignores). ``None`` when there is no timing (``timing_missing`` says why).
    fmax_mhz : float or None
        ``1000 / critical_path_ns``.
    slack_ns : float or None
        Worst setup slack at ``clock_ns``; negative means the clock target is missed.
    critical_path : dict or None
        ``{"start", "start_kind", "end", "end_kind", "blocks"}``: start and end point as
        hierarchical names from the top, ``/``-separated as in the netlist and OpenSTA
        (``lanes/p[3]_reg``: the flip-flop holding bit 3 of signal ``p`` in instance
        ``lanes``; a port is its bit name, ``i__payload[5]``); the kinds ``register``,
        ``latch``, ``input`` or ``output``; ``blocks`` the instances whose cells the path
        runs through, in order, the top itself as ``""``.
    sta_version : str or None
        ``"OpenSTA 2.0.17"``; ``None`` when timing did not run.
    timing_missing : str or None
        Why the timing fields are ``None`` (one line), else ``None``.
    sram_area_um2 : float or None
        Area of the memories a design declares as SRAM macros (``hw/sram.py``), priced by
        ``gen/sram.py``'s OpenRAM sky130 model, apart from ``area_um2`` (logic only, the
        macros' timing shells excluded; see :func:`macro_shells`); 0.0 without macros.
        ``None`` for a tech the model does not cover (any but sky130hd) when there are macros.
    cell_types : dict
        Cell type -> count in the flattened mapped design (the liberty's cells; Yosys' gates
        for ``generic``): what a flip-flop count or an energy model reads.
    cached : bool
        The result came from the cache.
    """

    top: str
    tech: str
    area_um2: float | None
    cells: int
    transistors: int | None
    modules: dict
    yosys_version: str
    liberty: list[str] | None
    seconds: float
    clock_ns: float | None = None
    critical_path_ns: float | None = None
    fmax_mhz: float | None = None
    slack_ns: float | None = None
    critical_path: dict | None = None
    sta_version: str | None = None
    timing_missing: str | None = None
    sram_area_um2: float | None = 0.0
    cell_types: dict | None = None
    cached: bool = False

    def as_json(self) -> dict:
        """The result as a JSON-ready dict (the field names as keys).

        Returns
        -------
        dict
            Plain ``dict``/``list``/``str``/number values; ``json.dumps`` takes it as is.
        """
        return dataclasses.asdict(self)


def cache_root() -> Path:
    """The cache root folder.

    Returns
    -------
    Path
        ``$SPARSEGEN_CACHE_DIR`` if set, else ``<repo>/build/cache``, created if needed.

    Raises
    ------
    UsageError
        The folder cannot be created or written (it is a file, read-only, ...).
    """
    setting = os.environ.get("SPARSEGEN_CACHE_DIR")
    return usable_folder(Path(setting or _REPO / "build" / "cache"),
                         "SPARSEGEN_CACHE_DIR" if setting else "the default, <repo>/build/cache")


@functools.cache
def yosys_version() -> str:
    """The version of the Yosys that pyosys runs, as the library reports it.

    Asked once per process, in a child process (importing pyosys changes the importing
    process's ``dlopen`` flags for good).

    Returns
    -------
    str
        For example ``"Yosys 0.70 (git sha1 28ba3cb92)"``: the library's version string without
        its build details (build type, compiler).

    Raises
    ------
    SynthError
        pyosys cannot be imported or does not report a version.
    """
    code = "from pyosys import libyosys as ys; print(ys.yosys_maybe_version())"
    result = children.run([sys.executable, "-c", code], capture_output=True, text=True)
    full = result.stdout.strip()
    if result.returncode != 0 or not full.startswith("Yosys"):
        detail = (result.stderr.strip().splitlines() or [full or "no output"])[-1]
        raise SynthError(f"cannot ask pyosys for the Yosys version: {detail}")
    match = re.match(r"(Yosys \S+ \(git sha1 [0-9a-f]+)", full)
    return match.group(1) + ")" if match else full


def check_clock_ns(clock_ns) -> float:
    """``clock_ns`` as a float if it is a usable clock period in ns.

    Raises
    ------
    ClockError
        Not a finite number within :data:`CLOCK_NS_RANGE`; one line naming the value.
    """
    lo, hi = CLOCK_NS_RANGE
    try:
        value = float(clock_ns)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(clock_ns, bool) or not lo <= value <= hi:  # NaN fails both comparisons
        raise ClockError(f"clock period must be a number of ns from {lo:g} to {hi:g}, "
                         f"not {clock_ns!r}")
    return value


def _sta_binary() -> str | None:
    """The OpenSTA binary to run (``$SPARSEGEN_STA``, else ``sta``), as found, or ``None``."""
    return shutil.which(os.environ.get("SPARSEGEN_STA") or "sta")


@functools.cache
def _sta_version_of(binary: str) -> str | None:
    try:
        result = children.run([binary, "-version"], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = result.stdout.strip()
    return f"OpenSTA {version}" if result.returncode == 0 and version else None


def sta_version() -> str | None:
    """The version of the OpenSTA that timing runs, e.g. ``"OpenSTA 2.0.17"``, or ``None`` if
    it is not found (or does not answer ``sta -version``)."""
    binary = _sta_binary()
    return _sta_version_of(binary) if binary else None


def timing_missing(tech: str) -> str | None:
    """Why ``synthesize(..., tech)`` would report no timing here, or ``None`` if it would.

    For tests and tools that want to skip timing instead of failing on it. Checks the tech and
    the OpenSTA binary, not the liberty (see :func:`tech_missing`).
    """
    if tech not in TECHS:
        raise UnknownTechError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    techs = _techs()
    if "liberty" not in techs[tech]:
        return (f"`{tech}` gates have no delays: timing needs a liberty tech "
                f"({', '.join(t for t in TECHS if 'liberty' in techs[t])})")
    if sta_version() is None:
        name = os.environ.get("SPARSEGEN_STA") or "sta"
        return (f"OpenSTA (`{name}`) not found: install Debian's opensta (`make setup` as "
                f"root) or set SPARSEGEN_STA to the binary")
    return None


def _tcl_value(value) -> str:
    """``value`` as one Tcl word (a list of them for a list), taken literally (braced)."""
    if isinstance(value, list):
        return "[list " + " ".join(map(_tcl_value, value)) + "]"
    text = str(value)
    if re.search(r"[{}\\\n]", text):
        raise SynthError(f"cannot pass {text!r} to OpenSTA (braces, backslash or newline)")
    return "{" + text + "}"


_PIN_LINE = re.compile(r"^\s*(?:-?[\d.]+\s+)+[\^v]\s+(\S+)\s+\((\S+)\)\s*$")
_SLACK_LINE = re.compile(r"^\s*(-?[\d.]+)\s+slack \((?:MET|VIOLATED)\)\s*$")


def _kind(description: str) -> str:
    for words, kind in (("flip-flop", "register"), ("latch", "latch"), ("input port", "input"),
                        ("output port", "output")):
        if words in description:
            return kind
    return description


def _parse_report(text: str, clock_ns: float) -> dict | None:
    """Timing fields from OpenSTA's ``report_checks -format full``; ``None`` if no path."""
    # A long name pushes the description in parentheses onto the next line.
    start = re.search(r"^Startpoint: (\S+)\s+\(([^)]*)\)", text, re.M)
    end = re.search(r"^Endpoint: (\S+)\s+\(([^)]*)\)", text, re.M)
    slack = next((m for m in map(_SLACK_LINE.match, text.splitlines()) if m), None)
    if not (start and end and slack):
        if "No paths found" in text:
            return None
        raise SynthError("cannot read OpenSTA's report (no Startpoint, Endpoint or slack)")
    data = text[end.end():text.index("data arrival time", end.end())]
    blocks: list[str] = []
    for line in data.splitlines():
        pin = _PIN_LINE.match(line)
        if pin is None:
            continue
        parts = pin.group(1).split("/")
        # A cell pin is <instance path>/<cell>/<pin>; a port (`in`/`out`) sits in the top.
        block = "/".join(parts[:-2]) if pin.group(2) not in ("in", "out") else ""
        if not blocks or blocks[-1] != block:
            blocks.append(block)
    slack_ns = float(slack.group(1))
    critical = round(clock_ns - slack_ns, 4)
    return {
        "clock_ns": clock_ns,
        "critical_path_ns": critical,
        "fmax_mhz": round(1000.0 / critical, 2) if critical > 0 else None,
        "slack_ns": slack_ns,
        "critical_path": {"start": start.group(1), "start_kind": _kind(start.group(2)),
                          "end": end.group(1), "end_kind": _kind(end.group(2)),
                          "blocks": blocks},
    }


def static_timing(netlist: Path, top: str, tech: str, clock_ns: float | None = None, *,
                  cache_dir: Path | None = None, log: Path | None = None) -> dict | None:
    """Run OpenSTA on a netlist mapped to ``tech``'s cells and report its worst setup path.

    ``constraints/sta.tcl`` reads the tech's liberty files and the netlist, names the tech's
    ``operating_conditions``, sources ``constraints/clock.sdc`` and reports the worst path.

    What the figure is: the latest data arrival at a flip-flop (or output port) plus that
    flip-flop's setup time, from the liberty's NLDM delay and slew tables, one clock edge to
    the next, at the liberty's single corner (sky130hd: tt, 25 C, 1.8 V). What it ignores:
    wires (a net's load is its pins' capacitances; no wire-load model, no placement or
    routing), the clock tree (ideal clock: no latency, skew or uncertainty), what lies outside
    the design (inputs arrive at the clock edge, outputs are due at the next, from ideal
    drivers into no load), hold checks, other corners (slow/fast process, voltage,
    temperature) and on-chip variation. After placement and routing a path is longer, often
    by tens of percent; use the figure to compare designs and to find where their paths run.

    Parameters
    ----------
    netlist : Path
        Structural Verilog of ``tech``'s cells (hierarchical or flat), as ``synthesize`` writes.
    top : str
        Its top module.
    tech : str
        A liberty tech of :data:`TECHS`.
    clock_ns : float, optional
        Clock period; default the tech's ``clock_ns`` in ``constraints/techs.toml``.
    cache_dir : Path, optional
        Cache root, where unpacked liberty files are kept; default :func:`cache_root`.
    log : Path, optional
        Where OpenSTA's output (the full path report) goes; default ``sta.log`` beside the
        netlist.

    Returns
    -------
    dict or None
        ``clock_ns``, ``critical_path_ns``, ``fmax_mhz``, ``slack_ns`` and ``critical_path``
        as in :class:`SynthResult`; ``None`` if the design has no timed path.

    Raises
    ------
    SynthError
        No timing for ``tech`` or no OpenSTA (the reason of :func:`timing_missing`), a bad
        clock period (:class:`ClockError`), a missing liberty, or OpenSTA reporting an error
        (its first error line and the log path).
    """
    missing = timing_missing(tech)
    if missing:
        raise SynthError(missing)
    clock, netlist, variables = _sta_design(netlist, top, tech, clock_ns, cache_dir)
    log = Path(log) if log is not None else netlist.parent / "sta.log"
    text, errors, status = _run_sta(_STA_SCRIPT, variables, netlist.parent / "sta_run.tcl", log)
    if errors or status != 0:
        detail = errors[0] if errors else f"exit status {status}"
        raise SynthError(f"OpenSTA failed on `{top}` for {tech}: {detail} (log: {log})")
    return _parse_report(text, clock)


def _sta_design(netlist, top: str, tech: str, clock_ns, cache_dir):
    """The clock, the netlist's absolute path and the variables of constraints/load_design.tcl
    for running OpenSTA on ``netlist`` (top ``top``) with ``tech``'s liberty."""
    spec = _techs()[tech]
    clock = check_clock_ns(spec["clock_ns"] if clock_ns is None else clock_ns)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    netlist = Path(netlist).resolve()
    liberty = [_wire_free(path, root / "liberty" / tech / "sta")
               for path in _liberty_files(tech, spec, root)]
    return clock, netlist, {
        "liberty": liberty, "netlist": netlist, "top": top,
        "clock_ns": clock, "clock_port": _CLOCK_PORT, "sdc": _SDC, "load_design": _LOAD_DESIGN,
        "operating_conditions": spec.get("operating_conditions", "")}


def _run_sta(template: Path, variables: dict, script: Path, log: Path):
    """Run OpenSTA on ``template`` with ``variables`` set before it; return the report text,
    its error lines and the exit status. OpenSTA 2.0.17 prints an error and carries on (exit
    status 0), so callers treat any error line as a failure."""
    preamble = "".join(f"set {name} {_tcl_value(value)}\n" for name, value in variables.items())
    script.write_text(preamble + template.read_text())
    with open(log, "w") as out:
        try:
            status = children.run([_sta_binary(), "-no_init", "-exit", str(script)],
                                    cwd=script.parent, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT).returncode
        except OSError as exc:
            raise SynthError(f"cannot run OpenSTA: {exc}") from None
    text = log.read_text(errors="replace")
    return text, [line.strip() for line in text.splitlines() if line.startswith("Error")], status


def _techs() -> dict:
    with open(_TECHS_TOML, "rb") as f:
        techs = tomllib.load(f)
    if tuple(techs) != TECHS:
        raise SynthError(f"{_TECHS_TOML} defines {', '.join(techs)}; expected "
                         f"{', '.join(TECHS)}")
    return techs


def _search_dirs(spec: dict) -> list[Path]:
    """The folders a tech's liberty paths are relative to, in lookup order: the folder named by
    the tech's setting (if set), then its ``search`` folders (relative to the project root)."""
    dirs = []
    value = os.environ.get(spec["dir_setting"])
    if value:
        dirs.append(Path(value).expanduser())
    dirs.extend((_REPO / folder).resolve() for folder in spec.get("search", []))
    return dirs


def _find_liberty(tech: str, spec: dict) -> tuple[list[Path], str | None]:
    """Each liberty file of ``tech`` from the first search folder holding it, or the reason one
    is missing (a line naming the file, the setting that locates it and where it looked)."""
    dirs = _search_dirs(spec)
    files = []
    for name in spec.get("liberty", []):
        found = next((d / name for d in dirs if (d / name).is_file()), None)
        if found is None:
            subdir = Path(name).parent
            holding = (f"a folder holding {subdir}/" if subdir != Path(".")
                       else "the folder holding it")
            hint = f", {spec['setup_hint']}" if spec.get("setup_hint") else ""
            looked = ", ".join(str(d) for d in dirs) or "nowhere: the setting is unset"
            return [], (f"tech `{tech}` needs {Path(name).name}: set {spec['dir_setting']} to "
                        f"{holding}{hint} (looked in {looked})")
        files.append(found)
    return files, None


def tech_missing(tech: str) -> str | None:
    """Why ``tech`` cannot run here (its liberty files are not found), or ``None`` if it can.

    For tests and tools that want to skip a tech instead of failing on it.
    """
    if tech not in TECHS:
        raise UnknownTechError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    spec = _techs()[tech]
    return _find_liberty(tech, spec)[1] if "liberty" in spec else None


def liberty_sources(tech: str) -> list[Path]:
    """The liberty files ``tech`` reads, as found (before unpacking): where a figure came from.

    Raises
    ------
    SynthError
        A file is not found; the message names the setting that locates it.
    """
    if tech not in TECHS:
        raise UnknownTechError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    files, missing = _find_liberty(tech, _techs()[tech])
    if missing:
        raise SynthError(missing)
    return files


def _liberty_files(tech: str, spec: dict, cache: Path) -> list[Path]:
    """Locate the tech's liberty files; gunzip ``.gz`` ones once into ``cache/liberty/<tech>``."""
    files, missing = _find_liberty(tech, spec)
    if missing:
        raise SynthError(missing)
    return [_gunzipped(source, cache / "liberty" / tech) if source.suffix == ".gz" else source
            for source in files]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (a liberty file's identity in cache keys)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _gunzipped(source: Path, folder: Path) -> Path:
    """``source`` unpacked into ``folder/<sha256 of source, 16 digits>/``, once per content.

    Keyed by the content of the source, not its name or date, so a replaced file is unpacked
    anew and never served from an older copy; written to a temporary name and renamed, so a
    half-unpacked file is never seen. A file that is not gzip or is truncated is a
    :class:`SynthError` naming it.
    """
    target = folder / file_digest(source)[:16] / source.stem
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name and an atomic rename: parallel runs may unpack at the same time.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with gzip.open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, target)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SynthError(f"cannot unpack liberty file {source}: {exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


#: A liberty line naming the library's default wire-load model (or its default selection of
#: models): the attributes :func:`_wire_free` drops.
_DEFAULT_WIRE_LOAD = re.compile(rb"^[ \t]*default_wire_load(?:_selection)?[ \t]*:[^\n]*$", re.M)


def _wire_free(liberty: Path, folder: Path) -> Path:
    """``liberty`` as OpenSTA reads it: without a default wire-load model, so a net's load is
    its pins' capacitance alone (:func:`static_timing` says why). A file that names no default
    is used as it is; one that does is copied once per content into ``folder/<sha256, 16
    digits>/`` without those lines. Every cell, table and the named models stay.

    The same figures as the flow's earlier ``set_load 0`` on every net (which overrides the
    model's wire capacitance), checked equal on dense-array 8x8, s2ta aw 8x8, highlight and
    sod (critical path reports and ``report_power`` byte for byte), but without setting
    1,969,868 net loads one at a time: on s2ta aw 32x32, listing and setting them took 38-46 s
    of OpenSTA's 134-141 s (two runs) and half of its 4.35 GB.
    """
    with open(liberty, "rb") as f:
        text = f.read()
    if not _DEFAULT_WIRE_LOAD.search(text):
        return liberty
    target = folder / hashlib.sha256(text).hexdigest()[:16] / liberty.name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name and an atomic rename, as for unpacking (parallel runs).
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            # A comment in place of each line, so line numbers in OpenSTA's messages hold.
            out.write(_DEFAULT_WIRE_LOAD.sub(b"/* dropped by sparsegen: no wire loads */", text))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _sections(script: str) -> dict[str, list[str]]:
    """Split the script template into its ``#@ NAME`` sections of commands."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("#@"):
            current = sections.setdefault(stripped[2:].strip(), [])
        elif stripped and not stripped.startswith("#"):
            if current is None:
                raise SynthError(f"{_SCRIPT}: command before the first `#@ section`: {stripped}")
            current.append(stripped)
    return sections


def _quote(path: Path) -> str:
    return f'"{path}"' if re.search(r"\s", str(path)) else str(path)


def _commands(script: str, top: str, liberty: list[Path], dont_use: list[str],
              clock_ns: float | None, gated: bool = False) -> list[str]:
    sections = _sections(script)
    names = ["common", "liberty", "generic"] if liberty else ["common", "generic"]
    values = {
        "top": top,
        "liberty": " ".join(f"-liberty {_quote(p)}" for p in liberty),
        "dont_use": " ".join(f"-dont_use {p}" for p in dont_use),
        "delay_ps": "" if clock_ns is None else f"{round(clock_ns * 1000)}",
        "min_bits": GATE_MIN_BITS,
    }
    commands = [c for name in names for c in sections[name]]
    if gated and liberty:
        # The clock gates go in where the liberty mapping starts: `synth` has turned the
        # memories into enable flip-flops, `dfflibmap` has not yet mapped them.
        start = next(n for n, c in enumerate(commands) if c.startswith("dfflibmap"))
        commands.insert(start, CLOCKGATE)
    return [" ".join(c.format(**values).split()) for c in commands]


def _run(commands: list[str], work: Path, log: Path) -> None:
    """Run ``commands`` with pyosys in a child process in ``work``, its output into ``log``."""
    script = work / "run.ys"
    script.write_text("\n".join(commands) + "\n")
    with open(log, "w") as out:
        status = children.run([sys.executable, "-c", _WORKER, str(script)], cwd=work,
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT).returncode
    if status != 0:
        text = log.read_text(errors="replace")
        errors = [line.strip() for line in text.splitlines() if "ERROR" in line]
        raise SynthError(errors[-1] if errors else f"Yosys exited with status {status}")


def elaborated_verilog(verilog: str, top: str, *, flatten: bool,
                       keep: tuple[str, ...] = ()) -> str:
    """``verilog`` after Yosys' ``proc`` and, with ``flatten``, ``flatten`` (the start of a
    ``synth -flatten``), written back as Verilog.

    For comparing hierarchical synthesis (each shared module mapped once) with flat synthesis
    of the same design: put both sides through this round trip, which alone moves the mapped
    area by up to a few percent, so that the comparison sees only the hierarchy.

    Parameters
    ----------
    keep : tuple of str
        With ``flatten``: modules that stay modules of their own (instantiated where they
        were, Yosys' ``keep_hierarchy``); everything else is flattened into the top. Used to
        tell how much of a hierarchical/flat difference lies inside a repeated cell.

    Raises
    ------
    SynthError
        Yosys failed (its last error line), e.g. a module of ``keep`` that does not exist.
    """
    if keep and not flatten:
        raise ValueError("`keep` needs `flatten`")
    with tempfile.TemporaryDirectory(prefix="sparsegen-elaborate-") as work:
        work = Path(work)
        (work / "design.v").write_text(verilog)
        # A module of `keep` that does not exist is an error (`setattr` alone would not fail).
        kept = [c for name in keep for c in (f"select -assert-mod-count 1 {_selection(name)}",
                                              f"setattr -mod -set keep_hierarchy 1 "
                                              f"{_selection(name)}")]
        _run(["read_verilog -sv design.v", f"hierarchy -check -top {top}", "proc", *kept,
              *(["flatten"] if flatten else []),
              *(["setattr -mod -unset keep_hierarchy"] if keep else []),
              "opt_clean", "write_verilog -noattr out.v"],
             work, work / "yosys.log")
        return (work / "out.v").read_text()


def _selection(module: str) -> str:
    """A Yosys selection of exactly the module ``module`` (Amaranth names hold ``.``)."""
    if re.search(r"[\s*?\[\]%/:=]", module):
        raise SynthError(f"cannot select module {module!r}: it holds a space or a character "
                         f"Yosys' selections read as an operator")
    return module if module.startswith("\\") else "\\" + module


_LIBERTY_CELL = re.compile(r'^\s*cell\s*\(\s*"?([^"\s)]+)"?\s*\)')
_LIBERTY_AREA = re.compile(r"^\s*area\s*:\s*([-+\d.eE]+)")


def cell_areas(tech: str, *, cache_dir: Path | None = None) -> dict[str, float]:
    """Cell name -> area in um^2 (the liberty's ``area`` times the tech's ``area_scale``), from
    every liberty file of ``tech``, as the flow reads them: what a count of
    :attr:`SynthResult.cell_types` weighs.

    Raises
    ------
    SynthError
        ``tech`` has no liberty, or a liberty file is missing.
    """
    if tech not in TECHS:
        raise UnknownTechError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    spec = _techs()[tech]
    if "liberty" not in spec:
        raise SynthError(f"`{tech}` has no liberty: its cells have no area")
    scale = float(spec.get("area_scale", 1.0))
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    areas: dict[str, float] = {}
    for path in _liberty_files(tech, spec, root):
        cell = None
        with open(path, errors="replace") as f:
            for line in f:
                if (found := _LIBERTY_CELL.match(line)) is not None:
                    cell = found.group(1)
                elif cell is not None and (found := _LIBERTY_AREA.match(line)) is not None:
                    areas[cell] = float(found.group(1)) * scale
                    cell = None  # the cell's own area comes first; pins have none
    return areas


# --- SRAM macros (hw/sram.py): timing shells in synthesis, area from the SRAM model -----------

_MODULE = re.compile(r"^module (\\?\S+) \((.*?)\);\n(.*?)^endmodule\n", re.M | re.S)
_MACRO_NAME = re.compile(r"(?:^|\.)sram_1r1w_(\d+)x(\d+)$")
_PORT_DECL = re.compile(r"^\s*(input|output)\s+(\[\d+:\d+\]\s+)?(\S+);$", re.M)
_MACRO_CLOCK = "clk"


def macro_shells(verilog: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """Replace every SRAM macro module of ``verilog`` (a module named ``...sram_1r1w_<W>x<B>``,
    :func:`sparsegen.hw.sram.macro_name`) by its timing shell; return the new text and
    ``{module name: (words, bits)}``.

    The shell keeps the macro's ports (``hw/sram.py`` documents them) and holds one flip-flop
    per input bit (the macro's input registers: paths into the macro end at a setup check) and
    one per ``r_data`` bit (its output: paths out of it start at a clock-to-output delay).
    Against the OpenRAM sky130 liberties this is close at the inputs (setup 0.103 ns there)
    and optimistic at the output, whose 0.34-0.48 ns delay those liberties count from the
    falling clock edge (half a cycle later). The macro's storage and read access are not
    timed; its area comes from the SRAM model, and the shell's flip-flops are left out of the
    logic area (see :func:`synthesize`).
    """
    macros = {}

    def shell(match):
        name, ports, body = match.groups()
        found = _MACRO_NAME.search(name.lstrip("\\"))
        if found is None:
            return match.group(0)
        macros[name.lstrip("\\")] = (int(found.group(1)), int(found.group(2)))
        lines = [f"module {name} ({ports});"]
        regs = []
        for kind, width, port in _PORT_DECL.findall(body):
            lines.append(f"  {kind} {width}{port};")
            if kind == "input" and port not in (_MACRO_CLOCK, "rst"):
                regs.append((width, port))
        lines += [f"  (* keep *) reg {w}sparsegen_shell_{p};" for w, p in regs]
        lines.append(f"  (* keep *) reg [{int(found.group(2)) - 1}:0] sparsegen_shell_out;")
        lines.append(f"  always @(posedge {_MACRO_CLOCK}) begin")
        lines += [f"    sparsegen_shell_{p} <= {p};" for _, p in regs]
        lines.append("    sparsegen_shell_out <= sparsegen_shell_w_data;")
        lines += ["  end", "  assign r_data = sparsegen_shell_out;", "endmodule", ""]
        return "\n".join(lines)

    return _MODULE.sub(shell, verilog), macros


# --- Clock-gated flip-flop memories (hw/sram.py): an ICG per row in the liberty mapping ---------

_GATED_NAME = re.compile(r"(?:^|\.)(?:regfile_1r1w_\d+x\d+|gated_reg_\d+)$")
_MODULE_NAME = re.compile(r"^\s*module\s+\\?([^\s(;]+)", re.M)  # Amaranth's or hand-written

GATE_MIN_BITS = 2
"""Fewest flip-flops sharing a clock and an enable that get an ICG (``clockgate
-min_net_size``). On sky130hd an ICG (``dlclkp_1``, 17.5 um^2) replaces the enable of each
flip-flop it gates (``edfxtp_1`` 30.0 -> ``dfxtp_1`` 20.0 um^2): two bits already pay for it."""

CLOCKGATE = ("clockgate {liberty} {dont_use} -min_net_size {min_bits} "
             "*regfile_1r1w_* *gated_reg_*")
"""The Yosys command that gates the clocks of the flip-flop memories (``hw/sram.py``: modules
named ``...regfile_1r1w_<W>x<B>``) and of the gated registers (``hw/gate.py``: modules named
``...gated_reg_<W>``), :func:`gated_modules`, run only on designs that have such modules,
before ``dfflibmap`` in the liberty mapping. Yosys' ``clockgate`` turns each set of flip-flops
sharing a clock and an enable (a memory row: its write enable; the read register: the read
enable; a gated register's part: its load enable) into one ICG of the liberty (sky130hd:
``sky130_fd_sc_hd__dlclkp_1``, a latch-based gate) driving enable-less flip-flops, so a row or
register that is not written sees no clock edge. The ICG's gated clock is an ordinary net to
OpenSTA, which times the clock through it and checks the gate's enable (a clock gating check).
Other modules are left as they are. Yosys 0.70's ``clockgate`` works on whole selected modules
and takes any flip-flop with an enable, a synchronous reset included, whose reset would then
act only while the gate is open: neither kind of module has a reset (memories by nature, the
gated registers by design), so the gates change no behaviour."""


def gated_modules(verilog: str) -> list[str]:
    """Names of the modules of ``verilog`` whose flip-flops are clock-gated: flip-flop memories
    (``regfile_1r1w_<W>x<B>``) and gated registers (``gated_reg_<W>``)."""
    return [name for name in _MODULE_NAME.findall(verilog) if _GATED_NAME.search(name)]


def _macro_split(breakdown: dict, macros: dict, tech: str):
    """The shells' share of the design (area, cells, transistors) and the macros' SRAM area;
    marks each macro module of ``breakdown`` with its words, bits and SRAM area."""
    shell = {"area_um2": 0.0, "cells": 0, "transistors": 0}
    sram = 0.0 if tech == "sky130hd" or not macros else None
    for name, (words, bits) in macros.items():
        entry = breakdown.get(name)
        if entry is None:
            continue
        n = entry["instances"]
        for key in shell:
            shell[key] += (entry[key] or 0) * n
        one = sram_model().estimate(words, bits).area_um2 if sram is not None else None
        if sram is not None:
            sram += one * n
        breakdown[name] = {**entry, "area_um2": 0.0 if entry["area_um2"] is not None else None,
                           "cells": 0, "transistors": 0,
                           "macro": {"words": words, "bits": bits, "sram_area_um2": one}}
    return shell, None if sram is None else round(sram, 3)


def _hierarchy(stat: dict, top: str) -> tuple[dict, dict, list[str]]:
    """Modules of a ``stat -json`` report: their entries, child counts, and a top-down order."""
    modules = {(name[1:] if name.startswith("\\") else name): info
               for name, info in stat["modules"].items()}
    if top not in modules:
        raise SynthError(f"`stat -json` reports no module `{top}`")
    children = {name: {cell: count for cell, count in info.get("num_cells_by_type", {}).items()
                       if cell in modules}
                for name, info in modules.items()}
    order: list[str] = []
    seen = set()

    def visit(name):  # depth-first post-order; reversed, parents come before their children
        seen.add(name)
        for child in children[name]:
            if child not in seen:
                visit(child)
        order.append(name)

    visit(top)
    return modules, children, order[::-1]


def _own(totals: dict, children: dict, instances: dict, design_total: float) -> dict:
    """Per-module values without their submodules, however this Yosys reports them.

    Yosys 0.70's ``stat -json`` gives a module's ``area`` and transistor estimate *including*
    its submodules (its text report gives them excluding). Both readings are tried, and the one
    whose flattened sum matches the design total is taken.
    """
    def flat(values):
        return sum(values[m] * instances[m] for m in instances)

    def close(a, b):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)

    if close(flat(totals), design_total):
        return dict(totals)
    own = {m: totals[m] - sum(n * totals[c] for c, n in children[m].items()) for m in totals}
    if close(flat(own), design_total):
        return own
    raise SynthError(f"cannot reconcile the per-module figures of `stat -json` with the design "
                     f"total {design_total}")


def _transistors(value) -> float:
    # "N+" marks cells the CMOS model has no count for: N is then a lower bound.
    return float(str(value).rstrip("+"))


def _instances(children: dict, order: list[str], top: str) -> dict:
    """How often each module occurs in the flattened hierarchy (``order``: parents first)."""
    instances = dict.fromkeys(order, 0)
    instances[top] = 1
    for name in order:  # parents before children: each count is final when it is used
        for child, count in children[name].items():
            instances[child] += count * instances[name]
    return instances


def _cell_types(stat: dict, top: str) -> dict[str, int]:
    """Cell type -> count in the flattened design of a ``stat -json`` report (submodule
    instances are not cells)."""
    modules, children, order = _hierarchy(stat, top)
    instances = _instances(children, order, top)
    types: dict[str, int] = {}
    for name in order:
        for cell, count in modules[name].get("num_cells_by_type", {}).items():
            if cell not in modules:
                types[cell] = types.get(cell, 0) + count * instances[name]
    return types


def _breakdown(liberty_stat: dict | None, generic_stat: dict, top: str, scale: float):
    """Totals and the per-module breakdown from the ``stat -json`` reports."""
    stat = liberty_stat or generic_stat
    modules, children, order = _hierarchy(stat, top)
    instances = _instances(children, order, top)
    cells = {m: sum(n for cell, n in modules[m].get("num_cells_by_type", {}).items()
                    if cell not in modules) for m in order}
    area = None
    if liberty_stat is not None:
        area = _own({m: modules[m]["area"] for m in order}, children, instances,
                    stat["design"]["area"])
    g_modules, g_children, _ = _hierarchy(generic_stat, top)
    if set(g_modules) != set(modules):
        raise SynthError("the generic and the liberty mapping report different modules")
    transistors = _own({m: _transistors(g_modules[m]["estimated_num_transistors"])
                        for m in order}, g_children, instances,
                       _transistors(generic_stat["design"]["estimated_num_transistors"]))
    breakdown = {m: {"area_um2": None if area is None else round(area[m] * scale, 6),
                     "cells": cells[m], "transistors": round(transistors[m]),
                     "instances": instances[m]} for m in order}
    total_cells = sum(cells[m] * instances[m] for m in order)
    total_area = None if area is None else round(stat["design"]["area"] * scale, 6)
    total_transistors = round(_transistors(generic_stat["design"]["estimated_num_transistors"]))
    return total_area, total_cells, total_transistors, breakdown


def synthesize(verilog: str, top: str, tech: str = "generic", *, cache_dir: Path | None = None,
               use_cache: bool = True, clock_ns: float | None = None,
               timing: bool | None = None) -> SynthResult:
    """Synthesize ``verilog`` with top module ``top`` for ``tech``: area, cells and timing.

    The flow (``constraints/synth.ys``) keeps the hierarchy: ``synth``, then for a liberty tech
    ``dfflibmap`` + ``abc -D <clock> -constr`` (area and timing come from this one netlist),
    and for every tech a generic gate mapping for the transistor estimate. For a liberty tech,
    OpenSTA then times the mapped netlist (:func:`static_timing`, which says what the figure
    ignores: wires, placement, the clock tree, port delays, other corners).

    The mapping is timing-driven (a documented choice): ABC buffers high-fanout nets and sizes
    gates towards the clock, so a liberty area includes that cost. Against the earlier
    area-only mapping, sky130hd at the default 10 ns: dbb-pe (8/4) 20,437.1 -> 21,001.4 um^2
    (+2.8%), critical path 11.88 -> 10.25 ns; dense-array 8x8 426,504.1 -> 444,410.0 um^2
    (+4.2%), 87.2 -> 10.9 ns (an unbuffered select register had dominated). A longer
    ``clock_ns`` relaxes it: dbb-pe at 20 ns is 20,967.6 um^2.

    Parameters
    ----------
    verilog : str
        Verilog (or SystemVerilog) text holding ``top`` and every module it instantiates.
    top : str
        Name of the top module.
    tech : str
        One of :data:`TECHS`; ``generic`` needs no liberty and reports no area.
    cache_dir : Path, optional
        Cache root (``liberty/`` and ``synth/`` under it); default :func:`cache_root`.
    use_cache : bool
        Return a cached result when there is one. The result is stored either way.
    clock_ns : float, optional
        Clock period in ns for the mapping's delay target and for timing; default the tech's
        ``clock_ns`` (``constraints/techs.toml``). Not for ``generic``.
    timing : bool, optional
        ``None`` (default): time the netlist where possible, else leave the timing fields
        ``None`` with the reason in ``timing_missing``. ``True``: timing is required (an error
        where it cannot run). ``False``: do not run OpenSTA.

    Returns
    -------
    SynthResult
        ``cached`` tells whether it came from the cache.

    Raises
    ------
    UnknownTechError
        ``tech`` is not one of :data:`TECHS` (also a ``ValueError``).
    ClockError
        ``clock_ns`` is out of :data:`CLOCK_NS_RANGE`, or given for ``generic``.
    SynthError
        A liberty file is missing (the message names the setting that locates it), Yosys or
        OpenSTA failed (the message names the top and the log file, with the tool's error
        line), or ``timing=True`` where timing cannot run (the reason).
    """
    if tech not in TECHS:
        raise UnknownTechError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    spec = _techs()[tech]
    if "liberty" in spec:
        clock = check_clock_ns(spec["clock_ns"] if clock_ns is None else clock_ns)
    elif clock_ns is not None:
        raise ClockError(f"a clock period needs a liberty tech: {timing_missing(tech)}")
    else:
        clock = None
    missing = "static timing not requested" if timing is False else timing_missing(tech)
    if timing and missing:
        raise SynthError(missing)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    liberty = _liberty_files(tech, spec, root) if "liberty" in spec else []
    script = _SCRIPT.read_text()
    version = yosys_version()
    sta = None if missing else sta_version()
    # With SRAM macros the key holds the shells (not the models they replace) and the model
    # that prices them; without, the text is the design's own and the key is as it was.
    shelled, macros = macro_shells(verilog)
    keyed = shelled if not macros else [shelled, dataclasses.asdict(sram_model())]
    gated = bool(gated_modules(shelled))
    if gated:   # only then is the clock gating part of the flow (and of the key)
        keyed = [keyed, CLOCKGATE, GATE_MIN_BITS]
    key = hashlib.sha256(json.dumps(
        [keyed, top, tech, spec, script, version,
         [(p.name, file_digest(p)) for p in liberty], clock, sta or missing,
         None if missing else [_STA_SCRIPT.read_text(), _LOAD_DESIGN.read_text(),
                              _SDC.read_text()]],
        sort_keys=True).encode()).hexdigest()
    folder = root / "synth"
    cached_file = folder / f"{key}.json"
    cached = read_entry(cached_file) if use_cache else None
    if cached is not None:
        try:
            return SynthResult(**{**cached, "cached": True})
        except TypeError:
            pass  # from an older layout of the result: synthesize again

    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder, prefix=f"{key[:12]}-"))
    log = work / "yosys.log"
    start = time.perf_counter()
    try:
        (work / "design.v").write_text(shelled)
        if liberty:
            (work / "abc.constr").write_text(f"set_driving_cell {spec['abc_driving_cell']}\n"
                                             f"set_load {spec['abc_load_ff']}\n")
        _run(_commands(script, top, liberty, spec.get("dont_use", []), clock, gated), work,
             log)
        liberty_stat = json.loads((work / "liberty_stat.json").read_text()) if liberty else None
        generic_stat = json.loads((work / "generic_stat.json").read_text())
        area, cells, transistors, modules = _breakdown(liberty_stat, generic_stat, top,
                                                       float(spec.get("area_scale", 1.0)))
        cell_types = _cell_types(liberty_stat or generic_stat, top)
        shell, sram_area = _macro_split(modules, macros, tech)
        cells, transistors = cells - shell["cells"], transistors - shell["transistors"]
        if area is not None:
            area = round(area - shell["area_um2"], 6)
    except (SynthError, OSError, ValueError, KeyError) as exc:
        # The work folder stays for inspection: design.v, run.ys, yosys.log.
        raise SynthError(f"Yosys failed on `{top}` for {tech}: {exc} (log: {log})") from None
    timed = {"clock_ns": clock}
    if not missing:
        # Errors name their log; the work folder stays for inspection (netlist.v, sta_run.tcl).
        timed = static_timing(work / "netlist.v", top, tech, clock, cache_dir=root,
                              log=work / "sta.log")
        if timed is None:
            timed, missing = {"clock_ns": clock}, "OpenSTA found no timed path"
    seconds = round(time.perf_counter() - start, 3)
    result = SynthResult(top=top, tech=tech, area_um2=area, cells=cells, transistors=transistors,
                         modules=modules, yosys_version=version,
                         liberty=[p.name for p in liberty] or None, seconds=seconds, **timed,
                         sta_version=None if missing else sta, timing_missing=missing,
                         sram_area_um2=sram_area, cell_types=cell_types)
    os.replace(log, folder / f"{key}.log")
    if not missing:
        os.replace(work / "sta.log", folder / f"{key}.sta.log")
    shutil.rmtree(work, ignore_errors=True)
    write_entry(cached_file, result.as_json())
    return result


# --- Additive helpers for power (gen/energy.py): the same mapping, kept; OpenSTA report_power ---

def map_netlist(verilog: str, top: str, tech: str, folder: Path, *,
                clock_ns: float | None = None, cache_dir: Path | None = None) -> dict:
    """Map ``verilog`` to ``tech``'s cells exactly as :func:`synthesize` does, keeping the netlist.

    The same ``constraints/synth.ys`` runs in ``folder`` (which must exist and is left in place:
    ``design.v``, ``netlist.v``, ``yosys.log``, the ``stat`` reports). Nothing is cached here.

    Returns
    -------
    dict
        ``netlist`` (Path of ``netlist.v``), ``area_um2`` (total cell area), ``cell_types``
        (liberty cell name -> count in the flattened hierarchy), ``clock_ns``.

    Raises
    ------
    SynthError
        ``tech`` has no liberty, a liberty file is missing, or Yosys failed (the log path).
    """
    if tech not in TECHS:
        raise UnknownTechError(f"unknown tech `{tech}` (choose from {', '.join(TECHS)})")
    spec = _techs()[tech]
    if "liberty" not in spec:
        raise SynthError(f"`{tech}` has no liberty: mapping to cells needs a liberty tech")
    clock = check_clock_ns(spec["clock_ns"] if clock_ns is None else clock_ns)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    liberty = _liberty_files(tech, spec, root)
    folder = Path(folder)
    log = folder / "yosys.log"
    try:
        shelled = macro_shells(verilog)[0]
        (folder / "design.v").write_text(shelled)
        (folder / "abc.constr").write_text(f"set_driving_cell {spec['abc_driving_cell']}\n"
                                           f"set_load {spec['abc_load_ff']}\n")
        _run(_commands(_SCRIPT.read_text(), top, liberty, spec.get("dont_use", []), clock,
                       bool(gated_modules(shelled))), folder, log)
        stat = json.loads((folder / "liberty_stat.json").read_text())
        types = _cell_types(stat, top)
    except (SynthError, OSError, ValueError, KeyError) as exc:
        raise SynthError(f"Yosys failed on `{top}` for {tech}: {exc} (log: {log})") from None
    area = round(stat["design"]["area"] * float(spec.get("area_scale", 1.0)), 6)
    return {"netlist": folder / "netlist.v", "area_um2": area, "cell_types": types,
            "clock_ns": clock}


_POWER_LINE = re.compile(r"^Total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", re.M)


def static_power(netlist: Path, top: str, tech: str, clock_ns: float | None = None, *,
                 activity: float, input_activity: float | None = None,
                 clock_gates_shut: str | None = None, cache_dir: Path | None = None,
                 log: Path | None = None) -> dict:
    """OpenSTA ``report_power`` of a mapped netlist at a uniform switching activity.

    ``constraints/energy/power.tcl`` reads the liberty and the netlist as
    ``constraints/sta.tcl`` does, applies ``constraints/clock.sdc`` (one ideal clock of
    ``clock_ns``; no wires) and sets ``set_power_activity -global -activity`` to ``activity``
    and ``-input`` to ``input_activity`` (default ``activity``). OpenSTA's activity is
    transitions per clock period on a net (0.5: random data, a bit changes in half the
    cycles); with a global activity OpenSTA 2.0.17 gives every non-clock pin that figure (it
    does not derive internal activities from the inputs); clock pins toggle twice a period.
    Clock-tree, wire and glitch power are not counted. ``clock_gates_shut``, a pattern of
    liberty cell names (``*dlclkp*``), holds those integrated clock gates shut
    (``constraints/energy/gates_shut.tcl``): no clock passes them, where OpenSTA otherwise
    carries the clock through a gate whatever its enable.

    Returns
    -------
    dict
        ``internal_w``, ``switching_w``, ``leakage_w``, ``total_w`` (watts), ``clock_ns``,
        ``activity``, ``input_activity``.

    Raises
    ------
    SynthError
        No timing for ``tech`` or no OpenSTA (:func:`timing_missing`), an activity outside
        0..2, or OpenSTA reporting an error (its first error line and the log path).
    """
    missing = timing_missing(tech)
    if missing:
        raise SynthError(missing)
    input_activity = activity if input_activity is None else input_activity
    for value in (activity, input_activity):
        if isinstance(value, bool) or not 0.0 <= float(value) <= 2.0:
            raise SynthError(f"switching activity must be 0 to 2 transitions per clock period, "
                             f"not {value!r}")
    clock, netlist, variables = _sta_design(netlist, top, tech, clock_ns, cache_dir)
    log = Path(log) if log is not None else netlist.parent / "power.log"
    variables.update(activity=float(activity), input_activity=float(input_activity))
    if clock_gates_shut:
        variables.update(design_loader=variables["load_design"], load_design=_GATES_SHUT,
                         clock_gates=clock_gates_shut)
    text, errors, status = _run_sta(_POWER_SCRIPT, variables, netlist.parent / "power_run.tcl",
                                    log)
    total = _POWER_LINE.search(text)
    if errors or status != 0 or total is None:
        detail = errors[0] if errors else (f"exit status {status}" if status
                                           else "no `Total` line in report_power")
        raise SynthError(f"OpenSTA power failed on `{top}` for {tech}: {detail} (log: {log})")
    internal, switching, leakage, whole = map(float, total.groups())
    return {"internal_w": internal, "switching_w": switching, "leakage_w": leakage,
            "total_w": whole, "clock_ns": clock, "activity": float(activity),
            "input_activity": float(input_activity)}
