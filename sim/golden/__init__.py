"""Pure-numpy golden models: DBB formats and bit-exact arithmetic (no Amaranth, no cocotb).

The hardware tests, the CLI and the examples all use these same functions.
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
)

# `gemm` the function stays in `.gemm` the module: re-exporting it would shadow the module.
from .gemm import dbb_dot, dot_blocks, macs_nonzero
from .numeric import TensorError, check_tensor, pad_to_multiple, wrap

__all__ = [
    "ActDBB", "DBBViolation", "WeightDBB", "check_weights", "decode_activations",
    "decode_weights", "encode_activations", "encode_weights", "prune_activations",
    "dbb_dot", "dot_blocks", "macs_nonzero", "TensorError", "check_tensor",
    "pad_to_multiple", "wrap",
]
