"""Clock-gated registers (hw/gate.py): their parts, their synthesis behind one ICG each
(gen/synth.py), SCNN's gated pipeline registers and weight FIFO entries (hw/scnn.py
``gated_registers``), whose enables an RTL run counts equal to the actions the energy model
prices them by (sim/energy.py), and the model of a gated register against OpenSTA."""

import re

import numpy as np
import pytest
from amaranth.back import verilog

from sparsegen.gen import energy, synth
from sparsegen.gen.energy import energy_table
from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design
from sparsegen.hw.gate import GatedRegister, gated_name, parts
from sparsegen.hw.scnn import (
    Scnn,
    ScnnConfig,
    ScnnPEConfig,
    _ram_write_layout,
    gated_registers,
    ram_banks,
)
from sparsegen.sim import energy as sim_energy
from sparsegen.sim import scnn as host
from sparsegen.sim.golden import scnn as gs
from sparsegen.sim.player import play
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import pack_many

requires_sta = pytest.mark.skipif(synth.timing_missing("sky130hd") is not None,
                                  reason=synth.timing_missing("sky130hd") or "")

#: tests/test_regfile.py's small PE.
TINY_PE = ScnnPEConfig(f=1, i=1, banks=4, kc=1, max_tile_w=2, max_tile_h=2, max_r=2, max_s=2,
                       bank_depth=3, act_depth=16, data_width=8, acc_width=16)


def test_parts_split_evenly_up_to_32_bits():
    assert parts(1) == [1]
    assert parts(32) == [32]
    assert parts(33) == [17, 16]
    assert parts(93) == [31, 31, 31]
    assert parts(544) == [32] * 17
    assert gated_name(20) == "gated_reg_20"


def test_scnn_gated_registers_by_hand():
    """TINY_PE (f = i = 1, 4 banks of 3 rows, 8/16-bit data/accumulators, frames of 3 x 3):
    accumulator addresses 4 bits, products 16 bits; a weight entry 8 + 4 + 1 = 13 bits, an
    activation row 8 + 4 = 12. Per pair: a crossbar product register (4 + 16 = 20 bits), the
    issue stage's entry (13) and the row stage's row and entry (25). Per bank write: the
    request (clear, halo, a 2-bit row, a 16-bit addend: 20) and the forwarding register (16).
    Per WGT word: stage 1 (last, value, a 5-bit position: 14), stage 2 (last, value, k 1 +
    r 2 + s 2 bits: 14) and a FIFO entry (13). Per drained frame row: the drain row register
    (2 x 16-bit values, 2 nz, 2 valid, own, first, last: 39 bits in two parts). Per own row:
    the gearbox's first stage (a 4-bit offset base, end, 2 nz, 2 x 8-bit values: 23), its
    second (end, a 2-bit row count, 3 + 1 rows of one 12-bit (value, pos): 51 in two parts)
    and an output queue entry (2 x (16 + 4 + 1) + last: 43 in two parts). In all: two product
    registers, the two stages, 2 x 4 banks, the weight stages, 4 FIFO entries, the drain row,
    the gearbox's stages and 3 queue entries. Per activation RAM row written: the 4 row-end
    bits of its bank (16 rows over 4 banks: one group of 4 rows per bank of each RAM, 8 in
    all)."""
    gated = gated_registers(TINY_PE)
    assert gated["pair"] == [20, 13, 25]
    assert gated["bank_write"] == [20, 16]
    assert gated["wgt_push"] == [14, 14, 13]
    assert gated["drain_row"] == [20, 19]
    assert gated["drain_push"] == [23, 26, 25, 22, 21]
    assert gated["act_write"] == [4]
    assert sorted(gated["all"]) == sorted([20, 20, 13, 25] + 8 * [20, 16] + [14, 14]
                                          + 4 * [13] + [20, 19, 23, 26, 25] + 3 * [22, 21]
                                          + 8 * [4])
    assert Scnn.memories(ScnnConfig(pe_rows=1, pe_cols=1, f=1, i=1, banks=4, kc=1,
                                    max_tile_w=2, max_tile_h=2, max_r=2, max_s=2,
                                    bank_depth=3, act_depth=16, data_width=8,
                                    acc_width=16))["gated_registers"] == gated


