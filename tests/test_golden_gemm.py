"""Golden numeric and GEMM/PE models against independent oracles written in plain Python ints.

The oracles never touch numpy arithmetic: they wrap with Python's arbitrary-precision ``%`` and
accumulate one product at a time, as the hardware does, so an int64 overflow or a wrong wrap in
the golden model cannot hide behind the same mistake in its check.
"""

import re

import numpy as np
import pytest

from sparsegen.sim.golden import dbb
from sparsegen.sim.golden.gemm import (
    dbb_dot,
    dot_blocks,
    gated_lanes_dbb,
    gated_lanes_dense,
    gemm,
    macs_nonzero,
)
from sparsegen.sim.golden.numeric import TensorError, check_tensor, pad_to_multiple, wrap

# -- oracles, written as plainly as possible --------------------------------------------------


def oracle_wrap(value: int, width: int) -> int:
    """Signed ``width``-bit two's complement of a Python int, by modular arithmetic."""
    value = int(value) % 2 ** width
    return value - 2 ** width if value >= 2 ** (width - 1) else value


def oracle_gemm(a, w, acc_width: int) -> list[list[int]]:
    """Triple loop; the accumulator wraps after every multiply-accumulate like the hardware."""
    m, k, n = len(a), len(w), len(w[0])
    out = []
    for i in range(m):
        row = []
        for j in range(n):
            acc = 0
            for x in range(k):
                acc = oracle_wrap(acc + oracle_wrap(int(a[i][x]) * int(w[x][j]), acc_width),
                                  acc_width)
            row.append(acc)
        out.append(row)
    return out


def random_tensor(rng, shape, width: int, density: float) -> np.ndarray:
    """Signed ``width``-bit values, a share of them the extremes, the rest zero at 1-density."""
    lo, hi = -2 ** (width - 1), 2 ** (width - 1) - 1
    x = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    pick = rng.random(shape)
    x = np.where(pick < 0.1, lo, np.where(pick < 0.15, hi, x))
    return np.where(rng.random(shape) < density, x, 0)


# -- wrap -------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 4, 7, 8, 12, 16, 31, 32, 33, 63, 64])
def test_wrap_matches_oracle(width):
    rng = np.random.default_rng(width)
    values = rng.integers(-2 ** 63, 2 ** 63, size=300, dtype=np.int64)
    values[:6] = [-2 ** 63, 2 ** 63 - 1, -1, 0, 1, -2 ** (width - 1)]
    got = wrap(values, width)
    assert got.dtype == np.int64 and got.shape == values.shape
    assert got.tolist() == [oracle_wrap(v, width) for v in values.tolist()]


def test_wrap_scalars_other_dtypes_and_big_ints():
    assert wrap(300, 8).tolist() == 44 and wrap(300, 8).dtype == np.int64
    assert wrap(-129, 8).tolist() == 127
    assert wrap(np.array([255, 128], dtype=np.uint8), 8).tolist() == [-1, -128]
    assert wrap(np.array([2 ** 64 - 1], dtype=np.uint64), 64).tolist() == [-1]
    assert wrap(np.array([[-3]], dtype=np.int8), 2).tolist() == [[1]]
    # Python ints beyond int64 (an exact sum computed elsewhere) reduce exactly too.
    assert wrap(2 ** 70 + 5, 8).tolist() == 5
    assert wrap(np.array([2 ** 100 - 1, -2 ** 90], dtype=object), 64).tolist() == [-1, 0]
    # The input is not modified.
    x = np.array([200, -200])
    wrap(x, 8)
    assert x.tolist() == [200, -200]


@pytest.mark.parametrize("width, error", [(0, ValueError), (65, ValueError),
                                          (8.0, TypeError), (True, TypeError)])
def test_wrap_rejects_widths(width, error):
    with pytest.raises(error):
        wrap(np.array([1]), width)


def test_wrap_rejects_floats():
    with pytest.raises(TypeError):
        wrap(np.array([1.5]), 8)


# -- check_tensor -----------------------------------------------------------------------------


def offenders_at(entries) -> np.ndarray:
    """A 6x5 int16 tensor of zeros with the given (row, column, value) entries."""
    x = np.zeros((6, 5), dtype=np.int16)
    for row, col, value in entries:
        x[row, col] = value
    return x


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64,
                                   np.uint8, np.uint16, np.uint32, np.uint64])
def test_check_tensor_accepts_integer_dtypes_in_range(dtype):
    x = np.array([[0, 1, 127], [2, 3, 100]], dtype=dtype)
    got = check_tensor(x, 8, "A", ndim=2)
    assert got.dtype == np.int64 and got.tolist() == x.tolist()
    assert got is not x


