"""Packing model values into port bits and back, from the layout descriptions in ``<top>.json``.

A testbench running under cocotb sees a payload port as one wide integer. The generator
describes each port's layout (see :func:`sparsegen.gen.generate.describe_shape`); these
functions walk that description, so a testbench needs no Amaranth and no hand-written offsets.

Values: an ``int`` for an integer shape, a ``dict`` for a struct, a sequence (or numpy array) for
an array, nested as the layout is.
"""

import numpy as np

__all__ = ["pack", "unpack", "pack_many", "word_count", "words_to_hex", "hex_to_words",
           "packed_ints", "bit_toggles", "unpack_signed_rows"]


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


def word_count(width: int) -> int:
    """``uint32`` words of a ``width``-bit payload."""
    return (width + 31) // 32


def pack_many(desc: dict, value, count: int) -> np.ndarray:
    """``count`` payloads as a ``uint32`` array ``[count, ceil(width / 32)]``, least
    significant word first (bit ``b`` of a payload is bit ``b % 32`` of word ``b // 32``).

    ``value`` is nested like :func:`pack`'s, but every integer leaf is a numpy array whose
    first axis runs over the payloads, and an array level may be one numpy array with the
    element index as its second axis (``a[:, r, k]``) or a list of per-element values.
    Each leaf is masked to its width and ORed into the words it spans, one numpy operation per
    word over all payloads; no per-bit matrix is made.

    Raises
    ------
    ValueError
        An integer does not fit its field.
    """
    words = np.zeros((word_count(desc["width"]), count), dtype=np.uint32)  # word-major
    _pack_into(desc, value, words, 0, False)
    return np.ascontiguousarray(words.T)


def _check(desc, v):
    width = desc["width"]
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if desc["signed"] \
        else (0, (1 << width) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"a value does not fit {width}-bit")


def _pack_into(desc, value, words, offset, checked):
    """OR ``value`` laid out as ``desc`` at bit ``offset`` into the word-major ``words``;
    ``checked``: the values are known to fit (an array level checked them at once)."""
    kind = desc["kind"]
    if kind == "int":
        width = desc["width"]
        v = np.broadcast_to(np.asarray(value, dtype=np.int64), (words.shape[1],))
        if not checked:
            _check(desc, v)
        first, shift = divmod(offset, 32)
        if shift + width <= 32:             # within one word: 32-bit arithmetic (most fields)
            part = v.astype(np.uint32)          # two's complement, wrapped to 32 bits
            if width < 32:
                part &= np.uint32((1 << width) - 1)
            words[first] |= part << np.uint32(shift)
            return
        u = v.view(np.uint64) if width >= 64 else v.astype(np.uint64) & np.uint64((1 << width) - 1)
        low32 = np.uint64(0xFFFFFFFF)
        for k in range((shift + width + 31) // 32):
            # Bits [32k - shift, 32k - shift + 32) of the value go to word first + k.
            start = 32 * k - shift
            part = (u << np.uint64(shift)) if start < 0 else (u >> np.uint64(start))
            words[first + k] |= (part & low32).astype(np.uint32)
        return
    if kind == "array":
        elem = leaf = desc["elem"]
        while leaf["kind"] == "array":
            leaf = leaf["elem"]
        if not checked and leaf["kind"] == "int" and isinstance(value, np.ndarray):
            _check(leaf, value)             # once over the whole array, not per element
            checked = True
        for i in range(desc["length"]):
            if isinstance(value, dict):         # a struct below, given as arrays per field
                item = {name: v[:, i] for name, v in value.items()}
            elif isinstance(value, list | tuple):
                item = value[i]
            else:
                item = value[:, i]
            _pack_into(elem, item, words, offset + i * elem["width"], checked)
        return
    for name, field in desc["fields"].items():
        _pack_into(field["shape"], value[name], words, offset + field["offset"], checked)


def words_to_hex(words: np.ndarray, width: int) -> str:
    """``uint32`` array ``[count, ceil(width / 32)]`` (least significant word first) -> one hex
    line per payload, ``ceil(width / 4)`` lower-case digits, as Verilog's ``%h`` writes it and
    the cocotb player's ``$fscanf("%h")`` reads it."""
    count, n = words.shape
    if count == 0:
        return ""
    digits = (width + 3) // 4
    text = np.frombuffer(words[:, ::-1].astype(">u4").tobytes().hex().encode(), dtype="S1")
    text = text.reshape(count, 8 * n)[:, 8 * n - digits:]
    newline = np.full((count, 1), b"\n", dtype="S1")
    return np.concatenate([text, newline], axis=1).tobytes().decode()


def hex_to_words(text: str, width: int) -> np.ndarray:
    """Hex payload lines (one per line, most significant digit first, as the cocotb player's
    ``$fscanf("%h")`` reads them) -> ``uint32`` array ``[count, ceil(width / 32)]``, least
    significant word first. Bits above ``width`` are dropped, as a ``width``-bit register
    would."""
    lines = text.split()
    words = word_count(width)
    if not lines:
        return np.zeros((0, words), dtype=np.uint32)
    digits = len(lines[0])
    if all(len(line) == digits for line in lines):
        # One C-level conversion: a "0" in front of every line makes the digit count even
        # without moving any digit, and each line becomes (digits + 1) // 2 big-endian bytes.
        raw = np.frombuffer(bytes.fromhex("0" + "0".join(lines) if digits % 2 else
                                          "".join(lines)), dtype=np.uint8)
        be = raw.reshape(len(lines), -1)[:, -4 * words:]
        le = np.zeros((len(lines), 4 * words), dtype=np.uint8)
        le[:, :be.shape[1]] = be[:, ::-1]
        out = le.view("<u4").astype(np.uint32)
    else:
        mask = (1 << (32 * words)) - 1
        raw = b"".join((int(line, 16) & mask).to_bytes(4 * words, "little") for line in lines)
        out = np.frombuffer(raw, dtype="<u4").reshape(len(lines), words).astype(np.uint32)
    if width % 32:
        out[:, -1] &= np.uint32((1 << (width % 32)) - 1)
    return out


def packed_ints(words: np.ndarray) -> list[int]:
    """``uint32`` word array of :func:`pack_many` -> one Python int per payload."""
    raw = words.astype("<u4", copy=False)
    return [int.from_bytes(row.tobytes(), "little") for row in raw]


def bit_toggles(words: np.ndarray) -> int:
    """Bits that change between consecutive payloads of a :func:`pack_many` word array."""
    return int(np.bitwise_count(np.bitwise_xor(words[1:], words[:-1])).sum())


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

