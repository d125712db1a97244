"""A tiny ONNX network built with onnx.helper, for tests and for trying the converter.

Conv(8, 3x3, stride 2) + ReLU -> Flatten -> three Gemm heads:
  `logits` [1,8], `embedding` [1,8] (same shape as logits on purpose: binding outputs by
  position or by shape would silently swap them) and `score` [1,1].
Input `x` [1,1,32,32] (or a dynamic batch dim with dynamic=True). Pure numpy + onnx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_tiny_onnx(path: str | Path, *, dynamic: bool = False, custom_op: bool = False, seed: int = 0) -> Path:
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    rng = np.random.default_rng(seed)

    def init(name: str, a: np.ndarray):
        return nh.from_array(a.astype(np.float32), name)

    feat = 8 * 16 * 16
    inits = [
        init("w_conv", rng.normal(0, 0.4, (8, 1, 3, 3))), init("b_conv", rng.normal(0, 0.05, 8)),
        init("w_logits", rng.normal(0, 0.05, (feat, 8))), init("b_logits", rng.normal(0, 0.1, 8)),
        init("w_emb", rng.normal(0, 0.05, (feat, 8))), init("b_emb", rng.normal(0, 0.1, 8)),
        init("w_score", rng.normal(0, 0.05, (feat, 1))), init("b_score", np.zeros(1)),
    ]
    nodes = [
        h.make_node("Conv", ["x", "w_conv", "b_conv"], ["conv"], name="stem/conv", strides=[2, 2], pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["conv"], ["relu"], name="stem/relu"),
        h.make_node("Flatten", ["relu"], ["flat"], name="flatten"),
        h.make_node("Gemm", ["flat", "w_logits", "b_logits"], ["logits"], name="head/logits"),
        h.make_node("Gemm", ["flat", "w_emb", "b_emb"], ["embedding"], name="head/embedding"),
        h.make_node("Gemm", ["flat", "w_score", "b_score"], ["score"], name="head/score"),
    ]
    if custom_op:
        nodes.append(h.make_node("FancyNorm", ["score"], ["score2"], name="custom", domain="com.example"))
    batch = "N" if dynamic else 1
    outs = [("logits", 8), ("embedding", 8), ("score2" if custom_op else "score", 1)]
    g = h.make_graph(
        nodes, "tiny", [h.make_tensor_value_info("x", T.FLOAT, [batch, 1, 32, 32])],
        [h.make_tensor_value_info(n, T.FLOAT, [batch, k]) for n, k in outs], inits,
    )
    opsets = [h.make_opsetid("", 13)] + ([h.make_opsetid("com.example", 1)] if custom_op else [])
    m = h.make_model(g, opset_imports=opsets, producer_name="edgeaffect-tests")
    m.ir_version = 8
    p = m.metadata_props.add()
    p.key, p.value = "edgeaffect.kind", "generic"
    p = m.metadata_props.add()
    p.key, p.value = "edgeaffect.labels", '["a", "b", "c", "d", "e", "f", "g", "h"]'
    onnx.save(m, str(path))
    return Path(path)


def tiny_calibration(n: int = 96, scale: float = 1.0, seed: int = 1) -> np.ndarray:
    """[n, 32, 32, 1] float32 in [0, scale] (NHWC, the TFLite layout)."""
    return (np.random.default_rng(seed).uniform(0, 1, (n, 32, 32, 1)) * scale).astype(np.float32)
