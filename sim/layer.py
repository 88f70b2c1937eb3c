"""Layer-level simulation: tile a GEMM onto an array, run its Verilog, check it against golden.

The host side does what a real accelerator's driver would: pads M and N to whole tiles and K to
whole blocks, compresses DBB weights with the golden encoder, and orders every tile's steps
(row-major over output tiles). The steps go to the stream player (:mod:`.player`), which runs
them through the generated Verilog on Verilator at full rate; the result rows are reassembled
into O and compared bit for bit with the golden model.
"""

import dataclasses
import math

import numpy as np

from ..hw.s2ta import DenseArrayConfig, S2TAConfig
from . import cycles as cycle_model
from .golden import dbb as gdbb
from .golden import gemm as ggemm
from .golden.numeric import TensorError, check_tensor, pad_to_multiple
from .tb.bits import hex_lines, pack_many, unpack_signed_rows

__all__ = ["RunFigures", "LayerResult", "GemmJob", "prepare_gemm", "assemble_output", "run_gemm",
           "im2col"]


@dataclasses.dataclass
class GemmJob:
    """Everything the player needs for one GEMM, and what to compare its output with."""

    steps: int                      # input transfers
    payload: dict                   # nested arrays for pack_many
    tiles: tuple[int, int]          # (row tiles, column tiles)
    shape: tuple[int, int, int]     # (M, K, N)
    expected: np.ndarray            # golden O[M, N]
    a_effective: np.ndarray         # the activations the hardware multiplies (pruned for a/aw)
    w: np.ndarray
    inputs: dict                    # run-time input ports, e.g. {"nnz_a": 2}


@dataclasses.dataclass
class RunFigures:
    """What every layer run reports; :meth:`as_json` is what ``sparsegen sim --json`` prints.
    Runners subclass it with their own figures (fields and :meth:`extra_json`)."""

    output: np.ndarray
    cycles: int
    model_cycles: int
    macs_total: int
    macs_nonzero: int
    multipliers: int
    matches_golden: bool
    sim_seconds: float
    build_seconds: float

    @property
    def utilization(self) -> float:
        """Fraction of multiplier-cycles that did an effectual (non-zero) product."""
        return self.macs_nonzero / (self.multipliers * self.cycles) if self.cycles else 0.0

    def extra_json(self) -> dict:
        """The subclass's own figures, placed after the common ones."""
        return {}

    def as_json(self) -> dict:
        return {
            "cycles": self.cycles,
            "model_cycles": self.model_cycles,
            "macs_total": self.macs_total,
            "macs_nonzero": self.macs_nonzero,
            "utilization": round(self.utilization, 6),
            "multipliers": self.multipliers,
            "matches_golden": self.matches_golden,
            **self.extra_json(),
            "sim_seconds": round(self.sim_seconds, 3),
            "cycles_per_second": round(self.cycles / self.sim_seconds) if self.sim_seconds
            else None,
            "build_seconds": round(self.build_seconds, 3),
        }


@dataclasses.dataclass
class LayerResult(RunFigures):
    """A GEMM run on a systolic array: the common figures plus tiles and input steps."""

    tiles: int
    steps: int

    def extra_json(self) -> dict:
        return {"tiles": self.tiles, "steps": self.steps}


def _check_operands(config, a, w):
    a = check_tensor(a, config.data_width, "A", ndim=2)
    w = check_tensor(w, config.data_width, "W", ndim=2)
    if a.shape[1] != w.shape[0]:
        raise TensorError(f"tensor `W`: has {w.shape[0]} rows but A has K={a.shape[1]} "
                          f"columns (O = A @ W needs them equal)")
    if 0 in a.shape or 0 in w.shape:
        raise TensorError(f"tensors `A` {a.shape} and `W` {w.shape} must not be empty")
    return a, w


