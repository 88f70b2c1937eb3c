"""The layering of DESIGN.md holds: hw <- build <- sim <- app, nothing imports upward, and no
import of another sparsegen package hides inside a function (issue 14).

Two independent checks: the import statements of every module, read from its source (which
also sees imports inside functions), and a fresh interpreter that imports every module of a
layer and then finds no module of a higher layer loaded.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"hw": "sparsegen.hw", "gen": "sparsegen.gen", "sim": "sparsegen.sim"}

#: The build layer's modules in gen/; every other module of gen/ is the app layer (CLI,
#: catalogue, benches, sweeps), so a new module there is app unless listed here.
BUILD = {"sparsegen.gen", "sparsegen.gen.errors", "sparsegen.gen.design",
         "sparsegen.gen.generate", "sparsegen.gen.synth", "sparsegen.gen.energy",
         "sparsegen.gen.sram", "sparsegen.gen.children", "sparsegen.gen.cachefile"}
LAYERS = ("hw", "build", "sim", "app")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def layer(module: str) -> str:
    if module.startswith("sparsegen.hw"):
        return "hw"
    if module.startswith("sparsegen.sim"):
        return "sim"
    if module.startswith("sparsegen.gen"):
        return "build" if module in BUILD else "app"
    raise AssertionError(f"{module} is in no layer")


def _imports(module: str, path: Path):
    """(target module, line, inside a function) of every sparsegen import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef,
                                                                  ast.AsyncFunctionDef))
                 for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            # `from . import x` may name a module or an attribute: take the longest module.
            while name and name not in MODULES and name.startswith("sparsegen."):
                name = name.rpartition(".")[0]
            if name in MODULES:
                yield name, node.lineno, id(node) in functions


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_and_no_hidden_imports(module):
    here = LAYERS.index(layer(module))
    for target, line, hidden in _imports(module, MODULES[module]):
        where = f"{MODULES[module].relative_to(ROOT)}:{line}"
        assert LAYERS.index(layer(target)) <= here, (
            f"{where}: {layer(module)} module {module} imports {layer(target)} module {target}")
        assert not hidden, (
            f"{where}: import of {target} inside a function")


def test_golden_models_import_neither_amaranth_nor_cocotb():
    for module, path in MODULES.items():
        if module.startswith("sparsegen.sim.golden"):
            tree = ast.parse(path.read_text())
            third_party = {a.name.split(".")[0] for n in ast.walk(tree)
                           if isinstance(n, ast.Import) for a in n.names}
            third_party |= {n.module.split(".")[0] for n in ast.walk(tree)
                            if isinstance(n, ast.ImportFrom) and n.module and not n.level}
            assert not third_party & {"amaranth", "cocotb", "cocotb_tools"}, module
            for target, line, _ in _imports(module, path):
                assert target.startswith("sparsegen.sim.golden"), (module, line, target)


def test_the_classification_catches_an_upward_import():
    """The check above can fail: an hw module importing gen is reported."""
    fake = ROOT / "build" / "layer_probe" / "probe.py"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text("from ..gen.registry import DESIGNS\n")
    found = list(_imports("sparsegen.hw.probe", fake))
    assert found and layer(found[0][0]) == "app"


@pytest.mark.parametrize("top", ["hw", "build", "sim"])
def test_importing_a_layer_loads_nothing_above_it(top):
    below = LAYERS[:LAYERS.index(top) + 1]
    wanted = [m for m in MODULES if layer(m) in below
              and not m.endswith("_tb") and ".tb.stream" not in m]   # cocotb-only modules
    code = ("import importlib, json, sys\n"
            f"for m in {wanted!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('sparsegen.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    above = [m for m in loaded if m in MODULES and layer(m) not in below]
    assert above == [], f"importing {top} and below loaded {above}"
