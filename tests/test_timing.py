"""Static timing (OpenSTA) in synthesis: a hand-checked circuit, the `synth` timing fields, bad
clock periods, and what happens without OpenSTA."""

import gzip
import json
import math
import re

import pytest
from rich.console import Console

from sparsegen.gen import bench_timing, synth
from sparsegen.gen.cli import main
from sparsegen.gen.registry import DESIGNS, get_design, make_config
from sparsegen.gen.synth import (
    ClockError,
    SynthError,
    check_clock_ns,
    liberty_sources,
    static_timing,
    synthesize,
    timing_missing,
)

from helpers import generated_design

pytestmark = pytest.mark.synth

requires_sta = pytest.mark.skipif(timing_missing("sky130hd") is not None,
                                  reason=timing_missing("sky130hd") or "")

_PREFIX = "sky130_fd_sc_hd__"

# The known circuit: launch flip-flop -> inverter -> NAND2 (other input a port) -> buffer ->
# capture flip-flop, every gate a sky130hd liberty cell instantiated by hand.
_CHAIN = f"""\
module chain(clk, d, en, q);
  input clk, d, en;
  output q;
  wire q1, n1, n2, n3;
  {_PREFIX}dfxtp_1 first (.CLK(clk), .D(d), .Q(q1));
  {_PREFIX}inv_1 g1 (.A(q1), .Y(n1));
  {_PREFIX}nand2_1 g2 (.A(n1), .B(en), .Y(n2));
  {_PREFIX}buf_1 g3 (.A(n2), .X(n3));
  {_PREFIX}dfxtp_1 last (.CLK(clk), .D(n3), .Q(q));
endmodule
"""


# --- A small reader of the liberty's NLDM tables: the oracle for the known circuit ---------------

