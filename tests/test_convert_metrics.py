"""Fast, dependency-light tests of the fidelity metrics, the gate logic and calibration handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from edgeaffect_converters.calibration import (
    CalibrationSet,
    load_calibration,
    split_calibration,
    tflite_layout_shape,
)
from edgeaffect_converters.errors import CalibrationError
from edgeaffect_converters.fidelity import (
    Budget,
    candidate_perms,
    ccc,
    icc_3_1,
    nme_delta_pct,
    snr_db,
    spearman,
    task_metrics,
    to_onnx_layout,
)

rng = np.random.default_rng(0)


def test_snr_and_exact_match():
    a = rng.normal(size=1000)
    assert snr_db(a, a) == 200.0
    assert abs(snr_db(a, a + 0.1 * a) - 20.0) < 1e-6  # error = 10 % of the signal -> 20 dB
    assert snr_db(a, a * np.nan) == -200.0


def test_icc_ccc_spearman_known_values():
    x = rng.normal(size=500)
    assert icc_3_1(x, x) == pytest.approx(1.0)
    assert icc_3_1(x, x + 5.0) == pytest.approx(1.0)  # ICC(3,1) is consistency: offsets do not count
    assert ccc(x, x + 5.0) < 0.1  # CCC punishes the offset
    assert ccc(x, x) == pytest.approx(1.0)
    assert icc_3_1(x, rng.normal(size=500)) < 0.2
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)  # monotone -> rank correlation 1
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # ties
    assert icc_3_1(np.ones(10), np.ones(10)) is None


def _mean_shape():
    ms = rng.uniform(0.2, 0.8, (68, 2))
    ms[36], ms[45] = (0.3, 0.4), (0.7, 0.4)  # IOD = 0.4
    return ms


def test_nme_delta_uses_mean_shape_and_iod():
    ms = _mean_shape()
    off = rng.normal(0, 0.01, (5, 136))
    moved = off + 0.004  # every point moves by 0.004*sqrt(2) = 1.41 % of IOD 0.4
    d = nme_delta_pct(off, moved, ms)
    assert np.allclose(d, 0.004 * np.sqrt(2) / 0.4 * 100, rtol=0.05)


def test_landmark_gate_pass_and_fail():
    ms = _mean_shape()
    off = rng.normal(0, 0.01, (40, 136)).astype(np.float32)
    ls = rng.normal(-3, 0.5, (40, 68)).astype(np.float32)
    ref = {"offsets": off, "log_sigma": ls, "validity": rng.normal(size=(40, 1))}
    meta = {"edgeaffect.mean_shape": ms.tolist()}
    ok = {"offsets": off + 0.0002, "log_sigma": ls + 0.01, "validity": ref["validity"]}
    m, fails = task_metrics("landmarks", ref, ok, meta, Budget())
    assert not fails and m["nme_delta_pct"]["mean"] < 0.5 and m["log_sigma_spearman"]["value"] > 0.99
    bad = dict(ok, offsets=off + 0.01)
    m, fails = task_metrics("landmarks", ref, bad, meta, Budget())
    assert fails and "offsets" in fails[0] and "NME delta" in fails[0]
    _, fails = task_metrics("landmarks", ref, dict(ok, log_sigma=-ls), meta, Budget(min_rank_corr=0.9))
    assert any("log_sigma" in f and "Spearman" in f for f in fails)


def test_au_gate_names_the_au():
    ref = {"aus": rng.uniform(0, 5, (60, 15)).astype(np.float32)}
    got = {"aus": ref["aus"] + rng.normal(0, 0.02, (60, 15)).astype(np.float32)}
    names = [f"AU{i:02d}" for i in range(15)]
    m, fails = task_metrics("au", ref, got, {"edgeaffect.au_names": names}, Budget())
    assert not fails and m["au_icc"]["min"] > 0.98
    got["aus"][:, 7] = rng.uniform(0, 5, 60)
    _, fails = task_metrics("au", ref, got, {"edgeaffect.au_names": names}, Budget())
    assert len(fails) == 1 and "AU07" in fails[0] and "aus" in fails[0]


def test_temporal_gate_last_and_all_steps():
    r = rng.normal(0, 1, (30, 50, 8)).astype(np.float32)
    m, fails = task_metrics("temporal", {"va": r}, {"va": r + 0.001}, {}, Budget())
    assert not fails and m["va_ccc"]["valence_last_step"] > 0.99 and "ch2" in m["uncertainty_spearman"]
    g = r.copy()
    g[:, -1, 1] = 0.0  # arousal broken on the last step only
    _, fails = task_metrics("temporal", {"va": r}, {"va": g}, {}, Budget())
    assert any("arousal" in f and "last step" in f for f in fails)


def test_layout_helpers():
    assert tflite_layout_shape([1, 3, 8, 16]) == [1, 8, 16, 3]
    assert tflite_layout_shape([1, 50, 219]) == [1, 50, 219]
    x = rng.normal(size=(2, 3, 4, 5))
    perms = candidate_perms([2, 3, 4, 5], [2, 4, 5, 3])
    assert perms == [[0, 2, 3, 1]]
    assert np.array_equal(to_onnx_layout(x.transpose(0, 2, 3, 1), perms[0], [2, 3, 4, 5]), x)


def _cal(n, shape=(32, 32, 1)):
    return rng.uniform(0, 1, (n, *shape)).astype(np.float32)


def test_calibration_refuses_nan_and_small_sets(tmp_path):
    a = _cal(64)
    a[3, 1, 1, 0] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(CalibrationError, match="NaN/inf") as e:
        load_calibration(tmp_path / "nan.npy", kind="generic", onnx_shapes={"x": [1, 1, 32, 32]})
    assert "\n" not in str(e.value)
    cal = load_calibration(_cal(20), kind="generic", onnx_shapes={"x": [1, 1, 32, 32]})
    with pytest.raises(CalibrationError, match="need at least 40"):
        split_calibration(cal, min_calib=32)
    assert split_calibration(cal, min_calib=8)[0].n == 12  # --min-calib lowers the floor


def test_calibration_split_is_disjoint_and_nchw_is_transposed():
    a = _cal(100)
    a[:, 0, 0, 0] = np.arange(100)  # tag samples
    cal = load_calibration(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), kind="generic", onnx_shapes={"x": [1, 1, 32, 32]})
    assert "transposed NCHW -> NHWC" in json.dumps(cal.description)
    c, h = split_calibration(cal, min_calib=32)
    tags_c, tags_h = set(c.arrays["x"][:, 0, 0, 0]), set(h.arrays["x"][:, 0, 0, 0])
    assert not tags_c & tags_h and len(tags_c) + len(tags_h) == 100 and h.n == 20
    seq = CalibrationSet({"x": a}, {}, contiguous=True)  # temporal/video: held-out is the tail
    c, h = split_calibration(seq, min_calib=32)
    assert h.arrays["x"][0, 0, 0, 0] == 80


def test_calibration_wrong_shape_is_one_line():
    with pytest.raises(CalibrationError, match=r"expected \[N, 32, 32, 1\]") as e:
        load_calibration(_cal(64, (16, 16, 1)), kind="generic", onnx_shapes={"x": [1, 1, 32, 32]})
    assert "\n" not in str(e.value)


def test_range_hints_name_the_cause():
    from edgeaffect_converters.fidelity import range_hints

    probs = {"p": rng.uniform(0.0005, 0.0015, (50, 1000))}
    h = range_hints(probs, ["p"], {"p": (1 / 256, "SOFTMAX")})
    assert len(h) == 1 and "SOFTMAX" in h[0]
    far = {"aus": rng.uniform(2.4, 2.6, (50, 15))}
    h = range_hints(far, ["aus"], {"aus": (2.6 / 255, "FULLY_CONNECTED")})
    assert "include 0" in h[0]
    logits = {"s": np.concatenate([rng.normal(0, 1, (50, 990)), np.full((50, 10), -300.0)], 1)}
    h = range_hints(logits, ["s"], {"s": (300 / 255, "CONV_2D")})
    assert "extreme values" in h[0]
    assert range_hints(logits, ["s"], {"s": (0.01, "CONV_2D")}) == []  # fine step: no hint


def test_check_binding_catches_swapped_outputs():
    from edgeaffect_converters.errors import ToolchainError
    from edgeaffect_converters.fidelity import check_binding

    ref = {"a": rng.normal(size=(20, 8)), "b": rng.normal(size=(20, 8))}
    ident = {"a": [0, 1], "b": [0, 1]}
    check_binding({"a": ref["a"] + 0.01, "b": ref["b"]}, ref, ident)
    with pytest.raises(ToolchainError, match="reproduces ONNX output 'b'"):
        check_binding({"a": ref["b"], "b": ref["a"]}, ref, ident, "int8")


def test_detector_agreement():
    from edgeaffect_converters.fidelity import detector_agreement

    s = rng.normal(-5, 4, (10, 896, 1))
    r = rng.normal(0, 10, (10, 896, 16))
    d = detector_agreement({"scores": s, "boxes": r}, {"scores": s, "boxes": r})["detection_agreement"]
    assert d["recall"] == 1.0 and d["top1_anchor_agreement"] == 1.0 and d["box_mae_on_float_positives"] == 0.0
    d = detector_agreement({"scores": s, "boxes": r}, {"scores": s - 3.0, "boxes": r})["detection_agreement"]
    assert d["recall"] < 0.9
