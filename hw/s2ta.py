"""The dense systolic baseline and S2TA's systolic tensor array (variants dense, w, a, aw).

All arrays are output stationary (see :mod:`.systolic`) and take aligned steps. ``dense-array``
is the scalar baseline: R x C cells of one MAC each. ``s2ta`` is built of tensor PEs (TPEs): an
R x C systolic array whose every cell is a ``tpe_rows`` x ``tpe_k`` x ``tpe_cols`` TPE, A x B x
C in the S2TA paper's notation. A TPE holds A x C outputs (each with its own accumulator); per
cycle it takes one row token (A activation operands, registered once in the TPE and shared by
its C columns) and one column token (C weight operands, registered once and shared by its A
rows), and each output sums its lanes' products with one adder tree. The tile is R*A x C*C'
outputs (C' = ``tpe_cols``); results drain one row of C*C' sums per cycle.

======== ============================ ============================ ============ ===========
variant   row token (per TPE row)      column token (per TPE col)   lanes/output  K per step
======== ============================ ============================ ============ ===========
dense     B consecutive activations    B consecutive weights        B             B values
w         B dense blocks of BZ         B DBB blocks: nnz_w slots    B * nnz_w     B blocks
a         B kept (value, index) slots  a dense block of BZ          B             see below
aw        B kept (value, index) slots  a DBB block: nnz_w slots     B             see below
======== ============================ ============================ ============ ===========

* ``dense``: the dense systolic tensor array (STA), the reference the sparse gain is measured
  on: the same TPE shapes and no sparsity support.
* ``w`` (static weight DBB): S2TA's weight-mux lane: each stored weight picks, with a BZ:1 mux,
  the activation it meets (as in ``dbb-pe``).
* ``a`` (dynamic activation DBB, time-unrolled): the array takes compressed activations, the
  format the output-path DAP of the layer before wrote (``act_dbb_output_layout``: kept values
  with their indices). A block kept to ``nnz_a`` values takes ceil(nnz_a / B) steps; the host
  repeats the column's weight block on each of them. A lane picks ``w[index]`` with a BZ:1 mux.
* ``aw``: as ``a``, but the column holds a DBB weight block; a lane finds the weight whose
  index matches the activation's (``nnz_w`` comparators) or uses zero.

Output-path DAP (``out_dap``, variants ``a``/``aw``): each drained row of C*C' sums is ReLU'd,
requantized (``>> out_shift``, saturated to the positive ``data_width`` range) and compressed
per block of BZ consecutive outputs to its top ``nnz_a`` (the run-time port) by
:class:`~.actdbb.DrainDAP`, as mask + (value, index) slots: the next layer's compressed input.
It has one register stage, between each block's top-``nnz_a`` selection and its compaction
(:class:`~.actdbb.DrainDAP` Timing), so results leave one edge later than without it
(:meth:`S2TA.back_end_stages`); each block is one shared module (one per block size). The raw
sums leave beside the blocks.

Ideal speedups over a dense array at equal multipliers (dense MAC slots over the slots the
variant cannot skip): ``dense`` 1, ``w`` BZ/nnz_w, ``a``/``aw`` BZ/(B ceil(nnz_a/B)).
"""

import dataclasses
import math

from amaranth import Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .actdbb import DrainDAP, drain_dap_output_layout
from .dbb import weight_slot_layout
from .params import Config, check_config, param
from .systolic import (
    CellKind,
    SystolicCore,
    core_latency,
    lane_sum_bits,
    mac_kind,
    step_layout,
    token_bits,
)

__all__ = [
    "DenseArrayConfig", "S2TAConfig", "DenseArray", "S2TA", "array_input_layout",
    "array_output_layout", "VARIANTS",
]

VARIANTS = ("dense", "w", "a", "aw")


@dataclasses.dataclass(frozen=True)
class DenseArrayConfig(Config):
    """Configuration of :class:`DenseArray`."""

    rows: int = param(8, lo=1, hi=64, help="PE rows (output rows per tile)")
    cols: int = param(8, lo=1, hi=64, help="PE columns (output columns per tile)")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")
    zvcg: bool = param(True, help="zero-value clock gating of the product registers")

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols


@dataclasses.dataclass(frozen=True)
class S2TAConfig(Config):
    """Configuration of :class:`S2TA`: an R x C array of A x B x C' tensor PEs
    (``rows`` x ``cols`` of ``tpe_rows`` x ``tpe_k`` x ``tpe_cols``). The default is the
    paper-like design at 64 multipliers: ``aw``, 1 x 2 TPEs of 4x2x4 (tile 4 x 8), output DAP
    (the best shape of ``constraints/sweeps/s2ta_tpe.toml`` on sky130hd).

    ``tpe_k`` (B) is each output's dot-product length per cycle: K elements (``dense``), DBB
    blocks of ``nnz_w`` multipliers each (``w``) or kept activations (``a``/``aw``). Multipliers
    = rows x cols x tpe_rows x tpe_cols x tpe_k (x nnz_w for ``w``). ``nnz_w`` is unused by
    ``dense``/``a``; ``nnz_max``, ``nnz_a``, ``out_dap`` and ``out_shift`` by ``dense``/``w``.
    ``nnz_a`` is not hardware: it is the run-time setting ``sparsegen sim`` drives into the
    ``nnz_a`` port (the compressed input's and the output DAP's bound)."""

    variant: str = param("aw", choices=VARIANTS,
                         help="dense: dense tensor array; w: weight DBB; a: activation DBB, "
                              "time-unrolled; aw: both")
    rows: int = param(1, lo=1, hi=64, help="TPE rows (R)")
    cols: int = param(2, lo=1, hi=64, help="TPE columns (C)")
    tpe_rows: int = param(4, lo=1, hi=16, help="TPE shape A: activation rows (outputs per "
                                                "TPE column) sharing each weight operand")
    tpe_k: int = param(2, lo=1, hi=16, help="TPE shape B: dot-product length per output per "
                                            "cycle (K values, w: DBB blocks, a/aw: kept "
                                            "activations), summed by one adder tree")
    tpe_cols: int = param(4, lo=1, hi=16, help="TPE shape C': weight columns (outputs per "
                                                "TPE row) sharing each activation operand")
    block_size: int = param(8, lo=2, hi=32, pow2=True, help="BZ: DBB block size along K")
    nnz_w: int = param(4, lo=1, hi="block_size", help="weight DBB bound (non-zeros per block)")
    nnz_max: int = param(None, lo=1, hi="block_size", default_from="block_size",
                         help="largest activation nnz_a the hardware supports")
    nnz_a: int = param(None, lo=1, hi="nnz_max", default_from="nnz_max",
                       help="run-time activation DBB setting used by `sim`")
    data_width: int = param(8, lo=2, hi=16, help="signed operand width in bits")
    acc_width: int = param(32, lo="data_width", hi=64,
                           help="accumulator width in bits; sums wrap around")
    zvcg: bool = param(False, help="zero-value clock gating of the product registers")
    out_dap: bool = param(True, help="a/aw: DAP on the drain: ReLU, >> out_shift, top-nnz_a "
                                     "of each BZ block of a result row (compressed output)")
    out_shift: int = param(8, lo=0, hi="acc_width",
                           help="a/aw with out_dap: requantization right shift of the sums")

    def unused_params(self) -> dict[str, str]:
        unused = {}
        if not self.weight_dbb:
            unused["nnz_w"] = f"variant {self.variant} has dense weights"
        if not self.act_dbb:
            why = f"variant {self.variant} has dense activations and no output DAP"
            unused.update(nnz_max=why, nnz_a=why, out_dap=why, out_shift=why)
        elif not self.out_dap:
            unused["out_shift"] = "out_dap is off"
        return unused

    def _check(self):
        if self.act_dbb and self.tpe_k > self.nnz_max:
            raise ValueError(f"`tpe_k` must be between 1 and `nnz_max` ({self.nnz_max}) for "
                             f"variant {self.variant}, not {self.tpe_k}")

    @property
    def weight_dbb(self) -> bool:
        return "w" in self.variant

    @property
    def act_dbb(self) -> bool:
        return "a" in self.variant

    @property
    def has_out_dap(self) -> bool:
        """The output-path DAP is built (variants a/aw with ``out_dap``)."""
        return self.act_dbb and self.out_dap

    @property
    def lanes_per_output(self) -> int:
        return self.tpe_k * (self.nnz_w if self.variant == "w" else 1)

    @property
    def multipliers_per_pe(self) -> int:
        return self.tpe_rows * self.tpe_cols * self.lanes_per_output

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols * self.multipliers_per_pe

    @property
    def tile_rows(self) -> int:
        """Output rows per tile (and drained rows per tile): R x A."""
        return self.rows * self.tpe_rows

    @property
    def tile_cols(self) -> int:
        """Output columns per tile (sums per drained row): C x C'."""
        return self.cols * self.tpe_cols

    @property
    def steps_per_block(self) -> int:
        """Core steps per K-block of BZ: a/aw ceil(nnz_a / B) (run-time ``nnz_a``)."""
        return math.ceil(self.nnz_a / self.tpe_k)

    @property
    def out_blocks(self) -> int:
        """DBB blocks per drained row of the output DAP: ceil(C x C' / BZ) (the last is short
        when BZ does not divide it)."""
        return math.ceil(self.tile_cols / self.block_size)