def _groups(text: str, kind: str):
    """(argument, body) of every `kind ("argument") { body }` group in `text`."""
    for match in re.finditer(rf"\b{kind}\s*\(\s*\"?([^\")]*)\"?\s*\)\s*\{{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        yield match.group(1), text[match.end():i - 1]


def _attr(body: str, name: str) -> str | None:
    match = re.search(rf"\b{name}\s*:\s*\"?([^\";]*)\"?\s*;", body)
    return match.group(1) if match else None


def _numbers(body: str, name: str) -> list[float]:
    match = re.search(rf"\b{name}\s*\(([^)]*)\)", body)
    return [float(x) for x in re.findall(r"-?[\d.]+(?:e-?\d+)?", match.group(1))]


class _Lib:
    def __init__(self, text: str):
        self.templates = {name: (_attr(body, "variable_1"), _attr(body, "variable_2"))
                          for name, body in _groups(text, "lu_table_template")}
        self.cells = {}
        for name in ("dfxtp_1", "inv_1", "nand2_1", "buf_1"):
            start = text.index(f'cell ("{_PREFIX}{name}")')
            self.cells[name] = next(_groups(text[start:], "cell"))[1]

    def pin(self, cell: str, pin: str) -> str:
        return next(body for name, body in _groups(self.cells[cell], "pin") if name == pin)

    def cap(self, cell: str, pin: str, edge: str) -> float:
        """The load a pin puts on a rising or falling net (OpenSTA takes the edge's value)."""
        return float(_attr(self.pin(cell, pin), f"{edge}_capacitance"))

    def table(self, cell: str, pin: str, related: str, timing_type: str | None, table: str,
              **variables: float) -> float:
        """Look `table` up for the given template variables, bilinearly, extrapolating beyond
        the first and last index like OpenSTA."""
        for _, timing in _groups(self.pin(cell, pin), "timing"):
            if _attr(timing, "related_pin") != related or (
                    timing_type and _attr(timing, "timing_type") != timing_type):
                continue
            template, body = next((t, b) for t, b in _groups(timing, table))
            var1, var2 = self.templates[template]
            x, y = variables[var1], variables[var2]
            index1, index2 = _numbers(body, "index_1"), _numbers(body, "index_2")
            values = _numbers(body, "values")
            grid = [values[r * len(index2):(r + 1) * len(index2)] for r in range(len(index1))]
            return _bilinear(index1, index2, grid, x, y)
        raise KeyError(f"{cell}/{pin} has no {timing_type or ''} timing from {related}")


def _bilinear(xs, ys, grid, x, y):
    def cell(axis, v):      # left index of the bracketing pair, clamped: extrapolate at ends
        i = max(0, min(len(axis) - 2, sum(a <= v for a in axis) - 1))
        return i, (v - axis[i]) / (axis[i + 1] - axis[i])
    i, tx = cell(xs, x)
    j, ty = cell(ys, y)
    return ((1 - tx) * (1 - ty) * grid[i][j] + tx * (1 - ty) * grid[i + 1][j]
            + (1 - tx) * ty * grid[i][j + 1] + tx * ty * grid[i + 1][j + 1])


def _hand_critical_path(lib: _Lib) -> float:
    """clock-to-Q + the three gates + setup, for Q rising and for Q falling; the worse one.

    Ideal clock (slew 0 at both CLK pins), no wires (a net's load is its pins' capacitance for
    the net's edge), NLDM tables indexed by (input transition, output load) and the setup table
    by (CLK transition, D transition), as the templates say.
    """
    # (cell, input pin, output pin, inverting, what the output drives: cell, pin)
    gates = [("inv_1", "A", "Y", True, ("nand2_1", "A")),
             ("nand2_1", "A", "Y", True, ("buf_1", "A")),
             ("buf_1", "A", "X", False, ("dfxtp_1", "D"))]
    worst = 0.0
    for edge in ("rise", "fall"):
        load = lib.cap("inv_1", "A", edge)
        at = {"input_net_transition": 0.0, "total_output_net_capacitance": load}
        arrival = lib.table("dfxtp_1", "Q", "CLK", "rising_edge", f"cell_{edge}", **at)
        slew = lib.table("dfxtp_1", "Q", "CLK", "rising_edge", f"{edge}_transition", **at)
        for cell, pin_in, pin_out, inverting, (next_cell, next_pin) in gates:
            edge = {"rise": "fall", "fall": "rise"}[edge] if inverting else edge
            at = {"input_net_transition": slew,
                  "total_output_net_capacitance": lib.cap(next_cell, next_pin, edge)}
            arrival += lib.table(cell, pin_out, pin_in, None, f"cell_{edge}", **at)
            slew = lib.table(cell, pin_out, pin_in, None, f"{edge}_transition", **at)
        setup = lib.table("dfxtp_1", "D", "CLK", "setup_rising", f"{edge}_constraint",
                          related_pin_transition=0.0, constrained_pin_transition=slew)
        worst = max(worst, arrival + setup)
    return worst


@requires_sta
def test_known_circuit_matches_the_liberty_tables(tmp_path):
    source, = liberty_sources("sky130hd")
    with gzip.open(source, "rt") as f:
        lib = _Lib(f.read())
    # The tables the oracle reads are the ones the templates say (a format check, not a value).
    assert lib.templates["del_1_7_7"] == ("input_net_transition",
                                          "total_output_net_capacitance")
    assert lib.templates["vio_3_3_1"] == ("related_pin_transition",
                                          "constrained_pin_transition")
    expected = _hand_critical_path(lib)
    netlist = tmp_path / "chain.v"
    netlist.write_text(_CHAIN)
    timing = static_timing(netlist, "chain", "sky130hd", 10.0, cache_dir=tmp_path)
    # The oracle's stages on the worse edge (Q falls): clock-to-Q 0.27156 (load 0.002214 pF,
    # inv_1 A fall capacitance), inv_1 rise 0.03768 (input slew 0.02504, load 0.002375),
    # nand2_1 fall 0.03485, buf_1 fall 0.07264, setup of a falling D 0.11073 (D slew 0.02155):
    # 0.52746 ns. Q rising gives 0.47396 ns.
    assert expected == pytest.approx(0.52746, abs=1e-5)
    # OpenSTA prints 4 decimals and interpolates the same tables bilinearly: 0.2 ps tolerance.
    assert timing["critical_path_ns"] == pytest.approx(expected, abs=0.0002)
    assert timing["slack_ns"] == pytest.approx(10.0 - expected, abs=0.0002)
    assert timing["fmax_mhz"] == pytest.approx(1000 / timing["critical_path_ns"], abs=0.01)
    assert timing["critical_path"] == {"start": "first", "start_kind": "register",
                                       "end": "last", "end_kind": "register", "blocks": [""]}


# A net with fanout: the first inverter drives four NAND2s, whose outputs meet in a NAND4 (a
# statistical wire-load model prices a net by its fanout, so fanout is where it would show).
_FANOUT = f"""\
module fanout(clk, d, e0, e1, e2, e3, q);
  input clk, d, e0, e1, e2, e3;
  output q;
  wire q1, n1, a0, a1, a2, a3, y;
  {_PREFIX}dfxtp_1 first (.CLK(clk), .D(d), .Q(q1));
  {_PREFIX}inv_1 g1 (.A(q1), .Y(n1));
  {_PREFIX}nand2_1 h0 (.A(n1), .B(e0), .Y(a0));
  {_PREFIX}nand2_1 h1 (.A(n1), .B(e1), .Y(a1));
  {_PREFIX}nand2_1 h2 (.A(n1), .B(e2), .Y(a2));
  {_PREFIX}nand2_1 h3 (.A(n1), .B(e3), .Y(a3));
  {_PREFIX}nand4_1 g2 (.A(a0), .B(a1), .C(a2), .D(a3), .Y(y));
  {_PREFIX}dfxtp_1 last (.CLK(clk), .D(y), .Q(q));
endmodule
"""


def _sta_with(netlist, liberty, extra: str, tmp_path) -> dict:
    """OpenSTA on `netlist` as `static_timing` runs it, but reading `liberty` and running the
    Tcl `extra` after the constraints."""
    clock, netlist, variables = synth._sta_design(netlist, "fanout", "sky130hd", 10.0, tmp_path)
    template = tmp_path / f"sta_{len(extra)}.tcl"
    template.write_text(synth._STA_SCRIPT.read_text().replace(
        "source $load_design\n", f"source $load_design\n{extra}\n"))
    text, errors, status = synth._run_sta(template, {**variables, "liberty": liberty},
                                          tmp_path / "run.tcl", tmp_path / "sta.log")
    assert not errors and status == 0
    return synth._parse_report(text, clock)


@requires_sta
def test_wire_free_liberty_times_as_zero_net_loads(tmp_path):
    """OpenSTA reads the liberty without its default wire-load model (`_wire_free`): the same
    figure as the original liberty with `set_load 0` on every net (the flow's earlier way, slow
    on big netlists), and not the figure the model gives."""
    original = synth._liberty_files("sky130hd", synth._techs()["sky130hd"], tmp_path)
    stripped = [synth._wire_free(path, tmp_path / "sta") for path in original]
    assert stripped != original and b"default_wire_load :" in original[0].read_bytes()
    assert b"default_wire_load :" not in stripped[0].read_bytes()
    # Once per content: the second call finds the copy.
    assert [synth._wire_free(path, tmp_path / "sta") for path in original] == stripped
    netlist = tmp_path / "fanout.v"
    netlist.write_text(_FANOUT)
    flow = static_timing(netlist, "fanout", "sky130hd", 10.0, cache_dir=tmp_path)
    zero = _sta_with(netlist, original, "set_load 0 [get_nets -hierarchical *]", tmp_path)
    model = _sta_with(netlist, original, "", tmp_path)
    assert flow["critical_path_ns"] == zero["critical_path_ns"]
    assert flow["critical_path"] == zero["critical_path"]
    # The model adds wire capacitance on every net: a longer path (this test would pass
    # vacuously if the model were not active on the original liberty).
    assert model["critical_path_ns"] > flow["critical_path_ns"] + 0.01


def test_wire_free_leaves_a_liberty_without_a_default_alone(tmp_path):
    plain = tmp_path / "plain.lib"
    plain.write_text('library (x) {\n  default_wire_load_mode : top ;\n}\n')
    assert synth._wire_free(plain, tmp_path / "sta") == plain
    named = tmp_path / "named.lib"
    named.write_text('library (x) {\n  default_wire_load : "Small" ;\n'
                     '  default_wire_load_selection : "sel" ;\n  time_unit : "1ns" ;\n}\n')
    copy = synth._wire_free(named, tmp_path / "sta")
    # Each dropped line becomes a comment, so OpenSTA's line numbers still point into the file.
    assert copy.read_text().splitlines() == [
        "library (x) {", "/* dropped by sparsegen: no wire loads */",
        "/* dropped by sparsegen: no wire loads */", '  time_unit : "1ns" ;', "}"]


@pytest.mark.parametrize("value", [0, -1, "abc", math.nan, math.inf, 0.001, 1e6, True])
def test_bad_clock_period(value):
    with pytest.raises(ClockError, match=r"^clock period must be a number of ns from 0\.01 to "
                                         r"10000, not "):
        check_clock_ns(value)


@pytest.mark.parametrize("value, message", [
    ("0", r"--clock-ns: clock period must be a number of ns from 0\.01 to 10000, not 0\.0"),
    ("-3", r"--clock-ns: clock period must be a number of ns from 0\.01 to 10000, not -3\.0"),
    ("1e9", r"--clock-ns: clock period must be .* not 1000000000\.0"),
    ("nan", r"--clock-ns: clock period must be .* not nan"),
    ("ten", r"argument --clock-ns: invalid float value: 'ten'"),
])
def test_bad_clock_ns_is_one_line(capsys, value, message):
    assert main(["synth", "dbb-pe", "--tech", "sky130hd", "--clock-ns", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match(rf"^sparsegen: error: {message}", err)


def test_generic_has_no_timing(cache, capsys):
    pe = generated_design(block_size=4, nnz=2)
    result = synthesize(pe.verilog, pe.top, "generic")
    assert result.clock_ns is None and result.critical_path_ns is None
    assert result.timing_missing == ("`generic` gates have no delays: timing needs a liberty "
                                     "tech (osu018, sky130hd, asap7)")
    with pytest.raises(ClockError, match="^a clock period needs a liberty tech: `generic` "):
        synthesize(pe.verilog, pe.top, "generic", clock_ns=5)
    with pytest.raises(SynthError, match="^`generic` gates have no delays: "):
        synthesize(pe.verilog, pe.top, "generic", timing=True)
    assert main(["synth", "dbb-pe", "--timing"]) == 2
    assert capsys.readouterr().err == f"sparsegen: error: --timing: {result.timing_missing}\n"
    assert main(["synth", "dbb-pe", "--clock-ns", "5"]) == 2
    assert capsys.readouterr().err == ("sparsegen: error: --clock-ns needs a liberty tech "
                                       "(osu018, sky130hd, asap7): `generic` gates have no "
                                       "delays\n")


def test_without_opensta(cache, monkeypatch, capsys):
    monkeypatch.setenv("SPARSEGEN_STA", "no-such-sta-binary")
    pe = generated_design(block_size=4, nnz=2)
    result = synthesize(pe.verilog, pe.top, "sky130hd")
    assert result.area_um2 > 0 and result.clock_ns == 10.0
    assert (result.critical_path_ns, result.fmax_mhz, result.slack_ns, result.critical_path,
            result.sta_version) == (None, None, None, None, None)
    assert result.timing_missing == ("OpenSTA (`no-such-sta-binary`) not found: install "
                                     "Debian's opensta (`make setup` as root) or set "
                                     "SPARSEGEN_STA to the binary")
    with pytest.raises(SynthError, match="^OpenSTA .* not found"):
        synthesize(pe.verilog, pe.top, "sky130hd", timing=True)
    # The table says why in one line; --timing is a one-line error.
    assert main(["synth", "dbb-pe", "-p", "block_size=4", "-p", "nnz=2",
                 "--tech", "sky130hd"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "timing" in line] == [
        f"no timing: {result.timing_missing}"]
    assert main(["synth", "dbb-pe", "--tech", "sky130hd", "--timing"]) == 2
    assert capsys.readouterr().err == f"sparsegen: error: --timing: {result.timing_missing}\n"


def test_without_opensta_on_path(cache, monkeypatch, tmp_path):
    monkeypatch.delenv("SPARSEGEN_STA", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert timing_missing("sky130hd").startswith("OpenSTA (`sta`) not found")


@requires_sta
@pytest.mark.parametrize("design, params, blocks", [
    ("dense-array", {"rows": 2, "cols": 2}, r"core(/\w+)*"),
    ("dbb-pe", {}, r"|lanes|mux|tree"),
])
def test_synth_json_has_timing(cache, capsys, design, params, blocks):
    args = [f"-p{k}={v}" for k, v in params.items()]
    assert main(["synth", design, *args, "--tech", "sky130hd", "--timing", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    config = make_config(get_design(design), params)
    assert report["multipliers"] == config.multipliers
    assert report["sram_area_um2"] == 0.0 and report["area_um2"] > 0
    assert report["clock_ns"] == 10.0 and report["sta_version"].startswith("OpenSTA")
    assert report["timing_missing"] is None
    path = report["critical_path"]
    # A multiply-accumulate with a 32-bit ripple accumulator: between 2 and 40 ns in sky130hd.
    assert 2 < report["critical_path_ns"] < 40
    assert report["slack_ns"] == pytest.approx(10.0 - report["critical_path_ns"], abs=1e-6)
    assert report["fmax_mhz"] == pytest.approx(1000 / report["critical_path_ns"], abs=0.01)
    assert path["start_kind"] in ("register", "input") and path["end_kind"] == "register"
    assert path["end"].endswith("_reg") and all(re.fullmatch(blocks, b) for b in path["blocks"])
    # The end register sits in the last block the path runs through.
    assert path["end"].rpartition("/")[0] == path["blocks"][-1]


@requires_sta
def test_clock_target_is_part_of_the_cache_key(cache):
    pe = generated_design(block_size=4, nnz=2)
    slow = synthesize(pe.verilog, pe.top, "sky130hd", clock_ns=20)
    fast = synthesize(pe.verilog, pe.top, "sky130hd", clock_ns=2)
    again = synthesize(pe.verilog, pe.top, "sky130hd", clock_ns=2)
    assert not slow.cached and not fast.cached and again.cached
    assert (slow.clock_ns, fast.clock_ns) == (20.0, 2.0)
    assert slow.slack_ns == pytest.approx(20.0 - slow.critical_path_ns, abs=1e-6)
    assert again.critical_path == fast.critical_path




@requires_sta
@pytest.mark.slow       # synthesizes every design at its defaults (minutes cold)
def test_every_design_meets_the_timing_rule_at_its_defaults(capsys):
    """The 1.25x rule, for every registered design (`sparsegen bench timing` prints the same
    table): no registered design's critical path exceeds 1.25x that of dense-array with the
    same data and accumulator widths."""
    report = bench_timing.run("sky130hd")
    bench_timing.print_table(Console(width=200), report)
    print(capsys.readouterr().out)
    assert {r["design"] for r in report["rows"]} == set(DESIGNS)
    slow = [(r["design"], r["ratio"]) for r in report["rows"] if r["verdict"] == "SLOW"]
    assert not slow, f"over {bench_timing.RULE}x dense-array: {slow}"
