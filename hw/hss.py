"""HighLight's hierarchical structured sparsity (HSS) datapath, and a flat G:H strawman.

HSS [(G1, H1), (G0, H0)] along K (see ``sim/golden/hss.py``): rank-0 blocks of H0 values hold
at most G0 non-zeros, rank-1 groups of H1 blocks hold at most G1 non-empty blocks. One
datapath supports a *set* of patterns, the cross product of rank-1 options and rank-0 options
(``patterns = "4:4,4:5,4:6,4:7 x 4:4,2:4,1:4"``: 12 patterns from dense to 1/7 dense), and the
active one is chosen at run time by the ``pattern`` input port (its index in the set).

How the HSS datapath exploits each rank (``hss-mux``; ``highlight`` splits it, see there):

* Rank 1, in time. A rank-1 group (H1 * H0 activations, the compressed weights of its at most
  G1 non-empty blocks) arrives in one transfer. A sequencer replays it as T = ceil(G1 / P)
  steps, P = L / G0 blocks per step, L = max G0 of the set (the multipliers): empty blocks
  cost no cycles, a group costs T cycles instead of the dense H1 * H0 / L.
* Rank 0, in space. Each step carries S = L / min G0 rank-1 *slots* (a block index) and L lanes
  (value, offset). A slot's H1max:1 mux picks its block's H0 activations out of the group (the
  slot's block index); each lane's H0:1 mux picks the activation its weight meets. Lane j
  reads slot j / min G0; the sequencer, not the cell, adapts to the active pattern by writing
  the block of lane group j / G0 into every slot that group covers.

So the run-time pattern costs a small lane-steering table at the sequencer (once per weight
stream), while the per-multiplier mux stays H1max:1 (shared by min G0 lanes) plus H0:1. In a
stand-alone PE with the example set (min G0 = 1) nothing is shared: each lane has its own 7:1
block mux of 32 bits, which costs about what gh-flat's 28:1 mux of 8 bits costs (see
``sparsegen bench highlight``). The ``highlight`` array moves the block muxes out of the cells:
one :class:`~.highlight.Rank1Select` per array picks each row's blocks for all columns (the
tile's columns share rank-1 block lists), so a cell keeps only the H0:1 lane muxes.

``gh-flat`` is the strawman of the same densities with flat G:H ratios (G = G1 * G0,
H = H1 * H0), built as a hardware engineer would: every lane has one Hmax:1 mux over the
window (Hmax the largest H of the set); a ratio with a smaller H uses the low H inputs (the
window is zero beyond H and its offsets are below H), so the run-time ratio only changes the
sequencer's step count and steering, never the lane mux.

Ideal speedup (both designs): dense MAC slots over the slots the design cannot skip,
H1 * H0 / (L * T) per group for L multipliers; 1 / density when G0 divides L and P divides G1.
"""

import dataclasses
import math
import re

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import Config, check_config, param
from .pe import DotProductPE

__all__ = [
    "DEFAULT_PATTERNS", "HSSMuxConfig", "GHFlatConfig", "HSSMux", "FlatMux", "HSSMuxPE",
    "GHFlatPE", "GroupSequencer", "parse_pattern_set", "parse_ratios", "flat_ratios",
    "group_acts_layout", "hss_group_layout", "hss_step_layout", "hss_pe_input_layout",
    "flat_group_layout", "flat_step_layout", "flat_pe_input_layout", "select_hss_lanes",
]

#: The issue's example set: 12 patterns from dense (4:4,4:4) to 1/7 dense (4:7,1:4).
DEFAULT_PATTERNS = "4:4,4:5,4:6,4:7 x 4:4,2:4,1:4"
#: Largest G or H at one rank, and largest rank-1 group (H1 * H0) / flat block, in values.
MAX_H = 16
MAX_WINDOW = 64

_RATIO = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def _bits(n: int) -> int:
    """Bits of an index into n things (at least 1, so no port is zero-width)."""
    return max(1, (n - 1).bit_length())