def test_check_tensor_bounds_are_inclusive():
    assert check_tensor(np.array([-128, 127], dtype=np.int16), 8, "A").tolist() == [-128, 127]
    assert check_tensor(np.array([-8, 7]), 4, "A").tolist() == [-8, 7]
    assert check_tensor(np.array([-2 ** 15, 2 ** 15 - 1], dtype=np.int32), 16, "A").tolist() \
        == [-2 ** 15, 2 ** 15 - 1]
    assert check_tensor(np.array([-2 ** 63, 2 ** 63 - 1]), 64, "A").tolist() \
        == [-2 ** 63, 2 ** 63 - 1]
    assert check_tensor([[1, -2]], 8, "A", ndim=2).tolist() == [[1, -2]]     # a nested list


@pytest.mark.parametrize("x, width, ndim, message", [
    (np.zeros((2, 2), dtype=np.float32), 8, 2,
     "tensor `A`: dtype float32 is not an integer dtype"),
    (np.zeros((2, 2)), 8, None, "tensor `A`: dtype float64 is not an integer dtype"),
    (np.zeros((2, 2), dtype=bool), 8, 2, "tensor `A`: dtype bool is not an integer dtype"),
    (np.array([1, None]), 8, None, "tensor `A`: dtype object is not an integer dtype"),
    (np.zeros((2, 2, 2), dtype=np.int8), 8, 2,
     "tensor `A`: expected 2 dimensions, got 3 (shape (2, 2, 2))"),
    # The first offender in C order is named: (3, 4), not (4, 0) or (5, 1).
    (offenders_at([(3, 4, 300), (4, 0, -500), (5, 1, 900)]), 8, 2,
     "tensor `A`: value 300 at index (3, 4) does not fit signed 8-bit (-128..127)"),
    (np.array([[0, -129]]), 8, 2,
     "tensor `A`: value -129 at index (0, 1) does not fit signed 8-bit (-128..127)"),
    (np.array([200], dtype=np.uint8), 8, None,
     "tensor `A`: value 200 at index (0,) does not fit signed 8-bit (-128..127)"),
    (np.array([0, 2 ** 64 - 1], dtype=np.uint64), 64, None,
     "tensor `A`: value 18446744073709551615 at index (1,) does not fit signed 64-bit "
     "(-9223372036854775808..9223372036854775807)"),
    (np.array([-9, 7]), 4, None, "tensor `A`: value -9 at index (0,) does not fit signed 4-bit "
                                 "(-8..7)"),
    (np.array([[40000]], dtype=np.int32), 16, 2,
     "tensor `A`: value 40000 at index (0, 0) does not fit signed 16-bit (-32768..32767)"),
])
def test_check_tensor_rejects_with_exact_message(x, width, ndim, message):
    with pytest.raises(TensorError) as info:
        check_tensor(x, width, "A", ndim=ndim)
    assert str(info.value) == message


def test_tensor_error_is_a_value_error():
    # The CLI turns every ValueError into one clear line; TensorError must be one of them.
    assert issubclass(TensorError, ValueError)


# -- pad_to_multiple --------------------------------------------------------------------------


def test_pad_to_multiple():
    x = np.arange(1, 7, dtype=np.int8).reshape(2, 3)
    assert pad_to_multiple(x, 4, axis=1).tolist() == [[1, 2, 3, 0], [4, 5, 6, 0]]
    assert pad_to_multiple(x, 4, axis=-1).dtype == np.int8
    assert pad_to_multiple(x, 3, axis=0).tolist() == [[1, 2, 3], [4, 5, 6], [0, 0, 0]]
    assert pad_to_multiple(x, 3, axis=1) is x                # already a multiple
    assert pad_to_multiple(x, 1, axis=0).shape == (2, 3)
    assert pad_to_multiple(np.zeros((0, 2)), 8, axis=0).shape == (0, 2)
    with pytest.raises(ValueError):
        pad_to_multiple(x, 0, axis=0)


# -- gemm -------------------------------------------------------------------------------------


@pytest.mark.parametrize("data_width, acc_width", [
    (4, 8), (4, 12), (8, 8), (8, 12), (8, 16), (8, 32), (16, 16), (16, 24), (16, 32),
    (32, 64), (64, 64), (64, 40),
])
def test_gemm_matches_loop_oracle(data_width, acc_width):
    rng = np.random.default_rng(data_width * 100 + acc_width)
    a = random_tensor(rng, (5, 19), data_width, 0.8)
    w = random_tensor(rng, (19, 4), data_width, 0.8)
    got = gemm(a, w, acc_width)
    assert got.dtype == np.int64 and got.shape == (5, 4)
    assert got.tolist() == oracle_gemm(a.tolist(), w.tolist(), acc_width)


