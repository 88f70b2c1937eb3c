"""The dense systolic baseline and S2TA's systolic tensor array (variants w, a, aw).

All arrays are output stationary (see :mod:`.systolic`) and take aligned steps; they differ in
their cells and, for the activation-DBB variants, in a front end:

=========== ======================== =========================== =========== ================
design       row token (per row)      column token (per column)   multipliers  cycles per block
=========== ======================== =========================== =========== ================
dense-array  one activation           one weight                  1 per cell   BZ (one per K)
s2ta w       dense block of BZ        DBB block: nnz_w slots      nnz_w        1
s2ta a       one kept activation      dense block of BZ           1            nnz_a
s2ta aw      one kept activation      DBB block: nnz_w slots      1            nnz_a
=========== ======================== =========================== =========== ================

* ``w`` (static weight DBB): S2TA's weight-mux cell, ``nnz_w`` BZ:1 muxes pick the activations
  that meet the stored weights (as in ``dbb-pe``).
* ``a`` (dynamic activation DBB, time-unrolled): a DAP unit per row (``act-dbb``) keeps the
  top-``nnz_a`` activations of each block; a serializer feeds them one per cycle as
  (value, index) tokens while each column holds its weight block for ``nnz_a`` cycles; a cell
  picks ``w[index]`` with a BZ:1 mux and multiplies once.
* ``aw``: as ``a``, but the column holds a compressed weight block; a cell finds the weight
  whose index matches the activation's (``nnz_w`` comparators) or uses zero.

Ideal speedups over the dense array at equal multipliers (dense MAC slots over the slots the
variant cannot skip): ``w`` BZ/nnz_w, ``a`` BZ/nnz_a, ``aw`` BZ/nnz_a; ``aw`` skips the same
slots in time as ``a`` and gains from its weights in storage and mux width, not in cycles.
"""

import dataclasses

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .actdbb import ActDBB, ActDBBConfig, act_dbb_output_layout
from .dbb import weight_slot_layout
from .hier import shared
from .params import Config, check_config, param
from .systolic import CellKind, SystolicCore, core_latency, step_layout, token_bits

__all__ = [
    "DenseArrayConfig", "S2TAConfig", "DenseArray", "S2TA", "array_input_layout",
    "VARIANTS",
]

VARIANTS = ("w", "a", "aw")


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
    """Configuration of :class:`S2TA`. ``nnz_w`` is unused by variant ``a``; ``nnz_max`` and
    ``nnz_a`` are unused by variant ``w``. ``nnz_a`` is not hardware: it is the run-time
    setting ``sparsegen sim`` drives into the ``nnz_a`` port."""

    variant: str = param("aw", choices=VARIANTS,
                         help="w: weight DBB; a: activation DBB, time-unrolled; aw: both")
    rows: int = param(8, lo=1, hi=64, help="PE rows (output rows per tile)")
    cols: int = param(8, lo=1, hi=64, help="PE columns (output columns per tile)")
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

    @property
    def weight_dbb(self) -> bool:
        return "w" in self.variant

    @property
    def act_dbb(self) -> bool:
        return "a" in self.variant

    @property
    def multipliers_per_pe(self) -> int:
        return 1 if self.act_dbb else self.nnz_w

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols * self.multipliers_per_pe


# -- cell kinds ------------------------------------------------------------------------------


def _dense_kind(width):
    return CellKind("mac", signed(width), signed(width), 1, lambda a, w: [(a, w)])


def _wmux_kind(bz, nnz, width):
    """S2TA weight-mux cell: nnz_w lanes, each muxes the activation its weight meets."""
    def lanes(a, w):
        return [(a[w[j].index], w[j].value) for j in range(nnz)]
    return CellKind("wmux", data.ArrayLayout(signed(width), bz),
                    data.ArrayLayout(weight_slot_layout(bz, width), nnz), nnz, lanes)


