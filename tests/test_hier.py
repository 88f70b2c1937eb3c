"""Hierarchical generation: repeated blocks emitted once, and the area that gives equal to a flat
synthesis of the same Verilog."""

import re
from io import StringIO

import pytest
from amaranth import Elaboratable, Module, Signal
from rich.console import Console

from sparsegen.gen import bench_tools, synth
from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design, make_config
from sparsegen.hw.systolic import delayed
from sparsegen.sim.verilator import lint

from helpers import simulate


def _generated(name, **params):
    design = get_design(name)
    return generate(design, make_config(design, params))


def _modules(verilog: str) -> list[str]:
    return [m.strip().lstrip("\\") for m in re.findall(r"^module (\\\S+ |\w+)", verilog, re.M)]


def _tied_ports(verilog: str, top: str) -> list[str]:
    """Ports of instances of shared modules (every module but ``top``) tied to a constant or
    left open, as ``"<module> <instance>.<port>: <value>"``."""
    tied = []
    for module in _modules(verilog):
        if module == top:
            continue
        pattern = rf"^\s*\\{re.escape(module)}\s+(\w+) \((.*?)\);"
        for instance, body in re.findall(pattern, verilog, re.M | re.S):
            tied += [f"{module} {instance}.{port}: {value.strip() or 'open'}"
                     for port, value in re.findall(r"\.(\w+)\(([^()]*)\)", body)
                     if not value.strip() or re.search(r"\d+'[bhdo]", value)]
    return tied


def _instances(verilog: str, module: str) -> int:
    return len(re.findall(rf"^\s*\\{re.escape(module)}\s+\w+ \(", verilog, re.M))


@pytest.mark.parametrize("name, params, shared", [
    ("dense-array", {"rows": 5, "cols": 3}, {"cell": 5, "column": 3}),
    ("s2ta", {"variant": "w", "rows": 3, "cols": 2}, {"cell": 3, "column": 2}),
    ("s2ta", {"variant": "aw", "rows": 4, "cols": 2}, {"cell": 4, "column": 2}),
    ("highlight", {"rows": 2, "cols": 3}, {"cell": 2, "column": 3}),
])
def test_each_repeated_block_is_one_module(name, params, shared):
    """One module per distinct block, instantiated where it occurs; the top comes first.

    No instance of a shared module has a port tied to a constant or left open, so one module
    per distinct block loses nothing a flat synthesis could propagate into an edge cell (the
    premise of `bench tools`' account of the hier/flat difference). An array that ties an edge
    cell's port must give such cells a module of their own (a `key` naming the tied ports).
    """
    generated = _generated(name, **params)
    top = generated.top
    modules = _modules(generated.verilog)
    assert modules[0] == top
    assert len(modules) == len(set(modules))
    for block, count in shared.items():
        assert f"{top}.{block}" in modules
        assert _instances(generated.verilog, f"{top}.{block}") == count
    assert _tied_ports(generated.verilog, top) == []
    assert generated.verilog == _generated(name, **params).verilog


def test_a_one_row_array_still_shares():
    generated = _generated("dense-array", rows=1, cols=4)
    assert _instances(generated.verilog, "dense_array.column") == 4


