"""Crops and similarity alignment.

Two crops exist and both are similarity transforms (rotation + uniform scale + shift):

* the *landmark crop*: a square, eye-line-levelled window around the face, defined by a
  centre, a side length and an angle (`FaceWindow`). It is computed from the previous
  frame's landmarks while tracking, or from the detector box + eye keypoints after a
  (re)detection. Training draws crops with the same definition plus jitter, so the
  network sees at run time what it saw in training.
* the *AU crop*: a 5-point similarity alignment (eye centres, nose tip, mouth corners) to
  a fixed template, so that AU appearance is compared in a canonical face frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..constants import LEFT_EYE, RIGHT_EYE
from .grey import GreyOnDemand, GreySource, footprint_of, source_bounds

#: Fixed grids for the crop geometry. Windows and alignment matrices are computed in float64
#: and then snapped: a last-bit difference (numpy's SIMD reductions, libm, the float16
#: detector differ between x86_64 and aarch64 by 1e-16..1e-5) no longer moves a crop by one
#: of OpenCV's 1/32-px interpolation steps, so identical frames give identical crops on both
#: ISAs except when a value lies within that noise of a grid line (probability ~ noise/step).
#: The steps are far coarser than that noise (the float16 detector moves a box by ~3e-4 px, the
#: dynamic-range landmark net a point by ~1e-6 px) and far finer than what matters: the
#: landmark net is trained on windows jittered by several pixels, and 1/256 px of AU crop
#: shift is below OpenCV's own 1/1024-px coordinate precision.
WINDOW_GRID_PX = 1.0 / 4  # window centre and side
WINDOW_GRID_RAD = 2.0**-9  # window angle (~0.11 deg)
AFFINE_GRID_LINEAR = 2.0**-16  # 2x2 part of an alignment matrix (~0.002 px over a 112-px crop)
AFFINE_GRID_SHIFT = 2.0**-8  # its translation (px)


def snap(x: float, step: float) -> float:
    """`x` on the grid of `step` (round half to even, as numpy and Python do everywhere)."""
    return float(round(x / step) * step)


def snap_affine(m: np.ndarray) -> np.ndarray:
    """A 2x3 float64 affine with its linear part and translation on fixed grids."""
    (a, b, c), (d, e, f) = np.asarray(m, np.float64).tolist()
    return _snapped(a, b, c, d, e, f)


def _snapped(a: float, b: float, c: float, d: float, e: float, f: float) -> np.ndarray:
    """[[a, b, c], [d, e, f]] on the fixed grids, from six Python floats (round() is
    round-half-even like np.round, and the grid multiples are exact): ~4x cheaper than numpy's
    per-call overhead on a 2x3 array."""
    return np.array(snapped_rows(a, b, c, d, e, f), np.float64)


def snapped_rows(a: float, b: float, c: float, d: float, e: float, f: float) -> list[list[float]]:
    """`_snapped` as two rows of Python floats (for callers that build their own arrays)."""
    lin, sh = AFFINE_GRID_LINEAR, AFFINE_GRID_SHIFT
    return [[round(a / lin) * lin, round(b / lin) * lin, round(c / sh) * sh],
            [round(d / lin) * lin, round(e / lin) * lin, round(f / sh) * sh]]


LANDMARK_CROP_SIZE = 96
AU_CROP_SIZE = 96

#: Side of the landmark window relative to the levelled landmark bounding box.
LANDMARK_WINDOW_MARGIN = 1.35

# Template for the AU crop in a 112x112 image: ArcFace's five points, pulled 18% towards
# the centre so that brows (AU1/2/4) and chin (AU17) stay inside the crop.
_ARCFACE_5 = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], dtype=np.float64
)
AU_TEMPLATE_5 = (_ARCFACE_5 - np.array([56.0, 66.0])) * 0.82 + np.array([56.0, 62.0])


@dataclass(frozen=True)
class FaceWindow:
    """A square, rotated window: where the landmark network looks."""

    cx: float
    cy: float
    size: float
    angle: float  # radians, eye-line angle in the image

    def snapped(self) -> FaceWindow:
        """This window on the fixed grid (WINDOW_GRID_PX, WINDOW_GRID_RAD)."""
        return FaceWindow(snap(self.cx, WINDOW_GRID_PX), snap(self.cy, WINDOW_GRID_PX),
                          max(snap(self.size, WINDOW_GRID_PX), WINDOW_GRID_PX), snap(self.angle, WINDOW_GRID_RAD))

    def to_crop_matrix(self, out_size: int = LANDMARK_CROP_SIZE) -> np.ndarray:
        """2x3 float64 affine mapping frame pixels -> crop pixels, from the snapped window."""
        w = self.snapped()
        s = out_size / w.size
        c, si = math.cos(-w.angle) * s, math.sin(-w.angle) * s
        # rotate by -angle about the window centre, scale, then move centre to crop centre
        m = np.array([[c, -si, 0.0], [si, c, 0.0]], dtype=np.float64)
        m[:, 2] = (out_size / 2.0 - (m[0, 0] * w.cx + m[0, 1] * w.cy), out_size / 2.0 - (m[1, 0] * w.cx + m[1, 1] * w.cy))
        return snap_affine(m)

    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x, y, w, h) of the window (ignoring rotation)."""
        return (self.cx - self.size / 2, self.cy - self.size / 2, self.size, self.size)


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