def parse_ratios(text: str, field: str, what: str, hi: int) -> tuple[tuple[int, int], ...]:
    """Comma-separated ``G:H`` ratios, each 1 <= G <= H <= ``hi``, no duplicates."""
    ratios = []
    for item in text.split(","):
        match = _RATIO.match(item)
        if match is None:
            raise ValueError(f"`{field}`: {what} {item.strip()!r} must look like G:H")
        g, h = int(match.group(1)), int(match.group(2))
        if not 1 <= g <= h <= hi:
            raise ValueError(f"`{field}`: {what} {g}:{h} must have 1 <= G <= H <= {hi}")
        if (g, h) in ratios:
            raise ValueError(f"`{field}`: {what} {g}:{h} is listed twice")
        ratios.append((g, h))
    return tuple(ratios)


def parse_pattern_set(text: str):
    """``"R1 x R0"`` (comma-separated G:H lists) -> (rank-1 options, rank-0 options).

    Raises
    ------
    ValueError
        Syntax, a ratio out of range or repeated, rank-0 options with different H0, G0 values
        that do not divide each other, no dense pattern, or groups over :data:`MAX_WINDOW`.
    """
    parts = text.split("x")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ValueError(f"`patterns` must look like '4:4,4:5 x 4:4,2:4' (rank-1 G:H options "
                         f"x rank-0 G:H options), not {text!r}")
    rank1 = parse_ratios(parts[0], "patterns", "rank-1 option", MAX_H)
    rank0 = parse_ratios(parts[1], "patterns", "rank-0 option", MAX_H)
    h0s = sorted({h for _, h in rank0})
    if len(h0s) > 1:
        raise ValueError(f"`patterns`: rank-0 options must share one H0, not "
                         f"{', '.join(map(str, h0s))}")
    g0s = sorted({g for g, _ in rank0}, reverse=True)
    if any(big % small for big, small in zip(g0s, g0s[1:])):
        raise ValueError(f"`patterns`: rank-0 G0 values {', '.join(map(str, g0s))} must each "
                         f"divide the next larger one")
    if not any(g == h for g, h in rank1) or not any(g == h for g, h in rank0):
        raise ValueError(f"`patterns` must include a dense pattern (H:H at both ranks), "
                         f"not {text!r}")
    window = max(h for _, h in rank1) * h0s[0]
    if window > MAX_WINDOW:
        raise ValueError(f"`patterns`: rank-1 groups of up to {window} values (H1 * H0) are "
                         f"over {MAX_WINDOW}")
    return rank1, rank0


def flat_ratios(patterns: str) -> str:
    """The flat ``G:H`` ratios (G1*G0 : H1*H0) of an HSS pattern set, for ``gh-flat``."""
    rank1, rank0 = parse_pattern_set(patterns)
    ratios = []
    for g1, h1 in rank1:
        for g0, h0 in rank0:
            if (g1 * g0, h1 * h0) not in ratios:
                ratios.append((g1 * g0, h1 * h0))
    return ",".join(f"{g}:{h}" for g, h in ratios)


