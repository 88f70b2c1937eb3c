"""Energy per layer of the systolic arrays: actions counted in the RTL run, times per-action
energies characterised on the liberty, plus leakage.

Method
------
``energy_pj = sum(count x per-action energy) + leakage_w_per_um2 x area_um2 x time``, with
``time_us = cycles / fmax_mhz`` and ``edp = energy_pj x time_us`` (pJ x us). The per-action
energies are the committed table of :func:`sparsegen.gen.energy.energy_table` (sky130hd:
OpenSTA ``report_power`` of small circuits at 10 ns, random data); area and fmax come from
:func:`sparsegen.gen.synth.synthesize` of the same Verilog (cached), and the flip-flop count
from the same mapping (its `cell_types`, no second mapping).

Counting (RTL runs). The hardware declares where its actions are seen, once, in ``hw/``:
:meth:`~sparsegen.hw.systolic.SystolicCell.probes` names the 1-bit conditions of one cell
(``step``: its sum stage takes a step; ``last``: its result register is written; ``gated``:
a ZVCG lane held its product register), the arrays (``DenseArray``, ``S2TA``, ``HighLight``)
collect them over their cells and add ``block`` (a drained row passing S2TA's output DAP), and
``cell_actions()`` says what a step costs besides (lanes, token register bits, operand muxes,
the DAP's comparisons). Both stream harnesses count the probes every cycle through
hierarchical references into the unchanged design (:func:`sparsegen.sim.fastplay.probe_rules`,
one set of rules for the fast and the cocotb player). :func:`counts_from_probes` turns them
into action counts:

============== ================================================================== ==========
action          count                                                              priced as
============== ================================================================== ==========
mul             lane multiplies done: steps x lanes - gated                       mul<w>
mul_gated       ZVCG lanes that held their product register                       mul<w>_gated
add             accumulator adds of a non-zero addend: steps x outputs - idle     add<acc>
add_idle        ZVCG (step, output) pairs whose lanes were all gated: the         acc bits x
                accumulator adds zero and keeps its value                         reg_bit_hold
lane_add        adds summing an output's lanes: steps x (lanes - outputs)         add<2w>
mux             operand selections: steps x the cell's muxes (ways, bits)         mux8x8 scaled
edge_mux        selections made once per core step for the whole array            mux8x8 scaled
                (HighLight's rank-1 block muxes): steps / cells x edge muxes
dap_cmp         S2TA a/aw output DAP: drained rows x blocks per row x BZ(BZ-1)/2  cmp8 scaled
                magnitude comparisons
reg_bit_write   token and lane-sum register bits of each step, result register    reg_bit_write
                bits per tile, S2TA's output DAP stage bits per drained row
reg_bit_hold    every other flip-flop-cycle: flops x cycles - the bits above     reg_bit_hold
                and the product and accumulator registers the mul/add entries
                already include
leakage         leakage_w_per_um2 x area_um2 x time                               W/um^2
============== ================================================================== ==========

Widths the table does not hold are scaled from the nearest characterised entry by a stated
rule: a multiply by the square of the operand width (``mul8 x (w/8)^2``), a gated multiply
linearly (its cost is the held product register: ``mul8_gated x w/8``), an add linearly in its
width (``add32 x bits/32``), a ways:1 mux of b bits as ``mux8x8 x (ways-1)/7 x b/8`` (a ways:1
mux is ways-1 two-input muxes per bit), a comparison linearly (``cmp8 x w/8``).

``outputs`` (from ``cell_actions()``, default 1) is the accumulators of a cell: S2TA's tensor
PEs (TPEs) hold tpe_rows x tpe_cols of them, each summing its lanes. A cell with more than one
lane per output registers each output's lane sum before the accumulator adds it
(:attr:`~sparsegen.hw.systolic.CellKind.lane_sum`); those registers (``lane_sum_bits`` of
``cell_actions()``, :func:`~sparsegen.hw.systolic.lane_sum_bits`) load on every step, the sum
of zeros on a ZVCG idle step too, so each step writes them: priced per bit as
``reg_bit_write``, as the token registers, and left out of ``reg_bit_hold``.

Model counts (``sim --model``): the same actions in closed form from the operands (steps
through the core, tiles, non-zero products of the multiplied operands for ZVCG, rows drained
through the DAP); tests/test_energy_layer.py holds them equal to the RTL counts.

``gating_saving_pj`` (ZVCG designs) is what the gating saved in the same run: the gated lanes
priced as multiplies minus as gated ones, plus the idle steps priced as adds minus as held
accumulators.

What it ignores: wires and placement (pin loads only), the clock tree (a flip-flop pays its
own clock pins, nothing upstream), glitches and real data statistics (every action is priced
at random data, a held register at activity 0), SRAM (no design declares a macro yet: its
buffers are flip-flops, priced as such), and logic no action covers: control, the skew and
drain muxes, the front ends' datapaths besides the DAP comparisons and HighLight's rank-1 block
muxes (the serializer's muxes, the HSS sequencer's steering), buffers ABC inserts. The
committed cross-check of the table found its action sum 0.874 of OpenSTA's whole-design power
on ``dense-array`` 2x2 at uniform activity; the layer-level cross-check
(tests/test_energy_layer.py) compares a run's estimate with OpenSTA at the activity measured in
the run.

SCNN (``scnn``, :func:`scnn_layer_energy`): its own probes (``Scnn.probes`` in hw/scnn.py),
counted by the same harnesses, priced per action:

============== ================================================================== ==========
action          count                                                              priced as
============== ================================================================== ==========
mul             products of a pair with both operands non-zero                    mul<w>
mul_zero        the pair's other products (no gating in SCNN's multipliers: a     mul<w>_gated
                zero operand leaves the partial products still)
xbar            products crossing the crossbar (granted)                          (2FI):1 mux
bank_add        bank writes (read-modify-write adds, halo adds, clears)           add<acc>
bank_read       bank row reads                                                    memory read
bank_write      bank row writes                                                   memory write
act_read        activation buffer row reads (one per pair)                        memory read
act_write       activation RAM row writes (ACT words, drained rows into the OARAM)  memory write
reg_bit_write   bits loaded into the gated registers (``Scnn.memories``'         reg_bit_write
                ``gated_registers``): per pair, bank write, weight push
                (``wgt_push``), drained frame row (``drain_row``), own row
                (``drain_push``) and activation RAM row write (``act_write``:
                its bank's row-end group, at the widest), its registers' bits
reg_bit_hold    flops x cycles - the gated memories' and registers' flops x       reg_bit_hold
                cycles - bits written into flip-flop memories not gated
icg_open        clock gates passing the clock: of the gated memories, a row       icg_open
                written, a read register loaded (a row read); of the gated
                registers, each part's gate per such action
icg_idle        all those clock gates x cycles - icg_open                         icg_idle
leakage         logic: leakage_w_per_um2 x area; SRAM macros: the model's         W
============== ================================================================== ==========

A memory read or write is an SRAM access (``gen/sram.py``, OpenRAM-fitted) for a memory of at
least ``hw.sram.MACRO_MIN_BITS`` bits, else flip-flops: a write as its bits x reg_bit_write, a
read as a depth:1 mux of its bits (plus, in a gated memory, its read register's bits x
reg_bit_write). Below the threshold a memory is a clock-gated register file (``hw/sram.py``,
``gen.synth.CLOCKGATE``): each of its ``max(words, 2)`` rows and its read register has its own
ICG when it is at least ``gen.synth.GATE_MIN_BITS`` wide. Which flip-flops are the gated ones
is read from the memory sizes (``Scnn.memories``: ``(rows + 1) x bits`` flops and ``rows + 1``
ICGs per memory), not from the netlist; tests/test_regfile.py holds them equal to the ICG
and flip-flop counts of the synthesized PE. Every memory's read enable is driven by the reads
that need a row (hw/scnn.py: an accumulator bank reads only for a product's or the row walk's
request), so a read register's gate opens once per counted read (``bank_read`` is the banks'
read enables, ``act_read`` the activation RAM's reads) and its flip-flops are never priced as
held. The gated registers (``hw/gate.py``: the Cartesian stages', the crossbar's product
registers, the banks' request and forwarding registers, the weight decoder's stages and FIFO
entries, the drain row register, the gearbox's stages, the output queue's entries and the
activation RAMs' row-end bits, in groups of at most 32 rows) load on enables that are exactly a
probed action (:func:`scnn_gated_registers`; a pair, a bank write, a weight push, a drained
row, an own row, an activation RAM row write: tests/test_gate.py counts the enables in an RTL
run; a row write loads one group, priced at the bank's widest, at most a bit over), one
gate per part of at most ``hw.gate.PART`` bits (checked against the synthesized netlist's
ICGs); a 24-bit gated register's model is 1.000x OpenSTA with its gate shut and 1.016x open.
Not priced: the decoders, the control, the drain's
run-length logic and queue, the halo wires (their adds are bank adds); halo partial sums are
counted (``halo_traffic``) but cost nothing here beyond those adds.
"""