@pytest.mark.parametrize("data_width", [4, 8, 16])
@pytest.mark.parametrize("acc_width", [8, 12, 16, 32])
def test_gemm_matches_int64_matmul_then_wrap(data_width, acc_width):
    """Second oracle at a larger size: numpy's int64 matmul cannot overflow here, then wrap."""
    rng = np.random.default_rng(1000 + data_width * 10 + acc_width)
    a = random_tensor(rng, (24, 200), data_width, 0.6)
    w = random_tensor(rng, (200, 16), data_width, 0.6)
    exact = a @ w
    expected = [[oracle_wrap(v, acc_width) for v in row] for row in exact.tolist()]
    assert gemm(a, w, acc_width).tolist() == expected


@pytest.mark.parametrize("data_width", [4, 8, 16])
def test_gemm_extreme_values_wrap_where_expected(data_width):
    lo = -2 ** (data_width - 1)
    k = 64
    a = np.full((2, k), lo)
    w = np.full((k, 3), lo)
    exact = k * lo * lo                     # 2^(2*data_width - 2 + 6)
    bits = exact.bit_length()               # exact = 2^(bits-1)
    # Wide enough for +2^(bits-1): exact; one bit narrower it is the most negative value;
    # narrower still, the multiple of 2^(bits-1) is 0 modulo 2^width.
    assert (gemm(a, w, bits + 1) == exact).all()
    assert (gemm(a, w, bits) == -exact).all()
    assert (gemm(a, w, bits - 1) == 0).all()
    # lo * hi alternating signs: checks the sign handling of a mixed product.
    hi = -lo - 1
    assert gemm(np.array([[lo, hi]]), np.array([[hi], [lo]]), 64).tolist() == [[2 * lo * hi]]


def test_gemm_beyond_int64_is_exact_modulo_acc_width():
    """Operands whose exact products overflow int64: the model must still be exact."""
    a = np.array([[-2 ** 63, 2 ** 63 - 1, -2 ** 63 + 1, 12345]])
    w = np.array([[-2 ** 63], [2 ** 63 - 1], [2 ** 62], [-7]])
    exact = sum(int(x) * int(y) for x, y in zip(a[0], w[:, 0]))
    for acc_width in (8, 32, 63, 64):
        assert gemm(a, w, acc_width).tolist() == [[oracle_wrap(exact, acc_width)]]


def test_gemm_accepts_any_integer_dtype_and_checks_shapes():
    a = np.array([[1, -2], [3, 4]], dtype=np.int8)
    w = np.array([[5], [6]], dtype=np.uint8)
    assert gemm(a, w).tolist() == [[-7], [39]]
    with pytest.raises(TensorError, match=re.escape(
            "tensor `W`: has 3 rows but `A` has K=2 columns")):
        gemm(a, np.zeros((3, 1), dtype=np.int8))
    with pytest.raises(TensorError, match=re.escape("tensor `A`: expected 2 dimensions, got 1")):
        gemm(np.zeros(2, dtype=np.int8), w)
    with pytest.raises(TensorError, match=re.escape("tensor `W`: dtype float64 is not an")):
        gemm(a, w.astype(float))


def test_a_wrong_gemm_would_be_caught():
    """The oracle is strict enough to fail a model that forgets to wrap or saturates."""
    a = np.array([[100, 100]])
    w = np.array([[100], [100]])
    expected = oracle_gemm(a.tolist(), w.tolist(), 16)
    assert expected == [[oracle_wrap(20000, 16)]] == [[20000]]
    expected = oracle_gemm(a.tolist(), w.tolist(), 12)
    assert (a @ w).tolist() != expected                      # no wrap at all
    assert np.clip(a @ w, -2048, 2047).tolist() != expected  # saturation instead of wrap
    assert gemm(a, w, 12).tolist() == expected


# -- PE models --------------------------------------------------------------------------------


def oracle_dot_blocks(a, w, acc_width):
    acc = 0
    for block_a, block_w in zip(a.tolist(), w.tolist()):
        for x, y in zip(block_a, block_w):
            acc = oracle_wrap(acc + x * y, acc_width)
    return acc


def oracle_dbb_dot(a, values, indices, acc_width):
    acc = 0
    for b in range(len(values)):
        for s in range(len(values[b])):
            acc = oracle_wrap(acc + int(values[b][s]) * int(a[b][indices[b][s]]), acc_width)
    return acc


@pytest.mark.parametrize("data_width, acc_width", [(4, 8), (8, 12), (8, 32), (16, 24),
                                                   (64, 64)])
