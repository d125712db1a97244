"""Export MediaPipe's BlazeFace detectors to ONNX for the project's converter.

    python scripts/build_detector_onnx.py                # short range -> models/detector/detector.onnx
    python scripts/build_detector_onnx.py --full-range   # full range  -> models/detector_full/detector_full.onnx
    # needs the [train] extra + tf2onnx==1.17.0

Sources: face_detection_short_range.tflite (128x128, 896 anchors) and
face_detection_full_range_sparse.tflite (192x192, 2304 anchors: faces down to ~1/20 of the
frame, kiosk distances) inside the `mediapipe==0.10.21` wheel (Apache-2.0). tf2onnx
re-expresses the float graph in ONNX with an NCHW input, so it goes through the same
`edgeaffect convert` path (calibration on real frames, fidelity gate, manifest) as the
project's own networks. The full-range file stores its 1x1 conv weights sparse (TFLite
DENSIFY ops), which tf2onnx cannot read: the dense weights are taken from LiteRT's own
DENSIFY outputs and DENSIFY becomes an Identity (the exported graph is checked against the
original .tflite on a real photo). The anchor layout goes into `edgeaffect.anchors`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


#: Output clamps added before conversion. A few anchors regress to values in the thousands
#: (meaningless anchors far from any face); they set the int8 output scale to ~50 px per
#: step. Real boxes/keypoints lie within the clamp (input-pixel units: a face at most as wide
#: as the input, keypoints at most ~half a face from their anchor) and decided scores within
#: logits of +-20 (sigmoid saturates), so clamping changes no detection.
CLAMPS_BY_RANGE = {
    "short": {"regressors": (-80.0, 144.0), "classificators": (-20.0, 20.0)},
    "full": {"regressors": (-112.0, 208.0), "classificators": (-20.0, 20.0)},
}
CLAMPS = CLAMPS_BY_RANGE["short"]


def clamp_outputs(model, clamps: dict[str, tuple[float, float]] = CLAMPS) -> None:
    from onnx import helper, numpy_helper

    g = model.graph
    for out in g.output:
        if out.name not in clamps:
            continue
        lo, hi = clamps[out.name]
        raw = out.name + "_unclamped"
        for node in g.node:
            node.output[:] = [raw if o == out.name else o for o in node.output]
        g.initializer.extend([numpy_helper.from_array(np.array(lo, np.float32), raw + "_lo"),
                              numpy_helper.from_array(np.array(hi, np.float32), raw + "_hi")])
        g.node.append(helper.make_node("Clip", [raw, raw + "_lo", raw + "_hi"], [out.name], name=out.name + "_clamp"))


#: SSD anchor layouts (MediaPipe's face_detection_*_range graphs: SsdAnchorsCalculator with
#: fixed anchor size; TensorsToDetections min_score_thresh).
ANCHORS = {
    "short": {"input_size": 128, "strides": [8, 16, 16, 16], "anchors_per_stride": 2, "score_threshold": 0.5},
    "full": {"input_size": 192, "strides": [4], "anchors_per_stride": 1, "score_threshold": 0.6},
}


def _dense_weights(src: Path) -> dict[bytes, np.ndarray]:
    """{raw bytes of each sparse constant: its dense value} from LiteRT's DENSIFY outputs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tf2onnx.tflite.Model import Model

    # reference kernels: with the XNNPACK delegate the DENSIFY outputs are not materialised
    it = Interpreter(model_path=str(src), experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], np.float32))
    it.invoke()
    buf = src.read_bytes()
    model = Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    out = {}
    for o in it._get_ops_details():
        if o["op_name"] != "DENSIFY":
            continue
        t = g.Tensors(int(o["inputs"][0]))
        raw = model.Buffers(t.Buffer()).DataAsNumpy().tobytes()
        val = np.array(it.get_tensor(int(o["outputs"][0])))
        if raw in out and not np.array_equal(out[raw], val):
            raise RuntimeError(f"{src.name}: two sparse tensors share their stored values but not their dense form")
        if not val.any():
            raise RuntimeError(f"{src.name}: DENSIFY output {t.Name().decode()} is all zeros (not materialised)")
        out[raw] = val
    return out


def _tflite_to_onnx(src: Path, input_name: str):  # -> onnx.ModelProto
    import tf2onnx
    from tf2onnx import tflite_utils
    from tf2onnx.handler import tfl_op

    dense = _dense_weights(src) if "sparse" in src.name else {}
    if dense:
        real = tflite_utils.tensor_util

        class _Dense:  # tf2onnx reads constants through tensor_util.MakeNdarray: hand it the dense data
            def __getattr__(self, k):
                return getattr(real, k)

            @staticmethod
            def MakeNdarray(t):  # noqa: N802
                d = dense.get(t.tensor_content)
                return d.copy() if d is not None else real.MakeNdarray(t)

        tflite_utils.tensor_util = _Dense()

        @tfl_op(["TFL_DENSIFY"], onnx_op="Identity")
        class _Densify:  # the weights are already dense
            @classmethod
            def version_1(cls, ctx, node, **kwargs):
                node.type = "Identity"

    model, _ = tf2onnx.convert.from_tflite(str(src), inputs_as_nchw=[input_name], opset=13)
    return model