def _tu_dense_kind(bz, width):
    """Time-unrolled cell over a dense weight block: one lane, BZ:1 weight mux."""
    return CellKind("tu", weight_slot_layout(bz, width), data.ArrayLayout(signed(width), bz),
                    1, lambda a, w: [(a.value, w[a.index])])


def _tu_dbb_kind(bz, nnz, width):
    """Time-unrolled cell over a DBB weight block: one lane, index match over nnz_w slots.

    Slots with a non-zero value have distinct indices (the encoder guarantees it), so OR-ing
    the matching values selects at most one non-zero weight.
    """
    def lanes(a, w):
        match = 0
        for j in range(nnz):
            match = match | Mux(w[j].index == a.index, w[j].value.as_unsigned(), 0)
        return [(a.value, match[:width].as_signed())]
    return CellKind("tu_dbb", weight_slot_layout(bz, width),
                    data.ArrayLayout(weight_slot_layout(bz, width), nnz), 1, lanes)


def _s2ta_kind(cfg) -> CellKind:
    """The cell kind of an :class:`S2TA` of ``cfg``."""
    bz, width = cfg.block_size, cfg.data_width
    if cfg.variant == "w":
        return _wmux_kind(bz, cfg.nnz_w, width)
    if cfg.variant == "a":
        return _tu_dense_kind(bz, width)
    return _tu_dbb_kind(bz, cfg.nnz_w, width)


def array_input_layout(config) -> data.StructLayout:
    """Payload of an array's input stream: one step (dense array, s2ta w) or one K-block of
    every row and column (s2ta a/aw, serialized inside)."""
    if isinstance(config, DenseArrayConfig):
        return step_layout(_dense_kind(config.data_width), config.rows, config.cols)
    bz, width = config.block_size, config.data_width
    w_block = (data.ArrayLayout(weight_slot_layout(bz, width), config.nnz_w)
               if config.weight_dbb else data.ArrayLayout(signed(width), bz))
    return data.StructLayout({
        "a": data.ArrayLayout(data.ArrayLayout(signed(width), bz), config.rows),
        "w": data.ArrayLayout(w_block, config.cols),
        "last": 1,
    })


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
        self.LATENCY = core_latency(config.rows, config.cols)
        super().__init__({
            "i": In(stream.Signature(array_input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.acc_width), config.cols))),
        })

    @property
    def config(self) -> DenseArrayConfig:
        return self._config

    @staticmethod
    def probes(cfg: DenseArrayConfig) -> dict[str, list[str]]:
        """Energy probes of every cell (:meth:`~.systolic.SystolicCell.probes`), for a layer
        harness to count; paths are relative to this design's top module."""
        return SystolicCore.probes(_dense_kind(cfg.data_width), cfg.rows, cfg.cols, cfg.zvcg,
                                   "core.")

    @staticmethod
    def cell_actions(cfg: DenseArrayConfig) -> dict:
        """What one cell step costs besides its multiplies and add: ``lanes`` (multipliers
        per cell), ``token_bits`` (token registers), ``selections`` ((ways, bits) of each
        operand mux a step goes through: none here), ``dap`` (none), ``steps_per_transfer``
        (core steps per input transfer: 1), ``k_per_step`` (K elements a step's lanes
        cover: 1)."""
        kind = _dense_kind(cfg.data_width)
        return {"lanes": 1, "token_bits": token_bits(kind), "selections": [], "dap": None,
                "steps_per_transfer": 1, "k_per_step": 1}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.core = core = SystolicCore(_dense_kind(cfg.data_width), cfg.rows,
                                                cfg.cols, cfg.data_width, cfg.acc_width,
                                                cfg.zvcg)
        wiring.connect(m, wiring.flipped(self.i), core.i)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        return m


