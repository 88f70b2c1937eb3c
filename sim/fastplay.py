"""The fast stream player: the design clocked by a generated C++ ``main``, stimulus in memory.

The cocotb player (:mod:`.player`) keeps Python off the per-cycle path, but the clock is still
cocotb's: every edge crosses the VPI, and its Verilog harness reads a hex line with ``$fscanf``
per step and writes one with ``$fwrite`` per result. That caps a layer run at tens of thousands
of cycles per second. This harness is compiled into the Verilated model instead (``verilator
--cc --exe --build``), and runs 10 to 30 times as fast (see the table below):

* a Verilog wrapper (``sparsegen_fastplay``, from :func:`harness_verilog`) holds the cocotb
  player's registers and rules unchanged, but takes the next step of ``i`` from a DPI-C
  function (a ``memcpy`` from memory) instead of ``$fscanf``, hands each result of ``o`` to
  another instead of ``$fwrite``, makes its own two-edge reset, and holds the design's run-time
  inputs (``nnz_a``, ``pattern``) in registers set once, by DPI, before reset ends;
* a C++ ``main`` (from :func:`main_cpp`) reads the stimulus a chunk at a time as the run takes
  it (little-endian 32-bit words, ``ceil(width / 32)`` per step: Verilator's own word order),
  toggles ``clk`` until the wrapper raises ``done`` or the timeout passes, and writes the
  results, counters and the design's other outputs once, at the end.

Why a wrapper rather than driving the design's ports from C++: Verilator re-evaluates every
piece of logic that depends on a top-level input at each ``eval()`` (its "input combinational"
region), whether the input changed or not. Driving ``i`` from C++ needs two ``eval()`` calls
per cycle (settle, read ``i.ready``, then clock), and on ``s2ta`` (aw, 8x8) half of the time
went into that region. With ``clk`` as the only top-level input, each cycle evaluates the
design's logic once, after the edge, as it runs inside the cocotb player's wrapper.

Cycles are counted exactly as by the cocotb player: from the edge that accepts the first input
step to the edge at which the last expected result leaves, both included, and both harnesses
run the same clocked rules (:func:`player_rules`), strictness window included; the tests in
``tests/test_fast_player.py`` hold the two harnesses to identical results and cycle counts.
The harness is test code, not hardware; it is never synthesized.

Measured on a GEMM of 256x512x256 (cycles per second of wall time in the clocked loop, on a
shared two-core machine at load 6; first builds without ccache)::

    design                    fast player    cocotb player    build: fast, cocotb
    dense-array 8x8              702,000          63,700          25 s, 33 s
    s2ta aw 8x8, nnz_a=2         411,000          26,500          60 s, 94 s

On processor time alone the fast player ran 1.4 M (``dense-array``) and 0.72 M (``s2ta``)
cycles per second; what remains per cycle is the design's own logic, evaluated once.
With long runs' models at -O2 for the processor (:data:`_X86_TARGET`) and the stimulus read
in chunks, ``bench tools``' GEMMs of 2,097,152 steps ran (2026-12-02, load 1.6 to 2.1; clocked
loop, then whole harness run): ``dense-array`` 8x8 1.69 to 1.73 M and 1.67 to 1.70 M cycles
per second, ``s2ta`` aw 8x8 1.10 to 1.13 M and 1.06 to 1.09 M. On ``s2ta`` 95% of the
instructions are the design's (callgrind): the MACs with their index match, 8 x 1,000 per
cycle for the eight columns, the columns' registers and output select 8 x 350, the output
DAP and the front end about 1,000; the wrapper and Verilator's two ``eval()`` calls about 500.

Rates are the host's: a later host of the same two-core kind ran the same models about half as
fast, with the same instructions. There (2026-12-02, two runs of ``bench tools`` at load 0.7
and 0.9): loop ``dense-array`` 1.31 and 0.92 M and ``s2ta`` 0.45 and 0.56 M cycles per second,
and the machine's reference, a hand-written 8x8 MAC array without stream or harness compiled
alike (:mod:`.reference`), 3.02 and 2.99 M; one model's repeated runs there spread over
+-15%. Instructions per cycle
(cachegrind, exact and host-independent): ``s2ta`` aw 8x8 13,330 (the eight columns' logic
87%: two lanes per cell of a four-way index match and a multiply, 128 multipliers; the output
DAP about 5.5%; the wrapper and ``eval()`` about 3%), ``dense-array`` 8x8 5,554. The model
reads 6.0 to 6.7 G instructions per second on that host, so ``s2ta`` aw 8x8 needs a host
about twice as fast for 1 M cycles per second; a third host that evening (``bench tools`` at
9956e84, load 0.55) ran ``dense-array`` 1.47 M, ``s2ta`` 0.78 M and the reference 3.43 M
cycles per second, so ``s2ta`` needed 1.28 times that host. Not taken: ``--threads 2`` on its
two cores (0.33 to 0.37 M, against 0.52 to 0.54 M single-threaded in the same session: one
cycle's work is too small for Verilator's per-cycle synchronisation).
"""

