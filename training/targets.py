"""Turn raw teacher outputs into training targets.

Landmarks: MediaPipe's mapped points carry a systematic offset from iBUG's definition
(jaw line, brows). We estimate that offset per point in a similarity-normalised face frame
on images where both teachers succeed, correct MediaPipe with it, and average with dlib.
The per-point disagreement after correction (in inter-ocular units) is kept: it is where
the teachers themselves are unsure, and it feeds the landmark uncertainty target.

AUs: there is no AU ground truth. Targets combine (a) geometric FACS measures on the
ensemble landmarks, z-scored against a neutral reference shape (the person's own neutral
images where there are any, else the population's), with (b) a soft expression posterior
(dataset label + the independent `fer` teacher, training/fer_teacher.py) through the
expression-AU relatedness table (edgeaffect.constants.EXPRESSION_AUS).
"""

from __future__ import annotations

import numpy as np

from edgeaffect.constants import (
    AU_NAMES,
    EXPRESSION_AUS,
    EXPRESSION_CIRCUMPLEX,
    EXPRESSIONS,
    interocular_distance,
)
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


#: Upper/lower eyelid points (not the corners). Their target is MediaPipe's refined eyelid
#: contour alone: dlib's 68-point model barely follows eye closure (EAR ~0.2 on shut eyes),
#: so averaging it in would halve every blink. The refined mesh (refine_landmarks=True)
#: gives EAR ~0.05 shut vs ~0.3 open on real video.
EYELIDS = (37, 38, 40, 41, 43, 44, 46, 47)


def build_ensemble(mp: np.ndarray, dl: np.ndarray, offsets: np.ndarray, max_disagreement: float = 0.12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (targets [N,68,2], disagreement [N,68] in IOD units, usable mask [N]).

    Target = mean of dlib and offset-corrected MediaPipe, except the eyelid points
    (`EYELIDS`), which are MediaPipe's refined eyelid contour as it is (no offset: the lid
    margin is the same definition in both schemes, and an offset would open shut eyes)."""
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
        tgt[i, list(EYELIDS)] = mp[i, list(EYELIDS)]
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
    corner_line = ((y[36] + y[39]) / 2 + (y[42] + y[45]) / 2) / 2
    return {
        "inner_brow": ((y[39] - y[21]) + (y[42] - y[22])) / 2,
        "outer_brow": ((y[36] - y[17]) + (y[45] - y[26])) / 2,
        "brow_gap": float(np.linalg.norm(p[21] - p[22])),
        "eye_open": eye_open,
        "ear": eye_open / max(eye_w, 1e-6),
        # lower lid height above the eye-corner line (AU6/7 push the lower lid up)
        "lower_lid": corner_line - (y[40] + y[41] + y[46] + y[47]) / 4,
        "nose_len": y[33] - (y[21] + y[22]) / 2,
        "upper_lip": y[51] - y[33],
        "mouth_w": float(np.linalg.norm(p[48] - p[54])),
        # lip corners above the mouth centre (+: AU12 pulls them up, -: AU15 pulls them down)
        "corner_raise": mouth_mid_y - (y[48] + y[54]) / 2,
        "chin": y[8] - y[57],
        "lower_lip": y[8] - (y[56] + y[57] + y[58]) / 3,
        "lip_thick": (y[61] + y[62] + y[63] - y[50] - y[51] - y[52]) / 3 + (y[56] + y[57] + y[58] - y[65] - y[66] - y[67]) / 3,
        "lip_gap": y[66] - y[62],
    }


def measure_matrix(measures: list[dict[str, float]]) -> tuple[list[str], np.ndarray]:
    keys = list(measures[0].keys())
    return keys, np.array([[d[k] for k in keys] for d in measures], np.float64)


def neutral_reference(m: np.ndarray, identities: np.ndarray, neutral_w: np.ndarray, prior: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-image neutral reference shape measures and the population spread.

    The reference is the person's own neutral face where the data has one (images whose
    neutral weight `neutral_w` > 0.5, i.e. labelled neutral and not contradicted by the
    teacher), shrunk towards the population's neutral median with `prior` pseudo-images;
    people without a neutral image get the population median. Spread: the population MAD
    of neutral faces (robust z-score scale)."""
    neu = neutral_w > 0.5
    pop = np.median(m[neu], 0)
    mad = np.median(np.abs(m[neu] - pop), 0) * 1.4826 + 1e-6
    ref = np.tile(pop, (len(m), 1))
    for ident in np.unique(identities[neu]):
        sel = identities == ident
        own = sel & neu
        n = int(own.sum())
        ref[sel] = (n * np.median(m[own], 0) + prior * pop) / (n + prior)
    return ref, mad


