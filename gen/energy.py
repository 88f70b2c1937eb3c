"""Per-action energies from the cell library: small characterisation circuits, OpenSTA power.

A later step counts actions in RTL runs (multiplies performed and gated, accumulator adds,
register bits written and held, mux selections) and multiplies the counts by the energies of
this module's table. The table per tech is committed data (``constraints/energy/<tech>.toml``,
read by :func:`energy_table`), so energy figures work where OpenSTA is absent;
``python -m sparsegen.gen.energy --tech sky130hd`` regenerates it (:func:`write_table`).

Method
------
Each action has a characterisation circuit: hand-written Verilog (so what is measured is
exactly the few lines shown in :data:`CIRCUITS`, with no generator in between), synthesized by
the designs' own flow (:func:`sparsegen.gen.synth.map_netlist`: ``constraints/synth.ys``, the
tech's liberty, ``abc -D`` at the clock) and given to OpenSTA's ``report_power``
(:func:`sparsegen.gen.synth.static_power`) at a stated uniform activity:

* activity ``a`` is OpenSTA's: transitions per clock period on a net, the same on every
  non-clock net of the circuit (``set_power_activity -global`` and ``-input``). Random data
  is ``a = 0.5`` (:data:`ACTIVITY`): each bit takes a fresh random value every cycle, so it
  changes in half the cycles. ``a = 0`` is data held. The clock toggles every clock pin twice a
  period (ideal clock: no clock tree).
* one action per cycle: every circuit does its action once a cycle, so its energy is
  ``E = (P_total - P_leakage) * T_clk - E_overhead``, in pJ, with ``T_clk`` the clock period.
* ``E_overhead`` removes the registers a circuit needs around the action but that a design
  counts as actions of their own: the operand registers that feed a multiplier, adder, mux or
  comparator (so their switching into the operator's inputs, the load the operator puts on
  them, stays in the operator's energy). They are priced at ``reg_bit_write`` (``a = 0.5``)
  or ``reg_bit_hold`` (``a = 0``) per bit, which are measured first.
* what an action includes: a multiply includes its ``2*w``-bit product register; an add
  includes its ``acc_width``-bit accumulator register; a mux selection and a comparison
  include no result register (they feed logic in the same stage); a register bit is one
  flip-flop with its D input from a port and its Q to an unloaded port.
* a clock-gated register row (``hw/sram.py``'s flip-flop memories, whose rows
  ``gen/synth.py`` gates with an ICG each): ``icg_idle`` is one ICG whose enable stays low, its
  clock pin toggling and nothing passing it (OpenSTA carries the clock through an ICG whatever
  its enable, so the circuit is measured with the gate held shut,
  ``constraints/energy/gates_shut.tcl``); ``icg_open`` is one ICG in a cycle it passes the
  clock to its row (its gated clock net to the row's clock pins included; the row's bits
  written are ``reg_bit_write`` each, removed as overhead). The circuit is a one-word register
  file of 32 bits (``regfile_1r1w_1x32``: ``reg32_en``'s Verilog under a gated name, so the
  flow puts an ICG in front of the 32 flip-flops).
* leakage is a separate term, power per um^2 of logic (:func:`leakage_w_per_um2`: OpenSTA's
  leakage of all circuits, from the liberty's cell leakage, over their cell area), to be
  multiplied by a design's area and run time.

What it ignores: glitches and real data statistics inside an operator (every internal net
toggles at ``a``, not at what the data would make it; OpenSTA 2.0.17 propagates nothing once a
global activity is set), wires (no placement: pin loads only), the clock tree, clock gating
other than the ICG rows' (a held register, or a ZVCG-gated one, still pays its clock pins),
data-dependent energy of the
multiplier (a zero operand is priced as random data unless the multiply is gated), and
other corners. A clock-gated row's enable is priced at random data too (``icg_open`` at
``a = 0.5``). Use the figures to compare designs on the same table, not as sign-off power.

The cross-check (tests/test_energy.py) compares OpenSTA's power of a whole design at the same
uniform activity with the sum of these action energies over its structure: ``dense-array`` 2x2
without ZVCG, sky130hd at 10 ns, activity 0.5: 4 multiplies, 4 accumulations and 253 other
flip-flops written give 81.5 pJ per cycle against OpenSTA's 93.2 pJ (0.87); the rest is logic no
action covers (control, the drain muxes, enable and clear gates, ABC's buffers).
"""

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from . import synth
from .cachefile import read_entry, write_entry
from .synth import SynthError, UnknownTechError

