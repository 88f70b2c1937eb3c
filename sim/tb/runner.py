"""Build generated Verilog with Verilator once per distinct design, and run cocotb tests on it.

Verilator builds dominate test time (about 15 s each, mostly C++ compilation), so a build is
keyed by the sha256 of what goes into it: the Verilog text, the waivers, the Verilator and
cocotb versions. Two configs that generate the same Verilog share a build; a build folder that
is complete is reused as it is. A file lock makes concurrent pytest workers wait for each
other's build instead of clobbering it.

The testbench receives the design's metadata (``<top>.json``: config, ports, payload layouts)
as JSON in the environment variable :data:`META_ENV`.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from ...gen.errors import usable_folder
from ..verilator import WAIVERS, verilator_env, verilator_version

__all__ = ["SimulationError", "META_ENV", "build_root", "build", "build_sources", "run",
           "load_meta"]

#: Environment variable carrying the design metadata JSON into the cocotb test module.
META_ENV = "SPARSEGEN_META"

_REPO = Path(__file__).resolve().parents[2]


class SimulationError(RuntimeError):
    """A simulator build or run failed for a reason outside the test's assertions."""


def build_root() -> Path:
    """Where simulator builds go: ``$SPARSEGEN_BUILD_DIR`` or ``<repo>/build``, created if
    needed; a folder that cannot be written is a :class:`~sparsegen.gen.errors.UsageError`."""
    setting = os.environ.get("SPARSEGEN_BUILD_DIR")
    return usable_folder(Path(setting or _REPO / "build"),
                         "SPARSEGEN_BUILD_DIR" if setting else "the default, <repo>/build")


def load_meta() -> dict:
    """Inside a cocotb test: the metadata of the design under test."""
    return json.loads(os.environ[META_ENV])


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _complete(stamp: Path, key: str) -> bool:
    """A build folder is complete when its stamp holds exactly its key."""
    try:
        return stamp.read_text() == key + "\n"
    except (OSError, UnicodeDecodeError):
        return False


def cached_build(name: str, key: str, make, check=None) -> Path:
    """The build folder ``<build_root>/sim/<name>-<key>``, filled by ``make(folder)`` unless a
    complete build with that key is already there.

    For builds other than cocotb's (the fast player's C++ ``main``): a file lock makes
    concurrent callers wait for one build, and the folder is marked complete only when
    ``make`` returns, so a failed build (``make`` raises) is retried by the next caller. A
    build whose stamp does not carry its key, or that fails ``check(folder)`` (e.g. its binary
    is gone), is built again rather than trusted.
    """
    folder = build_root() / "sim" / f"{name}-{key}"
    stamp = folder / ".complete"
    with _locked(build_root() / "sim" / f".{name}-{key}.lock"):
        if not _complete(stamp, key) or (check is not None and not check(folder)):
            stamp.unlink(missing_ok=True)
            folder.mkdir(parents=True, exist_ok=True)
            make(folder)
            stamp.write_text(key + "\n")
    return folder


def build(generated) -> Path:
    """Verilate and compile ``generated`` (a :class:`~sparsegen.gen.generate.Generated`).

    Returns the build folder; an existing complete build with the same key is reused.
    """
    return build_sources(generated.design, generated.top, {
        f"{generated.top}.v": generated.verilog,
        f"{generated.top}.json": generated.metadata_json(),
    })


def _lean_verilator():
    """cocotb's Verilator runner without ``--public-flat-rw``.

    cocotb passes ``--public-flat-rw`` so that tests can reach every signal, which keeps
    Verilator from inlining and optimising the design. A harness whose testbench needs only
    the top module's own ports marks those ``/*verilator public_flat_rw*/`` in its source and
    builds without the flag: the stream player around ``s2ta`` (aw, 8x8) ran 3 to 5 times as
    many cycles per second this way, with identical results.
    """
    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            return commands

    return LeanVerilator()


