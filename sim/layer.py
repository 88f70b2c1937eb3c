"""Layer-level simulation of the output-stationary arrays: tile a GEMM onto an array, run its
Verilog, check it against golden; or answer from the models without RTL.

The host side does what a real accelerator's driver would: pads M and N to whole tiles and K to
whole blocks, compresses sparse weights with the golden encoder, and orders every tile's steps
(row-major over output tiles). The steps go to the stream player (:mod:`.player`), which runs
them through the generated Verilog on Verilator at full rate; the result rows are reassembled
into O and compared bit for bit with the golden model.

Each array family is one :class:`GemmHost`: how it checks its operands, lays out its steps and
counts its cycles. :data:`DENSE` (``dense-array``) and :data:`S2TA` (``s2ta``) live here,
HighLight's in :mod:`.highlight`; the design catalogue (:mod:`sparsegen.gen.registry`) names
each design's host once.
"""

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np

from ..gen.design import Host
from ..gen.generate import generate
from . import cycles as cycle_model
from . import energy as layer_energy
from .golden import dbb as gdbb
from .golden import gemm as ggemm
from .golden.numeric import TensorError, check_tensor, pad_to_multiple
from .player import play
from .tb.bits import pack_many, unpack_signed_rows

__all__ = ["RunFigures", "LayerResult", "Operands", "GemmJob", "GemmHost", "DENSE", "S2TA",
           "check_operands", "tile_rows", "per_tile", "assemble_output", "first_divergence",
           "describe_divergence", "im2col", "tile_shape", "run_chain", "OutputActs", "s2ta_traffic",
           "golden_activations"]


@dataclasses.dataclass
class RunFigures:
    """What every layer run reports; :meth:`as_json` is what ``sparsegen sim --json`` prints.
    Runners subclass it with their own figures (fields and :meth:`extra_json`).

    ``source`` is ``"rtl"`` when the cycles were counted on the generated Verilog (and the
    output compared with golden: ``matches_golden``), ``"model"`` when they come from the
    RTL-validated cycle model and the output from the golden model (``matches_golden`` is then
    ``None``: nothing was compared, and ``sim_seconds`` is the model's own time).
    On RTL, ``sim_seconds`` and ``cycles_per_second`` are the clocked loop alone (the per-cycle
    rate); ``harness_seconds`` and ``harness_cycles_per_second`` (null where the host does not
    give them, and for the model) add the harness's one-time costs: stimulus written and
    loaded, the simulator process started, results read back
    (:attr:`~.player.PlayerRun.run_seconds`). ``sim_cpu_seconds`` is the clocked loop's
    processor time where the harness measures it (the fast one), for benches on a busy
    machine; it is not in the JSON, nor is ``pack_seconds`` (the wall time of packing the
    stimulus into the harness's words, for ``sparsegen bench tools``).
    ``first_divergence`` says where an RTL output first differs from golden (see
    :func:`first_divergence`); it is in the JSON only then. ``energy`` holds the energy
    figures (:class:`~.energy.LayerEnergy`: counted actions priced on a tech; null figures
    with a reason when there are none).
    """

    output: np.ndarray
    cycles: int
    model_cycles: int
    macs_total: int
    macs_nonzero: int
    multipliers: int
    matches_golden: bool | None
    sim_seconds: float
    build_seconds: float
    source: str = dataclasses.field(default="rtl", kw_only=True)
    first_divergence: dict | None = dataclasses.field(default=None, kw_only=True)
    energy: layer_energy.LayerEnergy | None = dataclasses.field(default=None, kw_only=True)
    harness_seconds: float | None = dataclasses.field(default=None, kw_only=True)
    sim_cpu_seconds: float | None = dataclasses.field(default=None, kw_only=True)
    #: Wall seconds of packing the stimulus into the harness's words (GEMM hosts), else None.
    pack_seconds: float | None = dataclasses.field(default=None, kw_only=True)

    @property
    def utilization(self) -> float:
        """Fraction of multiplier-cycles that did an effectual (non-zero) product."""
        return self.macs_nonzero / (self.multipliers * self.cycles) if self.cycles else 0.0

    def extra_json(self) -> dict:
        """The subclass's own figures, placed after the common ones."""
        return {}

    def as_json(self) -> dict:
        return {
            "source": self.source,
            "cycles": self.cycles,
            "model_cycles": self.model_cycles,
            "macs_total": self.macs_total,
            "macs_nonzero": self.macs_nonzero,
            "utilization": round(self.utilization, 6),
            "multipliers": self.multipliers,
            "matches_golden": self.matches_golden,
            **({"first_divergence": self.first_divergence} if self.first_divergence else {}),
            **self.extra_json(),
            **(self.energy or layer_energy.no_energy(
                None, "no tech given: energy not priced")).as_json(),
            "sim_seconds": round(self.sim_seconds, 3),
            "cycles_per_second": round(self.cycles / self.sim_seconds)
            if self.sim_seconds and self.source == "rtl" else None,
            "harness_seconds": round(self.harness_seconds, 3)
            if self.harness_seconds and self.source == "rtl" else None,
            "harness_cycles_per_second": round(self.cycles / self.harness_seconds)
            if self.harness_seconds and self.source == "rtl" else None,
            "build_seconds": round(self.build_seconds, 3),
        }