__all__ = ["ACTIVITY", "Circuit", "CIRCUITS", "EnergyTableError", "measure", "characterise",
           "write_table", "energy_table", "table_path", "flop_count", "icg_count",
           "leakage_w_per_um2", "main"]

_REPO = Path(__file__).resolve().parent.parent
TABLE_DIR = _REPO / "constraints" / "energy"
"""Where the committed tables live: ``<tech>.toml``."""

ACTIVITY = 0.5
"""Random data: transitions per clock period on every data net (OpenSTA's activity)."""

CLOCK_TRANSITIONS = 2.0
"""The clock's transitions per period (it rises and falls once)."""

COMMAND = "python -m sparsegen.gen.energy --tech {tech}"

ICG_CELLS = "*dlclkp*"
"""sky130hd's integrated clock-gating cells (``dlclkp_1``, the one ``clockgate`` picks), as a
pattern for OpenSTA (:func:`measure`'s ``gates_shut``)."""
"""How a table is regenerated (written into its provenance)."""


class EnergyTableError(SynthError, ValueError):
    """No energy table for a tech, or an unreadable one (one line naming the tech)."""


@dataclasses.dataclass(frozen=True)
class Circuit:
    """One characterisation circuit.

    Members
    -------
    action : str
        The action's name in the table (``mul8``, ``reg_bit_write``, ...).
    top : str
        Its Verilog module.
    verilog : str
        The circuit: a ``clk`` port, data ports, registers and the action's logic.
    activity : float
        The uniform activity it is measured at (:data:`ACTIVITY` or 0).
    actions : int
        Actions per cycle (the energy is divided by it).
    overhead : dict
        Action name -> count per cycle of registers that are not part of the action
        (subtracted at their own table energy).
    description : str
        What one action is, in a line.
    gates_shut : bool
        Measured with the circuit's clock gates held shut (:func:`measure`).
    in_leakage : bool
        Its area and leakage count in the table's leakage term (:func:`leakage_w_per_um2`).
        Not the clock-gated row's: it is one more register circuit (measured twice), and the
        term stays that of the operators and registers it was made of (with it, 0.4% higher).
    """

    action: str
    top: str
    verilog: str
    activity: float
    actions: int
    overhead: dict
    description: str
    gates_shut: bool = False
    in_leakage: bool = True


def _register(width: int, enable: bool) -> tuple[str, str]:
    top = f"reg{width}_{'en' if enable else 'plain'}"
    body = "if (en) q <= d;" if enable else "q <= d;"
    ports = "input en, " if enable else ""
    return top, f"""\
module {top}(input clk, {ports}input [{width - 1}:0] d, output reg [{width - 1}:0] q);
  always @(posedge clk) {body}
endmodule
"""


def _multiply(width: int, gated: bool) -> tuple[str, str]:
    top = f"mul{width}{'_gated' if gated else ''}"
    w, p = width - 1, 2 * width - 1
    if gated:
        # The ZVCG lane of hw/systolic.py: the product register keeps its value when an
        # operand is zero (or no step), and a flag remembers that it did.
        update = ("gated <= (a_r == 0) | (b_r == 0);\n"
                  "    if (step & (a_r != 0) & (b_r != 0)) p <= a_r * b_r;")
        extra, flag = "input step, ", "  reg gated;\n"
    else:
        update, extra, flag = "if (step) p <= a_r * b_r;", "input step, ", ""
    return top, f"""\
module {top}(input clk, {extra}input signed [{w}:0] a, input signed [{w}:0] b,
             output reg signed [{p}:0] p);
  reg signed [{w}:0] a_r, b_r;
{flag}  always @(posedge clk) begin
    a_r <= a; b_r <= b;
    {update}
  end
endmodule
"""


