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
    """The CLI in a child process. `sim` runs price no energy here (`--tech generic`: no
    synthesis); tests/test_energy_layer.py checks the energy figures."""
    if args and args[0] == "sim" and "--tech" not in args:
        args = (*args, "--tech", "generic")
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
        "-p", "tpe_rows=1", "-p", "tpe_k=1", "-p", "tpe_cols=1", "-p", "nnz_a=2",
        "--a", str(tmp_path / "A.npy"), "--w", str(tmp_path / "W.npy"),
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


@pytest.mark.parametrize("design, params, conv", [
    # Configs whose Verilog other tests build too, so no simulator build is added for them.
    ("dense-array", ["rows=4", "cols=4"], False),
    ("s2ta", ["variant=aw", "rows=4", "cols=4", "tpe_rows=1", "tpe_k=1", "tpe_cols=1",
              "nnz_w=4", "nnz_a=3"], False),
    ("s2ta", ["variant=aw", "rows=4", "cols=4", "tpe_rows=1", "tpe_k=1", "tpe_cols=1",
              "nnz_w=4", "nnz_a=1"], True),
    ("highlight", ["rows=2", "cols=3", "pattern=4:6,2:4"], False),
    ("scnn", [], True),
])
def test_model_answers_as_the_rtl_run_does(tmp_path, design, params, conv):
    """`sim --model` (no RTL) gives the RTL run's output, cycles and counts, marked as model."""
    rng = np.random.default_rng(11)
    if conv:
        np.save(tmp_path / "I.npy", rng.integers(-9, 9, (3, 6, 5)) * (rng.random((3, 6, 5)) < .6))
        # Filters whose im2col weights (K ordered r, s, c) meet DBB 4/8, for s2ta aw.
        w = _dbb_weights(rng, 3 * 3 * 3, 4, 8, 4)
        np.save(tmp_path / "F.npy", w.T.reshape(4, 3, 3, 3).transpose(0, 3, 1, 2))
        tensors = ["--ifmap", str(tmp_path / "I.npy"), "--filters", str(tmp_path / "F.npy"),
                   "--pad", "1"]
    else:
        np.save(tmp_path / "A.npy", rng.integers(-128, 128, (7, 45)))
        np.save(tmp_path / "W.npy", _dbb_weights(rng, 45, 5, 8, 4))
        tensors = ["--a", str(tmp_path / "A.npy"), "--w", str(tmp_path / "W.npy")]
    if design == "highlight":
        tensors.append("--prune")
    common = ["sim", design, *(x for p in params for x in ("-p", p)), *tensors, "--json"]
    runs = {}
    for source in ("rtl", "model"):
        out = tmp_path / f"{source}.npy"
        status, text, err = sparsegen(*common, "-o", str(out),
                                      *(["--model"] if source == "model" else []))
        assert status == 0, err
        runs[source] = json.loads(text), np.load(out)
    (rtl, o_rtl), (model, o_model) = runs["rtl"], runs["model"]
    assert rtl["source"] == "rtl" and rtl["matches_golden"] is True
    assert model["source"] == "model" and model["matches_golden"] is None
    assert np.array_equal(o_rtl, o_model)
    assert set(model) == set(rtl)
    for key in ("cycles", "model_cycles", "macs_total", "macs_nonzero", "multipliers",
                "utilization", "tiles", "steps", "conflict_stalls", "pattern", "pruned"):
        assert model.get(key) == rtl.get(key), key
    assert model["cycles"] == rtl["cycles"] > 0


def test_model_of_a_resnet_sized_layer_takes_seconds(tmp_path):
    """A 3x3 conv of ResNet-50's first stage (56x56, 64 -> 64 channels) on s2ta, lowered by
    im2col: no RTL is built; the cycles follow the closed form."""
    rng = np.random.default_rng(2)
    np.save(tmp_path / "I.npy", np.maximum(rng.integers(-128, 128, (64, 56, 56)), 0)
            .astype(np.int8))
    w = _dbb_weights(rng, 3 * 3 * 64, 64, 8, 4)
    np.save(tmp_path / "F.npy", w.T.reshape(64, 3, 3, 64).transpose(0, 3, 1, 2).astype(np.int8))
    status, out, err = sparsegen("sim", "s2ta", "-p", "variant=aw", "-p", "nnz_a=2",
                                 "--ifmap", str(tmp_path / "I.npy"), "--filters",
                                 str(tmp_path / "F.npy"), "--pad", "1", "--model", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["source"] == "model" and report["shape"]["M"] == 56 * 56
    blocks = 3 * 3 * 64 // 8
    tiles = (56 * 56 // 8) * (64 // 8)
    # Steady state: nnz_a core steps per block, tiles back to back, plus fill/drain.
    assert tiles * blocks * 2 <= report["cycles"] <= tiles * blocks * 2 + 200
    assert report["sim_seconds"] < 60
