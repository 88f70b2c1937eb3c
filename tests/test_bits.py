"""``sim.tb.bits.pack_many`` (vectorised, straight into uint32 words) against the scalar
``pack`` on random nested layouts: signed and unsigned fields, fields straddling 32-bit word
boundaries, fields wider than 32 bits, struct padding, and each form an array level may take."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsegen.sim.tb.bits import (
    CHUNK_STEPS,
    bit_toggles,
    hex_to_words,
    pack,
    pack_many,
    packed_ints,
    word_count,
    words_to_hex,
)

INTS = st.builds(lambda width, signed: {"kind": "int", "width": width, "signed": signed},
                 st.integers(1, 64), st.booleans())


def _array(elem, length):
    return {"kind": "array", "width": elem["width"] * length, "length": length, "elem": elem}


def _struct(fields, gaps):
    out, offset = {}, 0
    for i, (shape, gap) in enumerate(zip(fields, gaps, strict=False)):
        offset += gap                      # padding bits between fields stay zero
        out[f"f{i}"] = {"offset": offset, "shape": shape}
        offset += shape["width"]
    return {"kind": "struct", "width": offset, "fields": out}


LAYOUTS = st.recursive(
    INTS,
    lambda inner: st.one_of(
        st.builds(_array, inner, st.integers(1, 4)),
        st.builds(_struct, st.lists(inner, min_size=1, max_size=4),
                  st.lists(st.integers(0, 7), min_size=4, max_size=4))),
    max_leaves=12)


def _leaf(rng, desc, shape):
    width, signed = desc["width"], desc["signed"]
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    hi = min(hi, (1 << 63) - 1)             # the leaves are int64 arrays
    # Extremes as often as the middle: they carry the sign bit and the top bit of the field.
    v = rng.integers(lo, hi, shape, dtype=np.int64, endpoint=True)
    pick = rng.integers(0, 4, shape)
    return np.where(pick == 0, lo, np.where(pick == 1, hi, v))


def _values(rng, desc, count):
    """Random payloads: (the nested value pack_many takes, the same as per-payload scalars)."""
    kind = desc["kind"]
    if kind == "int":
        v = _leaf(rng, desc, count)
        return v, [int(x) for x in v]
    if kind == "array":
        elem, length = desc["elem"], desc["length"]
        if elem["kind"] == "int" and rng.random() < 0.5:            # one [count, length] array
            v = _leaf(rng, elem, (count, length))
            return v, [[int(x) for x in row] for row in v]
        if (elem["kind"] == "struct" and rng.random() < 0.5
                and all(f["shape"]["kind"] == "int" for f in elem["fields"].values())):
            # An array of structs given as one [count, length] array per field.
            v = {name: _leaf(rng, f["shape"], (count, length))
                 for name, f in elem["fields"].items()}
            return v, [[{name: int(a[n, i]) for name, a in v.items()} for i in range(length)]
                       for n in range(count)]
        items = [_values(rng, elem, count) for _ in range(length)]
        return [v for v, _ in items], [[s[n] for _, s in items] for n in range(count)]
    items = {name: _values(rng, f["shape"], count) for name, f in desc["fields"].items()}
    return ({name: v for name, (v, _) in items.items()},
            [{name: s[n] for name, (_, s) in items.items()} for n in range(count)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desc=LAYOUTS, seed=st.integers(0, 2**32 - 1), count=st.integers(0, 7),
       chunk=st.sampled_from([1, 2, 3, CHUNK_STEPS]))
def test_pack_many_equals_scalar_pack(desc, seed, count, chunk):
    """``chunk``: payloads per pass; the small ones put chunk boundaries inside the run,
    including a last, shorter chunk."""
    rng = np.random.default_rng(seed)
    value, scalars = _values(rng, desc, count)
    words = pack_many(desc, value, count, chunk=chunk)
    assert words.dtype == np.uint32 and words.shape == (count, word_count(desc["width"]))
    expected = [pack(desc, s) for s in scalars]
    assert packed_ints(words) == expected
    # The text the cocotb player reads, and back.
    text = words_to_hex(words, desc["width"])
    digits = (desc["width"] + 3) // 4
    assert text == "".join(f"{v:0{digits}x}\n" for v in expected)
    assert np.array_equal(hex_to_words(text, desc["width"]), words)


def test_straddling_and_wide_fields():
    """Hand-checked words: a signed 40-bit field at bit 30 spans three words."""
    desc = _struct([{"kind": "int", "width": 30, "signed": False},
                    {"kind": "int", "width": 40, "signed": True},
                    {"kind": "int", "width": 64, "signed": True}], [0, 0, 0])
    value = {"f0": np.array([1, 0]), "f1": np.array([-1, 3]),
             "f2": np.array([-2, (1 << 63) - 1])}
    words = pack_many(desc, value, 2)
    # Payload 0: f0 = 1 at bit 0; f1 = 2^40 - 1 at bits 30..69; f2 = 2^64 - 2 at bits 70..133.
    want0 = 1 | (((1 << 40) - 1) << 30) | (((1 << 64) - 2) << 70)
    want1 = (3 << 30) | (((1 << 63) - 1) << 70)
    assert packed_ints(words) == [want0, want1]
    assert words[0].tolist() == [(want0 >> (32 * i)) & 0xFFFFFFFF for i in range(5)]


@pytest.mark.parametrize("bad, message", [(128, "a value does not fit 8-bit"),
                                          (-129, "a value does not fit 8-bit")])
def test_value_that_does_not_fit(bad, message):
    desc = _array({"kind": "int", "width": 8, "signed": True}, 2)
    with pytest.raises(ValueError, match=message):
        pack_many(desc, np.array([[0, bad]]), 1)            # checked at the array level
    with pytest.raises(ValueError, match=message):
        pack_many(desc, [np.array([0]), np.array([bad])], 1)  # checked at the leaf


def test_bit_toggles():
    desc = {"kind": "int", "width": 40, "signed": False}
    values = [0, (1 << 40) - 1, 1 << 35, 1 << 35, 5]
    words = pack_many(desc, np.array(values), len(values))
    want = sum(bin(a ^ b).count("1") for a, b in zip(values, values[1:], strict=False))
    assert bit_toggles(words) == want == 40 + 39 + 0 + 3
