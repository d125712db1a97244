"""Capture sources: video files, V4L2, GStreamer (incl. Jetson), picamera2 (incl. NoIR/mono)."""

from .base import Frame, FrameSource
from .conditioning import ConditionedSource, condition_frame
from .config import CameraConfig, NirConfig
from .factory import open_source  # "video.mp4", /dev/videoN, v4l2:N, gst:<pipeline>, picamera2:N
from .file import VideoFileSource

__all__ = ["CameraConfig", "ConditionedSource", "Frame", "FrameSource", "NirConfig", "VideoFileSource",
           "condition_frame", "open_source"]