def sanitise_names(model) -> int:
    """TFLite tensor names like `a/b;c/d` are not valid TensorFlow op names (onnx2tf refuses them):
    map every tensor/node name to `[A-Za-z0-9_./>-]` (graph inputs/outputs keep theirs)."""
    import re

    keep = {i.name for i in model.graph.input} | {o.name for o in model.graph.output}
    bad = re.compile(r"[^A-Za-z0-9_./>-]")

    def fix(n: str) -> str:
        if not n or n in keep:
            return n
        m = bad.sub("_", n)
        return m if re.match(r"[A-Za-z0-9.]", m) else "t" + m

    g = model.graph
    count = 0
    for node in g.node:
        new = fix(node.name)
        count += new != node.name
        node.name = new
        node.input[:] = [fix(i) for i in node.input]
        node.output[:] = [fix(o) for o in node.output]
    for t in g.initializer:
        t.name = fix(t.name)
    for vi in g.value_info:
        vi.name = fix(vi.name)
    return count


def _check_against_tflite(src: Path, m, size: int, clamps: dict[str, tuple[float, float]]) -> float:
    """Max |ONNX - original TFLite| of the outputs on a real photo (skimage's astronaut)."""
    import cv2
    import onnxruntime as ort
    import skimage.data
    from ai_edge_litert.interpreter import Interpreter

    img = cv2.resize(skimage.data.astronaut(), (size, size)).astype(np.float32) / 127.5 - 1.0
    it = Interpreter(model_path=str(src))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], img[None])
    it.invoke()
    ref = sorted((np.array(it.get_tensor(d["index"])) for d in it.get_output_details()), key=lambda a: -a.shape[-1])
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    got = s.run(None, {s.get_inputs()[0].name: img.transpose(2, 0, 1)[None]})
    got = sorted(got, key=lambda a: -a.shape[-1])
    ref[0] = np.clip(ref[0], *clamps["regressors"])
    ref[1] = np.clip(ref[1], *clamps["classificators"])
    return float(max(np.abs(r - g).max() for r, g in zip(ref, got)))


def main() -> None:
    import argparse
    import hashlib

    import onnx

    ap = argparse.ArgumentParser()
    ap.add_argument("--full-range", action="store_true", help="BlazeFace full range (192 px, far faces) instead of short range")
    a = ap.parse_args()
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        sys.exit("pip install mediapipe==0.10.21 (x86_64) first")
    kind = "full" if a.full_range else "short"
    fname = "face_detection_full_range_sparse.tflite" if a.full_range else "face_detection_short_range.tflite"
    src = Path(spec.origin).parent / "modules" / "face_detection" / fname
    name = "detector_full" if a.full_range else "detector"
    out = REPO / "models" / name / f"{name}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    anchors = ANCHORS[kind]
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(src))
    input_name = it.get_input_details()[0]["name"]
    m = _tflite_to_onnx(src, input_name)
    # one naming for both models (the runtime binds outputs by "regress"/"classif")
    by_width = {int(o.type.tensor_type.shape.dim[-1].dim_value): o.name for o in m.graph.output}
    rename = {by_width[16]: "regressors", by_width[1]: "classificators"}
    for node in m.graph.node:
        node.output[:] = [rename.get(o, o) for o in node.output]
        node.input[:] = [rename.get(i, i) for i in node.input]
    for o in m.graph.output:
        o.name = rename.get(o.name, o.name)
    clamps = CLAMPS_BY_RANGE[kind]
    clamp_outputs(m, clamps)
    sanitise_names(m)
    err = _check_against_tflite(src, m, anchors["input_size"], clamps)
    print(f"ONNX vs original TFLite on a real photo: max |diff| {err:.2e}")
    if err > 1e-2:
        sys.exit(f"the exported ONNX does not reproduce {fname} (max |diff| {err:.3g})")
    for k, v in {
        "edgeaffect.kind": "detector",
        "edgeaffect.source": f"mediapipe==0.10.21 mediapipe/modules/face_detection/{fname}",
        "edgeaffect.source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "edgeaffect.licence": "Apache-2.0 (MediaPipe)",
        "edgeaffect.input_range": f"[-1,1] RGB {anchors['input_size']}x{anchors['input_size']}, letterboxed frame",
        "edgeaffect.anchors": json.dumps(anchors),
        "edgeaffect.range": kind,
        "edgeaffect.output_clamps": json.dumps(clamps),
    }.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(out))
    print("wrote", out)


if __name__ == "__main__":
    main()