class HSSSet:
    """Sizes derived from the ``patterns`` field (a mixin of the HSS configs).

    Pattern ``i`` of the set is rank-1 option ``i // len(rank0)`` with rank-0 option
    ``i % len(rank0)``; tuples are (G1, H1, G0, H0).
    """

    @property
    def rank1(self) -> tuple[tuple[int, int], ...]:
        return parse_pattern_set(self.patterns)[0]

    @property
    def rank0(self) -> tuple[tuple[int, int], ...]:
        return parse_pattern_set(self.patterns)[1]

    @property
    def pattern_set(self) -> tuple[tuple[int, int, int, int], ...]:
        return tuple((g1, h1, g0, h0) for g1, h1 in self.rank1 for g0, h0 in self.rank0)

    @property
    def h0(self) -> int:
        return self.rank0[0][1]

    @property
    def h1_max(self) -> int:
        return max(h for _, h in self.rank1)

    @property
    def g1_max(self) -> int:
        return max(g for g, _ in self.rank1)

    @property
    def lanes(self) -> int:
        """Multipliers per PE: the largest G0, so the densest rank-0 option takes one block
        per step."""
        return max(g for g, _ in self.rank0)

    @property
    def g0_max(self) -> int:
        return self.lanes

    @property
    def g0_min(self) -> int:
        return min(g for g, _ in self.rank0)

    @property
    def slots(self) -> int:
        """Rank-1 slots (H1max:1 block muxes) per step: lanes / min G0."""
        return self.lanes // self.g0_min

    @property
    def window(self) -> int:
        """Activations per rank-1 group the hardware holds: H1max * H0."""
        return self.h1_max * self.h0

    @property
    def zvcg(self) -> bool:
        return False

    def steps(self, pattern) -> int:
        """Steps (cycles) per rank-1 group for pattern (G1, H1, G0, H0): ceil(G1 / (L / G0)).
        """
        g1, _, g0, _ = pattern
        return math.ceil(g1 / (self.lanes // g0))


@dataclasses.dataclass(frozen=True)
class HSSMuxConfig(HSSSet, Config):
    """Configuration of :class:`HSSMuxPE`."""

    patterns: str = param(DEFAULT_PATTERNS,
                          help="supported HSS set: rank-1 G:H options x rank-0 G:H options")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")

    def _check(self):
        parse_pattern_set(self.patterns)

    @property
    def multipliers(self) -> int:
        return self.lanes


@dataclasses.dataclass(frozen=True)
class GHFlatConfig(Config):
    """Configuration of :class:`GHFlatPE`: the flat G:H ratios it supports."""

    ratios: str = param(flat_ratios(DEFAULT_PATTERNS),
                        help="supported flat G:H ratios (comma-separated)")
    lanes: int = param(4, lo=1, hi=16, help="multipliers; a step carries this many weights")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")

    def _check(self):
        parse_ratios(self.ratios, "ratios", "ratio", MAX_WINDOW)

    @property
    def multipliers(self) -> int:
        return self.lanes

    @property
    def ratio_list(self) -> tuple[tuple[int, int], ...]:
        return parse_ratios(self.ratios, "ratios", "ratio", MAX_WINDOW)

    @property
    def g_max(self) -> int:
        return max(g for g, _ in self.ratio_list)

    @property
    def window(self) -> int:
        return max(h for _, h in self.ratio_list)

    @property
    def zvcg(self) -> bool:
        return False

    def steps(self, ratio) -> int:
        """Steps (cycles) per flat block of ratio (G, H): ceil(G / lanes)."""
        return math.ceil(ratio[0] / self.lanes)


# -- layouts -------------------------------------------------------------------------------


def group_acts_layout(config) -> data.ArrayLayout:
    """The dense activations of one rank-1 group: H1max blocks of H0 (block-major along K)."""
    return data.ArrayLayout(data.ArrayLayout(signed(config.data_width), config.h0),
                            config.h1_max)


def hss_group_layout(config) -> data.StructLayout:
    """One compressed rank-1 group of one weight column.

    ``block[s]``: rank-0 block (0..H1max-1) of rank-1 slot s (G1max slots); ``value[e]`` and
    ``offset[e]`` for e = s * G0max + r: the r-th non-zero of slot s and its position in the
    block. Unused slots and pairs hold value 0.
    """
    pairs = config.g1_max * config.g0_max
    return data.StructLayout({
        "block": data.ArrayLayout(unsigned(_bits(config.h1_max)), config.g1_max),
        "value": data.ArrayLayout(signed(config.data_width), pairs),
        "offset": data.ArrayLayout(unsigned(_bits(config.h0)), pairs),
    })


def hss_step_layout(config) -> data.StructLayout:
    """One step of a column: ``slots`` block indices and ``lanes`` (value, offset) pairs; lane
    j reads slot j // min G0."""
    return data.StructLayout({
        "block": data.ArrayLayout(unsigned(_bits(config.h1_max)), config.slots),
        "value": data.ArrayLayout(signed(config.data_width), config.lanes),
        "offset": data.ArrayLayout(unsigned(_bits(config.h0)), config.lanes),
    })


def hss_pe_input_layout(config: HSSMuxConfig) -> data.StructLayout:
    """Payload of :class:`HSSMuxPE` input: one rank-1 group (activations, weights), ``last``."""
    return data.StructLayout({"a": group_acts_layout(config), "w": hss_group_layout(config),
                              "last": 1})


def flat_group_layout(config: GHFlatConfig) -> data.StructLayout:
    """One flat G:H block of one weight column: G max (value, offset) pairs, offsets 0..H-1."""
    return data.StructLayout({
        "value": data.ArrayLayout(signed(config.data_width), config.g_max),
        "offset": data.ArrayLayout(unsigned(_bits(config.window)), config.g_max),
    })


def flat_step_layout(config: GHFlatConfig) -> data.StructLayout:
    return data.StructLayout({
        "value": data.ArrayLayout(signed(config.data_width), config.lanes),
        "offset": data.ArrayLayout(unsigned(_bits(config.window)), config.lanes),
    })


def flat_pe_input_layout(config: GHFlatConfig) -> data.StructLayout:
    """Payload of :class:`GHFlatPE` input: one flat block (window of activations, weights)."""
    return data.StructLayout({
        "a": data.ArrayLayout(signed(config.data_width), config.window),
        "w": flat_group_layout(config),
        "last": 1,
    })


# -- the two-level selection ------------------------------------------------------------------


def select_hss_lanes(config, acts, step) -> list:
    """(activation, weight) operand pairs of the L lanes for one step.

    ``acts`` is a :func:`group_acts_layout` view, ``step`` a :func:`hss_step_layout` view.
    Rank 1: slot q picks block ``step.block[q]`` (an H1max:1 mux of H0 values). Rank 0: lane j
    picks ``offset[j]`` of its slot's block (an H0:1 mux).
    """
    chosen = [acts[step.block[q]] for q in range(config.slots)]
    return [(chosen[j // config.g0_min][step.offset[j]], step.value[j])
            for j in range(config.lanes)]


class FlatMux(wiring.Component):
    """The flat multi-ratio selection of ``gh-flat``: per lane, one window:1 mux.

    Parameters
    ----------
    config : GHFlatConfig

    Members
    -------
    window : In(ArrayLayout(signed(data_width), window))
        The block's activations (zero beyond the active ratio's H).
    step : In(flat_step_layout(config))
        The lanes' (value, offset) pairs; offsets are below the active ratio's H.
    a_sel, w_val : Out(ArrayLayout(signed(data_width), lanes))
        ``a_sel[j] = window[step.offset[j]]``, ``w_val[j] = step.value[j]``.

    Every ratio shares the one Hmax:1 mux per lane: its offsets address the low H inputs.

    Timing
    ------
    Combinational.
    """

    def __init__(self, config: GHFlatConfig):
        self._config = config
        lanes = data.ArrayLayout(signed(config.data_width), config.lanes)
        super().__init__({
            "window": In(data.ArrayLayout(signed(config.data_width), config.window)),
            "step": In(flat_step_layout(config)),
            "a_sel": Out(lanes),
            "w_val": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        for j in range(cfg.lanes):
            m.d.comb += [self.a_sel[j].eq(self.window[self.step.offset[j]]),
                         self.w_val[j].eq(self.step.value[j])]
        return m


class HSSMux(wiring.Component):
    """The two-level HSS selection: rank-1 block muxes, then rank-0 lane muxes.

    Parameters
    ----------
    config : HSSMuxConfig (or any config with the :class:`HSSSet` sizes)

    Members
    -------
    acts : In(group_acts_layout(config))
        Dense activations of one rank-1 group.
    step : In(hss_step_layout(config))
        The slots' block indices and the lanes' (value, offset) pairs.
    a_sel : Out(ArrayLayout(signed(data_width), lanes))
        ``a_sel[j] = acts[step.block[j // min G0]][step.offset[j]]``.
    w_val : Out(ArrayLayout(signed(data_width), lanes))
        ``w_val[j] = step.value[j]``.

    Timing
    ------
    Combinational.
    """

    def __init__(self, config):
        self._config = config
        lanes = data.ArrayLayout(signed(config.data_width), config.lanes)
        super().__init__({
            "acts": In(group_acts_layout(config)),
            "step": In(hss_step_layout(config)),
            "a_sel": Out(lanes),
            "w_val": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        for j, (a, w) in enumerate(select_hss_lanes(self._config, self.acts, self.step)):
            m.d.comb += [self.a_sel[j].eq(a), self.w_val[j].eq(w)]
        return m


# -- the sequencer -------------------------------------------------------------------------


def _case(m, value: int, count: int):
    """``m.Case(value)``, or ``m.Default()`` for the last of ``count`` values, so a switch
    over a non-power-of-two range covers every input (Verilator's CASEINCOMPLETE)."""
    return m.Default() if value == count - 1 else m.Case(value)


class GroupSequencer(wiring.Component):
    """Replays each input group as the steps of the active pattern.

    Parameters
    ----------
    a_shape : shape
        Passed through unchanged on every step (the group's activations).
    w_in, w_out : layouts
        A column's compressed group and a column's step.
    columns : int or None
        Weight columns (``w`` is an array of them), or ``None`` for a single column.
    steps : list[int]
        Steps per group of each pattern (indexed by ``pattern``).
    plan : callable
        ``plan(pattern_index, t)`` -> list over the step's fields of (name, [(source index or
        None, ...)]): which group element feeds each step element; ``None`` feeds zero.
    shared : (layout, layout) or None
        Fields steered once for all columns (``highlight``'s tile-shared rank-1 block list):
        the group's and the step's layouts of the payload field ``shared``; a plan entry whose
        name is a field of these steers ``shared``, every other entry each column's ``w``.

    Members
    -------
    pattern : In(range(len(steps)))
        Active pattern; hold it steady while groups are in flight.
    i : In(stream.Signature({a, w, [shared,] last}))
        One group per transfer.
    o : Out(stream.Signature({a, w, [shared,] last}))
        Its steps; ``last`` only on the final step of a group marked ``last``.

    Timing
    ------
    One register stage: a group accepted at edge E offers step 0 after E and step t is
    accepted at the earliest at edge E + 1 + t. A new group is accepted at the same edge as the
    previous group's final step, so steps flow every cycle; ``o`` back-pressure holds the
    current step (and ``i.ready`` low).
    """

    def __init__(self, a_shape, w_in, w_out, columns, steps, plan, shared=None):
        self._columns, self._steps, self._plan = columns, list(steps), plan
        self._w_in, self._shared_in = w_in, None if shared is None else shared[0]

        def payload(w, s):
            fields = {"a": a_shape, "w": w if columns is None else data.ArrayLayout(w, columns)}
            if s is not None:
                fields["shared"] = s
            return data.StructLayout({**fields, "last": 1})
        shared_in, shared_out = (None, None) if shared is None else shared
        super().__init__({
            "pattern": In(range(len(steps))),
            "i": In(stream.Signature(payload(w_in, shared_in))),
            "o": Out(stream.Signature(payload(w_out, shared_out))),
        })

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        t = Signal(range(max(self._steps)))
        held = Signal.like(self.i.payload)
        final = Signal()
        with m.Switch(self.pattern):
            for p, count in enumerate(self._steps):
                with _case(m, p, len(self._steps)):
                    m.d.comb += final.eq(t == count - 1)

        m.d.comb += self.i.ready.eq(~full | (self.o.ready & final))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), full.eq(1), t.eq(0)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += t.eq(t + 1)
            with m.If(final):
                m.d.sync += full.eq(0)
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.a.eq(held.a),
            self.o.payload.last.eq(held.last & final),
        ]

        # The steering table: for each step field element, which group element it copies.
        # It depends only on (pattern, t), so it is computed once for all columns.
        fields = {}
        with m.Switch(self.pattern):
            for p, count in enumerate(self._steps):
                with _case(m, p, len(self._steps)):
                    with m.Switch(t):
                        for step in range(count):
                            with _case(m, step, count):
                                for name, sources in self._plan(p, step):
                                    for e, src in enumerate(sources):
                                        sel, on = self._steer(fields, name, e)
                                        m.d.comb += [sel.eq(src or 0), on.eq(src is not None)]
        groups = [held.w] if self._columns is None else [held.w[c] for c in
                                                         range(self._columns)]
        outs = [self.o.payload.w] if self._columns is None else [
            self.o.payload.w[c] for c in range(self._columns)]
        for (name, e), (sel, on) in fields.items():
            if self._is_shared(name):
                m.d.comb += self.o.payload.shared[name][e].eq(
                    Mux(on, held.shared[name][sel], 0))
                continue
            for group, out in zip(groups, outs):
                m.d.comb += out[name][e].eq(Mux(on, group[name][sel], 0))
        return m

    def _is_shared(self, name) -> bool:
        return self._shared_in is not None and name in self._shared_in.members

    def _steer(self, fields, name, e):
        """The (source index, enable) signals of step element ``name[e]``, made on first use.
        """
        if (name, e) not in fields:
            layout = self._shared_in if self._is_shared(name) else self._w_in
            length = layout[name].shape.length
            fields[(name, e)] = (Signal(range(max(2, length)), name=f"src_{name}{e}"),
                                 Signal(name=f"on_{name}{e}"))
        return fields[(name, e)]


def hss_plan(config):
    """The HSS steering of :class:`GroupSequencer` for ``config``'s pattern set.

    Step t of a pattern with G0 covers rank-1 slots t*P .. t*P+P-1 (P = L / G0); lane j takes
    pair j % G0 of slot t*P + j // G0; physical slot q (lanes q*minG0 ..) takes that slot's
    block. Slots beyond G1 (of the pattern) feed zeros.
    """
    patterns = config.pattern_set

    def plan(p, t):
        g1, _, g0, _ = patterns[p]
        per_step = config.lanes // g0
        values = []
        for j in range(config.lanes):
            s = t * per_step + j // g0
            values.append(s * config.g0_max + j % g0 if s < g1 and j < per_step * g0
                          else None)
        blocks = []
        for q in range(config.slots):
            s = t * per_step + (q * config.g0_min) // g0
            blocks.append(s if s < g1 and q * config.g0_min < per_step * g0 else None)
        return [("value", values), ("offset", values), ("block", blocks)]
    return plan


def flat_plan(config: GHFlatConfig):
    """Flat steering: lane j of step t takes pair t * lanes + j (zero beyond G of the ratio).
    """
    ratios = config.ratio_list

    def plan(r, t):
        g = ratios[r][0]
        values = [t * config.lanes + j if t * config.lanes + j < g else None
                  for j in range(config.lanes)]
        return [("value", values), ("offset", values)]
    return plan


# -- PEs -----------------------------------------------------------------------------------


class _HSSStepPE(DotProductPE):
    """The dot-product pipeline of :mod:`.pe` fed by the HSS selection, one step per cycle."""

    def __init__(self, config):
        super().__init__(config, data.StructLayout({
            "a": group_acts_layout(config), "w": hss_step_layout(config), "last": 1}))

    def _operands(self, m):
        m.submodules.mux = mux = HSSMux(self._config)
        m.d.comb += [mux.acts.eq(self.i.payload.a), mux.step.eq(self.i.payload.w)]
        return mux.a_sel, mux.w_val


class _FlatStepPE(DotProductPE):
    """The dot-product pipeline fed by one window:1 flat mux per lane."""

    def __init__(self, config):
        super().__init__(config, data.StructLayout({
            "a": data.ArrayLayout(signed(config.data_width), config.window),
            "w": flat_step_layout(config), "last": 1}))

    def _operands(self, m):
        m.submodules.mux = mux = FlatMux(self._config)
        m.d.comb += [mux.window.eq(self.i.payload.a), mux.step.eq(self.i.payload.w)]
        return mux.a_sel, mux.w_val


class _GroupPE(wiring.Component):
    """A :class:`GroupSequencer` in front of a step PE; the shared shell of both PEs."""

    def __init__(self, config, input_layout, n_patterns):
        self._config = config
        super().__init__({
            "pattern": In(range(n_patterns)),
            "i": In(stream.Signature(input_layout)),
            "o": Out(stream.Signature(signed(config.acc_width))),
        })

    @property
    def config(self):
        return self._config

    def _parts(self):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        seq, pe = self._parts()
        m.submodules.seq = seq
        m.submodules.pe = pe
        m.d.comb += seq.pattern.eq(self.pattern)
        wiring.connect(m, wiring.flipped(self.i), seq.i)
        wiring.connect(m, seq.o, pe.i)
        wiring.connect(m, pe.o, wiring.flipped(self.o))
        return m


class HSSMuxPE(_GroupPE):
    """HighLight's HSS PE (``hss-mux``): group sequencer, two-level mux, L multipliers.

    Parameters
    ----------
    config : HSSMuxConfig

    Members
    -------
    pattern : In(range(len(config.pattern_set)))
        Run-time pattern: index into ``config.pattern_set`` (rank-1 option major). Set it
        before a layer starts and hold it.
    i : In(stream.Signature(hss_pe_input_layout(config)))
        One rank-1 group per transfer: ``a`` its H1max x H0 dense activations (blocks beyond
        the pattern's H1 are zero), ``w`` its compressed weights (:func:`hss_group_layout`),
        ``last`` on the final group of a dot product.
    o : Out(stream.Signature(signed(acc_width)))
        One transfer per dot product: sum of value * activation over its groups, wrapped.

    Timing
    ------
    A group costs T = ceil(G1 / (L / G0)) cycles (its steps), so empty rank-1 blocks are
    skipped in time; throughput is L MACs per cycle of which all are useful when the weights
    fill the pattern. A dot product whose ``last`` group is accepted at edge E leaves at edge
    E + T + 4 (sequencer 1 stage plus T - 1 further steps, then the 4-stage pipeline of
    :class:`~.pe.DensePE`). While ``o`` is stalled the pipeline holds and ``i.ready`` is low.
    """

    def __init__(self, config: HSSMuxConfig):
        check_config(self, config, HSSMuxConfig)
        super().__init__(config, hss_pe_input_layout(config), len(config.pattern_set))

    def _parts(self):
        cfg = self._config
        seq = GroupSequencer(group_acts_layout(cfg), hss_group_layout(cfg),
                             hss_step_layout(cfg), None,
                             [cfg.steps(p) for p in cfg.pattern_set], hss_plan(cfg))
        return seq, _HSSStepPE(cfg)


class GHFlatPE(_GroupPE):
    """The flat multi-ratio strawman (``gh-flat``): one Hmax:1 mux per lane for every ratio.

    Parameters
    ----------
    config : GHFlatConfig

    Members
    -------
    pattern : In(range(len(config.ratio_list)))
        Run-time ratio: index into ``config.ratio_list``.
    i : In(stream.Signature(flat_pe_input_layout(config)))
        One flat block per transfer: ``a`` the H activations (zero beyond the ratio's H),
        ``w`` up to G max (value, offset) pairs, ``last`` on the final block of a dot product.
    o : Out(stream.Signature(signed(acc_width)))
        One transfer per dot product, wrapped to ``acc_width``.

    Timing
    ------
    A block of ratio G:H costs ceil(G / lanes) cycles; otherwise as :class:`HSSMuxPE`
    (result at edge E + T + 4 after the edge E that accepted the ``last`` block).
    """

    def __init__(self, config: GHFlatConfig):
        check_config(self, config, GHFlatConfig)
        super().__init__(config, flat_pe_input_layout(config), len(config.ratio_list))

    def _parts(self):
        cfg = self._config
        seq = GroupSequencer(data.ArrayLayout(signed(cfg.data_width), cfg.window),
                             flat_group_layout(cfg), flat_step_layout(cfg), None,
                             [cfg.steps(r) for r in cfg.ratio_list], flat_plan(cfg))
        return seq, _FlatStepPE(cfg)