#: the eyes as slices (RIGHT_EYE / LEFT_EYE are contiguous): same rows as fancy indexing, no index list per call
_RE = slice(RIGHT_EYE[0], RIGHT_EYE[-1] + 1)
_LE = slice(LEFT_EYE[0], LEFT_EYE[-1] + 1)
assert tuple(range(68))[_RE] == tuple(RIGHT_EYE) and tuple(range(68))[_LE] == tuple(LEFT_EYE)


def window_from_landmarks(points: np.ndarray, margin: float = LANDMARK_WINDOW_MARGIN) -> FaceWindow:
    """The landmark window for a set of 68 points: levelled bbox centre, side = margin * max extent."""
    p = np.asarray(points, np.float64)
    (rx, ry), (lx, ly) = (np.add.reduce(p[_RE.start : _LE.stop].reshape(2, 6, 2), 1) / 6).tolist()  # eye centres (== .mean(1))
    angle = math.atan2(ly - ry, lx - rx)
    centroid = np.add.reduce(p, 0) / len(p)  # == p.mean(0), without its Python wrapper
    c, s = math.cos(-angle), math.sin(-angle)
    levelled = (p - centroid) @ np.array([[c, s], [-s, c]])  # rows rotated by -angle
    (lo_x, lo_y), (hi_x, hi_y) = levelled.min(0).tolist(), levelled.max(0).tolist()
    mx, my = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2
    cx, cy = centroid.tolist()
    # back to image frame (the rotation is orthonormal: its inverse is its transpose)
    centre_x, centre_y = cx + (mx * c + my * s), cy + (mx * -s + my * c)
    side = max(hi_x - lo_x, hi_y - lo_y) * margin
    return FaceWindow(centre_x, centre_y, max(side, 8.0), angle)


def crop(image: GreySource, m: np.ndarray, out_size: int) -> np.ndarray:
    """Warp with replicated borders: faces at the frame edge stay plausible, never black bars.

    When the whole crop samples inside the image no border pixel is ever read, and OpenCV's
    cheaper constant-border path gives the same pixels (checked in the tests): ~40 % of a
    96-px crop's cost, on every frame's two crops. `image` may be a `GreyOnDemand`: only the
    crop's footprint is converted."""
    h, w = image.shape[:2]
    bounds = source_bounds(m, out_size, out_size)
    border = cv2.BORDER_CONSTANT if _bounds_inside(bounds, w, h, 2.0) else cv2.BORDER_REPLICATE
    src = image.covering(footprint_of(bounds, w, h)) if isinstance(image, GreyOnDemand) else image
    return cv2.warpAffine(src, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=border)


def samples_inside(m: np.ndarray, out_w: int, out_h: int, img_w: int, img_h: int, margin: float = 2.0) -> bool:
    """True when every output pixel of the warp `m` (frame -> crop) maps `margin` px inside
    the image (bilinear reads the pixel and its right/lower neighbour)."""
    return _bounds_inside(source_bounds(m, out_w, out_h), img_w, img_h, margin)


def _bounds_inside(bounds: tuple[float, float, float, float] | None, img_w: int, img_h: int, margin: float) -> bool:
    if bounds is None:
        return False
    lo_x, lo_y, hi_x, hi_y = bounds
    return margin <= lo_x and hi_x <= img_w - 1 - margin and margin <= lo_y and hi_y <= img_h - 1 - margin


