"""Cycle counts derived by hand, pinned as literals, checked against the RTL and the models.

The RTL-equals-model checks elsewhere (``cycles == model_cycles``) cannot see a pipeline depth
that changes in both at once: the models read their depths from ``hw/`` (``core_latency``,
``S2TA.front_end_stages`` (0 since the DAP moved to the output path),
``S2TA.back_end_stages`` (the output DAP's stage),
``HighLight.SEQUENCER_STAGES``, the HSS step count). Here every count is a number worked out
from the Timing paragraphs of the ``hw/`` docstrings, written down, and compared with both the
layer run on Verilator (``design.host.run``, the fast player) and the cycle model
(``design.host.model``), so a one-cycle change to any depth fails one of the two. Nothing below
computes a count: no ``hw/`` constant and no cycle model is read.

``cycles`` is what ``sparsegen sim`` reports: clock edges from the one that accepts the first
input word (edge 1) to the one at which the last result row leaves, both included, input at
full rate, output never back-pressured.

Output-stationary arrays (hw/systolic.py, ``SystolicCore`` Timing)
--------------------------------------------------------------------
Core latency L = R + C + 2 edges from accepting a tile's last step to its first result row:
step register 1, row skew up to R - 1, cell input C + 1 (column skew and the cell's token
register), product 1, result 1, output 1 (bottom-right cell: 1 + (R-1) + (C+1) + 1 + 1 + 1).
Cells with more than one lane per output (``SystolicCell`` Timing: S2TA's TPEs when
lanes/output = tpe_k (x nnz_w for ``w``) > 1, HighLight's cells of L_pe = 4 lanes) register
each output's lane sum before the accumulator adds it, one edge more: L = R + C + 3.
The D result rows (D = R for scalar cells; R * tpe_rows for S2TA's tensor PEs, R and C then
counting TPEs) then leave on D consecutive edges. With S steps per tile, fed back to back,
tile 1's last step is taken at edge S; a later tile's last step waits for the previous tile's
final row (drain guard), so it is taken at e' = e + max(S, L + D). The last row leaves at
e_T + L + D - 1:

* one tile: S + L + D - 1;
* T tiles, S >= L + D: T*S + L + D - 1;   T tiles, S < L + D: S + (T - 1)(L + D) + L + D - 1.

Front ends, in series with the core (every count above shifted by the front end's depth F):

* ``dense-array`` and every ``s2ta`` variant: F = 0 (the array takes compressed
  activations). S2TA's output DAP (``a``/``aw`` with ``out_dap``, on in every case here) has
  one register stage behind the core (``DrainDAP`` Timing), which never holds the drain while
  the output is ready: every row leaves one edge later, so the count gains 1, once. Steps
  per tile (B = tpe_k): ``dense-array`` S = K; ``s2ta`` ``dense`` S = ceil(K / B); ``w``
  S = ceil(ceil(K / BZ) / B); ``a``/``aw`` S = ceil(K / BZ) * ceil(nnz_a / B).
* ``sod``: the decoders' block register (1): F = 1; S = ceil(K / BZ) * BZ.
* ``highlight``: the group sequencer's register (1), then the rank-1 block selection, which is
  combinational into the core's step register (no stage of its own): F = 1; each rank-1 group
  of H1 * H0 values becomes T = ceil(G1 / (L_pe / G0)) steps (L_pe = 4 multipliers per cell in
  the default set), so S = ceil(K / (H1 * H0)) * T: 4 steps for 4:4,4:4, 2 for 4:6,2:4, 1 for
  4:7,1:4.

SCNN (hw/scnn.py, ``ScnnPE`` and ``Scnn`` Timing)
----------------------------------------------------
One input transfer per cycle (the first, CONFIG, at cycle 0, i.e. edge 1); an ACT transfer
carries up to one ACT word per PE column, every other transfer one broadcast word. A WGT word
taken at cycle w goes through three decoder stages into the FIFO: its entry is issued at the
earliest at w + 3. An issued (entry, activation row) pair spends a cycle in the row stage (the
activation buffer's synchronous read into the product stage's register) and one in the product
stage (the multipliers) and loads into the crossbar two cycles after its issue
(PRODUCT_LATENCY = 2); the stages advance together, so with no conflict stall the next pair
issues the cycle after. An entry meets every activation row of its channel, one row per cycle
(an empty channel is one row of zeros).
A product is granted the cycle after its pair loads. CONFIG and DRAIN wait until the decoder,
FIFO and product stage are empty and the crossbar empties in that cycle. After DRAIN (cycle d)
the row walk takes kc(Ht+R-1) horizontal-halo rows and kc(R-1) vertical rows at two cycles each
(send read, then the receiving read-modify-write of the partial sums registered at the PE
boundary) and kc(Ht+R-1) drain rows, one per cycle: cycles d+1 .. d+W with
W = kc(3(Ht+R-1) + 2(R-1)).
The accumulators are double-buffered: the walk runs on one half while the next group computes
into the other, so the next word is taken at d+1 (ACT, WGT and CONFIG do not wait for the
walk); the next DRAIN waits for the walk to end, i.e. is taken at d' >= d+W+1. Each group's
last output row leaves 3 cycles after its walk's last cycle (bank read, rotation and ReLU
register, run-length compression into the output queue): at cycle d+W+3, i.e. edge d+W+4; the
count is that edge for the last DRAIN. The cases use the default ``scnn`` build (2 x 2 PEs,
f = i = 2, kc = 2, 6 x 6 tiles, 8 banks) and operands whose products never meet in a bank, so
no conflict stall enters.
"""

