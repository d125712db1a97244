"""Turn raw teacher outputs into training targets.

Landmarks: MediaPipe's mapped points carry a systematic offset from iBUG's definition
(jaw line, brows). We estimate that offset per point in a similarity-normalised face frame
on images where both teachers succeed, correct MediaPipe with it, and average with dlib.
The per-point disagreement after correction (in inter-ocular units) is kept: it is where
the teachers themselves are unsure, and it feeds the landmark uncertainty target.

AUs: there is no AU ground truth. Targets combine (a) geometric FACS measures on the
ensemble landmarks, z-scored against neutral-labelled faces, with (b) the expression
labels through the expression-AU relatedness table (edgeaffect.constants.EXPRESSION_AUS).
"""

from __future__ import annotations

import numpy as np

from edgeaffect.constants import AU_NAMES, EXPRESSION_AUS, interocular_distance
from edgeaffect.vision.alignment import AU_TEMPLATE_5, apply_affine, five_points, similarity_transform


def _to_template(p68: np.ndarray) -> np.ndarray:
    m = similarity_transform(five_points(p68), AU_TEMPLATE_5)
    return m


def calibrate_mediapipe_offsets(mp: np.ndarray, dl: np.ndarray) -> np.ndarray:
    """Median (MediaPipe - dlib) per point in the 112-px template frame."""
    diffs = []
    for m68, d68 in zip(mp, dl):
        if np.isnan(m68).any() or np.isnan(d68).any():
            continue
        t = _to_template(d68)
        diffs.append(apply_affine(t, m68) - apply_affine(t, d68))
    return np.median(np.stack(diffs), axis=0)