# -- cell kinds ------------------------------------------------------------------------------


def _tpe(name, cfg, row_op, col_op, lane):
    """A ``tpe_rows`` x ``tpe_k`` x ``tpe_cols`` TPE: row token ``tpe_rows`` x ``row_op``,
    column token ``tpe_cols`` x ``col_op``; ``lane(a_op, w_op)`` gives one output's lanes."""
    rows, cols = cfg.tpe_rows, cfg.tpe_cols

    def lanes(a, w):
        return [pair for r in range(rows) for c in range(cols) for pair in lane(a[r], w[c])]
    return CellKind(name, data.ArrayLayout(row_op, rows), data.ArrayLayout(col_op, cols),
                    rows * cols * cfg.lanes_per_output, lanes, outputs=rows * cols,
                    out_rows=rows, adder_tree=True)


def _select(entries, index, width):
    """The value of the ``(key, value)`` entry whose key is ``index``, else 0, as an AND-OR of
    one-hot matches: positions (``enumerate``: a BZ:1 mux) or DBB slots' indices, which the
    encoder keeps distinct among non-zero values, so OR-ing the matches selects one.

    Written this way rather than as an indexed part-select (``values[index]``): ABC maps the
    indexed BZ:1 selects of ``a`` and ``w`` in series with the multiplier at 7.79 and 6.48 ns,
    these at 6.45 and 6.42 ns, against ``dense-array``'s 5.16 (``bench s2ta``, sky130hd)."""
    pick = 0
    for key, value in entries:
        pick = pick | Mux(key == index, value.as_unsigned(), 0)
    return pick[:width].as_signed()


def _s2ta_kind(cfg) -> CellKind:
    """The TPE kind of an :class:`S2TA` of ``cfg`` (see the module docs' table)."""
    bz, width, k = cfg.block_size, cfg.data_width, cfg.tpe_k
    value = signed(width)
    slot = weight_slot_layout(bz, width)
    if cfg.variant == "dense":
        return _tpe("tpe_dense", cfg, data.ArrayLayout(value, k), data.ArrayLayout(value, k),
                    lambda a, w: [(a[j], w[j]) for j in range(k)])
    if cfg.variant == "w":
        nnz = cfg.nnz_w
        return _tpe("tpe_w", cfg, data.ArrayLayout(data.ArrayLayout(value, bz), k),
                    data.ArrayLayout(data.ArrayLayout(slot, nnz), k),
                    lambda a, w: [(_select(enumerate(a[b]), w[b][j].index, width), w[b][j].value)
                                  for b in range(k) for j in range(nnz)])
    if cfg.variant == "a":
        return _tpe("tpe_a", cfg, data.ArrayLayout(slot, k), data.ArrayLayout(value, bz),
                    lambda a, w: [(a[j].value, _select(enumerate(w), a[j].index, width))
                                  for j in range(k)])
    return _tpe("tpe_aw", cfg, data.ArrayLayout(slot, k),
                data.ArrayLayout(slot, cfg.nnz_w),
                lambda a, w: [(a[j].value, _select(((s.index, s.value) for s in w), a[j].index,
                                                      width))
                                  for j in range(k)])


def array_input_layout(config) -> data.StructLayout:
    """Payload of an array's input stream: one step (a row token per row, a column token per
    column, ``last``)."""
    if isinstance(config, DenseArrayConfig):
        return step_layout(mac_kind(config.data_width), config.rows, config.cols)
    return step_layout(_s2ta_kind(config), config.rows, config.cols)


def array_output_layout(config):
    """Payload of an array's output stream: a drained row of sums; with the output DAP a
    struct of ``sum`` (that row, in the low bits) and ``act`` (its compressed blocks)."""
    if isinstance(config, DenseArrayConfig):
        return data.ArrayLayout(signed(config.acc_width), config.cols)
    if not config.has_out_dap:
        return data.ArrayLayout(signed(config.acc_width), config.tile_cols)
    return drain_dap_output_layout(lanes=config.tile_cols, block_size=config.block_size,
                                   nnz_max=config.nnz_max, data_width=config.data_width,
                                   acc_width=config.acc_width)


# -- components ------------------------------------------------------------------------------


