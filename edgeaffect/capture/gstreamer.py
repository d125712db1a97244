"""GStreamer pipelines through OpenCV (cv2.CAP_GSTREAMER), incl. the Jetson CSI camera.

PyPI's opencv-python(-headless) wheels are built *without* GStreamer; on a Jetson use the
JetPack OpenCV (`python3-opencv`, GStreamer-enabled) or a self-built OpenCV. The source
checks `cv2.getBuildInformation()` first and says so instead of failing obscurely.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

import cv2

from ..errors import SourceError
from .base import Frame, FrameSource


@lru_cache(maxsize=1)
def gstreamer_available() -> bool:
    """True if this OpenCV build has the GStreamer videoio backend."""
    info = cv2.getBuildInformation()
    m = re.search(r"^\s*GStreamer:\s*(\S+)", info, re.MULTILINE)
    return bool(m) and m.group(1).upper() not in ("NO", "OFF")


def jetson_csi_pipeline(
    sensor_id: int = 0,
    width: int = 1280,
    height: int = 720,
    fps: float = 30,
    *,
    flip_method: int = 0,
    capture_width: int | None = None,
    capture_height: int | None = None,
) -> str:
    """nvarguscamerasrc (Jetson ISP) -> NVMM NV12 -> nvvidconv (scale/flip) -> BGR appsink.

    `appsink drop=true max-buffers=1 sync=false` keeps only the newest frame, so a slow
    consumer gets fresh frames instead of a growing backlog.
    """
    cw, ch = capture_width or width, capture_height or height
    fr = f"{int(round(fps))}/1"
    return (
        f"nvarguscamerasrc sensor-id={int(sensor_id)} ! "
        f"video/x-raw(memory:NVMM), width=(int){cw}, height=(int){ch}, framerate=(fraction){fr}, format=(string)NV12 ! "
        f"nvvidconv flip-method={int(flip_method)} ! "
        f"video/x-raw, width=(int){width}, height=(int){height}, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def v4l2_gst_pipeline(device: str = "/dev/video0", width: int = 640, height: int = 480, fps: float = 30,
                      *, mjpeg: bool = True) -> str:
    """A USB camera through GStreamer (e.g. to use hardware JPEG decoding on a Jetson)."""
    fr = f"{int(round(fps))}/1"
    if mjpeg:
        return (f"v4l2src device={device} ! image/jpeg, width={width}, height={height}, framerate={fr} ! "
                "jpegdec ! videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")
    return (f"v4l2src device={device} ! video/x-raw, width={width}, height={height}, framerate={fr} ! "
            "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


class GStreamerSource(FrameSource):
    name = "gstreamer"
    is_live = True

    def __init__(self, pipeline: str, *, pixel_format: str = "BGR", open_timeout_s: float = 10.0) -> None:
        self.pipeline = pipeline.strip()
        self.pixel_format = pixel_format
        self.open_timeout_s = open_timeout_s
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._last_ts = -1.0
        self._fps = 0.0

    def open(self) -> None:
        if not gstreamer_available():
            raise SourceError(
                "this OpenCV build has no GStreamer support (cv2.getBuildInformation() says 'GStreamer: NO'); "
                "PyPI's opencv-python wheels lack it: on a Jetson use JetPack's python3-opencv, or build OpenCV "
                "with -DWITH_GSTREAMER=ON"
            )
        if "appsink" not in self.pipeline:
            raise SourceError(f"GStreamer pipeline must end in an appsink for OpenCV to read it: {self.pipeline!r}")
        cap = cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"GStreamer pipeline failed to start (camera missing/busy or element unavailable; "
                              f"test it with gst-launch-1.0): {self.pipeline!r}")
        self._cap = cap
        self._fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)

    @property
    def fps(self) -> float | None:
        return self._fps or None

    def read(self) -> Frame | None:
        if self._cap is None:
            self.open()
        assert self._cap is not None
        ok, img = self._cap.read()
        if not ok or img is None:
            raise SourceError(f"GStreamer pipeline stopped delivering frames: {self.pipeline[:80]!r}")
        ts = time.monotonic() * 1000.0
        ts = max(ts, self._last_ts + 1e-3)
        self._last_ts = ts
        f = Frame(img, ts, self._index, "GREY" if img.ndim == 2 else self.pixel_format, {"source": "gstreamer"})
        self._index += 1
        return f

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