@dataclasses.dataclass
class LayerResult(RunFigures):
    """A GEMM run on a systolic array: the common figures, tiles and input steps, and the
    host's own figures (``extra``, e.g. HighLight's pattern)."""

    tiles: int
    steps: int
    extra: dict = dataclasses.field(default_factory=dict, kw_only=True)
    activations: object = dataclasses.field(default=None, kw_only=True)
    """With an output DAP: the compressed activations it produced (:class:`OutputActs`)."""

    def extra_json(self) -> dict:
        return {"tiles": self.tiles, "steps": self.steps, **self.extra}


@dataclasses.dataclass(frozen=True)
class Operands:
    """A GEMM's checked operands as one array family sees them."""

    a: np.ndarray                   # A[M, K] as given (checked)
    w: np.ndarray                   # W[K, N] checked against (or pruned to) the weight format
    a_effective: np.ndarray         # the activations the hardware multiplies (pruned for a/aw)
    inputs: dict                    # run-time input ports, e.g. {"nnz_a": 2}
    a_slots: tuple | None = None    # s2ta a/aw: compressed A as given ((values, indices)
    #                                 [M, Kb, nnz_a]), else the host compresses ``a`` itself


@dataclasses.dataclass(frozen=True)
class OutputActs:
    """An output DAP's compressed activations of O[M, N] (N padded to whole tiles): per row
    and DBB block along N, ``values`` and ``indices`` [M, Nb, nnz_max] in ascending index
    order, and the decoded dense ``dense`` [M, N] (the next layer's A)."""

    values: np.ndarray
    indices: np.ndarray
    dense: np.ndarray


@dataclasses.dataclass
class GemmJob:
    """Everything the player needs for one GEMM, and what to compare its output with."""

    steps: int                      # input transfers
    payload: dict                   # nested arrays for pack_many
    tiles: tuple[int, int]          # (row tiles, column tiles)
    shape: tuple[int, int, int]     # (M, K, N)
    expected: np.ndarray            # golden O[M, N]
    a_effective: np.ndarray
    w: np.ndarray
    inputs: dict


def check_operands(config, a, w) -> tuple[np.ndarray, np.ndarray]:
    """A[M, K] and W[K, N] as int64, in range for ``config.data_width``, shapes that multiply.

    Raises
    ------
    TensorError
        Names the tensor and what is wrong with it.
    """
    a = check_tensor(a, config.data_width, "A", ndim=2)
    w = check_tensor(w, config.data_width, "W", ndim=2)
    if a.shape[1] != w.shape[0]:
        raise TensorError(f"tensor `W`: has {w.shape[0]} rows but A has K={a.shape[1]} "
                          f"columns (O = A @ W needs them equal)")
    if 0 in a.shape or 0 in w.shape:
        raise TensorError(f"tensors `A` {a.shape} and `W` {w.shape} must not be empty")
    return a, w


def tile_shape(config) -> tuple[int, int]:
    """Output rows and columns of one tile: ``config.tile_rows``/``tile_cols`` (tensor arrays)
    or ``rows``/``cols``."""
    return (getattr(config, "tile_rows", config.rows), getattr(config, "tile_cols", config.cols))