import functools

import numpy as np
import pytest

from sparsegen.gen.registry import get_design, make_config
from sparsegen.sim import scnn

# -- GEMM cases ------------------------------------------------------------------------------
# Configs whose fast-player builds tests/test_s2ta_cocotb.py, tests/test_highlight_cocotb.py
# and tests/test_fast_player.py make already (same Verilog, same harness), so nothing new is
# built here. nnz_a and pattern are run-time inputs: they do not change the Verilog.

DENSE_4x3 = dict(rows=4, cols=3, zvcg=True)                 # L = 9
DENSE_2x5 = dict(rows=2, cols=5, data_width=16, acc_width=40)    # L = 9
S2TA_DENSE = dict(variant="dense", rows=2, cols=2, tpe_rows=2, tpe_k=3, tpe_cols=1,
                  zvcg=True)                                # L = 7, D = 4, tile 4 x 2
S2TA_W = dict(variant="w", rows=3, cols=2, tpe_rows=1, tpe_k=1, tpe_cols=2, block_size=8,
              nnz_w=4)                                      # L = 8, D = 3, tile 3 x 4
S2TA_A = dict(variant="a", rows=2, cols=1, tpe_rows=2, tpe_k=2, tpe_cols=3, block_size=8,
              nnz_max=8)                                    # L = 6, D = 4, tile 4 x 3
S2TA_AW = dict(variant="aw", rows=2, cols=2, tpe_rows=2, tpe_k=1, tpe_cols=4, block_size=8,
               nnz_w=4, nnz_max=8)                          # L = 6, D = 4, tile 4 x 8
HIGHLIGHT = dict(rows=2, cols=3)                            # L = 8
SOD_3x4 = dict(rows=3, cols=4, block_size=2)                # L = 9 (tests/test_sod.py's build)

