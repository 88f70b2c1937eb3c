"""DBB golden formats against independent oracles: brute-force subset search and plain loops.

The activation oracle does not sort or rank: it enumerates every subset of a block's non-zeros
of the size the hardware keeps and picks the best by the rule as DESIGN.md states it (larger
magnitudes first, equal magnitudes to the lower index), with Python's exact ``abs``.
"""

import dataclasses
import itertools
import time

import numpy as np
import pytest

from sparsegen.sim.golden.dbb import (
    ActDBB,
    DBBViolation,
    WeightDBB,
    activation_slots,
    check_weights,
    decode_activations,
    decode_weights,
    encode_activations,
    encode_weights,
    prune_activations,
    requantize,
    select_mask,
    select_order,
)
from sparsegen.sim.golden.numeric import TensorError

from helpers import keep_largest

# -- oracles, written as plainly as possible --------------------------------------------------


def oracle_topk(block, nnz, *, lower_index_wins=True, magnitude=abs):
    """Kept positions of one block, best first, by exhaustive search over subsets.

    A subset's score lists its members' (magnitude, index preference) from best to worst;
    the kept subset has the lexicographically largest score. The keyword arguments exist only
    to build deliberately wrong rules that the tests show the oracle rejects.
    """
    block = [int(v) for v in block]
    nonzero = [i for i, v in enumerate(block) if v != 0]
    best = None
    for subset in itertools.combinations(nonzero, min(nnz, len(nonzero))):
        score = sorted(((magnitude(block[i]), -i if lower_index_wins else i) for i in subset),
                       reverse=True)
        if best is None or score > best:
            best = score
    return [-pref if lower_index_wins else pref for _, pref in best]


def oracle_prune(a, bz, nnz):
    """Prune every row of A[M, K] block by block with :func:`oracle_topk`."""
    a = np.asarray(a)
    out = [[0] * a.shape[1] for _ in range(a.shape[0])]
    for row in range(a.shape[0]):
        for start in range(0, a.shape[1], bz):
            block = a[row, start:start + bz].tolist()
            for i in oracle_topk(block, nnz):
                out[row][start + i] = block[i]
    return out


def oracle_dbb_ok(w, bz, nnz):
    """True iff every block of every column of W[K, N] has at most ``nnz`` non-zeros."""
    k, n = len(w), len(w[0])
    for start in range(0, k, bz):
        for col in range(n):
            if sum(1 for r in range(start, min(start + bz, k)) if w[r][col] != 0) > nnz:
                return False
    return True


def tie_rich(rng, shape, width):
    """Values drawn from a small palette: equal magnitudes of both signs, both extremes, zeros."""
    lo, hi = -2 ** (width - 1), 2 ** (width - 1) - 1
    v = int(rng.integers(1, hi + 1))
    palette = [lo, hi, -hi, v, -v, v, 1, -1, 0, 0, 0]
    return rng.choice(np.array(palette, dtype=np.int64), size=shape)


def random_values(rng, shape, width, density):
    lo, hi = -2 ** (width - 1), 2 ** (width - 1) - 1
    x = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    x = np.where(rng.random(shape) < 0.1, lo, x)
    return np.where(rng.random(shape) < density, x, 0)


def random_dbb_weights(rng, k, n, bz, nnz, width=8):
    """W[K, N] whose every block has between 0 and ``nnz`` non-zeros, at random positions."""
    w = np.zeros((k, n), dtype=np.int64)
    for start in range(0, k, bz):
        size = min(bz, k - start)
        for col in range(n):
            keep = rng.choice(size, int(rng.integers(0, min(nnz, size) + 1)), replace=False)
            values = rng.integers(1, 2 ** (width - 1), size=len(keep), endpoint=True)
            w[start + keep, col] = values * rng.choice([-1, 1], size=len(keep))
    return w


# -- activation DBB against the brute-force oracle --------------------------------------------


@pytest.mark.parametrize("bz, nnz", [(1, 1), (2, 1), (2, 2), (4, 1), (4, 2), (4, 3), (4, 4),
                                     (8, 1), (8, 2), (8, 3), (8, 4), (8, 8), (16, 3), (16, 5)])