import dataclasses

import numpy as np

from ..gen import synth
from ..gen.energy import EnergyTableError, energy_table, flop_count
from ..gen.sram import sram_model
from ..hw.sram import MACRO_MIN_BITS

__all__ = ["DEFAULT_TECH", "ACTIONS", "LayerEnergy", "counts_from_probes", "counts_from_model",
           "NONZERO_CHUNK", "nonzero_steps", "action_energy", "layer_energy", "no_energy",
           "SCNN_ACTIONS", "scnn_gated_memories", "scnn_gated_registers", "scnn_layer_energy"]

DEFAULT_TECH = "sky130hd"
"""The tech ``sparsegen sim`` prices energy on unless ``--tech`` says otherwise."""

#: (m, step, n) entries :func:`nonzero_steps` holds at a time (4 bytes each).
NONZERO_CHUNK = 1 << 22

ACTIONS = ("mul", "mul_gated", "add", "add_idle", "lane_add", "mux", "edge_mux", "dap_cmp",
           "reg_bit_write", "reg_bit_hold")
"""The action kinds of :func:`counts_from_probes`, in breakdown order (``leakage`` follows)."""


@dataclasses.dataclass(frozen=True)
class LayerEnergy:
    """Energy figures of one layer run; :meth:`as_json` gives the ``sim --json`` keys.

    All figures are ``None`` when ``reason`` says why there are none (a tech without an energy
    table or a liberty, no OpenSTA, a design whose actions are not probed)."""

    tech: str
    energy_pj: float | None = None
    energy_breakdown: dict | None = None
    time_us: float | None = None
    edp: float | None = None
    fmax_mhz: float | None = None
    area_um2: float | None = None
    counts: dict | None = None
    gating_saving_pj: float | None = None
    reason: str | None = None

    def as_json(self) -> dict:
        out = {"tech": self.tech, "energy_pj": self.energy_pj,
               "energy_breakdown": self.energy_breakdown, "time_us": self.time_us,
               "edp": self.edp, "fmax_mhz": self.fmax_mhz, "area_um2": self.area_um2,
               "energy_counts": self.counts, "gating_saving_pj": self.gating_saving_pj}
        if self.reason:
            out["energy_note"] = self.reason
        return out