import dataclasses
import functools
import hashlib
import json
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..gen import children
from .tb.bits import hex_to_words, word_count, words_to_hex
from .tb.runner import SimulationError, build_root, cached_build
from .verilator import WAIVERS, verilator_env, verilator_version

__all__ = ["HARNESS_TOP", "LONG_RUN_STEPS", "STREAM_PORTS", "SETTLE_MARGIN", "STATS", "extra_ports",
           "player_rules", "dut_instance", "probe_rules", "probe_ports", "harness_verilog",
           "main_cpp", "model_options", "verilator_arguments", "compile_program",
           "PROGRAM", "FastModel", "build", "run"]

HARNESS_TOP = "sparsegen_fastplay"

#: The ports every streaming design has; the harness drives and reads them itself.
STREAM_PORTS = frozenset({"clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid",
                          "o__ready", "o__payload"})

#: Verilator and C++ compiler options of the harness, and why:
#: * ``OPT_FAST``: the optimization of the model's per-cycle code (one long straight-line
#:   ``eval`` per module), -O1 or, for long runs, -O2 (:data:`LONG_RUN_STEPS`).
#: * ``--no-timing``: generated Verilog has no delays or events, so no coroutine runtime.
#: * ``--threads 1``: one simulation thread (the machines run several jobs on two cores).
#: * ``-j 2``: compile two C++ files at a time.
#: The Verilator runtime keeps the Makefile's flags, so ccache (OBJCACHE) shares its objects
#: with every other build.
_VERILATOR_ARGS = ("--no-timing", "--threads", "1", "-j", "2")

#: C++ code generation of long runs' models (-O2, :data:`LONG_RUN_STEPS`) for the machine that
#: builds and runs them, on x86-64: every instruction set extension the processor has but
#: AVX-512. The harness is built on the user's machine and never moves; its build key holds the
#: target the compiler resolved ``native`` to (:func:`_target`). Measured 2026-12-02 on s2ta aw
#: 8x8 nnz_a 2 at -O2 (AMD EPYC Zen 5, shared two-core machine at load 3.6 to 4.7; cachegrind
#: instruction counts are exact, but valgrind does not decode AVX-512; rates are the best and
#: the median of 15 alternating runs, processor time of the clocked loop):
#:
#: ===================  ======================  ==========================
#: -march               instructions per cycle  cycles per second
#: ===================  ======================  ==========================
#: (default x86-64)     12,577                  1.095 M (median 1.057 M)
#: native               (AVX-512)               1.102 M (median 1.070 M)
#: native -mno-avx512f  12,064                  1.153 M (median 1.122 M)
#: ===================  ======================  ==========================
#:
#: dense-array 8x8: 5,765 -> 5,450 instructions per cycle. GCC 12 takes this Zen 5 for a Zen 3
#: with AVX-512, whose 512-bit code ran no faster. At -O1 the same flags gave s2ta 13,674
#: instructions per cycle against 13,567, so short runs' models keep the default target (and
#: their build keys). Cold -O2 build of s2ta 8x8 without ccache: 25.9 s without the flags,
#: 18.9 s with them (load 6: the flags cost no compile time that the load does not hide).
_X86_TARGET = ("-march=native", "-mno-avx512f")

#: Runs of at least this many input steps get a model compiled at -O2 instead of -O1 (a build
#: of its own, cached like any other). Measured 2026-12-02 on that day's Verilog (cachegrind
#: instruction counts are exact; rates are the best of five alternating runs on the shared
#: two-core machine, processor time of the clocked loop):
#:
#: ====================  ==========================  =====================  ================
#: model                 instructions per cycle      cycles per second      model compile
#: ====================  ==========================  =====================  ================
#: s2ta aw 8x8 nnz_a 2   13,567 (-O1), 12,577 (-O2)  0.72 M -> 1.06 M       3.8 -> 5.3 s
#: dense-array 8x8       5,911 (-O1), 5,749 (-O2)    1.03 M -> 1.16 M
#: ====================  ==========================  =====================  ================
#:
#: -O2 saves 0.1 to 0.4 us per cycle and costs 1.5 to 3.5 s more to compile (SCNN's largest
#: file: 5.2 -> 7.3 s), so it pays from a few million cycles on (and a build is reused by
#: every later run of the same Verilog): the default test suite's short runs keep -O1 and
#: its build times. -O3 ran like -O2 and took 12.8 s against 5.5 s to build. Not taken:
#: Verilator's ``-O3`` with ``--x-assign fast --x-initial fast`` (14,092 instructions per
#: cycle at -O2), ``--flatten`` (13,660 at -O1), ``-O1`` with ``-fstrict-aliasing``,
#: ``-fschedule-insns2`` or ``-finline-small-functions`` (no change), GCC's profile-guided
#: optimization (``-fprofile-use`` after a training run: about 3% on s2ta aw 8x8, for a second
#: compile and a training run per model), and compiling the fast
#: and slow halves apart (``VM_PARALLEL_BUILDS=1``: its precompiled headers made a cold
#: build 36 s against 24 s).
LONG_RUN_STEPS = 1_000_000

