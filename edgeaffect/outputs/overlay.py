"""Overlay rendering: landmarks coloured by their uncertainty, AU bars, and the V/A point on
the circumplex with a circle whose radius is the cumulative uncertainty."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..constants import AU_NAMES
from ..errors import OutputError
from ..results import FrameResult


def _sigma_colour(s_rel: float) -> tuple[int, int, int]:
    """Green (certain) -> yellow -> red (uncertain); s_rel is sigma / inter-ocular distance."""
    t = float(np.clip(s_rel / 0.08, 0, 1))
    return (0, int(255 * (1 - t) + 0 * t) if t > 0.5 else 255, int(510 * t) if t < 0.5 else 255)


class OverlayRenderer:
    def __init__(self, panel_width: int = 220) -> None:
        self.panel_width = panel_width

    def render(self, frame_bgr: np.ndarray, result: FrameResult) -> np.ndarray:
        img = frame_bgr.copy()
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        panel = np.full((h, self.panel_width, 3), 30, np.uint8)
        y_panel = 8
        for f in result.faces:
            if f.box is not None:
                x, y, bw, bh = (int(v) for v in f.box)
                cv2.rectangle(img, (x, y), (x + bw, y + bh), (0, 200, 0) if f.valid else (0, 0, 200), 1)
                cv2.putText(img, f"#{f.track_id}{'' if f.valid else ' lost'}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
            if f.landmarks is not None and f.landmark_sigma is not None:
                iod = float(np.linalg.norm(f.landmarks[36] - f.landmarks[45])) or 1.0
                for (px, py), s in zip(f.landmarks, f.landmark_sigma):
                    cv2.circle(img, (int(px), int(py)), 2, _sigma_colour(float(s) / iod), -1)
            y_panel = self._face_panel(panel, f, y_panel)
        cv2.putText(img, f"{result.frame_index} {result.status}", (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        return np.hstack([img, panel])

    def _face_panel(self, panel: np.ndarray, f, y: int) -> int:
        pw = self.panel_width
        cv2.putText(panel, f"face #{f.track_id}", (6, y + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        y += 16
        if f.aus is not None:
            for name, v in zip(AU_NAMES, f.aus):
                if y > panel.shape[0] - 10:
                    return y
                cv2.putText(panel, name, (6, y + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (200, 200, 200), 1)
                cv2.rectangle(panel, (44, y), (44 + int((pw - 110) * float(v) / 5.0), y + 7), (0, 180, 255), -1)
                y += 10
        if f.valence is not None and f.arousal is not None and y + 90 < panel.shape[0]:
            r = 40
            c = (pw // 2, y + r + 6)
            cv2.circle(panel, c, r, (120, 120, 120), 1)
            cv2.line(panel, (c[0] - r, c[1]), (c[0] + r, c[1]), (80, 80, 80), 1)
            cv2.line(panel, (c[0], c[1] - r), (c[0], c[1] + r), (80, 80, 80), 1)
            p = (int(c[0] + f.valence * r), int(c[1] - f.arousal * r))
            unc = (f.uncertainty or {}).get("cumulative", 0.0)
            cv2.circle(panel, p, max(2, int(unc * r)), (0, 140, 255), 1)
            cv2.circle(panel, p, 3, (0, 255, 255), -1)
            cv2.putText(panel, "V", (c[0] + r + 2, c[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (200, 200, 200), 1)
            cv2.putText(panel, "A", (c[0] - 3, c[1] - r - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (200, 200, 200), 1)
            y += 2 * r + 14
        return y


class OverlayVideoWriter:
    """MP4 (mp4v) overlay writer; opened lazily at the first frame's size."""

    def __init__(self, path: str | Path, fps: float = 30.0, renderer: OverlayRenderer | None = None) -> None:
        self.path = Path(path)
        self.fps = fps
        self.renderer = renderer or OverlayRenderer()
        self._vw: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.count = 0

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        img = self.renderer.render(frame_bgr, result)
        if self._vw is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = (img.shape[1], img.shape[0])
            self._vw = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._vw.isOpened():
                raise OutputError(f"cannot open {self.path} for video writing (OpenCV has no mp4v encoder?)")
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size)
        self._vw.write(img)
        self.count += 1

    def close(self) -> None:
        if self._vw is not None:
            self._vw.release()
            self._vw = None
