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
           "describe_divergence", "im2col"]


@dataclasses.dataclass
class RunFigures:
    """What every layer run reports; :meth:`as_json` is what ``sparsegen sim --json`` prints.
    Runners subclass it with their own figures (fields and :meth:`extra_json`).

    ``source`` is ``"rtl"`` when the cycles were counted on the generated Verilog (and the
    output compared with golden: ``matches_golden``), ``"model"`` when they come from the
    RTL-validated cycle model and the output from the golden model (``matches_golden`` is then
    ``None``: nothing was compared, and ``sim_seconds`` is the model's own time).
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
            "build_seconds": round(self.build_seconds, 3),
        }


@dataclasses.dataclass
class LayerResult(RunFigures):
    """A GEMM run on a systolic array: the common figures, tiles and input steps, and the
    host's own figures (``extra``, e.g. HighLight's pattern)."""

    tiles: int
    steps: int
    extra: dict = dataclasses.field(default_factory=dict, kw_only=True)

    def extra_json(self) -> dict:
        return {"tiles": self.tiles, "steps": self.steps, **self.extra}


@dataclasses.dataclass(frozen=True)
class Operands:
    """A GEMM's checked operands as one array family sees them."""

    a: np.ndarray                   # A[M, K] as given (checked)
    w: np.ndarray                   # W[K, N] checked against (or pruned to) the weight format
    a_effective: np.ndarray         # the activations the hardware multiplies (pruned for a/aw)
    inputs: dict                    # run-time input ports, e.g. {"nnz_a": 2}


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
        (the ZVCG steps that are not idle), for a family whose steps do not cover a fixed K
        span; ``None``: :func:`~.energy.nonzero_steps` over the cell's ``k_per_step``.
    """

    operands: Callable
    steps: Callable
    steps_per_tile: Callable
    cycles: Callable
    ideal_speedup: Callable
    figures: Callable = _no_figures
    options: frozenset = frozenset()
    nonzero_steps: Callable | None = None

    def prepare(self, config, a, w, **options) -> GemmJob:
        """Check A[M,K] and W[K,N] for ``config`` and lay out the player's step stream."""
        ops = self.operands(config, a, w, **options)
        (m, k), n = ops.a.shape, ops.w.shape[1]
        tiles = (math.ceil(m / config.rows), math.ceil(n / config.cols))
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
        job = self.prepare(config, a, w, **options)
        generated = generate(design, config)
        probes = design.component.probes(config) if tech is not None else None
        layout = generated.metadata["layouts"]["i__payload"]
        words = pack_many(layout, job.payload, job.steps)   # bits; the player packs them
        mt, nt = job.tiles
        model = self.cycles(config, *job.shape)
        if status:
            status(f"{design.name}: {job.steps:,} steps, {mt * nt} tiles")
        played = play(generated, words, expect=mt * nt * config.rows, inputs=job.inputs,
                      timeout_cycles=4 * model + 1000, status=status, probes=probes)
        out_rows = unpack_signed_rows(played.results, config.acc_width, config.cols)
        output = assemble_output(out_rows, job, config.rows, config.cols)
        m, k, n = job.shape
        divergence = first_divergence(output, job.expected, job.tiles, config.rows, config.cols,
                                      played.result_cycles)
        return LayerResult(
            output=output, cycles=played.cycles, model_cycles=model, macs_total=m * n * k,
            macs_nonzero=ggemm.macs_nonzero(job.a_effective, job.w),
            multipliers=config.multipliers,
            matches_golden=divergence is None, first_divergence=divergence, tiles=mt * nt,
            steps=job.steps, sim_seconds=played.seconds, build_seconds=played.build_seconds,
            extra=self.figures(config, options),
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
        tiles = cycle_model.tile_counts(m, n, config.rows, config.cols)
        cycles = self.cycles(config, m, k, n)
        output = ggemm.gemm(ops.a_effective, ops.w, config.acc_width)
        return LayerResult(
            output=output, cycles=cycles, model_cycles=cycles, macs_total=m * n * k,
            macs_nonzero=ggemm.macs_nonzero(ops.a_effective, ops.w),
            multipliers=config.multipliers, matches_golden=None, tiles=tiles,
            steps=tiles * self.steps_per_tile(config, k),
            sim_seconds=time.perf_counter() - start, build_seconds=0.0, source="model",
            extra=self.figures(config, options),
            energy=None if tech is None else self._model_energy(
                design, config, ops, tiles, k, cycles, tech))

    def _model_energy(self, design, config, ops, tiles, k, cycles, tech):
        cell = design.component.cell_actions(config)
        transfers = tiles * self.steps_per_tile(config, k)
        counts = layer_energy.counts_from_model(
            cell, config, core_steps=transfers * cell["steps_per_transfer"], tiles=tiles,
            transfers=transfers, nonzero=ggemm.macs_nonzero(ops.a_effective, ops.w),
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
    ``a``/``aw`` multiply the activations the DAP keeps (the golden top-nnz_a prune)."""
    a, w = check_operands(config, a, w)
    if config.weight_dbb:
        gdbb.check_weights(w, config.block_size, config.nnz_w, name="W")
    if config.act_dbb:
        return Operands(a, w, gdbb.prune_activations(a, config.block_size, config.nnz_a),
                        {"nnz_a": config.nnz_a})
    return Operands(a, w, a, {})


def _s2ta_steps(config, ops: Operands, tiles) -> dict:
    """One K block per transfer: dense activation blocks per row, and per column a DBB
    compressed weight block (``w``/``aw``: values and indices) or a dense one (``a``)."""
    mt, nt = tiles
    rows, cols, bz = config.rows, config.cols, config.block_size
    kb = math.ceil(ops.a.shape[1] / bz)
    a_blocks = pad_to_multiple(tile_rows(ops.a, rows), bz, axis=2).reshape(mt, rows, kb, bz)
    a_blocks = a_blocks.transpose(0, 2, 1, 3)                   # [mt, kb, R, BZ]
    if config.weight_dbb:
        enc = gdbb.encode_weights(pad_to_multiple(ops.w, cols, axis=1), bz, config.nnz_w)
        shape = (kb, nt, cols, config.nnz_w)                    # [kb, nt*C, nnz] split
        values = enc.values.reshape(shape).transpose(1, 0, 2, 3)
        indices = enc.indices.reshape(shape).transpose(1, 0, 2, 3)
        a_steps, v_steps, last = per_tile(a_blocks, values)
        _, i_steps, _ = per_tile(a_blocks, indices)
        w_payload = {"value": v_steps, "index": i_steps}
    else:
        w_tiles = tile_rows(ops.w.T, cols)
        w_blocks = pad_to_multiple(w_tiles, bz, axis=2).reshape(nt, cols, kb, bz)
        a_steps, w_payload, last = per_tile(a_blocks, w_blocks.transpose(0, 2, 1, 3))
    return {"a": a_steps, "w": w_payload, "last": last}


S2TA = GemmHost(
    operands=_s2ta_operands, steps=_s2ta_steps,
    steps_per_tile=lambda config, k: math.ceil(k / config.block_size),
    cycles=cycle_model.s2ta_cycles, ideal_speedup=cycle_model.s2ta_ideal_speedup)
"""``s2ta``: one K block per transfer; ``nnz_a`` core steps per block for ``a``/``aw``."""


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