def _accumulate(width: int) -> tuple[str, str]:
    top = f"add{width}"
    w = width - 1
    return top, f"""\
module {top}(input clk, input en, input signed [{w}:0] x, output reg signed [{w}:0] acc);
  reg signed [{w}:0] x_r;
  always @(posedge clk) begin
    x_r <= x;
    if (en) acc <= acc + x_r;
  end
endmodule
"""


def _mux(ways: int, width: int) -> tuple[str, str]:
    top = f"mux{ways}x{width}"
    sel = max(1, math.ceil(math.log2(ways)))
    return top, f"""\
module {top}(input clk, input [{ways * width - 1}:0] d, input [{sel - 1}:0] s,
             output reg [{width - 1}:0] y);
  reg [{ways * width - 1}:0] d_r;
  reg [{sel - 1}:0] s_r;
  always @(posedge clk) begin
    d_r <= d; s_r <= s;
    y <= d_r[s_r * {width} +: {width}];
  end
endmodule
"""


def _compare(width: int) -> tuple[str, str]:
    # One slot of a top-k / priority selection: is |a| greater than |b|? (S2TA's DAP ranks
    # activations by magnitude.) Written as a signed magnitude comparison.
    top = f"cmp{width}"
    w = width - 1
    return top, f"""\
module {top}(input clk, input signed [{w}:0] a, input signed [{w}:0] b, output reg gt);
  reg signed [{w}:0] a_r, b_r;
  wire [{width}:0] ma = a_r[{w}] ? -{{a_r[{w}], a_r}} : {{a_r[{w}], a_r}};
  wire [{width}:0] mb = b_r[{w}] ? -{{b_r[{w}], b_r}} : {{b_r[{w}], b_r}};
  always @(posedge clk) begin
    a_r <= a; b_r <= b;
    gt <= ma > mb;
  end
endmodule
"""


_REG_BITS = 32


def _circuits() -> tuple[Circuit, ...]:
    circuits = []
    top, v = _register(_REG_BITS, enable=False)
    circuits.append(Circuit("reg_bit_write", top, v, ACTIVITY, _REG_BITS, {},
                            "one flip-flop written with random data (its clock included)"))
    top, v = _register(_REG_BITS, enable=True)
    circuits.append(Circuit("reg_bit_hold", top, v, 0.0, _REG_BITS, {},
                            "one enabled flip-flop holding its value: its clock pins only"))
    for width in (8, 16):
        top, v = _multiply(width, gated=False)
        circuits.append(Circuit(f"mul{width}", top, v, ACTIVITY, 1,
                                {"reg_bit_write": 2 * width},
                                f"signed {width}x{width} multiply into a {2 * width}-bit "
                                "product register, random operands"))
        top, v = _multiply(width, gated=True)
        circuits.append(Circuit(f"mul{width}_gated", top, v, 0.0, 1,
                                {"reg_bit_hold": 2 * width},
                                f"zero-value gated {width}x{width} multiply: operands held, "
                                f"{2 * width}-bit product register and flag not written "
                                "(their clock only)"))
    for width in (32, 24):
        top, v = _accumulate(width)
        circuits.append(Circuit(f"add{width}", top, v, ACTIVITY, 1, {"reg_bit_write": width},
                                f"{width}-bit add into a {width}-bit accumulator register, "
                                "random addend"))
    top, v = _register(_REG_BITS, enable=True)
    top, v = "regfile_1r1w_1x32", v.replace(top, "regfile_1r1w_1x32")
    circuits.append(Circuit("icg_idle", top, v, 0.0, 1, {},
                            "one clock gate (ICG) of a register row, enable low: its clock pin "
                            "toggles, nothing passes", gates_shut=True, in_leakage=False))
    circuits.append(Circuit("icg_open", top, v, ACTIVITY, 1, {"reg_bit_write": _REG_BITS},
                            "one clock gate (ICG) passing the clock to its row: the gate and "
                            "its gated clock net (the row's bits written are reg_bit_write)",
                            in_leakage=False))
    top, v = _mux(8, 8)
    # The result register is removed too: a selection feeds logic in the same stage.
    circuits.append(Circuit("mux8x8", top, v, ACTIVITY, 1, {"reg_bit_write": 8 * 8 + 3 + 8},
                            "8:1 selection of 8 bits (BZ = 8), random data and select; no "
                            "result register"))
    top, v = _compare(8)
    circuits.append(Circuit("cmp8", top, v, ACTIVITY, 1, {"reg_bit_write": 16},
                            "magnitude comparison |a| > |b| of two signed 8-bit values (a "
                            "top-k / priority slot); result bit register included"))
    return tuple(circuits)


