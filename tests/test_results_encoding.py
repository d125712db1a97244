"""The per-frame result encoding (hot path of `edgeaffect run`): vectorised rounding and the
optional orjson encoder give the same values as the plain per-number stdlib path."""

from __future__ import annotations

import json

import numpy as np

from edgeaffect import results
from edgeaffect.results import FaceResult, FrameResult, _r, _rl, json_line


def _result() -> FrameResult:
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 640, (68, 2)).astype(np.float32)
    pts[5, 1] = np.nan
    sig = rng.uniform(0.1, 3, 68).astype(np.float32)
    face = FaceResult(1, True, 0.93, "tracking", (1.0, 2.0, 3.0, 4.0), pts, sig, rng.uniform(0, 5, 15).astype(np.float32),
                      0.1234567, -0.5, {"epistemic": 0.1}, {"yaw": 1.5, "pitch": 0.0, "roll": -2.25}, {"blink": False})
    return FrameResult(3, 100.0, [face], "ok", None, [], {"track": 1.23456})


def test_vectorised_rounding_matches_per_number_rounding():
    a = np.random.default_rng(0).uniform(-700, 700, 20000)
    assert _rl(a, 2) == [_r(v, 2) for v in a]
    assert _rl(np.array([[1.005, np.nan], [np.inf, -0.0]]), 2) == [[1.0, None], [None, -0.0]]
    d = _result().to_dict()["faces"][0]
    assert d["landmarks"][5] == [round(float(_result().faces[0].landmarks[5, 0]), 2), None]
    assert len(d["aus"]) == 15 and all(isinstance(v, float) for v in d["aus"].values())


def test_json_line_same_values_with_and_without_orjson(monkeypatch):
    d = _result().to_dict()
    fast = json_line(d)
    monkeypatch.setattr(results, "_orjson", None)
    plain = json_line(d)
    assert plain.endswith(b"\n") and fast.endswith(b"\n") and plain.count(b"\n") == fast.count(b"\n") == 1
    assert json.loads(fast) == json.loads(plain) == json.loads(json.dumps(d))
