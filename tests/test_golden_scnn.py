"""SCNN golden models against independent oracles: the RLE format (hand-computed examples,
runs over 15, round trips, malformed streams) and the convolutions (direct loop, einsum,
the tiled dataflow with halos)."""

import numpy as np
import pytest

from sparsegen.sim.golden import scnn as g
from sparsegen.sim.golden.numeric import TensorError
from sparsegen.sim.stimulus import random_operands


def test_rle_hand_example():
    values, runs = g.encode_rle([0, 0, 5, 0, -3, 0, 0])
    assert values.tolist() == [5, -3]
    assert runs.tolist() == [2, 1]
    assert g.decode_rle(values, runs, 7).tolist() == [0, 0, 5, 0, -3, 0, 0]


def test_rle_long_runs_insert_explicit_zeros():
    seq = [0] * 20 + [7] + [0] * 16 + [0] * 16 + [9]
    values, runs = g.encode_rle(seq)
    # 15 zeros, explicit zero (16th), 4 zeros, 7; then 32 zeros = 2 x (15 + explicit), 9.
    assert values.tolist() == [0, 7, 0, 0, 9]
    assert runs.tolist() == [15, 4, 15, 15, 0]
    assert g.decode_rle(values, runs, len(seq)).tolist() == seq
    assert g.encode_rle([0] * 16)[0].tolist() == [0]        # a trailing explicit zero
    assert g.encode_rle([0] * 15)[0].tolist() == []
    assert g.encode_rle([])[0].tolist() == []


