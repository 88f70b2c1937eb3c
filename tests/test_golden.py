"""Golden models against independent oracles: plain Python loops and brute-force top-k."""

import itertools
import re

import numpy as np
import pytest

from sparsegen.sim.golden import dbb, gemm
from sparsegen.sim.golden.numeric import TensorError, check_tensor, wrap

# -- oracles, written as plainly as possible -------------------------------------------------


def oracle_wrap(value: int, width: int) -> int:
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def oracle_gemm(a, w, acc_width):
    m, k = len(a), len(a[0])
    n = len(w[0])
    out = [[0] * n for _ in range(m)]
    for i in range(m):
        for j in range(n):
            acc = 0
            for x in range(k):
                acc = oracle_wrap(acc + int(a[i][x]) * int(w[x][j]), acc_width)
            out[i][j] = acc
    return out


def oracle_topk(block, nnz):
    """Brute force: among all subsets of the non-zeros of size min(nnz, count), the one whose
    magnitudes sorted descending are largest, ties broken towards lower indices."""
    nonzero = [i for i, v in enumerate(block) if v != 0]
    size = min(nnz, len(nonzero))
    best, best_key = (), None
    for subset in itertools.combinations(nonzero, size):
        mags = sorted((abs(int(block[i])) for i in subset), reverse=True)
        # Larger magnitudes first; on equal magnitudes prefer the subset with lower indices.
        key = (mags, [-i for i in sorted(subset)])
        if best_key is None or key > best_key:
            best, best_key = subset, key
    return set(best)


def oracle_prune(a, bz, nnz):
    out = np.zeros_like(a)
    for row in range(a.shape[0]):
        for start in range(0, a.shape[1], bz):
            block = list(a[row, start:start + bz])
            for i in oracle_topk(block, nnz):
                out[row, start + i] = block[i]
    return out


def random_tensor(rng, shape, width, density):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    x = rng.integers(lo, hi + 1, size=shape)
    x = np.where(rng.random(shape) < 0.1, lo, x)
    return np.where(rng.random(shape) < density, x, 0).astype(np.int64)


# -- numeric ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 7, 8, 12, 32, 63, 64])
def test_wrap_matches_oracle(width):
    rng = np.random.default_rng(width)
    values = rng.integers(-(1 << 62), 1 << 62, size=200, dtype=np.int64)
    expected = [oracle_wrap(int(v), width) for v in values]
    assert wrap(values, width).tolist() == expected


def test_check_tensor_accepts_integer_dtypes():
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint8):
        x = np.array([[0, 1], [2, 3]], dtype=dtype)
        assert check_tensor(x, 8, "A").dtype == np.int64
    assert check_tensor(np.array([-128, 127], dtype=np.int16), 8, "A").tolist() == [-128, 127]


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 2), dtype=np.float32), "tensor `A`: dtype float32 is not an integer dtype"),
    (np.zeros((2, 2), dtype=bool), "tensor `A`: dtype bool is not an integer dtype"),
    (np.array([[0, 1], [300, 4]], dtype=np.int16),
     "tensor `A`: value 300 at index (1, 0) does not fit signed 8-bit (-128..127)"),
    (np.array([[0, -129]]), "tensor `A`: value -129 at index (0, 1) does not fit signed 8-bit "
                            "(-128..127)"),
    (np.array([[200]], dtype=np.uint8),
     "tensor `A`: value 200 at index (0, 0) does not fit signed 8-bit (-128..127)"),
    (np.zeros((2, 2, 2), dtype=np.int8), "tensor `A`: expected 2 dimensions, got 3 "
                                         "(shape (2, 2, 2))"),
])
def test_check_tensor_rejects(x, message):
    with pytest.raises(TensorError, match=f"^{re.escape(message)}$"):
        check_tensor(x, 8, "A", ndim=2)


# -- GEMM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("data_width, acc_width", [(4, 8), (8, 12), (8, 16), (8, 32),
                                                   (16, 24), (16, 64)])