def _tile_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """[M, ...] -> [M/rows, rows, ...] after padding M."""
    x = pad_to_multiple(x, rows, axis=0)
    return x.reshape(x.shape[0] // rows, rows, *x.shape[1:])


def prepare_gemm(config, a, w) -> GemmJob:
    """Validate A[M,K] and W[K,N] for ``config`` and lay out the player's step stream.

    Raises
    ------
    TensorError, DBBViolation
        Bad dtype, range or shape, or a weight block over its DBB bound (named).
    """
    a, w = _check_operands(config, a, w)
    (m, k), n = a.shape, w.shape[1]
    rows, cols = config.rows, config.cols
    mt, nt = math.ceil(m / rows), math.ceil(n / cols)
    a_tiles = _tile_rows(a, rows)                               # [mt, R, K]
    w_tiles = _tile_rows(w.T, cols)                             # [nt, C, K]
    inputs = {}

    def per_tile(a_steps, w_steps):
        """[mt, S, R, ...] and [nt, S, C, ...] -> all tiles' steps, tile t = (i, j) row-major.
        """
        s = a_steps.shape[1]
        a_all = np.broadcast_to(a_steps[:, None], (mt, nt, *a_steps.shape[1:]))
        w_all = np.broadcast_to(w_steps[None], (mt, nt, *w_steps.shape[1:]))
        last = np.zeros((mt, nt, s), dtype=np.int64)
        last[..., -1] = 1
        return (a_all.reshape(-1, *a_steps.shape[2:]), w_all.reshape(-1, *w_steps.shape[2:]),
                last.reshape(-1))

    a_eff = a
    if isinstance(config, DenseArrayConfig):
        a_steps, w_steps, last = per_tile(a_tiles.transpose(0, 2, 1), w_tiles.transpose(0, 2, 1))
        payload = {"a": a_steps, "w": w_steps, "last": last}
    elif isinstance(config, S2TAConfig):
        bz = config.block_size
        kb = math.ceil(k / bz)
        a_blocks = pad_to_multiple(a_tiles, bz, axis=2).reshape(mt, rows, kb, bz)
        if config.weight_dbb:
            gdbb.check_weights(w, bz, config.nnz_w, name="W")
            enc = gdbb.encode_weights(pad_to_multiple(w, cols, axis=1), bz, config.nnz_w)
            # [kb, nt*C, nnz] -> [nt, kb, C, nnz]
            shape = (kb, nt, cols, config.nnz_w)
            values = enc.values.reshape(shape).transpose(1, 0, 2, 3)
            indices = enc.indices.reshape(shape).transpose(1, 0, 2, 3)
            a_steps, v_steps, last = per_tile(a_blocks.transpose(0, 2, 1, 3), values)
            _, i_steps, _ = per_tile(a_blocks.transpose(0, 2, 1, 3), indices)
            w_payload = {"value": v_steps, "index": i_steps}
        else:
            w_blocks = pad_to_multiple(w_tiles, bz, axis=2).reshape(nt, cols, kb, bz)
            a_steps, w_payload, last = per_tile(a_blocks.transpose(0, 2, 1, 3),
                                                w_blocks.transpose(0, 2, 1, 3))
        payload = {"a": a_steps, "w": w_payload, "last": last}
        if config.act_dbb:
            inputs["nnz_a"] = config.nnz_a
            a_eff = gdbb.prune_activations(a, bz, config.nnz_a)
    else:
        raise TypeError(f"no GEMM mapping for {type(config).__name__}")
    return GemmJob(steps=len(last), payload=payload, tiles=(mt, nt), shape=(m, k, n),
                   expected=ggemm.gemm(a_eff, w, config.acc_width), a_effective=a_eff, w=w,
                   inputs=inputs)


def assemble_output(rows_out: np.ndarray, job: GemmJob, rows: int, cols: int) -> np.ndarray:
    mt, nt = job.tiles
    m, _, n = job.shape
    o = rows_out.reshape(mt, nt, rows, cols).transpose(0, 2, 1, 3).reshape(mt * rows, nt * cols)
    return o[:m, :n]


def run_gemm(design, config, a, w, *, status=None) -> LayerResult:
    """Run O = A @ W on the generated Verilog of ``design`` (``dense-array`` or ``s2ta``).

    ``status`` is an optional callable taking a one-line progress message.
    """
    from ..gen.generate import generate
    from .player import play

    job = prepare_gemm(config, a, w)
    generated = generate(design, config)
    layout = generated.metadata["layouts"]["i__payload"]
    words = hex_lines(pack_many(layout, job.payload, job.steps))
    mt, nt = job.tiles
    model = cycle_model.array_cycles(config, *job.shape)
    if status:
        status(f"{design.name}: {job.steps:,} steps, {mt * nt} tiles")
    played = play(generated, words, expect=mt * nt * config.rows, inputs=job.inputs,
                  timeout_cycles=4 * model + 1000, status=status)
    out_rows = unpack_signed_rows(played.results, config.acc_width, config.cols)
    output = assemble_output(out_rows, job, config.rows, config.cols)
    m, k, n = job.shape
    return LayerResult(
        output=output, cycles=played.cycles, model_cycles=model, macs_total=m * n * k,
        macs_nonzero=ggemm.macs_nonzero(job.a_effective, job.w), multipliers=config.multipliers,
        matches_golden=bool(np.array_equal(output, job.expected)), tiles=mt * nt,
        steps=job.steps, sim_seconds=played.seconds, build_seconds=played.build_seconds)


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
