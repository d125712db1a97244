"""converters/equalize.py: the cross-layer equalisation and head fusion are exact float rewrites.

A tiny random BlazeFace-like ONNX (conv+ReLU stem, a residual block of depthwise -> 1x1 pairs,
a 1x1 -> zero pad -> depthwise head clamped at the output) with a few deliberately loud
channels: every rewrite must give the same outputs under onnxruntime, and must actually change
the weights and even out the channel ranges it targets (a no-op would pass exactness alone).
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgeaffect_converters.equalize import (  # noqa: E402
    activation_ranges,
    equalize,
    equalize_onnx,
    equalize_streams_onnx,
    find_pairs,
    find_streams,
    fuse_heads,
    max_output_difference,
)


def _tiny(relu6_inside: bool = False):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def w(name: str, shape: tuple[int, ...], loud: float = 1.0) -> str:
        v = rng.normal(0, 0.3, shape).astype(np.float32)
        if loud != 1.0:
            v[: max(1, shape[0] // 4)] *= loud  # a few loud output channels
        inits.append(numpy_helper.from_array(v, name))
        return name

    def const(name: str, v) -> str:
        inits.append(numpy_helper.from_array(np.asarray(v), name))
        return name

    pad = const("pad_hw", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))

    def conv(x: str, out: str, wshape: tuple[int, ...], group: int = 1, loud: float = 1.0, pads=(0, 0, 0, 0)) -> str:
        nodes.append(helper.make_node("Conv", [x, w(out + "_w", wshape, loud), w(out + "_b", (wshape[0],))], [out],
                                      group=group, pads=list(pads), kernel_shape=list(wshape[2:])))
        return out

    def zpad(x: str, out: str) -> str:
        nodes.append(helper.make_node("Pad", [x, pad], [out], mode="constant"))
        return out

    def act(x: str, out: str) -> str:
        if relu6_inside:
            nodes.append(helper.make_node("Clip", [x, const(out + "_lo", np.float32(0)), const(out + "_hi", np.float32(6))], [out]))
        else:
            nodes.append(helper.make_node("Relu", [x], [out]))
        return out

    nodes.append(helper.make_node("Relu", [conv("x", "c0", (8, 3, 3, 3), loud=20.0, pads=(1, 1, 1, 1))], ["r0"]))
    d1 = conv(zpad("r0", "p1"), "dw1", (8, 1, 3, 3), group=8, loud=30.0)
    r1 = act(conv(d1, "pw1", (4, 8, 1, 1), loud=15.0), "r1")
    d2 = conv(zpad(r1, "p2"), "dw2", (4, 1, 3, 3), group=4, loud=10.0)
    nodes.append(helper.make_node("Add", ["r0", conv(d2, "pw2", (8, 4, 1, 1))], ["a0"]))
    nodes.append(helper.make_node("Relu", ["a0"], ["r2"]))
    h = conv(zpad(conv("r2", "head_pw", (4, 8, 1, 1), loud=40.0), "p3"), "head_dw", (4, 1, 3, 3), group=4)
    nodes.append(helper.make_node("DepthToSpace", [h], ["d2s"], blocksize=2, mode="DCR"))
    nodes.append(helper.make_node("Reshape", ["d2s", const("shape", np.array([1, -1, 1], np.int64))], ["raw"]))
    nodes.append(helper.make_node("Clip", ["raw", const("clo", np.float32(-5)), const("chi", np.float32(5))], ["scores"]))
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 576, 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(m)
    return m


def _frames(n: int = 6) -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (n, 3, 12, 12)).astype(np.float32)


def _exact(a, b, x: np.ndarray) -> bool:
    """Same outputs up to float32 rounding: max |difference| <= 1e-5 of the largest value the
    head computes before its clamp (the rounding of the rewritten sums is relative to that)."""
    scale = float(activation_ranges(a, x, ["raw"])["raw"].max())
    assert scale > 1.0
    return max_output_difference(a, b, x) <= 1e-5 * scale


def _changed(a, b) -> int:
    from onnx import numpy_helper

    wa = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    wb = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    return sum(1 for n in b.graph.node for i in n.input if i.startswith("cle_") and i[4:] in wa and not np.allclose(wb[i], wa[i[4:]]))


def test_pairs_found_and_rewrite_is_exact() -> None:
    m = _tiny()
    kinds = sorted(p.kind for p in find_pairs(m))
    assert kinds == ["dw_pw", "dw_pw", "pw_dw", "relu_dw"]
    x = _frames()
    eq, rep = equalize_onnx(m, x)
    assert len(rep) == 4 and _changed(m, eq) >= 6
    assert _exact(m, eq, x)
    # the ReLU output between pw1 and dw2 (free to equalise) ends with every channel at one range
    r1 = next(r for r in rep if r["kind"] == "relu_dw")
    assert r1["range_max_over_median_before"] > 1.3 and r1["range_max_over_median_after"] == pytest.approx(1.0)
    after = activation_ranges(eq, x, ["r1"])["r1"]
    assert after.max() / after.min() < 1.01


def test_no_pair_through_relu6() -> None:
    assert "relu_dw" not in {p.kind for p in find_pairs(_tiny(relu6_inside=True))}  # Clip(0, 6) is not homogeneous


def test_streams_cover_the_residual_add_and_stay_exact() -> None:
    m = _tiny()
    streams = find_streams(m)
    resid = [s for s in streams if "a0" in s.tensors]
    assert len(resid) == 1 and {"r0", "a0", "r2", "p1"} <= set(resid[0].tensors)
    x = _frames()
    eq, rep = equalize_streams_onnx(m, x)
    assert rep and _changed(m, eq) >= 4
    assert _exact(m, eq, x)
    before, after = (activation_ranges(k, x, ["r0"])["r0"] for k in (m, eq))
    assert after.max() / np.median(after) < before.max() / np.median(before)


def test_fused_head_is_exact_and_bounded_to_the_clamp() -> None:
    m = _tiny()
    x = _frames()
    for bound in (False, True):
        fused, rep = fuse_heads(m, bound=bound, ones_level=4.0)
        assert len(rep) == 1 and rep[0]["bias_channel"]
        ops = [n.op_type for n in fused.graph.node]
        assert "Pad" in ops and ops.count("Conv") == 6  # 7 convs, the head's two became one
        assert _exact(m, fused, x)
        if bound:  # the fused conv is followed directly by ReLU6 (fused by the converter)
            conv = next(n for n in fused.graph.node if n.name.endswith("_conv"))
            nxt = [n for n in fused.graph.node if conv.output[0] in n.input]
            assert [n.op_type for n in nxt] == ["Clip"]


def test_equalize_without_data_uses_weights_and_is_exact() -> None:
    m = _tiny()
    eq, rep = equalize(m)
    assert rep and _exact(m, eq, _frames())
