"""Per-frame inputs the driver-monitoring policy derives from a frame and its face.

- `image_quality`: brightness, contrast and saturated share of a subsampled grey image: the
  poor-vision / camera-blocked test (sun over-exposing an IR camera, a covered lens, a dark
  cabin without IR), the job openpilot's poorVisionProb does with a network.
- `head_pose_std`: the head pose's standard deviation, propagated from the landmark net's
  per-point sigmas through the PnP solve (first order: a numerical Jacobian over the six
  points the solver uses), like driverStateV2's faceOrientationStd.
- `eye_closure`: per-eye closed probabilities from the landmark model when it gives them
  (`eyes.closed_prob_left/right`), else the EAR openness relative to the person's baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..capture.base import to_uint8
from ..vision.headpose import _IDX as POSE_POINTS  # the six points the PnP fit uses
from ..vision.headpose import _MODEL_3D as MODEL_3D

# POSE_POINTS (nose tip, chin, outer eye corners, mouth corners) and MODEL_3D are
# vision.headpose's; tests/test_dms.py checks that head_pose_std's fit is the same pose.


@dataclass(frozen=True)
class ImageQuality:
    brightness: float  # mean, 0..255
    contrast: float  # std, 0..255
    saturated: float  # share of pixels >= 250
    dark: float  # share of pixels <= 10

    def as_dict(self) -> dict[str, float]:
        return {"brightness": round(self.brightness, 1), "contrast": round(self.contrast, 1),
                "saturated": round(self.saturated, 3), "dark": round(self.dark, 3)}


def image_quality(image: np.ndarray, bit_depth: int | None = None, max_side: int = 64) -> ImageQuality:
    """Cheap statistics on a strided subsample (<= max_side px per side), on an 8-bit scale
    (uint16 samples scaled by their declared `bit_depth`, as capture.base.to_uint8 does)."""
    if image.ndim < 2 or image.size == 0:
        return ImageQuality(0.0, 0.0, 0.0, 1.0)
    h, w = image.shape[:2]
    step = max(1, int(math.ceil(max(h, w) / max_side)))
    g = to_uint8(np.ascontiguousarray(image[::step, ::step]), bit_depth).astype(np.float32)
    if g.ndim == 3:
        g = g[..., :3].mean(axis=2)
    return ImageQuality(float(g.mean()), float(g.std()), float((g >= 250).mean()), float((g <= 10).mean()))


def _euler_deg(rvec: np.ndarray) -> np.ndarray:
    """yaw, pitch, roll (degrees, vision.headpose's conventions) of a Rodrigues vector."""
    r, _ = cv2.Rodrigues(rvec)
    sy = math.hypot(r[0, 0], r[1, 0])
    return np.degrees([math.atan2(-r[2, 0], sy) * -1.0, -math.atan2(r[2, 1], r[2, 2]), math.atan2(r[1, 0], r[0, 0])])


def head_pose_std(points68: np.ndarray, sigma68: np.ndarray, frame_size: tuple[int, int]) -> dict[str, float] | None:
    """First-order std (degrees) of yaw/pitch/roll given isotropic per-point sigmas (pixels).

    The pose is the PnP fit of vision.headpose (same 3D model, camera and solver); its
    covariance is the weighted least-squares one, (J^T W J)^-1 with J = d(projection)/d(rvec,
    tvec) from cv2.projectPoints and W = 1/sigma^2, mapped to Euler angles by a numerical
    Jacobian of the Rodrigues -> Euler conversion. One PnP solve (~0.2 ms), not one per point.
    """
    w, h = frame_size
    cam = np.array([[float(w), 0, w / 2.0], [0, float(w), h / 2.0], [0, 0, 1]], dtype=np.float64)
    model = MODEL_3D * np.array([1, -1, -1])
    img = np.asarray(points68, dtype=np.float64)[list(POSE_POINTS)]
    ok, rvec, tvec = cv2.solvePnP(model, img, cam, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    sig = np.asarray(sigma68, dtype=np.float64)[list(POSE_POINTS)]
    if not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        return None
    _, jac = cv2.projectPoints(model, rvec, tvec, cam, None)
    j = jac[:, :6]  # d(u0, v0, u1, v1 ...)/d(rvec, tvec)
    wgt = np.repeat(1.0 / sig**2, 2)
    # cv2.invert, not np.linalg.inv: a 6x6 through a multi-threaded BLAS cost ~1 ms per frame here
    ok_inv, inv = cv2.invert(j.T @ (j * wgt[:, None]), flags=cv2.DECOMP_SVD)
    if not ok_inv:
        return None
    cov = inv[:3, :3]
    base = _euler_deg(rvec)
    e = np.zeros((3, 3))
    for k in range(3):
        d = np.zeros((3, 1))
        d[k] = 1e-6
        e[:, k] = (_euler_deg(rvec + d) - base) / 1e-6
    sd = np.sqrt(np.clip(np.diag(e @ cov @ e.T), 0, None))
    return {"yaw": round(float(sd[0]), 2), "pitch": round(float(sd[1]), 2), "roll": round(float(sd[2]), 2)}


@dataclass(frozen=True)
class EyeClosure:
    source: str  # "network" (closed probabilities) | "ear" (openness fallback) | "none"
    closed_prob_left: float | None
    closed_prob_right: float | None
    closure: float | None  # 0 open .. 1 closed (mean closed probability, or 1 - openness)
    closed_p80: bool | None  # counts as closed for PERCLOS P80
    closed_episode: bool | None  # inside a closure episode (blink / long blink / microsleep)


def eye_closure(eyes: dict[str, Any] | None, cfg: Any) -> EyeClosure:
    if not eyes:
        return EyeClosure("none", None, None, None, None, None)
    pl, pr = eyes.get("closed_prob_left"), eyes.get("closed_prob_right")
    if pl is not None and pr is not None:
        p = 0.5 * (float(pl) + float(pr))
        closed = p >= cfg.closed_prob_threshold
        return EyeClosure("network", float(pl), float(pr), p, closed, closed)
    op = eyes.get("openness")
    if op is None:
        return EyeClosure("none", None, None, None, None, None)
    op = float(op)
    return EyeClosure("ear", None, None, 1.0 - op, op <= cfg.p80_openness, op < cfg.blink_openness)