def test_dot_blocks_matches_oracle(data_width, acc_width):
    rng = np.random.default_rng(data_width + acc_width)
    for trial in range(20):
        blocks, bz = int(rng.integers(1, 6)), int(rng.choice([1, 2, 4, 8, 16]))
        a = random_tensor(rng, (blocks, bz), data_width, 0.7)
        w = random_tensor(rng, (blocks, bz), data_width, 0.7)
        got = dot_blocks(a, w, acc_width)
        assert type(got) is int
        assert got == oracle_dot_blocks(a, w, acc_width), trial
        gated = sum(1 for x, y in zip(a.ravel().tolist(), w.ravel().tolist())
                    if x == 0 or y == 0)
        assert gated_lanes_dense(a, w) == gated, trial


@pytest.mark.parametrize("data_width, acc_width", [(4, 8), (8, 12), (8, 32), (16, 24),
                                                   (64, 64)])
def test_dbb_dot_matches_oracle_and_dense_pe(data_width, acc_width):
    rng = np.random.default_rng(7 * data_width + acc_width)
    for trial in range(20):
        blocks, bz = int(rng.integers(1, 6)), int(rng.choice([2, 4, 8, 16]))
        nnz = int(rng.integers(1, bz + 1))
        a = random_tensor(rng, (blocks, bz), data_width, 0.7)
        # Raw slots straight from the generator, duplicates and (value 0, index i) included.
        values = random_tensor(rng, (blocks, nnz), data_width, 0.7)
        indices = rng.integers(0, bz, size=(blocks, nnz))
        got = dbb_dot(a, values, indices, acc_width)
        assert type(got) is int
        assert got == oracle_dbb_dot(a, values, indices, acc_width), trial
        gated = sum(1 for b in range(blocks) for s in range(nnz)
                    if values[b, s] == 0 or a[b, indices[b, s]] == 0)
        assert gated_lanes_dbb(a, values, indices) == gated, trial


def test_dbb_pe_equals_dense_pe_on_encoded_weights():
    """dbb-pe on encoded DBB weights computes what dense-pe computes on the dense weights."""
    rng = np.random.default_rng(5)
    bz, nnz, blocks = 8, 3, 6
    w = np.zeros((blocks, bz), dtype=np.int64)
    for b in range(blocks):
        keep = rng.choice(bz, int(rng.integers(0, nnz + 1)), replace=False)
        w[b, keep] = rng.integers(-128, 128, len(keep))
    w[0, 0] = -128                                 # a real value at index 0
    a = random_tensor(rng, (blocks, bz), 8, 0.7)
    enc = dbb.encode_weights(w.reshape(-1, 1), bz, nnz)
    values, indices = enc.values[:, 0], enc.indices[:, 0]
    for acc_width in (8, 16, 32):
        assert dbb_dot(a, values, indices, acc_width) == dot_blocks(a, w, acc_width)


def test_pe_models_check_operands():
    a = np.ones((2, 4), dtype=np.int64)
    ones = np.ones((2, 2), dtype=np.int64)
    # numpy would silently wrap a negative index to the end of the block.
    with pytest.raises(TensorError, match=re.escape(
            "tensor `indices`: value 4 at index (0, 1) is outside the block (0..3)")):
        dbb_dot(a, ones, np.array([[0, 4], [0, 1]]), 32)
    with pytest.raises(TensorError, match="value -1 at index"):
        gated_lanes_dbb(a, ones, np.array([[0, -1], [0, 1]]))
    with pytest.raises(TensorError, match="has 1 blocks"):
        dbb_dot(a, ones[:1], np.zeros((1, 2), dtype=np.int64), 32)
    with pytest.raises(TensorError, match="does not match"):
        dot_blocks(a, np.ones((2, 5), dtype=np.int64), 32)


def test_macs_nonzero_counts_pairs():
    rng = np.random.default_rng(4)
    for trial in range(10):
        m, k, n = (int(v) for v in rng.integers(1, 12, size=3))
        a = random_tensor(rng, (m, k), 8, rng.random())
        w = random_tensor(rng, (k, n), 8, rng.random())
        count = sum(1 for i in range(m) for j in range(n) for x in range(k)
                    if a[i, x] != 0 and w[x, j] != 0)
        got = macs_nonzero(a, w)
        assert type(got) is int and got == count, trial
    assert macs_nonzero(np.ones((3, 5), dtype=np.int8), np.ones((5, 7), dtype=np.int8)) == 105
    with pytest.raises(TensorError):
        macs_nonzero(np.ones((3, 5), dtype=np.int8), np.ones((4, 7), dtype=np.int8))
