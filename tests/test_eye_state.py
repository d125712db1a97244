"""The eye-state network's patch geometry, its place in the pipeline, and model dirs without it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeaffect.vision.eyes import (
    EYE_PATCH_H,
    EYE_PATCH_W,
    EYE_SPAN,
    eye_patch_matrix,
    eye_patches,
    normalise_eye_patches,
)


def test_patch_matrix_puts_the_corners_level_and_apart() -> None:
    a, b = np.array([100.0, 50.0]), np.array([130.0, 62.0])  # a tilted eye
    m = eye_patch_matrix(a, b)
    pa, pb = m[:, :2] @ a + m[:, 2], m[:, :2] @ b + m[:, 2]
    half = EYE_SPAN * EYE_PATCH_W / 2
    np.testing.assert_allclose(pa, [EYE_PATCH_W / 2 - half, EYE_PATCH_H / 2], atol=1e-9)
    np.testing.assert_allclose(pb, [EYE_PATCH_W / 2 + half, EYE_PATCH_H / 2], atol=1e-9)


def test_left_eye_is_mirrored_so_both_outer_corners_are_left() -> None:
    """A bright dot at each eye's OUTER corner (36 and 45) lands on the left of both patches."""
    gray = np.zeros((120, 200), np.uint8)
    pts = np.zeros((68, 2), np.float32)
    pts[36], pts[39], pts[42], pts[45] = (40, 60), (80, 60), (120, 60), (160, 60)
    for x in (40, 160):
        gray[58:63, x - 2 : x + 3] = 255
    p = eye_patches(gray, pts)
    assert p.shape == (2, EYE_PATCH_H, EYE_PATCH_W) and p.dtype == np.uint8
    for k in range(2):
        cols = p[k].astype(float).sum(0)
        assert cols[: EYE_PATCH_W // 2].sum() > 10 * cols[EYE_PATCH_W // 2 :].sum()


def test_normalisation_ignores_gain_and_offset() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(40, 120, (2, EYE_PATCH_H, EYE_PATCH_W)).astype(np.uint8)
    y = np.clip(x.astype(int) * 2 + 10, 0, 255).astype(np.uint8)  # NIR-like gain, no clipping here
    a, b = normalise_eye_patches(x), normalise_eye_patches(y)
    assert a.dtype == np.float32 and np.abs(a).max() <= 1.0
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_models_dir_without_the_eye_net_still_loads(assets, tmp_path) -> None:
    """Older model dirs (no eyes_*): the module is off, everything else runs, probabilities stay None."""
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode

    for f in assets.iterdir():
        if f.suffix in (".tflite", ".json") and not f.name.startswith("eyes_"):
            shutil.copy(f, tmp_path / f.name)
    a = Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, models_dir=tmp_path, max_faces=1))
    assert a.eyes is None and "eyes" not in a.runners and "landmarks" in a.runners
    if not any(f.name.startswith("eyes_") and f.suffix == ".json" for f in assets.iterdir()):
        pytest.skip("no eye-state network shipped")
    b = Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=1))
    assert b.eyes is not None and "eyes" in b.runners
    assert Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, enable_eyes=False)).eyes is None


def test_closed_probability_drives_blinks_and_perclos_without_the_ear() -> None:
    """Landmarks that never close (the shipped landmark net's eyelids) plus the eye net's
    probabilities: a 10-frame closure is one blink and counts in PERCLOS."""
    from edgeaffect.vision.eyes import EyeStateTracker

    pts = np.zeros((68, 2), np.float32)
    for e in (range(36, 42), range(42, 48)):  # open eyes, EAR 0.3
        x0 = 100.0 if e.start == 36 else 200.0
        p = np.array([[0, 0], [10, -6], [20, -6], [30, 0], [20, 6], [10, 6]], np.float32) + [x0, 100]
        pts[list(e)] = p
    t = EyeStateTracker(window=100)
    probs = [0.02] * 40 + [0.9] * 10 + [0.05] * 50
    states = [t.update(pts, np.array([p, p], np.float32)) for p in probs]
    assert states[-1].blinks_total == 1 and sum(s.blink for s in states) == 1
    assert states[-1].perclos == pytest.approx(10 / 100)
    assert states[45].closed_prob_left == pytest.approx(0.9) and states[0].openness > 0.9