@pytest.mark.parametrize("width", [4, 8, 16])
def test_prune_matches_brute_force(bz, nnz, width):
    rng = np.random.default_rng(10_000 * width + 100 * bz + nnz)
    rows = 3 if bz == 16 else 8
    k = 3 * bz + (bz // 2 + 1 if bz > 1 else 0)        # K not a multiple of BZ (unless BZ=1)
    a = random_values(rng, (rows * 3, k), width, 0.7)
    a[:rows] = tie_rich(rng, (rows, k), width)          # many equal magnitudes of both signs
    a[rows] = 0                                         # all-zero blocks
    a[rows + 1] = random_values(rng, k, width, 0.15)    # blocks with fewer non-zeros than nnz
    got = prune_activations(a, bz, nnz)
    assert got.dtype == np.int64 and got.shape == a.shape
    assert got.tolist() == oracle_prune(a, bz, nnz)


def test_prune_64_bit_extremes():
    """|-2^63| must beat 2^63 - 1 although int64 cannot represent 2^63."""
    lo, hi = -2 ** 63, 2 ** 63 - 1
    a = np.array([[hi, lo, hi, -hi, 0, lo, 1, -1],
                  [hi, -hi, hi, -hi, 3, -3, lo + 1, 0]], dtype=np.int64)
    for nnz in range(1, 9):
        assert prune_activations(a, 8, nnz).tolist() == oracle_prune(a, 8, nnz), nnz
    assert prune_activations(a, 8, 1).tolist() == [[0, lo, 0, 0, 0, 0, 0, 0],
                                                    [hi, 0, 0, 0, 0, 0, 0, 0]]


def test_select_order_and_mask_match_brute_force():
    rng = np.random.default_rng(21)
    for trial in range(300):
        bz = int(rng.choice([1, 2, 4, 8]))
        nnz = int(rng.integers(1, bz + 1))
        block = tie_rich(rng, bz, 8) if trial % 2 else random_values(rng, bz, 8, 0.6)
        expected = oracle_topk(block, nnz)
        order = select_order(block, nnz)
        assert order.dtype == np.int64 and order.tolist() == expected, (block, nnz)
        mask = select_mask(block[None, :], nnz)
        assert np.flatnonzero(mask[0]).tolist() == sorted(expected), (block, nnz)


def test_prune_rules_by_hand():
    block = np.array([3, -5, 5, 0, -128, 127, 0, 1])
    assert prune_activations(block, 8, 1).tolist() == [0, 0, 0, 0, -128, 0, 0, 0]
    assert prune_activations(block, 8, 2).tolist() == [0, 0, 0, 0, -128, 127, 0, 0]
    assert prune_activations(block, 8, 3).tolist() == [0, -5, 0, 0, -128, 127, 0, 0]
    assert select_order(block, 4).tolist() == [4, 5, 1, 2]
    # Equal magnitudes of both signs: the lower indices win, whatever the sign.
    ties = np.array([-7, 7, -7, 7, 7, -7, 7, -7])
    assert prune_activations(ties, 8, 3).tolist() == [-7, 7, -7, 0, 0, 0, 0, 0]
    # A block with fewer non-zeros than nnz keeps them all; zeros are never "kept".
    enc = encode_activations(np.array([0, 0, 4, 0]), 4, 3)
    assert enc.mask.tolist() == [[False, False, True, False]]
    assert enc.values.tolist() == [[4, 0, 0]]
    assert select_order(np.array([0, 0, 4, 0]), 3).tolist() == [2]
    assert prune_activations(np.zeros(8, dtype=np.int8), 8, 2).tolist() == [0] * 8


def test_prune_narrow_dtypes_use_exact_magnitudes():
    # |int8(-128)| overflows in int8; the model must rank magnitudes in int64.
    a = np.array([[127, -128, 1, -127]], dtype=np.int8)
    assert prune_activations(a, 4, 1).tolist() == [[0, -128, 0, 0]]
    assert prune_activations(a, 4, 2).tolist() == [[127, -128, 0, 0]]
    u = np.array([200, 3, 255, 0], dtype=np.uint8)      # unsigned input: all positive
    assert prune_activations(u, 4, 1).tolist() == [0, 0, 255, 0]


def test_prune_nnz_equal_block_size_is_identity():
    rng = np.random.default_rng(3)
    a = random_values(rng, (5, 37), 8, 0.7)
    for bz in (1, 2, 4, 8, 16):
        assert prune_activations(a, bz, bz).tolist() == a.tolist()


def test_prune_1d_equals_each_row_of_2d():
    rng = np.random.default_rng(4)
    a = tie_rich(rng, (6, 29), 8)
    rows = [prune_activations(row, 8, 3).tolist() for row in a]
    assert prune_activations(a, 8, 3).tolist() == rows


def test_padding_never_changes_what_is_kept():
    rng = np.random.default_rng(5)
    a = random_values(rng, (4, 21), 8, 0.9)
    padded = np.pad(a, ((0, 0), (0, 3)))
    assert prune_activations(a, 8, 3).tolist() == prune_activations(padded, 8, 3)[:, :21].tolist()


# -- deliberately wrong rules: the oracle and the tests can fail ------------------------------


def test_a_wrong_tie_rule_would_be_caught():
    block = [5, -5, 5, 2, 0, -5, 1, 0]
    assert oracle_topk(block, 2) == [0, 1]
    wrong = oracle_topk(block, 2, lower_index_wins=False)
    assert wrong == [5, 2]
    assert select_order(np.array(block), 2).tolist() != wrong
    assert oracle_prune([block], 8, 2) != [[5, 0, 5, 0, 0, -5, 0, 0]]


def test_a_signed_instead_of_magnitude_rule_would_be_caught():
    block = [127, -128, 3, 0]
    assert oracle_topk(block, 1) == [1]
    wrong = oracle_topk(block, 1, magnitude=lambda v: v)
    assert wrong == [0]
    assert prune_activations(np.array(block), 4, 1).tolist() == [0, -128, 0, 0]


def test_the_oracle_rejects_a_wrong_prune():
    """A plausible but wrong model (stable sort on -a, i.e. signed) fails the same comparison."""
    rng = np.random.default_rng(6)
    a = tie_rich(rng, (8, 24), 8)

    def wrong_prune(x, bz, nnz):
        out = np.zeros_like(x)
        for row in range(x.shape[0]):
            for start in range(0, x.shape[1], bz):
                block = x[row, start:start + bz]
                keep = np.argsort(-block, kind="stable")[:nnz]
                keep = keep[block[keep] != 0]
                out[row, start + keep] = block[keep]
        return out

    assert wrong_prune(a, 8, 3).tolist() != oracle_prune(a, 8, 3)
    assert prune_activations(a, 8, 3).tolist() == oracle_prune(a, 8, 3)


# -- activation encode / decode ---------------------------------------------------------------


@pytest.mark.parametrize("bz, nnz", [(1, 1), (4, 2), (4, 4), (8, 1), (8, 4), (8, 8), (16, 3)])
def test_encode_activations_matches_oracle(bz, nnz):
    rng = np.random.default_rng(100 * bz + nnz)
    k = 2 * bz + 1
    a = random_values(rng, (7, k), 8, 0.6)
    a[:3] = tie_rich(rng, (3, k), 8)
    enc = encode_activations(a, bz, nnz)
    kb = -(-k // bz)
    assert isinstance(enc, ActDBB)
    assert (enc.block_size, enc.nnz, enc.k) == (bz, nnz, k)
    assert enc.mask.dtype == bool and enc.mask.shape == (7, kb, bz)
    assert enc.values.dtype == np.int64 and enc.values.shape == (7, kb, nnz)
    padded = np.pad(a, ((0, 0), (0, kb * bz - k)))
    for row, b in itertools.product(range(7), range(kb)):
        block = padded[row, b * bz:(b + 1) * bz].tolist()
        kept = sorted(oracle_topk(block, nnz))
        assert np.flatnonzero(enc.mask[row, b]).tolist() == kept
        assert enc.values[row, b].tolist() == [block[i] for i in kept] + [0] * (nnz - len(kept))
    decoded = decode_activations(enc)
    assert decoded.dtype == np.int64 and decoded.shape == a.shape
    assert decoded.tolist() == oracle_prune(a, bz, nnz)


def test_encode_activations_1d():
    enc = encode_activations(np.array([0, 9, -9, 2, 0, 0, 0, 0, 5]), 4, 2)
    assert enc.mask.shape == (3, 4) and enc.values.shape == (3, 2) and enc.k == 9
    assert enc.values.tolist() == [[9, -9], [0, 0], [5, 0]]
    assert decode_activations(enc).tolist() == [0, 9, -9, 0, 0, 0, 0, 0, 5]


def test_decode_activations_rejects_inconsistent_forms():
    enc = encode_activations(np.array([[1, 2, 3, 4]]), 4, 2)
    with pytest.raises(ValueError, match="more than 2 bits"):
        decode_activations(dataclasses.replace(enc, mask=np.ones((1, 1, 4), dtype=bool)))
    with pytest.raises(ValueError, match="do not fit DBB"):
        decode_activations(dataclasses.replace(enc, values=np.zeros((1, 1, 3), dtype=np.int64)))


def test_activation_models_are_fast():
    rng = np.random.default_rng(8)
    a = rng.integers(-128, 128, size=(64, 4096), dtype=np.int64)
    start = time.perf_counter()
    pruned = prune_activations(a, 8, 4)
    enc = encode_activations(a, 8, 4)
    decoded = decode_activations(enc)
    elapsed = time.perf_counter() - start
    assert (decoded == pruned).all()
    assert elapsed < 1.0, f"prune + encode + decode of 64x4096 took {elapsed:.2f} s"


# -- weight DBB -------------------------------------------------------------------------------


def test_check_weights_accepts_exactly_the_bounded_tensors():
    rng = np.random.default_rng(11)
    verdicts = set()
    for trial in range(200):
        bz = int(rng.choice([2, 4, 8]))
        nnz = int(rng.integers(1, bz + 1))
        k, n = int(rng.integers(1, 3 * bz + 2)), int(rng.integers(1, 5))
        # Densities around nnz/bz make both verdicts common.
        w = random_values(rng, (k, n), 8, min(1.0, nnz / bz + rng.uniform(-0.2, 0.3)))
        ok = oracle_dbb_ok(w.tolist(), bz, nnz)
        verdicts.add(ok)
        try:
            check_weights(w, bz, nnz)
            accepted = True
        except DBBViolation:
            accepted = False
        assert accepted == ok, (trial, bz, nnz, w.tolist())
    assert verdicts == {True, False}


def test_check_weights_names_the_first_bad_block():
    w = np.zeros((24, 5), dtype=np.int8)
    w[16:21, 0] = 1         # block 2, column 0: later k-block, so not first
    w[8:14, 3] = -1         # block 1, column 3: 6 non-zeros
    w[9:14, 1] = 2          # block 1, column 1: 5 non-zeros -> the first bad block
    w[0:4, 4] = 3           # block 0, column 4: 4 non-zeros, allowed
    with pytest.raises(DBBViolation) as info:
        check_weights(w, 8, 4)
    assert str(info.value) == ("weight `W` breaks DBB(8, 4): block k=8..15 of column n=1 has "
                               "5 non-zeros (at most 4 allowed)")
    w[9:14, 1] = 0
    with pytest.raises(DBBViolation) as info:
        encode_weights(w, 8, 4, name="conv1.weight")
    assert str(info.value) == ("weight `conv1.weight` breaks DBB(8, 4): block k=8..15 of "
                               "column n=3 has 6 non-zeros (at most 4 allowed)")


def test_check_weights_names_a_partial_last_block_by_its_real_range():
    w = np.zeros((20, 2), dtype=np.int64)
    w[16:20, 1] = 7
    with pytest.raises(DBBViolation) as info:
        check_weights(w, 8, 2)
    assert str(info.value) == ("weight `W` breaks DBB(8, 2): block k=16..19 of column n=1 has "
                               "4 non-zeros (at most 2 allowed)")


@pytest.mark.parametrize("bz, nnz, k", [(1, 1, 3), (2, 1, 5), (4, 1, 8), (4, 2, 13),
                                        (8, 4, 37), (8, 8, 16), (16, 2, 40), (16, 16, 7)])
def test_weight_encode_matches_oracle_and_round_trips(bz, nnz, k):
    rng = np.random.default_rng(bz * 1000 + nnz * 10 + k)
    w = random_dbb_weights(rng, k, 5, bz, nnz)
    w[0, 0] = -128                          # a real value at index 0 of its block
    w[1:min(bz, k), 0] = 0                  # ... alone in it, so unused (0, 0) slots follow
    enc = encode_weights(w.astype(np.int8), bz, nnz)
    kb = -(-k // bz)
    assert isinstance(enc, WeightDBB)
    assert (enc.block_size, enc.nnz, enc.k) == (bz, nnz, k)
    assert enc.values.dtype == np.int64 and enc.values.shape == (kb, 5, nnz)
    assert enc.indices.dtype == np.int64 and enc.indices.shape == (kb, 5, nnz)
    for b, col in itertools.product(range(kb), range(5)):
        block = [int(w[r, col]) if r < k else 0 for r in range(b * bz, (b + 1) * bz)]
        nz = [i for i, v in enumerate(block) if v != 0]
        pad = [0] * (nnz - len(nz))
        assert enc.indices[b, col].tolist() == nz + pad
        assert enc.values[b, col].tolist() == [block[i] for i in nz] + pad
    decoded = decode_weights(enc)
    assert decoded.dtype == np.int64 and decoded.shape == (k, 5)
    assert decoded.tolist() == w.tolist()


def test_decode_weights_rejects_bad_indices():
    enc = encode_weights(np.array([[1], [0], [2], [0]]), 4, 2)
    bad = dataclasses.replace(enc, indices=np.array([[[0, 4]]]))
    with pytest.raises(ValueError, match="outside the block"):
        decode_weights(bad)


def test_formats_are_frozen():
    enc = encode_weights(np.array([[1], [0]]), 2, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        enc.nnz = 2
    act = encode_activations(np.array([1, 0]), 2, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        act.k = 3


# -- parameter and tensor validation ----------------------------------------------------------


@pytest.mark.parametrize("bz, nnz, error, message", [
    (8, 0, ValueError, "`nnz` must be between 1 and `block_size` (8), not 0"),
    (8, 9, ValueError, "`nnz` must be between 1 and `block_size` (8), not 9"),
    (0, 1, ValueError, "`block_size` must be at least 1, not 0"),
    (8, 2.0, TypeError, "`nnz` must be an integer, not 2.0"),
])
def test_parameters_are_validated(bz, nnz, error, message):
    w = np.zeros((8, 1), dtype=np.int64)
    for call in (lambda: check_weights(w, bz, nnz), lambda: encode_weights(w, bz, nnz),
                 lambda: prune_activations(w.T, bz, nnz),
                 lambda: encode_activations(w.T, bz, nnz)):
        with pytest.raises(error) as info:
            call()
        assert str(info.value) == message


def test_tensors_are_validated():
    with pytest.raises(TensorError) as info:
        check_weights(np.zeros((2, 2, 2), dtype=np.int8), 8, 4)
    assert str(info.value) == "tensor `W`: expected 2 dimensions, got 3 (shape (2, 2, 2))"
    with pytest.raises(TensorError) as info:
        encode_weights(np.zeros((8, 2)), 8, 4, name="W1")
    assert str(info.value) == "tensor `W1`: dtype float64 is not an integer dtype"
    with pytest.raises(TensorError) as info:
        prune_activations(np.zeros(8, dtype=np.float32), 8, 4)
    assert str(info.value) == "tensor `A`: dtype float32 is not an integer dtype"


# -- the output DAP's format: requantization and (value, index) slots ------------------------


def test_requantize_matches_a_loop():
    """ReLU, >> shift, saturation, against a per-element loop (Python ints, floor division)."""
    rng = np.random.default_rng(7)
    o = rng.integers(-(1 << 31), 1 << 31, 500)
    o[:6] = [0, -1, 1, 127 << 8, 128 << 8, (1 << 31) - 1]
    for shift, width in [(0, 8), (8, 8), (5, 4), (31, 16)]:
        top = (1 << (width - 1)) - 1
        expected = [min(max(int(x), 0) // (1 << shift), top) for x in o]
        assert requantize(o, shift, width).tolist() == expected
    assert requantize([127 << 8, 128 << 8, -5], 8, 8).tolist() == [127, 127, 0]


@pytest.mark.parametrize("bz, nnz", [(4, 2), (8, 3), (8, 8)])
def test_activation_slots_match_the_oracle(bz, nnz):
    """Slots hold the oracle's kept values in ascending index order, then (0, 0)."""
    rng = np.random.default_rng(bz * nnz)
    a = tie_rich(rng, (9, 3 * bz + 1), 8)
    mask, values, indices = activation_slots(a, bz, nnz)
    kept = np.pad(keep_largest(a, bz, nnz), ((0, 0), (0, (-a.shape[1]) % bz)))
    for i in range(a.shape[0]):
        for b in range(kept.shape[1] // bz):
            block = kept[i, b * bz:(b + 1) * bz]
            where = [j for j in range(bz) if block[j] != 0]
            assert mask[i, b].tolist() == [block[j] != 0 for j in range(bz)]
            assert values[i, b].tolist() == [int(block[j]) for j in where] + \
                [0] * (nnz - len(where))
            assert indices[i, b].tolist() == where + [0] * (nnz - len(where))
