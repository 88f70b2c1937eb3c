"""Workloads: shipped layer shapes (``constraints/workloads.toml``, sources named there) and
deterministic tensors at requested densities, fitted to what each design can hold.

Tensors. For a layer, a seed and densities (weights ``wd``, activations ``ad``), the values
and the positions are drawn once from seeded generators (the seed, the layer's name and the
tensor's role): every element gets a non-zero int8-range value and a random priority; the
tensor at density d keeps the round(d x size) elements of highest priority. So a lower density
keeps a subset of a higher one's non-zeros, with the same values, and every design is handed
the same unstructured tensors.

Fitting (:func:`fit`): a design whose format cannot hold an unstructured tensor gets the
tensor pruned by its own golden prune (magnitude order), i.e. the unstructured non-zeros
minus those its format cannot hold; the row then reports the density it really ran:

* ``s2ta`` with weight DBB: W pruned to DBB(BZ, ``nnz_w``) along K; the run-time ``nnz_a`` is
  ceil(ad x BZ) (at most ``nnz_max``) and its DAP keeps the top ``nnz_a`` of each block;
* ``highlight``: the run-time pattern is the sparsest of its set whose density is at least
  ``wd``, and W is pruned to it (the host's ``prune``);
* ``dense-array``, ``sod``, ``scnn``: unstructured, as given.

Convolutions run natively on conv designs (``scnn``: stride 1 only) and lowered by im2col on
GEMM designs; a GEMM layer cannot run on a conv-only design (:func:`cannot_run` says why).
"""

import dataclasses
import math
import tomllib
import zlib
from pathlib import Path

import numpy as np

from ..hw.highlight import HighLightConfig, pattern_text
from ..hw.s2ta import S2TAConfig
from .golden import dbb as gdbb
from .golden import hss as ghss
from .layer import im2col

__all__ = ["WORKLOADS_TOML", "Workload", "load_workloads", "Tensors", "tensors", "Fitted",
           "fit", "cannot_run", "sparse_tensor"]

WORKLOADS_TOML = Path(__file__).resolve().parent.parent / "constraints" / "workloads.toml"

_CONV_KEYS = ("C", "H", "W", "K", "R", "S", "stride", "pad")
_GEMM_KEYS = ("M", "K", "N")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One layer: ``name`` (``model.layer``), ``kind`` (``conv`` or ``gemm``), ``source``
    (where the shape comes from) and its dimensions (``dims``: C H W K R S stride pad, or
    M K N)."""

    name: str
    kind: str
    source: str
    dims: dict

    @property
    def gemm_shape(self) -> tuple[int, int, int]:
        """(M, K, N) of the layer as a GEMM (im2col for a conv)."""
        d = self.dims
        if self.kind == "gemm":
            return d["M"], d["K"], d["N"]
        p = (d["H"] + 2 * d["pad"] - d["R"]) // d["stride"] + 1
        q = (d["W"] + 2 * d["pad"] - d["S"]) // d["stride"] + 1
        return p * q, d["R"] * d["S"] * d["C"], d["K"]

    @property
    def macs(self) -> int:
        m, k, n = self.gemm_shape
        return m * k * n

    def as_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "source": self.source, **self.dims}


def _workload(name: str, table: dict) -> Workload:
    kind = table.get("kind")
    keys = {"conv": _CONV_KEYS, "gemm": _GEMM_KEYS}.get(kind)
    if keys is None:
        raise ValueError(f"workload `{name}`: `kind` must be conv or gemm, not {kind!r}")
    dims = {}
    for key in keys:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (
                0 if key == "pad" else 1):
            raise ValueError(f"workload `{name}`: `{key}` must be a positive integer, "
                             f"not {value!r}")
        dims[key] = value
    return Workload(name, kind, str(table.get("source", "")), dims)


def load_workloads(path: Path = WORKLOADS_TOML) -> dict[str, Workload]:
    """Every workload of the file, by ``model.layer`` name, in file order."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    return {f"{model}.{layer}": _workload(f"{model}.{layer}", spec)
            for model, layers in table.items() for layer, spec in layers.items()}


# -- tensors ---------------------------------------------------------------------------------


