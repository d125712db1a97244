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
    # the matrix sits on the alignment grid (2^-16 linear, 2^-8 px shift: same on every CPU), so the
    # corners land within a few thousandths of a pixel of their places
    np.testing.assert_allclose(pa, [EYE_PATCH_W / 2 - half, EYE_PATCH_H / 2], atol=0.01)
    np.testing.assert_allclose(pb, [EYE_PATCH_W / 2 + half, EYE_PATCH_H / 2], atol=0.01)
    from edgeaffect.vision.alignment import AFFINE_GRID_LINEAR, AFFINE_GRID_SHIFT

    assert np.array_equal(np.round(m[:, :2] / AFFINE_GRID_LINEAR) * AFFINE_GRID_LINEAR, m[:, :2])
    assert np.array_equal(np.round(m[:, 2] / AFFINE_GRID_SHIFT) * AFFINE_GRID_SHIFT, m[:, 2])


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


def _eye_points() -> np.ndarray:
    """68 points with two tilted, differently sized eyes (contours 36-41, 42-47)."""
    pts = np.zeros((68, 2), np.float64)
    for base, (a, b) in ((36, ((40.0, 62.0), (82.0, 58.0))), (42, ((118.0, 57.0), (166.0, 63.0)))):
        a, b = np.array(a), np.array(b)
        u = (b - a) / np.linalg.norm(b - a)
        v = np.array([-u[1], u[0]])
        w = np.linalg.norm(b - a)
        # iBUG order along each eye: corner, two upper-lid points, corner, two lower-lid points
        for j, (s, t) in enumerate(((0, 0), (1 / 3, -0.14), (2 / 3, -0.16), (1, 0), (2 / 3, 0.12), (1 / 3, 0.11))):
            pts[base + j] = a + s * w * u + t * w * v
    return pts


def test_eyelid_points_map_to_the_patches_and_back() -> None:
    """points_to_patches / eyelids_to_frame are inverse (float64), follow EYE_CONTOURS (outer corner
    left in both patches, the left eye mirrored) and put each point where eye_patches draws it."""
    from edgeaffect.vision.eyes import (
        EYE_CONTOURS,
        eye_patch_matrices,
        eyelids_to_frame,
        points_to_patches,
        with_eyelids,
    )

    pts = _eye_points()
    m = eye_patch_matrices(pts)
    q = points_to_patches(pts, m)
    assert q.shape == (2, 6, 2)
    back = eyelids_to_frame(q, m)
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, pts[36:48], atol=1e-9)
    half = EYE_SPAN * EYE_PATCH_W / 2
    for k in range(2):  # outer corner left, inner corner right, level, in both patches
        assert q[k, 0, 0] < q[k, 3, 0]
        assert abs(q[k, 0, 0] - (EYE_PATCH_W / 2 - half)) <= 1.0 + 1e-9 and abs(q[k, 3, 0] - (EYE_PATCH_W / 2 + half)) <= 1.0 + 1e-9
        assert q[k, 1, 1] < q[k, 0, 1] < q[k, 5, 1]  # upper lid above the corner line, lower lid below
    assert EYE_CONTOURS[1][0] == 45  # the left eye's outer corner
    # the pixel convention: a dot at each contour point appears at its patch coordinate
    gray = np.zeros((120, 220), np.uint8)
    for k, idx in enumerate(EYE_CONTOURS):
        for j in (1, 4):  # an upper- and a lower-lid point, one at a time
            g = gray.copy()
            x, y = np.rint(pts[idx[j]]).astype(int)
            g[y - 1 : y + 2, x - 1 : x + 2] = 255
            p = pts.copy()
            p[idx[j]] = (x, y)
            patch = eye_patches(g, p)[k].astype(np.float64)
            yy, xx = np.mgrid[: EYE_PATCH_H, : EYE_PATCH_W]
            centroid = np.array([(patch * xx).sum(), (patch * yy).sum()]) / patch.sum()
            np.testing.assert_allclose(centroid, points_to_patches(p)[k, j], atol=0.35)
    out = with_eyelids(pts.astype(np.float32), back + 1.0)
    np.testing.assert_allclose(out[36:48], pts[36:48] + 1.0, atol=1e-4)
    np.testing.assert_array_equal(out[:36], pts[:36].astype(np.float32))
    np.testing.assert_array_equal(out[48:], pts[48:].astype(np.float32))


def test_au45_rises_with_the_eye_state_and_never_falls() -> None:
    from edgeaffect.constants import AU_INDEX
    from edgeaffect.vision.eyes import AU45_EYES_SCALE, au45_with_eye_state

    j = AU_INDEX["AU45"]
    aus = np.full(15, 0.5, np.float32)
    assert au45_with_eye_state(aus, None) is aus
    assert au45_with_eye_state(aus, (None, None)) is aus
    shut = au45_with_eye_state(aus, (0.9, 0.7))
    assert shut[j] == pytest.approx(AU45_EYES_SCALE * 0.8) and aus[j] == 0.5  # a copy, the input untouched
    np.testing.assert_array_equal(np.delete(shut, j), np.delete(aus, j))
    assert au45_with_eye_state(aus, (0.01, 0.03))[j] == 0.5  # the AU net's own AU45 when it is higher
    assert au45_with_eye_state(aus, (1.0, 1.0))[j] <= 5.0


def test_a_model_without_the_point_output_keeps_the_landmark_eyelids(assets, tmp_path) -> None:
    """The shipped eye net with its `eyelids` output removed from the manifest's float head (as an
    eye-state-only model): closed probabilities still come, eyelids do not, and the analyzer reports
    the landmark network's own points 36-47."""
    import json

    from edgeaffect.models import find_model
    from edgeaffect.models.eyes import EyeStateModel
    from edgeaffect.runtime.runner import ModelRunner

    man = find_model(assets, "eyes")
    m = json.loads(man.read_text())
    head = m.get("metadata", {}).get("edgeaffect.float_head")
    if head is None:
        pytest.skip("the shipped eye net has no float head (an eye-state-only model)")
    spec = json.loads(head) if isinstance(head, str) else head
    assert "eyelids" in spec["outputs"]
    full = EyeStateModel(ModelRunner(man))
    del spec["outputs"]["eyelids"]
    m["metadata"]["edgeaffect.float_head"] = json.dumps(spec)
    shutil.copy(man.with_suffix(".tflite"), tmp_path / man.with_suffix(".tflite").name)
    (tmp_path / man.name).write_text(json.dumps(m))
    old = EyeStateModel(ModelRunner(tmp_path / man.name))
    assert full.has_eyelids and not old.has_eyelids
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 255, (120, 220)).astype(np.uint8)
    pts = _eye_points()
    r_full, r_old = full.refine(gray, pts), old.refine(gray, pts)
    assert r_old.eyelids is None and r_full.eyelids is not None and r_full.eyelids.shape == (12, 2)
    np.testing.assert_array_equal(r_old.closed, r_full.closed)