class DenseArray(wiring.Component):
    """The baseline: an R x C output-stationary systolic array of scalar INT MAC PEs.

    Parameters
    ----------
    config : DenseArrayConfig

    Members
    -------
    i : In(stream.Signature(array_input_layout(config)))
        One K step per transfer: ``a[r]`` = A[m0 + r, k], ``w[c]`` = W[k, n0 + c], ``last`` on
        the final k of the tile.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), cols)))
        Result rows of each tile, row 0 first: O[m0 + r, n0 : n0 + cols].

    Timing
    ------
    One K step per cycle; see :class:`~.systolic.SystolicCore` for fill and drain
    (:attr:`LATENCY` edges from the last step to the first result row).
    """

    def __init__(self, config: DenseArrayConfig):
        check_config(self, config, DenseArrayConfig)
        self._config = config
        self.LATENCY = core_latency(self.cell_kind(config), config.rows, config.cols)
        super().__init__({
            "i": In(stream.Signature(array_input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.acc_width), config.cols))),
        })

    @property
    def config(self) -> DenseArrayConfig:
        return self._config

    @staticmethod
    def cell_kind(cfg: DenseArrayConfig) -> CellKind:
        """The cells' kind: one MAC (three stages, :attr:`~.systolic.CellKind.stages`)."""
        return mac_kind(cfg.data_width)

    @staticmethod
    def probes(cfg: DenseArrayConfig) -> dict[str, list[str]]:
        """Energy probes of every cell (:meth:`~.systolic.SystolicCell.probes`), for a layer
        harness to count; paths are relative to this design's top module."""
        return SystolicCore.probes(mac_kind(cfg.data_width), cfg.rows, cfg.cols, cfg.zvcg,
                                   "core.")

    @staticmethod
    def cell_actions(cfg: DenseArrayConfig) -> dict:
        """What one cell step costs besides its multiplies and add: ``lanes`` (multipliers
        per cell), ``token_bits`` (token registers), ``selections`` ((ways, bits) of each
        operand mux a step goes through: none here), ``dap`` (none), ``steps_per_transfer``
        (core steps per input transfer: 1), ``k_per_step`` (K elements a step's lanes
        cover: 1)."""
        kind = mac_kind(cfg.data_width)
        return {"lanes": 1, "token_bits": token_bits(kind), "lane_sum_bits": 0,
                "selections": [], "dap": None, "steps_per_transfer": 1, "k_per_step": 1}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.core = core = SystolicCore(mac_kind(cfg.data_width), cfg.rows,
                                                cfg.cols, cfg.data_width, cfg.acc_width,
                                                cfg.zvcg)
        wiring.connect(m, wiring.flipped(self.i), core.i)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        return m


