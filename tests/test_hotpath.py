"""Per-frame hot-path rewrites give the same numbers as the straightforward versions they replaced."""

from __future__ import annotations

import numpy as np

from edgeaffect.vision.alignment import five_points, similarity_transform, window_from_landmarks


def _umeyama_svd(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    u, sig, vt = np.linalg.svd(d0.T @ s0 / len(src))
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    r = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / var_s)
    return np.hstack([scale * r, (mu_d - scale * r @ mu_s)[:, None]])


def test_closed_form_similarity_equals_umeyama_svd():
    rng = np.random.default_rng(1)
    for i in range(300):
        src = rng.uniform(-200, 800, (5, 2))
        if i % 3 == 0:  # a similarity + noise
            ang, sc = rng.uniform(-np.pi, np.pi), rng.uniform(0.1, 3)
            r = sc * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
            dst = src @ r.T + rng.uniform(-50, 50, 2) + rng.normal(0, 2, src.shape)
        elif i % 3 == 1:  # a mirror image: best proper rotation, never a reflection
            dst = src * np.array([-1.0, 1.0]) + rng.normal(0, 1, src.shape)
        else:
            dst = rng.uniform(0, 112, (5, 2))
        np.testing.assert_allclose(similarity_transform(src, dst), _umeyama_svd(src, dst), rtol=1e-9, atol=1e-9)


def test_eye_slices_and_five_points_match_index_lists():
    from edgeaffect.constants import LEFT_EYE, RIGHT_EYE

    p = np.random.default_rng(2).uniform(0, 640, (68, 2)).astype(np.float32)
    ref = np.stack([p[list(RIGHT_EYE)].mean(0), p[list(LEFT_EYE)].mean(0), p[30], p[48], p[54]]).astype(np.float64)
    assert np.array_equal(five_points(p), ref)
    w = window_from_landmarks(p)
    assert w.size > 8 and np.isfinite([w.cx, w.cy, w.angle]).all()


def test_eye_aspect_ratio_equals_norm_formula():
    from edgeaffect.constants import LEFT_EYE, RIGHT_EYE
    from edgeaffect.vision.eyes import eye_aspect_ratio

    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.uniform(0, 640, (68, 2)).astype(np.float32)
        for eye in (RIGHT_EYE, LEFT_EYE):
            q = p[list(eye)]
            ref = float((np.linalg.norm(q[1] - q[5]) + np.linalg.norm(q[2] - q[4])) / (2.0 * np.linalg.norm(q[0] - q[3])))
            assert eye_aspect_ratio(p, eye) == ref
    flat = np.zeros((68, 2), np.float32)
    assert eye_aspect_ratio(flat, RIGHT_EYE) == 0.0


def test_au_hold_inverse_matches_the_3x3_inverse():
    """_hold_affine's inverse (cv2, no BLAS/LAPACK threads) equals the homogeneous 3x3 inverse."""
    from edgeaffect.vision.alignment import invert_affine

    rng = np.random.default_rng(4)
    for _ in range(200):
        m = np.hstack([rng.normal(0, 2, (2, 2)) + np.eye(2) * 3, rng.uniform(-300, 300, (2, 1))])
        ref = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
        np.testing.assert_allclose(invert_affine(m), ref, rtol=1e-10, atol=1e-9)


# --- second pass (issue 12: the per-frame Python path) -------------------------------------


def _snap_numpy(m: np.ndarray) -> np.ndarray:
    from edgeaffect.vision.alignment import AFFINE_GRID_LINEAR, AFFINE_GRID_SHIFT

    out = np.asarray(m, np.float64).copy()
    out[:, :2] = np.round(out[:, :2] / AFFINE_GRID_LINEAR) * AFFINE_GRID_LINEAR
    out[:, 2] = np.round(out[:, 2] / AFFINE_GRID_SHIFT) * AFFINE_GRID_SHIFT
    return out