def test_gemm_matches_loop_oracle(data_width, acc_width):
    rng = np.random.default_rng(data_width * 100 + acc_width)
    a = random_tensor(rng, (5, 23), data_width, 0.7)
    w = random_tensor(rng, (23, 4), data_width, 0.7)
    assert gemm.gemm(a, w, acc_width).tolist() == oracle_gemm(a, w, acc_width)


def test_gemm_extremes_wrap():
    lo = -128
    a = np.full((2, 64), lo)
    w = np.full((64, 3), lo)
    # 64 * 2^14 = 2^20: wraps to 0 in 16 bits and 20 bits, not in 21 bits or more.
    assert (gemm.gemm(a, w, 16) == 0).all() and (gemm.gemm(a, w, 20) == 0).all()
    assert (gemm.gemm(a, w, 21) == -(1 << 20)).all()
    assert (gemm.gemm(a, w, 32) == a @ w).all()


def test_pe_models_match_gemm():
    rng = np.random.default_rng(3)
    a = random_tensor(rng, (6, 8), 8, 0.6)
    w = random_tensor(rng, (6, 8), 8, 0.6)
    assert gemm.dot_blocks(a, w, 32) == int(np.sum(a * w))
    assert gemm.dot_blocks(a, w, 10) == oracle_wrap(int(np.sum(a * w)), 10)
    assert gemm.gated_lanes_dense(a, w) == sum(
        1 for x, y in zip(a.ravel(), w.ravel()) if x == 0 or y == 0)
    # dbb-pe on encoded weights equals the dense dot product of the decoded weights.
    wd = np.zeros((48, 1), dtype=np.int64)
    for b in range(6):
        keep = rng.choice(8, 3, replace=False)
        wd[b * 8 + keep, 0] = rng.integers(-128, 128, 3)
    enc = dbb.encode_weights(wd, 8, 3)
    values, indices = enc.values[:, 0], enc.indices[:, 0]
    assert gemm.dbb_dot(a, values, indices, 32) == int(a.ravel() @ wd[:, 0])
    gated = sum(1 for b in range(6) for j in range(3)
                if values[b, j] == 0 or a[b, indices[b, j]] == 0)
    assert gemm.gated_lanes_dbb(a, values, indices) == gated


def test_macs_nonzero_counts_pairs():
    rng = np.random.default_rng(4)
    a = random_tensor(rng, (4, 9), 8, 0.5)
    w = random_tensor(rng, (9, 3), 8, 0.5)
    count = sum(1 for i in range(4) for j in range(3) for k in range(9)
                if a[i, k] != 0 and w[k, j] != 0)
    assert gemm.macs_nonzero(a, w) == count


# -- weight DBB ------------------------------------------------------------------------------


@pytest.mark.parametrize("bz, nnz, k", [(4, 1, 8), (4, 2, 13), (8, 4, 37), (8, 8, 16),
                                        (16, 2, 40), (2, 1, 5)])
