"""Integer semantics shared by every golden model: signed wrap-around and tensor checks."""

import numpy as np

__all__ = ["TensorError", "wrap", "check_tensor", "pad_to_multiple"]


class TensorError(ValueError):
    """A tensor given by the user has the wrong dtype, shape or value range."""


def wrap(x, width: int) -> np.ndarray:
    """Reduce integers to signed two's complement ``width`` bits (1..64), as int64.

    Works on int64 arrays that have themselves wrapped modulo 2^64: reduction modulo 2^width
    commutes with addition and multiplication, so the result is exact either way.
    """
    if not 1 <= width <= 64:
        raise ValueError(f"`width` must be between 1 and 64, not {width}")
    x = np.asarray(x, dtype=np.int64)
    if width == 64:
        return x.copy()
    u = x.astype(np.uint64) & np.uint64((1 << width) - 1)      # the cast wraps mod 2^64
    sign = np.uint64(1 << (width - 1))
    return ((u ^ sign).astype(np.int64) - np.int64(1 << (width - 1))).astype(np.int64)


def check_tensor(x, width: int, name: str, ndim: int | None = None) -> np.ndarray:
    """Accept an integer array whose values fit signed ``width`` bits; return it as int64.

    Raises
    ------
    TensorError
        Float, bool or object dtype, wrong number of dimensions, or a value out of range
        (the message names the first one and its index).
    """
    x = np.asarray(x)
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise TensorError(f"tensor `{name}`: dtype {x.dtype} is not an integer dtype")
    if ndim is not None and x.ndim != ndim:
        raise TensorError(f"tensor `{name}`: expected {ndim} dimensions, got {x.ndim} "
                          f"(shape {x.shape})")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if x.dtype == np.uint64:
        bad = x > np.uint64(hi)
    else:
        bad = (x < lo) | (x > hi)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise TensorError(f"tensor `{name}`: value {x[index]} at index {index} does not fit "
                          f"signed {width}-bit ({lo}..{hi})")
    return x.astype(np.int64)


def pad_to_multiple(x: np.ndarray, multiple: int, axis: int) -> np.ndarray:
    """Zero-pad ``x`` along ``axis`` up to a multiple of ``multiple``."""
    extra = (-x.shape[axis]) % multiple
    if not extra:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return np.pad(x, widths)
