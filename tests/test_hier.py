"""Hierarchical generation: repeated blocks emitted once, and the area that gives equal to a flat
synthesis of the same Verilog."""

import re

import pytest

from sparsegen.gen import synth
from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design, make_config


def _generated(name, **params):
    design = get_design(name)
    return generate(design, make_config(design, params))


def _modules(verilog: str) -> list[str]:
    return [m.strip().lstrip("\\") for m in re.findall(r"^module (\\\S+ |\w+)", verilog, re.M)]


def _instances(verilog: str, module: str) -> int:
    return len(re.findall(rf"^\s*\\{re.escape(module)}\s+\w+ \(", verilog, re.M))


@pytest.mark.parametrize("name, params, shared", [
    ("dense-array", {"rows": 5, "cols": 3}, {"cell": 5, "column": 3}),
    ("s2ta", {"variant": "w", "rows": 3, "cols": 2}, {"cell": 3, "column": 2}),
    ("s2ta", {"variant": "aw", "rows": 4, "cols": 2}, {"cell": 4, "column": 2}),
    ("highlight", {"rows": 2, "cols": 3}, {"cell": 2, "column": 3}),
])
def test_each_repeated_block_is_one_module(name, params, shared):
    """One module per distinct block, instantiated where it occurs; the top comes first."""
    generated = _generated(name, **params)
    top = generated.top
    modules = _modules(generated.verilog)
    assert modules[0] == top
    assert len(modules) == len(set(modules))
    for block, count in shared.items():
        assert f"{top}.{block}" in modules
        assert _instances(generated.verilog, f"{top}.{block}") == count
    assert generated.verilog == _generated(name, **params).verilog


def test_a_one_row_array_still_shares():
    generated = _generated("dense-array", rows=1, cols=4)
    assert _instances(generated.verilog, "dense_array.column") == 4


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
