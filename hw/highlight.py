"""HighLight: an output-stationary array of HSS PEs with a run-time pattern (``highlight``).

Dataflow. The array is the output-stationary :class:`~.systolic.SystolicCore` (see there for
skew, fill and drain): cell (r, c) accumulates O[m0 + r, n0 + c]. Its input stream carries one
rank-1 group per transfer: for every row r the dense activations A[m0 + r, group] (H1max x H0,
zero beyond the pattern's H1), for every column c the compressed HSS group of W[group, n0 + c]
(:func:`~.hss.hss_group_layout`). One :class:`~.hss.GroupSequencer` at the array edge replays
each group as T = ceil(G1 / (L / G0)) aligned steps for the active pattern:

* rank 1 in time: only the group's non-empty blocks become steps, so a group of H1 * H0 values
  costs T cycles (dense: H1 * H0 / L);
* rank 0 in space: each cell has L multipliers (L = max G0 of the set); its ``L / min G0``
  H1max:1 block muxes and L H0:1 lane muxes (:func:`~.hss.select_hss_lanes`) pick the
  activations its column's non-zero weights meet. Row tokens (the group's activations) are
  held for the T steps of the group while column tokens change every step.

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

from amaranth import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .hss import (
    DEFAULT_PATTERNS,
    GroupSequencer,
    HSSSet,
    group_acts_layout,
    hss_group_layout,
    hss_plan,
    hss_step_layout,
    parse_pattern_set,
    select_hss_lanes,
)
from .params import Config, check_config, param
from .systolic import CellKind, SystolicCore, core_latency, token_bits

__all__ = ["HighLightConfig", "HighLight", "highlight_input_layout", "pattern_text"]

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


def highlight_input_layout(config: HighLightConfig) -> data.StructLayout:
    """Payload of :class:`HighLight` input: one rank-1 group of every row and column."""
    return data.StructLayout({
        "a": data.ArrayLayout(group_acts_layout(config), config.rows),
        "w": data.ArrayLayout(hss_group_layout(config), config.cols),
        "last": 1,
    })


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
        One rank-1 group per transfer: ``a[r]`` dense activations of row m0 + r, ``w[c]`` the
        compressed group of column n0 + c, ``last`` on the final group of the output tile.
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
        self.LATENCY = core_latency(config.rows, config.cols) + self.SEQUENCER_STAGES
        super().__init__({
            "pattern": In(range(len(config.pattern_set))),
            "i": In(stream.Signature(highlight_input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.acc_width), config.cols))),
        })

    @property
    def config(self) -> HighLightConfig:
        return self._config

    @staticmethod
    def _kind_of(cfg: HighLightConfig) -> CellKind:
        return CellKind("hss", group_acts_layout(cfg), hss_step_layout(cfg), cfg.lanes,
                        lambda a, w: select_hss_lanes(cfg, a, w))

    @staticmethod
    def probes(cfg: HighLightConfig) -> dict[str, list[str]]:
        """Energy probes of every cell (:meth:`~.systolic.SystolicCell.probes`), for a layer
        harness to count; paths are relative to this design's top module."""
        return SystolicCore.probes(HighLight._kind_of(cfg), cfg.rows, cfg.cols, False, "core.")

    @staticmethod
    def cell_actions(cfg: HighLightConfig) -> dict:
        """What one cell step costs besides its multiplies and add: ``lanes``, ``token_bits``,
        ``selections`` ((ways, bits) per step: ``L / min G0`` H1max:1 block muxes of H0
        values and L H0:1 lane muxes, :func:`~.hss.select_hss_lanes`), ``dap`` (none),
        ``steps_per_transfer``: T(pattern) core steps per rank-1 group, for the run-time
        ``pattern``; ``k_per_step``: ``None`` (no ZVCG, so no gated steps to count)."""
        blocks = [(cfg.h1_max, cfg.h0 * cfg.data_width)] * cfg.slots
        lanes = [(cfg.h0, cfg.data_width)] * cfg.lanes
        return {"lanes": cfg.lanes, "token_bits": token_bits(HighLight._kind_of(cfg)),
                "selections": blocks + lanes, "dap": None,
                "steps_per_transfer": cfg.steps(cfg.active), "k_per_step": None}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        kind = CellKind("hss", group_acts_layout(cfg), hss_step_layout(cfg), cfg.lanes,
                        lambda a, w: select_hss_lanes(cfg, a, w))
        m.submodules.seq = seq = GroupSequencer(
            data.ArrayLayout(group_acts_layout(cfg), cfg.rows), hss_group_layout(cfg),
            hss_step_layout(cfg), cfg.cols, [cfg.steps(p) for p in cfg.pattern_set],
            hss_plan(cfg))
        m.submodules.core = core = SystolicCore(kind, cfg.rows, cfg.cols, cfg.data_width,
                                                cfg.acc_width)
        m.d.comb += seq.pattern.eq(self.pattern)
        wiring.connect(m, wiring.flipped(self.i), seq.i)
        wiring.connect(m, seq.o, core.i)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        return m
