"""Build small full-int8 probe models for the aarch64 proof when no shipped models exist yet.

    python scripts/aarch64/make_probe_model.py OUT_DIR     (needs tensorflow: dev/convert env only)

probe_vision_int8.tflite: 1x128x128x3 -> conv / depthwise / add / relu6 / pool / fc / tanh,
the op mix of the detector and landmark nets. probe_temporal_int8.tflite: 1x64x219 ->
conv1d (as CONV_2D) / add / tanh, the op mix of the temporal VA net. Deterministic weights
(seeded) and int8 I/O, so every output is an int8 tensor that must match bit for bit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(out_dir: str) -> int:
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(7)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L = tf.keras.layers  # noqa: N806

    x = L.Input((128, 128, 3), batch_size=1)
    y = L.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(x)
    z = L.DepthwiseConv2D(3, padding="same")(y)
    z = L.Conv2D(16, 1)(z)
    y = L.ReLU(6.0)(L.Add()([y, z]))
    y = L.Conv2D(32, 3, strides=2, padding="same", activation="relu")(y)
    y = L.AveragePooling2D(4)(y)
    y = L.Flatten()(y)
    y = L.Dense(136, activation="tanh")(y)
    vision = tf.keras.Model(x, y)

    t = L.Input((64, 219), batch_size=1)
    u = L.Conv1D(32, 5, padding="same", activation="relu")(t)
    v = L.Conv1D(32, 3, padding="same", dilation_rate=2)(u)
    u = L.Add()([u, v])
    u = L.GlobalAveragePooling1D()(u)
    u = L.Dense(5, activation="tanh")(u)
    temporal = tf.keras.Model(t, u)

    rng = np.random.default_rng(3)
    for name, model, shape in (("probe_vision_int8", vision, (1, 128, 128, 3)),
                               ("probe_temporal_int8", temporal, (1, 64, 219))):
        def rep(shape=shape):
            for _ in range(16):
                yield [rng.uniform(0, 1, size=shape).astype(np.float32)]

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        (out / f"{name}.tflite").write_bytes(conv.convert())
        print(out / f"{name}.tflite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "work/aarch64/probe"))