def test_snap_affine_in_python_floats_equals_the_numpy_version():
    from edgeaffect.vision.alignment import snap_affine

    rng = np.random.default_rng(2)
    for scale in (0.01, 1.0, 100.0, 1000.0):
        for _ in range(500):
            m = rng.normal(size=(2, 3)) * scale
            np.testing.assert_array_equal(snap_affine(m), _snap_numpy(m))
    halfway = np.array([[0.5 * 2.0**-16, 1.5 * 2.0**-16, 2.5 * 2.0**-8], [-0.5 * 2.0**-16, 3.0, -2.5 * 2.0**-8]])
    np.testing.assert_array_equal(snap_affine(halfway), _snap_numpy(halfway))  # half to even, as np.round


def test_au_crop_matrix_equals_the_numpy_fit_it_replaced():
    from edgeaffect.vision.alignment import AU_TEMPLATE_5, au_crop_matrix

    rng = np.random.default_rng(3)
    for i in range(400):
        pts = rng.uniform(0, 640, (68, 2)).astype(np.float32 if i % 2 else np.float64)
        for size in (96, 112):
            ref = _snap_numpy(similarity_transform(five_points(np.asarray(pts, np.float64)), AU_TEMPLATE_5 * (size / 112.0)))
            np.testing.assert_allclose(au_crop_matrix(pts, size), ref, rtol=0, atol=1e-12)


