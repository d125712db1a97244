"""Eye openness, blinks and PERCLOS from the landmarks, and the eye-state network's eye patches.

Eye aspect ratio (Soukupova & Cech 2016): EAR = (|p2-p6| + |p3-p5|) / (2 |p1-p4|).
Openness is EAR relative to the person's own open-eye baseline (a slow running upper
percentile), because absolute EAR differs between people and halves behind some glasses.
When the eye-state network (edgeaffect.models.eyes; patches cut here by `eye_patches`) or
a landmark network with an eye-state output runs, its per-eye closed probability
(openpilot's `eyesClosedProb`) is reported too and counts as a second, baseline-free
witness: an eye is closed for blinks/PERCLOS when the EAR says so or when the mean closed
probability exceeds CLOSED_PROB (0.5, the eye-state network's decision threshold).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..constants import AU_INDEX, LEFT_EYE, RIGHT_EYE
from .alignment import snapped_rows
from .grey import GreySource, grey_for_warp

#: Eye patch of the eye-state network (edgeaffect.models.eyes): width x height, grey. The eye's
#: two corners land on a horizontal line through the centre, EYE_SPAN of the width apart.
EYE_PATCH_W, EYE_PATCH_H, EYE_SPAN = 40, 24, 0.6


def eye_patch_matrix(a: np.ndarray, b: np.ndarray, w: int = EYE_PATCH_W, h: int = EYE_PATCH_H) -> np.ndarray:
    """[2, 3] similarity (frame -> patch) that puts corner `a` left and `b` right, level.
    Python floats (two points in, six numbers out: numpy's per-call overhead was most of its cost)."""
    return np.array(_eye_patch_rows(a, b, w, h), np.float64)


def _eye_patch_rows(a, b, w: int = EYE_PATCH_W, h: int = EYE_PATCH_H) -> list[list[float]]:
    ax, ay = float(a[0]), float(a[1])
    bx, by = float(b[0]), float(b[1])
    dx, dy = bx - ax, by - ay
    dist = max(math.hypot(dx, dy), 1e-3)
    s = EYE_SPAN * w / dist
    c, sn = dx / dist * s, dy / dist * s
    mx, my = 0.5 * (ax + bx), 0.5 * (ay + by)
    # on the alignment grid like every crop matrix (alignment.snap_affine): an off-grid matrix
    # let OpenCV's warp round one sample differently on aarch64 than here (one grey level in
    # one eye patch moved the refined eyelid points by 0.03 px on a Pi's core)
    return snapped_rows(c, sn, w / 2.0 - (c * mx + sn * my), -sn, c, h / 2.0 - (-sn * mx + c * my))


def eye_patch_matrices(points68: np.ndarray) -> np.ndarray:
    """[2, 2, 3] float64 frame -> patch similarities of the subject's right eye (iBUG 36 -> 39)
    and left eye (42 -> 45), before the left patch's mirror (`eye_patches` flips it after the warp)."""
    r0, r3, l0, l3 = np.asarray(points68)[36:46:3].tolist()  # iBUG 36, 39, 42, 45 (exact as Python floats)
    return np.array([_eye_patch_rows(r0, r3), _eye_patch_rows(l0, l3)], np.float64)


def eye_patches(gray: GreySource, points68: np.ndarray, matrices: np.ndarray | None = None) -> np.ndarray:
    """[2, H, W] uint8: the subject's right eye (iBUG 36 -> 39) and left eye (42 -> 45, then
    mirrored so both look like a right eye: outer corner left, inner corner right).
    `matrices`: eye_patch_matrices(points68) if already computed."""
    import cv2

    m = eye_patch_matrices(points68) if matrices is None else matrices
    out = np.empty((2, EYE_PATCH_H, EYE_PATCH_W), np.uint8)
    for k in range(2):
        src = grey_for_warp(gray, m[k], EYE_PATCH_W, EYE_PATCH_H)
        out[k] = cv2.warpAffine(src, m[k], (EYE_PATCH_W, EYE_PATCH_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out[1] = out[1, :, ::-1]
    return out


#: The six iBUG eye-contour points in the order of the eye network's point output (`eyelids`):
#: outer corner, upper lid outer, upper lid inner, inner corner, lower lid inner, lower lid outer,
#: as seen in the patch (outer corner left). The left eye's patch is mirrored, so its iBUG
#: indices run the other way.
EYE_CONTOURS = ((36, 37, 38, 39, 40, 41), (45, 44, 43, 42, 47, 46))


#: EYE_CONTOURS as rows of iBUG 36..47 (where each of the 12 network points goes)
_CONTOUR_ROWS = [i - 36 for eye in EYE_CONTOURS for i in eye]


def points_to_patches(points68: np.ndarray, matrices: np.ndarray | None = None) -> np.ndarray:
    """[2, 6, 2] the eye contours of `points68` in the pixels of the patches `eye_patches` cuts
    (EYE_CONTOURS order; the left patch's mirror x -> W - 1 - x, OpenCV's pixel-centre
    convention): the eye network's point target in training, the inverse of `eyelids_to_frame`."""
    m = eye_patch_matrices(points68) if matrices is None else np.asarray(matrices, np.float64)
    q = np.asarray(points68, np.float64)[np.array(EYE_CONTOURS)]  # [2, 6, 2]
    out = np.empty((2, 6, 2))
    out[..., 0] = m[:, 0, 0, None] * q[..., 0] + m[:, 0, 1, None] * q[..., 1] + m[:, 0, 2, None]
    out[..., 1] = m[:, 1, 0, None] * q[..., 0] + m[:, 1, 1, None] * q[..., 1] + m[:, 1, 2, None]
    out[1, :, 0] = (EYE_PATCH_W - 1) - out[1, :, 0]
    return out


def eyelids_to_frame(patch_points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """[12, 2] float64 frame pixels of iBUG 36..47 from the eye network's [2, 6, 2] patch-pixel
    points (EYE_CONTOURS order, the left patch mirrored) and the eye_patch_matrices that cut the
    patches. Explicit 2x2 inverse, one float64 operation at a time on Python floats (no
    BLAS/LAPACK, no FMA: the same on x86_64 and aarch64; twelve points, so cheaper than numpy)."""
    m = np.asarray(matrices, np.float64).tolist()
    q = np.asarray(patch_points, np.float64).reshape(2, 6, 2).tolist()
    out: list[tuple[float, float]] = [(0.0, 0.0)] * 12
    for k in range(2):
        (a, b, tx), (c, d, ty) = m[k]
        det = a * d - b * c
        for j, (px, py) in enumerate(q[k]):
            if k == 1:
                px = (EYE_PATCH_W - 1) - px  # undo the mirror
            u, v = px - tx, py - ty
            out[_CONTOUR_ROWS[6 * k + j]] = ((d * u - b * v) / det, (a * v - c * u) / det)
    return np.array(out, np.float64)


def with_eyelids(points68: np.ndarray, eyelids: np.ndarray) -> np.ndarray:
    """A copy of `points68` with iBUG 36..47 replaced by the eye network's refined contour."""
    out = np.array(points68, copy=True)
    out[36:48] = eyelids
    return out


#: AU45 (blink / eyes closed) from the eye state: AU45_EYES_SCALE x the mean per-eye closed
#: probability, combined with the AU network's own AU45 by max (the AU net barely sees closure;
#: `au45_with_eye_state`). 5 x p puts a surely shut pair of eyes at AU45's top intensity.
AU45_EYES_SCALE = 5.0


def au45_with_eye_state(aus: np.ndarray, closed_prob: tuple[float | None, float | None] | np.ndarray | None) -> np.ndarray:
    """AU intensities with AU45 = max(AU net's AU45, AU45_EYES_SCALE * mean closed probability);
    unchanged (the same object) when no closed probability is known."""
    if closed_prob is None or any(p is None for p in closed_prob):
        return aus
    j = AU_INDEX["AU45"]
    fused = min(max(AU45_EYES_SCALE * 0.5 * (float(closed_prob[0]) + float(closed_prob[1])), 0.0), 5.0)  # == np.clip
    if fused <= float(aus[j]):
        return aus
    out = np.array(aus, copy=True)
    out[j] = fused
    return out


def normalise_eye_patches(patches: np.ndarray) -> np.ndarray:
    """[N, H, W] uint8 -> float32 in [-1, 1]: per-patch mean/std (lighting- and NIR-gain-free),
    clipped at 3 std. The eye network's input; training uses this very function."""
    # numpy's mean/std, spelled out with the same ufunc calls (same float32 values, bit for bit;
    # tested): their Python wrappers cost more than the arithmetic on two 40x24 patches
    x = np.asarray(patches, np.float32)
    n = x.shape[1] * x.shape[2]
    d = x - np.add.reduce(x, axis=(1, 2), keepdims=True) / n
    sd = np.maximum(np.sqrt(np.add.reduce(d * d, axis=(1, 2), keepdims=True) / n), 4.0)
    d /= 3.0 * sd
    return np.minimum(np.maximum(d, -1.0, out=d), 1.0, out=d)  # == np.clip(d, -1, 1), without its Python wrapper


#: Mean per-eye closed probability above which the eyes count as closed: the eye-state
#: network's decision threshold (its logit offset is chosen for the best closed-eye F1 at 0.5 on
#: validation identities, training/train_eyes.py; openpilot uses 0.65 for its own network).
CLOSED_PROB = 0.5
#: ... and below which they count as open again after a closure (blink hysteresis).
OPEN_PROB = 0.35


#: EAR's three distances |p2-p6|, |p3-p5|, |p1-p4| as one vectorised difference (runs twice per frame)
_EAR_A, _EAR_B = np.array([1, 2, 0]), np.array([5, 4, 3])


def eye_aspect_ratios(points68: np.ndarray) -> tuple[float, float]:
    """(right, left) = (eye_aspect_ratio(p, RIGHT_EYE), eye_aspect_ratio(p, LEFT_EYE)): both
    eyes in one pass of the same element-wise operations (same dtype, same values; tested)."""
    p = np.asarray(points68)[RIGHT_EYE[0] : LEFT_EYE[-1] + 1].reshape(2, 6, 2)
    d = p[:, _EAR_A] - p[:, _EAR_B]
    n = np.sqrt((d * d).sum(2))
    # eye_aspect_ratio's scalar arithmetic: the lid sum in the points' dtype, the division in float64
    (sr, sl), (wr, wl) = (n[:, 0] + n[:, 1]).tolist(), n[:, 2].tolist()
    return (0.0 if wr < 1e-6 else sr / (2.0 * wr)), (0.0 if wl < 1e-6 else sl / (2.0 * wl))


def eye_aspect_ratio(points68: np.ndarray, eye: tuple[int, ...]) -> float:
    p = points68[eye[0] : eye[-1] + 1] if tuple(eye) == tuple(range(eye[0], eye[-1] + 1)) else points68[list(eye)]
    d = p[_EAR_A] - p[_EAR_B]
    n = np.sqrt((d * d).sum(1))  # == np.linalg.norm per row, same dtype and rounding
    if n[2] < 1e-6:
        return 0.0
    return float((n[0] + n[1]) / (2.0 * n[2]))


def percentile90(values: Iterable[float]) -> float:
    """`np.percentile(values, 90)` (linear method, numpy's index and lerp formulas, so the same
    float64 value) on a sorted Python list: ~7x cheaper for the 5-150 EARs of the baseline,
    which a new track refreshes on every one of its first 30 frames."""
    s = sorted(values)
    n = len(s)
    q = 0.9
    v = (n - 1) * q  # numpy's virtual index for the linear method
    i = min(max(math.floor(v), 0), n - 1)
    g = v - i
    a, b = s[i], s[min(i + 1, n - 1)]
    diff = b - a
    return float(b - diff * (1 - g) if g >= 0.5 else a + diff * g)  # numpy's _lerp


@dataclass
class EyeState:
    ear_left: float
    ear_right: float
    openness: float  # 0 closed .. 1 open (relative to the baseline)
    blink: bool  # a blink ended on this frame
    blinks_total: int
    perclos: float  # fraction of the recent window with closed eyes (openness < 0.2 or closed prob > CLOSED_PROB; PERCLOS P80)
    closed_prob_left: float | None = None  # subject's left eye (iBUG 42-47), from the eye-state net
    closed_prob_right: float | None = None  # subject's right eye (iBUG 36-41)

    def as_dict(self) -> dict[str, float | bool | int | None]:
        return {
            "ear_left": round(self.ear_left, 4),
            "ear_right": round(self.ear_right, 4),
            "openness": round(self.openness, 3),
            "blink": self.blink,
            "blinks_total": self.blinks_total,
            "perclos": round(self.perclos, 3),
            "closed_prob_left": None if self.closed_prob_left is None else round(self.closed_prob_left, 3),
            "closed_prob_right": None if self.closed_prob_right is None else round(self.closed_prob_right, 3),
        }


class EyeStateTracker:
    """Per-face running state. `window` is the PERCLOS window in frames (~60 s at 30 fps)."""

    def __init__(self, window: int = 1800, baseline_frames: int = 150) -> None:
        self._history: deque[bool] = deque(maxlen=window)  # closed (openness < 0.2) per frame
        self._closed_count = 0
        self._ears: deque[float] = deque(maxlen=baseline_frames)
        self._closed = False
        self.blinks = 0
        self._n = 0
        self._baseline = 0.28

    def update(self, points68: np.ndarray, closed_prob: np.ndarray | None = None) -> EyeState:
        """points68: landmarks; closed_prob: [right, left] eye-closed probabilities or None."""
        er, el = eye_aspect_ratios(points68)
        ear = 0.5 * (er + el)
        self._ears.append(ear)
        self._n += 1
        if len(self._ears) < 5:
            self._baseline = 0.28
        elif self._n % 10 == 0 or len(self._ears) < 30:  # a slow statistic: refresh every 10 frames
            self._baseline = max(percentile90(self._ears), 0.18)
        baseline = self._baseline
        openness = min(max(ear / baseline, 0.0), 1.0)
        # == float(np.mean(closed_prob)) for the two eyes: the sum in their dtype, halved (exact)
        prob = None if closed_prob is None else float(closed_prob[0] + closed_prob[1]) / 2.0
        shut = prob is not None and prob > CLOSED_PROB
        opened = prob is None or prob < OPEN_PROB
        blink = False
        if (openness < 0.55 or shut) and not self._closed:
            self._closed = True
        elif openness > 0.75 and opened and self._closed:
            self._closed = False
            self.blinks += 1
            blink = True
        closed = openness < 0.2 or shut
        if len(self._history) == self._history.maxlen and self._history[0]:
            self._closed_count -= 1  # the oldest frame leaves the window
        self._history.append(closed)
        self._closed_count += int(closed)
        perclos = self._closed_count / len(self._history)
        cl, cr = (None, None) if closed_prob is None else (float(closed_prob[1]), float(closed_prob[0]))
        return EyeState(el, er, openness, blink, self.blinks, perclos, cl, cr)
