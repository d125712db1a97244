"""`edgeaffect demo`: a self-contained run needing no camera, no files and no network.

It builds a short clip from scikit-image's bundled astronaut photo (NASA, public domain):
synthetic head motion (roll, scale, translation), a stretch where the face leaves the frame
(tracking is lost, then re-detected), and an NIR-like stretch (mono, red-channel
luminance, IR-style contrast and glare), then analyses it like `edgeaffect run` would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .capture.base import Frame, FrameSource
from .errors import EdgeAffectError

DEMO_FPS = 30.0


def astronaut_bgr() -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise EdgeAffectError("the demo needs scikit-image for its bundled face photo: pip install 'edgeaffect[demo]'") from None
    return cv2.cvtColor(np.asarray(data.astronaut()), cv2.COLOR_RGB2BGR)


def nir_like(bgr: np.ndarray, t: float) -> np.ndarray:
    """Mono frame resembling an 850 nm camera: skin bright (red-dominated), flat, a glare spot."""
    red = bgr[:, :, 2].astype(np.float32)
    g = np.clip((red - 40.0) * 1.25, 0, 255)
    g = 255.0 * (g / 255.0) ** 0.8
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = w * (0.3 + 0.1 * math.sin(t)), h * 0.15
    g = np.maximum(g, 255.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 25.0**2)))
    return g.astype(np.uint8)


def demo_frames(n_frames: int = 150, size: tuple[int, int] = (640, 480)) -> Iterator[np.ndarray]:
    src = astronaut_bgr()
    w, h = size
    for i in range(n_frames):
        t = i / DEMO_FPS
        phase = i / n_frames
        angle = 12.0 * math.sin(2 * math.pi * t / 2.5)
        scale = 0.95 + 0.12 * math.sin(2 * math.pi * t / 3.7)
        dx = 60.0 * math.sin(2 * math.pi * t / 4.0)
        if 0.45 <= phase < 0.55:  # the face slides out of frame, then comes back
            dx += 700.0 * math.sin(math.pi * (phase - 0.45) / 0.10)
        m = cv2.getRotationMatrix2D((256.0, 200.0), angle, scale)
        m[:, 2] += np.array([w / 2 - 256.0 + dx, h / 2 - 200.0])
        frame = cv2.warpAffine(src, m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 40, 40))
        if phase >= 0.7:
            yield nir_like(frame, t)  # NIR camera frames are single-channel
        else:
            yield frame


class DemoSource(FrameSource):
    name = "demo"

    def __init__(self, n_frames: int = 150) -> None:
        self.n_frames = n_frames
        self._it: Iterator[np.ndarray] | None = None
        self._i = 0

    def open(self) -> None:
        self._it = demo_frames(self.n_frames)
        self._i = 0

    def read(self) -> Frame | None:
        if self._it is None:
            self.open()
        assert self._it is not None
        img = next(self._it, None)
        if img is None:
            return None
        f = Frame(img, self._i * 1000.0 / DEMO_FPS, self._i, "GREY" if img.ndim == 2 else "BGR")
        self._i += 1
        return f

    def close(self) -> None:
        self._it = None

    @property
    def fps(self) -> float:
        return DEMO_FPS

    @property
    def frame_count(self) -> int:
        return self.n_frames


def write_demo_clip(path: str | Path, n_frames: int = 150) -> Path:
    """Write the demo clip as an MP4 (BGR; NIR frames expanded to 3 channels)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), DEMO_FPS, (640, 480))
    for f in demo_frames(n_frames):
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f)
    vw.release()
    return p
