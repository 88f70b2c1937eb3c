"""Integer semantics shared by every golden model: signed wrap-around and tensor checks.

Every golden model computes in ``np.int64``. Where a sum can leave the int64 range the models
compute modulo 2^64 in ``np.uint64``, whose overflow C (and so numpy) defines as wrapping;
:func:`wrap` then reduces to the hardware's width. That final reduction is exact because taking
the residue modulo 2^width (width <= 64) is a ring homomorphism Z/2^64 -> Z/2^width: wrapping
once at the end equals wrapping after every product and addition, as the hardware does.
"""

import numpy as np

__all__ = ["TensorError", "wrap", "check_tensor", "pad_to_multiple"]

_U64_MASK = (1 << 64) - 1


class TensorError(ValueError):
    """A tensor has the wrong dtype, number of dimensions or value range.

    The message is one line and names the tensor, e.g. "tensor `A`: expected 2 dimensions,
    got 3 (shape (2, 2, 2))".
    """


def _check_width(width, what: str = "width") -> int:
    """Validate a bit width of 1..64 (the range int64 arithmetic can represent)."""
    if isinstance(width, bool) or not isinstance(width, int | np.integer):
        raise TypeError(f"`{what}` must be an integer, not {width!r}")
    if not 1 <= width <= 64:
        raise ValueError(f"`{what}` must be between 1 and 64, not {width}")
    return int(width)


def _as_uint64_bits(x) -> np.ndarray:
    """The two's-complement bit patterns of integers, modulo 2^64, as ``np.uint64``."""
    arr = np.asarray(x)
    if arr.dtype == object:
        # Python ints beyond the int64 range: reduce them exactly before numpy sees them.
        flat = [int(v) & _U64_MASK for v in arr.ravel()]
        return np.array(flat, dtype=np.uint64).reshape(arr.shape)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"wrap() needs integers, not dtype {arr.dtype}")
    if arr.dtype.itemsize == 8:
        # Reinterpret, do not convert: the bit pattern is the residue modulo 2^64.
        return arr.view(np.uint64)
    # Narrower integers fit int64 exactly; the int64 -> uint64 view is again modulo 2^64.
    return arr.astype(np.int64).view(np.uint64)


def wrap(x, width: int) -> np.ndarray:
    """Reduce integers to signed two's-complement ``width`` bits, as the hardware's adders do.

    Parameters
    ----------
    x
        An integer, an integer array of any integer dtype (int64 arrays that have themselves
        wrapped modulo 2^64 included), or Python ints of any size.
    width
        Bit width, 1..64.

    Returns
    -------
    np.ndarray
        int64 array of ``x``'s shape (0-d for a scalar) with values in
        -2^(width-1)..2^(width-1)-1, congruent to ``x`` modulo 2^width.
    """
    width = _check_width(width)
    u = _as_uint64_bits(x)
    mask = np.uint64(_U64_MASK >> (64 - width))
    sign = np.uint64(1 << (width - 1))
    # Sign extension without branches: (u ^ s) - s flips the sign bit's weight from +2^(w-1)
    # to -2^(w-1). The subtraction is in uint64, so it wraps by definition and the same formula
    # holds for width = 64 (where the mask keeps everything and the result is u itself).
    # Flattened: on 0-d input numpy would compute with scalars, which warn on the wrap.
    flat = u.reshape(-1)
    return (((flat & mask) ^ sign) - sign).view(np.int64).reshape(u.shape)


def check_tensor(x, width: int, name: str, ndim: int | None = None) -> np.ndarray:
    """Accept an integer tensor whose values fit signed ``width`` bits; return it as int64.

    Any integer dtype is accepted (int8..int64, uint8..uint64) as long as every value fits;
    float, bool and object dtypes are not.

    Parameters
    ----------
    x
        The tensor (array-like).
    width
        Signed bit width the values must fit, 1..64.
    name
        Name of the tensor in messages.
    ndim
        Required number of dimensions, or ``None`` for any.

    Returns
    -------
    np.ndarray
        A new int64 array with the same values and shape.

    Raises
    ------
    TensorError
        Non-integer dtype, wrong number of dimensions, or a value out of range (the message
        names the first one in C order and its index).
    """
    width = _check_width(width)
    x = np.asarray(x)
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise TensorError(f"tensor `{name}`: dtype {x.dtype} is not an integer dtype")
    if ndim is not None and x.ndim != ndim:
        raise TensorError(f"tensor `{name}`: expected {ndim} dimensions, got {x.ndim} "
                          f"(shape {x.shape})")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    # Compare in a dtype that holds both the values and the bounds: uint64 for unsigned input
    # (its values may exceed int64), int64 otherwise (every signed value fits it).
    if np.issubdtype(x.dtype, np.unsignedinteger):
        bad = x.astype(np.uint64) > np.uint64(hi)
    else:
        wide = x.astype(np.int64)
        bad = (wide < lo) | (wide > hi)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise TensorError(f"tensor `{name}`: value {int(x[index])} at index {index} does not "
                          f"fit signed {width}-bit ({lo}..{hi})")
    return x.astype(np.int64)


def pad_to_multiple(x, multiple: int, axis: int) -> np.ndarray:
    """Zero-pad ``x`` at the end of ``axis`` up to a multiple of ``multiple``.

    Returns ``x`` itself (as an array) when its length is already a multiple; the dtype is kept.
    """
    if isinstance(multiple, bool) or not isinstance(multiple, int | np.integer) or multiple < 1:
        raise ValueError(f"`multiple` must be a positive integer, not {multiple!r}")
    x = np.asarray(x)
    extra = (-x.shape[axis]) % multiple
    if not extra:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return np.pad(x, widths)
