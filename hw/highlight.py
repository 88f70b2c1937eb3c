"""HighLight: an output-stationary array of HSS PEs with a run-time pattern (``highlight``).

Dataflow. The array is the output-stationary :class:`~.systolic.SystolicCore` (see there for
skew, fill and drain): cell (r, c) accumulates O[m0 + r, n0 + c]. Its input stream carries one
rank-1 group per transfer: for every row r the dense activations A[m0 + r, group] (H1max x H0,
zero beyond the pattern's H1), the group's rank-1 block list (``shared.block``: G1max block
indices, one list for the whole tile of columns), and for every column c the rank-0 pairs of
W[group, n0 + c] (value, offset per slot). One :class:`~.hss.GroupSequencer` at the array edge
replays each group as T = ceil(G1 / (L / G0)) aligned steps for the active pattern:

* rank 1 in time, selected once per row at the edge: only the group's listed blocks become
  steps, so a group of H1 * H0 values costs T cycles (dense: H1 * H0 / L); for each step,
  :class:`Rank1Select` picks the step's S = L / min G0 blocks (S H1max:1 muxes of H0 values
  per *row*, not per cell) out of the held group, and the row token carries only those S * H0
  activations;
* rank 0 in space, in the cells: each cell has L multipliers (L = max G0 of the set) and only
  L H0:1 lane muxes; lane j reads offset[j] of the row token's block j // min G0.

Format constraint. Selecting rank-1 blocks once per row serves all C columns only if they
name the same blocks: the C columns of an output tile share one rank-1 block list per group
(``share=cols`` in ``sim/golden/hss.py``: in every group at most G1 blocks are non-empty in any
of the tile's columns; rank 0 stays per column). ``sparsegen sim highlight`` checks it and names
the first violating group and tile; ``--prune`` prunes to it (per-column rank 0, then the tile's
G1 blocks of largest summed |w|); ``sparsegen bench hss-share`` prints what it costs in kept
weight magnitude against plain per-column HSS.

Activation sparsity: the cells gate zero operands (``zvcg``, on by default): a lane whose
activation or weight is zero keeps its product register and adds a forced zero, so no multiply
is done; the layer harness counts the gated lanes from the RTL run (``gated`` probes) and the
energy model prices them (``mul_gated``).

The pattern is a run-time input (index into ``patterns``, rank-1 option major); only the
sequencer's steering table and step count depend on it, so one piece of hardware, and one
Verilog build, serves every pattern of the set, dense included.

Ideal speedup over a dense array with equal multipliers: dense MAC slots over the slots this
design cannot skip, H1 * H0 / (L * T) per group; for the default set that is exactly
1 / density (1x dense ... 7x at 4:7,1:4). What the RTL achieves adds fill/drain per output
tile and the padding of K to whole groups (see ``sim/highlight.py`` for the cycle model).
"""

import dataclasses
import re

from amaranth import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .hss import (
    DEFAULT_PATTERNS,
    GroupSequencer,
    HSSSet,
    group_acts_layout,
    hss_plan,
    parse_pattern_set,
)
from .params import Config, check_config, param
from .systolic import CellKind, SystolicCore, core_latency, lane_sum_bits, token_bits

__all__ = ["HighLightConfig", "HighLight", "Rank1Select", "highlight_input_layout",
           "pattern_text", "row_token_layout", "column_pairs_layout", "lane_step_layout"]

_RUN_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*$")


def pattern_text(pattern) -> str:
    """``(G1, H1, G0, H0)`` -> ``"G1:H1,G0:H0"``."""
    g1, h1, g0, h0 = pattern
    return f"{g1}:{h1},{g0}:{h0}"


@dataclasses.dataclass(frozen=True)
class HighLightConfig(HSSSet, Config):
    """Configuration of :class:`HighLight`. ``pattern`` is not hardware: it is the run-time
    setting ``sparsegen sim`` drives into the ``pattern`` port."""

    patterns: str = param(DEFAULT_PATTERNS,
                          help="supported HSS set: rank-1 G:H options x rank-0 G:H options")
    pattern: str = param("dense", help="run-time pattern G1:H1,G0:H0 used by `sim` (one of "
                                       "`patterns`; dense = the set's first H:H,H:H)")
    rows: int = param(4, lo=1, hi=64, help="PE rows (output rows per tile)")
    cols: int = param(4, lo=1, hi=64, help="PE columns (output columns per tile)")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")
    zvcg: bool = param(True, help="zero-value gating: a lane with a zero activation or weight "
                                  "holds its product register (no multiply)")

    def _check(self):
        parse_pattern_set(self.patterns)
        self.active                                     # noqa: B018 - validates `pattern`

    @property
    def active(self) -> tuple[int, int, int, int]:
        """The run-time pattern (G1, H1, G0, H0).

        Raises
        ------
        ValueError
            ``pattern`` is malformed or not in ``patterns``.
        """
        text = self.pattern.strip()
        if text == "dense":
            return next(p for p in self.pattern_set if p[0] == p[1] and p[2] == p[3])
        match = _RUN_PATTERN.match(text)
        if match is None:
            raise ValueError(f"`pattern` must be 'dense' or look like 'G1:H1,G0:H0' "
                             f"(e.g. 4:6,2:4), not {self.pattern!r}")
        pattern = tuple(int(g) for g in match.groups())
        if pattern not in self.pattern_set:
            raise ValueError(f"`pattern` {pattern_text(pattern)} is not in `patterns` "
                             f"({self.patterns})")
        return pattern

    @property
    def pattern_index(self) -> int:
        """Value of the ``pattern`` port for :attr:`active`."""
        return self.pattern_set.index(self.active)

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols * self.lanes


