"""Detection -> landmark window, and the 'is this detection already tracked' test."""

from __future__ import annotations

import math

import numpy as np

from ..models.detector import Detection
from ..models.landmarks import LandmarkResult
from ..vision.alignment import FaceWindow

#: Detector box -> landmark window: fitted on ../shared/data/faces with the teacher
#: landmarks (scripts/fit_detector_window.py); the landmark net is trained with jitter well
#: beyond the residual error of this fit.
DETECTOR_WINDOW = {"scale": 1.22, "dx": 0.0, "dy": 0.09}


def window_from_detection(det: Detection) -> FaceWindow:
    """The landmark window for a detection: box centre shifted along the eye-line frame,
    side = scale * the box's long side, levelled on the detector's eye keypoints."""
    re, le = (np.asarray(p, np.float64) for p in det.eyes)
    angle = math.atan2(le[1] - re[1], le[0] - re[0])
    x, y, w, h = (float(v) for v in det.box)
    side = max(w, h)
    c, s = math.cos(angle), math.sin(angle)
    cx = x + w / 2 + (DETECTOR_WINDOW["dx"] * c - DETECTOR_WINDOW["dy"] * s) * side
    cy = y + h / 2 + (DETECTOR_WINDOW["dx"] * s + DETECTOR_WINDOW["dy"] * c) * side
    return FaceWindow(float(cx), float(cy), float(side * DETECTOR_WINDOW["scale"]), angle)


def detection_inside(det: Detection, lm: LandmarkResult | None) -> bool:
    """True when the detection's box centre lies inside the landmarks' bounding box."""
    if lm is None:
        return False
    x0, y0 = lm.points.min(0)
    x1, y1 = lm.points.max(0)
    cx, cy = det.box[0] + det.box[2] / 2, det.box[1] + det.box[3] / 2
    return bool(x0 <= cx <= x1 and y0 <= cy <= y1)
