"""Tracking: which faces are in this frame and which person each one is.

Sits between the frame and the per-face networks (capture -> frame -> track -> networks ->
result -> writers). It drives the two networks that *find* faces (detector, landmark net
with its validity head) through the small interfaces of `edgeaffect.models`, and hands the
analyzer one `TrackedFace` per face; the AU / affect stages and the result objects live
above it and are never imported here.
"""

from .tracker import Tracker, TrackerConfig, fit_for_track
from .tracks import Track, TrackedFace
from .windows import DETECTOR_WINDOW, detection_inside, window_from_detection

__all__ = [
    "DETECTOR_WINDOW",
    "Track",
    "TrackedFace",
    "Tracker",
    "TrackerConfig",
    "detection_inside",
    "fit_for_track",
    "window_from_detection",
]