def no_energy(tech: str, reason: str) -> LayerEnergy:
    """Null energy fields for ``tech`` with a one-line ``reason``."""
    return LayerEnergy(tech=tech, reason=reason)


def _fixed(cell: dict, config) -> dict:
    return {"lanes": cell["lanes"], "outputs": cell.get("outputs", 1),
            "token_bits": cell["token_bits"], "lane_sum_bits": cell.get("lane_sum_bits", 0),
            "selections": [tuple(s) for s in cell["selections"]], "dap": cell["dap"],
            "dap_bits": cell.get("dap_bits", 0),
            "edge_selections": [tuple(s) for s in cell.get("edge_selections", [])],
            "data_width": config.data_width, "acc_width": config.acc_width,
            "zvcg": bool(getattr(config, "zvcg", False)), "cells": config.rows * config.cols}


def _counts(fixed: dict, *, steps: int, lasts: int, gated: int, idle: int,
            drained_rows: int) -> dict:
    """Action counts from the per-cell event totals (summed over cells); ``drained_rows``
    counts the result rows that pass the output DAP (its probe is ``block``)."""
    lanes, width, acc = fixed["lanes"], fixed["data_width"], fixed["acc_width"]
    outputs = fixed["outputs"]
    counts = {
        "mul": steps * lanes - gated,
        "mul_gated": gated,
        "add": steps * outputs - idle,
        "add_idle": idle,
        "lane_add": steps * (lanes - outputs),
        "mux": steps * len(fixed["selections"]),
        # Every cell takes every core step once, so core steps = cell steps / cells.
        "edge_mux": steps // fixed["cells"] * len(fixed["edge_selections"]),
        "dap_cmp": 0,
        # Per step the token registers and the lane-sum registers (kinds with that stage);
        # per tile the result registers; per drained row the output DAP's stage.
        "reg_bit_write": (steps * (fixed["token_bits"] + fixed["lane_sum_bits"])
                          + lasts * outputs * acc + drained_rows * fixed["dap_bits"]),
    }
    if fixed["dap"] is not None:
        blocks_per_row, bz = fixed["dap"]
        counts["dap_cmp"] = drained_rows * blocks_per_row * bz * (bz - 1) // 2
    # Register bits the mul / mul_gated / add entries include (product register, ZVCG flag,
    # accumulator), so the hold term does not price them again.
    counts["_covered_bits"] = ((counts["mul"] + gated) * 2 * width + gated
                               + steps * outputs * acc + counts["reg_bit_write"])
    return counts