class S2TA(wiring.Component):
    """S2TA's systolic tensor array of TPEs, variant ``dense``, ``w``, ``a`` or ``aw`` (see the
    module docs).

    Parameters
    ----------
    config : S2TAConfig

    Members
    -------
    nnz_a : In(range(1, nnz_max + 1)), variants a/aw only
        Run-time activation DBB bound: the input's kept activations per block (it sets nothing
        in the array; the host lays out ceil(nnz_a / tpe_k) steps per block) and the output
        DAP's. Set it before a layer starts (reset value nnz_max).
    i : In(stream.Signature(array_input_layout(config)))
        One step per transfer: ``a[r][x]`` the operands of activation row m0 + r*A + x (see
        the module docs' table), ``w[c][y]`` those of weight column n0 + c*C' + y, ``last`` on
        the final step of the tile.
    o : Out(stream.Signature(array_output_layout(config)))
        Result rows of each tile, row 0 first (R*A rows of C*C' sums); with the output DAP
        also each row's compressed blocks (``act``).

    Timing
    ------
    One step per cycle, no front end: :attr:`LATENCY` = :func:`~.systolic.core_latency` (of
    the TPE kind: one edge more when an output has more than one lane) + the output DAP's
    stage (:meth:`back_end_stages`) edges from accepting a tile's last step to its first
    result row, then R*A rows on consecutive edges (:class:`~.systolic.SystolicCore`).
    """

    def __init__(self, config: S2TAConfig):
        check_config(self, config, S2TAConfig)
        self._config = config
        members = {
            "i": In(stream.Signature(array_input_layout(config))),
            "o": Out(stream.Signature(array_output_layout(config))),
        }
        if config.act_dbb:
            members["nnz_a"] = In(range(1, config.nnz_max + 1), init=config.nnz_max)
        self.LATENCY = (core_latency(self.cell_kind(config), config.rows, config.cols)
                        + self.front_end_stages(config) + self.back_end_stages(config))
        super().__init__(members)

    @classmethod
    def front_end_stages(cls, config: S2TAConfig) -> int:
        """Register stages in front of the systolic core: none (the array takes compressed
        activations; the DAP sits on the output path). The cycle models read it here."""
        return 0

    @classmethod
    def back_end_stages(cls, config: S2TAConfig) -> int:
        """Register stages behind the systolic core: the output DAP's
        (:attr:`~.actdbb.DrainDAP.LATENCY`) when it is built, else none. The cycle models read
        it here."""
        return DrainDAP.LATENCY if config.has_out_dap else 0

    @property
    def config(self) -> S2TAConfig:
        return self._config

    @staticmethod
    def cell_kind(cfg: S2TAConfig) -> CellKind:
        """The TPE kind (see the module docs' table): four stages when an output has more
        than one lane (``lanes_per_output`` > 1: the lane sum is registered), else three
        (:attr:`~.systolic.CellKind.stages`)."""
        return _s2ta_kind(cfg)

    @staticmethod
    def probes(cfg: S2TAConfig) -> dict[str, list[str]]:
        """Energy probes of every TPE (:meth:`~.systolic.SystolicCell.probes`) and, with the
        output DAP, ``block``: a drained row passes the DAP (``cell_actions()["dap"]`` says
        how many blocks it holds). Paths are relative to this design's top module."""
        probes = SystolicCore.probes(_s2ta_kind(cfg), cfg.rows, cfg.cols, cfg.zvcg, "core.")
        if cfg.has_out_dap:
            probes["block"] = ["o__valid & o__ready"]
        return probes

    @staticmethod
    def cell_actions(cfg: S2TAConfig) -> dict:
        """What one TPE step costs besides its multiplies and adds: ``lanes`` (multipliers
        per TPE), ``outputs`` (accumulators per TPE), ``token_bits``, ``selections`` ((ways,
        bits) of each operand mux per step: ``w`` a BZ:1 activation mux per lane, ``a`` a BZ:1
        weight mux per lane, ``aw`` the nnz_w-way index match per lane, priced as an nnz_w:1
        mux), ``dap``: (blocks per drained row, BZ) of the output DAP, BZ(BZ-1)/2 magnitude
        comparisons per block (:func:`~.actdbb.rank_keep`), else ``None``; ``dap_bits``: the
        DAP stage's register bits loaded with each drained row (0 without the DAP);
        ``steps_per_transfer``: 1 (every transfer is a core step); ``k_per_step``: K elements
        one output's lanes cover per step (``dense`` B, ``w`` B*BZ, ``a``/``aw`` one kept
        activation: ``None``, not a fixed K range)."""
        bz, width = cfg.block_size, cfg.data_width
        kind = _s2ta_kind(cfg)
        ways = {"dense": None, "w": bz, "a": bz, "aw": cfg.nnz_w}[cfg.variant]
        selections = [] if ways is None else [(ways, width)] * kind.multipliers
        k_per_step = {"dense": cfg.tpe_k, "w": cfg.tpe_k * bz}.get(cfg.variant)
        return {"lanes": kind.multipliers, "outputs": kind.outputs,
                "token_bits": token_bits(kind),
                "lane_sum_bits": lane_sum_bits(kind, cfg.data_width, cfg.acc_width),
                "selections": selections,
                "dap": (cfg.out_blocks, bz) if cfg.has_out_dap else None,
                "dap_bits": (DrainDAP.register_bits(lanes=cfg.tile_cols,
                                                    data_width=cfg.data_width,
                                                    acc_width=cfg.acc_width)
                             if cfg.has_out_dap else 0),
                "steps_per_transfer": 1, "k_per_step": k_per_step}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.core = core = SystolicCore(_s2ta_kind(cfg), cfg.rows, cfg.cols,
                                                cfg.data_width, cfg.acc_width, cfg.zvcg)
        wiring.connect(m, wiring.flipped(self.i), core.i)
        if not cfg.has_out_dap:
            wiring.connect(m, core.o, wiring.flipped(self.o))
            return m
        m.submodules.out_dap = dap = DrainDAP(
            lanes=cfg.tile_cols, block_size=cfg.block_size, nnz_max=cfg.nnz_max,
            data_width=cfg.data_width, acc_width=cfg.acc_width, shift=cfg.out_shift)
        m.d.comb += dap.nnz_a.eq(self.nnz_a)
        wiring.connect(m, core.o, dap.i)
        wiring.connect(m, dap.o, wiring.flipped(self.o))
        return m
