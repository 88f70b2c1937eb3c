"""The command line: list, gen, lint, and one clear error line for every kind of bad input."""

import json
import subprocess
import sys

import pytest

from sparsegen.gen.cli import main
from sparsegen.gen.registry import DESIGNS


def sparsegen(*args):
    """Run the CLI in a subprocess, as a user would: (exit status, stdout, stderr)."""
    result = subprocess.run([sys.executable, "-m", "sparsegen.gen.cli", *args],
                            capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


def test_list_json_names_every_parameter():
    status, out, err = sparsegen("list", "--json")
    assert status == 0, err
    listing = json.loads(out)
    assert set(listing) == set(DESIGNS)
    nnz = listing["dbb-pe"]["params"]["nnz"]
    assert nnz == {"type": "int", "default": 4, "range": "1..block_size",
                   "help": "NNZ: non-zero weights per block (multipliers)"}
    assert listing["dense-pe"]["params"]["zvcg"]["range"] == "true/false"


def test_list_table(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dbb-pe" in out and "block_size" in out and "power of two" in out


def test_gen_writes_verilog_and_json(tmp_path):
    status, out, err = sparsegen("gen", "dbb-pe", "-p", "block_size=8", "-p", "nnz=4",
                                 "-o", str(tmp_path))
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbb_pe.json", "dbb_pe.v"]
    meta = json.loads((tmp_path / "dbb_pe.json").read_text())
    assert meta["config"] == {"block_size": 8, "nnz": 4, "data_width": 8, "acc_width": 32,
                              "zvcg": False}
    assert meta["top"] == "dbb_pe" and meta["design"] == "dbb-pe"
    assert (tmp_path / "dbb_pe.v").read_text().count("module dbb_pe(") == 1


def test_gen_config_file_and_override(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[params]\nblock_size = 16\nnnz = 2\nzvcg = true\n")
    out = tmp_path / "out"
    assert main(["gen", "dbb-pe", "-c", str(cfg), "-p", "nnz=8", "-o", str(out)]) == 0
    meta = json.loads((out / "dbb_pe.json").read_text())
    assert meta["config"]["block_size"] == 16 and meta["config"]["nnz"] == 8
    assert meta["config"]["zvcg"] is True


@pytest.mark.parametrize("args, message", [
    (["gen", "sparse-magic", "-o", "OUT"],
     "unknown design `sparse-magic` (choose from " + ", ".join(DESIGNS) + ")"),
    (["gen", "dbb-pe", "-p", "nnz=9", "-o", "OUT"],
     "dbb-pe: `nnz` must be between 1 and `block_size` (8), not 9"),
    (["gen", "dbb-pe", "-p", "bz=8", "-o", "OUT"],
     "dbb-pe: unknown parameter `bz` (parameters: block_size, nnz, data_width, acc_width, "
     "zvcg)"),
    (["gen", "dbb-pe", "-p", "block_size=eight", "-o", "OUT"],
     "dbb-pe: parameter `block_size` takes a decimal integer, not 'eight'"),
    (["gen", "dense-pe", "-p", "zvcg=maybe", "-o", "OUT"],
     "dense-pe: parameter `zvcg` takes true/false/1/0, not 'maybe'"),
    (["gen", "dense-pe", "-p", "zvcg", "-o", "OUT"], "-p expects key=value, not 'zvcg'"),
    (["gen", "dense-pe", "-c", "MISSING.toml", "-o", "OUT"],
     "cannot read config file MISSING.toml: No such file or directory"),
    (["synth", "dense-pe", "--tech", "tsmc3"],
     "unknown tech `tsmc3` (choose from generic, osu018, sky130hd, asap7)"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    status, out, err = sparsegen(*args)
    assert status == 2
    assert err == f"sparsegen: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder_writes_nothing(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    status, _, err = sparsegen("gen", "dense-pe", "-o", str(blocked / "sub"))
    assert status == 2
    assert err.startswith("sparsegen: error: cannot create output folder ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_failed_write_leaves_nothing(tmp_path, monkeypatch, capsys):
    """A write that fails halfway (here: the disk fills on the second file) leaves no file."""
    import os
    real_fdopen = os.fdopen
    opened = []

    def flaky_fdopen(fd, *args, **kwargs):
        opened.append(fd)
        if len(opened) == 2:
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", flaky_fdopen)
    assert main(["gen", "dense-pe", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"sparsegen: error: cannot write into {tmp_path}: No space left on device\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("design, params", [
    ("dbb-pe", ["-p", "block_size=8", "-p", "nnz=4"]),
    ("dbb-pe", ["-p", "block_size=32", "-p", "nnz=3", "-p", "data_width=16", "-p", "zvcg=1"]),
    ("dbb-pe", ["-p", "block_size=2", "-p", "nnz=1", "-p", "data_width=2", "-p",
                "acc_width=2"]),
    ("dense-pe", ["-p", "zvcg=true", "-p", "data_width=4"]),
])
def test_verilator_lint_passes_with_waivers(design, params):
    status, out, err = sparsegen("lint", design, *params)
    assert status == 0, err
    assert "lint clean" in out


@pytest.mark.parametrize("design", list(DESIGNS))
def test_every_design_lints_clean_at_its_defaults(design):
    status, out, err = sparsegen("lint", design)
    assert status == 0, err
    assert "lint clean" in out


@pytest.mark.parametrize("variant", ["dense", "w", "a", "aw"])
def test_s2ta_variants_lint_clean(variant):
    # nnz_max only where it is used (a/aw): the CLI refuses a parameter with no effect.
    extra = ["-p", "nnz_max=2"] if "a" in variant else []
    status, out, err = sparsegen("lint", "s2ta", "-p", f"variant={variant}", "-p", "rows=3",
                                 "-p", "cols=5", "-p", "block_size=4", *extra)
    assert status == 0, err


def test_redirected_tables_are_not_cut_to_80_columns(capsys, monkeypatch):
    """Output to a file or pipe keeps wide tables whole (rich would otherwise fit them to 80
    columns and shorten their cells to '…'); COLUMNS, when set, still rules."""
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["bench", "hss-share"]) == 0
    assert "…" not in capsys.readouterr().out
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["bench", "hss-share"]) == 0
    assert "…" in capsys.readouterr().out
