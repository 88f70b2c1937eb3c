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


#: Payloads packed per pass of :func:`pack_many`: a pass's working set (its leaf values and
#: the 64-bit words being built) stays in the L2 cache instead of streaming every field's
#: temporaries over all payloads through memory.
CHUNK_STEPS = 8192


def pack_many(desc: dict, value, count: int, *, chunk: int = CHUNK_STEPS) -> np.ndarray:
    """``count`` payloads as a ``uint32`` array ``[count, ceil(width / 32)]``, least
    significant word first (bit ``b`` of a payload is bit ``b % 32`` of word ``b // 32``).

    ``value`` is nested like :func:`pack`'s, but every integer leaf is a numpy array whose
    first axis runs over the payloads, and an array level may be one numpy array with the
    element index as its second axis (``a[:, r, k]``) or a list of per-element values.

    Every numpy array of leaves (``a[:, r, k]`` for all ``r, k`` at once) is one *group*: its
    elements' bit offsets are worked out once from ``desc``. The payloads are then packed
    ``chunk`` at a time into 64-bit words: per group, one range check, one pass masking the
    values to their width (element-major, so each element's values are contiguous), one
    shift, and one OR-reduction per word over the elements that land in it (fields do not
    overlap); a field straddling a 64-bit boundary adds its high part to the next word.
    No per-bit matrix and no per-field temporaries over all payloads are made.

    Raises
    ------
    ValueError
        An integer does not fit its field.
    """
    nwords = word_count(desc["width"])
    if count == 0:
        return np.zeros((0, nwords), dtype=np.uint32)
    out = np.empty((count, nwords), dtype=np.uint32)      # every word is written below
    groups = []
    _groups(desc, value, count, np.zeros((), dtype=np.int64), groups)
    plans = [_Plan(*g) for g in groups]
    chunk = max(1, min(chunk, count))
    nw64 = (nwords + 1) // 2
    acc = np.empty((nw64, chunk), dtype=np.uint64)         # word-major 64-bit words
    size = max([p.size for p in plans], default=1)
    shifted = np.empty((size, chunk), dtype=np.uint64)     # element-major scratch
    part = np.empty(chunk, dtype=np.uint64)
    for lo in range(0, count, chunk):
        hi = min(lo + chunk, count)
        n = hi - lo
        words = acc[:, :n]
        words.fill(0)
        for plan in plans:
            plan.add(lo, hi, words, shifted[:plan.size, :n], part[:n])
        # 64-bit word q holds 32-bit words 2q (its low half) and 2q + 1 (its high half).
        np.copyto(out[lo:hi, 0::2], words.T, casting="unsafe")   # unsigned: keeps the low 32
        np.right_shift(words.T[:, :nwords // 2], np.uint64(32), out=out[lo:hi, 1::2],
                       casting="unsafe")
    return out


def _check(desc, v):
    width = desc["width"]
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if desc["signed"] \
        else (0, (1 << width) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"a value does not fit {width}-bit")


def _groups(desc, value, count, offsets, out):
    """Append ``(desc, values, offsets)`` per numpy array of integer leaves in ``value`` laid
    out as ``desc``: ``values`` is ``[count, *offsets.shape]``, ``offsets`` the bit offset of
    each element. ``offsets`` is the offset of ``value`` itself, with one axis per array level
    given as one numpy array above it."""
    kind = desc["kind"]
    if kind == "int":
        v = np.asarray(value)
        if v.dtype.kind not in "iub" or v.dtype == np.uint64:
            v = v.astype(np.int64)
        out.append((desc, np.broadcast_to(v, (count, *offsets.shape)), offsets))
        return
    if kind == "array":
        elem = desc["elem"]
        steps = np.arange(desc["length"], dtype=np.int64) * elem["width"]
        if isinstance(value, list | tuple):
            for i in range(desc["length"]):
                _groups(elem, value[i], count, offsets + steps[i], out)
        else:                   # one array (or a struct's arrays) with this level as an axis
            _groups(elem, value, count, offsets[..., None] + steps, out)
        return
    for name, field in desc["fields"].items():
        _groups(field["shape"], value[name], count, offsets + field["offset"], out)


class _Plan:
    """Where one group's elements go in the 64-bit words, and how to put them there."""

    def __init__(self, desc, values, offsets):
        self.desc, self.values = desc, values
        width = desc["width"]
        self.size = offsets.size
        self.mask = np.int64(-1 if width >= 64 else (1 << width) - 1)
        # Offsets grow along the flattened elements (outer array levels first, C order), so
        # the elements landing in one 64-bit word are consecutive: one run, one reduction.
        flat = offsets.reshape(-1)
        word, shift = flat // 64, flat % 64
        self.shifts = shift.astype(np.uint64)[:, None]
        # Runs of consecutive elements sharing a word: (word, first, end).
        starts = np.flatnonzero(np.r_[True, word[1:] != word[:-1]])
        ends = np.r_[starts[1:], self.size]
        self.runs = [(int(word[a]), int(a), int(b)) for a, b in zip(starts, ends, strict=True)]
        # Elements whose high bits cross into the next word: (row, word + 1, right shift).
        self.spills = [(int(i), int(word[i]) + 1, np.uint64(64 - int(shift[i])))
                       for i in np.flatnonzero(shift + width > 64)]

    def add(self, lo, hi, words, shifted, part):
        """OR the group's payloads ``lo:hi`` into ``words`` ([64-bit word, payload])."""
        v = self.values[lo:hi].reshape(hi - lo, self.size)
        _check(self.desc, v)
        # Masked to the width (two's complement for signed values), element-major.
        np.bitwise_and(v.T, self.mask, out=shifted.view(np.int64), casting="unsafe")
        for row, word, right in self.spills:     # the high part, before the shift drops it
            np.right_shift(shifted[row], right, out=part)
            np.bitwise_or(words[word], part, out=words[word])
        np.left_shift(shifted, self.shifts, out=shifted)     # bits past 64 drop off
        for word, a, b in self.runs:
            if b - a == 1:
                np.bitwise_or(words[word], shifted[a], out=words[word])
            else:
                np.bitwise_or(words[word], np.bitwise_or.reduce(shifted[a:b], axis=0),
                              out=words[word])


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

