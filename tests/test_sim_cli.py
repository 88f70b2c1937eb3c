"""`sparsegen sim` end to end, as a user runs it: .npy in, Verilator, .npy and JSON out.

The expected outputs here come from independent oracles (int64 ``@`` and a direct convolution
loop), not from the golden GEMM the command itself checks against.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from sparsegen.sim.golden.dbb import prune_activations

pytestmark = pytest.mark.verilator


def sparsegen(*args):
    result = subprocess.run([sys.executable, "-m", "sparsegen.gen.cli", *args],
                            capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


def _dbb_weights(rng, k, n, bz, nnz):
    """Random W[K, N] with at most ``nnz`` non-zeros in every BZ block along K."""
    return prune_activations(rng.integers(-128, 128, (n, k)), bz, nnz).T


def test_s2ta_aw_gemm_writes_the_pruned_product(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (13, 37)).astype(np.int8)
    w = _dbb_weights(rng, 37, 11, 8, 4).astype(np.int16)
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "W.npy", w)
    status, out, err = sparsegen(
        "sim", "s2ta", "-p", "variant=aw", "-p", "rows=4", "-p", "cols=4", "-p", "nnz_w=4",
        "-p", "nnz_a=2", "--a", str(tmp_path / "A.npy"), "--w", str(tmp_path / "W.npy"),
        "-o", str(tmp_path / "O.npy"), "--json")
    assert status == 0, err
    report = json.loads(out)
    # The oracle: keep the two largest |a| of every 8 by an explicit sort, then int64 @.
    kept = np.zeros((13, 40), dtype=np.int64)
    padded = np.pad(a.astype(np.int64), ((0, 0), (0, 3)))
    for i in range(13):
        for b in range(5):
            block = padded[i, 8 * b:8 * b + 8]
            order = sorted(range(8), key=lambda j: (-abs(int(block[j])), j))
            for j in order[:2]:
                if block[j] != 0:
                    kept[i, 8 * b + j] = block[j]
    expected = kept[:, :37] @ w.astype(np.int64)
    assert np.array_equal(np.load(tmp_path / "O.npy"), expected)
    assert report["matches_golden"] is True
    assert report["cycles"] == report["model_cycles"] > 0
    assert report["macs_total"] == 13 * 37 * 11
    assert report["macs_nonzero"] == int(((kept[:, :37] != 0).astype(int)
                                          @ (w != 0).astype(int)).sum())
    assert report["multipliers"] == 16
    assert report["utilization"] == pytest.approx(
        report["macs_nonzero"] / (16 * report["cycles"]), abs=1e-6)
    assert report["shape"] == {"M": 13, "K": 37, "N": 11}


def test_dense_array_convolution_matches_a_direct_loop(tmp_path):
    rng = np.random.default_rng(5)
    ifmap = rng.integers(-128, 128, (3, 9, 7))
    filters = rng.integers(-128, 128, (5, 3, 3, 3))
    np.save(tmp_path / "I.npy", ifmap)
    np.save(tmp_path / "F.npy", filters)
    status, out, err = sparsegen(
        "sim", "dense-array", "-p", "rows=4", "-p", "cols=4", "--ifmap",
        str(tmp_path / "I.npy"), "--filters", str(tmp_path / "F.npy"), "--pad", "1",
        "--stride", "2", "-o", str(tmp_path / "O.npy"), "--json")
    assert status == 0, err
    c, h, wd = ifmap.shape
    k, _, r, s = filters.shape
    x = np.pad(ifmap, ((0, 0), (1, 1), (1, 1)))
    p, q = (h + 2 - r) // 2 + 1, (wd + 2 - s) // 2 + 1
    expected = np.zeros((k, p, q), dtype=np.int64)
    for kk in range(k):
        for y in range(p):
            for xx in range(q):
                expected[kk, y, xx] = int((x[:, 2 * y:2 * y + r, 2 * xx:2 * xx + s]
                                           * filters[kk]).sum())
    assert np.array_equal(np.load(tmp_path / "O.npy"), expected)
    report = json.loads(out)
    assert report["shape"]["conv"]["stride"] == 2
    assert report["shape"]["M"] == p * q and report["shape"]["K"] == c * r * s


def test_scnn_relu_drains_the_rectified_convolution(tmp_path):
    rng = np.random.default_rng(9)
    ifmap = rng.integers(-50, 50, (3, 9, 7)) * (rng.random((3, 9, 7)) < 0.5)
    filters = rng.integers(-50, 50, (5, 3, 3, 3)) * (rng.random((5, 3, 3, 3)) < 0.5)
    np.save(tmp_path / "I.npy", ifmap)
    np.save(tmp_path / "F.npy", filters)
    status, out, err = sparsegen("sim", "scnn", "--ifmap", str(tmp_path / "I.npy"), "--filters",
                                 str(tmp_path / "F.npy"), "--pad", "1", "--relu",
                                 "-o", str(tmp_path / "O.npy"), "--json")
    assert status == 0, err
    x = np.pad(ifmap, ((0, 0), (1, 1), (1, 1)))
    expected = np.zeros((5, 9, 7), dtype=np.int64)
    for k in range(5):
        for y in range(9):
            for xx in range(7):
                expected[k, y, xx] = max(0, int((x[:, y:y + 3, xx:xx + 3] * filters[k]).sum()))
    assert np.array_equal(np.load(tmp_path / "O.npy"), expected)
    assert (expected == 0).any() and (expected > 0).any()
    report = json.loads(out)
    assert report["relu"] is True and report["matches_golden"] is True


@pytest.mark.parametrize("args, message", [
    (["s2ta", "-p", "variant=w", "-p", "nnz_w=2", "--a", "{A}", "--w", "{W}"],
     "breaks DBB(8, 2): block k=0..7 of column n=0 has 8 non-zeros"),
    (["dense-array", "--a", "{F}", "--w", "{W}"], "`A`"),
    (["dense-array", "--a", "{A}", "--w", "{W}", "--prune"], "--prune"),
    (["dense-array", "--a", "{A}", "--w", "{W}", "--relu"], "--relu is for designs"),
    (["dbb-pe", "--a", "{A}", "--w", "{W}"], "building block"),
    (["dense-array", "--a", "{A}"], "give the operands"),
    (["dense-array", "--a", "{A}", "--w", "{W}", "-o", "{tmp}/missing/O.npy"],
     "does not exist"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    np.save(tmp_path / "A.npy", np.ones((4, 16), dtype=np.int8))
    np.save(tmp_path / "W.npy", np.ones((16, 4), dtype=np.int8))
    np.save(tmp_path / "F.npy", np.ones((4, 16), dtype=np.float32))
    paths = {"A": tmp_path / "A.npy", "W": tmp_path / "W.npy", "F": tmp_path / "F.npy",
             "tmp": tmp_path}
    status, out, err = sparsegen("sim", *[a.format(**paths) for a in args],
                                 "-o" if "-o" not in args else "--json",
                                 *([str(tmp_path / "O.npy")] if "-o" not in args else []))
    assert status == 2
    assert err.startswith("sparsegen: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "O.npy").exists()
