"""The converter's MAC count follows convolutions whose input shape is only known at run time."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="needs the [convert] extra")


def _causal_pad_conv() -> object:
    """x [1,2,8] -> Pad(pads computed from ConstantOfShape/Concat/Reshape/Transpose, as PyTorch exports a
    causal pad) -> [1,2,10] -> Conv(4 out, kernel 3) -> [1,4,8]."""
    from onnx import TensorProto
    from onnx import helper as h
    from onnx import numpy_helper as nh

    def const(name: str, arr: list[int]) -> object:
        return h.make_node("Constant", [], [name], value=nh.from_array(np.array(arr, np.int64)))

    nodes = [const("two", [2]), const("n", [5]),
             h.make_node("ConstantOfShape", ["n"], ["zeros"], value=nh.from_array(np.array([0], np.int64))),
             h.make_node("Concat", ["zeros", "two"], ["p0"], axis=0),
             const("rs", [-1, 2]), h.make_node("Reshape", ["p0", "rs"], ["p1"]),
             h.make_node("Transpose", ["p1"], ["p2"], perm=[1, 0]),
             const("flat", [-1]), h.make_node("Reshape", ["p2", "flat"], ["pads"]),
             h.make_node("Pad", ["x", "pads"], ["xp"]),
             h.make_node("Conv", ["xp", "W"], ["y"])]
    g = h.make_graph(nodes, "causal", [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8])],
                     [h.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, None])],
                     [nh.from_array(np.ones((4, 2, 3), np.float32), "W")])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 13)])


def test_macs_counted_behind_a_computed_pad():
    from edgeaffect_converters.onnx_checks import count_macs_params

    m = _causal_pad_conv()
    inferred = onnx.shape_inference.infer_shapes(m, data_prop=True)
    known = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    assert 0 in known.get("xp", [0]), "precondition: static shape inference cannot see through the computed pad"
    macs, params = count_macs_params(m)
    assert macs == 1 * 4 * 8 * (2 * 3)   # output elements x (in channels x kernel)
    assert params == 4 * 2 * 3


def test_free_input_dimension_does_not_crash():
    from edgeaffect_converters.onnx_checks import count_macs_params

    m = _causal_pad_conv()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "T"
    assert count_macs_params(m)[1] == 24   # MACs unknown for a free length; parameters still counted


def test_shipped_manifests_carry_the_converters_count():
    """`edgeaffect inspect` prints the manifest's MACs and the README table reads them: they must be the
    converter's count of the float ONNX the model was converted from (else: python scripts/recount_macs.py)."""
    import json
    from pathlib import Path

    from edgeaffect_converters.onnx_checks import count_macs_params

    from edgeaffect.runtime.manifest import sha256_file

    repo = Path(__file__).resolve().parents[1]
    checked = 0
    for man_path in sorted((repo / "edgeaffect" / "models" / "assets").glob("*_*.json")):
        man = json.loads(man_path.read_text())
        src = repo / "models" / man["name"] / man["source"]["file"]
        if not src.is_file() or sha256_file(src) != man["source"]["sha256"]:
            continue
        assert man["macs"] == count_macs_params(onnx.load(str(src)))[0], man_path.name
        checked += 1
    assert checked, "no shipped model with its ONNX source in models/"