def build_sources(name: str, top: str, files: dict[str, str], *, public: bool = True) -> Path:
    """Verilate and compile the ``.v`` files among ``files`` (name -> text) with top ``top``.

    The build folder is ``<build_root>/sim/<name>-<key>``, the key hashing every file, the
    waivers, ``public`` and the tool versions; a complete build with the same key is reused.
    With ``public=False`` only signals marked public in the sources are visible to cocotb
    (see :func:`_lean_verilator`); the simulation is then several times faster.
    """
    from importlib.metadata import version

    from cocotb_tools.runner import get_runner

    verilator_env()
    key = hashlib.sha256("\n".join([
        "public" if public else "lean",
        top, *(f"{n}\n{t}" for n, t in sorted(files.items())), *WAIVERS,
        verilator_version(), version("cocotb"),
    ]).encode()).hexdigest()[:16]
    build_dir = build_root() / "sim" / f"{name}-{key}"
    stamp = build_dir / ".complete"
    with _locked(build_root() / "sim" / f".{name}-{key}.lock"):
        if not _complete(stamp, key):
            build_dir.mkdir(parents=True, exist_ok=True)
            sources = []
            for file_name, text in files.items():
                (build_dir / file_name).write_text(text)
                if file_name.endswith(".v"):
                    sources.append(build_dir / file_name)
            runner = get_runner("verilator") if public else _lean_verilator()
            log = build_dir / "build.log"
            try:
                runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                             build_args=list(WAIVERS), log_file=log)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                raise SimulationError(f"Verilator build of `{name}` failed ({exc}); "
                                      f"see {log}") from None
            stamp.write_text(key + "\n")
    return build_dir


def run(generated, test_module: str, *, test_filter: str | None = None, seed: int = 1,
        extra_env: dict | None = None, build_dir: Path | None = None, top: str | None = None,
        plusargs: list[str] = (), test_dir: Path | None = None) -> Path:
    """Build (or reuse) ``generated`` and run the cocotb tests of ``test_module`` on it.

    ``test_module`` is an importable module name; the tests in it read the design metadata
    with :func:`load_meta`. ``test_filter`` is a regular expression on test names
    (parametrized tests are named ``name/param=value``). Raises :class:`SimulationError` if
    any test fails or none ran. Returns the results file.
    """
    from cocotb_tools.runner import get_results, get_runner

    if build_dir is None:
        build_dir = build(generated)
    if test_dir is None:
        current = os.environ.get("PYTEST_CURRENT_TEST", "run").split(" ")[0]
        test_dir = build_dir / "runs" / re.sub(r"[^A-Za-z0-9_.-]+", "_", current)[-120:]
    test_dir.mkdir(parents=True, exist_ok=True)
    results = test_dir / "results.xml"
    log = test_dir / "sim.log"
    runner = get_runner("verilator")
    # Under pytest, cocotb's runner would sys.exit() on a failure and lose the reason; with
    # the variable hidden it returns, and the failure below quotes the log.
    hidden = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        runner.test(test_module=test_module, hdl_toplevel=top or generated.top,
                    build_dir=build_dir, hdl_toplevel_lang="verilog", plusargs=list(plusargs),
                    test_dir=test_dir, test_filter=test_filter, seed=seed, results_xml=results,
                    extra_env={META_ENV: json.dumps(generated.metadata), **(extra_env or {})},
                    log_file=log)
        num_tests, num_failed = get_results(results)
    except (SystemExit, RuntimeError) as exc:
        raise SimulationError(f"cocotb run failed ({exc}):\n{_tail(log)}") from None
    finally:
        if hidden is not None:
            os.environ["PYTEST_CURRENT_TEST"] = hidden
    if num_tests == 0 or num_failed:
        raise SimulationError(f"cocotb: {num_failed} of {num_tests} tests failed:\n{_tail(log)}")
    return results


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {log})"