class _Serializer(wiring.Component):
    """Turns one compressed block per row (plus the weight blocks) into ``nnz_a`` steps.

    Step j carries slot j of every row's block and the same weight blocks; ``last`` is set on
    the final step of a block marked ``last``. A new block is taken as the last step of the
    previous one leaves, so steps flow every cycle.
    """

    def __init__(self, rows, block_layout, w_layout, nnz_max, step):
        self._rows, self._nnz_max = rows, nnz_max
        super().__init__({
            "nnz_a": In(range(1, nnz_max + 1), init=nnz_max),
            "i": In(stream.Signature(data.StructLayout({
                "blocks": data.ArrayLayout(block_layout, rows),
                "w": w_layout, "last": 1}))),
            "o": Out(stream.Signature(step)),
        })

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        j = Signal(range(self._nnz_max))
        held = Signal.like(self.i.payload)
        final = j == self.nnz_a - 1
        m.d.comb += self.i.ready.eq(~full | (self.o.ready & final))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), full.eq(1), j.eq(0)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += j.eq(j + 1)
            with m.If(final):
                m.d.sync += full.eq(0)
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.w.eq(held.w),
            self.o.payload.last.eq(held.last & final),
        ]
        for r in range(self._rows):
            m.d.comb += self.o.payload.a[r].eq(held.blocks[r].slots[j])
        return m


