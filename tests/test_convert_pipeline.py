"""End to end: a tiny ONNX net -> all TFLite variants, manifests, fidelity gate, inspect, lint.

Two onnx2tf runs (~15 s each on 2 cores): one with good calibration, one deliberately broken
(calibrated on data 1000x smaller than what it is tested on), which must fail the gate.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from edgeaffect_converters.examples.tiny import build_tiny_onnx, tiny_calibration

_missing = [m for m in ("onnx2tf", "tensorflow", "onnxruntime", "onnx") if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.convert,
    pytest.mark.skipif(bool(_missing), reason=f"[convert] extra not installed (missing {_missing})"),
]

VARIANTS = ("float32", "float16", "dynamic_range", "int8")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from edgeaffect_converters.api import convert

    from edgeaffect.runtime.manifest import sha256_file

    d = tmp_path_factory.mktemp("conv")
    onnx_path = build_tiny_onnx(d / "tiny.onnx")
    before = sha256_file(onnx_path)
    calib = tiny_calibration(96)
    np.save(d / "calib.npy", calib)
    res = convert(onnx_path, "generic", d / "calib.npy", d / "out", variants=VARIANTS, io="both", log=None)
    return {"res": res, "onnx": onnx_path, "sha_before": before, "dir": d}


def _ort(onnx_path, x_nhwc):
    import onnxruntime as ort

    s = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, {"x": x_nhwc.transpose(0, 3, 1, 2)}), strict=True))


def test_all_variants_written_and_gate_passes(converted):
    res = converted["res"]
    out = converted["dir"] / "out"
    assert res.passed and res.exit_code == 0, res.failures
    assert set(res.files) == {"float32", "float16", "dynamic_range", "int8", "int8_io"}
    for v, f in res.files.items():
        assert f == out / f"tiny_{v}.tflite" and f.exists() and f.with_suffix(".json").exists()
    assert (out / "fidelity_report.json").exists() and (out / "fidelity_report.md").exists()
    assert not (out / "failed").exists()
    assert not list(out.parent.glob(".out.staging-*")), "staging dir left behind"
    rep = json.loads((out / "fidelity_report.json").read_text())
    assert rep["status"] == "PASS" and rep["calibration"]["calibration_samples"] + rep["calibration"]["held_out_samples"] == 96
    assert "PASS" in (out / "fidelity_report.md").read_text()


def test_user_onnx_file_is_not_modified(converted):
    from edgeaffect.runtime.manifest import sha256_file

    # onnx2tf rewrites its input file in place (node renaming); we must only ever give it a copy
    assert sha256_file(converted["onnx"]) == converted["sha_before"]


def test_manifests_are_complete(converted):
    from edgeaffect.runtime.manifest import load_manifest, sha256_file

    for v, f in converted["res"].files.items():
        m = load_manifest(f.with_suffix(".json"))
        assert m.variant == v and m.kind == "generic" and m.sha256 == sha256_file(f)
        assert m.source["file"] == "tiny.onnx" and m.source["sha256"] == converted["sha_before"]
        assert [o.name for o in m.outputs] == ["logits", "embedding", "score"]
        assert [o.onnx_index for o in m.outputs] == [0, 1, 2]
        assert m.inputs[0].name == "x" and m.inputs[0].shape == [1, 32, 32, 1] and m.inputs[0].layout == "NHWC"
        assert m.metadata["edgeaffect.labels"][0] == "a"  # JSON metadata parsed through
        assert m.converter["onnx2tf"] and m.converter["tensorflow"] and m.converter["ai-edge-litert"]
        assert m.macs == 53248 and m.params == 34913
        assert m.fidelity["status"] == "PASS" and m.fidelity["held_out_samples"] == round(96 * 0.2)
        assert m.calibration["used"] == (v in ("int8", "int8_io"))
        if v == "int8_io":
            assert m.inputs[0].dtype == "int8" and m.inputs[0].scale > 0
            assert all(o.dtype == "int8" and o.scale > 0 for o in m.outputs)
        if v == "int8":
            assert m.inputs[0].dtype == "float32"


def test_runner_outputs_match_onnxruntime_by_name(converted):
    from edgeaffect_converters.fidelity import snr_db

    from edgeaffect.runtime.runner import ModelRunner

    x = tiny_calibration(6, seed=7)
    reordered = False
    for v, f in converted["res"].files.items():
        r = ModelRunner(f.with_suffix(".json"))
        names_in_file = [d["name"] for d in r.interpreter.get_output_details()]
        reordered |= [r.manifest.output(n).tflite_name for n in ("logits", "embedding", "score")] != names_in_file
        for i in range(len(x)):
            got = r.run(x[i : i + 1])
            ref = _ort(converted["onnx"], x[i : i + 1])
            for n in ("logits", "embedding", "score"):
                assert got[n].shape == ref[n].shape
                if v == "float32":
                    np.testing.assert_allclose(got[n], ref[n], atol=1e-4)
            # logits and embedding have the same shape: only binding by name keeps them apart
            assert snr_db(ref["logits"], got["logits"]) > 20
            assert snr_db(ref["embedding"], got["embedding"]) > 20
            assert snr_db(ref["logits"], got["embedding"]) < 10
    assert reordered, "expected onnx2tf to reorder outputs in at least one variant (the reason for name binding)"


def test_inspect_and_lint_on_converted_models(converted, capsys):
    from edgeaffect_converters.inspect_model import inspect_main, inspect_tflite

    f = converted["res"].files["int8_io"]
    r = inspect_tflite(f)
    assert r["manifest"]["status"] == "OK" and r["ops_histogram"]["FULLY_CONNECTED"] == 3
    assert r["lint"]["edgetpu"]["friendly"] is True
    assert r["lint"]["xnnpack"]["not_delegated"] == {}
    assert "edgetpu_compiler" in r["lint"]["summary"]
    f32 = inspect_tflite(converted["res"].files["float32"])
    assert not f32["lint"]["edgetpu"]["friendly"] and "float32" in f32["lint"]["summary"]
    assert inspect_main([str(f)]) == 0
    text = capsys.readouterr().out
    assert "manifest: OK" in text and "-> logits (ONNX output 0)" in text and "Edge TPU: friendly" in text


def test_inspect_detects_tampering(converted, tmp_path):
    import shutil

    from edgeaffect_converters.inspect_model import inspect_main

    src = converted["res"].files["int8"]
    t = tmp_path / src.name
    shutil.copy(src, t)
    shutil.copy(src.with_suffix(".json"), t.with_suffix(".json"))
    data = bytearray(t.read_bytes())
    data[-100] ^= 0xFF
    t.write_bytes(bytes(data))
    assert inspect_main([str(t), "--no-lint"]) == 1


def test_broken_quantisation_fails_the_gate(tmp_path, capsys):
    """Calibrate on data 1000x smaller than the held-out data: int8 must FAIL, float32 PASS."""
    from edgeaffect_converters.cli import convert_main

    from edgeaffect.runtime.manifest import load_manifest

    onnx_path = build_tiny_onnx(tmp_path / "tiny.onnx")
    np.save(tmp_path / "small.npy", tiny_calibration(64, scale=1e-3))
    np.save(tmp_path / "real.npy", tiny_calibration(24, seed=5))
    out = tmp_path / "out"
    rc = convert_main([str(onnx_path), "--kind", "generic", "--calib", str(tmp_path / "small.npy"),
                       "--holdout", str(tmp_path / "real.npy"), "--out", str(out), "--variants", "float32,int8", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "FAIL" in err and "int8: output logits: SNR" in err
    assert "first large error at layer" in err and "QUANTIZE" in err
    assert not (out / "tiny_int8.tflite").exists(), "a failing variant must not sit beside the good ones"
    m = load_manifest(out / "failed" / "tiny_int8.json")
    assert m.fidelity["status"] == "FAIL" and any("logits" in f for f in m.fidelity["failures"])
    assert m.fidelity["first_large_error"].startswith("first large error at layer")
    assert load_manifest(out / "tiny_float32.json").fidelity["status"] == "PASS"
    rep = json.loads((out / "fidelity_report.json").read_text())
    assert rep["status"] == "FAIL" and rep["variants"]["int8"]["localisation"]["matched_layers"] >= 5
    assert "FAIL" in (out / "fidelity_report.md").read_text()
