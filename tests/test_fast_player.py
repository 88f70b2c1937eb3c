"""The fast stream player (generated C++ ``main``) against the cocotb player it replaced as the
default harness of :func:`sparsegen.sim.player.play`.

The cocotb player is the reference: on every design family both must give the same output, the
same cycle count and the same other figures. Layer cases run ``sparsegen sim`` in-process once
per harness (picked with ``$SPARSEGEN_HARNESS``, so the layer runners run unchanged) and check
the output against an independent oracle (int64 ``@`` on explicitly pruned operands, a direct
convolution loop). The configs are those of the Verilator array tests, so the builds are shared
with them. The stream itself is checked at the level of ``play``: identical result text, a
timeout, a failed build.
"""

import dataclasses
import json
import platform
import re

import numpy as np
import pytest

from sparsegen.gen.cli import main
from sparsegen.gen.generate import generate
from sparsegen.gen.registry import get_design, make_config
from sparsegen.sim import fastplay, layer, reference
from sparsegen.sim.golden import gemm
from sparsegen.sim.golden import scnn as gscnn
from sparsegen.sim.highlight import random_hss_weights
from sparsegen.sim.player import HARNESS_ENV, play
from sparsegen.sim.stimulus import random_operands
from sparsegen.sim.tb.bits import hex_to_words, pack_many, words_to_hex
from sparsegen.sim.tb.runner import SimulationError

from helpers import keep_largest

# Figures that measure the machine, not the design.
_TIMING = ("sim_seconds", "cycles_per_second", "harness_seconds", "harness_cycles_per_second",
           "build_seconds")