@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 1.0])
def test_rle_round_trip(density):
    rng = np.random.default_rng(int(density * 100))
    for n in (1, 7, 16, 17, 100, 333):
        seq = random_operands(rng, n, 16, density)
        values, runs = g.encode_rle(seq)
        # Independent count: pairs = non-zeros + one explicit zero per 16 zeros in a gap.
        gaps = np.diff(np.concatenate([[-1], np.flatnonzero(seq)]))
        assert len(values) == np.count_nonzero(seq) + int(((gaps - 1) // 16).sum()) + (
            (n - 1 - (np.flatnonzero(seq)[-1] if seq.any() else -1)) // 16)
        assert (g.decode_rle(values, runs, n) == seq).all()


@pytest.mark.parametrize("values, runs, length, message", [
    ([1], [16], 20, "pair 0: run 16 is outside 0..15"),
    ([1, 0], [0, 3], 20, "pair 1: explicit zero with run 3"),
    ([1, 2], [5, 5], 10, "the pairs cover 12 values, more than the sequence length 10"),
])
def test_rle_rejects(values, runs, length, message):
    with pytest.raises(g.RLEError, match=message):
        g.decode_rle(values, runs, length)


def test_weight_and_activation_grouping():
    f = np.zeros((7, 2, 3, 3), dtype=np.int64)
    f[4, 1, 2, 1] = 3                       # group 1 (kc=4), k=0 in it: (r*S + s)*kc + k = 28
    f[6, 1, 0, 0] = 2                       # k=2 at r=s=0: position 2
    blocks = g.encode_weights(f, kc=4)
    assert len(blocks) == 2 and len(blocks[0]) == 2
    values, runs = blocks[1][1]
    # 25 zeros between them: the encoder emits an explicit zero after 16; 7 zeros trail.
    assert values.tolist() == [2, 0, 3] and runs.tolist() == [2, 15, 9]
    assert g.encode_weights(f, kc=4)[1][0][0].tolist() == [0, 0]      # 36 zeros
    tile = np.zeros((1, 2, 3), dtype=np.int64)
    tile[0, 1, 0] = -2                      # row-major position 3
    (values, runs), = g.encode_activations(tile)
    assert values.tolist() == [-2] and runs.tolist() == [3]


def _conv_operands(seed, c, k, h, w, r, s, density=0.5):
    rng = np.random.default_rng(seed)
    return (random_operands(rng, (c, h, w), 16, density),
            random_operands(rng, (k, c, r, s), 16, density))


@pytest.mark.parametrize("shape, pad", [((3, 5, 9, 7, 3, 3), 1), ((2, 3, 6, 5, 1, 1), 0),
                                        ((1, 2, 5, 8, 3, 2), 0), ((4, 1, 4, 4, 3, 3), 2)])
def test_direct_conv_equals_einsum(shape, pad):
    ifmap, filters = _conv_operands(sum(shape), *shape)
    direct = g.conv_direct(ifmap, filters, pad)
    assert direct.shape == (shape[1], shape[2] + 2 * pad - shape[4] + 1,
                            shape[3] + 2 * pad - shape[5] + 1)
    assert (direct == g.conv_einsum(ifmap, filters, pad)).all()


def test_conv_wraps_at_acc_width():
    ifmap = np.full((4, 3, 3), -32768, dtype=np.int64)
    filters = np.full((1, 4, 3, 3), -32768, dtype=np.int64)
    total = 36 * (1 << 30)
    wrapped = ((total + (1 << 23)) % (1 << 24)) - (1 << 23)
    assert g.conv_direct(ifmap, filters)[0, 0, 0] == wrapped
    assert g.conv_einsum(ifmap, filters)[0, 0, 0] == wrapped


@pytest.mark.parametrize("grid, limits", [((1, 1), (16, 16)), ((2, 2), (16, 16)),
                                          ((2, 3), (3, 2)), ((3, 2), (2, 4))])
@pytest.mark.parametrize("shape, pad", [((3, 5, 9, 7, 3, 3), 1), ((2, 4, 6, 5, 1, 1), 0),
                                        ((2, 2, 8, 8, 3, 2), 0)])
def test_dataflow_equals_direct(grid, limits, shape, pad):
    ifmap, filters = _conv_operands(7, *shape, density=0.6)
    r, s = shape[4:]
    try:
        plan = g.plan_tiles(shape[2], shape[3], r, s, pad, *grid, *limits)
    except TensorError:
        assert limits[0] < r - 1 or limits[1] < s - 1
        return
    assert (g.dataflow_conv(ifmap, filters, pad, plan) == g.conv_einsum(ifmap, filters, pad)
            ).all()


def test_dataflow_needs_the_halo_exchange():
    """Dropping the exchange changes the result (the test of the halos can fail)."""
    ifmap, filters = _conv_operands(3, 2, 2, 6, 6, 3, 3, density=1.0)
    plan = g.plan_tiles(6, 6, 3, 3, 1, 2, 2, 8, 8)
    region = g.pad_input(ifmap, 1, plan, 0, 0)
    frame = g.frame_of_tile(region[:, :plan.ht, :plan.wt], filters)
    own = frame[:, 2:, 2:]
    assert not (own == g.conv_einsum(ifmap, filters, 1)[:, :plan.ht, :plan.wt]).all()


def test_plan_rejects_small_tiles():
    with pytest.raises(TensorError, match="needs tiles of at least 4"):
        g.plan_tiles(20, 20, 5, 5, 0, 2, 2, 3, 3)
    # One PE of one-column tiles cannot hold a 1x2 filter's two columns: the message names
    # the tile it needs (it used to say "at least 1" with `max_tile_w` 1).
    with pytest.raises(TensorError, match=r"needs tiles of at least 2 \(`max_tile_w` is 1\)"):
        g.plan_tiles(3, 3, 1, 2, 0, 1, 1, 3, 1)


def test_macs_nonzero_counts_products():
    ifmap = np.ones((2, 4, 4), dtype=np.int64)
    filters = np.ones((3, 2, 3, 3), dtype=np.int64)
    assert g.macs_nonzero(ifmap, filters, 0) == 3 * 2 * 9 * 4
    ifmap[0] = 0
    assert g.macs_nonzero(ifmap, filters, 0) == 3 * 9 * 4
