"""Video files through OpenCV, with optional real-time pacing (to mimic a camera)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from ..errors import SourceError
from .base import Frame, FrameSource


class VideoFileSource(FrameSource):
    name = "file"

    def __init__(self, path: str | Path, *, realtime: bool = False, loop: bool = False) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._t0 = 0.0
        self._fps = 0.0
        self._count = 0

    def open(self) -> None:
        if not self.path.exists():
            raise SourceError(f"video file {self.path} does not exist")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"cannot open {self.path} as a video (unsupported container/codec or not a video)")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise SourceError(f"{self.path} opened but no frame could be decoded (corrupt or empty video)")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._cap = cap
        self._fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
        self._count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._t0 = time.monotonic()

    @property
    def fps(self) -> float | None:
        return self._fps or None

    @property
    def frame_count(self) -> int | None:
        return self._count or None

    def read(self) -> Frame | None:
        if self._cap is None:
            self.open()
        assert self._cap is not None
        ok, img = self._cap.read()
        if not ok or img is None:
            short = self._count - self._index
            # First pass ended well short of the container's frame count: truncated or corrupt. The count is
            # exact for MP4/AVI; Matroska/WebM often only estimate it, hence the 5 % margin.
            if self._index < self._count and short >= max(2, 0.05 * self._count):
                raise SourceError(f"{self.path}: decoding stopped after {self._index} of {self._count} frames "
                                  "(truncated or corrupt file); the frames before were analysed")
            if self.loop and self._index > 0:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, img = self._cap.read()
            if not ok or img is None:
                return None
        # Timestamps from the delivered-frame index (monotonic across loops): container pts
        # are unreliable across codecs.
        ts = self._index * 1000.0 / self._fps
        if self.realtime:
            delay = self._t0 + ts / 1000.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        f = Frame(img, ts, self._index, "BGR")
        self._index += 1
        return f

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
