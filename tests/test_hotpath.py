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
