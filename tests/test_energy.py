"""Per-action energies (gen/energy.py): the committed table, its regeneration, and a cross-check
of the method against OpenSTA's power of a whole design."""

import tomllib

import pytest

from sparsegen.gen import energy, synth
from sparsegen.gen.energy import EnergyTableError, energy_table
from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design, make_config
from sparsegen.gen.synth import SynthError, UnknownTechError, timing_missing

requires_sta = pytest.mark.skipif(timing_missing("sky130hd") is not None,
                                  reason=timing_missing("sky130hd") or "")

ACTIONS = {"reg_bit_write", "reg_bit_hold", "mul8", "mul8_gated", "mul16", "mul16_gated",
           "add32", "add24", "mux8x8", "cmp8", "icg_idle", "icg_open"}

#: A recomputed entry must match the committed one within this relative tolerance. With the same
#: Yosys, OpenSTA and liberty the flow is deterministic (equal to the last digit); 2% leaves room
#: for a minor tool update that moves a mapping by a few cells.
RECOMPUTE_TOLERANCE = 0.02

#: The action sum over OpenSTA's power of the whole design: the actions cover the multipliers,
#: the accumulators and every flip-flop, not the control, the drain muxes, the enable and clear
#: gates or ABC's buffers, so the sum is below the whole; measured 0.874 (81.5 of 93.2 pJ).
CROSS_CHECK_BOUNDS = (0.80, 1.00)


def test_the_committed_table_has_every_action_and_its_provenance():
    table = energy_table("sky130hd")
    assert set(table["actions"]) == ACTIONS
    prov = table["provenance"]
    assert prov["tech"] == "sky130hd" and prov["clock_ns"] == 10.0 and prov["activity"] == 0.5
    assert prov["command"] == "python -m sparsegen.gen.energy --tech sky130hd"
    assert prov["sta_version"].startswith("OpenSTA") and prov["yosys_version"].startswith("Yosys")
    # The table names the very liberty the flow reads.
    assert prov["liberty_sha256"] == [synth.file_digest(p)
                                      for p in synth.liberty_sources("sky130hd")]
    pj = {name: entry["pj"] for name, entry in table["actions"].items()}
    assert all(value > 0 for value in pj.values())
    assert pj["mul16"] > 3 * pj["mul8"] > 3 * pj["mul8_gated"]
    assert pj["add32"] > pj["add24"]
    assert pj["reg_bit_write"] >= pj["reg_bit_hold"]
    # A shut clock gate costs less than one flip-flop's clock; passing the clock to a row
    # (driving its clock pins) costs more than that.
    assert pj["icg_idle"] < pj["reg_bit_hold"] < pj["icg_open"]
    assert 0 < table["leakage"]["w_per_um2"] < 1e-9


def test_a_tech_without_a_table_is_a_one_line_error():
    with pytest.raises(EnergyTableError, match=r"^no energy table for tech `asap7` \(tables: "
                       r"sky130hd\); make one with `python -m sparsegen.gen.energy --tech "
                       r"asap7`$"):
        energy_table("asap7")
    with pytest.raises(UnknownTechError, match="unknown tech `tsmc5`"):
        energy_table("tsmc5")


def test_a_bad_activity_is_refused_before_opensta_runs(tmp_path):
    if timing_missing("sky130hd"):
        pytest.skip(timing_missing("sky130hd"))
    with pytest.raises(SynthError, match="switching activity must be 0 to 2"):
        synth.static_power(tmp_path / "none.v", "none", "sky130hd", activity=3)


@pytest.mark.synth
@requires_sta
def test_recomputed_entries_equal_the_committed_table(tmp_path):
    """mul8 and add32 (with reg_bit_write, which they subtract) from scratch, empty cache."""
    fresh = energy.characterise("sky130hd", only=("mul8", "add32"), cache_dir=tmp_path)
    committed = energy_table("sky130hd")["actions"]
    assert set(fresh["actions"]) == {"reg_bit_write", "mul8", "add32"}
    for name, entry in fresh["actions"].items():
        assert entry["pj"] == pytest.approx(committed[name]["pj"], rel=RECOMPUTE_TOLERANCE), name


@pytest.mark.synth
@requires_sta
def test_the_command_writes_a_table(tmp_path, capsys):
    out = tmp_path / "t.toml"
    assert energy.main(["--tech", "sky130hd", "-o", str(out)]) == 0
    table = tomllib.loads(out.read_text())
    assert set(table["actions"]) == ACTIONS
    assert "mul8" in capsys.readouterr().out


@pytest.mark.synth
@requires_sta
def test_action_sum_agrees_with_opensta_on_a_whole_design():
    """dense-array 2x2 (no ZVCG) at the table's uniform activity: every cell multiplies and
    adds every cycle and every flip-flop is written; the per-action sum against OpenSTA."""
    design = get_design("dense-array")
    generated = generate(design, make_config(design, {"rows": 2, "cols": 2, "zvcg": False}))
    table = energy_table("sky130hd")
    pj = {name: entry["pj"] for name, entry in table["actions"].items()}
    whole = energy.measure(generated.verilog, generated.top, "sky130hd",
                           activity=table["provenance"]["activity"])
    cells = 4
    own_bits = cells * (16 + 32)       # product and accumulator registers, inside the actions
    registers = whole["flops"] - own_bits
    assert registers > 0
    dynamic = cells * (pj["mul8"] + pj["add32"]) + registers * pj["reg_bit_write"]
    leakage = table["leakage"]["w_per_um2"] * whole["area_um2"] * whole["clock_ns"] * 1e3
    estimate = dynamic + leakage
    opensta = whole["total_w"] * whole["clock_ns"] * 1e3
    ratio = estimate / opensta
    print(f"dense-array 2x2: {whole['flops']} flip-flops, {whole['area_um2']} um^2; actions "
          f"{estimate:.2f} pJ/cycle, OpenSTA {opensta:.2f} pJ/cycle, ratio {ratio:.3f}")
    lo, hi = CROSS_CHECK_BOUNDS
    assert lo <= ratio <= hi