def tile_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """[M, ...] -> [M/rows, rows, ...] after padding M."""
    x = pad_to_multiple(x, rows, axis=0)
    return x.reshape(x.shape[0] // rows, rows, *x.shape[1:])


def per_tile(a_steps: np.ndarray, w_steps: np.ndarray):
    """[mt, S, R, ...] and [nt, S, C, ...] -> every tile's steps, tile t = (i, j) row-major:
    ([T*S, R, ...], [T*S, C, ...], last [T*S])."""
    mt, s = a_steps.shape[:2]
    nt = w_steps.shape[0]
    a_all = np.broadcast_to(a_steps[:, None], (mt, nt, *a_steps.shape[1:]))
    w_all = np.broadcast_to(w_steps[None], (mt, nt, *w_steps.shape[1:]))
    last = np.zeros((mt, nt, s), dtype=np.int64)
    last[..., -1] = 1
    return (a_all.reshape(-1, *a_steps.shape[2:]), w_all.reshape(-1, *w_steps.shape[2:]),
            last.reshape(-1))


def assemble_output(rows_out: np.ndarray, job: GemmJob, rows: int, cols: int) -> np.ndarray:
    """The player's result rows (tile by tile, row 0 first) -> O[M, N]."""
    mt, nt = job.tiles
    m, _, n = job.shape
    o = rows_out.reshape(mt, nt, rows, cols).transpose(0, 2, 1, 3).reshape(mt * rows, nt * cols)
    return o[:m, :n]


def first_divergence(output: np.ndarray, expected: np.ndarray, tiles: tuple[int, int],
                     rows: int, cols: int, result_cycles=None) -> dict | None:
    """Where a GEMM run's O[M, N] first differs from golden, in the order the array made it
    (tiles row-major, each tile's rows top first), or ``None`` when it does not.

    Returns ``{"index": [m, n], "tile": [i, j], "row": r, "column": c, "got": ..., "expected":
    ..., "cycle": ..., "mismatches": ...}``: the output element, its tile (i, j) and position
    (r, c) in it, both values, the cycle at which its result row left (``None`` without
    ``result_cycles``, the player's per-result cycles), and how many elements differ.
    """
    wrong = np.argwhere(output != expected)
    if len(wrong) == 0:
        return None
    nt = tiles[1]
    order = [((m // rows) * nt + n // cols, m % rows, n % cols)
             for m, n in wrong.tolist()]
    first = min(range(len(wrong)), key=order.__getitem__)
    m, n = (int(x) for x in wrong[first])
    tile, row, col = order[first]
    leaving = tile * rows + row                 # the result row's place in the output stream
    cycle = (int(result_cycles[leaving]) if result_cycles is not None
             and leaving < len(result_cycles) else None)
    return {"index": [m, n], "tile": [m // rows, n // cols], "row": row, "column": col,
            "got": int(output[m, n]), "expected": int(expected[m, n]), "cycle": cycle,
            "mismatches": len(wrong)}


def describe_divergence(divergence: dict) -> str:
    """One line for a :func:`first_divergence` (or SCNN's) dict: where, what, when."""
    where = ", ".join(str(x) for x in divergence["index"])
    tile = ", ".join(str(x) for x in divergence["tile"])
    cycle = divergence.get("cycle")
    return (f"first at O[{where}] (tile ({tile}), row {divergence['row']}, column "
            f"{divergence['column']}{'' if cycle is None else f', cycle {cycle}'}): "
            f"{divergence['got']}, golden {divergence['expected']}; "
            f"{divergence['mismatches']} value(s) differ")


def _no_figures(config, options) -> dict:
    return {}


@dataclasses.dataclass(frozen=True)
class GemmHost:
    """How one family of output-stationary arrays runs a GEMM.

    Members
    -------
    operands : callable
        ``operands(config, a, w, **options) -> Operands``: check A and W (shapes, ranges, the
        weight format, which ``prune`` may enforce first) and say what the hardware multiplies.
        Raises ``TensorError`` or the format's violation error, naming the tensor or block.
    steps : callable
        ``steps(config, operands, (mt, nt)) -> payload``: every tile's input transfers as the
        nested arrays of the array's input layout (with ``last``).
    steps_per_tile : callable
        ``steps_per_tile(config, k)``: input transfers per output tile.
    cycles : callable
        ``cycles(config, m, k, n)``: the closed-form cycle model.
    ideal_speedup : callable
        ``ideal_speedup(config)``: dense MAC slots over the slots the array cannot skip.
    figures : callable
        ``figures(config, options) -> dict``: the family's own report fields.
    options : frozenset of str
        Run options it takes (``"prune"``).
    nonzero_steps : callable or None
        ``nonzero_steps(config, operands)``: cell steps with a product of two non-zero operands
        (the ZVCG steps that are not idle; (output, step) pairs for tensor cells), for a family
        whose steps do not cover a fixed K span; ``None``: :func:`~.energy.nonzero_steps` over
        the cell's ``k_per_step``.
    traffic : callable or None
        ``traffic(config, m, k, n) -> dict``: bytes the layer moves, reported as
        ``bytes_moved`` (S2TA's).
    """

    operands: Callable
    steps: Callable
    steps_per_tile: Callable
    cycles: Callable
    ideal_speedup: Callable
    figures: Callable = _no_figures
    options: frozenset = frozenset()
    nonzero_steps: Callable | None = None
    traffic: Callable | None = None

    def prepare(self, config, a, w, **options) -> GemmJob:
        """Check A[M,K] and W[K,N] for ``config`` and lay out the player's step stream."""
        ops = self.operands(config, a, w, **options)
        return self.prepare_operands(config, ops)

    def prepare_operands(self, config, ops: Operands) -> GemmJob:
        """:meth:`prepare` from already checked operands."""
        (m, k), n = ops.a.shape, ops.w.shape[1]
        trows, tcols = tile_shape(config)
        tiles = (math.ceil(m / trows), math.ceil(n / tcols))
        payload = self.steps(config, ops, tiles)
        return GemmJob(steps=len(payload["last"]), payload=payload, tiles=tiles,
                       shape=(m, k, n), expected=ggemm.gemm(ops.a_effective, ops.w,
                                                            config.acc_width),
                       a_effective=ops.a_effective, w=ops.w, inputs=ops.inputs)

    def run(self, design, config, a, w, *, status=None, tech=None, **options) -> LayerResult:
        """Run O = A @ W on the generated Verilog of ``design``; ``status`` is an optional
        callable taking a one-line progress message. With a ``tech`` the harness counts the
        design's energy probes and the result carries the layer's energy on that tech
        (:mod:`.energy`); without one, no probes and null energy figures."""
        return self.run_job(design, config, self.prepare(config, a, w, **options),
                            status=status, tech=tech, options=options)

    def run_job(self, design, config, job: GemmJob, *, status=None, tech=None,
                options=None) -> LayerResult:
        """:meth:`run` of a prepared job."""
        generated = generate(design, config)
        probes = design.component.probes(config) if tech is not None else None
        layout = generated.metadata["layouts"]["i__payload"]
        start = time.perf_counter()
        words = pack_many(layout, job.payload, job.steps)   # uint32 words
        pack_seconds = time.perf_counter() - start
        mt, nt = job.tiles
        model = self.cycles(config, *job.shape)
        if status:
            status(f"{design.name}: {job.steps:,} steps, {mt * nt} tiles")
        trows, tcols = tile_shape(config)
        played = play(generated, words, expect=mt * nt * trows, inputs=job.inputs,
                      timeout_cycles=4 * model + 1000, status=status, probes=probes)
        out_rows = unpack_signed_rows(played.results, config.acc_width, tcols)
        output = assemble_output(out_rows, job, trows, tcols)
        m, k, n = job.shape
        divergence = first_divergence(output, job.expected, job.tiles, trows, tcols,
                                      played.result_cycles)
        acts = None
        if getattr(config, "has_out_dap", False):
            acts = _output_acts(config, job, generated.metadata["layouts"]["o__payload"],
                                played.results)
            expected = golden_activations(config, job.expected, job.tiles)
            if divergence is None and not (np.array_equal(acts.values, expected.values)
                                           and np.array_equal(acts.indices, expected.indices)):
                divergence = _act_divergence(acts, expected, tcols, config.block_size,
                                             job.tiles)
        options = options or {}
        return LayerResult(
            output=output, cycles=played.cycles, model_cycles=model, macs_total=m * n * k,
            macs_nonzero=ggemm.macs_nonzero(job.a_effective, job.w),
            multipliers=config.multipliers,
            matches_golden=divergence is None, first_divergence=divergence, tiles=mt * nt,
            steps=job.steps, sim_seconds=played.seconds, build_seconds=played.build_seconds,
            harness_seconds=played.run_seconds, sim_cpu_seconds=played.cpu_seconds,
            pack_seconds=pack_seconds,
            extra=self._extra(config, options, job.shape), activations=acts,
            energy=None if tech is None else layer_energy.layer_energy(
                generated.verilog, generated.top, design.component.cell_actions(config),
                config, layer_energy.counts_from_probes(
                    design.component.cell_actions(config), config, played.probes),
                played.cycles, tech))

    def model(self, design, config, a, w, *, status=None, tech=None,
              **options) -> LayerResult:
        """The same figures as :meth:`run` without building RTL: the output from the golden
        model, cycles from the cycle model (checked equal to the RTL by the tests), nothing
        laid out, so layers of any size answer in the time of one numpy GEMM. With a ``tech``,
        energy from the closed-form action counts (:func:`~.energy.counts_from_model`) and the
        design's synthesis (cached), as :meth:`run` prices them."""
        start = time.perf_counter()
        ops = self.operands(config, a, w, **options)
        (m, k), n = ops.a.shape, ops.w.shape[1]
        trows, tcols = tile_shape(config)
        tiles = cycle_model.tile_counts(m, n, trows, tcols)
        cycles = self.cycles(config, m, k, n)
        output = ggemm.gemm(ops.a_effective, ops.w, config.acc_width)
        acts = (golden_activations(config, output, (math.ceil(m / trows), math.ceil(n / tcols)))
                if getattr(config, "has_out_dap", False) else None)
        return LayerResult(
            output=output, cycles=cycles, model_cycles=cycles, macs_total=m * n * k,
            macs_nonzero=ggemm.macs_nonzero(ops.a_effective, ops.w),
            multipliers=config.multipliers, matches_golden=None, tiles=tiles,
            steps=tiles * self.steps_per_tile(config, k),
            sim_seconds=time.perf_counter() - start, build_seconds=0.0, source="model",
            extra=self._extra(config, options, (m, k, n)), activations=acts,
            energy=None if tech is None else self._model_energy(
                design, config, ops, tiles, k, cycles, tech))

    def _extra(self, config, options, shape) -> dict:
        extra = self.figures(config, options)
        if self.traffic is not None:
            extra = {**extra, "bytes_moved": self.traffic(config, *shape)}
        return extra

    def _model_energy(self, design, config, ops, tiles, k, cycles, tech):
        cell = design.component.cell_actions(config)
        transfers = tiles * self.steps_per_tile(config, k)
        # S2TA's output DAP sees each drained row (the probe `block` of an RTL run).
        dap_events = tiles * tile_shape(config)[0] if getattr(
            config, "has_out_dap", False) else transfers
        counts = layer_energy.counts_from_model(
            cell, config, core_steps=transfers * cell["steps_per_transfer"], tiles=tiles,
            transfers=dap_events, nonzero=ggemm.macs_nonzero(ops.a_effective, ops.w),
            nonzero_steps=self.nonzero_steps(config, ops) if self.nonzero_steps else
            layer_energy.nonzero_steps(ops.a_effective, ops.w, cell["k_per_step"]))
        generated = generate(design, config)
        return layer_energy.layer_energy(generated.verilog, generated.top, cell, config,
                                         counts, cycles, tech)

    def host(self) -> Host:
        """This family as the :class:`~sparsegen.gen.design.Host` of a design."""
        return Host(workload="gemm", run=self.run, model=self.model, cycles=self.cycles,
                    ideal_speedup=self.ideal_speedup, options=self.options)


# -- dense-array -----------------------------------------------------------------------------


def _dense_operands(config, a, w) -> Operands:
    a, w = check_operands(config, a, w)
    return Operands(a, w, a, {})


def _dense_steps(config, ops: Operands, tiles) -> dict:
    """One K step per transfer: ``a[r]`` = A[m0 + r, k], ``w[c]`` = W[k, n0 + c]."""
    a_tiles = tile_rows(ops.a, config.rows)                     # [mt, R, K]
    w_tiles = tile_rows(ops.w.T, config.cols)                   # [nt, C, K]
    a_steps, w_steps, last = per_tile(a_tiles.transpose(0, 2, 1), w_tiles.transpose(0, 2, 1))
    return {"a": a_steps, "w": w_steps, "last": last}


DENSE = GemmHost(
    operands=_dense_operands, steps=_dense_steps, steps_per_tile=lambda config, k: k,
    cycles=cycle_model.dense_cycles, ideal_speedup=lambda config: 1.0)
"""``dense-array``: one K step per cycle per tile."""


# -- s2ta --------------------------------------------------------------------------------------


def _s2ta_operands(config, a, w) -> Operands:
    """Weights must meet DBB(BZ, nnz_w) for ``w``/``aw`` (the first violating block is named);
    ``a``/``aw`` multiply the activations the DAP keeps (the golden top-nnz_a prune): the host
    stores A compressed as the previous layer's output DAP would have written it."""
    a, w = check_operands(config, a, w)
    if config.weight_dbb:
        gdbb.check_weights(w, config.block_size, config.nnz_w, name="W")
    if config.act_dbb:
        return Operands(a, w, gdbb.prune_activations(a, config.block_size, config.nnz_a),
                        {"nnz_a": config.nnz_a})
    return Operands(a, w, a, {})


def _blocked(x: np.ndarray, tile: int, sub: int, k_unit: int) -> np.ndarray:
    """X[rows, K] -> [tiles, steps, tile/sub, sub, k_unit] (rows padded to whole tiles, K to
    whole steps of ``k_unit``): the operands of each step, per TPE row/column and operand."""
    x = pad_to_multiple(pad_to_multiple(x, tile, axis=0), k_unit, axis=1)
    t, steps = x.shape[0] // tile, x.shape[1] // k_unit
    return x.reshape(t, tile // sub, sub, steps, k_unit).transpose(0, 3, 1, 2, 4)


def _s2ta_steps(config, ops: Operands, tiles) -> dict:
    """Every tile's steps (see :mod:`sparsegen.hw.s2ta`'s table): row tokens [R, A, ...],
    column tokens [C, C', ...]. ``dense``: B consecutive K values; ``w``: B dense blocks and B
    DBB weight blocks (values and indices); ``a``/``aw``: B compressed (value, index) slots of
    a block per step (ceil(nnz_a/B) steps per block), the column's weight block (dense, or
    DBB) repeated on each of them."""
    trows, tcols = tile_shape(config)
    rows, cols, bz, b = config.rows, config.cols, config.block_size, config.tpe_k
    arow, wcol = config.tpe_rows, config.tpe_cols
    if config.variant == "dense":
        a_steps = _blocked(ops.a, trows, arow, b)
        w_steps = _blocked(ops.w.T, tcols, wcol, b)
        a_all, w_all, last = per_tile(a_steps, w_steps)
        return {"a": a_all, "w": w_all, "last": last}
    if config.variant == "w":
        span = b * bz
        a_steps = _blocked(ops.a, trows, arow, span)             # [mt, S, R, A, B*BZ]
        a_steps = a_steps.reshape(*a_steps.shape[:4], b, bz)
        w = pad_to_multiple(pad_to_multiple(ops.w, tcols, axis=1), span, axis=0)
        enc = gdbb.encode_weights(w, bz, config.nnz_w)          # [Kb, N, nnz]
        kb = enc.values.shape[0]
        shape = (kb // b, b, tiles[1], cols, wcol, config.nnz_w)
        order = (2, 0, 3, 4, 1, 5)                              # [nt, S, C, C', B, nnz]
        values = enc.values.reshape(shape).transpose(order)
        indices = enc.indices.reshape(shape).transpose(order)
        a_all, v_all, last = per_tile(a_steps, values)
        _, i_all, _ = per_tile(a_steps, indices)
        return {"a": a_all, "w": {"value": v_all, "index": i_all}, "last": last}
    # a / aw: compressed activations, ceil(nnz_a / B) steps per block
    sb = config.steps_per_block
    if ops.a_slots is None:
        _, values, indices = gdbb.activation_slots(ops.a, bz, config.nnz_a)
    else:
        values, indices = ops.a_slots
    a_tok = []
    for x in (values, indices):                                 # [M, Kb, nnz_a]
        x = np.pad(x, ((0, (-x.shape[0]) % trows), (0, 0), (0, sb * b - x.shape[2])))
        x = x.reshape(tiles[0], rows, arow, x.shape[1] * sb, b)   # steps = (block, j)
        a_tok.append(x.transpose(0, 3, 1, 2, 4))                # [mt, S, R, A, B]
    w = pad_to_multiple(pad_to_multiple(ops.w, tcols, axis=1), bz, axis=0)
    kb = w.shape[0] // bz
    if config.weight_dbb:
        enc = gdbb.encode_weights(w, bz, config.nnz_w)          # [Kb, N, nnz]
        w_tok = {name: np.repeat(x.reshape(kb, tiles[1], cols, wcol, -1)
                                 .transpose(1, 0, 2, 3, 4), sb, axis=1)
                 for name, x in (("value", enc.values), ("index", enc.indices))}
        a_all, v_all, last = per_tile(a_tok[0], w_tok["value"])
        _, i_all, _ = per_tile(a_tok[0], w_tok["index"])
        w_all = {"value": v_all, "index": i_all}
    else:
        dense = w.T.reshape(tiles[1], cols, wcol, kb, bz).transpose(0, 3, 1, 2, 4)
        a_all, w_all, last = per_tile(a_tok[0], np.repeat(dense, sb, axis=1))
    idx_all, _, _ = per_tile(a_tok[1], np.zeros((tiles[1], a_tok[1].shape[1], 1)))
    return {"a": {"value": a_all, "index": idx_all}, "w": w_all, "last": last}


def golden_activations(config, output: np.ndarray, tiles) -> OutputActs:
    """What the output DAP makes of O[M, N]: requantized, then the top ``nnz_a`` of each
    block of BZ along every drained row of every tile (the last block of a row short when BZ
    does not divide C x C'); slots padded to ``nnz_max``."""
    tcols, bz = tile_shape(config)[1], config.block_size
    m = output.shape[0]
    q = gdbb.requantize(pad_to_multiple(output, tcols, axis=1), config.out_shift,
                        config.data_width)
    q = np.pad(q.reshape(m, tiles[1], tcols), ((0, 0), (0, 0), (0, config.out_blocks * bz
                                                                 - tcols)))
    _, values, indices = gdbb.activation_slots(q.reshape(m, -1), bz, config.nnz_a)
    pad = ((0, 0), (0, 0), (0, config.nnz_max - config.nnz_a))
    values, indices = np.pad(values, pad), np.pad(indices, pad)
    dense = gdbb.prune_activations(q.reshape(m, -1), bz, config.nnz_a)
    dense = dense.reshape(m, tiles[1], -1)[:, :, :tcols].reshape(m, -1)
    return OutputActs(values, indices, dense[:, :output.shape[1]])


def _output_acts(config, job: GemmJob, layout: dict, results: str) -> OutputActs:
    """The compressed blocks of every result word (field ``act`` of ``layout``), reassembled
    into :class:`OutputActs` in O's row order."""
    field = layout["fields"]["act"]
    block = field["shape"]["elem"]
    slots = block["fields"]["slots"]
    slot = slots["shape"]["elem"]
    nb, nnz = field["shape"]["length"], slots["shape"]["length"]
    vw, iw = (slot["fields"][f]["shape"]["width"] for f in ("value", "index"))
    words = [int(line, 16) >> field["offset"] for line in results.split()]
    values = np.zeros((len(words), nb, nnz), dtype=np.int64)
    indices = np.zeros_like(values)
    for r, word in enumerate(words):
        for b in range(nb):
            bits = word >> (b * block["width"] + slots["offset"])
            for j in range(nnz):
                s = bits >> (j * slot["width"])
                v = (s >> slot["fields"]["value"]["offset"]) & ((1 << vw) - 1)
                values[r, b, j] = v - (1 << vw) if v >> (vw - 1) else v
                indices[r, b, j] = (s >> slot["fields"]["index"]["offset"]) & ((1 << iw) - 1)
    mt, nt = job.tiles
    trows = tile_shape(config)[0]

    def rows_major(x):                      # [mt*nt*R, nb, nnz] -> [M, nt*nb, nnz]
        x = x.reshape(mt, nt, trows, nb, nnz).transpose(0, 2, 1, 3, 4)
        return x.reshape(mt * trows, nt * nb, nnz)[:job.shape[0]]

    values, indices = rows_major(values), rows_major(indices)
    bz, tcols = config.block_size, tile_shape(config)[1]
    dense = np.zeros((values.shape[0], nt * nb * bz), dtype=np.int64)
    rows_i = np.arange(values.shape[0])[:, None]
    for b in range(nt * nb):
        for j in range(nnz):
            dense[rows_i[:, 0], b * bz + indices[:, b, j]] += values[:, b, j]
    dense = dense.reshape(-1, nt, nb * bz)[:, :, :tcols].reshape(values.shape[0], -1)
    return OutputActs(values, indices, dense[:, :job.shape[2]])


def _act_divergence(acts: OutputActs, expected: OutputActs, tcols: int, bz: int,
                    tiles) -> dict:
    """The first output-DAP block that differs from golden, as a :func:`first_divergence`."""
    wrong = np.argwhere((acts.values != expected.values) | (acts.indices != expected.indices))
    m, blk, j = (int(x) for x in wrong[0])
    per_tile_blocks = acts.values.shape[1] // tiles[1]
    n = (blk // per_tile_blocks) * tcols + (blk % per_tile_blocks) * bz
    return {"index": [m, n], "tile": [m // tcols, blk // per_tile_blocks], "row": m,
            "column": n % tcols, "got": int(acts.values[m, blk, j]),
            "expected": int(expected.values[m, blk, j]), "cycle": None,
            "mismatches": len(wrong), "what": f"output DAP block {blk}, slot {j}"}


def _s2ta_nonzero_steps(config, ops: Operands) -> int:
    """(output, step) pairs of ``s2ta`` with a non-zero product: ``a``/``aw`` steps take B
    kept slots of a block each (slot j in step j // B); the others cover fixed K ranges. Only
    ZVCG prices them (idle accumulators): 0 without it."""
    if not config.zvcg:
        return 0
    if not config.act_dbb:
        span = config.tpe_k * (config.block_size if config.weight_dbb else 1)
        return layer_energy.nonzero_steps(ops.a_effective, ops.w, span)
    bz, b = config.block_size, config.tpe_k
    _, values, indices = gdbb.activation_slots(ops.a_effective, bz, config.nnz_a)
    w = pad_to_multiple(ops.w, bz, axis=0) != 0
    kb = w.shape[0] // bz
    w = w.reshape(kb, bz, -1)                                   # [Kb, BZ, N]
    total = 0
    for m0 in range(0, values.shape[0], 32):                    # bounded memory
        v, i = values[m0:m0 + 32] != 0, indices[m0:m0 + 32]
        hit = v[..., None] & w[np.arange(kb)[None, :, None], i]  # [m, Kb, nnz, N]
        pad = (-hit.shape[2]) % b
        hit = np.pad(hit, ((0, 0), (0, 0), (0, pad), (0, 0)))
        total += int(hit.reshape(*hit.shape[:2], -1, b, hit.shape[3]).any(axis=3).sum())
    return total


def s2ta_traffic(config, m: int, k: int, n: int) -> dict:
    """Bytes an ``s2ta`` layer O[M,N] = A[M,K] W[K,N] moves, by formula from the stream's
    layout (tests hold it to the payload the host builds), next to what a dense layout of
    the same tiling moves (8-bit values everywhere, data_width bits in general):

    * ``act_in``: the activation operands of every input transfer (row tokens: ``a``/``aw``
      kept (value, index) slots, ceil(nnz_a/B) x B per block; ``w`` dense blocks; ``dense``
      values); ``act_in_dense``: tiles x tile rows x K values.
    * ``weights``: the weight operands read per tile, one read per K block (``a``/``aw``
      repeat a block's column token on its ceil(nnz_a/B) steps; a weight buffer is read once
      per block): dense blocks (``dense``, ``a``) or DBB slots (``w``, ``aw``);
      ``weights_dense``: tiles x tile columns x K values.
    * ``act_out`` (output DAP only): the compressed blocks the DAP writes, nnz_a (value,
      index) slots per block of BZ; ``act_out_dense``: the requantized activations dense,
      tile rows x tile columns per tile.
    """
    trows, tcols = tile_shape(config)
    tiles = cycle_model.tile_counts(m, n, trows, tcols)
    steps = cycle_model.s2ta_steps_per_tile(config, k)
    bz, width, b = config.block_size, config.data_width, config.tpe_k
    slot = width + (bz - 1).bit_length()
    kb = math.ceil(k / bz)
    per_row = {"dense": b * width, "w": b * bz * width}.get(config.variant, b * slot)
    weights = {"dense": steps * b * width, "w": steps * b * config.nnz_w * slot,
               "a": kb * bz * width, "aw": kb * config.nnz_w * slot}[config.variant]
    out = {"act_in": tiles * steps * trows * per_row / 8,
           "act_in_dense": tiles * trows * k * width / 8,
           "weights": tiles * tcols * weights / 8,
           "weights_dense": tiles * tcols * k * width / 8}
    if config.has_out_dap:
        out["act_out"] = tiles * trows * config.out_blocks * config.nnz_a * slot / 8
        out["act_out_dense"] = tiles * trows * tcols * width / 8
    return {**out, "source": "formula"}


S2TA = GemmHost(
    operands=_s2ta_operands, steps=_s2ta_steps, steps_per_tile=cycle_model.s2ta_steps_per_tile,
    cycles=cycle_model.s2ta_cycles, ideal_speedup=cycle_model.s2ta_ideal_speedup,
    nonzero_steps=_s2ta_nonzero_steps, traffic=s2ta_traffic, options=frozenset({"chain"}))
"""``s2ta``: one step per transfer (:func:`~.cycles.s2ta_steps_per_tile` per tile)."""


def run_chain(design, config, a, w, w2, *, status=None, tech=None, model=False):
    """Two chained layers on ``s2ta`` a/aw with the output DAP: layer 1 runs O1 = A' @ W; its
    output DAP's compressed blocks (ReLU'd, requantized, top-nnz_a per BZ block of N1) are
    streamed as they are as layer 2's activations, O2 = A2 @ W2. Returns the two results:
    layer 1's sums and blocks checked against golden layer 1, layer 2's sums against golden
    on the activations layer 1 produced (``model``: both from the models, no RTL).

    Raises
    ------
    TensorError
        ``W2`` does not have N1 rows, or the DAP's blocks do not line up with layer 2's K
        blocks (C x C' not a multiple of BZ while N1 spans several tiles).
    """
    if not getattr(config, "has_out_dap", False):
        raise TensorError("--w2 chains two layers through the output DAP: it needs s2ta "
                          "variant a or aw with out_dap=true")
    a, w = check_operands(config, a, w)
    w2 = check_tensor(w2, config.data_width, "W2", ndim=2)
    if w2.shape[0] != w.shape[1]:
        raise TensorError(f"tensor `W2`: has {w2.shape[0]} rows but layer 1 makes N={w.shape[1]}"
                          f" outputs per row (layer 2's K)")
    tcols = tile_shape(config)[1]
    if tcols % config.block_size and w.shape[1] > tcols:
        raise TensorError(f"chaining needs the output DAP's blocks to be layer 2's K blocks: "
                          f"tile columns {tcols} (cols x tpe_cols) must be a multiple of "
                          f"block_size {config.block_size} when N={w.shape[1]} spans tiles")
    runner = S2TA.model if model else S2TA.run
    first = runner(design, config, a, w, status=status, tech=tech)
    acts = first.activations
    # Layer 2 streams layer 1's blocks: [M, Nb, nnz_max] -> the first nnz_a slots of each.
    kb = math.ceil(w2.shape[0] / config.block_size)
    slots = (acts.values[:, :kb, :config.nnz_a], acts.indices[:, :kb, :config.nnz_a])
    ops = _s2ta_operands(config, acts.dense, w2)
    ops = dataclasses.replace(ops, a_slots=slots)
    if model:
        second = S2TA.model(design, config, acts.dense, w2, status=status, tech=tech)
    else:
        second = S2TA.run_job(design, config, S2TA.prepare_operands(config, ops),
                              status=status, tech=tech)
    return first, second


def im2col(ifmap, filters, *, stride: int = 1, padding: int = 0):
    """Lower a convolution to a GEMM: ifmap [C, H, W], filters [K, C, R, S] ->
    A [P*Q, R*S*C], W [R*S*C, K] and the output shape (K, P, Q).

    K (the reduction) is ordered (r, s, c) with c fastest, so DBB blocks of consecutive K run
    along input channels, as in S2TA.
    """
    c, h, wd = ifmap.shape
    kk, c2, r, s = filters.shape
    if c2 != c:
        raise TensorError(f"tensor `filters`: has {c2} input channels but ifmap has {c}")
    x = np.pad(ifmap, ((0, 0), (padding, padding), (padding, padding)))
    p = (h + 2 * padding - r) // stride + 1
    q = (wd + 2 * padding - s) // stride + 1
    if p <= 0 or q <= 0:
        raise TensorError(f"tensor `filters`: {r}x{s} does not fit the {h}x{wd} ifmap "
                          f"with padding {padding}")
    cols = np.empty((p, q, r, s, c), dtype=np.int64)
    for i in range(r):
        for j in range(s):
            window = x[:, i: i + stride * p: stride, j: j + stride * q: stride]
            cols[:, :, i, j, :] = window.transpose(1, 2, 0)
    a = cols.reshape(p * q, r * s * c)
    w = filters.transpose(2, 3, 1, 0).reshape(r * s * c, kk)
    return a, w, (kk, p, q)
