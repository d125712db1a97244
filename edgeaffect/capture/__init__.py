"""Capture sources: video files, V4L2, GStreamer (incl. Jetson), picamera2 (incl. NoIR/mono)."""

from .base import Frame, FrameSource
from .file import VideoFileSource

__all__ = ["Frame", "FrameSource", "VideoFileSource"]


def open_source(spec: str, **kwargs: object) -> FrameSource:
    """Open a source from a string: a video file, /dev/videoN, v4l2:N, gst:<pipeline>, picamera2:N."""
    try:
        from .factory import open_source as _open
    except ImportError:  # pragma: no cover - factory always ships; kept for partial installs
        return VideoFileSource(spec, **kwargs)  # type: ignore[arg-type]
    return _open(spec, **kwargs)


__all__ += ["open_source"]