class S2TA(wiring.Component):
    """S2TA's systolic tensor array, variant ``w``, ``a`` or ``aw`` (see the module docs).

    Parameters
    ----------
    config : S2TAConfig

    Members
    -------
    nnz_a : In(range(1, nnz_max + 1)), variants a/aw only
        Run-time activation DBB bound; set it before a layer starts (reset value nnz_max).
    i : In(stream.Signature(array_input_layout(config)))
        One K-block per transfer: ``a[r]`` the dense BZ activations of row m0 + r, ``w[c]``
        the weight block of column n0 + c (DBB slots for w/aw, dense for a), ``last`` on the
        final block of the tile.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), cols)))
        Result rows of each tile, row 0 first. For a/aw the activations are those the DAP
        kept (the golden model's ``prune_activations`` with nnz_a).

    Timing
    ------
    ``w``: one block per cycle. ``a``/``aw``: one block per ``nnz_a`` cycles, after the DAP
    (2 stages) and the serializer (1 stage). Fill and drain as
    :class:`~.systolic.SystolicCore`: :attr:`LATENCY` edges from accepting a tile's last block
    to its first result row, when the array is not back-pressured.
    """

    def __init__(self, config: S2TAConfig):
        check_config(self, config, S2TAConfig)
        self._config = config
        members = {
            "i": In(stream.Signature(array_input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.acc_width), config.cols))),
        }
        if config.act_dbb:
            members["nnz_a"] = In(range(1, config.nnz_max + 1), init=config.nnz_max)
        self.LATENCY = core_latency(config.rows, config.cols) + self.front_end_stages(config)
        super().__init__(members)

    #: Register stages of the serializer (its held block) between the DAPs and the core.
    SERIALIZER_STAGES = 1

    @classmethod
    def front_end_stages(cls, config: S2TAConfig) -> int:
        """Register stages in front of the systolic core: for ``a``/``aw`` the DAP
        (:attr:`ActDBB.LATENCY`) and the serializer, for ``w`` none. The cycle models read it
        here; it is stated nowhere else."""
        return ActDBB.LATENCY + cls.SERIALIZER_STAGES if config.act_dbb else 0

    @property
    def config(self) -> S2TAConfig:
        return self._config

    @staticmethod
    def probes(cfg: S2TAConfig) -> dict[str, list[str]]:
        """Energy probes of every cell (:meth:`~.systolic.SystolicCell.probes`) and, for
        ``a``/``aw``, ``block``: a K-block of every row enters the DAPs (the input transfer).
        Paths are relative to this design's top module."""
        probes = SystolicCore.probes(_s2ta_kind(cfg), cfg.rows, cfg.cols, cfg.zvcg, "core.")
        if cfg.act_dbb:
            probes["block"] = ["i__valid & i__ready"]
        return probes

    @staticmethod
    def cell_actions(cfg: S2TAConfig) -> dict:
        """What one cell step costs besides its multiplies and add: ``lanes``, ``token_bits``,
        ``selections`` ((ways, bits) of each operand mux per step: ``w`` a BZ:1 activation mux
        per lane, ``a`` one BZ:1 weight mux, ``aw`` the nnz_w-way index match, priced as an
        nnz_w:1 mux), and ``dap``: (rows, BZ) magnitude comparisons BZ(BZ-1)/2 per row and
        block (:func:`~.actdbb.rank_keep`) for ``a``/``aw``, else ``None``;
        ``steps_per_transfer``: core steps per input block (the run-time ``nnz_a`` for
        ``a``/``aw``, else 1); ``k_per_step``: K elements a step's lanes cover (``w``: a
        block of BZ; ``a``/``aw``: one kept activation)."""
        bz, width = cfg.block_size, cfg.data_width
        kind = _s2ta_kind(cfg)
        if cfg.variant == "w":
            selections = [(bz, width)] * cfg.nnz_w
        elif cfg.variant == "a":
            selections = [(bz, width)]
        else:
            selections = [(cfg.nnz_w, width)]
        return {"lanes": kind.multipliers, "token_bits": token_bits(kind),
                "selections": selections, "dap": (cfg.rows, bz) if cfg.act_dbb else None,
                "steps_per_transfer": cfg.nnz_a if cfg.act_dbb else 1,
                "k_per_step": 1 if cfg.act_dbb else bz}

    def _kind(self):
        return _s2ta_kind(self._config)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        kind = self._kind()
        m.submodules.core = core = SystolicCore(kind, cfg.rows, cfg.cols, cfg.data_width,
                                                cfg.acc_width, cfg.zvcg)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        if not cfg.act_dbb:
            wiring.connect(m, wiring.flipped(self.i), core.i)
            return m

        # Activation DBB front end: one DAP per row in lock step (same valid, same ready);
        # DAP 0 carries the weight blocks and `last` as its side payload.
        in_layout = array_input_layout(cfg)
        side = data.StructLayout({"w": in_layout["w"].shape, "last": 1})
        dap_cfg = ActDBBConfig(block_size=cfg.block_size, nnz_max=cfg.nnz_max,
                               data_width=cfg.data_width)
        daps = []
        for r in range(cfg.rows):
            dap = ActDBB(dap_cfg, side=side if r == 0 else 1)
            # One Verilog module for DAP 0, one for all the others (hw/hier.py).
            m.submodules[f"dap{r}"] = shared(platform, dap, name="dap_w" if r == 0 else "dap",
                                             key=dap_cfg)
            daps.append(dap)
        block_layout = act_dbb_output_layout(cfg.block_size, cfg.nnz_max, cfg.data_width)
        m.submodules.serializer = ser = _Serializer(
            cfg.rows, block_layout, in_layout["w"].shape, cfg.nnz_max,
            step_layout(kind, cfg.rows, cfg.cols))
        m.d.comb += ser.nnz_a.eq(self.nnz_a)
        m.d.comb += self.i.ready.eq(daps[0].i.ready)
        for r, dap in enumerate(daps):
            m.d.comb += [
                dap.nnz_a.eq(self.nnz_a),
                dap.i.valid.eq(self.i.valid),
                dap.i.payload.a.eq(self.i.payload.a[r]),
                dap.o.ready.eq(ser.i.ready),
                ser.i.payload.blocks[r].eq(dap.o.payload.block),
            ]
        m.d.comb += [
            daps[0].i.payload.side.w.eq(self.i.payload.w),
            daps[0].i.payload.side.last.eq(self.i.payload.last),
            ser.i.valid.eq(daps[0].o.valid),
            ser.i.payload.w.eq(daps[0].o.payload.side.w),
            ser.i.payload.last.eq(daps[0].o.payload.side.last),
        ]
        wiring.connect(m, ser.o, core.i)
        return m
