"""Bad input: every case is a one-line error (exit code 2) and leaves no .tflite in --out.

All of these fail before onnx2tf runs, so they are fast (no TensorFlow import).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from edgeaffect_converters.examples.tiny import build_tiny_onnx, tiny_calibration

_missing = [m for m in ("onnx2tf", "tensorflow", "onnxruntime", "onnx") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"[convert] extra not installed (missing {_missing})")


def _run(tmp_path, capsys, model, calib, *extra):
    from edgeaffect_converters.cli import convert_main

    out = tmp_path / "out"
    rc = convert_main([str(model), "--kind", "generic", "--calib", str(calib), "--out", str(out), "-q", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert not list(tmp_path.rglob("*.tflite")), "a refused conversion must not leave model files"
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".out.staging-*"))
    return err


@pytest.fixture
def good(tmp_path):
    m = build_tiny_onnx(tmp_path / "tiny.onnx")
    np.save(tmp_path / "calib.npy", tiny_calibration(96))
    return m, tmp_path / "calib.npy"


def test_not_onnx(tmp_path, capsys, good):
    f = tmp_path / "model.onnx"
    f.write_text("this is a text file, not a protobuf\n" * 20)
    err = _run(tmp_path, capsys, f, good[1])
    assert "not a readable ONNX model" in err


def test_truncated_onnx(tmp_path, capsys, good):
    data = good[0].read_bytes()
    f = tmp_path / "trunc.onnx"
    f.write_bytes(data[: len(data) // 2])
    err = _run(tmp_path, capsys, f, good[1])
    assert "truncated" in err and "re-export" in err


def test_missing_file(tmp_path, capsys, good):
    err = _run(tmp_path, capsys, tmp_path / "nope.onnx", good[1])
    assert "not found" in err


def test_dynamic_dims_need_input_shape(tmp_path, capsys, good):
    m = build_tiny_onnx(tmp_path / "dyn.onnx", dynamic=True)
    err = _run(tmp_path, capsys, m, good[1])
    assert "'x'" in err and "dynamic" in err and "--input-shape x:1,1,32,32" in err
    # with the shape given the model passes the check (and stops later, at too-small calibration)
    np.save(tmp_path / "few.npy", tiny_calibration(10))
    err = _run(tmp_path, capsys, m, tmp_path / "few.npy", "--input-shape", "x:1,1,32,32")
    assert "need at least 40" in err


def test_custom_op_is_named(tmp_path, capsys, good):
    m = build_tiny_onnx(tmp_path / "custom.onnx", custom_op=True)
    err = _run(tmp_path, capsys, m, good[1])
    assert "com.example::FancyNorm" in err


def test_nan_calibration(tmp_path, capsys, good):
    a = tiny_calibration(96)
    a[5, 3, 3, 0] = np.inf
    a[7, 1, 1, 0] = np.nan
    np.save(tmp_path / "bad.npy", a)
    err = _run(tmp_path, capsys, good[0], tmp_path / "bad.npy")
    assert "2 NaN/inf" in err


def test_too_few_samples(tmp_path, capsys, good):
    np.save(tmp_path / "few.npy", tiny_calibration(20))
    err = _run(tmp_path, capsys, good[0], tmp_path / "few.npy")
    assert "gives 20 samples" in err and "--min-calib" in err


def test_wrong_calibration_shape(tmp_path, capsys, good):
    np.save(tmp_path / "rgb.npy", np.zeros((64, 32, 32, 3), np.float32))
    err = _run(tmp_path, capsys, good[0], tmp_path / "rgb.npy")
    assert "expected [N, 32, 32, 1]" in err


def test_kind_must_match_model_metadata(tmp_path, capsys, good):
    from edgeaffect_converters.cli import convert_main

    rc = convert_main([str(good[0]), "--kind", "landmarks", "--calib", str(good[1]), "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "edgeaffect.kind='generic'" in err and "\n" not in err


def test_pipeline_kind_from_folder_without_faces(tmp_path, capsys):
    """A folder for a face kind goes through the pipeline's preprocessing; no faces -> one line."""
    import cv2
    import onnx
    from edgeaffect_converters.cli import convert_main

    d = tmp_path / "frames"
    d.mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f"{i}.png"), np.full((64, 64, 3), 40 * i, np.uint8))
    m = build_tiny_onnx(tmp_path / "lm.onnx")
    model = onnx.load(str(m))
    del model.metadata_props[:]
    onnx.save(model, str(m))
    rc = convert_main([str(m), "--kind", "landmarks", "--calib", str(d), "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip()
    # what it says depends on the pipeline's state (no detector shipped, model rejected, no faces): always one line
    assert rc == 2 and err.startswith("error: ") and "\n" not in err, err
    assert not list(tmp_path.rglob("*.tflite"))


def test_unknown_kind_and_variant(tmp_path, capsys, good):
    err = _run(tmp_path, capsys, good[0], good[1], "--variants", "float32,int4")
    assert "unknown variant 'int4'" in err


def test_toolchain_failure_leaves_nothing(tmp_path, capsys, good):
    """onnx2tf killed mid-run (timeout): one-line error, no staging dir, no model files."""
    err = _run(tmp_path, capsys, good[0], good[1], "--timeout", "0.5")
    assert "onnx2tf did not finish" in err and "--timeout" in err
    assert not list(tmp_path.glob(".out.staging-*"))