CIRCUITS = _circuits()
"""Every characterisation circuit, registers first (the others subtract them)."""

def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def measure(verilog: str, top: str, tech: str, *, activity: float = ACTIVITY,
            clock_ns: float | None = None, cache_dir: Path | None = None,
            use_cache: bool = True, gates_shut: bool = False) -> dict:
    """Map ``verilog`` with the designs' flow and report its power at a uniform ``activity``;
    with ``gates_shut``, the integrated clock gates (:data:`ICG_CELLS`) held shut.

    Cached as JSON in ``<cache>/energy/<sha256>.json``, keyed by everything that determines the
    figure (Verilog, top, tech, clock, activity, the Yosys and OpenSTA scripts and versions,
    the liberty contents).

    Returns
    -------
    dict
        ``area_um2``, ``cell_types`` (cell -> count), ``flops`` (:func:`flop_count`),
        ``internal_w``, ``switching_w``, ``leakage_w``, ``total_w``, ``clock_ns``,
        ``activity``, ``cached``.

    Raises
    ------
    SynthError
        Timing/power cannot run for ``tech`` (why), or Yosys or OpenSTA failed.
    """
    missing = synth.timing_missing(tech)
    if missing:
        raise SynthError(missing)
    clock = None if clock_ns is None else synth.check_clock_ns(clock_ns)
    root = Path(cache_dir) if cache_dir is not None else synth.cache_root()
    constraints = _REPO / "constraints"
    key = _key(verilog, top, tech, clock, float(activity), synth.yosys_version(),
               synth.sta_version(),
               [(p.name, synth.file_digest(p)) for p in synth.liberty_sources(tech)],
               [(constraints / f).read_text()
                for f in ("synth.ys", "clock.sdc", "load_design.tcl", "energy/power.tcl",
                          "techs.toml")],
               *([ICG_CELLS, (constraints / "energy/gates_shut.tcl").read_text()]
                 if gates_shut else []))
    folder = root / "energy"
    cached = folder / f"{key}.json"
    entry = read_entry(cached) if use_cache else None
    if entry is not None:
        return {**entry, "cached": True}
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder, prefix=f"{key[:12]}-"))
    mapped = synth.map_netlist(verilog, top, tech, work, clock_ns=clock, cache_dir=root)
    power = synth.static_power(mapped["netlist"], top, tech, clock, activity=activity,
                               clock_gates_shut=ICG_CELLS if gates_shut else None,
                               cache_dir=root)
    result = {"top": top, "area_um2": mapped["area_um2"], "cell_types": mapped["cell_types"],
              "flops": flop_count(mapped["cell_types"]), **power}
    shutil.rmtree(work, ignore_errors=True)
    write_entry(cached, result)
    return {**result, "cached": False}


