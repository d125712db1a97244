"""Convert ONNX networks NOT written for this project, end to end, and keep their reports.

    python -m edgeaffect_converters.examples.external_models [--only NAME] [--max-samples N]

Trained networks (real weights, shipped inside the `mediapipe` wheel, Apache-2.0), turned
into ONNX with tf2onnx (`from_tflite`, NCHW input) the way a user would hand them to us:
- mediapipe_blazeface_short: face_detection_short_range.tflite (BlazeFace, 128x128 RGB in
  [-1, 1] -> 896x16 regressors + 896 logits). --kind detector: calibrated on the pipeline's
  own detector preprocessing of ../shared/data/video/short_hamilton_clip.mp4.
- mediapipe_facemesh: face_landmark.tflite (192x192 RGB in [0, 1] -> 468x3 points + face
  flag). --kind generic, calibrated on ../shared/data/expressions/images face crops.
Package architectures without weights (pretrained weights cannot be downloaded here, so
`weights=None`; tf2onnx `from_keras`):
- keras_mobilenetv2_035: `tf_keras.applications.MobileNetV2(alpha=0.35, 128x128,
  classifier_activation=None)`, input [-1, 1]; calibrated on the video frames.
- keras_mobilenetv3small: `tf_keras.applications.MobileNetV3Small(128x128)` as shipped
  (Rescaling, hard-swish, SE, softmax), input [0, 255]; calibrated on the face crops.
  A randomly initialised BatchNorm (mean 0, var 1) makes activations explode or vanish, so
  BN statistics are re-estimated on 64 calibration frames (momentum 0, one training-mode
  pass; no weight is trained). Random deep nets amplify small perturbations layer by layer,
  so these two are expected to FAIL the int8 gate; they show the failure message.

Reports go to models/external/<name>/ (fidelity_report.json/.md, the int8 manifests, a
README); the .onnx and .tflite files stay in work/external/<name>/ (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
VIDEO = DATA / "video" / "short_hamilton_clip.mp4"
EXPRESSIONS = DATA / "expressions" / "images"
SIZE = 128

_mp = importlib.util.find_spec("mediapipe")
MP = Path(_mp.origin).parent / "modules" if _mp and _mp.origin else None

MODELS = {
    "mediapipe_blazeface_short": {
        "tflite": "face_detection/face_detection_short_range.tflite", "kind": "detector",
        "calib": VIDEO, "pixel_range": (-1.0, 1.0),
        "what": "MediaPipe BlazeFace short-range (face_detection_short_range.tflite from the mediapipe wheel, "
        "trained weights, Apache-2.0) -> ONNX with tf2onnx",
    },
    "mediapipe_facemesh": {
        "tflite": "face_landmark/face_landmark.tflite", "kind": "generic",
        "calib": EXPRESSIONS, "pixel_range": (0.0, 1.0), "size": 192,
        "what": "MediaPipe Face Mesh landmark net (face_landmark.tflite from the mediapipe wheel, trained weights, "
        "Apache-2.0): 192x192 RGB -> 468x3 points + face flag; -> ONNX with tf2onnx",
    },
    "keras_mobilenetv2_035": {
        "build": lambda keras: keras.applications.MobileNetV2(
            input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, include_top=True, classifier_activation=None
        ),
        "kind": "generic", "calib": VIDEO, "pixel_range": (-1.0, 1.0),
        "what": "tf_keras.applications.MobileNetV2(alpha=0.35, input 128x128x3, classifier_activation=None): 1000 logits, "
        "random init (weights=None), BN statistics re-estimated",
    },
    "keras_mobilenetv3small": {
        "build": lambda keras: keras.applications.MobileNetV3Small(input_shape=(SIZE, SIZE, 3), weights=None, include_top=True),
        "kind": "generic", "calib": EXPRESSIONS, "pixel_range": (0.0, 255.0),
        "what": "tf_keras.applications.MobileNetV3Small(input 128x128x3) as shipped (Rescaling, hard-swish, SE, softmax top), "
        "random init (weights=None), BN statistics re-estimated",
    },
}


def _frames(source: Path, n: int, pixel_range: tuple[float, float], size: int = SIZE) -> np.ndarray:
    from edgeaffect_converters.calibration import _read_images, _read_video

    shape = [1, size, size, 3]
    if source.is_dir():
        files = sorted(f for f in source.iterdir() if f.suffix.lower() in (".jpg", ".png"))
        return _read_images(files[::max(1, len(files) // n)], shape, pixel_range, n)
    return _read_video(source, shape, pixel_range, n)


def build_onnx(name: str, path: Path) -> Path:
    """Build the Keras model, re-estimate BN statistics, export to ONNX (NCHW input) with tf2onnx."""
    import onnx
    import tensorflow as tf
    import tf2onnx
    import tf_keras as keras

    spec = MODELS[name]
    if "tflite" in spec:
        if MP is None:
            raise SystemExit("mediapipe is not installed: pip install mediapipe==0.10.21")
        src = MP / spec["tflite"]
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(src))
        in_name = it.get_input_details()[0]["name"]
        proto, _ = tf2onnx.convert.from_tflite(str(src), opset=13, inputs_as_nchw=[in_name])
        _meta(proto, spec, f"tf2onnx {tf2onnx.__version__} (from_tflite, opset 13, inputs_as_nchw)",
              "trained weights from the mediapipe 0.10.21 wheel")
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, str(path))
        return path
    tf.random.set_seed(0)
    model = spec["build"](keras)
    frames = _frames(spec["calib"], 64, spec["pixel_range"])
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in bns:
        layer.momentum = 0.0
    model(frames, training=True)  # BN moving stats := statistics of these frames (no weight update)
    sig = (tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=sig, opset=13, inputs_as_nchw=["image"])
    _meta(proto, spec, f"tf2onnx {tf2onnx.__version__} (from_keras, opset 13, inputs_as_nchw)",
          f"random init (weights=None; no pretrained download offline); BatchNorm statistics re-estimated on 64 frames of {spec['calib'].name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def _meta(proto, spec: dict, exporter: str, weights: str) -> None:
    meta = {
        "edgeaffect.kind": spec["kind"],
        "edgeaffect.source": spec["what"],
        "edgeaffect.weights": weights,
        "edgeaffect.input_range": f"{list(spec['pixel_range'])} RGB, NCHW",
        "edgeaffect.licence": "Apache-2.0",
        "edgeaffect.exporter": exporter,
    }
    for k, v in meta.items():
        p = proto.metadata_props.add()
        p.key, p.value = k, v


def run(name: str, max_samples: int) -> int:
    """Build in a child process (TF in-process memory is freed), then convert; keep reports."""
    import subprocess

    from edgeaffect_converters.cli import convert_main

    work = ROOT / "work" / "external" / name
    onnx_path = work / f"{name}.onnx"
    if not onnx_path.exists():
        subprocess.run([sys.executable, "-m", "edgeaffect_converters.examples.external_models", "--build-only", name],
                       cwd=ROOT, check=True)
    spec = MODELS[name]
    rc = convert_main([
        str(onnx_path), "--kind", spec["kind"], "--calib", str(spec["calib"]), "--out", str(work / "out"),
        "--pixel-range=" + ",".join(str(v) for v in spec["pixel_range"]), "--max-samples", str(max_samples),
        "--variants", "float32,float16,dynamic_range,int8,int16x8", "--io", "both",
    ])
    keep = ROOT / "models" / "external" / name
    keep.mkdir(parents=True, exist_ok=True)
    for f in ("fidelity_report.json", "fidelity_report.md"):
        src = work / "out" / f
        if src.exists():
            shutil.copy(src, keep / f)
    for d in (work / "out", work / "out" / "failed"):
        for m in d.glob(f"{name}_int8*.json"):
            shutil.copy(m, keep / m.name)
    (keep / "README.md").write_text(
        f"# {name}\n\n{spec['what']}.\n\nBuilt by `python -m edgeaffect_converters.examples.external_models --only {name}` "
        "(see that file for how: Keras package architecture, random init, BN statistics re-estimated, tf2onnx export).\n"
        f"Gate result: exit code {rc} ({'PASS' if rc == 0 else 'FAIL' if rc == 1 else 'error'}). "
        "fidelity_report.md has the numbers; the int8 manifests are kept, the .onnx/.tflite files are not "
        "(they are in work/external/, git-ignored).\n"
    )
    print(json.dumps({"model": name, "exit_code": rc}))
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=list(MODELS))
    ap.add_argument("--build-only", choices=list(MODELS))
    ap.add_argument("--max-samples", type=int, default=240)
    a = ap.parse_args(argv)
    if a.build_only:
        build_onnx(a.build_only, ROOT / "work" / "external" / a.build_only / f"{a.build_only}.onnx")
        return 0
    if not DATA.exists():
        print(f"{DATA} not found: the examples calibrate on ../shared/data", file=sys.stderr)
        return 2
    codes = [run(n, a.max_samples) for n in ([a.only] if a.only else list(MODELS))]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
