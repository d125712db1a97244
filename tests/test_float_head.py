"""The float head: the last layer of the AU and temporal networks runs in numpy on the int8
body's dequantised features (no int8 output steps); the converter's gate scores the same."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeaffect.models._head import KEY, FloatHead, apply_float_head, float_head


def _spec(rng):
    return {"input": "feat", "weight": rng.normal(0, 0.3, (5, 8)).tolist(), "bias": rng.normal(0, 0.1, 5).tolist(),
            "outputs": {"aus": {"slice": [0, 3], "activation": "sigmoid", "scale": 5.0},
                        "expression": {"slice": [3, 5], "activation": "softmax"}}}


def test_head_matches_numpy_reference():
    rng = np.random.default_rng(0)
    spec = _spec(rng)
    x = rng.uniform(0, 2, (4, 8))
    out = FloatHead(spec)(x)
    z = x @ np.array(spec["weight"]).T + np.array(spec["bias"])
    assert np.allclose(out["aus"], 5 / (1 + np.exp(-z[:, :3])), atol=1e-6)
    e = np.exp(z[:, 3:]) / np.exp(z[:, 3:]).sum(1, keepdims=True)
    assert np.allclose(out["expression"], e, atol=1e-6)


def test_metadata_as_json_string_and_passthrough():
    rng = np.random.default_rng(1)
    md = {KEY: json.dumps(_spec(rng))}
    assert float_head({}) is None
    body = {"feat": rng.uniform(0, 1, (2, 8)).astype(np.float32)}
    assert set(apply_float_head(md, body)) == {"aus", "expression"}
    assert apply_float_head({}, body) is body


def test_quantised_features_give_fine_outputs():
    """Features rounded to 256 levels still give a near-continuous head output."""
    rng = np.random.default_rng(2)
    spec = _spec(rng)
    spec["weight"] = rng.normal(0, 0.3, (5, 64)).tolist()
    head = FloatHead(spec)
    x = rng.uniform(0, 4, (400, 64))
    q = np.round(x / (4 / 255)) * (4 / 255)
    vals = head(q)["aus"][:, 0]
    assert len(np.unique(np.round(vals, 4))) > 300


def test_bad_head_is_rejected():
    with pytest.raises(ValueError):
        FloatHead({"input": "f", "weight": [[1.0, 2.0]], "bias": [0.0, 1.0], "outputs": {}})
