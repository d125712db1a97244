"""Accelerator lint on small TFLite files built here with TensorFlow (the [convert] extra)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = [
    pytest.mark.convert,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow ([convert] extra) not installed"),
]


def _tflite(fn, shape, path, int8=False):
    import tensorflow as tf

    conc = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()
    c = tf.lite.TFLiteConverter.from_concrete_functions([conc])
    if int8:
        rng = np.random.default_rng(0)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([rng.uniform(0, 1, shape).astype(np.float32)] for _ in range(16))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8
    path.write_bytes(c.convert())
    return path


def test_xnnpack_refusals_are_measured(tmp_path):
    import tensorflow as tf
    from edgeaffect_converters.lint import lint_tflite

    def f(x):
        y = tf.nn.relu(x * 2.0 + 1.0)
        return tf.tanh(tf.math.top_k(tf.math.cumsum(y, axis=1), k=4).values)

    r = lint_tflite(_tflite(f, [1, 16], tmp_path / "f.tflite"))
    assert r["xnnpack"]["not_delegated"] == {"CUMSUM": 1, "TOPK_V2": 1}
    assert not r["edgetpu"]["friendly"] and r["edgetpu"]["ops_before_split"] == 0
    assert "float32" in r["edgetpu"]["first_unsupported"]["reasons"][0]
    assert "XNNPACK refuses CUMSUM x1, TOPK_V2 x1" in r["summary"]
    assert r["edgetpu_compiler"]["available"] in (True, False)
    if not r["edgetpu_compiler"]["available"]:
        assert "not on PATH" in r["edgetpu_compiler"]["message"] and "not on PATH" in r["summary"]


def test_int8_conv_is_edgetpu_friendly_and_5d_tensor_splits(tmp_path):
    import tensorflow as tf
    from edgeaffect_converters.lint import lint_tflite

    k = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 4, 8)).astype(np.float32))

    def good(x):
        return tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME"))

    r = lint_tflite(_tflite(good, [1, 8, 8, 4], tmp_path / "g.tflite", int8=True))
    assert r["edgetpu"]["friendly"], r["edgetpu"]
    assert r["xnnpack"]["not_delegated"] == {}

    def five_d(x):
        y = tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME"))
        z = tf.reshape(y, [1, 2, 4, 8, 8]) * 2.0  # 4 non-unit dims
        return tf.nn.relu(tf.reshape(z, [1, 8, 8, 8]) - 1.0)

    r = lint_tflite(_tflite(five_d, [1, 8, 8, 4], tmp_path / "d.tflite", int8=True))
    e = r["edgetpu"]
    assert not e["friendly"] and ">3 non-unit dims" in " ".join(e["first_unsupported"]["reasons"])
    assert e["ops_before_split"] >= 1 and "splits at op" in r["summary"]
