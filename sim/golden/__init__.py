"""Pure-numpy golden models: DBB formats and bit-exact arithmetic (no Amaranth, no cocotb).

The hardware tests, the CLI and the examples all use these same functions. Numeric semantics
follow DESIGN.md: signed two's-complement operands, products and sums wrapping at ``acc_width``.
"""

from .dbb import (
    ActDBB,
    DBBViolation,
    WeightDBB,
    check_weights,
    decode_activations,
    decode_weights,
    encode_activations,
    encode_weights,
    prune_activations,
    select_mask,
    select_order,
)

# `gemm` the function stays in `.gemm` the module: re-exporting it here would rebind the
# attribute `sparsegen.sim.golden.gemm` and break `from sparsegen.sim.golden import gemm`.
from .gemm import dbb_dot, dot_blocks, gated_lanes_dbb, gated_lanes_dense, macs_nonzero
from .numeric import TensorError, check_tensor, pad_to_multiple, wrap

__all__ = [
    "ActDBB", "DBBViolation", "WeightDBB", "check_weights", "decode_activations",
    "decode_weights", "encode_activations", "encode_weights", "prune_activations",
    "select_mask", "select_order",
    "dbb_dot", "dot_blocks", "gated_lanes_dbb", "gated_lanes_dense", "macs_nonzero",
    "TensorError", "check_tensor", "pad_to_multiple", "wrap",
]
