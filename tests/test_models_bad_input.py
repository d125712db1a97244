"""Corrupt, truncated, mismatched or missing model files: clear errors, never a bare crash."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeaffect import Analyzer, AnalyzerOptions
from edgeaffect.errors import EdgeAffectError, ModelError
from edgeaffect.runtime.manifest import load_manifest
from edgeaffect.runtime.runner import ModelRunner


@pytest.fixture()
def model_copy(assets, tmp_path):
    for f in assets.iterdir():
        if f.suffix in (".tflite", ".json"):
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_shipped_models_load_and_run(assets):
    for stem in ("detector_int8", "landmarks_int8", "aus_int8", "affect_int8"):
        r = ModelRunner(assets / f"{stem}.json")
        outs = r.run(*[np.zeros(s, np.float32) for s in r.input_shapes])
        assert outs and all(np.isfinite(v).all() for v in outs.values())


def test_missing_model_file(model_copy):
    (model_copy / "landmarks_int8.tflite").unlink()
    with pytest.raises(ModelError, match="not found"):
        ModelRunner(model_copy / "landmarks_int8.json")


def test_missing_manifest(model_copy):
    (model_copy / "aus_int8.json").unlink()
    with pytest.raises(ModelError, match="manifest .* not found"):
        ModelRunner(model_copy / "aus_int8.tflite")


def test_truncated_model(model_copy):
    p = model_copy / "landmarks_int8.tflite"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(ModelError, match="sha256"):
        ModelRunner(model_copy / "landmarks_int8.json")
    # even without the checksum the interpreter's rejection is a ModelError
    m = load_manifest(model_copy / "landmarks_int8.json")
    m.sha256 = __import__("edgeaffect.runtime.manifest", fromlist=["x"]).sha256_file(p)
    with pytest.raises(ModelError):
        ModelRunner(m)


def test_not_a_tflite_file(model_copy):
    p = model_copy / "aus_int8.tflite"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 4000)
    with pytest.raises(ModelError, match="not a TFLite"):
        ModelRunner(model_copy / "aus_int8.json")


def test_signature_mismatch(model_copy):
    """A manifest whose input shape does not match the file (e.g. a model for another crop size)."""
    mp = model_copy / "landmarks_int8.json"
    d = json.loads(mp.read_text())
    d["inputs"][0]["shape"] = [1, 112, 112, 1]
    mp.write_text(json.dumps(d))
    with pytest.raises(ModelError, match="shape"):
        ModelRunner(mp)


def test_wrong_model_in_wrong_slot(assets):
    with pytest.raises(ModelError, match="is a 'au' model"):
        Analyzer(AnalyzerOptions(model_files={"landmarks": assets / "aus_int8.json"}))


def test_wrong_input_shape_at_run_time(assets):
    r = ModelRunner(assets / "aus_int8.json")
    with pytest.raises(ModelError, match="must have shape"):
        r.run(np.zeros((1, 64, 64, 1), np.float32))


def test_bad_manifest_json(model_copy):
    (model_copy / "affect_int8.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        ModelRunner(model_copy / "affect_int8.json")


def test_errors_are_edgeaffect_errors():
    assert issubclass(ModelError, EdgeAffectError)
