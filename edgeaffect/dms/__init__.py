"""Driver monitoring: a policy layer over the tracked driver's per-frame results
(openpilot driverMonitoringState / Euro NCAP DMS conventions). See monitor.py."""

from .config import DmsConfig
from .monitor import ALERT_LEVELS, DROWSINESS_LABELS, DriverMonitor, DriverState
from .signals import ImageQuality, eye_closure, head_pose_std, image_quality

__all__ = ["DmsConfig", "DriverMonitor", "DriverState", "ALERT_LEVELS", "DROWSINESS_LABELS", "ImageQuality",
           "eye_closure", "head_pose_std", "image_quality"]
