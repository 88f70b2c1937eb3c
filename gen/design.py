"""What a design is to every layer above ``hw/``: its config, its component and, for the arrays
that run whole layers, its host.

This module belongs to the build layer (with :mod:`.generate` and :mod:`.synth`): it imports
only ``hw/``. The one declaration of each design, which fills these in with the sim layer's host
functions, is the catalogue :mod:`sparsegen.gen.registry` in the app layer.
"""

import dataclasses
from collections.abc import Callable

from amaranth.lib import wiring

from ..hw.params import Config, ParamSpec

__all__ = ["Design", "Host", "WORKLOADS"]

WORKLOADS = ("gemm", "conv")
"""What a host can run: ``gemm`` (``--a/--w``, or a convolution lowered by im2col) or ``conv``
(``--ifmap/--filters`` natively, stride 1)."""


@dataclasses.dataclass(frozen=True)
class Host:
    """How the layers above run whole layers on a design; supplied by a host module of ``sim/``.

    Members
    -------
    workload : str
        One of :data:`WORKLOADS`.
    run : callable
        The RTL run: ``run(design, config, a, w, *, status=None, **options)`` for ``gemm``,
        ``run(design, config, ifmap, filters, *, pad=0, status=None, **options)`` for ``conv``.
        Returns a result with ``output``, ``matches_golden`` and ``as_json()`` whose
        ``"source"`` is ``"rtl"``.
    model : callable
        The same call answered without building RTL, from the golden model (outputs) and the
        RTL-validated cycle model (cycles); the result says ``"source": "model"``.
    cycles : callable or None
        ``cycles(config, m, k, n)``: the closed-form cycle model of a GEMM, for sweeps. ``None``
        where the model needs the tensors (SCNN's is trace-driven).
    ideal_speedup : callable or None
        ``ideal_speedup(config)``: dense MAC slots over the slots the design cannot skip.
    options : frozenset of str
        Run options the host takes besides the tensors: ``"prune"`` (prune dense weights to
        the design's pattern first), ``"relu"`` (ReLU in the hardware's drain),
        ``"conv_chain"`` (two chained convolutions) and ``"groups"`` (output-channel column
        groups).
    """

    workload: str
    run: Callable
    model: Callable
    cycles: Callable | None = None
    ideal_speedup: Callable | None = None
    options: frozenset = frozenset()

    def __post_init__(self):
        if self.workload not in WORKLOADS:
            raise ValueError(f"`workload` must be one of {', '.join(WORKLOADS)}, "
                             f"not {self.workload!r}")


@dataclasses.dataclass(frozen=True)
class Design:
    """A generatable design: a name, its config class, its component, a one-line summary, and
    the host that runs layers on it (``None`` for building blocks, which only their tests
    simulate)."""

    name: str
    config_cls: type[Config]
    component: Callable[[Config], wiring.Component]
    summary: str
    host: Host | None = None

    @property
    def top(self) -> str:
        """Verilog module name of the design's top level."""
        return self.name.replace("-", "_")

    @property
    def params(self) -> tuple[ParamSpec, ...]:
        return self.config_cls.param_specs()
