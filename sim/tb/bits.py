"""Packing model values into port bits and back, from the layout descriptions in ``<top>.json``.

A testbench running under cocotb sees a payload port as one wide integer. The generator
describes each port's layout (see :func:`sparsegen.gen.generate.describe_shape`); these
functions walk that description, so a testbench needs no Amaranth and no hand-written offsets.

Values: an ``int`` for an integer shape, a ``dict`` for a struct, a sequence (or numpy array) for
an array, nested as the layout is.
"""

import numpy as np

__all__ = ["pack", "unpack", "pack_many", "hex_lines", "packed_ints", "unpack_signed_rows"]


def pack(desc: dict, value) -> int:
    """Bits (a non-negative int) of ``value`` laid out as ``desc``.

    Raises
    ------
    ValueError
        A field is missing, an array has the wrong length, or an integer does not fit.
    """
    kind = desc["kind"]
    if kind == "int":
        width, value = desc["width"], int(value)
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if desc["signed"] \
            else (0, (1 << width) - 1)
        if not lo <= value <= hi:
            raise ValueError(f"{value} does not fit {'signed' if desc['signed'] else 'unsigned'}"
                             f" {width}-bit")
        return value & ((1 << width) - 1)
    if kind == "array":
        elem = desc["elem"]
        if len(value) != desc["length"]:
            raise ValueError(f"expected {desc['length']} elements, got {len(value)}")
        bits = 0
        for i, item in enumerate(value):
            bits |= pack(elem, item) << (i * elem["width"])
        return bits
    bits = 0
    for name, field in desc["fields"].items():
        if name not in value:
            raise ValueError(f"missing field `{name}`")
        bits |= pack(field["shape"], value[name]) << field["offset"]
    return bits


def unpack(desc: dict, bits: int):
    """Inverse of :func:`pack`: nested ints, lists and dicts from the raw bits."""
    kind = desc["kind"]
    width = desc["width"]
    bits &= (1 << width) - 1
    if kind == "int":
        if desc["signed"] and bits >> (width - 1):
            return bits - (1 << width)
        return bits
    if kind == "array":
        elem = desc["elem"]
        mask = (1 << elem["width"]) - 1
        return [unpack(elem, (bits >> (i * elem["width"])) & mask)
                for i in range(desc["length"])]
    return {name: unpack(field["shape"], bits >> field["offset"])
            for name, field in desc["fields"].items()}


# -- vectorised: many payloads at once, for layer-level streams ------------------------------


def pack_many(desc: dict, value, count: int) -> np.ndarray:
    """Bits of ``count`` payloads as a ``uint8`` matrix ``[count, width]`` (bit 0 first).

    ``value`` is nested like :func:`pack`'s, but every integer leaf is a numpy array whose
    first axis runs over the payloads, and an array level may be one numpy array with the
    element index as its second axis (``a[:, r, k]``) or a list of per-element values.
    """
    bits = np.zeros((count, desc["width"]), dtype=np.uint8)
    _pack_into(desc, value, bits, 0)
    return bits


def _pack_into(desc, value, bits, offset):
    kind = desc["kind"]
    if kind == "int":
        width = desc["width"]
        v = np.broadcast_to(np.asarray(value, dtype=np.int64), (bits.shape[0],))
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if desc["signed"] \
            else (0, (1 << width) - 1)
        if v.size and (v.min() < lo or v.max() > hi):
            raise ValueError(f"a value does not fit {width}-bit")
        u = v.astype(np.uint64) if width < 64 else v.view(np.uint64)
        for b in range(width):
            bits[:, offset + b] = (u >> np.uint64(b)) & np.uint64(1)
        return
    if kind == "array":
        elem = desc["elem"]
        for i in range(desc["length"]):
            if isinstance(value, dict):         # a struct below, given as arrays per field
                item = {name: v[:, i] for name, v in value.items()}
            elif isinstance(value, list | tuple):
                item = value[i]
            else:
                item = value[:, i]
            _pack_into(elem, item, bits, offset + i * elem["width"])
        return
    for name, field in desc["fields"].items():
        _pack_into(field["shape"], value[name], bits, offset + field["offset"])


def hex_lines(bits: np.ndarray) -> str:
    """``[count, width]`` bit matrix -> text of one hex word per line (most significant first),
    as Verilog's ``$fscanf("%h")`` reads it."""
    count, width = bits.shape
    pad = (-width) % 8
    padded = np.concatenate([bits, np.zeros((count, pad), dtype=np.uint8)], axis=1)
    packed = np.packbits(padded[:, ::-1], axis=1)            # MSB first
    return "".join(row.tobytes().hex() + "\n" for row in packed)


def unpack_signed_rows(hex_text: str, elem_width: int, length: int) -> np.ndarray:
    """Result words of an ``ArrayLayout(signed(elem_width), length)`` port -> int64
    ``[count, length]``."""
    words = [int(line, 16) for line in hex_text.split()]
    out = np.zeros((len(words), length), dtype=np.int64)
    mask = (1 << elem_width) - 1
    for n, word in enumerate(words):
        for i in range(length):
            v = (word >> (i * elem_width)) & mask
            out[n, i] = v - (1 << elem_width) if v >> (elem_width - 1) else v
    return out


def packed_ints(bits: np.ndarray) -> list[int]:
    """``[count, width]`` bit matrix -> one Python int per payload."""
    return [int(line, 16) for line in hex_lines(bits).split()]