_NOSE_MOUTH = np.array([30, 48, 54])


def five_points(points68: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip, mouth corners from 68 points (order matches AU_TEMPLATE_5)."""
    out = np.empty((5, 2), np.float64)
    out[0] = points68[_RE].mean(0)
    out[1] = points68[_LE].mean(0)
    out[2:] = points68[_NOSE_MOUTH]
    return out


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, no reflection) mapping src -> dst, as 2x3.

    In 2-D Umeyama's SVD has a closed form: with centred points, a = sum(s.d) and
    b = sum(s x d) give the rotation angle atan2(b, a) and scale sqrt(a^2 + b^2) / sum|s|^2
    (the best proper rotation, i.e. the SVD solution with its reflection fix). Same result to
    float64 rounding, without the per-call cost of svd/det on a 2x2 (this runs every frame)."""
    a, b, c, d, e, f = _similarity(np.asarray(src, np.float64).tolist(), np.asarray(dst, np.float64).tolist())
    return np.array([[a, b, c], [d, e, f]], np.float64)


def _similarity(src: list[list[float]] | list[tuple[float, float]],
                dst: list[list[float]] | list[tuple[float, float]]) -> tuple[float, float, float, float, float, float]:
    """`similarity_transform` on (x, y) pairs of Python floats: the six matrix entries, row by
    row. A handful of points per frame, where numpy's per-call overhead cost ~5x the arithmetic
    (IEEE float64 either way, so as deterministic across ISAs)."""
    n = float(len(src))
    msx = sum(q[0] for q in src) / n
    msy = sum(q[1] for q in src) / n
    mdx = sum(q[0] for q in dst) / n
    mdy = sum(q[1] for q in dst) / n
    a = b = var = 0.0
    for (sx, sy), (dx, dy) in zip(src, dst):
        sx -= msx
        sy -= msy
        dx -= mdx
        dy -= mdy
        a += sx * dx + sy * dy
        b += sx * dy - sy * dx
        var += sx * sx + sy * sy
    norm = math.hypot(a, b)
    c, si = (1.0, 0.0) if norm == 0.0 else (a / norm, b / norm)
    scale = norm / max(var, 1e-12 * n)
    m00, m01, m10, m11 = scale * c, -scale * si, scale * si, scale * c
    return m00, m01, mdx - (m00 * msx + m01 * msy), m10, m11, mdy - (m10 * msx + m11 * msy)


def au_crop_matrix(points68: np.ndarray, out_size: int = AU_CROP_SIZE) -> np.ndarray:
    """5-point similarity alignment to the AU template, float64 on the fixed affine grid:
    `snap_affine(similarity_transform(five_points(points68), template))`, kept on Python floats
    from the points to the snapped matrix (it runs every frame)."""
    return _snapped(*_similarity(_five_points_list(np.asarray(points68, np.float64)), _au_template_list(out_size)))


def _five_points_list(p: np.ndarray) -> list[tuple[float, float]]:
    """`five_points` as five (x, y) Python float pairs."""
    eyes = p[_RE.start : _LE.stop].tolist()  # 12 rows: right eye then left eye
    out = []
    for k in (0, 6):
        e = eyes[k : k + 6]
        out.append((sum(q[0] for q in e) / 6.0, sum(q[1] for q in e) / 6.0))
    out.extend((float(x), float(y)) for x, y in p[_NOSE_MOUTH].tolist())
    return out


_TEMPLATES: dict[int, list[tuple[float, float]]] = {}


def _au_template_list(out_size: int) -> list[tuple[float, float]]:
    t = _TEMPLATES.get(out_size)
    if t is None:
        t = _TEMPLATES[out_size] = [(float(x), float(y)) for x, y in (AU_TEMPLATE_5 * (out_size / 112.0)).tolist()]
    return t


def normalise_landmarks(points68: np.ndarray, au_matrix: np.ndarray | None = None) -> np.ndarray:
    """Pose-normalised shape for the temporal model: similarity-aligned to the AU template
    frame and scaled to roughly [-1, 1] (0 = template centre), so that translation, scale and
    in-plane rotation are removed and what remains is expression and out-of-plane pose.
    `au_matrix`: the frame's au_crop_matrix(points68, 112) when already computed."""
    m = au_crop_matrix(points68, 112) if au_matrix is None else au_matrix
    return (apply_affine(m, points68) - 56.0) / 56.0