def _index(n: int) -> unsigned:
    return unsigned(max(1, (n - 1).bit_length()))


def column_pairs_layout(config: HighLightConfig) -> data.StructLayout:
    """One column's rank-0 pairs of one rank-1 group: ``value[e]``/``offset[e]``, e = s * G0max
    + r: the r-th non-zero of the tile's slot s in this column (0 where it has none)."""
    pairs = config.g1_max * config.g0_max
    return data.StructLayout({
        "value": data.ArrayLayout(signed(config.data_width), pairs),
        "offset": data.ArrayLayout(_index(config.h0), pairs),
    })


def lane_step_layout(config: HighLightConfig) -> data.StructLayout:
    """A column token: the L lanes' (value, offset) pairs of one step."""
    return data.StructLayout({
        "value": data.ArrayLayout(signed(config.data_width), config.lanes),
        "offset": data.ArrayLayout(_index(config.h0), config.lanes),
    })


def _blocks_layout(config: HighLightConfig, count: int) -> data.StructLayout:
    return data.StructLayout({"block": data.ArrayLayout(_index(config.h1_max), count)})


def row_token_layout(config: HighLightConfig) -> data.ArrayLayout:
    """A row token: the S = L / min G0 rank-0 blocks (H0 activations each) of one step."""
    return data.ArrayLayout(data.ArrayLayout(signed(config.data_width), config.h0),
                            config.slots)


def highlight_input_layout(config: HighLightConfig) -> data.StructLayout:
    """Payload of :class:`HighLight` input: one rank-1 group of every row and column, and the
    tile's rank-1 block list (``shared.block``, G1max indices)."""
    return data.StructLayout({
        "a": data.ArrayLayout(group_acts_layout(config), config.rows),
        "w": data.ArrayLayout(column_pairs_layout(config), config.cols),
        "shared": _blocks_layout(config, config.g1_max),
        "last": 1,
    })