PROGRAM = "fastplay"
"""File name of a built program in its folder (:func:`compile_program`)."""


def _flat_ports(members: dict) -> list[dict]:
    ports = []
    for member in members.values():
        if member["type"] == "port":
            ports.append(member)
        else:
            ports.extend(_flat_ports(member["members"]))
    return ports


def extra_ports(meta: dict) -> list[dict]:
    """The design's ports other than clock, reset and the ``i``/``o`` streams, as listed in
    ``meta["ports"]`` (each a dict with ``name``, ``dir`` (``"in"``/``"out"``) and ``width``).
    """
    return [p for p in _flat_ports(meta["ports"]) if p["name"] not in STREAM_PORTS]


def _vector(width: int) -> str:
    return "" if width == 1 else f"[{width - 1}:0] "


#: Cycles the players keep clocking after the last expected result, beyond the run's own tail
#: (see :func:`player_rules`).
SETTLE_MARGIN = 16

#: The players' statistics registers besides ``done`` and ``settled``, all 64 bits.
STATS = ("cycles", "in_count", "out_count", "in_at_done", "extra", "first_extra", "window")


def dut_instance(top: str, connections: list[str]) -> str:
    """The design under test as both players instantiate it: clock, reset, its other ports
    (``connections``, lines like ``.nnz_a(x),``) and the streams, ``o`` always ready."""
    lines = "\n".join(connections)
    return f"""\
  {top} dut (
    .clk(clk),
    .rst(rst),
{lines}
    .i__valid(have),
    .i__ready(i_ready),
    .i__payload(word),
    .o__valid(o_valid),
    .o__ready(1'b1),
    .o__payload(o_payload)
  );"""


def player_rules(fetch: str, got: str, emit: str, *, word: str = "next_word",
                 at_done: str = "") -> str:
    """The clocked rules both players share (this module's wrapper and the cocotb player of
    :mod:`.player`), as one Verilog ``always`` block.

    ``fetch`` is a statement that reads the next input word into ``next_word`` and sets
    ``code``; ``got`` the condition on ``code`` that a word was read; ``word`` the expression
    of it that ``word`` takes; ``emit`` a statement that records ``o_payload`` and the cycle it
    leaves at, ``cycles + 1``; ``at_done`` runs once, at the edge of the last expected result.

    Rules: the next input word is offered as soon as the previous one was taken; ``o`` is
    always accepted; ``cycles`` counts from the edge that takes the first input word to the
    edge at which result ``expect_out`` leaves (``done``), both included. The run then goes on
    for ``window`` more edges (``settled`` at the end), still offering any input left, to make
    the run strict:

    * ``in_at_done``: input words taken by the edge of ``done``. Every word is meant to be
      consumed by then (each input of the arrays and of SCNN precedes the results it causes),
      so fewer means words were left unconsumed.
    * ``extra``: results after the expected ones, within the window (not recorded by ``emit``);
      ``first_extra`` is the cycle of the first, counted as ``cycles`` counts.
    * ``window`` = the run's tail (edges from the last input word taken to the last expected
      result) + :data:`SETTLE_MARGIN`. A result of these in-order pipelines leaves at most one
      pipeline depth after the input that causes it, and the tail is that depth as this run
      measured it at its end: for the arrays the front end, the core latency and R - 1 rows
      from a tile's last step to its last row, the deepest path any step takes; for SCNN the
      wait for an idle crossbar plus the halo-exchange and drain walk after DRAIN. Every input
      was taken
      before the last expected result, so any result they cause leaves within the window; the
      margin covers designs whose tail is a few edges (the echo design of the tests: 1).
    """
    return f"""\
  wire take = have & i_ready;
  wire give = o_valid;
  wire fetch = !eof & (!have | take);
  reg [63:0] last_take;   // `cycles` after the edge that took the latest input word
  reg [63:0] left;        // edges of the window still to run
  wire [63:0] span = cycles + 1 - (take ? cycles + 1 : last_take) + {SETTLE_MARGIN};

  always @(posedge clk) begin
    if (rst) begin
      have <= 0; started <= 0; eof <= 0; done <= 0; settled <= 0;
      cycles <= 0; in_count <= 0; out_count <= 0; in_at_done <= 0;
      extra <= 0; first_extra <= 0; window <= 0; last_take <= 0; left <= 0;
    end else if (!settled) begin
      if (fetch) begin
        {fetch}
        if ({got}) begin
          word <= {word};
          have <= 1;
        end else begin
          eof <= 1;
          have <= 0;
        end
      end else if (take) begin
        have <= 0;
      end
      if (take) begin
        in_count <= in_count + 1;
        started <= 1;
      end
      if (!done) begin
        if (take | started) cycles <= cycles + 1;
        if (take) last_take <= cycles + 1;
        if (give) begin
          {emit}
          out_count <= out_count + 1;
          if (out_count + 1 == expect_out) begin
            done <= 1;
            in_at_done <= in_count + take;
            window <= span;
            left <= span;
            {at_done}
          end
        end
      end else begin
        if (give) begin
          if (extra == 0) first_extra <= cycles + window - left + 1;
          extra <= extra + 1;
        end
        left <= left - 1;
        if (left == 1) settled <= 1;
      end
    end
  end
"""


