"""HSS golden formats against independent oracles: plain loops and brute-force subset search.

The prune oracle does not sort: it enumerates every choice of kept positions (rank 0) and of
kept blocks (rank 1) and picks the best by the issue's rule (largest sum of |w|, ties to the
lower indices), with Python's exact ``abs``.
"""

import itertools

import numpy as np
import pytest

from sparsegen.sim.golden.hss import (
    HSSPattern,
    HSSViolation,
    WeightHSS,
    check_weights,
    decode_weights,
    encode_weights,
    parse_pattern,
    prune_weights,
)
from sparsegen.sim.golden.numeric import TensorError

# -- oracles ---------------------------------------------------------------------------------


def oracle_best(scores, g, *, lower_wins=True):
    """Indices of the ``g`` entries of ``scores`` with the largest total, by exhaustive search.

    Equal totals go to the lexicographically smallest sorted index tuple (the lower indices).
    """
    best, best_key = None, None
    for subset in itertools.combinations(range(len(scores)), min(g, len(scores))):
        tie = tuple(-i for i in subset) if lower_wins else subset
        key = (sum(scores[i] for i in subset), tie)
        if best_key is None or key > best_key:
            best, best_key = subset, key
    return set(best)


def oracle_prune(w, p, *, lower_wins=True):
    """Plain-loop HSS prune of W[K, N] (lists), rank 0 then rank 1."""
    k, n = len(w), len(w[0])
    out = [[0] * n for _ in range(k)]
    size = p.h1 * p.h0
    for col in range(n):
        for g0 in range(0, k, size):
            blocks = []
            for b in range(p.h1):
                start = g0 + b * p.h0
                pos = [start + i for i in range(p.h0) if start + i < k]
                vals = [int(w[r][col]) for r in pos]
                keep = oracle_best([abs(v) for v in vals], p.g0, lower_wins=lower_wins)
                blocks.append([(r, v if i in keep else 0) for i, (r, v) in
                               enumerate(zip(pos, vals))])
            sums = [sum(abs(v) for _, v in block) for block in blocks]
            for b in oracle_best(sums, p.g1, lower_wins=lower_wins):
                for r, v in blocks[b]:
                    out[r][col] = v
    return out


def oracle_valid(w, p):
    """True iff W (lists) satisfies HSS ``p``, by plain loops."""
    k, n = len(w), len(w[0])
    for col in range(n):
        for g0 in range(0, k, p.h1 * p.h0):
            nonempty = 0
            for b in range(p.h1):
                start = g0 + b * p.h0
                count = sum(1 for r in range(start, min(start + p.h0, k)) if w[r][col] != 0)
                if count > p.g0:
                    return False
                nonempty += count > 0
            if nonempty > p.g1:
                return False
    return True


def tie_rich(rng, shape, width=8):
    lo, hi = -2 ** (width - 1), 2 ** (width - 1) - 1
    v = int(rng.integers(1, hi))
    palette = [lo, hi, -hi, v, -v, v, 1, -1, 0, 0, 0]
    return rng.choice(np.array(palette, dtype=np.int64), size=shape)


def random_values(rng, shape, density, width=8):
    lo, hi = -2 ** (width - 1), 2 ** (width - 1) - 1
    x = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    return np.where(rng.random(shape) < density, x, 0)


PATTERNS = [parse_pattern(t) for t in ("4:4,4:4", "4:5,2:4", "4:6,2:4", "4:7,1:4", "2:3,1:2",
                                       "1:4,3:4", "3:3,1:1", "1:1,2:3", "2:5,2:2")]


# -- patterns --------------------------------------------------------------------------------


def test_pattern_parse_and_properties():
    p = parse_pattern(" 4:6 , 2:4 ")
    assert p == HSSPattern(4, 6, 2, 4) and str(p) == "4:6,2:4"
    assert p.group_size == 24 and p.density == pytest.approx(8 / 24) and not p.dense
    assert parse_pattern(((4, 4), (4, 4))).dense