GEMM_CASES = [
    # id, design, params, (M, K, N), cycles: derivation
    ("dense-1tile", "dense-array", DENSE_4x3, (4, 5, 3), 17),         # 5 + 9 + 4 - 1
    ("dense-4tiles", "dense-array", DENSE_4x3, (8, 20, 6), 92),       # 4*20 + 9 + 4 - 1
    ("dense-drain-bound", "dense-array", DENSE_4x3, (8, 3, 3), 28),   # 3 + 13 + 12
    ("dense-2x5", "dense-array", DENSE_2x5, (2, 7, 5), 17),           # 7 + 9 + 2 - 1
    ("s2ta-dense-1tile", "s2ta", S2TA_DENSE, (4, 10, 2), 14),         # S=4: 4 + 7 + 4 - 1
    ("s2ta-dense-4tiles", "s2ta", S2TA_DENSE, (8, 30, 4), 53),        # S=10: 10 + 3*11 + 10
    ("s2ta-w-1tile", "s2ta", S2TA_W, (3, 37, 4), 15),                 # S=5: 5 + 8 + 3 - 1
    ("s2ta-w-drain-bound", "s2ta", S2TA_W, (6, 16, 8), 45),           # S=2: 2 + 3*11 + 10
    ("s2ta-a-nnz3", "s2ta", dict(S2TA_A, nnz_a=3), (4, 16, 3), 14),   # 4 + 6 + 4 - 1 + 1
    ("s2ta-a-nnz1", "s2ta", dict(S2TA_A, nnz_a=1), (4, 16, 3), 12),   # 2 + 6 + 4 - 1 + 1
    ("s2ta-aw-1tile", "s2ta", dict(S2TA_AW, nnz_a=2), (4, 24, 8), 16),    # 6 + 6 + 3 + 1
    ("s2ta-aw-drain-bound", "s2ta", dict(S2TA_AW, nnz_a=2), (8, 8, 16), 42),  # 2+3*10+9+1
    ("hl-dense", "highlight", dict(HIGHLIGHT, pattern="4:4,4:4"), (2, 16, 3), 14),  # 1+4+8+1
    ("hl-4:6,2:4", "highlight", dict(HIGHLIGHT, pattern="4:6,2:4"), (2, 72, 3), 16),  # 1+6+9
    ("hl-4:7,1:4", "highlight", dict(HIGHLIGHT, pattern="4:7,1:4"), (2, 84, 3), 13),  # 1+3+9
    ("hl-4tiles", "highlight", dict(HIGHLIGHT, pattern="4:4,4:4"), (4, 64, 6), 74),  # 1+4*16+9
    ("sod-1tile", "sod", SOD_3x4, (3, 5, 4), 18),                     # 1 + 6 + 9 + 3 - 1
    ("sod-drain-bound", "sod", SOD_3x4, (6, 4, 8), 52),               # 1 + 4 + 3*12 + 11
]
"""Derivations (L, R as in the module docs):

* dense-array 4x3 (L = 9, L + R = 13): 17 = S + L + R - 1 with S = K = 5; 92 = 4 tiles of
  S = 20 >= 13: 4*20 + 12; 28 = 2 tiles of S = 3 < 13: 3 + 13 + 12. dense-array 2x5 (L = 9):
  17 = 7 + 9 + 1.
* s2ta dense 2x2 TPEs of 2x3x1 (3 lanes per output, lane-sum stage: L = 2 + 2 + 3 = 7,
  D = 2*2 = 4, L + D = 11): K = 10 is ceil(10/3) = 4 steps: 4 + 7 + 3 = 14; 2 x 2 tiles of
  K = 30 (S = 10 < 11, drain bound since the lane-sum stage): 10 + 3*11 + 10 = 53.
* s2ta w 3x2 TPEs of 1x1x2 (1 block x nnz_w 4 = 4 lanes per output: L = 3 + 2 + 3 = 8,
  D = 3, L + D = 11): K = 37 is 5 blocks (B = 1: S = 5), 5 + 8 + 2 = 15; K = 16 is S = 2 on
  2 x 2 tiles: 2 + 3*11 + 10 = 45.
* s2ta a 2x1 TPEs of 2x2x3 (2 lanes per output: L = 2 + 1 + 3 = 6, D = 4; output DAP
  stage + 1): K = 16 is 2 blocks; nnz_a = 3 takes ceil(3/2) = 2 steps per block, S = 4:
  4 + 6 + 3 + 1 = 14; nnz_a = 1 takes 1, S = 2: 2 + 6 + 3 + 1 = 12.
* s2ta aw 2x2 TPEs of 2x1x4 (tpe_k = 1: one lane per output, no lane-sum stage:
  L = 2 + 2 + 2 = 6, D = 4, L + D = 10; output DAP stage + 1): 3 blocks x nnz_a 2 = 6 steps:
  6 + 6 + 3 + 1 = 16; 2 x 2 tiles of 1 block x 2 steps: 2 + 3*10 + 9 + 1 = 42.
* highlight 2x3 (4 lanes per output: L = 2 + 3 + 3 = 8, L + R = 10): 4:4,4:4 has 16-value
  groups of T = 4 steps, K = 16 is one group: 1 + 4 + 8 + 1 = 14; 4:6,2:4 has 24-value groups
  of T = 2, K = 72 is 3 groups: 1 + 6 + 9 = 16; 4:7,1:4 has 28-value groups of T = 1, K = 84
  is 3 groups: 1 + 3 + 9 = 13; 4 tiles of K = 64 (4 groups x 4 = 16 steps >= 10):
  1 + 4*16 + 9 = 74.
* sod 3x4, BZ = 2 (L = 9, L + R = 12): the decoders' block register is F = 1 (hw/sod.py,
  ``SodFrontEnd`` Timing: a block taken at edge E gives its first step at E + 1) and every
  block of BZ positions becomes BZ dense steps, so S = ceil(K / BZ) * BZ: K = 5 is 3 blocks,
  S = 6, one tile: 1 + 6 + 9 + 2 = 18; K = 4 is 2 blocks, S = 4 < 12, on 2 x 2 = 4 tiles:
  1 + 4 + 3*12 + 11 = 52.
"""


