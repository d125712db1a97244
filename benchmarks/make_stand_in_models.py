"""Build *stand-in* models so the bench harness can run before the trained models ship.

    python benchmarks/make_stand_in_models.py OUT_DIR     (needs tensorflow: dev/convert env only)

What it writes into OUT_DIR (the layout `AnalyzerOptions(models_dir=OUT_DIR)` expects):

* detector_int8.{tflite,json}: MediaPipe's short-range BlazeFace (float32, from the
  installed mediapipe wheel) with a hand-written manifest. NOT int8: the shipped detector
  is the project's own int8 conversion.
* landmarks_int8 / aus_int8 / affect_int8: the *architectures* of training/models.py
  (96x96x1 residual backbone, AU head, causal dilated TCN over [1,128,219]) rebuilt in Keras
  with seeded random weights and converted full-int8 by the TFLite converter. Same op mix,
  tensor shapes and MAC counts as the real networks, so latency is representative; the
  outputs are meaningless (the landmark validity bias is set high so the pipeline stays in
  its steady "tracking" state, as it does on a real face).

Numbers measured with these files are labelled by their sha256 in every report's
fingerprint; never publish them as the shipped models' figures.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T = 128  # training/train_temporal.py
SIZE = 96  # LANDMARK_CROP_SIZE / AU_CROP_SIZE


def _mean_shape():
    """A rough iBUG-68 layout in crop-normalised [0,1] coordinates (geometry only)."""
    import numpy as np

    pts = []
    for t in np.linspace(-0.95, 0.95, 17):  # jaw 0-16
        pts.append((0.5 + 0.38 * np.sin(t * 1.45), 0.45 + 0.38 * np.cos(t * 1.45) * 0.9))
    for x0 in (0.22, 0.58):  # brows 17-26
        pts += [(x0 + 0.05 * i, 0.30 - 0.02 * (2 - abs(i - 2))) for i in range(5)]
    pts += [(0.5, 0.36 + 0.05 * i) for i in range(4)]  # nose bridge 27-30
    pts += [(0.44 + 0.03 * i, 0.58) for i in range(5)]  # nose base 31-35
    for cx in (0.33, 0.67):  # eyes 36-47
        pts += [(cx - 0.07, 0.40), (cx - 0.03, 0.38), (cx + 0.03, 0.38), (cx + 0.07, 0.40), (cx + 0.03, 0.42), (cx - 0.03, 0.42)]
    for i in range(12):  # outer lips 48-59
        a = np.pi - 2 * np.pi * i / 12
        pts.append((0.5 + 0.13 * np.cos(a), 0.72 - 0.05 * np.sin(a)))
    for i in range(8):  # inner lips 60-67
        a = np.pi - 2 * np.pi * i / 8
        pts.append((0.5 + 0.09 * np.cos(a), 0.72 - 0.02 * np.sin(a)))
    return np.array(pts, np.float32)


def _convert(model, shape, rng, int8_io: bool = True) -> bytes:
    import numpy as np
    import tensorflow as tf

    def rep():
        for _ in range(8):
            yield [rng.uniform(0, 1, size=shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def _macs(model) -> int:
    """Multiply-accumulates of Conv/Dense layers (the count training/models.py uses)."""
    import numpy as np
    import tensorflow as tf

    L = tf.keras.layers  # noqa: N806
    total = 0
    for layer in model.layers:
        if isinstance(layer, (L.Conv2D, L.Conv1D)):
            k = int(np.prod(layer.kernel_size)) * int(layer.input.shape[-1])
            total += int(np.prod(layer.output.shape[1:])) * k
        elif isinstance(layer, L.Dense):
            total += int(layer.units) * int(layer.input.shape[-1])
    return total


def _backbone(x):
    import tensorflow as tf

    L = tf.keras.layers  # noqa: N806

    def cbr(y, ch, s):
        return L.ReLU()(L.Conv2D(ch, 3, s, padding="same")(y))

    def res(y, ch):
        return L.ReLU()(L.Add()([y, L.Conv2D(ch, 3, 1, padding="same")(y)]))

    a = cbr(x, 16, 2)
    a = cbr(a, 32, 2)
    a = res(a, 32)
    a = cbr(a, 64, 2)
    a = res(res(a, 64), 64)
    b = res(cbr(a, 128, 2), 128)
    sp = L.ReLU()(L.Conv2D(128, 6, 1, padding="valid")(b))
    return L.Concatenate()([L.GlobalAveragePooling2D()(a), L.GlobalAveragePooling2D()(b), L.Flatten()(sp)])


def _write(out: Path, stem: str, blob: bytes, kind: str, logical_in: str, out_names: dict, macs: int, params: int,
           metadata: dict, variant: str = "int8") -> None:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from edgeaffect.runtime.manifest import Manifest, TensorSpec, sha256_file

    p = out / f"{stem}.tflite"
    p.write_bytes(blob)
    it = Interpreter(model_path=str(p))
    it.allocate_tensors()

    def spec(d, logical, idx=None):
        s, z = d["quantization"]
        return TensorSpec(logical, d["name"], [int(v) for v in d["shape"]], np.dtype(d["dtype"]).name, "", float(s), int(z), idx)

    ins = [spec(d, logical_in) for d in it.get_input_details()]
    outs = []
    for d in it.get_output_details():
        key = tuple(int(v) for v in d["shape"])
        name, idx = out_names[key]
        outs.append(spec(d, name, idx))
    m = Manifest(stem, kind, variant, p.name, sha256_file(p), ins, outs, metadata=metadata,
                 source={"stand_in": "benchmarks/make_stand_in_models.py (random weights, not a trained model)"},
                 macs=macs, params=params)
    m.write(out / f"{stem}.json")
    print(f"  {stem}: {p.stat().st_size / 1024:.0f} KiB, {macs / 1e6:.1f} MMACs, {params / 1e3:.0f} K params")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    import json

    import numpy as np
    import tensorflow as tf

    from edgeaffect.constants import AU_NAMES, TEMPORAL_FEATURES

    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(11)
    rng = np.random.default_rng(5)
    L = tf.keras.layers  # noqa: N806

    # detector: MediaPipe's float BlazeFace, manifest by hand
    import mediapipe

    src = Path(mediapipe.__file__).parent / "modules" / "face_detection" / "face_detection_short_range.tflite"
    det_blob = src.read_bytes()
    _write(out, "detector_float32", det_blob, "detector", "input",
           {(1, 896, 16): ("regressors", 0), (1, 896, 1): ("classificators", 1)},
           macs=31_000_000, params=103_000, metadata={"stand_in": "mediapipe face_detection_short_range.tflite (float32)"},
           variant="float32")

    # landmarks
    x = L.Input((SIZE, SIZE, 1), batch_size=1)
    f = _backbone(x)
    h = L.Dense(256, activation="relu")(f)
    offsets = L.Dense(136, kernel_initializer="zeros")(h)
    ls = L.Dense(68)(L.Dense(128, activation="relu")(L.Concatenate()([f, h])))
    val = L.Dense(1, bias_initializer=tf.keras.initializers.Constant(4.0), kernel_initializer="zeros")(L.Dense(64, activation="relu")(f))
    lm = tf.keras.Model(x, [offsets, ls, val])
    _write(out, "landmarks_int8", _convert(lm, (1, SIZE, SIZE, 1), rng), "landmarks", "image",
           {(1, 136): ("offsets", 0), (1, 68): ("log_sigma", 1), (1, 1): ("validity", 2)},
           _macs(lm), lm.count_params(), {"edgeaffect.mean_shape": json.dumps(_mean_shape().round(4).tolist())})

    # AUs
    x = L.Input((SIZE, SIZE, 1), batch_size=1)
    y = L.Dense(15, activation="sigmoid")(L.Dense(128, activation="relu")(_backbone(x)))
    au = tf.keras.Model(x, y)
    _write(out, "aus_int8", _convert(au, (1, SIZE, SIZE, 1), rng), "au", "image", {(1, 15): ("aus", 0)},
           _macs(au), au.count_params(), {"edgeaffect.au_names": json.dumps(list(AU_NAMES))})

    # temporal VA (causal dilated TCN)
    t = L.Input((T, TEMPORAL_FEATURES), batch_size=1)
    y = L.ReLU()(L.Conv1D(32, 1)(t))
    for d in (1, 2, 4, 8, 16, 32, 64):
        z = L.Conv1D(32, 3, dilation_rate=d, padding="causal", activation="relu")(y)
        y = L.Add()([y, L.Conv1D(32, 1)(z)])
    y = L.Conv1D(8, 1)(y)
    tm = tf.keras.Model(t, y)
    _write(out, "affect_int8", _convert(tm, (1, T, TEMPORAL_FEATURES), rng), "temporal", "window",
           {(1, T, 8): ("va_raw", 0)}, _macs(tm), tm.count_params(), {})
    shutil.rmtree(out / "__pycache__", ignore_errors=True)
    print(f"stand-in models in {out} (random weights: for exercising the harness only)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