def test_gated_register_energy_hand_sum():
    """Probe counts of 2 PEs: each action opens its parts' gates and writes their bits."""
    gated = gated_registers(TINY_PE)
    probes = {"pair": 7, "bank_write": 12, "wgt_push": 3, "drain_row": 4, "drain_push": 2,
              "act_write": 5}
    got = sim_energy.scnn_gated_registers(gated, probes, 2)
    assert got == {"icgs": 2 * (37 + 8), "bits": 2 * (688 + 8 * 4),
                   "opened": 7 * 3 + 12 * 2 + 3 * 3 + 4 * 2 + 2 * 5 + 5 * 1,
                   "written": 7 * 58 + 12 * 36 + 3 * 41 + 4 * 39 + 2 * (23 + 51 + 43) + 5 * 4}


def _gated_verilog(width: int, name: str) -> str:
    return verilog.convert(GatedRegister(width), name=name, emit_src=False,
                           strip_internal_attrs=True)


@requires_sta
@pytest.mark.synth
def test_a_gated_register_gets_one_clock_gate():
    """sky130hd: a 20-bit gated register under its shared-module name maps to 20 plain
    flip-flops behind one ICG; under another name, to enable flip-flops and no ICG."""
    gated = synth.synthesize(_gated_verilog(20, "gated_reg_20"), "gated_reg_20",
                             "sky130hd")
    plain = synth.synthesize(_gated_verilog(20, "reg_20"), "reg_20", "sky130hd")
    assert energy.icg_count(gated.cell_types) == 1
    assert gated.cell_types.get("sky130_fd_sc_hd__dfxtp_1") == 20 == energy.flop_count(
        gated.cell_types)
    assert energy.icg_count(plain.cell_types) == 0
    assert plain.cell_types.get("sky130_fd_sc_hd__edfxtp_1") == 20


#: A small array: one PE of f = i = 2 (a small Verilator build), with 160 activation rows: 40
#: per RAM bank, so each bank's row-end bits are two gated groups of 20 rows.
ARRAY = ScnnConfig(pe_rows=1, pe_cols=1, f=2, i=2, kc=2, max_tile_w=4, max_tile_h=4,
                   act_depth=160)
_INSTANCE = re.compile(r"^\s*\\(\S+?)\.gated_reg_\d+\s+(\S+)\s*\(", re.M)
_MODULE = re.compile(r"^module \\?(\S+?)\s*\(", re.M)
#: Which action loads the gated registers of each block (by its path in the PE).
ACTION_OF = (("crossbar", "pair"), ("cartesian", "pair"),
             ("accumulators.banks.half", "bank_write"), ("accumulators", "drain_row"),
             ("weights", "wgt_push"), ("drain", "drain_push"), ("activations", "act_write"))


def _gate_enables(text: str, top: str) -> dict[str, list[str]]:
    """The enable of every gated register instance in the PE's modules of ``text``, by the
    action of its block: ``<path in the PE>.<instance>.en``."""
    found = {action: [] for _, action in ACTION_OF}
    starts = [(m.start(), m.group(1)) for m in _MODULE.finditer(text)] + [(len(text), None)]
    for (start, module), (end, _) in zip(starts, starts[1:]):
        prefix = f"{top}.pe."
        for hit in _INSTANCE.finditer(text, start, end):
            assert module.startswith(prefix), module
            path = module[len(prefix):]
            action = next(a for block, a in ACTION_OF if path.startswith(block))
            found[action].append(f"{path}.{hit.group(2)}.en")
    return found


