"""Export MediaPipe's BlazeFace short-range detector to ONNX for the project's converter.

    python scripts/build_detector_onnx.py        # needs the [train] extra + tf2onnx==1.17.0

Source: face_detection_short_range.tflite inside the `mediapipe==0.10.21` wheel (Apache-2.0).
tf2onnx re-expresses the float graph in ONNX with an NCHW input, so it goes through the
same `edgeaffect convert` path (calibration on real frames, fidelity gate, manifest) as the
project's own networks. Writes models/detector/detector.onnx with provenance metadata.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


#: Output clamps added before conversion. A few of the 896 anchors regress to values in the
#: thousands (meaningless anchors far from any face); they set the int8 output scale to
#: ~50 px per step and the int8 model failed the fidelity gate (converters' range hint).
#: Real boxes/keypoints lie within [-128, 256] (128-px input units) and decided scores within
#: logits of +-20 (sigmoid saturates), so clamping changes no detection and restores int8.
CLAMPS = {"regressors": (-128.0, 256.0), "classificators": (-20.0, 20.0)}


def clamp_outputs(model) -> None:
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    for out in g.output:
        if out.name not in CLAMPS:
            continue
        lo, hi = CLAMPS[out.name]
        raw = out.name + "_unclamped"
        for node in g.node:
            node.output[:] = [raw if o == out.name else o for o in node.output]
        g.initializer.extend([numpy_helper.from_array(np.array(lo, np.float32), raw + "_lo"),
                              numpy_helper.from_array(np.array(hi, np.float32), raw + "_hi")])
        g.node.append(helper.make_node("Clip", [raw, raw + "_lo", raw + "_hi"], [out.name], name=out.name + "_clamp"))


def main() -> None:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        sys.exit("pip install mediapipe==0.10.21 (x86_64) first")
    src = Path(spec.origin).parent / "modules" / "face_detection" / "face_detection_short_range.tflite"
    out = REPO / "models" / "detector" / "detector.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "bf.onnx"
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(src), "--output", str(tmp), "--opset", "13", "--inputs-as-nchw", "input"], check=True)
        import hashlib

        import onnx

        m = onnx.load(str(tmp))
        clamp_outputs(m)
        for k, v in {
            "edgeaffect.kind": "detector",
            "edgeaffect.source": "mediapipe==0.10.21 mediapipe/modules/face_detection/face_detection_short_range.tflite",
            "edgeaffect.source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
            "edgeaffect.licence": "Apache-2.0 (MediaPipe)",
            "edgeaffect.input_range": "[-1,1] RGB 128x128, letterboxed frame",
        }.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
        onnx.save(m, str(out))
    print("wrote", out)


if __name__ == "__main__":
    main()