def geometric_scores(keys: list[str], m: np.ndarray, ref: np.ndarray, mad: np.ndarray) -> np.ndarray:
    """[N,15] signed z-scores relative to the neutral reference (positive = AU more active)."""
    zz = (m - ref) / mad
    z = {k: zz[:, i] for i, k in enumerate(keys)}
    s = {
        "AU01": z["inner_brow"],
        "AU02": z["outer_brow"],
        "AU04": -0.5 * (z["inner_brow"] + z["brow_gap"]),
        "AU05": z["eye_open"],
        "AU06": 0.5 * (z["lower_lid"] - z["ear"]),
        "AU07": 0.5 * (z["lower_lid"] - z["ear"]) - 0.25 * z["corner_raise"].clip(0, None),
        "AU09": -z["nose_len"],
        "AU10": -z["upper_lip"],
        "AU12": 0.7 * z["corner_raise"] + 0.3 * z["mouth_w"],
        "AU14": 0.5 * (z["mouth_w"] - z["corner_raise"]),
        "AU15": -z["corner_raise"],
        "AU17": -0.5 * (z["chin"] + z["lower_lip"]),
        "AU23": -z["lip_thick"],
        "AU25": z["lip_gap"],
        "AU45": -z["ear"],
    }
    return np.stack([s[a] for a in AU_NAMES], 1)


#: [7 expressions x 15 AUs] relatedness (1 = the AU belongs to the expression's prototype)
RELATEDNESS = np.array([[1.0 if au in EXPRESSION_AUS.get(e, ()) else 0.0 for au in AU_NAMES] for e in EXPRESSIONS])


def au_targets(scores: np.ndarray, posterior: np.ndarray, lip_gap_px: np.ndarray, ear: np.ndarray) -> np.ndarray:
    """Combine geometry (z vs the neutral reference) and the soft expression posterior
    [N,7] (dataset label + fer teacher) into intensities in [0, 5].

    An AU is at least as strong as its geometry says; an AU related to the expression the
    teachers see gets a floor of 1.5 + 0.5 * its geometric evidence, weighted by that
    expression's probability; a face the teachers call neutral has its AUs halved (except the
    visible states lips-part and eyes-closed). AU12 is never raised by a sad posterior:
    sadness pulls the lip corners down (AU15), which is the geometry the target keeps."""
    geo = np.clip((scores - 1.0) * 0.9, 0.0, 5.0)
    geo[:, AU_NAMES.index("AU25")] = np.clip((lip_gap_px - 2.0) / 3.0, 0, 5)
    geo[:, AU_NAMES.index("AU45")] = np.clip((0.16 - ear) / 0.025, 0, 5)
    rel = posterior @ RELATEDNESS  # [N,15] probability that the AU's expression is shown
    floor = rel * (1.5 + 0.5 * np.clip(scores, 0, 4))
    floor[:, AU_NAMES.index("AU25")] = 0.0  # visible geometry decides lips-part
    out = np.maximum(geo, floor)
    shrink = 1.0 - 0.5 * posterior[:, EXPRESSIONS.index("neutral")]
    keep = [AU_NAMES.index("AU25"), AU_NAMES.index("AU45")]
    mask = np.ones(len(AU_NAMES), bool)
    mask[keep] = False
    out[:, mask] *= shrink[:, None]
    return np.clip(out, 0, 5).astype(np.float32)


def soft_expression_targets(labels: np.ndarray, fer_post: np.ndarray, label_weight: float = 0.5) -> np.ndarray:
    """[N,7] targets: label_weight * one-hot(dataset label) + the rest from the fer teacher.
    Labels outside EXPRESSIONS (contempt) leave the teacher alone."""
    out = (1.0 - label_weight) * fer_post.astype(np.float64)
    for i, lab in enumerate(labels):
        if lab in EXPRESSIONS:
            out[i, EXPRESSIONS.index(lab)] += label_weight
        else:
            out[i] = fer_post[i]
    return (out / out.sum(1, keepdims=True)).astype(np.float32)


def teacher_disagreement(labels: np.ndarray, fer_post: np.ndarray) -> np.ndarray:
    """1 - the fer teacher's probability for the dataset label (0.5 for labels it lacks)."""
    out = np.full(len(labels), 0.5, np.float32)
    for i, lab in enumerate(labels):
        if lab in EXPRESSIONS:
            out[i] = 1.0 - fer_post[i, EXPRESSIONS.index(lab)]
    return out


def circumplex(posterior: np.ndarray) -> np.ndarray:
    """[..., 7] expression probabilities -> [..., 2] (valence, arousal): the expectation of
    the classes' circumplex coordinates (edgeaffect.constants.EXPRESSION_CIRCUMPLEX)."""
    va = np.array([EXPRESSION_CIRCUMPLEX[e] for e in EXPRESSIONS], np.float32)
    return posterior @ va


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
