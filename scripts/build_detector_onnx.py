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