def _window_numpy(points: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    from edgeaffect.constants import LEFT_EYE, RIGHT_EYE

    points = np.asarray(points, np.float64)
    re, le = points[list(RIGHT_EYE)].mean(0), points[list(LEFT_EYE)].mean(0)
    angle = np.arctan2(le[1] - re[1], le[0] - re[0])
    centroid = points.mean(0)
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    levelled = (points - centroid) @ rot.T
    lo, hi = levelled.min(0), levelled.max(0)
    centre = centroid + ((lo + hi) / 2) @ rot
    return float(centre[0]), float(centre[1]), max(float((hi - lo).max()) * margin, 8.0), float(angle)


def test_window_from_landmarks_equals_the_rotation_matrix_version():
    rng = np.random.default_rng(4)
    for _ in range(300):
        pts = rng.uniform(50, 400, (68, 2))
        w = window_from_landmarks(pts, 1.35)
        np.testing.assert_allclose((w.cx, w.cy, w.size, w.angle), _window_numpy(pts, 1.35), rtol=0, atol=1e-9)


def test_crop_inside_the_image_equals_the_replicate_border_warp():
    """The constant-border fast path is taken only where no border pixel is read, so it gives
    the replicate-border pixels exactly; crops over the edge still replicate."""
    import cv2

    from edgeaffect.vision.alignment import crop, samples_inside

    rng = np.random.default_rng(5)
    inside = outside = 0
    for _ in range(1500):
        h, w = int(rng.integers(40, 300)), int(rng.integers(40, 500))
        img = rng.integers(0, 256, (h, w), np.uint8)
        ang, sc, out = rng.uniform(-3.2, 3.2), rng.uniform(0.2, 3.0), int(rng.choice([24, 40, 96]))
        cx, cy = rng.uniform(-20, w + 20), rng.uniform(-20, h + 20)
        m = np.array([[np.cos(ang) * sc, -np.sin(ang) * sc, 0.0], [np.sin(ang) * sc, np.cos(ang) * sc, 0.0]])
        m[:, 2] = np.array([out / 2, out / 2]) - m[:, :2] @ [cx, cy]
        ref = cv2.warpAffine(img, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        np.testing.assert_array_equal(crop(img, m, out), ref)
        if samples_inside(m, out, out, w, h):
            inside += 1
        else:
            outside += 1
    assert inside > 100 and outside > 100  # both paths exercised


def test_affect_estimate_in_python_floats_equals_decode_nig():
    from edgeaffect.models.affect import decode_nig, estimate_from_raw, uncertainty_from_var

    rng = np.random.default_rng(6)
    for _ in range(2000):
        raw = rng.normal(0, 4, 8)
        d = decode_nig(raw)
        ref = (d["mean"][0], d["mean"][1], uncertainty_from_var(d["epistemic"]).mean(),
               uncertainty_from_var(d["aleatoric"]).mean(), uncertainty_from_var(d["aleatoric"] + d["epistemic"]).mean())
        e = estimate_from_raw(raw)
        np.testing.assert_allclose((e.valence, e.arousal, e.epistemic, e.aleatoric, e.cumulative), ref, rtol=0, atol=1e-12)


def test_vectorised_weighted_nms_equals_pairwise_groups():
    from edgeaffect.models.detector import iou, iou_many

    rng = np.random.default_rng(7)
    for _ in range(300):
        boxes = np.c_[rng.uniform(0, 100, (12, 2)), rng.uniform(0, 40, (12, 2))]
        boxes[rng.integers(0, 12)] = [5.0, 5.0, 0.0, 0.0]  # a degenerate box: iou 0 with everything
        a = boxes[rng.integers(0, 12)]
        np.testing.assert_array_equal(iou_many(a, boxes), [iou(tuple(a), tuple(b)) for b in boxes])


def _nms_pairwise(boxes, kps, scores, thr, max_faces):
    """The pair-by-pair weighted NMS the vectorised one replaced."""
    from edgeaffect.models.detector import iou

    order = np.argsort(-scores, kind="stable")
    out = []
    used = np.zeros(len(order), bool)
    for oi, i in enumerate(order):
        if used[oi]:
            continue
        group = [j for oj, j in enumerate(order) if not used[oj] and iou(tuple(boxes[i]), tuple(boxes[j])) > thr]
        for oj, j in enumerate(order):
            if j in group:
                used[oj] = True
        wts = scores[group][:, None]
        out.append(((boxes[group] * wts).sum(0) / wts.sum(), float(scores[i]), (kps[group] * wts[:, :, None]).sum(0) / wts.sum()))
        if len(out) >= max_faces:
            break
    return out


def test_weighted_nms_gives_the_pairwise_groups():
    from edgeaffect.models.detector import weighted_nms

    rng = np.random.default_rng(8)
    for _ in range(300):
        n = int(rng.integers(1, 25))
        centres = rng.uniform(0, 200, (3, 2))[rng.integers(0, 3, n)] + rng.normal(0, 6, (n, 2))
        boxes = np.c_[centres, rng.uniform(20, 40, (n, 2))]
        kps = rng.uniform(0, 200, (n, 6, 2))
        scores = rng.uniform(0.5, 1.0, n)
        got = weighted_nms(boxes, kps, scores, 0.3, 4)
        ref = _nms_pairwise(boxes, kps, scores, 0.3, 4)
        assert len(got) == len(ref)
        for d, (box, score, kp) in zip(got, ref):
            np.testing.assert_array_equal(d.box, box)
            assert d.score == score
            np.testing.assert_array_equal(d.keypoints, kp)


def test_eye_patch_normalisation_equals_numpy_mean_std():
    from edgeaffect.vision.eyes import normalise_eye_patches

    rng = np.random.default_rng(9)
    for k in range(300):
        p = rng.integers(0, 256, (2, 24, 40), np.uint8) if k % 3 else np.full((2, 24, 40), rng.integers(0, 256), np.uint8)
        x = p.astype(np.float32)
        mu = x.mean(axis=(1, 2), keepdims=True)
        sd = np.maximum(x.std(axis=(1, 2), keepdims=True), 4.0)
        ref = np.clip((x - mu) / (3.0 * sd), -1.0, 1.0).astype(np.float32)
        got = normalise_eye_patches(p)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, ref)


def test_percentile90_equals_numpy():
    from collections import deque

    from edgeaffect.vision.eyes import percentile90

    rng = np.random.default_rng(10)
    for n in list(range(1, 40)) + [149, 150]:
        for _ in range(30):
            v = deque(rng.uniform(0.0, 0.4, n).tolist(), maxlen=150)
            assert percentile90(v) == float(np.percentile(v, 90))


def test_eye_patch_matrix_and_eyelid_mapping_equal_the_numpy_versions():
    from edgeaffect.vision.alignment import snap_affine
    from edgeaffect.vision.eyes import (
        EYE_CONTOURS,
        EYE_PATCH_H,
        EYE_PATCH_W,
        EYE_SPAN,
        eye_patch_matrices,
        eyelids_to_frame,
    )

    rows = np.array(EYE_CONTOURS).ravel() - 36
    rng = np.random.default_rng(11)
    for _ in range(300):
        pts = rng.uniform(0, 640, (68, 2))
        m = eye_patch_matrices(pts)
        for k, (i, j) in enumerate(((36, 39), (42, 45))):
            a, b = pts[i], pts[j]
            d = b - a
            dist = max(float(np.hypot(*d)), 1e-3)
            s = EYE_SPAN * EYE_PATCH_W / dist
            ref = np.array([[d[0] / dist * s, d[1] / dist * s, 0.0], [-d[1] / dist * s, d[0] / dist * s, 0.0]])
            ref[:, 2] = np.array([EYE_PATCH_W / 2.0, EYE_PATCH_H / 2.0]) - ref[:, :2] @ (0.5 * (a + b))
            np.testing.assert_allclose(m[k], snap_affine(ref), rtol=0, atol=1e-9)  # on the alignment grid
        q = rng.uniform(0, 40, (2, 6, 2))
        qq = q.copy()
        qq[1, :, 0] = (EYE_PATCH_W - 1) - qq[1, :, 0]
        a_, b_, c_, d_ = m[:, 0, 0, None], m[:, 0, 1, None], m[:, 1, 0, None], m[:, 1, 1, None]
        det = a_ * d_ - b_ * c_
        u, v = qq[..., 0] - m[:, 0, 2, None], qq[..., 1] - m[:, 1, 2, None]
        ref = np.empty((12, 2))
        ref[rows, 0] = ((d_ * u - b_ * v) / det).ravel()
        ref[rows, 1] = ((a_ * v - c_ * u) / det).ravel()
        np.testing.assert_array_equal(eyelids_to_frame(q, m), ref)


def test_affect_window_view_equals_a_stacked_deque():
    from collections import deque

    from edgeaffect.models.affect import AffectWindow

    rng = np.random.default_rng(12)
    w = AffectWindow(7, 5)
    ref: deque[np.ndarray] = deque([np.zeros(5, np.float32)] * 7, maxlen=7)
    for k in range(40):
        row = rng.normal(size=6).astype(np.float32) if k % 5 else np.zeros(6, np.float32)
        w.push(row)
        ref.append(row[:5])
        a = w.array()
        np.testing.assert_array_equal(a, np.stack(ref))
        assert a.flags.c_contiguous and not a.flags.writeable
        assert len(w) == min(k + 1, 7)
    assert w.valid_fraction == np.mean([np.any(r) for r in list(ref)])


def _random_warp(rng: np.random.Generator, w: int, h: int, out: int) -> np.ndarray:
    ang, sc = rng.uniform(-3.2, 3.2), rng.uniform(0.2, 3.0)
    cx, cy = rng.uniform(-60, w + 60), rng.uniform(-60, h + 60)
    m = np.array([[np.cos(ang) * sc, -np.sin(ang) * sc, 0.0], [np.sin(ang) * sc, np.cos(ang) * sc, 0.0]])
    m[:, 2] = np.array([out / 2, out / 2]) - m[:, :2] @ [cx, cy]
    return m


def test_grey_on_demand_crops_equal_crops_of_the_whole_grey_frame():
    """Crops and eye patches read only converted pixels: a buffer poisoned with 0 or 255
    outside what was converted gives exactly the crops of cv2.cvtColor's whole grey frame,
    over warps inside, across and wholly outside the frame, one after another on one frame
    (so the converted box grows by strips)."""
    import cv2

    from edgeaffect.vision.alignment import crop
    from edgeaffect.vision.eyes import eye_patches
    from edgeaffect.vision.grey import GreyOnDemand

    rng = np.random.default_rng(11)
    grown = 0
    for _ in range(150):
        h, w = int(rng.integers(40, 300)), int(rng.integers(40, 500))
        bgr = rng.integers(0, 256, (h, w, 3), np.uint8)
        full = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        lazy = [GreyOnDemand(bgr, _buffer=np.full((h, w), v, np.uint8)) for v in (0, 255)]
        for _ in range(int(rng.integers(1, 6))):
            out = int(rng.choice([24, 40, 96]))
            m = _random_warp(rng, w, h, out)
            ref = crop(full, m, out)
            for g in lazy:
                before = g.converted
                np.testing.assert_array_equal(crop(g, m, out), ref)
                grown += before is not None and before != g.converted
        pts = rng.uniform(0, [w, h], (68, 2))
        for g in lazy:
            np.testing.assert_array_equal(eye_patches(g, pts), eye_patches(full, pts))
            np.testing.assert_array_equal(g.full, full)
    assert grown > 50  # the strip-growing path ran


def _results_without_timings(video_analyzer, frames) -> list[dict]:
    """Every frame's result dict from a fresh one-face VIDEO analyzer, timings dropped (they differ run to run)."""
    an = video_analyzer(running_mode="video", max_faces=1, num_threads=1)
    rows = []
    for i, f in enumerate(frames):
        d = an.process(f, 1000.0 + 33.3 * i).to_dict()
        d.pop("timings_ms", None)
        rows.append(d)
    return rows


def test_analyzer_results_do_not_depend_on_unconverted_grey_pixels(video_analyzer, monkeypatch):
    """End to end on colour frames: the on-demand grey (poisoned where unconverted) and the
    whole grey frame give identical results."""
    import cv2

    import edgeaffect.vision.frames as frames_mod
    from edgeaffect.demo import demo_frames
    from edgeaffect.vision.grey import GreyOnDemand

    frames = list(demo_frames(40))

    def run(factory) -> list[dict]:
        monkeypatch.setattr(frames_mod, "GreyOnDemand", factory)
        return _results_without_timings(video_analyzer, frames)

    whole = run(lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert sum(bool(r.get("faces")) for r in whole) > 30
    for v in (0, 255):
        assert run(lambda bgr, v=v: GreyOnDemand(bgr, _buffer=np.full(bgr.shape[:2], v, np.uint8))) == whole


def test_both_eye_aspect_ratios_equal_the_per_eye_function():
    from edgeaffect.constants import LEFT_EYE, RIGHT_EYE
    from edgeaffect.vision.eyes import eye_aspect_ratio, eye_aspect_ratios

    rng = np.random.default_rng(12)
    for dt in (np.float32, np.float64):
        for i in range(3000):
            p = rng.uniform(0, 640, (68, 2)).astype(dt)
            if i % 50 == 0:
                p[39] = p[36]  # a zero-width eye
            if i % 70 == 0:
                p[45] = p[42]
            assert eye_aspect_ratios(p) == (eye_aspect_ratio(p, RIGHT_EYE), eye_aspect_ratio(p, LEFT_EYE))


def test_au_hold_in_python_floats_decides_as_the_numpy_version():
    from edgeaffect.tracking.tracker import _hold_affine
    from edgeaffect.vision.alignment import apply_affine, invert_affine

    def numpy_hold(old, new, dz):
        corners = np.array([[0.0, 0.0], [112.0, 0.0], [0.0, 112.0], [112.0, 112.0]])
        in_frame = apply_affine(invert_affine(np.ascontiguousarray(new, np.float64)), corners)
        return old if float(np.abs(apply_affine(old, in_frame) - corners).max()) <= dz else new

    rng = np.random.default_rng(13)
    kept = 0
    for _ in range(20000):
        ang, sc = rng.uniform(-0.5, 0.5), rng.uniform(0.2, 3)
        new = np.array([[np.cos(ang) * sc, -np.sin(ang) * sc, rng.uniform(-500, 500)],
                        [np.sin(ang) * sc, np.cos(ang) * sc, rng.uniform(-500, 500)]])
        old = new + rng.normal(0, 10 ** rng.uniform(-5, -1), (2, 3))
        dz = rng.uniform(0.05, 1.5)
        got = _hold_affine(old, new, dz)
        assert got is numpy_hold(old, new, dz)
        kept += got is old
    assert 2000 < kept < 18000  # both outcomes exercised


def test_eye_patch_matrices_and_au45_rule_equal_their_numpy_versions():
    from edgeaffect.vision.eyes import au45_with_eye_state, eye_patch_matrices, eye_patch_matrix

    rng = np.random.default_rng(14)
    for dt in (np.float32, np.float64):
        for _ in range(500):
            p = rng.uniform(0, 640, (68, 2)).astype(dt)
            q = np.asarray(p, np.float64)
            ref = np.stack([eye_patch_matrix(q[36], q[39]), eye_patch_matrix(q[42], q[45])])
            got = eye_patch_matrices(p)
            assert got.dtype == np.float64 and np.array_equal(got, ref)
    for _ in range(500):
        aus = rng.uniform(0, 5, 15).astype(np.float32)
        pr = rng.uniform(-0.2, 1.2, 2)
        ref = aus.copy()
        ref[14] = max(aus[14], float(np.clip(5.0 * 0.5 * (pr[0] + pr[1]), 0.0, 5.0)))
        assert np.array_equal(au45_with_eye_state(aus, pr), ref)


def test_letterbox_band_warp_equals_the_full_square_warp():
    """The detector warps only the band of its square input that holds the frame; the padding
    stays exactly black and the band's pixels are the full warp's, for any frame shape."""
    import cv2

    from edgeaffect.models.detector import letterbox_warp

    rng = np.random.default_rng(15)
    for i in range(120):
        h, w = int(rng.integers(40, 1200)), int(rng.integers(40, 1900))
        if i % 2:
            h, w = w, h
        bgr = rng.integers(0, 256, (h, w, 3), np.uint8)
        for size in (128, 192):
            side = max(h, w)
            px, py = (side - w) / 2.0, (side - h) / 2.0
            m = np.array([[size / side, 0, px * size / side], [0, size / side, py * size / side]], np.float32)
            flags = cv2.INTER_AREA if side > 2 * size else cv2.INTER_LINEAR
            ref = cv2.warpAffine(bgr, m, (size, size), flags=flags, borderValue=(0, 0, 0))
            got = letterbox_warp(bgr, m, size, flags)
            np.testing.assert_array_equal(got, ref)


def test_mono_frames_are_analysed_without_a_bgr_copy_and_as_their_bgr_copy_would_be(video_analyzer, monkeypatch):
    """A mono sensor's frame (NIR driver camera) goes to the detector as grey: no full-frame
    GRAY2BGR per frame, and the same results as handing the pipeline its BGR copy."""
    import cv2

    import edgeaffect.vision.frames as frames_mod
    from edgeaffect.demo import demo_frames

    mono = [f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in demo_frames(40)]

    def run(frames) -> list[dict]:
        return _results_without_timings(video_analyzer, frames)

    as_bgr = run([cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in mono])
    assert sum(bool(r.get("faces")) for r in as_bgr) > 30
    made: list[int] = []
    real = frames_mod.cv2.cvtColor

    def spy(img, code, *a, **k):
        if code == cv2.COLOR_GRAY2BGR and img.ndim == 2 and img.shape == mono[0].shape:
            made.append(1)
        return real(img, code, *a, **k)

    monkeypatch.setattr(frames_mod.cv2, "cvtColor", spy)
    assert run(mono) == as_bgr
    assert not made  # the BGR copy of a mono frame was never made
    nf = frames_mod.normalise_frame(mono[0])
    assert nf.bgr.shape == (*mono[0].shape, 3) and made  # ... until someone asks for it (the overlay)