_FLOP = re.compile(r"__(?:s?e?df|dl(?!clkp))[a-z]*_\d+$")
_ICG = re.compile(r"__s?dlclkp_\d+$")


def flop_count(cell_types: dict) -> int:
    """Flip-flops (and latches) among ``cell_types``, by sky130hd's cell naming (``dfxtp_1``,
    ``dfrtp_1``, ``edfxtp_1``, ``sdf...``, latches ``dl...``; not the clock gates
    ``dlclkp``): one bit each."""
    return sum(n for cell, n in cell_types.items() if _FLOP.search(cell))


def icg_count(cell_types: dict) -> int:
    """Integrated clock gates among ``cell_types`` (sky130hd's ``dlclkp``, ``sdlclkp``)."""
    return sum(n for cell, n in cell_types.items() if _ICG.search(cell))


def leakage_w_per_um2(measured: dict) -> float:
    """Leakage power per um^2 of logic: the circuits' OpenSTA leakage over their area."""
    return (sum(m["leakage_w"] for m in measured.values())
            / sum(m["area_um2"] for m in measured.values()))


def characterise(tech: str = "sky130hd", *, clock_ns: float | None = None,
                 cache_dir: Path | None = None, only: tuple[str, ...] | None = None,
                 progress=None) -> dict:
    """Measure every circuit of :data:`CIRCUITS` and turn the powers into pJ per action.

    Parameters
    ----------
    tech : str
        A liberty tech with OpenSTA available.
    clock_ns : float, optional
        Clock period; default the tech's.
    only : tuple of str, optional
        Measure only these actions (and the registers they subtract).
    progress : callable, optional
        Called with each action name before it is measured.

    Returns
    -------
    dict
        The table: ``provenance``, ``leakage`` and ``actions`` (name -> ``pj``,
        ``description``, ``activity``, ``actions_per_cycle``, ``overhead``, ``area_um2``,
        ``total_mw``), as :func:`write_table` writes it.
    """
    wanted = None
    if only is not None:
        wanted = set(only)
        for c in CIRCUITS:
            if c.action in wanted:
                wanted |= set(c.overhead)
    measured, actions = {}, {}
    clock = None
    for c in CIRCUITS:
        if wanted is not None and c.action not in wanted:
            continue
        if progress:
            progress(c.action)
        m = measure(c.verilog, c.top, tech, activity=c.activity, clock_ns=clock_ns,
                    cache_dir=cache_dir, gates_shut=c.gates_shut)
        measured[c.action], clock = m, m["clock_ns"]
        dynamic_pj = (m["total_w"] - m["leakage_w"]) * m["clock_ns"] * 1e3
        removed = sum(actions[name]["pj"] * count for name, count in c.overhead.items())
        actions[c.action] = {
            "pj": round((dynamic_pj - removed) / c.actions, 6),
            "description": c.description,
            "activity": c.activity,
            "actions_per_cycle": c.actions,
            "overhead": c.overhead,
            "circuit": c.top,
            "area_um2": m["area_um2"],
            "total_mw": round(m["total_w"] * 1e3, 6),
        }
    liberty = synth.liberty_sources(tech)
    leaking = {c.action: measured[c.action] for c in CIRCUITS
               if c.in_leakage and c.action in measured}
    return {
        "provenance": {
            "tech": tech,
            "liberty": [p.name for p in liberty],
            "liberty_sha256": [synth.file_digest(p) for p in liberty],
            "sta_version": synth.sta_version(),
            "yosys_version": synth.yosys_version(),
            "clock_ns": clock,
            "activity": ACTIVITY,
            "clock_transitions_per_period": CLOCK_TRANSITIONS,
            "date": datetime.date.today().isoformat(),
            "command": COMMAND.format(tech=tech),
            "method": ("E = (P_total - P_leakage) x T_clk / actions per cycle - overhead "
                       "registers; OpenSTA report_power at a uniform activity (transitions "
                       "per clock period on every non-clock net), ideal clock, no wires"),
        },
        "leakage": {"w_per_um2": float(f"{leakage_w_per_um2(leaking):.6e}"),
                    "area_um2": round(sum(m["area_um2"] for m in leaking.values()), 4)},
        "actions": actions,
    }