def _operands(m, k, n, seed):
    """Random int8 A, and W non-zero only at k = 0 mod 8: it meets DBB(8, nnz_w >= 1) and, at
    most one non-zero in any 4 or 8 consecutive k, every HSS pattern of the default set (a
    4:7 group of 28 holds at most 4 of them, each in its own rank-0 block), with rank 1 shared
    by any tile of columns (every column has its non-zeros in the same blocks)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k))
    w = np.zeros((k, n), dtype=np.int64)
    w[::8] = rng.integers(-128, 128, w[::8].shape)
    return a, w


def _case_id(case):
    return case[0]


@pytest.mark.parametrize("case", GEMM_CASES, ids=_case_id)
def test_model_gives_the_hand_count(case):
    """The cycle model (what `sparsegen sim --model` and sweeps print) equals the hand count."""
    _, name, params, (m, k, n), cycles = case
    design = get_design(name)
    config = make_config(design, params)
    a, w = _operands(m, k, n, seed=m + k + n)
    assert design.host.cycles(config, m, k, n) == cycles
    assert design.host.model(design, config, a, w).cycles == cycles


@pytest.mark.verilator
@pytest.mark.parametrize("case", GEMM_CASES, ids=_case_id)
def test_rtl_gives_the_hand_count(case):
    """The layer run on Verilator counts the hand-derived cycles (and matches golden)."""
    _, name, params, (m, k, n), cycles = case
    design = get_design(name)
    config = make_config(design, params)
    a, w = _operands(m, k, n, seed=m + k + n)
    result = design.host.run(design, config, a, w)
    assert result.matches_golden
    assert result.cycles == cycles


# -- SCNN cases ------------------------------------------------------------------------------


def _filters(shape, index, value):
    """Filters [K, C, R, S] of zeros but ``value`` at ``index``."""
    f = np.zeros(shape, dtype=np.int64)
    f[index] = value
    return f


SCNN_CASES = [
    # id, ifmap, filters, pad, cycles
    ("zero-acts-1x1", np.zeros((1, 2, 2), np.int64),
     _filters((1, 1, 1, 1), (0, 0, 0, 0), 3), 0, 19),
    ("dense-acts-1x1", np.ones((1, 4, 4), np.int64),
     np.array([5, -7]).reshape(2, 1, 1, 1), 0, 28),
    ("uneven-load", np.pad(np.ones((1, 2, 2), np.int64), ((0, 0), (0, 2), (0, 2))),
     np.array([5, -7]).reshape(2, 1, 1, 1), 0, 27),
    ("halo-3x3", np.zeros((1, 2, 2), np.int64),
     _filters((1, 1, 3, 3), (0, 0, 1, 1), 2), 1, 45),
    ("two-passes", np.zeros((1, 13, 2), np.int64),
     _filters((1, 1, 1, 1), (0, 0, 0, 0), 3), 0, 86),
    ("two-groups-1x1", np.zeros((1, 2, 2), np.int64),
     np.full((4, 1, 1, 1), 3, np.int64), 0, 26),
]
"""Derivations (default scnn: 2 x 2 PEs, f = i = 2, kc = 2, wt_depth 4; cycle c is edge c + 1).
The horizontal halo rows take two cycles each (the received partial sums are registered at the
PE boundary), so W = kc(3(Ht+R-1) + 2(R-1)) is kc(Ht+R-1) more than the kc(2(Ht+R-1) + 2(R-1))
of before: every count below grows by that per walk that ends a run or holds a DRAIN.
Every pair loads one cycle later than with the one product stage of before (PRODUCT_LATENCY
2: issue, row stage, product stage), so every count below is one more than it was per group
whose compute ends the wait for its DRAIN: two-groups-1x1 two more, each chained layer one.
ACT words travel one per PE column per transfer (``Scnn``'s parallel load): a PE column's
words (its PEs top to bottom) go one per cycle in its lane, so the load takes as many cycles
as the column with the most words (with the one shared ACT word per cycle of before, every
count below that has ACT words was larger by the words beyond the per-column maximum):

* zero-acts-1x1: 2x2 plane, 1x1 filter: tiles Ht = Wt = 1. Words: CONFIG (c0), ACT (one empty
  word per PE: 2 per column, c1-2), WGT (one entry: k = 0 and 1 of the block, c3), DRAIN. The
  entry issues with its channel's one (empty) row at c3 + 3 = c6, is in the row stage at c7,
  in the product stage at c8 and loads into the crossbar at c8 (no live product: nothing to
  grant); the product stage is empty from c9: DRAIN at c9. W = kc(3(Ht+R-1) + 2(R-1)) = 2*3 =
  6: last row at edge 9 + 6 + 4 = 19.
* dense-acts-1x1: 4x4 plane of ones, K = 2: Ht = Wt = 2, 4 activations per PE = 2 rows of i = 2
  (2 ACT words per PE, 4 per column: c1-4), WGT c5; its rows issue at c8 and c9 and load at
  c10 and c11; their 2 x 2 products hit banks {0,1,4,5} and {2,3,6,7} (no conflict) and are
  granted at c11 and c12, where the crossbar empties: DRAIN at c12. W = 2*3*2 = 12: last at
  edge 12 + 12 + 4 = 28.
* uneven-load: dense-acts-1x1 with ones only in PE (0, 0)'s tile: it takes 2 ACT words, the
  other PEs one empty word each, so column 0 has 3 words and column 1 has 2: ACT c1-3 (the
  column maximum: not the 5 words in all, nor any PE's 2). WGT c4; PE (0, 0)'s two rows issue
  at c7 and c8, load at c9 and c10 and are granted at c10 and c11 (as in dense-acts-1x1):
  DRAIN at c11, last at edge 11 + 12 + 4 = 27.
* halo-3x3: 2x2 plane, pad 1, 3x3 filter with only its centre non-zero: Ht = Wt = 2, one WGT
  entry; as zero-acts-1x1 up to DRAIN at c9, then W = kc(3(Ht+R-1) + 2(R-1)) = 2(3*4 + 4) =
  32: the horizontal halo phase costs 2 kc(Ht+R-1) = 16 of them, the vertical one
  2 kc(R-1) = 8. Last at edge 9 + 32 + 4 = 45.
* two-passes: 13x2 plane, 1x1 filter: Ht = 6 (the largest tile), Wt = 1, so the 13 output rows
  take two passes (12 + 1). Each pass is zero-acts-1x1 with W = 2*3*6 = 36: pass 1 DRAIN at
  c9, walk c10-c45; pass 2's CONFIG at c10 (during the walk), ACT c11-12, WGT c13, its entry
  issues at c16 and loads at c18, the product stage is empty from c19, but DRAIN waits for the
  walk: c46 (the walk-bound case). Last row at edge 46 + 36 + 4 = 86.
* two-groups-1x1: zero-acts-1x1 with K = 4, two groups of kc = 2 (one WGT word each): group
  0's DRAIN at c9, its walk c10-c15 (W = 6); group 1's WGT at c10, its entry issues at c13 and
  loads at c15, the product stage is empty from c16: DRAIN at c16 (the walk ended at c15, so
  both bounds give c16). Last row at edge 16 + 6 + 4 = 26.
"""


def _uneven_groups():
    """Filters [4, 1, 3, 3]: kc-group 0 (k 0, 1) with four non-zeros (two WGT words of f = 2),
    kc-group 1 (k 2, 3) with one (one word)."""
    f = np.zeros((4, 1, 3, 3), np.int64)
    f[0:2, 0, 0, 0] = f[0:2, 0, 1, 1] = f[2, 0, 1, 1] = 2
    return f


SCNN_GROUP_CASES = [
    # id, ifmap, filters, pad, groups, cycles
    ("column-groups-1x1", np.zeros((1, 2, 2), np.int64), np.full((4, 1, 1, 1), 3, np.int64),
     0, 2, 19),
    ("uneven-groups-3x3", np.zeros((1, 2, 2), np.int64), _uneven_groups(), 1, 2, 46),
]
"""Derivations for output-channel column groups (default scnn, 2 x 2 PEs, ``groups=2``: two
groups of one column each; each tiles the whole plane on a 2 x 1 sub-grid and takes one of the
two kc-groups, so there is one round, one DRAIN):

* column-groups-1x1: two-groups-1x1's layer (K = 4, two kc-groups), grouped. The 2x2 plane on
  2 x 1 PEs: Ht = 1, Wt = 2. CONFIG c0; ACT: one empty word per PE, both PEs of a column in
  its lane: c1-2; WGT: one transfer carrying kc-group 0's word in column 0's lane and kc-group
  1's in column 1's, c3; as in zero-acts-1x1 the entry issues at c6, loads at c8 (no live
  product) and DRAIN is taken at c9; W = kc(3(Ht+R-1) + 2(R-1)) = 2*3 = 6: last row at edge
  9 + 6 + 4 = 19 (ungrouped, the two kc-groups take two DRAINs: 26).
* uneven-groups-3x3: 2x2 plane, pad 1, 3x3 filter, zero activations: on 2 x 1 PEs Ht = 2
  (ceil((2+2)/2)), Wt = 4. ACT c1-2 as above. Column 0's kc-group has two WGT words, column
  1's one: transfer 0 (both lanes) c3, transfer 1 (column 0's lane only; column 1's invalid,
  its PEs not addressed) c4. Entry 0 issues at c6 and loads at c8; column 0's entry 1 issues at
  c7 (WEIGHT_ENTRY_DELAY after c4; entry 0 has moved on to the product stage) and loads at
  c9; the crossbars are empty from c10: DRAIN at c10. W = 2(3*4 + 2*2) = 32: last row at edge
  10 + 32 + 4 = 46 (one more than halo-3x3's 45: the second WGT word).
"""


@pytest.mark.parametrize("case", SCNN_GROUP_CASES, ids=_case_id)
def test_scnn_groups_model_gives_the_hand_count(case):
    _, ifmap, filters, pad, groups, cycles = case
    design = get_design("scnn")
    config = make_config(design, {})
    result = design.host.model(design, config, ifmap, filters, pad=pad, groups=groups)
    assert (result.cycles, result.conflict_stalls, result.groups) == (cycles, 0, groups)


@pytest.mark.verilator
@pytest.mark.parametrize("case", SCNN_GROUP_CASES, ids=_case_id)
def test_scnn_groups_rtl_gives_the_hand_count(case, scnn_design):
    _, ifmap, filters, pad, groups, cycles = case
    design, config = scnn_design
    result = design.host.run(design, config, ifmap, filters, pad=pad, groups=groups)
    assert result.matches_golden
    assert (result.cycles, result.conflict_stalls) == (cycles, 0)


SCNN_CHAIN = (np.ones((1, 2, 2), np.int64), np.full((1, 1, 1, 1), 3), 0,
              np.full((1, 1, 1, 1), 2), 0, (19, 19))
"""Two chained layers (``--filters2``; ifmap, filters, pad, filters2, pad2, per-layer cycles),
derived by hand: layer 1 is zero-acts-1x1 with ones (ACT c1-2, WGT c3; a live product, issued
c6, row stage c7, loaded c8 (PRODUCT_LATENCY 2), granted at c9, the cycle the crossbar
empties): DRAIN at c9, walk c10-c15 (W = kc(3(Ht+R-1) + 2(R-1)) = 2*3 = 6), last row at c18
(19 cycles). Layer 2's swapping CONFIG waits for the OARAM writes: OARAM_WRITE_LATENCY - 1 = 2
cycles after the last row left, c20. Layer 2 reads ceil(K1 / kc) * kc = 2 channels (the
second, layer 1's padding channel, one zero row), so two WGT words (c21, c22; the second an
empty block). Entry 0 issues at c24, loads at c26 (granted c27); entry 1 issues at c25 (entry 0
is in the row stage, the product stage is empty: the stages advance), loads at c27 with no
live product; the product stage is empty from c28: DRAIN at c28, walk c29-c34, last row at c37
(edge 38): 19 cycles for layer 2 (no ACT words: its input is in the IARAMs), 38 in all."""


@pytest.fixture(scope="module")
def scnn_design():
    """The default ``scnn`` (the build of tests/test_sim_cli.py and tests/test_fast_player.py),
    with its Verilog generated once for the module (elaborating SCNN takes seconds)."""
    design = get_design("scnn")
    config = make_config(design, {})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scnn, "generate", functools.cache(scnn.generate))
        yield design, config


@pytest.mark.parametrize("case", SCNN_CASES, ids=_case_id)
def test_scnn_model_gives_the_hand_count(case):
    _, ifmap, filters, pad, cycles = case
    design = get_design("scnn")
    config = make_config(design, {})
    result = design.host.model(design, config, ifmap, filters, pad=pad)
    assert (result.cycles, result.conflict_stalls) == (cycles, 0)


@pytest.mark.verilator
@pytest.mark.parametrize("case", SCNN_CASES, ids=_case_id)
def test_scnn_rtl_gives_the_hand_count(case, scnn_design):
    _, ifmap, filters, pad, cycles = case
    design, config = scnn_design
    result = design.host.run(design, config, ifmap, filters, pad=pad)
    assert result.matches_golden
    assert (result.cycles, result.conflict_stalls) == (cycles, 0)



def test_scnn_chain_model_gives_the_hand_count():
    ifmap, filters, pad, filters2, pad2, layers = SCNN_CHAIN
    design = get_design("scnn")
    config = make_config(design, {})
    result = design.host.model(design, config, ifmap, filters, pad=pad, filters2=filters2,
                               pad2=pad2)
    assert (result.cycles, result.conflict_stalls) == (sum(layers), 0)
    assert tuple(layer["model_cycles"] for layer in result.layers) == layers


@pytest.mark.verilator
def test_scnn_chain_rtl_gives_the_hand_count(scnn_design):
    ifmap, filters, pad, filters2, pad2, layers = SCNN_CHAIN
    design, config = scnn_design
    result = design.host.run(design, config, ifmap, filters, pad=pad, filters2=filters2,
                             pad2=pad2)
    assert result.matches_golden and (result.output == 6).all()
    assert (result.cycles, result.conflict_stalls) == (sum(layers), 0)
    assert tuple(layer["cycles"] for layer in result.layers) == layers
