"""Workloads: the shipped shapes, seeded tensors at exact nested densities, and the fitting of
one layer's tensors to each design's format."""

import numpy as np
import pytest

from sparsegen.gen.registry import get_design, make_config
from sparsegen.sim import workloads as wl
from sparsegen.sim.golden import dbb as gdbb
from sparsegen.sim.golden import hss as ghss
from sparsegen.sim.layer import im2col


def test_shipped_workloads_name_their_sources_and_cover_the_four_networks():
    shipped = wl.load_workloads()
    for model in ("resnet50", "mobilenetv2", "vgg16", "bert"):
        assert sum(name.startswith(model + ".") for name in shipped) >= 3, model
    for w in shipped.values():
        assert w.source, w.name
    # Spot checks against the papers (hand-computed GEMM shapes).
    assert shipped["resnet50.conv3_3x3"].gemm_shape == (28 * 28, 3 * 3 * 128, 128)
    assert shipped["bert.ffn1"].gemm_shape == (128, 768, 3072)
    assert shipped["mobilenetv2.b3_expand"].gemm_shape == (56 * 56, 24, 144)
    assert shipped["vgg16.fc7"].macs == 4096 * 4096


def test_bad_workload_entries_are_named(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('[net.l1]\nkind = "conv"\nC = 3\nH = 0\nW = 4\nK = 2\nR = 1\nS = 1\n'
                    'stride = 1\npad = 0\n')
    with pytest.raises(ValueError, match="workload `net.l1`: `H` must be a positive integer"):
        wl.load_workloads(path)


@pytest.mark.parametrize("name", ["test.tiny_gemm", "test.tiny_conv"])
def test_tensors_are_deterministic_exact_and_nested(name):
    layer = wl.load_workloads()[name]
    dense = wl.tensors(layer, 1.0, 1.0, seed=5)
    half = wl.tensors(layer, 0.5, 0.3, seed=5)
    again = wl.tensors(layer, 0.5, 0.3, seed=5)
    other = wl.tensors(layer, 0.5, 0.3, seed=6)
    assert np.array_equal(half.w, again.w) and np.array_equal(half.a, again.a)
    assert not np.array_equal(half.w, other.w)
    weights = dense.filters if layer.kind == "conv" else dense.w
    sparse = half.filters if layer.kind == "conv" else half.w
    assert np.count_nonzero(weights) == weights.size                 # density 1: no zeros
    assert np.count_nonzero(sparse) == round(0.5 * sparse.size)      # exact count
    kept = sparse != 0
    assert np.array_equal(sparse[kept], weights[kept])              # same values, a subset
    assert np.abs(weights).max() <= 127
    if layer.kind == "conv":
        a, w, _ = im2col(half.ifmap, half.filters, stride=1, padding=layer.dims["pad"])
        assert np.array_equal(a, half.a) and np.array_equal(w, half.w)
    assert not wl.tensors(layer, 0.0, 0.0, seed=5).w.any()


def test_fitting_keeps_what_each_format_can_hold():
    layer = wl.load_workloads()["test.tiny_gemm"]
    ops = wl.tensors(layer, 0.5, 0.5, seed=2)
    s2ta = get_design("s2ta")
    fitted = wl.fit(s2ta.host, make_config(s2ta, dict(variant="aw", block_size=4, nnz_w=1)),
                    layer, ops, act_density=0.5, weight_density=0.5)
    w = fitted.args[1]
    gdbb.check_weights(w, 4, 1)                                    # meets DBB(4, 1)
    assert np.array_equal(w[w != 0], ops.w[w != 0])                # a subset of the non-zeros
    assert fitted.config.nnz_a == 2                                # ceil(0.5 * 4)
    assert fitted.weight_density < 0.5
    hl = get_design("highlight")
    fitted = wl.fit(hl.host, make_config(hl, {}), layer, ops, act_density=0.5,
                    weight_density=0.5)
    g1, h1, g0, h0 = fitted.config.active
    assert g1 * g0 / (h1 * h0) >= 0.5
    ghss.check_weights(fitted.args[1], ghss.HSSPattern(g1, h1, g0, h0))
    dense = get_design("sod")
    fitted = wl.fit(dense.host, make_config(dense, {}), layer, ops, 0.5, 0.5)
    assert fitted.args[1] is ops.w and fitted.weight_density == 0.5


def test_which_design_can_run_what():
    shipped = wl.load_workloads()
    scnn = get_design("scnn").host
    assert wl.cannot_run(scnn, shipped["bert.qkv"]) == "runs convolutions only, not a GEMM layer"
    assert wl.cannot_run(scnn, shipped["test.tiny_conv"]) is None
    assert wl.cannot_run(get_design("sod").host, shipped["test.tiny_conv"]) is None
    assert "building block" in wl.cannot_run(get_design("dbb-pe").host, shipped["bert.qkv"])