def test_weight_encode_decode_roundtrip(bz, nnz, k):
    rng = np.random.default_rng(bz * 1000 + nnz * 10 + k)
    w = np.zeros((k, 5), dtype=np.int64)
    for start in range(0, k, bz):
        for n in range(5):
            size = min(bz, k - start)
            keep = rng.choice(size, rng.integers(0, min(nnz, size) + 1), replace=False)
            w[start + keep, n] = random_tensor(rng, len(keep), 8, 1.0)
    enc = dbb.encode_weights(w, bz, nnz)
    assert enc.values.shape == (-(-k // bz), 5, nnz)
    assert (dbb.decode_weights(enc) == w).all()
    # Slots: non-zeros in ascending index order, then (0, 0).
    for b, n in itertools.product(range(enc.values.shape[0]), range(5)):
        block = w[b * bz:(b + 1) * bz, n]
        nz = [i for i in range(len(block)) if block[i] != 0]
        assert enc.indices[b, n, :len(nz)].tolist() == nz
        assert enc.values[b, n, :len(nz)].tolist() == [block[i] for i in nz]
        assert (enc.values[b, n, len(nz):] == 0).all() and (enc.indices[b, n, len(nz):] == 0).all()


def test_check_weights_matches_loop_and_names_first_block():
    rng = np.random.default_rng(11)
    for trial in range(50):
        w = random_tensor(rng, (20, 3), 8, rng.uniform(0.2, 0.8))
        ok = all(np.count_nonzero(w[s:s + 8, n]) <= 4 for s in range(0, 20, 8) for n in range(3))
        try:
            dbb.check_weights(w, 8, 4)
            assert ok, trial
        except dbb.DBBViolation:
            assert not ok, trial
    w = np.zeros((16, 4), dtype=np.int64)
    w[8:13, 3] = 1          # block 1 of column 3 has 5 non-zeros
    w[9:14, 2] = 1          # so does column 2: the first bad block is column 2
    with pytest.raises(dbb.DBBViolation, match=re.escape(
            "weight `W` breaks DBB(8, 4): block k=8..15 of column n=2 has 5 non-zeros "
            "(at most 4 allowed)")):
        dbb.encode_weights(w, 8, 4)


# -- activation DBB --------------------------------------------------------------------------


@pytest.mark.parametrize("bz, nnz", [(4, 1), (4, 2), (4, 4), (8, 1), (8, 3), (8, 8), (16, 5)])
def test_prune_matches_brute_force(bz, nnz):
    rng = np.random.default_rng(bz * 100 + nnz)
    a = random_tensor(rng, (30, 3 * bz + 3), 8, 0.7)          # K not a multiple of BZ
    # Blocks rich in ties: equal magnitudes of both signs, and the -128 vs 127 edge.
    a[:10] = rng.choice([-128, 127, -127, 127, 5, -5, 0, 0], size=(10, a.shape[1]))
    a[10] = 0                                                   # all-zero blocks
    assert (dbb.prune_activations(a, bz, nnz) == oracle_prune(a, bz, nnz)).all()


def test_prune_rules_by_hand():
    block = np.array([[3, -5, 5, 0, -128, 127, 0, 1]])
    assert dbb.prune_activations(block, 8, 2).tolist() == [[0, 0, 0, 0, -128, 127, 0, 0]]
    assert dbb.prune_activations(block, 8, 3).tolist() == [[0, -5, 0, 0, -128, 127, 0, 0]]
    # A block with fewer non-zeros than nnz keeps them all; zeros are never "kept".
    enc = dbb.encode_activations(np.array([[0, 0, 4, 0]]), 4, 3)
    assert enc.mask.tolist() == [[[False, False, True, False]]]
    assert enc.values.tolist() == [[[4, 0, 0]]]


def test_a_wrong_tie_rule_would_be_caught():
    """The oracle is strict enough to fail a model that breaks ties towards higher indices."""
    block = [5, -5, 5, 2]
    assert oracle_topk(block, 2) == {0, 1}
    wrong = sorted(range(4), key=lambda i: (-abs(block[i]), -i))[:2]
    assert set(wrong) != oracle_topk(block, 2)


@pytest.mark.parametrize("bz, nnz", [(4, 2), (8, 4), (8, 8), (16, 3)])
def test_activation_encode_decode(bz, nnz):
    rng = np.random.default_rng(bz + nnz)
    a = random_tensor(rng, (7, 2 * bz + 1), 8, 0.6)
    enc = dbb.encode_activations(a, bz, nnz)
    assert enc.mask.shape == (7, 3, bz) and enc.values.shape == (7, 3, nnz)
    assert (enc.mask.sum(axis=-1) <= nnz).all()
    assert (dbb.decode_activations(enc) == dbb.prune_activations(a, bz, nnz)).all()