def _sim(tmp_path, capsys, monkeypatch, harness, args):
    monkeypatch.setenv(HARNESS_ENV, harness)
    out = tmp_path / f"O-{harness}.npy"
    # Harness equality, not energy (tests/test_energy_layer.py prices runs): no synthesis.
    status = main(["sim", *args, "--tech", "generic", "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    for key in _TIMING:
        report.pop(key, None)
    return report, np.load(out)


def _both(tmp_path, capsys, monkeypatch, args):
    """``sparsegen sim ARGS`` on both harnesses: equal outputs and reports (timing aside), RTL
    cycles equal to the model, output equal to golden. Returns the output."""
    fast, out_fast = _sim(tmp_path, capsys, monkeypatch, "fast", args)
    ref, out_ref = _sim(tmp_path, capsys, monkeypatch, "cocotb", args)
    assert np.array_equal(out_fast, out_ref)
    assert fast == ref
    assert fast["matches_golden"] is True
    assert fast["cycles"] == fast["model_cycles"] > 0
    return out_fast


def _save(tmp_path, **arrays):
    args = []
    for name, x in arrays.items():
        np.save(tmp_path / f"{name}.npy", x)
        args += [f"--{name.lower()}", str(tmp_path / f"{name}.npy")]
    return args


def _params(params: dict) -> list[str]:
    return [arg for k, v in params.items() for arg in ("-p", f"{k}={v}")]


def _dbb_weights(rng, k, n, bz, nnz, width=8):
    """W[K, N] with at most ``nnz`` non-zeros in every block of ``bz`` along K."""
    w = random_operands(rng, (k, n), width, density=1.0)
    padded = np.pad(w, ((0, (-k) % bz), (0, 0)))
    for b in range(0, padded.shape[0], bz):
        for col in range(n):
            padded[b + rng.choice(bz, bz - nnz, replace=False), col] = 0
    return padded[:k]


# -- layer runs on both harnesses ------------------------------------------------------------


@pytest.mark.verilator
@pytest.mark.parametrize("params, width", [
    (dict(rows=4, cols=3, zvcg="true"), 8),
    (dict(rows=2, cols=5, zvcg="false", data_width=16, acc_width=40), 16),
], ids=["zvcg", "no-zvcg"])
def test_dense_array(tmp_path, capsys, monkeypatch, params, width):
    rng = np.random.default_rng(11)
    a = random_operands(rng, (9, 23), width)
    w = random_operands(rng, (23, 7), width)
    args = ["dense-array", *_params(params), *_save(tmp_path, A=a, W=w)]
    assert (_both(tmp_path, capsys, monkeypatch, args) == a @ w).all()


@pytest.mark.verilator
def test_s2ta_w(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(12)
    a = random_operands(rng, (7, 29), 8)
    w = _dbb_weights(rng, 29, 9, 8, 4)
    params = dict(variant="w", rows=3, cols=4, tpe_rows=1, tpe_cols=1, block_size=8, nnz_w=4)
    args = ["s2ta", *_params(params), *_save(tmp_path, A=a, W=w)]
    assert (_both(tmp_path, capsys, monkeypatch, args) == a @ w).all()


@pytest.mark.verilator
@pytest.mark.parametrize("variant, params, nnz_a", [
    ("a", dict(rows=2, cols=1, tpe_rows=2, tpe_k=2, tpe_cols=3, block_size=8, nnz_max=8), 3),
    ("a", dict(rows=2, cols=1, tpe_rows=2, tpe_k=2, tpe_cols=3, block_size=8, nnz_max=8), 1),
    ("aw", dict(rows=2, cols=2, tpe_rows=2, tpe_k=1, tpe_cols=4, block_size=8, nnz_w=4,
                nnz_max=8), 2),
], ids=["a-nnz3", "a-nnz1", "aw-nnz2"])
def test_s2ta_run_time_nnz_a(tmp_path, capsys, monkeypatch, variant, params, nnz_a):
    """``nnz_a`` is a run-time input port: one build per variant, driven before reset ends."""
    rng = np.random.default_rng(13 + nnz_a)
    a = random_operands(rng, (6, 21), 8, density=0.8)
    w = _dbb_weights(rng, 21, 5, 8, 4) if variant == "aw" else random_operands(rng, (21, 5), 8)
    args = ["s2ta", *_params(dict(variant=variant, nnz_a=nnz_a, **params)),
            *_save(tmp_path, A=a, W=w)]
    assert (_both(tmp_path, capsys, monkeypatch, args) == keep_largest(a, 8, nnz_a) @ w).all()


@pytest.mark.verilator
@pytest.mark.parametrize("pattern", [(4, 6, 2, 4), (4, 4, 1, 4)], ids=["4:6,2:4", "4:4,1:4"])
def test_highlight_run_time_pattern(tmp_path, capsys, monkeypatch, pattern):
    """``pattern`` is a run-time input port: both patterns run on one build."""
    rng = np.random.default_rng(14)
    a = random_operands(rng, (5, 45), 8, density=0.7)
    w = random_hss_weights(rng, 45, 4, pattern, 8)
    text = "{}:{},{}:{}".format(*pattern)
    args = ["highlight", "-p", "rows=2", "-p", "cols=3", "-p", f"pattern={text}",
            *_save(tmp_path, A=a, W=w)]
    assert (_both(tmp_path, capsys, monkeypatch, args) == a @ w).all()


@pytest.mark.verilator
@pytest.mark.slow   # its cocotb build of the SCNN array costs about 25 s of the default suite;
                    # there the array runs on the fast harness against golden and the model
def test_scnn_reads_conflict_stalls(tmp_path, capsys, monkeypatch):
    """SCNN's result stream is 700 bits wide and its ``conflict_stalls`` output is read at the
    end (both sit in the compared report)."""
    rng = np.random.default_rng(15)
    ifmap = random_operands(rng, (3, 7, 5), 16, density=0.5)
    filters = random_operands(rng, (5, 3, 3, 3), 16, density=0.4)
    params = dict(pe_rows=2, pe_cols=2, f=2, i=2, kc=2, max_tile_w=6, max_tile_h=6)
    args = ["scnn", *_params(params), "--pad", "1", *_save(tmp_path, ifmap=ifmap,
                                                           filters=filters)]
    out = _both(tmp_path, capsys, monkeypatch, args)
    x = np.pad(ifmap, ((0, 0), (1, 1), (1, 1)))
    expected = np.zeros(out.shape, dtype=np.int64)
    for k, c, r, s in np.ndindex(filters.shape):
        expected[k] += filters[k, c, r, s] * x[c, r:r + 7, s:s + 5]
    half = 1 << 23                      # 24-bit accumulators wrap
    assert (out == (expected + half) % (2 * half) - half).all()


# -- where a mismatching run first diverges -------------------------------------------------


@pytest.mark.verilator
def test_mismatch_names_its_first_divergence(tmp_path, capsys, monkeypatch):
    """A golden model corrupted at O[5, 4] (and O[8, 6], later in the stream): `sparsegen sim`
    fails naming the first in stream order, in the error line and in the JSON. 9 x 23 @ 23 x 7
    on 4 x 3 is 3 x 3 tiles of 23 steps (>= L + R = 13): tile t's rows leave at edges
    23(t + 1) + 9 ... + 12, so O[5, 4], tile (1, 1) = t 4, row 1, leaves at 115 + 10 = 125."""
    rng = np.random.default_rng(11)
    a = random_operands(rng, (9, 23), 8)
    w = random_operands(rng, (23, 7), 8)
    golden = gemm.gemm

    def corrupted(*args, **kwargs):
        o = golden(*args, **kwargs).copy()
        o[5, 4] += 1
        o[8, 6] -= 3
        return o

    monkeypatch.setattr(gemm, "gemm", corrupted)
    args = ["sim", "dense-array", *_params(dict(rows=4, cols=3, zvcg="true")),
            *_save(tmp_path, A=a, W=w), "--tech", "generic", "--json"]
    assert main(args) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    got = int((a @ w)[5, 4])
    assert report["matches_golden"] is False
    assert report["first_divergence"] == {
        "index": [5, 4], "tile": [1, 1], "row": 1, "column": 1, "got": got,
        "expected": got + 1, "cycle": 125, "mismatches": 2}
    assert captured.err == (
        f"sparsegen: error: the Verilog output differs from the golden model: first at O[5, 4] "
        f"(tile (1, 1), row 1, column 1, cycle 125): {got}, golden {got + 1}; 2 value(s) "
        f"differ\n")


@pytest.mark.verilator
def test_scnn_mismatch_names_its_first_divergence(monkeypatch):
    """The same for SCNN, on the two-pass case of tests/test_cycle_oracles.py (13 x 2 plane,
    Ht = 6, Wt = 1, kc = 2): O[0, 12, 1] is pass 1, PE (0, 1), row 0, the first row of the
    second DRAIN. That DRAIN is taken at edge 47 (cycle 46, when the first walk of
    kc(3(Ht + R - 1) + 2(R - 1)) = 36 cycles, c10-c45, ends); kc(Ht + R - 1) = 12
    horizontal-halo rows at two cycles each (edges 48-71: the received partial sums are
    registered at the PE boundary) come first, the row is requested at edge 72 and leaves
    DRAIN_LATENCY = 3 cycles later, at edge 75 (51 with the one-cycle horizontal rows of before:
    a 24-cycle first walk and 12 rows at edges 36-47)."""
    ifmap = np.zeros((1, 13, 2), dtype=np.int64)
    filters = np.full((1, 1, 1, 1), 3, dtype=np.int64)
    golden = gscnn.conv_einsum

    def corrupted(*args, **kwargs):
        o = golden(*args, **kwargs).copy()
        o[0, 12, 1] = 7
        return o

    monkeypatch.setattr(gscnn, "conv_einsum", corrupted)
    design = get_design("scnn")
    result = design.host.run(design, make_config(design, {}), ifmap, filters)
    assert result.matches_golden is False
    assert result.as_json()["first_divergence"] == {
        "index": [0, 12, 1], "pass": 1, "tile": [0, 1], "row": 0, "column": 0, "got": 0,
        "expected": 7, "cycle": 75, "mismatches": 1}


def test_first_divergence_is_in_stream_order():
    """O[0, 3] (tile (0, 1)) leaves after O[3, 0] (tile (0, 0), row 3) on a 4 x 3 array."""
    o = np.zeros((8, 6), dtype=np.int64)
    expected = o.copy()
    expected[0, 3] = expected[3, 0] = expected[7, 5] = 1
    first = layer.first_divergence(o, expected, (2, 2), 4, 3, np.arange(16) + 100)
    assert first == {"index": [3, 0], "tile": [0, 0], "row": 3, "column": 0, "got": 0,
                     "expected": 1, "cycle": 103, "mismatches": 3}
    assert layer.first_divergence(o, o, (2, 2), 4, 3) is None


# -- the stream itself -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dense():
    """dense-array 4x3 (the build of test_dense_array) and a stream of 3 tiles of 5 steps."""
    design = get_design("dense-array")
    generated = generate(design, make_config(design, dict(rows=4, cols=3, zvcg=True)))
    rng = np.random.default_rng(16)
    steps = 15
    payload = {"a": random_operands(rng, (steps, 4), 8), "w": random_operands(rng, (steps, 3), 8),
               "last": (np.arange(steps) % 5 == 4).astype(np.int64)}
    words = pack_many(generated.metadata["layouts"]["i__payload"], payload, steps)
    return generated, words


@pytest.mark.verilator
def test_play_results_identical(dense):
    """Result text, cycles and reads equal, whether the steps come as hex text or as words."""
    generated, words = dense
    width = generated.metadata["layouts"]["i__payload"]["width"]
    runs = [play(generated, words_to_hex(words, width), expect=12, timeout_cycles=500,
                 harness=harness) for harness in ("fast", "cocotb")]
    runs.append(play(generated, words, expect=12, timeout_cycles=500, harness="fast"))
    assert runs[0].results.count("\n") == 12
    assert all(run.results == runs[0].results for run in runs)
    assert all(run.cycles == runs[0].cycles for run in runs)
    assert all(run.window == runs[0].window for run in runs)
    # 3 tiles of 5 steps on 4 x 3 (L = 9, L + R = 13): rows leave at 14-17, 27-30, 40-43.
    leave = [14, 15, 16, 17, 27, 28, 29, 30, 40, 41, 42, 43]
    assert all(run.result_cycles.tolist() == leave for run in runs)
    assert all(run.read == {} for run in runs)
    # The whole harness run holds the clocked loop and its one-time costs.
    assert all(run.run_seconds > run.seconds > 0 for run in runs)


def test_model_options():
    """Short runs' models are compiled at -O1 for any x86-64; long runs' at -O2 and, on x86-64,
    for this processor, whose resolved target (not the word ``native``) keys the build."""
    assert fastplay.model_options(False) == ("-O1",)
    level, *flags = fastplay.model_options(True)
    assert level == "-O2"
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert flags == ["-march=native", "-mno-avx512f"]
        resolved = fastplay._target()[1]
        assert re.search(r"-march=(?!native)\w", resolved), resolved


@pytest.mark.verilator
def test_stimulus_read_in_chunks(dense):
    """The C++ ``main`` reads the stimulus a chunk of ``kChunkSteps`` (4096) steps at a time: a
    run of 9,005 steps (three chunks, the last partial) gives the results of the same tiles
    played as three runs of at most 4,095 steps each (one chunk each), in order."""
    generated, _ = dense
    model = fastplay.build(generated)
    assert "kChunkSteps = 4096;" in (model.binary.parent / "main.cpp").read_text()
    rng = np.random.default_rng(17)
    tiles = 1801                                    # 5 steps each
    steps = 5 * tiles
    payload = {"a": random_operands(rng, (steps, 4), 8), "w": random_operands(rng, (steps, 3), 8),
               "last": (np.arange(steps) % 5 == 4).astype(np.int64)}
    words = pack_many(generated.metadata["layouts"]["i__payload"], payload, steps)
    whole, stats = fastplay.run(model, words, expect=4 * tiles, timeout_cycles=4 * steps)
    assert stats["in_count"] == stats["in_at_done"] == steps
    parts = []
    for start in range(0, steps, 4095):
        part = words[start:start + 4095]
        text, part_stats = fastplay.run(model, part, expect=4 * len(part) // 5,
                                        timeout_cycles=4 * steps)
        assert part_stats["in_count"] == len(part)
        parts.append(text)
    assert whole.count("\n") == 4 * tiles
    assert whole == "".join(parts)


@pytest.mark.verilator
@pytest.mark.slow       # a build of its own (about 15 s)
def test_long_run_model_gives_the_same_run(dense):
    """The -O2 model that runs of ``LONG_RUN_STEPS`` or more get: the same results, cycles and
    window as the -O1 model, from a build of its own."""
    generated, words = dense
    short = fastplay.build(generated)
    long = fastplay.build(generated, long_run=True)
    assert short.binary != long.binary
    long_log = (long.binary.parent / "build.log").read_text()
    assert "OPT_FAST=-O2" in long_log
    flags, resolved = fastplay._target()
    if flags:   # x86-64: the long run's model alone is built for this processor
        assert resolved and f"-CFLAGS {' '.join(flags)}" in long_log
        assert "-march=" not in (short.binary.parent / "build.log").read_text()
    runs = [fastplay.run(model, words, expect=12, timeout_cycles=500) for model in (short, long)]
    (text_short, stats_short), (text_long, stats_long) = runs
    assert text_short == text_long and text_short.count("\n") == 12
    for key in ("cycles", "window", "in_at_done", "extra"):
        assert stats_short[key] == stats_long[key], key
    assert stats_long["result_cycles"].tolist() == stats_short["result_cycles"].tolist()


@pytest.mark.verilator
@pytest.mark.parametrize("harness", ["fast", "cocotb"])
def test_timeout_raises(dense, harness):
    generated, words = dense
    with pytest.raises(SimulationError, match="timed out after 300 cycles"):
        play(generated, words, expect=13, timeout_cycles=300, harness=harness)


@pytest.mark.verilator
@pytest.mark.parametrize("harness", ["fast", "cocotb"])
def test_extra_results_fail(dense, harness):
    """A design that makes one result more than expected fails the run. The stream's 3 tiles
    of 5 steps on the 4 x 3 array (L = 9, L + R = 13): last steps taken at edges 5, 18, 31,
    result rows leaving at 14-17, 27-30, 40-43. With 11 expected, the run is done at edge 42,
    and the 12th row leaves at 43, inside the window of tail 42 - 31 plus 16 edges."""
    generated, words = dense
    message = (r"`dense_array` produced 1 more result\(s\) than the 11 expected, the first at "
               r"cycle 43, within 27 cycles after the last expected one \(cycle 42\)$")
    with pytest.raises(SimulationError, match=message):
        play(generated, words, expect=11, timeout_cycles=500, harness=harness)


@pytest.mark.verilator
@pytest.mark.parametrize("harness", ["fast", "cocotb"])
def test_unconsumed_inputs_fail(dense, harness):
    """One tile too many in the stream (as a host that mis-counts its tiles would send): its
    4 first steps are taken at edges 32-35, but its last step waits for the drain of the last
    expected tile (edge 44, after the run is done at 43): unconsumed, and its rows, leaving at
    53-56, are extra results within the window (43 - 35 + 16 = 24 edges)."""
    generated, words = dense
    more = np.concatenate([words, words[:5]])
    message = (r"`dense_array` left 1 of its 20 input words unconsumed when its last expected "
               r"result left \(cycle 43\) and took 1 of them in the 24 cycles after; it also "
               r"produced 4 more result\(s\) than the 12 expected, the first at cycle 53")
    with pytest.raises(SimulationError, match=message):
        play(generated, more, expect=12, timeout_cycles=500, harness=harness)


@pytest.mark.verilator
def test_strict_run_reports_its_window(dense):
    """A right run: nothing after the 12th row within 43 - 31 + 16 = 28 edges."""
    generated, words = dense
    run = play(generated, words, expect=12, timeout_cycles=500, harness="fast")
    assert (run.cycles, run.window) == (43, 28)


@pytest.mark.verilator
def test_failed_build_names_its_log(dense):
    generated, _ = dense
    broken = dataclasses.replace(generated, verilog=generated.verilog.replace(
        "endmodule", "wire broken = ;\nendmodule", 1))
    with pytest.raises(SimulationError, match=r"build of `dense-array` failed .*build\.log"):
        play(broken, "00\n", expect=1, timeout_cycles=10)


_ECHO = """\
module echo (
  input clk, input rst, input a__0, input [69:0] b,
  input i__valid, output i__ready, input [39:0] i__payload,
  output reg o__valid, input o__ready, output reg [69:0] o__payload,
  output x, output reg [32:0] y
);
  assign i__ready = 1'b1;
  assign x = a__0;
  always @(posedge clk) begin
    if (rst) begin
      o__valid <= 0; y <= 0;
    end else begin
      o__valid <= i__valid;
      o__payload <= {30'd0, i__payload} + b;
      if (i__valid) y <= y + 33'h080000001;
    end
  end
endmodule
"""


@pytest.mark.verilator
def test_ports_of_any_width(dense):
    """A hand-written design whose ports the arrays do not have: a 1-bit run-time input named
    with ``__``, a 70-bit one, a 70-bit result, and 1-bit and 33-bit outputs read at the end."""
    ports = {name: {"type": "port", "name": name, "dir": d, "width": width} for name, d, width in [
        ("a__0", "in", 1), ("b", "in", 70), ("i__valid", "in", 1), ("i__ready", "out", 1),
        ("i__payload", "in", 40), ("o__valid", "out", 1), ("o__ready", "in", 1),
        ("o__payload", "out", 70), ("x", "out", 1), ("y", "out", 33)]}
    layouts = {"i__payload": {"kind": "int", "width": 40, "signed": False},
               "o__payload": {"kind": "int", "width": 70, "signed": False}}
    echo = dataclasses.replace(dense[0], design="echo", top="echo", verilog=_ECHO,
                               metadata={"top": "echo", "ports": ports, "layouts": layouts})
    steps = [0xFFFFFFFFFF, 0x0123456789, 0, 0x8000000001, 0x7F7F7F7F7F]
    b = (1 << 69) | 0x3FF_FFFFFFFF
    run = play(echo, "".join(f"{v:x}\n" for v in steps), expect=5, timeout_cycles=100,
               inputs={"a__0": 1, "b": b}, read=["y", "x"], harness="fast")
    assert run.results == "".join(f"{(v + b) % (1 << 70):018x}\n" for v in steps)
    assert run.cycles == 6                      # 5 steps in, the last result one edge later
    assert run.read == {"x": 1, "y": 5 * 0x080000001 % (1 << 33)}


def test_unknown_harness(dense):
    generated, words = dense
    with pytest.raises(ValueError, match="`harness` must be one of fast, cocotb, not 'verilog'"):
        play(generated, words, expect=1, timeout_cycles=10, harness="verilog")


# -- word conversions (no simulator) ---------------------------------------------------------


@pytest.mark.parametrize("width", [1, 7, 32, 33, 58, 64, 129, 700, 865])
def test_word_conversions_round_trip(width):
    rng = np.random.default_rng(width)
    bits = rng.integers(0, 2, (9, width)).astype(np.uint8)
    values = [int("".join(map(str, row[::-1])), 2) for row in bits]
    words = np.array([[(v >> (32 * i)) & 0xFFFFFFFF for i in range((width + 31) // 32)]
                      for v in values], dtype=np.uint32)
    text = words_to_hex(words, width)
    assert text == "".join(f"{v:0{(width + 3) // 4}x}\n" for v in values)
    assert np.array_equal(hex_to_words(text, width), words)


def test_hex_lines_of_mixed_length_and_extra_bits():
    """Short lines are zero-extended, bits above the width dropped (as ``$fscanf`` into a
    register of that width does)."""
    words = hex_to_words("1\nfff\n123456789abc\n", 36)
    assert words.tolist() == [[0x1, 0], [0xfff, 0], [0x56789abc, 0x4]]


def test_machine_reference_computes_its_array():
    """`bench tools`' reference MAC array (sim/reference.py) against its numpy model: the rate
    it reports is that of an array that computes what its docs say."""
    for cycles in (0, 1, 2, 37, 1_000):
        out = reference.run(cycles)
        assert out["cycles"] == cycles
        assert out["checksum"] == reference.expected_checksum(cycles), cycles
    assert reference.expected_checksum(1_000) != reference.expected_checksum(999)