_NAME = re.compile(r"(?<![\w.$\]])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def _in_dut(match) -> str:
    return f"dut.{match.group(1)}"


def probe_ports(probes: dict | None) -> list[str]:
    """The players' probe counter outputs, ``probe_<name>`` (64 bits), in ``probes`` order."""
    return [f"probe_{name}" for name in (probes or {})]


def probe_rules(probes: dict | None) -> str:
    """The probe counters both players share, as one Verilog ``always`` block.

    ``probes`` maps a counter name to 1-bit Verilog expressions over hierarchical names under
    the design's top (the hardware's own probe declarations, e.g.
    :meth:`~sparsegen.hw.systolic.SystolicCell.probes`); each name is reached through the
    ``dut`` instance (a cross-module reference: the design is not changed). On every edge
    after reset until ``done`` (the edge of the last expected result included), counter
    ``probe_<name>`` adds how many of its expressions are true. Every action of a layer
    happens before its last result leaves, so nothing is missed.
    """
    if not probes:
        return ""
    resets = " ".join(f"{port} <= 0;" for port in probe_ports(probes))
    adds = []
    for name, terms in probes.items():
        summed = " + ".join(f"{{63'b0, |({_NAME.sub(_in_dut, t)})}}" for t in terms)
        adds.append(f"      probe_{name} <= probe_{name} + {summed or '0'};")
    return f"""\
  always @(posedge clk) begin
    if (rst) begin
      {resets}
    end else if (!done) begin
{chr(10).join(adds)}
    end
  end
"""


def harness_verilog(meta: dict, probes: dict | None = None) -> str:
    """Verilog of the fast player's wrapper around the design described by ``meta``
    (``<top>.json``).

    Its only input is ``clk``. Outputs: ``done``, ``settled``, the 64-bit statistics of
    :data:`STATS` (see :func:`player_rules`), and ``read_<n>``: the design's ``n``-th other
    output port (in the order of :func:`extra_ports`). The design's ``n``-th other input port
    is held at the value ``fastplay_setting(n, word)`` gives, 32 bits per word, from before
    reset on. DPI-C imports (defined by :func:`main_cpp`): ``fastplay_fetch`` (next step, 0 at
    the end),
    ``fastplay_emit`` (one result), ``fastplay_setting`` and ``fastplay_expect``. Steps and
    results cross the DPI padded to whole 32-bit words.
    """
    top = meta["top"]
    layouts = meta["layouts"]
    iw, ow = layouts["i__payload"]["width"], layouts["o__payload"]["width"]
    iwp, owp = 32 * word_count(iw), 32 * word_count(ow)
    extras = extra_ports(meta)
    inputs = [p for p in extras if p["dir"] == "in"]
    outputs = [p for p in extras if p["dir"] == "out"]
    ports = ["input clk", "output reg done", "output reg settled"]
    ports += [f"output reg [63:0] {name}" for name in STATS]
    ports += [f"output {_vector(p['width'])}read_{n}" for n, p in enumerate(outputs)]
    ports += [f"output reg [63:0] {port}" for port in probe_ports(probes)]
    port_list = ",\n".join("  " + port for port in ports)
    settings = []
    for n, p in enumerate(inputs):
        words = ", ".join(f"fastplay_setting({n}, {w})"
                          for w in reversed(range(word_count(p["width"]))))
        settings.append(f"  reg {_vector(p['width'])}setting_{n};  // {p['name']}\n"
                        f"  initial setting_{n} = {{{words}}};")
    conns = [f"    .{p['name']}(setting_{n})," for n, p in enumerate(inputs)]
    conns += [f"    .{p['name']}(read_{n})," for n, p in enumerate(outputs)]
    emitted = "o_payload" if owp == ow else f"{{{owp - ow}'b0, o_payload}}"
    return f"""\
// Generated by sparsegen: fast stream player around `{top}` (simulation only).
module {HARNESS_TOP} (
{port_list}
);
  import "DPI-C" function int fastplay_fetch(output bit [{iwp - 1}:0] step);
  import "DPI-C" function void fastplay_emit(input bit [{owp - 1}:0] result,
                                             input longint cycle);
  import "DPI-C" function int fastplay_setting(input int port, input int word);
  import "DPI-C" function longint fastplay_expect();

  // Two edges of reset, as the cocotb player gives.
  reg [1:0] reset_edges = 2'd2;
  wire rst = reset_edges != 2'd0;
  always @(posedge clk) if (rst) reset_edges <= reset_edges - 2'd1;

{chr(10).join(settings)}
  reg [63:0] expect_out;
  initial expect_out = fastplay_expect();

  reg [{iw - 1}:0] word;
  reg [{iwp - 1}:0] next_word;
  reg have;           // `word` holds a step not yet taken
  reg started;
  reg eof;
  integer code;
  wire i_ready;
  wire o_valid;
  wire [{ow - 1}:0] o_payload;

{dut_instance(top, conns)}

  // The rules of both players (player_rules), with DPI in place of $fscanf and $fwrite.
{player_rules("code = fastplay_fetch(next_word);", "code != 0",
              f"fastplay_emit({emitted}, cycles + 1);", word=f"next_word[{iw - 1}:0]")}
{probe_rules(probes)}endmodule
"""


# The C++ harness. `@NAME@` fields are filled in by main_cpp(); the rest is fixed.
_MAIN = r"""// Generated by sparsegen: fast stream player around `@TOP@` (simulation only).
#include <chrono>
#include <cinttypes>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "Vdut.h"
#include "Vdut__Dpi.h"
#include "verilated.h"

namespace {

constexpr std::size_t kInWords = @IN_WORDS@;    // 32-bit words per step of `i`
constexpr std::size_t kOutWords = @OUT_WORDS@;  // 32-bit words per result of `o`
constexpr int kInputs = @INPUTS@;               // run-time input ports, one argument each
constexpr uint64_t kResetEdges = 2;             // made by the wrapper

// The stimulus is read a chunk at a time as the run consumes it, not whole: a layer's steps can
// be hundreds of megabytes (2M steps of s2ta 8x8 are 142 MB), and reading them all before the
// first edge cost 0.1 to 0.2 s of a 2 s run; a chunk stays in the cache while it is used.
constexpr std::size_t kChunkSteps = 4096;
FILE* g_steps_file = nullptr;
std::vector<uint32_t> g_chunk(kChunkSteps * kInWords);
std::size_t g_chunk_steps = 0;  // steps in g_chunk
std::size_t g_next = 0;         // the next of them
const char* g_steps_path = nullptr;
std::vector<uint32_t> g_results;
std::vector<uint64_t> g_cycles;  // the cycle at which each result left
std::vector<std::vector<uint32_t>> g_settings;
uint64_t g_expect = 0;

template <typename T> inline void get(const T& port, uint32_t* w) { w[0] = port; }
inline void get(const QData& port, uint32_t* w) {
    w[0] = static_cast<uint32_t>(port);
    w[1] = static_cast<uint32_t>(port >> 32);
}
template <std::size_t N> inline void get(const VlWide<N>& port, uint32_t* w) {
    std::memcpy(w, port.data(), N * sizeof(uint32_t));
}

[[noreturn]] void fail(const char* what, const char* path) {
    std::fprintf(stderr, "fastplay: %s %s\n", what, path);
    std::exit(2);
}

FILE* open_steps(const char* path) {
    FILE* f = std::fopen(path, "rb");
    if (!f) fail("cannot open", path);
    std::setvbuf(f, nullptr, _IONBF, 0);  // whole chunks go straight into g_chunk
    std::fseek(f, 0, SEEK_END);
    const long bytes = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    if (bytes < 0 || bytes % (kInWords * sizeof(uint32_t))) fail("bad size of", path);
    return f;
}

// Hex text (most significant digit first) -> 32-bit words, least significant first.
std::vector<uint32_t> parse_hex(const char* text) {
    const std::size_t len = std::strlen(text);
    std::vector<uint32_t> w((len + 7) / 8 + 1, 0);
    for (std::size_t d = 0; d < len; ++d) {
        const char c = text[len - 1 - d];
        const uint32_t v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        w[d / 8] |= v << (4 * (d % 8));
    }
    return w;
}

void print_hex(FILE* f, const uint32_t* w, std::size_t n) {
    std::fputs("\"", f);
    for (std::size_t i = n; i-- > 0;) std::fprintf(f, "%08" PRIx32, w[i]);
    std::fputs("\"", f);
}

}  // namespace

// The wrapper's DPI-C imports.
int fastplay_fetch(svBitVecVal* step) {
    if (g_next == g_chunk_steps) {
        g_chunk_steps = std::fread(g_chunk.data(), kInWords * sizeof(uint32_t), kChunkSteps,
                                   g_steps_file);
        g_next = 0;
        if (g_chunk_steps == 0) {
            if (std::ferror(g_steps_file)) fail("cannot read", g_steps_path);
            return 0;
        }
    }
    std::memcpy(step, g_chunk.data() + g_next * kInWords, kInWords * sizeof(uint32_t));
    ++g_next;
    return 1;
}

void fastplay_emit(const svBitVecVal* result, long long cycle) {
    g_results.insert(g_results.end(), result, result + kOutWords);
    g_cycles.push_back(static_cast<uint64_t>(cycle));
}

int fastplay_setting(int port, int word) {
    const std::vector<uint32_t>& words = g_settings.at(port);
    return static_cast<int>(static_cast<std::size_t>(word) < words.size() ? words[word] : 0);
}

long long fastplay_expect() { return static_cast<long long>(g_expect); }

int main(int argc, char** argv) {
    const auto entered = std::chrono::steady_clock::now();
    if (argc != 7 + kInputs) {
        std::fprintf(stderr, "usage: %s STEPS RESULTS CYCLES STATS EXPECT TIMEOUT @USAGE@\n",
                     argv[0]);
        return 2;
    }
    const char* results_path = argv[2];
    const char* cycles_path = argv[3];
    const char* stats_path = argv[4];
    g_expect = std::strtoull(argv[5], nullptr, 10);
    const uint64_t timeout = std::strtoull(argv[6], nullptr, 10);
    g_steps_path = argv[1];
    g_steps_file = open_steps(g_steps_path);
    g_results.reserve((g_expect < (1u << 20) ? g_expect : (1u << 20)) * kOutWords);
    for (int n = 0; n < kInputs; ++n) g_settings.push_back(parse_hex(argv[7 + n]));

    auto context = std::make_unique<VerilatedContext>();
    auto dut = std::make_unique<Vdut>(context.get());
    const uint64_t limit = kResetEdges + timeout;  // the timeout counts from the end of reset
    uint64_t edges = 0;
    const auto start = std::chrono::steady_clock::now();
    const std::chrono::duration<double> setup_seconds = start - entered;
    const std::clock_t cpu_start = std::clock();
    // The window after `done` is bounded by the run itself (see player_rules).
    while (!dut->settled && (dut->done || edges < limit)) {
        dut->clk = 0;
        dut->eval();
        dut->clk = 1;
        dut->eval();
        ++edges;
    }
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    const bool done = dut->done;
    std::fclose(g_steps_file);

    FILE* out = std::fopen(results_path, "wb");
    if (!out) fail("cannot write", results_path);
    if (std::fwrite(g_results.data(), sizeof(uint32_t), g_results.size(), out)
        != g_results.size()) {
        fail("cannot write", results_path);
    }
    std::fclose(out);
    FILE* cyc = std::fopen(cycles_path, "wb");
    if (!cyc || std::fwrite(g_cycles.data(), sizeof(uint64_t), g_cycles.size(), cyc)
        != g_cycles.size()) {
        fail("cannot write", cycles_path);
    }
    std::fclose(cyc);
    FILE* stats = std::fopen(stats_path, "w");
    if (!stats) fail("cannot write", stats_path);
    std::fprintf(stats, "{\"done\": %s, \"seconds\": %.9f, \"cpu_seconds\": %.9f, "
                 "\"setup_seconds\": %.9f", done ? "true" : "false", seconds.count(),
                 cpu_seconds, setup_seconds.count());
@STATS@
    std::fputs(", \"read\": {", stats);
@READ_OUTPUTS@
    std::fputs("}}\n", stats);
    std::fclose(stats);
    dut->final();
    return done ? 0 : 3;
}
"""


def main_cpp(meta: dict, probes: dict | None = None) -> str:
    """The C++ ``main`` of the fast player for the design described by ``meta``
    (``<top>.json``), with the DPI-C functions :func:`harness_verilog` imports.

    Command line of the built program: ``STEPS RESULTS CYCLES STATS EXPECT TIMEOUT`` followed
    by one hex value per run-time input port, in the order of :func:`extra_ports`. ``STEPS``
    holds the steps of ``i`` as little-endian 32-bit words, ``ceil(width / 32)`` per step;
    ``RESULTS`` receives the payloads of ``o`` the same way; ``CYCLES`` the cycle at which each
    left (little-endian 64-bit, counted as ``cycles``); ``STATS`` receives JSON with ``done``, the
    counters of :data:`STATS`, ``seconds`` and ``cpu_seconds`` (wall and processor time of
    the clocked loop alone) and ``read``
    (the design's other output ports, by name, as hex strings). Exit status 0 when ``EXPECT``
    results left within ``TIMEOUT`` edges after reset, 3 on a timeout, 2 on bad arguments or
    files.
    """
    layouts = meta["layouts"]
    extras = extra_ports(meta)
    inputs = [p for p in extras if p["dir"] == "in"]
    outputs = [p for p in extras if p["dir"] == "out"]
    read_outputs = []
    for n, port in enumerate(outputs):
        words = word_count(port["width"])
        sep = ", " if n else ""
        read_outputs.append(
            f"    {{ uint32_t w[{max(words, 2)}]; get(dut->read_{n}, w); "
            f"std::fputs(\"{sep}\\\"{port['name']}\\\": \", stats); "
            f"print_hex(stats, w, {words}); }}")
    fields = {
        "TOP": meta["top"],
        "IN_WORDS": str(word_count(layouts["i__payload"]["width"])),
        "OUT_WORDS": str(word_count(layouts["o__payload"]["width"])),
        "INPUTS": str(len(inputs)),
        "USAGE": " ".join(p["name"].upper() for p in inputs),
        "READ_OUTPUTS": "\n".join(read_outputs),
        "STATS": "\n".join(
            f'    std::fprintf(stats, ", \\"{name}\\": %" PRIu64, '
            f'static_cast<uint64_t>(dut->{name}));' for name in (*STATS,
                                                                 *probe_ports(probes))),
    }
    text = _MAIN
    for name, value in fields.items():
        text = text.replace(f"@{name}@", value)
    return text


@functools.cache
def _compiler_version() -> str:
    try:
        result = children.run(["c++", "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        raise SimulationError("the fast player needs a C++ compiler (`c++`) on PATH") from None
    return result.stdout.splitlines()[0] if result.stdout else "c++ (unknown version)"


@functools.cache
def _target() -> tuple[tuple[str, ...], str]:
    """The harness's code generation flags (:data:`_X86_TARGET` on x86-64 when the compiler
    takes them, else none) and, for the build key, the target the compiler resolves them to
    (its ``-###`` line, which spells out ``native``)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return (), ""
    try:
        result = children.run(["c++", *_X86_TARGET, "-###", "-E", "-x", "c++", "-"],
                              input="", capture_output=True, text=True)
    except FileNotFoundError:
        return (), ""
    if result.returncode != 0:
        return (), ""
    resolved = [line for line in result.stderr.splitlines() if "-march=" in line]
    return _X86_TARGET, "\n".join(resolved)


def model_options(long_run: bool) -> tuple[str, ...]:
    """The C++ options the fast player's model is compiled with: -O1, or for a long run
    (:data:`LONG_RUN_STEPS`) -O2 and the processor's target (:data:`_X86_TARGET`)."""
    return ("-O2", *_target()[0]) if long_run else ("-O1",)


def verilator_arguments(long_run: bool) -> tuple[tuple[str, ...], str]:
    """The Verilator arguments of a fast player build (:data:`_VERILATOR_ARGS` and
    :func:`model_options`) and, for a build key, the toolchain they depend on: the Verilator
    and C++ compiler versions and the target ``native`` resolves to. Shared with the machine's
    reference build (:mod:`.reference`), so both are compiled alike."""
    level, *flags = model_options(long_run)
    arguments = (*_VERILATOR_ARGS, "-MAKEFLAGS", f"OPT_FAST={level}",
                 *(("-CFLAGS", " ".join(flags)) if flags else ()))
    toolchain = "\n".join([verilator_version(), _compiler_version(),
                           _target()[1] if flags else ""])
    return arguments, toolchain


@dataclasses.dataclass(frozen=True)
class FastModel:
    """A built fast player: the program and the ports it was generated for.

    Members
    -------
    binary : Path
        The program (see :func:`main_cpp` for its command line).
    meta : dict
        The design's metadata (``<top>.json``).
    """

    binary: Path
    meta: dict
    probes: tuple = ()


def compile_program(name: str, files: dict[str, str], top: str, *, long_run: bool, what: str,
                    salt: tuple[str, ...] = ()) -> Path:
    """Verilate ``files`` (Verilog and a C++ ``main``) with top module ``top`` into the program
    ``<folder>/fastplay``, with the fast player's options (:func:`verilator_arguments`), in the
    cached folder ``<build_root>/sim/<name>-<key>``; the key hashes ``salt``, the files, the
    options, the waivers and the toolchain. Returns the folder.

    Raises
    ------
    SimulationError
        Verilator or the C++ compiler failed: "``what`` failed", naming the build log.
    """
    arguments, toolchain = verilator_arguments(long_run)
    key = hashlib.sha256("\n".join([
        *salt, *(f"{n}\n{t}" for n, t in sorted(files.items())),
        *arguments, *WAIVERS, toolchain,
    ]).encode()).hexdigest()[:16]

    def make(folder: Path) -> None:
        for file, text in files.items():
            (folder / file).write_text(text)
        log = folder / "build.log"
        command = ["verilator", "--cc", "--exe", "--build", *arguments, *WAIVERS,
                   "-Mdir", str(folder), "--top-module", top, "--prefix", "Vdut",
                   "-o", PROGRAM, *files]
        with open(log, "w") as out:
            out.write(" ".join(command) + "\n")
            out.flush()
            result = children.run(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                    env=verilator_env())
        if result.returncode != 0:
            raise SimulationError(f"{what} failed (exit status {result.returncode}); see {log}")

    return cached_build(name, key, make, check=lambda folder: (folder / PROGRAM).is_file())


def build(generated, probes: dict | None = None, *, long_run: bool = False) -> FastModel:
    """Verilate and compile ``generated`` (a :class:`~sparsegen.gen.generate.Generated`) in
    the fast player's wrapper, with its ``main``; with ``long_run``, the model's per-cycle
    code at -O2 instead of -O1 (:data:`LONG_RUN_STEPS` says why and when) and for this
    processor (:data:`_X86_TARGET`).

    The folder is ``<build_root>/sim/<design>-fast-<key>``, the key hashing the Verilog, the
    wrapper, the ``main``, the options, the waivers, the Verilator and C++ compiler versions and
    the target ``native`` resolves to; a complete build with the same key is reused, and
    concurrent callers wait for one build.

    Raises
    ------
    SimulationError
        Verilator or the C++ compiler failed (the message names the build log).
    """
    files = {f"{generated.top}.v": generated.verilog,
             f"{HARNESS_TOP}.v": harness_verilog(generated.metadata, probes),
             "main.cpp": main_cpp(generated.metadata, probes)}
    folder = compile_program(f"{generated.design}-fast", files, HARNESS_TOP, long_run=long_run,
                             what=f"fast player build of `{generated.design}`",
                             salt=(HARNESS_TOP,))
    return FastModel(binary=folder / PROGRAM, meta=generated.metadata,
                     probes=tuple(probes or ()))


def _input_argument(port: dict, value: int) -> str:
    width = port["width"]
    if not -(1 << (width - 1)) <= value < (1 << width):
        raise ValueError(f"run-time input `{port['name']}` is {width} bits wide; {value} does "
                         f"not fit")
    return f"{value & ((1 << width) - 1):x}"


def run(model: FastModel, words: str | np.ndarray, *, expect: int, timeout_cycles: int, inputs=None,
        read=()) -> tuple[str, dict]:
    """Run the fast player ``model`` on ``words``: the steps of ``i`` as hex payload lines, or
    as the ``uint32`` word array ``[count, ceil(width / 32)]`` of
    :func:`~sparsegen.sim.tb.bits.pack_many` (which spares making and parsing the text).

    Returns the results (hex lines of ``o``, as the cocotb player writes them) and the
    statistics (the counters of :data:`STATS`, ``seconds`` of the clocked loop alone,
    ``setup_seconds`` of the program before it (reading the stimulus, constructing the model),
    ``run_seconds``: wall time of this whole call, stimulus written, program started and
    ended, results read back, i.e. the loop plus every one-time cost, ``read``: the
    final values of the output ports named in ``read``, and ``result_cycles``: the cycle at
    which each result left, an int64 array); the caller judges the counters
    (:func:`~.player.check_strict`). The run's files live in
    a folder under ``<build_root>/runs`` that is removed after a successful run and kept after
    a failed one.

    Raises
    ------
    SimulationError
        The run timed out or failed, or ``inputs``/``read`` name a port the design lacks (the
        message names the run's log).
    ValueError
        An ``inputs`` value does not fit its port, or the word array is not as wide as ``i``.
    """
    meta = model.meta
    in_width = meta["layouts"]["i__payload"]["width"]
    if isinstance(words, np.ndarray) and (words.ndim != 2 or words.dtype != np.uint32
                                          or words.shape[1] != word_count(in_width)):
        raise ValueError(f"the steps of `{meta['top']}` are {in_width} bits wide, "
                         f"{word_count(in_width)} uint32 words, not an array of shape "
                         f"{words.shape} ({words.dtype})")
    extras = {p["name"]: p for p in extra_ports(meta)}
    port_inputs = [p for p in extras.values() if p["dir"] == "in"]
    inputs = dict(inputs or {})
    for name in inputs:
        if extras.get(name, {}).get("dir") != "in":
            raise SimulationError(f"`{meta['top']}` has no run-time input port `{name}`")
    for name in read:
        if extras.get(name, {}).get("dir") != "out":
            raise SimulationError(f"`{meta['top']}` has no output port `{name}` to read")
    arguments = [_input_argument(p, int(inputs.get(p["name"], 0))) for p in port_inputs]
    out_width = meta["layouts"]["o__payload"]["width"]
    start = time.perf_counter()
    steps = words if isinstance(words, np.ndarray) else hex_to_words(words, in_width)

    runs = build_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{meta['top']}-fast-", dir=runs))
    log = folder / "run.log"
    steps.tofile(folder / "steps.bin")
    command = [str(model.binary), str(folder / "steps.bin"), str(folder / "results.bin"),
               str(folder / "cycles.bin"), str(folder / "stats.json"), str(expect),
               str(timeout_cycles), *arguments]
    with open(log, "w") as out:
        result = children.run(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode not in (0, 3):
        raise SimulationError(f"fast player run of `{meta['top']}` failed (exit status "
                              f"{result.returncode}); see {log}")
    stats = json.loads((folder / "stats.json").read_text())
    if not stats["done"]:
        raise SimulationError(f"player timed out after {timeout_cycles} cycles: "
                              f"{stats['in_count']} steps in, {stats['out_count']} results out; "
                              f"see {log}")
    results = np.fromfile(folder / "results.bin", dtype="<u4").reshape(-1,
                                                                      word_count(out_width))
    stats["result_cycles"] = np.fromfile(folder / "cycles.bin", dtype="<u8").astype(np.int64)
    stats["read"] = {name: int(stats["read"][name], 16) for name in read}
    stats["probes"] = {name: stats.pop(f"probe_{name}") for name in model.probes}
    shutil.rmtree(folder)
    text = words_to_hex(results, out_width)
    stats["run_seconds"] = time.perf_counter() - start
    return text, stats