@pytest.mark.verilator
@pytest.mark.slow       # its own Verilator build (about 20 s); the default suite's SCNN runs
def test_rtl_gate_enables_equal_the_priced_actions():     # check the gated RTL bit-exact
    """A conv on one PE on Verilator, counting besides ``Scnn.probes`` every gated
    register's enable (found in the generated Verilog, not from ``gated_registers``): per
    action, the enables that were on equal the action's count times its gates, and the PE has
    as many gated registers as ``gated_registers`` lists. The input fills more than 80 IARAM
    rows, so the ACT writes reach both row-end groups of every bank (a write that opened both
    would count twice). The row-end groups' enables are held to the RAM writes of the same
    cycles (the IARAM's, and the drain's OARAM write ports): ``act_write`` counts a drained
    row a cycle before its write (``Scnn.probes``), and the last frame row's rows may be
    written after the last result, when the harness no longer counts."""
    design = get_design("scnn")
    generated = generate(design, ARRAY)
    enables = _gate_enables(generated.verilog, generated.top)
    gated = gated_registers(ARRAY)
    assert sum(len(v) for v in enables.values()) == len(gated["all"])
    rng = np.random.default_rng(3)
    ifmap = random_operands(rng, (20, 4, 4), 16, 0.9)
    filters = random_operands(rng, (4, 20, 3, 3), 16, 0.4)
    program = host.build_program(ARRAY, ifmap, filters, 1)
    assert host.act_words(program) > 80        # IARAM rows written: past bank row 20
    payload, n = host.payload_of(program, with_pe=True)
    words = pack_many(generated.metadata["layouts"]["i__payload"], payload, n)
    model, _ = host.model_cycles(program)
    probes = Scnn.probes(ARRAY)
    for action, terms in enables.items():
        probes[f"en_{action}"] = [f"pe0_0.{t}" for t in terms]
    port = _ram_write_layout(ARRAY.pe)
    enable = port.elem_shape.size, port.elem_shape["en"].offset
    probes["oaram_write"] = [f"pe0_0.drain.o_ram[{b * enable[0] + enable[1]}]"
                             for b in range(ram_banks(ARRAY.pe))]
    played = play(generated, words, expect=program.transfers, timeout_cycles=4 * model + 1000,
                  probes=probes)
    assert played.cycles == model
    for action in ("pair", "bank_write", "wgt_push", "drain_row", "drain_push"):
        assert played.probes[action] > 0
        assert played.probes[f"en_{action}"] == played.probes[action] * len(gated[action]), \
            action
    got = played.probes
    assert len(gated["act_write"]) == 1 and got["oaram_write"] > 0
    assert got["en_act_write"] == host.act_words(program) + got["oaram_write"]
    assert got["act_write"] == host.act_words(program) + host.oaram_rows(program)
    assert 0 <= host.oaram_rows(program) - got["oaram_write"] <= ram_banks(ARRAY.pe)
    # The same run's output is the convolution (a gated register that loaded too rarely
    # would break it).
    assert np.array_equal(host.decode_outputs(program, _rows(generated, played)),
                          gs.conv_einsum(ifmap, filters, 1))


def _rows(generated, played):
    from sparsegen.sim.tb.bits import unpack
    layout = generated.metadata["layouts"]["o__payload"]
    return [[[(ln["value"], ln["run"], ln["valid"]) for ln in row["lanes"]]
             for row in unpack(layout, int(line, 16))] for line in played.results.split()]


@pytest.mark.synth
@pytest.mark.slow
@requires_sta
def test_scnn_pe_netlist_has_the_register_gates_the_energy_model_counts():
    """TINY_PE on sky130hd: the netlist's ICGs are the register files' (a gate per row and read
    register) plus one per gated register part, and the gated register modules hold exactly
    the flip-flops ``gated_registers`` lists."""
    generated = generate(get_design("scnn-pe"), TINY_PE)
    result = synth.synthesize(generated.verilog, generated.top, "sky130hd")
    memories = sim_energy.scnn_gated_memories(Scnn.memories(TINY_PE), 1)
    gated = gated_registers(TINY_PE)
    assert energy.icg_count(result.cell_types) == memories["icgs"] + len(gated["all"])
    held = 0
    for name, entry in result.modules.items():
        found = re.search(r"\.gated_reg_(\d+)$", name)
        if found:
            held += int(found.group(1)) * entry["instances"]
    assert held == sum(gated["all"])


#: The gated register model against OpenSTA (test below), as the register file's
#: (tests/test_regfile.py): the same band.
GATED_BAND = (0.95, 1.15)


@pytest.mark.synth
@pytest.mark.slow
@requires_sta
def test_gated_register_model_agrees_with_opensta():
    """A 24-bit gated register (an accumulator bank's forwarding register), OpenSTA
    report_power against the action model: gate shut (activity 0), and open every cycle with
    random data (activity 0.5)."""
    width, top = 24, "gated_reg_24"
    v = _gated_verilog(width, top)
    pj = {name: entry["pj"] for name, entry in energy_table("sky130hd")["actions"].items()}
    for shut, activity, model in ((True, 0.0, pj["icg_idle"]),
                                  (False, 0.5, pj["icg_open"] + width * pj["reg_bit_write"])):
        m = energy.measure(v, top, "sky130hd", activity=activity, gates_shut=shut)
        opensta = (m["total_w"] - m["leakage_w"]) * m["clock_ns"] * 1e3
        print(f"gate {'shut' if shut else 'open'}: model {model:.3f} pJ, OpenSTA "
              f"{opensta:.3f} pJ per cycle, ratio {model / opensta:.3f}")
        assert GATED_BAND[0] <= model / opensta <= GATED_BAND[1]
