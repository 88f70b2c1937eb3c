"""Test-session settings shared by every test module.

The team's reference PDK folder (``../shared/pdk`` beside a checkout, which CI lays out too)
holds the optional ASAP7 liberty that does not ship with the project. Where it exists and
``SPARSEGEN_PDK_DIR`` is unset, the tests use it, so the ASAP7 tests run in CI; the sky130hd
files there are byte-identical to the shipped ones (tests/test_pdk.py checks the shipped copy
on its own, with the setting pointing at an empty folder).
"""

import os
from pathlib import Path

import pytest

_REFERENCE_PDK = Path(__file__).resolve().parents[2] / "shared" / "pdk"

if "SPARSEGEN_PDK_DIR" not in os.environ and _REFERENCE_PDK.is_dir():
    os.environ["SPARSEGEN_PDK_DIR"] = str(_REFERENCE_PDK)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty synthesis cache of the test's own, so a result is synthesized, not found."""
    monkeypatch.setenv("SPARSEGEN_CACHE_DIR", str(tmp_path))
    return tmp_path
