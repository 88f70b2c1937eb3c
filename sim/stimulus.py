"""Random stimulus with its golden expectations, shared by the Amaranth and cocotb testbenches.

Values mix zeros (at the requested density), uniform random values and the extremes
-2^(w-1) and 2^(w-1)-1, so sign handling and accumulator wrap-around are exercised on every
run. Everything is pure numpy and reproducible from a seed.
"""

import dataclasses

import numpy as np

from .golden import dbb as gdbb
from .golden import gemm as ggemm

__all__ = ["DotProduct", "random_operands", "pe_dot_products", "pe_beats"]


@dataclasses.dataclass(frozen=True)
class DotProduct:
    """One PE job: ``blocks`` activation and weight blocks, the expected sum and gated lanes."""

    a: np.ndarray                    # [blocks, BZ]
    w: np.ndarray                    # [blocks, BZ] dense weights (DBB-bounded for dbb-pe)
    values: np.ndarray | None        # [blocks, NNZ] compressed weights (dbb-pe only)
    indices: np.ndarray | None
    expected: int
    gated: int


def random_operands(rng: np.random.Generator, shape, data_width: int,
                    density: float = 0.6) -> np.ndarray:
    """int64 array of signed ``data_width``-bit values: zeros, uniform values and extremes."""
    lo, hi = -(1 << (data_width - 1)), (1 << (data_width - 1)) - 1
    values = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    pick = rng.random(shape)
    values = np.where(pick < 0.1, lo, values)
    values = np.where((pick >= 0.1) & (pick < 0.15), hi, values)
    return np.where(rng.random(shape) < density, values, 0)


def _dbb_weights(rng, blocks, block_size, nnz, data_width, density):
    """Dense weight blocks with at most ``nnz`` non-zeros each, at random positions."""
    w = np.zeros((blocks, block_size), dtype=np.int64)
    for b in range(blocks):
        keep = rng.choice(block_size, size=rng.integers(0, nnz + 1), replace=False)
        w[b, keep] = random_operands(rng, len(keep), data_width, density=density)
    return w


def pe_dot_products(config: dict, rng: np.random.Generator, count: int, *,
                    max_blocks: int = 5, density: float = 0.6) -> list[DotProduct]:
    """``count`` random dot products for a ``dense-pe`` or ``dbb-pe`` config (a dict).

    A config with ``nnz`` is a DBB PE: its weights obey DBB(block_size, nnz) and are
    compressed with the golden encoder the CLI uses too.
    """
    bz, width, acc = config["block_size"], config["data_width"], config["acc_width"]
    jobs = []
    for _ in range(count):
        blocks = int(rng.integers(1, max_blocks + 1))
        a = random_operands(rng, (blocks, bz), width, density)
        if "nnz" in config:
            w = _dbb_weights(rng, blocks, bz, config["nnz"], width, density)
            enc = gdbb.encode_weights(w.reshape(-1, 1), bz, config["nnz"])
            values, indices = enc.values[:, 0, :], enc.indices[:, 0, :]
            expected = ggemm.dbb_dot(a, values, indices, acc)
            gated = ggemm.gated_lanes_dbb(a, values, indices)
        else:
            w = random_operands(rng, (blocks, bz), width, density)
            values = indices = None
            expected = ggemm.dot_blocks(a, w, acc)
            gated = ggemm.gated_lanes_dense(a, w)
        jobs.append(DotProduct(a, w, values, indices, int(expected), int(gated)))
    return jobs


def pe_beats(job: DotProduct) -> list[dict]:
    """Input payloads (as nested dicts/lists for the PE's input layout) of one dot product."""
    blocks = job.a.shape[0]
    beats = []
    for b in range(blocks):
        if job.values is None:
            w = job.w[b].tolist()
        else:
            w = [{"value": int(v), "index": int(i)}
                 for v, i in zip(job.values[b], job.indices[b])]
        beats.append({"a": job.a[b].tolist(), "w": w, "last": int(b == blocks - 1)})
    return beats