class Rank1Select(wiring.Component):
    """The rank-1 selection of one step, once per row at the array edge.

    Parameters
    ----------
    config : HighLightConfig

    Members
    -------
    acts : In(ArrayLayout(group_acts_layout(config), rows))
        Every row's held group of H1max x H0 activations.
    block : In(ArrayLayout(unsigned, slots))
        The step's S block indices (shared by all columns).
    o : Out(ArrayLayout(row_token_layout(config), rows))
        ``o[r][q] = acts[r][block[q]]``: R x S H1max:1 muxes of H0 values.

    Timing
    ------
    Combinational, between the sequencer's group register and the core's step register.
    """

    def __init__(self, config: HighLightConfig):
        self._config = config
        super().__init__({
            "acts": In(data.ArrayLayout(group_acts_layout(config), config.rows)),
            "block": In(data.ArrayLayout(_index(config.h1_max), config.slots)),
            "o": Out(data.ArrayLayout(row_token_layout(config), config.rows)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        for r in range(cfg.rows):
            for q in range(cfg.slots):
                m.d.comb += self.o[r][q].eq(self.acts[r][self.block[q]])
        return m


class HighLight(wiring.Component):
    """HighLight's array: R x C cells of L multipliers with HSS selection (module docs).

    Parameters
    ----------
    config : HighLightConfig

    Members
    -------
    pattern : In(range(len(config.pattern_set)))
        Run-time pattern (index into ``config.pattern_set``); set before a layer, hold it.
    i : In(stream.Signature(highlight_input_layout(config)))
        One rank-1 group per transfer: ``a[r]`` dense activations of row m0 + r,
        ``shared.block`` the tile's rank-1 block list, ``w[c]`` the rank-0 pairs of column
        n0 + c for those blocks, ``last`` on the final group of the output tile.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), cols)))
        Result rows of each tile, row 0 first: O[m0 + r, n0 : n0 + cols].

    Timing
    ------
    One group per T(pattern) cycles (one step per cycle) behind one sequencer register stage;
    fill, drain and the drain guard as :class:`~.systolic.SystolicCore`: the first result row
    of a tile leaves :attr:`LATENCY` + T - 1 edges after the edge that accepted its ``last``
    group, when not back-pressured. ``o`` stalls hold the drain; the next tile's ``last`` step
    then waits, and with it the sequencer and ``i.ready``.
    """

    #: Register stages of the group sequencer in front of the systolic core; the cycle model
    #: (sim/highlight.py) reads it here.
    SEQUENCER_STAGES = 1

    def __init__(self, config: HighLightConfig):
        check_config(self, config, HighLightConfig)
        self._config = config
        self.LATENCY = (core_latency(self.cell_kind(config), config.rows, config.cols)
                        + self.SEQUENCER_STAGES)
        super().__init__({
            "pattern": In(range(len(config.pattern_set))),
            "i": In(stream.Signature(highlight_input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.acc_width), config.cols))),
        })

    @property
    def config(self) -> HighLightConfig:
        return self._config

    @staticmethod
    def cell_kind(cfg: HighLightConfig) -> CellKind:
        """The cell: lane j multiplies offset[j] of block j // min G0 of the row token (an
        H0:1 mux) by value[j]; its L lanes feed one output, so the cell registers their sum
        before accumulating it (four stages when L > 1, :attr:`~.systolic.CellKind.stages`)."""
        return CellKind("hss-lanes", row_token_layout(cfg), lane_step_layout(cfg), cfg.lanes,
                        lambda a, w: [(a[j // cfg.g0_min][w.offset[j]], w.value[j])
                                      for j in range(cfg.lanes)])

    @staticmethod
    def probes(cfg: HighLightConfig) -> dict[str, list[str]]:
        """Energy probes of every cell (:meth:`~.systolic.SystolicCell.probes`: ``step``,
        ``last`` and, with ``zvcg``, ``gated`` and ``idle``), for a layer harness to count;
        paths are relative to this design's top module."""
        return SystolicCore.probes(HighLight.cell_kind(cfg), cfg.rows, cfg.cols, cfg.zvcg,
                                   "core.")

    @staticmethod
    def cell_actions(cfg: HighLightConfig) -> dict:
        """What one cell step costs besides its multiplies and add: ``lanes``, ``token_bits``,
        ``lane_sum_bits`` (the lane-sum register, written every step), ``selections`` ((ways,
        bits) per step: the L H0:1 lane muxes), ``edge_selections`` (per core step, once for
        the array: the R x S H1max:1 block muxes of
        :class:`Rank1Select`), ``dap`` (none), ``steps_per_transfer``: T(pattern) core steps
        per rank-1 group, for the run-time ``pattern``; ``k_per_step``: ``None`` (a step's
        lanes cover the pattern's listed blocks, not a fixed K span; the host counts ZVCG's
        idle steps from the encoding)."""
        kind = HighLight.cell_kind(cfg)
        return {"lanes": cfg.lanes, "token_bits": token_bits(kind),
                "lane_sum_bits": lane_sum_bits(kind, cfg.data_width, cfg.acc_width),
                "selections": [(cfg.h0, cfg.data_width)] * cfg.lanes,
                "edge_selections": [(cfg.h1_max, cfg.h0 * cfg.data_width)]
                * (cfg.rows * cfg.slots),
                "dap": None, "steps_per_transfer": cfg.steps(cfg.active), "k_per_step": None}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.seq = seq = GroupSequencer(
            data.ArrayLayout(group_acts_layout(cfg), cfg.rows), column_pairs_layout(cfg),
            lane_step_layout(cfg), cfg.cols, [cfg.steps(p) for p in cfg.pattern_set],
            hss_plan(cfg), shared=(_blocks_layout(cfg, cfg.g1_max),
                                   _blocks_layout(cfg, cfg.slots)))
        m.submodules.rank1 = rank1 = Rank1Select(cfg)
        m.submodules.core = core = SystolicCore(self.cell_kind(cfg), cfg.rows, cfg.cols,
                                                cfg.data_width, cfg.acc_width, cfg.zvcg)
        m.d.comb += [
            seq.pattern.eq(self.pattern),
            rank1.acts.eq(seq.o.payload.a),
            rank1.block.eq(seq.o.payload.shared.block),
            core.i.valid.eq(seq.o.valid),
            seq.o.ready.eq(core.i.ready),
            core.i.payload.a.eq(rank1.o),
            core.i.payload.w.eq(seq.o.payload.w),
            core.i.payload.last.eq(seq.o.payload.last),
        ]
        wiring.connect(m, wiring.flipped(self.i), seq.i)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        return m
