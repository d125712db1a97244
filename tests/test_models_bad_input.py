"""Corrupt, truncated, mismatched or missing model files: clear errors, never a bare crash."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeaffect import Analyzer, AnalyzerOptions
from edgeaffect.errors import ModelError
from edgeaffect.models import find_model
from edgeaffect.runtime.manifest import load_manifest, sha256_file
from edgeaffect.runtime.runner import ModelRunner


@pytest.fixture()
def model_copy(assets, tmp_path):
    for f in assets.iterdir():
        if f.suffix in (".tflite", ".json"):
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


def stem(d, module: str) -> str:
    return find_model(d, module).stem


def test_shipped_models_load_and_run(assets):
    for module in ("detector", "landmarks", "eyes", "au", "temporal"):
        r = ModelRunner(find_model(assets, module))
        outs = r.run(*[np.zeros(s, np.float32) for s in r.input_shapes])
        assert outs and all(np.isfinite(v).all() for v in outs.values())


def test_missing_model_file(model_copy):
    s = stem(model_copy, "landmarks")
    (model_copy / f"{s}.tflite").unlink()
    with pytest.raises(ModelError, match="not found"):
        ModelRunner(model_copy / f"{s}.json")


def test_missing_manifest(model_copy):
    s = stem(model_copy, "au")
    (model_copy / f"{s}.json").unlink()
    with pytest.raises(ModelError, match="manifest .* not found"):
        ModelRunner(model_copy / f"{s}.tflite")


def test_truncated_model(model_copy):
    s = stem(model_copy, "landmarks")
    p = model_copy / f"{s}.tflite"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(ModelError, match="truncated or corrupt|sha256"):
        ModelRunner(model_copy / f"{s}.json")
    # even with a matching checksum the truncation is caught before the interpreter (which
    # would read past the end of the buffer and crash the process)
    m = load_manifest(model_copy / f"{s}.json")
    m.sha256 = sha256_file(p)
    with pytest.raises(ModelError, match="truncated or corrupt"):
        ModelRunner(m)


def test_not_a_tflite_file(model_copy):
    s = stem(model_copy, "au")
    p = model_copy / f"{s}.tflite"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 4000)
    with pytest.raises(ModelError, match="not a TFLite"):
        ModelRunner(model_copy / f"{s}.json")


def test_signature_mismatch(model_copy):
    """A manifest whose input shape does not match the file (e.g. a model for another crop size)."""
    mp = find_model(model_copy, "landmarks")
    d = json.loads(mp.read_text())
    d["inputs"][0]["shape"] = [1, 112, 112, 1]
    mp.write_text(json.dumps(d))
    with pytest.raises(ModelError, match="shape"):
        ModelRunner(mp)


def test_wrong_model_in_wrong_slot(assets):
    with pytest.raises(ModelError, match="is a 'au' model"):
        Analyzer(AnalyzerOptions(model_files={"landmarks": find_model(assets, "au")}))


def test_wrong_input_shape_at_run_time(assets):
    r = ModelRunner(find_model(assets, "au"))
    with pytest.raises(ModelError, match="must have shape"):
        r.run(np.zeros((1, 64, 64, 1), np.float32))


def test_bad_manifest_json(model_copy):
    p = find_model(model_copy, "temporal")
    p.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        ModelRunner(p)


def test_model_that_failed_its_gate_is_refused(model_copy):
    p = find_model(model_copy, "au")
    d = json.loads(p.read_text())
    d["fidelity"] = {"status": "FAIL", "failures": ["output aus: AU09 ICC 0.5 < 0.98"]}
    p.write_text(json.dumps(d))
    with pytest.raises(ModelError, match="failed the fidelity gate"):
        ModelRunner(p)


def test_corrupted_weights_fail_the_checksum(model_copy):
    s = stem(model_copy, "au")
    p = model_copy / f"{s}.tflite"
    blob = bytearray(p.read_bytes())
    blob[len(blob) // 2 : len(blob) // 2 + 64] = bytes(64)  # same size, different weights
    p.write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        ModelRunner(model_copy / f"{s}.json")