def build_ensemble(mp: np.ndarray, dl: np.ndarray, offsets: np.ndarray, max_disagreement: float = 0.12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (targets [N,68,2], disagreement [N,68] in IOD units, usable mask [N])."""
    n = len(mp)
    tgt = np.full((n, 68, 2), np.nan, np.float32)
    dis = np.full((n, 68), np.nan, np.float32)
    ok = np.zeros(n, bool)
    for i in range(n):
        have_m, have_d = not np.isnan(mp[i]).any(), not np.isnan(dl[i]).any()
        if not (have_m and have_d):
            continue  # a single teacher is not an ensemble; such images are not used
        t = _to_template(dl[i])
        inv = np.linalg.inv(np.vstack([t, [0, 0, 1]]))[:2]
        m_corr = apply_affine(inv, apply_affine(t, mp[i]) - offsets)
        iod = interocular_distance(dl[i])
        d = np.linalg.norm(m_corr - dl[i], axis=1) / max(iod, 1e-6)
        if d.mean() > max_disagreement:
            continue  # teachers disagree: one of them failed on this image
        tgt[i] = 0.5 * (m_corr + dl[i])
        dis[i] = d
        ok[i] = True
    return tgt, dis, ok


# ---------------------------------------------------------------- AU targets
def geometric_measures(p68: np.ndarray) -> dict[str, float]:
    """FACS-inspired measures in the AU template frame (112-px units, y down)."""
    p = apply_affine(_to_template(p68), p68)
    y = p[:, 1]
    eye_open = (np.linalg.norm(p[37] - p[41]) + np.linalg.norm(p[38] - p[40]) + np.linalg.norm(p[43] - p[47]) + np.linalg.norm(p[44] - p[46])) / 4
    eye_w = (np.linalg.norm(p[36] - p[39]) + np.linalg.norm(p[42] - p[45])) / 2
    mouth_mid_y = (y[62] + y[66]) / 2
    return {
        "inner_brow": ((y[39] - y[21]) + (y[42] - y[22])) / 2,
        "outer_brow": ((y[36] - y[17]) + (y[45] - y[26])) / 2,
        "brow_gap": float(np.linalg.norm(p[21] - p[22])),
        "eye_open": eye_open,
        "ear": eye_open / max(eye_w, 1e-6),
        "nose_len": y[33] - (y[21] + y[22]) / 2,
        "upper_lip": y[51] - y[33],
        "mouth_w": float(np.linalg.norm(p[48] - p[54])),
        "corner_raise": mouth_mid_y - (y[48] + y[54]) / 2,
        "chin": y[8] - y[57],
        "lip_thick": (y[61] + y[62] + y[63] - y[50] - y[51] - y[52]) / 3 + (y[56] + y[57] + y[58] - y[65] - y[66] - y[67]) / 3,
        "lip_gap": y[66] - y[62],
    }


def geometric_scores(measures: list[dict[str, float]], neutral_mask: np.ndarray) -> np.ndarray:
    """[N,15] signed z-scores (positive = AU more active than a typical neutral face)."""
    keys = list(measures[0].keys())
    m = np.array([[d[k] for k in keys] for d in measures], np.float64)
    ref = m[neutral_mask]
    med = np.median(ref, 0)
    mad = np.median(np.abs(ref - med), 0) * 1.4826 + 1e-6
    z = {k: (m[:, i] - med[i]) / mad[i] for i, k in enumerate(keys)}
    s = {
        "AU01": z["inner_brow"],
        "AU02": z["outer_brow"],
        "AU04": -0.5 * (z["inner_brow"] + z["brow_gap"]),
        "AU05": z["eye_open"],
        "AU06": 0.5 * (z["corner_raise"] - z["ear"]),
        "AU07": -z["ear"],
        "AU09": -z["nose_len"],
        "AU10": -z["upper_lip"],
        "AU12": 0.5 * (z["mouth_w"] + z["corner_raise"]),
        "AU14": 0.5 * (z["mouth_w"] - z["corner_raise"]),
        "AU15": -z["corner_raise"],
        "AU17": -z["chin"],
        "AU23": -z["lip_thick"],
        "AU25": z["lip_gap"],
        "AU45": -z["ear"],
    }
    return np.stack([s[a] for a in AU_NAMES], 1)


def au_targets(scores: np.ndarray, labels: np.ndarray, lip_gap_px: np.ndarray, ear: np.ndarray) -> np.ndarray:
    """Combine geometry and labels into intensities in [0, 5]."""
    geo = np.clip((scores - 1.0) * 0.9, 0.0, 5.0)
    # Absolute-geometry AUs: lips parted / eyes closed are visible states, not deviations.
    geo[:, AU_NAMES.index("AU25")] = np.clip((lip_gap_px - 2.0) / 3.0, 0, 5)
    geo[:, AU_NAMES.index("AU45")] = np.clip((0.16 - ear) / 0.025, 0, 5)
    out = geo.copy()
    for i, lab in enumerate(labels):
        related = EXPRESSION_AUS.get(lab, ())
        for au in related:
            j = AU_NAMES.index(au)
            if au in ("AU25",):
                continue  # visible geometry decides lips-part
            out[i, j] = max(out[i, j], 1.5 + 0.5 * float(np.clip(scores[i, j], 0, 4)))
        if lab == "neutral":
            keep = [AU_NAMES.index("AU25"), AU_NAMES.index("AU45")]
            shrink = np.ones(len(AU_NAMES)) * 0.5
            shrink[keep] = 1.0
            out[i] *= shrink
    return np.clip(out, 0, 5).astype(np.float32)


# ---------------------------------------------------------------- evaluation references
def teacher_target(dlib68: np.ndarray, mp68: np.ndarray | None, offsets: np.ndarray) -> np.ndarray:
    """The training target for one evaluation face: dlib averaged with offset-corrected
    MediaPipe (dlib alone when MediaPipe missed the face)."""
    d = np.asarray(dlib68, np.float32)
    if mp68 is None or np.isnan(mp68).any():
        return d
    t, _, ok = build_ensemble(np.asarray(mp68, np.float32)[None], d[None], offsets, max_disagreement=1.0)
    return t[0] if ok[0] else d


def video_teacher_at(fixture, k: int, box: tuple[float, float, float, float], offsets: np.ndarray) -> np.ndarray | None:
    """Teacher target of the face in frame `k` of the video fixture (tests/fixtures/
    teacher_video.npz: every face per frame) that overlaps `box` (IoU > 0.3), else None.
    The clip shows several people, so a track is scored against the face it is on."""
    from edgeaffect.models.detector import iou

    n = int(fixture["count"][k])
    if not n:
        return None
    j = max(range(n), key=lambda j: iou(box, tuple(fixture["boxes"][k][j])))
    if iou(box, tuple(fixture["boxes"][k][j])) <= 0.3:
        return None
    return teacher_target(fixture["dlib"][k][j], fixture["mediapipe"][k][j], offsets)