def counts_from_probes(cell: dict, config, probes: dict) -> dict:
    """Action counts of an RTL run from its probe counters (``PlayerRun.probes``).

    ``cell`` is the design's ``cell_actions()``; ``probes`` holds ``step``, ``last`` and,
    as declared, ``gated``, ``idle`` and ``block`` (see the module docs)."""
    return _counts(_fixed(cell, config), steps=probes["step"], lasts=probes["last"],
                   gated=probes.get("gated", 0), idle=probes.get("idle", 0),
                   drained_rows=probes.get("block", 0))


def counts_from_model(cell: dict, config, *, core_steps: int, tiles: int, transfers: int,
                      nonzero: int, nonzero_steps: int) -> dict:
    """The same counts in closed form: ``core_steps`` steps through the core (every cell takes
    each once), ``tiles`` output tiles, ``transfers`` the DAP's events (S2TA's drained rows),
    ``nonzero`` products with both operands non-zero (the multiplies ZVCG does not gate) and
    ``nonzero_steps`` (output, step) pairs with at least one of them (:func:`nonzero_steps`)."""
    fixed = _fixed(cell, config)
    cells = fixed["cells"]
    steps = core_steps * cells
    zvcg = fixed["zvcg"]
    return _counts(fixed, steps=steps, lasts=tiles * cells,
                   gated=steps * fixed["lanes"] - nonzero if zvcg else 0,
                   idle=steps * fixed["outputs"] - nonzero_steps if zvcg else 0,
                   drained_rows=transfers)


