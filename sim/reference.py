"""The machine's reference rate: a hand-written 8x8 MAC array, Verilated and clocked from C++.

Simulation rates are wall-clock figures of the machine they ran on; two-core hosts of the same
kind have run the same fast-player model 1.6 to 2 times apart. To make a layer simulation's
rate readable anywhere, ``bench tools`` also runs this reference on the same machine, in the
same run, compiled like the fast player's long-run models
(:func:`~.fastplay.compile_program`): an R x C array of multiply-accumulate cells in plain
Verilog, each passing its 8-bit signed activation right and its weight down and adding their
product into a 32-bit accumulator, with no stream, no harness and no per-cycle input (the
operands come from a 32-bit LFSR inside the top) and the accumulators XOR-folded into the one
output. The issue that set the 1 M cycles/s target quoted "raw Verilator on an 8x8 MAC array"
as the machine's ceiling; this is that array, so a harness's rate can be read as a fraction of
it.

:func:`expected_checksum` computes the same array in numpy, so a short run checks that the
reference computes what it says (``tests/test_fast_player.py``).
"""

import json
from pathlib import Path

import numpy as np

from ..gen import children
from . import fastplay
from .tb.runner import SimulationError

__all__ = ["ROWS", "COLS", "reference_verilog", "expected_checksum", "build", "run"]

ROWS = COLS = 8
_TOP = "mac_reference"
_LFSR_TAPS = (31, 21, 1, 0)

_CELL = """\
module mac_reference_cell (
    input  wire clk,
    input  wire signed [7:0] a_in,
    input  wire signed [7:0] w_in,
    output reg  signed [7:0] a_out = 8'sd0,
    output reg  signed [7:0] w_out = 8'sd0,
    output reg  [31:0] acc = 32'd0
);
    wire signed [15:0] product = a_in * w_in;
    always @(posedge clk) begin
        a_out <= a_in;
        w_out <= w_in;
        acc <= acc + {{16{product[15]}}, product};
    end
endmodule
"""


def reference_verilog(rows: int = ROWS, cols: int = COLS) -> str:
    """The reference array's Verilog (top ``mac_reference``: ``clk`` in, ``y`` out).

    Row r's activation input is ``lfsr[7:0] ^ r`` and column c's weight input
    ``lfsr[15:8] ^ c``, both as signed bytes; ``y`` is the XOR of every accumulator."""
    taps = " ^ ".join(f"lfsr[{t}]" for t in _LFSR_TAPS)
    lines = [_CELL, f"module {_TOP} (input wire clk, output wire [31:0] y);",
             "    reg [31:0] lfsr = 32'd1;",
             f"    always @(posedge clk) lfsr <= {{lfsr[30:0], {taps}}};"]
    for r in range(rows):
        for c in range(cols + 1):
            lines.append(f"    wire signed [7:0] a_{r}_{c};")
    for r in range(rows + 1):
        for c in range(cols):
            lines.append(f"    wire signed [7:0] w_{r}_{c};")
    for r in range(rows):
        lines.append(f"    assign a_{r}_0 = lfsr[7:0] ^ 8'd{r};")
    for c in range(cols):
        lines.append(f"    assign w_0_{c} = lfsr[15:8] ^ 8'd{c};")
    accs = []
    for r in range(rows):
        for c in range(cols):
            lines.append(f"    wire [31:0] acc_{r}_{c};")
            lines.append(f"    mac_reference_cell cell_{r}_{c} (.clk(clk), .a_in(a_{r}_{c}), "
                         f".w_in(w_{r}_{c}), .a_out(a_{r}_{c + 1}), .w_out(w_{r + 1}_{c}), "
                         f".acc(acc_{r}_{c}));")
            accs.append(f"acc_{r}_{c}")
    lines.append(f"    assign y = {' ^ '.join(accs)};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


_MAIN = r"""// The reference array clocked for CYCLES cycles; prints JSON.
#include "Vdut.h"
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>

int main(int argc, char** argv) {
    if (argc != 2) { std::fprintf(stderr, "usage: reference CYCLES\n"); return 2; }
    const uint64_t cycles = std::strtoull(argv[1], nullptr, 10);
    Vdut* dut = new Vdut;
    dut->clk = 0;
    dut->eval();
    const auto wall = std::chrono::steady_clock::now();
    const std::clock_t cpu = std::clock();
    for (uint64_t n = 0; n < cycles; ++n) {
        dut->clk = 1; dut->eval();
        dut->clk = 0; dut->eval();
    }
    const double cpu_seconds = double(std::clock() - cpu) / CLOCKS_PER_SEC;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                                         - wall).count();
    std::printf("{\"cycles\": %" PRIu64 ", \"checksum\": %u, \"seconds\": %.9f, "
                "\"cpu_seconds\": %.9f}\n", cycles, static_cast<unsigned>(dut->y), seconds,
                cpu_seconds);
    delete dut;
    return 0;
}
"""


def expected_checksum(cycles: int, rows: int = ROWS, cols: int = COLS) -> int:
    """``y`` after ``cycles`` rising edges, computed in numpy (the independent check)."""
    lfsr = 1
    a_reg = np.zeros((rows, cols), dtype=np.int64)     # a_out of each cell
    w_reg = np.zeros((rows, cols), dtype=np.int64)     # w_out of each cell
    acc = np.zeros((rows, cols), dtype=np.int64)

    def signed8(values):
        values = np.asarray(values, dtype=np.int64) & 0xFF
        return values - ((values & 0x80) << 1)

    for _ in range(cycles):
        a_in = np.empty_like(a_reg)
        w_in = np.empty_like(w_reg)
        a_in[:, 0] = signed8((lfsr & 0xFF) ^ np.arange(rows))
        a_in[:, 1:] = a_reg[:, :-1]
        w_in[0, :] = signed8(((lfsr >> 8) & 0xFF) ^ np.arange(cols))
        w_in[1:, :] = w_reg[:-1, :]
        acc = (acc + a_in * w_in) & 0xFFFFFFFF
        a_reg, w_reg = a_in, w_in
        feedback = 0
        for tap in _LFSR_TAPS:
            feedback ^= (lfsr >> tap) & 1
        lfsr = ((lfsr << 1) | feedback) & 0xFFFFFFFF
    return int(np.bitwise_xor.reduce(acc.ravel()))


def build() -> Path:
    """Verilate and compile the reference (cached like the fast player's builds, with the
    options of its long-run models); returns the program."""
    files = {f"{_TOP}.v": reference_verilog(), "main.cpp": _MAIN}
    folder = fastplay.compile_program("mac-reference", files, _TOP, long_run=True,
                                      what="reference build")
    return folder / fastplay.PROGRAM


def run(cycles: int) -> dict:
    """Run the reference for ``cycles`` cycles: ``cycles``, ``checksum`` (``y``),
    ``seconds`` and ``cpu_seconds`` of the clocked loop."""
    result = children.run([str(build()), str(cycles)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SimulationError(f"reference run failed (exit status {result.returncode}): "
                              f"{result.stderr.strip()}")
    return json.loads(result.stdout)