@pytest.mark.parametrize("text, message", [
    ("4:6", "HSS pattern must look like 'G1:H1,G0:H0' (e.g. 4:6,2:4), not '4:6'"),
    ("5:4,2:4", "rank-1 pattern 5:4 must have 1 <= G <= H"),
    ("4:4,0:4", "rank-0 pattern 0:4 must have 1 <= G <= H"),
])
def test_pattern_rejects(text, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        parse_pattern(text)


# -- check and encode/decode against loops --------------------------------------------------


@pytest.mark.parametrize("p", PATTERNS, ids=str)
def test_check_matches_loops(p):
    rng = np.random.default_rng(p.group_size * 7 + p.g1)
    k = 2 * p.group_size + max(1, p.group_size // 2)          # a partial last group
    verdicts = set()
    for trial in range(60):
        w = random_values(rng, (k, 3), float(rng.choice([0.05, 0.2, 0.5, 0.9])))
        if trial % 3 == 0:
            w = prune_weights(w, p)
        expected = oracle_valid(w.tolist(), p)
        verdicts.add(expected)
        if expected:
            check_weights(w, p)
            enc = encode_weights(w, p)
            assert decode_weights(enc).tolist() == w.tolist()
        else:
            with pytest.raises(HSSViolation):
                check_weights(w, p)
    assert verdicts == ({True} if p.dense else {True, False})


def test_encoding_layout_by_hand():
    p = parse_pattern("2:3,2:4")
    # One group of 12 (3 blocks of 4), two columns; column 1 has block 1 empty.
    w = np.zeros((12, 2), dtype=np.int64)
    w[[1, 3], 0] = [5, -6]          # block 0: offsets 1, 3
    w[[9], 0] = [7]                 # block 2: offset 1
    w[[0, 2], 1] = [-1, 2]          # block 0
    w[[8, 11], 1] = [3, 4]          # block 2
    enc = encode_weights(w, p)
    assert enc.blocks.tolist() == [[[0, 2], [0, 2]]]
    assert enc.values.tolist() == [[[[5, -6], [7, 0]], [[-1, 2], [3, 4]]]]
    assert enc.offsets.tolist() == [[[[1, 3], [1, 0]], [[0, 2], [0, 3]]]]
    # Fewer non-empty blocks than G1: unused slots name block 0 and hold zeros.
    one = np.zeros((12, 1), dtype=np.int64)
    one[6, 0] = 9
    enc = encode_weights(one, p)
    assert enc.blocks.tolist() == [[[1, 0]]] and enc.values.tolist() == [[[[9, 0], [0, 0]]]]
    assert decode_weights(enc).tolist() == one.tolist()


def test_violation_names_first_bad_group():
    p = parse_pattern("4:6,2:4")
    w = np.zeros((50, 3), dtype=np.int64)
    w[[25, 26, 27], 2] = 1                      # group 1 (k=24..47), block k=24..27: 3 > 2
    w[[0, 4, 8, 12, 16], 1] = 1                 # group 0 of column 1: 5 non-empty blocks
    with pytest.raises(HSSViolation, match=r"^weight `W` breaks HSS 4:6,2:4: group k=0\.\.23 "
                       r"of column n=1 has 5 non-empty rank-0 blocks \(at most 4 allowed\)$"):
        check_weights(w, p)
    w[:, 1] = 0
    with pytest.raises(HSSViolation, match=r"^weight `W` breaks HSS 4:6,2:4: group k=24\.\.47 "
                       r"of column n=2 has 3 non-zeros in rank-0 block k=24\.\.27 "
                       r"\(at most 2 allowed\)$"):
        check_weights(w, p)
    # The last group is partial (K = 50): its range is reported as it really is.
    w[:, 2] = 0
    w[[48, 49], 0] = 1
    check_weights(w, p)
    with pytest.raises(HSSViolation, match=r"group k=48\.\.49 of column n=0 has 2 non-zeros "
                       r"in rank-0 block k=48\.\.49 \(at most 1 allowed\)"):
        check_weights(w, "4:6,1:4")


def test_bad_tensors_and_encodings():
    with pytest.raises(TensorError, match="expected 2 dimensions"):
        check_weights(np.zeros(8, dtype=np.int64), "4:4,4:4")
    enc = encode_weights(np.ones((8, 1), dtype=np.int64), "2:2,4:4")
    bad = WeightHSS(enc.blocks + 5, enc.values, enc.offsets, enc.pattern, enc.k)
    with pytest.raises(ValueError, match="block index 5 at .* is outside 0..1"):
        decode_weights(bad)


# -- prune against the brute-force oracle ----------------------------------------------------


@pytest.mark.parametrize("p", PATTERNS, ids=str)
def test_prune_matches_brute_force(p):
    rng = np.random.default_rng(p.group_size * 13 + p.g0)
    k = 2 * p.group_size + max(1, p.group_size - 1)
    for trial in range(6):
        w = tie_rich(rng, (k, 4)) if trial % 2 else random_values(rng, (k, 4), 0.8)
        pruned = prune_weights(w, p)
        assert pruned.dtype == np.int64 and pruned.shape == w.shape
        assert pruned.tolist() == oracle_prune(w.tolist(), p), trial
        check_weights(pruned, p)
        assert prune_weights(pruned, p).tolist() == pruned.tolist()     # idempotent


def test_prune_rules_by_hand():
    p = parse_pattern("1:2,1:2")
    # Rank 0 keeps the larger |w| (ties low), then rank 1 the block with the larger sum.
    w = np.array([[3], [-3], [-128], [127]])
    assert prune_weights(w, p).tolist() == [[0], [0], [-128], [0]]
    w = np.array([[5], [0], [0], [-5]])              # equal block sums: the lower block
    assert prune_weights(w, p).tolist() == [[5], [0], [0], [0]]
    # Rank 0 happens first: block 1's sum counts only what rank 0 kept.
    p = parse_pattern("1:2,1:2")
    w = np.array([[6], [0], [4], [4]])
    assert prune_weights(w, p).tolist() == [[6], [0], [0], [0]]
    assert prune_weights(np.array([[6], [0], [4], [4]]), "1:2,2:2").tolist() == \
        [[0], [0], [4], [4]]


def test_a_wrong_tie_rule_would_be_caught():
    p = parse_pattern("2:4,1:2")
    rng = np.random.default_rng(9)
    w = tie_rich(rng, (16, 6))
    right = oracle_prune(w.tolist(), p)
    wrong = oracle_prune(w.tolist(), p, lower_wins=False)
    assert right != wrong
    assert prune_weights(w, p).tolist() == right


# -- rank 1 shared by tiles of columns (the highlight array's format) --------------------------


def oracle_prune_shared(w, p, share):
    """Plain loops: rank 0 per column (as :func:`oracle_prune`), then per group and tile of
    ``share`` columns the G1 blocks with the largest |w| summed over the tile's columns."""
    k, n = len(w), len(w[0])
    ranked0 = oracle_prune(w, HSSPattern(p.h1, p.h1, p.g0, p.h0))      # rank 0 only
    out = [[0] * n for _ in range(k)]
    size = p.h1 * p.h0
    for first in range(0, n, share):
        cols = range(first, min(first + share, n))
        for g0 in range(0, k, size):
            sums = [sum(abs(ranked0[r][c]) for c in cols
                        for r in range(g0 + b * p.h0, min(g0 + (b + 1) * p.h0, k)))
                    for b in range(p.h1)]
            for b in oracle_best(sums, p.g1):
                for r in range(g0 + b * p.h0, min(g0 + (b + 1) * p.h0, k)):
                    for c in cols:
                        out[r][c] = ranked0[r][c]
    return out


def oracle_valid_shared(w, p, share):
    """True iff W meets HSS ``p`` with rank 1 shared by tiles of ``share`` columns (loops)."""
    k, n = len(w), len(w[0])
    if not oracle_valid(w, HSSPattern(p.h1, p.h1, p.g0, p.h0)):
        return False
    for first in range(0, n, share):
        for g0 in range(0, k, p.h1 * p.h0):
            used = sum(1 for b in range(p.h1) if any(
                w[r][c] != 0 for c in range(first, min(first + share, n))
                for r in range(g0 + b * p.h0, min(g0 + (b + 1) * p.h0, k))))
            if used > p.g1:
                return False
    return True


@pytest.mark.parametrize("p", [parse_pattern(t) for t in ("4:6,2:4", "4:7,1:4", "2:3,1:2",
                                                          "1:4,3:4")], ids=str)
@pytest.mark.parametrize("share", [2, 3])
def test_shared_prune_check_and_encoding_match_loops(p, share):
    rng = np.random.default_rng(p.group_size + 31 * share)
    k, n = 2 * p.group_size + 3, 5                         # a partial group and a partial tile
    verdicts = set()
    for trial in range(8):
        w = tie_rich(rng, (k, n)) if trial % 2 else random_values(rng, (k, n), 0.7)
        pruned = prune_weights(w, p, share=share)
        assert pruned.tolist() == oracle_prune_shared(w.tolist(), p, share), trial
        assert prune_weights(pruned, p, share=share).tolist() == pruned.tolist()
        enc = encode_weights(pruned, p, share=share)
        for first in range(0, n, share):           # every column of a tile names the same blocks
            assert (enc.blocks[:, first:first + share] == enc.blocks[:, first:first + 1]).all()
        assert decode_weights(enc).tolist() == pruned.tolist()
        plain = prune_weights(w, p)                # plain HSS: valid per column, maybe not shared
        verdicts.add(oracle_valid_shared(plain.tolist(), p, share))
        if oracle_valid_shared(plain.tolist(), p, share):
            check_weights(plain, p, share=share)
        else:
            with pytest.raises(HSSViolation, match=f"with rank 1 shared by {share} columns"):
                check_weights(plain, p, share=share)
    assert False in verdicts


def test_shared_violation_names_the_tile():
    p = parse_pattern("2:3,2:4")
    w = np.zeros((24, 5), dtype=np.int64)
    w[0, 3], w[4, 3], w[8, 4] = 1, 1, 1         # tile n=3..4 of group 0: blocks 0, 1, 2
    check_weights(w, p)                          # each column alone is fine
    check_weights(w, p, share=2)                 # tiles n=0..1, 2..3, 4: fine
    with pytest.raises(HSSViolation, match=r"^weight `W` breaks HSS 2:3,2:4 with rank 1 shared "
                       r"by 3 columns: group k=0\.\.11 of columns n=3\.\.4 has 3 rank-0 blocks "
                       r"non-empty in some column \(at most 2 allowed\)$"):
        check_weights(w, p, share=3)
    with pytest.raises(HSSViolation, match="columns n=0..4 has 3"):
        check_weights(w, p, share=None)
    with pytest.raises(ValueError, match=r"^`share` must be a positive int or None, not 0$"):
        check_weights(w, p, share=0)
    enc = encode_weights(w, p, share=2)          # tile n=2..3 names column 3's blocks 0, 1
    assert enc.blocks[0, 2:4].tolist() == [[0, 1], [0, 1]]
    assert enc.values[0, 2].tolist() == [[0, 0], [0, 0]] and enc.blocks[0, 4].tolist() == [2, 0]