def table_path(tech: str) -> Path:
    """Where ``tech``'s committed table lives: ``constraints/energy/<tech>.toml``."""
    return TABLE_DIR / f"{tech}.toml"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml(table: dict) -> str:
    lines = [
        "# Per-action energies (pJ) characterised on this tech's liberty by gen/energy.py:",
        "# small circuits synthesized by the designs' flow, OpenSTA report_power at a uniform",
        "# activity (transitions per clock period on every non-clock net; 0.5 = random data),",
        "# ideal clock (its pins toggle twice a period), no wires, dynamic power only; leakage is",
        "# the separate [leakage] term (W per um^2 of logic). Generated: do not edit by hand;",
        f"# regenerate with `{table['provenance']['command']}`.",
        "",
    ]
    for section in ("provenance", "leakage"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in table[section].items()]
        lines.append("")
    for name, entry in table["actions"].items():
        lines.append(f"[actions.{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        lines.append("")
    return "\n".join(lines)


def write_table(tech: str = "sky130hd", path: Path | None = None, **options) -> Path:
    """Characterise ``tech`` (:func:`characterise`) and write its table; returns the path."""
    table = characterise(tech, **options)
    path = Path(path) if path is not None else table_path(tech)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_toml(table))
    return path


def energy_table(tech: str) -> dict:
    """The committed per-action energy table of ``tech`` (no OpenSTA needed).

    Returns
    -------
    dict
        ``provenance``, ``leakage`` (``w_per_um2``) and ``actions`` (name -> entry with
        ``pj``), as written by :func:`write_table`.

    Raises
    ------
    UnknownTechError
        ``tech`` is not a known tech.
    EnergyTableError
        ``tech`` has no table (one line naming it and the command that makes one).
    """
    if tech not in synth.TECHS:
        raise UnknownTechError(f"unknown tech `{tech}` (choose from {', '.join(synth.TECHS)})")
    path = table_path(tech)
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in TABLE_DIR.glob("*.toml"))) or "none"
        raise EnergyTableError(f"no energy table for tech `{tech}` (tables: {have}); make one "
                               f"with `{COMMAND.format(tech=tech)}`")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise EnergyTableError(f"cannot read the energy table {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m sparsegen.gen.energy --tech TECH [--clock-ns T] [-o FILE]``: regenerate a
    table and print it."""
    parser = argparse.ArgumentParser(prog="python -m sparsegen.gen.energy",
                                     description="characterise per-action energies")
    parser.add_argument("--tech", default="sky130hd")
    parser.add_argument("--clock-ns", type=float, default=None)
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="where to write (default constraints/energy/<tech>.toml)")
    args = parser.parse_args(argv)
    try:
        path = write_table(args.tech, args.output, clock_ns=args.clock_ns,
                           progress=lambda name: print(f"  {name}", file=sys.stderr))
    except SynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = energy_table(args.tech) if args.output is None else tomllib.loads(path.read_text())
    prov = table["provenance"]
    print(f"{path}: {prov['tech']} ({', '.join(prov['liberty'])}), clock {prov['clock_ns']} ns, "
          f"activity {prov['activity']} (clock {prov['clock_transitions_per_period']:g} "
          f"transitions per period), {prov['sta_version']}, {prov['yosys_version']}")
    for name, entry in table["actions"].items():
        print(f"  {name:14s} {entry['pj']:10.4f} pJ  {entry['description']}")
    print(f"  leakage        {table['leakage']['w_per_um2']:.3e} W/um^2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
