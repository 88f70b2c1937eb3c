"""Energy per layer (sim/energy.py): probe counts from the RTL run equal the closed-form model
counts, both harnesses count alike, the figures add up, and the estimate agrees with OpenSTA's
whole-design power at the activity measured in the run."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sparsegen.gen import synth
from sparsegen.gen.energy import energy_table, measure
from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design, make_config, parse_params
from sparsegen.sim import energy as layer_energy
from sparsegen.sim.layer import DENSE
from sparsegen.sim.tb.bits import bit_toggles, pack_many

TECH = "sky130hd"


def sparsegen(*args):
    result = subprocess.run([sys.executable, "-m", "sparsegen.gen.cli", *args],
                            capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr

needs_sta = pytest.mark.skipif(synth.timing_missing(TECH) is not None,
                               reason=str(synth.timing_missing(TECH)))


def _operands(design, seed=3, m=5, k=24, n=3):
    rng = np.random.default_rng(seed)
    a = rng.integers(-9, 10, (m, k)) * (rng.random((m, k)) < .7)
    if design == "dense-array":
        return a, rng.integers(-9, 10, (k, n)) * (rng.random((k, n)) < .8)
    return a, _dbb(rng, k, n)       # DBB 4/8 (s2ta w/aw); highlight prunes to its pattern


def _dbb(rng, k, n, bz=8, nnz=4):
    w = rng.integers(-9, 10, (k, n))
    for b in range(k // bz):
        for c in range(n):
            w[b * bz + rng.permutation(bz)[:bz - nnz], c] = 0
    return w


CASES = [
    # Small arrays: the probe harness is a build of its own for each.
    ("dense-array", ["rows=2", "cols=2", "zvcg=true"]),
    ("dense-array", ["rows=2", "cols=2", "zvcg=false"]),
    ("s2ta", ["variant=w", "rows=2", "cols=2", "tpe_rows=1", "tpe_cols=1", "nnz_w=4",
              "zvcg=true"]),
    ("s2ta", ["variant=a", "rows=2", "cols=2", "tpe_rows=2", "tpe_k=2", "tpe_cols=1",
              "nnz_a=3", "zvcg=true"]),
    ("s2ta", ["variant=aw", "rows=2", "cols=2", "tpe_rows=1", "tpe_cols=1", "nnz_w=4",
              "nnz_a=2"]),
    ("highlight", ["rows=2", "cols=2", "pattern=4:6,2:4"]),
]


@needs_sta
@pytest.mark.parametrize("name, params", CASES, ids=lambda x: x if isinstance(x, str) else
                         ",".join(x))
def test_rtl_counts_equal_model_counts(name, params):
    """The actions counted by the harness's probes in the RTL run equal the model's closed-form
    counts, so `sim --model` prices the same energy as the RTL run."""
    design = get_design(name)
    config = make_config(design, parse_params(design, params))
    a, w = _operands(name)
    options = {"prune": True} if name == "highlight" else {}
    rtl = design.host.run(design, config, a, w, tech=TECH, **options)
    model = design.host.model(design, config, a, w, tech=TECH, **options)
    assert rtl.matches_golden and rtl.cycles == model.cycles
    assert rtl.energy.counts == model.energy.counts
    assert rtl.energy.energy_pj == model.energy.energy_pj > 0
    counts = rtl.energy.counts
    if getattr(config, "zvcg", False):
        # ZVCG: the multiplies done are exactly the products with both operands non-zero.
        assert counts["mul"] == rtl.macs_nonzero and counts["mul_gated"] > 0
    else:
        assert counts["mul_gated"] == 0 and counts["mul"] >= rtl.macs_nonzero
    assert (counts["dap_cmp"] > 0) == (name == "s2ta" and "variant=w" not in params)
    assert (counts["mux"] > 0) == (name != "dense-array")


@pytest.mark.parametrize("k_per_step", [1, 2, 3, 8])
def test_nonzero_steps_counts_each_step_with_a_nonzero_product(k_per_step, monkeypatch):
    """Against a loop over every (m, step, n): the closed form (one K element per step) and the
    chunked products (a chunk smaller than one step's m x n, and one holding every step)."""
    rng = np.random.default_rng(k_per_step)
    m, k, n = 7, 22, 5                      # 22 is no multiple of 3 or 8: a padded last step
    a = rng.integers(-3, 4, (m, k)) * (rng.random((m, k)) < .5)
    w = rng.integers(-3, 4, (k, n)) * (rng.random((k, n)) < .5)
    expected = sum(any(a[i, j] != 0 and w[j, c] != 0
                       for j in range(s, min(s + k_per_step, k)))
                   for i in range(m) for c in range(n) for s in range(0, k, k_per_step))
    assert 0 < expected < m * n * -(-k // k_per_step)
    for chunk in (1, 1 << 22):
        monkeypatch.setattr(layer_energy, "NONZERO_CHUNK", chunk)
        assert layer_energy.nonzero_steps(a, w, k_per_step) == expected
    assert layer_energy.nonzero_steps(a, w, None) == 0


@needs_sta
def test_both_harnesses_count_alike(monkeypatch):
    """The cocotb reference harness counts the same probes as the fast one (shared rules)."""
    design = get_design("dense-array")
    config = make_config(design, parse_params(design, ["rows=2", "cols=2"]))
    a, w = _operands("dense-array", seed=5)
    counts = {}
    for harness in ("fast", "cocotb"):
        monkeypatch.setenv("SPARSEGEN_HARNESS", harness)
        result = design.host.run(design, config, a, w, tech=TECH)
        counts[harness] = result.energy.counts
        assert result.pack_seconds > 0              # measured, for `bench tools`
    assert counts["fast"] == counts["cocotb"]


def test_figures_add_up_and_widths_pick_their_entries():
    table = energy_table(TECH)
    cell = {"lanes": 2, "token_bits": 10, "selections": [(8, 8), (4, 16)], "dap": None}
    pj = {name: table["actions"][name]["pj"] for name in table["actions"]}

    class Cfg:
        rows, cols, acc_width, zvcg = 1, 1, 24, True
        data_width = 16

    e = layer_energy.action_energy(table, cell, Cfg)
    assert e["mul"] == pj["mul16"] and e["mul_gated"] == pj["mul16_gated"]
    assert e["add"] == pj["add24"] and e["lane_add"] == pytest.approx(pj["add32"])
    assert e["mux"] == pytest.approx((pj["mux8x8"] + pj["mux8x8"] * 3 / 7 * 2) / 2)
    Cfg.data_width, Cfg.acc_width = 12, 40
    e = layer_energy.action_energy(table, cell, Cfg)
    assert e["mul"] == pytest.approx(pj["mul8"] * (12 / 8) ** 2)
    assert e["mul_gated"] == pytest.approx(pj["mul8_gated"] * 12 / 8)
    assert e["add"] == pytest.approx(pj["add32"] * 40 / 32)


@needs_sta
def test_sim_json_reports_energy_and_null_with_a_reason(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "A.npy", rng.integers(-5, 5, (6, 20)))
    np.save(tmp_path / "W.npy", rng.integers(-5, 5, (20, 3)))
    args = ["sim", "dense-array", "-p", "rows=2", "-p", "cols=2", "--a",
            str(tmp_path / "A.npy"), "--w", str(tmp_path / "W.npy"), "--json", "--model"]
    status, out, err = sparsegen(*args)
    assert status == 0, err
    r = json.loads(out)
    assert r["tech"] == TECH and r["source"] == "model"
    assert r["energy_pj"] == pytest.approx(sum(r["energy_breakdown"].values()), abs=0.01)
    assert r["time_us"] == pytest.approx(r["cycles"] / r["fmax_mhz"], rel=1e-5)
    assert r["edp"] == pytest.approx(r["energy_pj"] * r["time_us"], rel=1e-4)
    assert r["area_um2"] > 0
    status, out, err = sparsegen(*args, "--tech", "generic")
    assert status == 0, err
    r = json.loads(out)
    assert r["tech"] == "generic" and r["energy_pj"] is None and r["edp"] is None
    assert "no energy table" in r["energy_note"]


#: Agreement of the action-count estimate with OpenSTA's whole-design dynamic power (see
#: test_estimate_agrees_with_opensta): the ratio must lie in this band.
CROSS_CHECK_BAND = (0.75, 1.15)


@needs_sta
def test_estimate_agrees_with_opensta():
    """dense-array 2x2 (no ZVCG) on a dense random GEMM: the action-count estimate of the run's
    dynamic energy against OpenSTA report_power of the whole mapped design at the activity
    measured in the run (the average toggle rate of the input stream's bits per cycle, applied
    uniformly), over the run's cycles at the table's clock."""
    design = get_design("dense-array")
    config = make_config(design, parse_params(design, ["rows=2", "cols=2", "zvcg=false"]))
    rng = np.random.default_rng(9)
    a, w = rng.integers(-128, 128, (8, 64)), rng.integers(-128, 128, (64, 4))
    result = design.host.run(design, config, a, w, tech=TECH)
    assert result.matches_golden
    # Measured activity: bit changes of the words the harness offers, one word per step, over
    # the bits and the cycles of the run.
    job = DENSE.prepare(config, a, w)
    layout = generate(design, config).metadata["layouts"]["i__payload"]
    toggles = bit_toggles(pack_many(layout, job.payload, job.steps))
    activity = toggles / (layout["width"] * result.cycles)
    generated = generate(design, config)
    power = measure(generated.verilog, generated.top, TECH, activity=activity)
    sta_pj = (power["total_w"] - power["leakage_w"]) * power["clock_ns"] * 1e3 * result.cycles
    breakdown = result.energy.energy_breakdown
    estimate = sum(v for k, v in breakdown.items() if k != "leakage")
    ratio = estimate / sta_pj
    print(f"activity {activity:.3f}: estimate {estimate:.1f} pJ, OpenSTA {sta_pj:.1f} pJ, "
          f"ratio {ratio:.3f}")
    assert CROSS_CHECK_BAND[0] <= ratio <= CROSS_CHECK_BAND[1]