def nonzero_steps(a, w, k_per_step: int | None) -> int:
    """(m, n, step) triples whose step's ``k_per_step`` K elements hold a product with both
    operands non-zero: the cell steps ZVCG does not leave idle (``None``: not counted, 0).

    One K element per step counts in closed form (per step: the rows of ``a`` with a non-zero
    times the columns of ``w`` with one); longer steps take batched products of the non-zero
    masks, :data:`NONZERO_CHUNK` (m, step, n) entries at a time, so a ResNet-50-sized layer
    needs tens of MB, not an (m, step, n) tensor of GBs."""
    if k_per_step is None:
        return 0
    pad = -a.shape[1] % k_per_step
    a_nz = np.pad(a != 0, ((0, 0), (0, pad))).reshape(a.shape[0], -1, k_per_step)
    w_nz = np.pad(w != 0, ((0, pad), (0, 0))).reshape(-1, k_per_step, w.shape[1])
    if k_per_step == 1:
        return int(a_nz[:, :, 0].sum(axis=0, dtype=np.int64)
                   @ w_nz[:, 0, :].sum(axis=1, dtype=np.int64))
    a_steps = a_nz.transpose(1, 0, 2).astype(np.float32)      # (step, m, k): exact, k <= 2^24
    w_steps = w_nz.astype(np.float32)                         # (step, k, n)
    per = max(1, NONZERO_CHUNK // (a.shape[0] * w.shape[1]))
    return sum(int(np.count_nonzero(a_steps[s:s + per] @ w_steps[s:s + per]))
               for s in range(0, a_steps.shape[0], per))


def _entry(table: dict, name: str) -> float | None:
    entry = table["actions"].get(name)
    return None if entry is None else float(entry["pj"])


def action_energy(table: dict, fixed_or_cell: dict, config) -> dict:
    """pJ per action of each kind (``mux`` per step of a cell: all its selections) for the
    design's widths, by the scaling rules of the module docs."""
    width, acc = config.data_width, config.acc_width
    lanes = fixed_or_cell["lanes"]
    mul = _entry(table, f"mul{width}")
    mul = mul if mul is not None else _entry(table, "mul8") * (width / 8) ** 2
    gated = _entry(table, f"mul{width}_gated")
    gated = gated if gated is not None else _entry(table, "mul8_gated") * width / 8

    def add(bits):
        exact = _entry(table, f"add{bits}")
        return exact if exact is not None else _entry(table, "add32") * bits / 32

    mux8 = _entry(table, "mux8x8")

    def per_selection(selections):
        """Mean pJ of one of ``selections`` ((ways, bits) each)."""
        selections = [tuple(s) for s in selections]
        total = sum(mux8 * (ways - 1) / 7 * bits / 8 for ways, bits in selections)
        return total / len(selections) if selections else 0.0
    return {
        "mul": mul, "mul_gated": gated, "add": add(acc),
        "add_idle": acc * _entry(table, "reg_bit_hold"),
        "lane_add": add(2 * width) if lanes > 1 else 0.0,
        "mux": per_selection(fixed_or_cell["selections"]),
        "edge_mux": per_selection(fixed_or_cell.get("edge_selections", [])),
        "dap_cmp": _entry(table, "cmp8") * width / 8,
        "reg_bit_write": _entry(table, "reg_bit_write"),
        "reg_bit_hold": _entry(table, "reg_bit_hold"),
    }



def _pricing(verilog: str, top: str, tech: str):
    """What pricing a run of this design on ``tech`` needs: ``(table, synthesis result, None)``,
    or ``(None, None, figures)`` with null figures and the reason where ``tech`` has no energy
    table, no liberty or no OpenSTA."""
    try:
        table = energy_table(tech)
    except EnergyTableError as exc:
        return None, None, no_energy(tech, str(exc))
    missing = synth.timing_missing(tech)
    if missing:
        return None, None, no_energy(tech, missing)
    result = synth.synthesize(verilog, top, tech)
    if result.fmax_mhz is None or result.area_um2 is None:
        return None, None, no_energy(tech, result.timing_missing
                                     or f"no area or fmax for `{tech}`")
    return table, result, None


def layer_energy(verilog: str, top: str, cell: dict, config, counts: dict, cycles: int,
                 tech: str = DEFAULT_TECH) -> LayerEnergy:
    """The energy figures of a layer of ``cycles`` cycles with action ``counts``
    (:func:`counts_from_probes` or :func:`counts_from_model`) on the design ``verilog``
    (top module ``top``), priced on ``tech``.

    A tech without an energy table, without a liberty or without OpenSTA gives null figures
    and the reason (:func:`no_energy`), not an error.

    Raises
    ------
    UnknownTechError
        ``tech`` is not a known tech.
    SynthError
        Yosys or OpenSTA failed on the design.
    """
    table, result, unpriced = _pricing(verilog, top, tech)
    if unpriced is not None:
        return unpriced
    flops = flop_count(result.cell_types)
    counts = dict(counts)
    covered = counts.pop("_covered_bits")
    counts["reg_bit_hold"] = max(0, flops * cycles - covered)
    fixed = _fixed(cell, config)
    pj = action_energy(table, fixed, config)
    breakdown = {name: counts[name] * pj[name] for name in ACTIONS}
    time_us = cycles / result.fmax_mhz
    breakdown["leakage"] = (table["leakage"]["w_per_um2"] * result.area_um2 * time_us * 1e6)
    energy = sum(breakdown.values())
    # What zero-value gating saved: each gated lane priced as a multiply instead, each idle
    # step as an accumulator add (the same run, counted the same way).
    saving = (counts["mul_gated"] * (pj["mul"] - pj["mul_gated"])
              + counts["add_idle"] * (pj["add"] - pj["add_idle"]))
    return LayerEnergy(
        tech=tech, energy_pj=round(energy, 3),
        energy_breakdown={k: round(v, 3) for k, v in breakdown.items()},
        time_us=round(time_us, 6), edp=round(energy * time_us, 3),
        fmax_mhz=result.fmax_mhz, area_um2=result.area_um2,
        counts={**counts, "flops": flops, "cycles": cycles},
        gating_saving_pj=round(saving, 3))


SCNN_ACTIONS = ("mul", "mul_zero", "xbar", "bank_add", "bank_read", "bank_write", "act_read",
                "act_write", "reg_bit_write", "reg_bit_hold", "icg_open", "icg_idle")
"""SCNN's action kinds, in breakdown order (``leakage`` follows); see the module docs."""


def _gated(words: int, bits: int) -> bool:
    """A memory of flip-flops whose rows are clock-gated (the rule of the module docs)."""
    return words * bits < MACRO_MIN_BITS and bits >= synth.GATE_MIN_BITS


def _memory_pj(table: dict, words: int, bits: int) -> tuple[float, float, float, bool]:
    """(read pJ, write pJ, leakage W, is SRAM) of one access to a ``words`` x ``bits``
    memory (the rule of the module docs)."""
    if words * bits >= MACRO_MIN_BITS:
        est = sram_model().estimate(words, bits)
        return est.read_pj, est.write_pj, est.leakage_w, True
    mux8 = _entry(table, "mux8x8")
    loaded = _gated(words, bits)        # the read register, on its own gate
    return (mux8 * (max(words, 2) - 1) / 7 * bits / 8
            + (bits * _entry(table, "reg_bit_write") if loaded else 0.0),
            bits * _entry(table, "reg_bit_write"), 0.0, False)


def scnn_gated_memories(memories: dict, pes: int) -> dict:
    """The clock-gated flip-flop memories of ``pes`` SCNN PEs (``Scnn.memories`` sizes):
    ``icgs`` (a gate per row and per read register) and ``bits`` (the flip-flops behind
    them, which a gate clocks only on an access)."""
    icgs = bits = 0
    for name, count in (("act", memories.get("act_banks", 1)), ("bank", memories["bank_count"])):
        words, width = memories[name]
        if not _gated(words, width):
            continue
        rows = max(words, 2)
        icgs += count * (rows + 1)
        bits += count * (rows + 1) * width
    return {"icgs": pes * icgs, "bits": pes * bits}


def scnn_gated_registers(gated: dict, probes: dict, pes: int) -> dict:
    """The clock-gated registers of ``pes`` SCNN PEs in a run (``Scnn.memories``'
    ``gated_registers``: part widths per action and in all) with the probe counts ``probes``:
    ``icgs`` (a gate per part at least ``gen.synth.GATE_MIN_BITS`` wide), ``bits`` (the
    flip-flops behind them), ``opened`` (gates opened: each occurrence of an action opens its
    parts' gates) and ``written`` (bits loaded)."""
    def gates(widths):
        return [w for w in widths if w >= synth.GATE_MIN_BITS]
    every = gates(gated["all"])
    opened = written = 0
    for action, widths in gated.items():
        if action != "all":
            opened += probes[action] * len(gates(widths))
            written += probes[action] * sum(gates(widths))
    return {"icgs": pes * len(every), "bits": pes * sum(every), "opened": opened,
            "written": written}


def scnn_layer_energy(verilog: str, top: str, config, memories: dict, probes: dict,
                      cycles: int, tech: str = DEFAULT_TECH, scale: int = 1) -> LayerEnergy:
    """SCNN's energy figures of a layer of ``cycles`` cycles from its probe counters
    (``Scnn.probes``) and memory sizes (``Scnn.memories``), priced on ``tech`` (see the module
    docs). Null figures with the reason where ``tech`` has no table, liberty or OpenSTA.
    ``scale``: the array that ran (``config``) has ``scale`` times the PEs of the synthesized
    ``verilog`` (an 8x8 array priced from the 2x2's synthesis: one PE module), so its flops and
    logic area count ``scale`` times."""
    table, result, unpriced = _pricing(verilog, top, tech)
    if unpriced is not None:
        return unpriced
    if scale != 1:
        result = dataclasses.replace(result, area_um2=result.area_um2 * scale,
                                     cell_types={k: v * scale
                                                 for k, v in result.cell_types.items()},
                                     sram_area_um2=(result.sram_area_um2 or 0.0) * scale)
    width, acc = config.data_width, config.acc_width
    pes = config.pe_rows * config.pe_cols
    act_r, act_w, act_leak, act_sram = _memory_pj(table, *memories["act"])
    bank_r, bank_w, bank_leak, bank_sram = _memory_pj(table, *memories["bank"])
    pairs = probes["pair"]
    counts = {
        "mul": probes["mul"], "mul_zero": pairs * config.f * config.i - probes["mul"],
        "xbar": probes["grant"], "bank_add": probes["bank_write"],
        "bank_read": probes["bank_read"], "bank_write": probes["bank_write"],
        "act_read": pairs, "act_write": probes["act_write"], "wgt_push": probes["wgt_push"],
    }
    regfiles = scnn_gated_memories(memories, pes)
    registers = scnn_gated_registers(memories["gated_registers"], probes, pes)
    counts["reg_bit_write"] = registers["written"]
    written = 0
    for name, sram, n in (("act", act_sram, counts["act_write"]),
                          ("bank", bank_sram, counts["bank_write"])):
        if not sram and not _gated(*memories[name]):
            written += n * memories[name][1]
    flops = flop_count(result.cell_types)
    counts["reg_bit_hold"] = max(0, (flops - regfiles["bits"] - registers["bits"]) * cycles
                                 - written)
    # A gate opens for every write and every read of a gated memory, and for every load of
    # a gated register (its action's count).
    opened = registers["opened"]
    for name, n_read, n_write in (("act", pairs, counts["act_write"]),
                                  ("bank", counts["bank_read"], counts["bank_write"])):
        if _gated(*memories[name]):
            opened += n_write + n_read
    counts["icg_open"] = opened
    counts["icg_idle"] = (regfiles["icgs"] + registers["icgs"]) * cycles - opened
    mul = _entry(table, f"mul{width}")
    mul = mul if mul is not None else _entry(table, "mul8") * (width / 8) ** 2
    gated = _entry(table, f"mul{width}_gated")
    gated = gated if gated is not None else _entry(table, "mul8_gated") * width / 8
    add = _entry(table, f"add{acc}")
    add = add if add is not None else _entry(table, "add32") * acc / 32
    pj = {"mul": mul, "mul_zero": gated,
          "xbar": _entry(table, "mux8x8") * (memories["requesters"] - 1) / 7
          * memories["product_bits"] / 8,
          "bank_add": add, "bank_read": bank_r, "bank_write": bank_w,
          "act_read": act_r, "act_write": act_w,
          "reg_bit_write": _entry(table, "reg_bit_write"),
          "reg_bit_hold": _entry(table, "reg_bit_hold"),
          "icg_open": _entry(table, "icg_open"), "icg_idle": _entry(table, "icg_idle")}
    breakdown = {name: counts[name] * pj[name] for name in SCNN_ACTIONS}
    time_us = cycles / result.fmax_mhz
    sram_leak = pes * (memories.get("act_banks", 1) * act_leak
                       + memories["bank_count"] * bank_leak)
    breakdown["leakage"] = (table["leakage"]["w_per_um2"] * result.area_um2 + sram_leak) \
        * time_us * 1e6
    energy = sum(breakdown.values())
    return LayerEnergy(
        tech=tech, energy_pj=round(energy, 3),
        energy_breakdown={k: round(v, 3) for k, v in breakdown.items()},
        time_us=round(time_us, 6), edp=round(energy * time_us, 3),
        fmax_mhz=result.fmax_mhz, area_um2=result.area_um2,
        counts={**counts, "flops": flops, "gated_flops": regfiles["bits"] + registers["bits"],
                "icgs": regfiles["icgs"] + registers["icgs"], "cycles": cycles,
                "sram_area_um2": result.sram_area_um2})