def test_skew_is_shared_delay_lines(tmp_path):
    """The edge skew: delays of SHARED_DELAY (16) and more from one delay-line module per
    (width, power of two), one instance per such bit of r and c, the rest registers in the
    core; R(R-1)/2 + C(C-1)/2 registers in all."""
    rows, cols = 40, 18
    generated = _generated("dense-array", rows=rows, cols=cols)
    modules = [m for m in _modules(generated.verilog) if ".delay" in m]
    assert sorted(modules) == ["dense_array.delay16_w8", "dense_array.delay32_w8"]
    lines = {n: _instances(generated.verilog, f"dense_array.delay{n}_w8") for n in (16, 32)}
    assert lines == {16: (32 - 16) + (cols - 16), 32: rows - 32}
    core = generated.verilog[generated.verilog.index("module \\dense_array.core"):]
    core = core[:core.index("endmodule")]
    inline = set(re.findall(r"\b((?:row|col)\d+_skew\d+)\b", core))
    assert len(inline) == sum(r % 16 for r in range(rows)) + sum(c % 16 for c in range(cols))
    assert len(inline) + 16 * lines[16] + 32 * lines[32] == (rows * (rows - 1) // 2
                                                            + cols * (cols - 1) // 2)
    path = tmp_path / f"{generated.top}.v"
    path.write_text(generated.verilog)
    lint(path, generated.top)                       # the shared lines are lint-clean too


def test_small_arrays_keep_their_skew_registers():
    """Up to 16 rows and columns no delay line is shared: the Verilog the benches synthesize
    stayed as it was."""
    assert not [m for m in _modules(_generated("dense-array", rows=16, cols=16).verilog)
                if ".delay" in m]


class _Delayed(Elaboratable):
    def __init__(self, depth):
        self.depth, self.x, self.y = depth, Signal(8), Signal(8)
        self.ticks = Signal(8)          # a sync domain even at depth 0

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(delayed(m, platform, self.x, self.depth, "t"))
        m.d.sync += self.ticks.eq(self.ticks + 1)
        return m


@pytest.mark.parametrize("depth", [0, 1, 2, 7, 15, 16, 17, 31, 32, 35, 50])
def test_delayed_is_depth_edges_late(depth):
    dut = _Delayed(depth)
    inputs = [(37 * n + 11) % 256 for n in range(60)]
    seen = []

    async def bench(ctx):
        for value in inputs:
            ctx.set(dut.x, value)
            seen.append(ctx.get(dut.y))
            await ctx.tick()

    simulate(dut, bench)
    assert seen == [0] * depth + inputs[:len(inputs) - depth]


# -- flat vs hierarchical area ---------------------------------------------------------------


@pytest.mark.synth
@pytest.mark.slow       # about 3 minutes; `sparsegen bench tools` prints the same comparison
@pytest.mark.parametrize("name, params", [
    ("dense-array", {"rows": 4, "cols": 4}),
    ("s2ta", {"variant": "aw", "rows": 4, "cols": 4, "tpe_rows": 1, "tpe_cols": 1}),
    ("highlight", {"rows": 2, "cols": 2}),
], ids=["dense-array-4x4", "s2ta-aw-4x4", "highlight-2x2"])
def test_hierarchical_area_equals_flat(name, params, tmp_path, monkeypatch):
    """Each shared module is mapped once and counted per instance; that equals the project's
    flow on the flattened design within a few percent. Both netlists hold the same flip-flops;
    the rest is ABC mapping a flat netlist differently (measured with the timing-driven flow
    of 2026-12-01: highlight 2x2 +0.3%, dense-array 4x4 +1.5%, s2ta aw 4x4 +2.4%)."""
    monkeypatch.setenv("SPARSEGEN_CACHE_DIR", str(tmp_path))
    generated = _generated(name, **params)
    hier, flat = (synth.synthesize(synth.elaborated_verilog(generated.verilog, generated.top,
                                                           flatten=flatten),
                                   generated.top, "sky130hd", timing=False)
                  for flatten in (False, True))
    assert hier.modules[f"{generated.top}.cell"]["instances"] == params["rows"] * params["cols"]
    assert list(flat.modules) == [generated.top]
    assert hier.area_um2 == pytest.approx(flat.area_um2, rel=0.03)


# -- what `bench tools` weighs the comparison with --------------------------------------------


def test_cell_areas_are_the_liberty_areas():
    """Areas read from the shipped sky130hd liberty: inv_1 is one 0.46 x 2.72 um site (see
    constraints/techs.toml), dfxtp_1 the 20.0192 um^2 the liberty states."""
    areas = synth.cell_areas("sky130hd")
    assert areas["sky130_fd_sc_hd__inv_1"] == pytest.approx(0.46 * 2.72 * 3, rel=1e-3)
    assert areas["sky130_fd_sc_hd__dfxtp_1"] == pytest.approx(20.0192)
    assert len(areas) == 428
    groups = bench_tools.cell_groups({"sky130_fd_sc_hd__dfxtp_1": 2, "sky130_fd_sc_hd__maj3_1": 1,
                                      "sky130_fd_sc_hd__nand2_1": 3}, areas)
    assert groups["flip-flops"] == pytest.approx(2 * 20.0192, abs=1e-3)  # rounded to 1e-3
    assert groups["adder cells (maj3, xor, xnor, fa, ha)"] == pytest.approx(
        areas["sky130_fd_sc_hd__maj3_1"], abs=1e-3)
    assert groups["logic"] == pytest.approx(3 * areas["sky130_fd_sc_hd__nand2_1"], abs=1e-3)
    assert groups["buffers and delays"] == groups["muxes"] == groups["inverters"] == 0


def test_control_copies_share_only_the_clock():
    """The control of `bench tools`: N instances of one cell, every port but `clk` its own."""
    generated = _generated("dense-array", rows=1, cols=1)
    text = bench_tools.copies_verilog("dense_array.cell", generated.verilog, 3)
    elaborated = synth.elaborated_verilog(text, "copies", flatten=False)
    assert _instances(elaborated, "dense_array.cell") == 3
    header = re.search(r"^module copies\((.*?)\);", elaborated, re.M | re.S).group(1)
    ports = [p.strip() for p in header.split(",")]
    cell = re.search(r"^module \\dense_array\.cell \((.*?)\);", generated.verilog, re.M)
    own = [p.strip() for p in cell.group(1).split(",") if p.strip() != "clk"]
    assert sorted(ports) == sorted(["clk"] + [f"{p}_{n}" for n in range(3) for p in own])


def test_flatten_keeping_one_module():
    """`bench tools`' "cells kept": everything flattened but the named module, which stays one
    module instantiated where it was; a name that is no module fails, as does `keep` alone."""
    generated = _generated("dense-array", rows=2, cols=3)
    kept = synth.elaborated_verilog(generated.verilog, generated.top, flatten=True,
                                    keep=("dense_array.cell",))
    assert _modules(kept) == [generated.top, "dense_array.cell"]
    # flattened instance names keep their path: `\core.col2.cell1`
    assert len(re.findall(r"^\s*\\dense_array\.cell\s+\S+\s+\(", kept, re.M)) == 6
    with pytest.raises(synth.SynthError, match="dense_array.nope"):
        synth.elaborated_verilog(generated.verilog, generated.top, flatten=True,
                                 keep=("dense_array.nope",))
    with pytest.raises(ValueError, match="keep"):
        synth.elaborated_verilog(generated.verilog, generated.top, flatten=False,
                                 keep=("dense_array.cell",))


def test_bench_tools_table_prints_every_section():
    """`bench tools`' printout from a report of its shape (figures invented, not measured):
    every section, the reference line with each fast harness's shares."""
    groups = {"flip-flops": 10.0, "logic": 5.0}
    synth_row = {"design": "dense-array", "config": {"rows": 4, "cols": 4},
                 "hier_seconds": 1.0, "flat_seconds": 2.0, "hier_area_um2": 101.0,
                 "flat_area_um2": 100.0, "area_ratio": 1.01, "hier_groups_um2": groups,
                 "flat_groups_um2": groups, "cells_area_um2": 100.5, "cells_area_ratio": 1.005,
                 "cells_groups_um2": groups}
    control = {key: synth_row[key] for key in ("hier_seconds", "flat_seconds", "hier_area_um2",
                                               "flat_area_um2", "area_ratio", "hier_groups_um2",
                                               "flat_groups_um2")}
    sim = {"design": "s2ta", "shape": [8, 8, 8], "multipliers": 128, "cycles": 100,
           "sim_seconds": 1e-4, "cycles_per_second": 1_000_000,
           "cpu_cycles_per_second": 1_000_000, "harness_seconds": 2e-4,
           "harness_cycles_per_second": 500_000, "build_seconds": 1.0, "pack_seconds": 0.0}
    report = {"tech": "sky130hd", "load_average": 0.5, "cpus": 2,
              "generation": [{"design": "s2ta", "params": {"variant": "aw", "rows": 8, "cols": 8},
                              "seconds": 1.0, "peak_mb": 100, "verilog_bytes": 1000}],
              "simulation": [{**sim, "harness": "fast", "model_options": "-O2"},
                             {**sim, "harness": "cocotb", "cpu_cycles_per_second": None,
                              "model_options": None}],
              "reference": {"array": "8x8", "multipliers": 64, "cycles": 10,
                            "cycles_per_second": 4_000_000, "cpu_cycles_per_second": 4_000_000},
              "synthesis": [synth_row],
              "synthesis_control": {**control, "design": "16 unconnected dense_array.cell"},
              "large_synthesis": {"design": "s2ta", "params": {"variant": "aw", "rows": 32,
                                                              "cols": 32},
                                  "seconds": 123.45, "peak_mb": 2000, "synth_seconds": 111.0,
                                  "area_um2": 1e7, "critical_path_ns": 9.2}}
    out = StringIO()
    bench_tools.print_table(Console(file=out, width=400), report)
    text = out.getvalue()
    assert "4,000,000 cycles/s" in text
    assert "s2ta 25% and 50%" in text               # 1 M of 4 M cycles; 128 of 64 multipliers
    assert "1.0100" in text and "16 unconnected" in text
    assert "cold synthesis of s2ta aw 32x32" in text and "123.5 s wall, 111.0 s" in text
