"""Fit the detector-box -> landmark-window mapping (edgeaffect.tracking.DETECTOR_WINDOW).

    python scripts/fit_detector_window.py [--detector path/to/detector.json]

Uses the teacher landmarks of ../shared/data/faces (tests/fixtures/teacher_faces.json, dlib
68 points) and the detector's boxes on the same images; prints the median scale and centre
offset (in units of the box side, in the eye-levelled frame) to paste into the analyzer.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np

from edgeaffect.models import ASSETS, find_model
from edgeaffect.models.detector import FaceDetector, iou
from edgeaffect.runtime.runner import ModelRunner
from edgeaffect.vision.alignment import window_from_landmarks

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--detector", default=None, help="detector manifest (default: the shipped one)")
    ap.add_argument("--faces", default=str(REPO.parent / "shared" / "data" / "faces"))
    a = ap.parse_args()
    det = FaceDetector(ModelRunner(a.detector or find_model(ASSETS, "detector")))
    fx = json.loads((REPO / "tests" / "fixtures" / "teacher_faces.json").read_text())
    rows = []
    for name, faces in fx.items():
        img = cv2.imread(str(Path(a.faces) / name))
        dets = det.detect(img)
        for f in faces:
            pts = np.array(f["dlib"], np.float32)
            w = window_from_landmarks(pts)
            d = max(dets, key=lambda d: iou(d.box, tuple(f["box"])), default=None)
            if d is None or iou(d.box, tuple(f["box"])) < 0.3:
                continue
            x, y, bw, bh = d.box
            side = max(bw, bh)
            off = np.array([w.cx - (x + bw / 2), w.cy - (y + bh / 2)]) / side
            c, s = math.cos(-w.angle), math.sin(-w.angle)
            off = np.array([c * off[0] - s * off[1], s * off[0] + c * off[1]])
            rows.append((w.size / side, off[0], off[1]))
    r = np.array(rows)
    print(f"{len(r)} faces: scale {np.median(r[:, 0]):.3f} dx {np.median(r[:, 1]):.3f} dy {np.median(r[:, 2]):.3f}  (spread: {r.std(0).round(3)})")


if __name__ == "__main__":
    main()