def _rng(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def sparse_tensor(shape, density: float, seed: int, *names: str,
                  data_width: int = 8) -> np.ndarray:
    """A tensor of ``shape`` with round(density x size) non-zeros, signed ``data_width``-bit
    values; nested over densities (see the module docs)."""
    rng = _rng(seed, *names)
    size = math.prod(shape)
    hi = (1 << (data_width - 1)) - 1
    values = rng.integers(1, hi + 1, size) * rng.choice([-1, 1], size)
    priority = rng.permutation(size)                    # rank of each element
    keep = priority < round(density * size)
    return np.where(keep, values, 0).reshape(shape).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Tensors:
    """A layer's operands: ``a`` [M, K] and ``w`` [K, N] (im2col for a conv), and for a conv
    ``ifmap`` [C, H, W] and ``filters`` [K, C, R, S]."""

    a: np.ndarray
    w: np.ndarray
    ifmap: np.ndarray | None = None
    filters: np.ndarray | None = None


def tensors(workload: Workload, weight_density: float, act_density: float, seed: int,
            data_width: int = 8) -> Tensors:
    """The layer's operands at the given densities, from ``seed`` (deterministic)."""
    d = workload.dims
    if workload.kind == "gemm":
        a = sparse_tensor((d["M"], d["K"]), act_density, seed, workload.name, "a",
                          data_width=data_width)
        w = sparse_tensor((d["K"], d["N"]), weight_density, seed, workload.name, "w",
                          data_width=data_width)
        return Tensors(a, w)
    ifmap = sparse_tensor((d["C"], d["H"], d["W"]), act_density, seed, workload.name, "a",
                          data_width=data_width)
    filters = sparse_tensor((d["K"], d["C"], d["R"], d["S"]), weight_density, seed,
                            workload.name, "w", data_width=data_width)
    a, w, _ = im2col(ifmap, filters, stride=d["stride"], padding=d["pad"])
    return Tensors(a, w, ifmap, filters)


# -- fitting to a design ------------------------------------------------------------------------


def cannot_run(host, workload: Workload) -> str | None:
    """Why a design with ``host`` cannot run ``workload`` (``None``: it can)."""
    if host is None:
        return "is a building block (no host runs layers on it)"
    if host.workload == "conv":
        if workload.kind != "conv":
            return "runs convolutions only, not a GEMM layer"
        if workload.dims["stride"] != 1:
            return f"runs stride-1 convolutions only, not stride {workload.dims['stride']}"
    return None


@dataclasses.dataclass(frozen=True)
class Fitted:
    """What one design runs: its (run-time adjusted) ``config``, the host call's positional
    ``args`` and keyword ``options``, and the densities of the operands it is handed."""

    config: object
    args: tuple
    options: dict
    weight_density: float
    act_density: float


def _density(x: np.ndarray) -> float:
    return round(float(np.count_nonzero(x)) / x.size, 6) if x.size else 0.0


def fit(host, config, workload: Workload, ops: Tensors, act_density: float,
        weight_density: float) -> Fitted:
    """Fit a layer's tensors to a design (module docs): the config with its run-time settings
    (``nnz_a``, ``pattern``), the operands its format holds and how the host is called."""
    if host.workload == "conv":
        return Fitted(config, (ops.ifmap, ops.filters), {"pad": workload.dims["pad"]},
                      _density(ops.filters), _density(ops.ifmap))
    a, w, options = ops.a, ops.w, {}
    if isinstance(config, S2TAConfig):
        if config.weight_dbb:
            w = gdbb.prune_activations(w.T, config.block_size, config.nnz_w).T
        if config.act_dbb:
            nnz_a = min(config.nnz_max, max(1, math.ceil(act_density * config.block_size)))
            config = dataclasses.replace(config, nnz_a=nnz_a)
    elif isinstance(config, HighLightConfig):
        fits = [p for p in config.pattern_set
                if p[0] * p[2] / (p[1] * p[3]) >= weight_density - 1e-9]
        pattern = min(fits, key=lambda p: p[0] * p[2] / (p[1] * p[3]))
        config = dataclasses.replace(config, pattern=pattern_text(pattern))
        w = ghss.prune_weights(w, ghss.HSSPattern(*pattern))
    return Fitted(config, (a, w), options, _density(w), _density(a))
