"""Driver-monitoring thresholds and windows (device profile table `[dms]`).

Defaults follow openpilot's driver monitoring (`selfdrive/monitoring/helpers.py`:
DRIVER_MONITOR_SETTINGS; radians converted to degrees) and Euro NCAP's DMS protocol
(distraction: one glance off road >= 3 s, or > 10 s off road within 30 s; PERCLOS P80 over a
minute). Where neither names a number (blink/long-blink/microsleep durations, drowsiness
levels, poor-vision limits) the default is this project's choice and says so. Every duration is
in seconds of *timestamp* time, every angle in degrees: the policy never counts frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..configspec import Reader, non_negative, positive, read_section, setting
from ..configspec import between as in_range


def _f(default: Any, doc: str, check: Any = None) -> Any:
    """A setting whose type is its default's (bool, int or float), with one line of doc."""
    return setting(default, type(default), check, doc)


@dataclass(frozen=True)
class DmsConfig:
    enabled: bool = _f(False, "the driver-monitoring layer runs in `edgeaffect run --profile` without --dms (a unit under systemd has no flags)")
    # --- per-frame thresholds
    face_threshold: float = _f(0.7, "face counts as detected when the landmark validity >= this (openpilot _FACE_THRESHOLD 0.7)", in_range(0, 1))
    closed_prob_threshold: float = _f(0.5, "eye closed when the network's per-eye closed probability (mean of both) >= this (project default)", in_range(0, 1))
    p80_openness: float = _f(0.2, "EAR fallback: eye >= 80 % closed (PERCLOS P80) when openness <= this", in_range(0, 1))
    blink_openness: float = _f(0.5, "EAR fallback: a closure episode (blink) while openness < this (project default)", in_range(0, 1))
    yaw_limit_deg: float = _f(23.03, "off road when |yaw - offset| > this (openpilot _POSE_YAW_THRESHOLD 0.4020 rad)", positive)
    pitch_down_limit_deg: float = _f(17.95, "off road when pitch - offset < -this (openpilot _POSE_PITCH_THRESHOLD 0.3133 rad)", positive)
    pitch_up_limit_deg: float = _f(17.95, "off road when pitch - offset > this (openpilot has no upward limit; same as down here)", positive)
    pose_std_limit_deg: float = _f(17.19, "pose too uncertain to judge gaze when its std > this (openpilot _POSESTD_THRESHOLD 0.3 rad)", positive)
    gaze_hold_s: float = _f(0.5, "an unknown-gaze frame (face or pose lost) keeps the last gaze zone this long (project default)", non_negative)
    max_gap_s: float = _f(1.0, "a gap between frames longer than this counts as unobserved time", positive)
    # --- Euro NCAP distraction
    glance_s: float = _f(3.0, "distraction: a single glance off road lasting >= this (Euro NCAP long distraction)", positive)
    cumulative_s: float = _f(10.0, "distraction: off-road time summed over `cumulative_window_s` > this (Euro NCAP VATS)", positive)
    cumulative_window_s: float = _f(30.0, "window of the cumulative rule (Euro NCAP)", positive)
    # --- eyes
    long_blink_s: float = _f(0.5, "a closure lasting >= this is a long blink (project default)", positive)
    microsleep_s: float = _f(1.0, "a closure lasting >= this is a microsleep (project default)", positive)
    perclos_window_s: float = _f(60.0, "PERCLOS window (Euro NCAP: share of a minute with eyes >= 80 % closed)", positive)
    perclos_min_coverage_s: float = _f(30.0, "drowsiness uses PERCLOS only after this much observed eye time in the window", non_negative)
    blink_window_s: float = _f(60.0, "window for blink rate, mean blink duration, long-blink and microsleep counts", positive)
    # --- drowsiness levels (project defaults; level 2 stands for Euro NCAP 'drowsy', KSS >= 7)
    perclos_level1: float = _f(0.075, "drowsiness level 1 (slightly drowsy) when PERCLOS >= this or >= 1 long blink in the window", in_range(0, 1))
    perclos_level2: float = _f(0.15, "level 2 (drowsy) when PERCLOS >= this or >= `long_blinks_level2` long blinks in the window", in_range(0, 1))
    perclos_level3: float = _f(0.30, "level 3 (very drowsy) when PERCLOS >= this or any microsleep in the window", in_range(0, 1))
    long_blinks_level2: int = _f(3, "long blinks in the window that make level 2", in_range(1, 1000))
    # --- awareness and alerts (openpilot)
    awareness_distracted_s: float = _f(11.0, "awareness 1 -> 0 in this time while distracted, face seen (openpilot _DISTRACTED_TIME)", positive)
    awareness_no_face_s: float = _f(30.0, "awareness 1 -> 0 in this time while no face is seen (openpilot _AWARENESS_TIME)", positive)
    pre_alert_s: float = _f(8.0, "pre-alert when the time left to 0 is <= this, face seen (openpilot _DISTRACTED_PRE_TIME_TILL_TERMINAL)", positive)
    alert_s: float = _f(6.0, "alert when the time left is <= this, face seen (openpilot _DISTRACTED_PROMPT_TIME_TILL_TERMINAL)", positive)
    no_face_pre_alert_s: float = _f(15.0, "pre-alert, no face (openpilot _AWARENESS_PRE_TIME_TILL_TERMINAL)", positive)
    no_face_alert_s: float = _f(6.0, "alert, no face (openpilot _AWARENESS_PROMPT_TIME_TILL_TERMINAL)", positive)
    recovery_factor_max: float = _f(5.0, "awareness recovery speed-up far from 1 (openpilot _RECOVERY_FACTOR_MAX)", positive)
    recovery_factor_min: float = _f(1.25, "awareness recovery speed near 1 (openpilot _RECOVERY_FACTOR_MIN)", positive)
    # --- per-driver calibration
    calibrate: bool = _f(True, "learn the driver's neutral pose (else the default offsets are used throughout)")
    calibration_s: float = _f(60.0, "pose offsets are learned after this much valid, steady data (openpilot _POSE_OFFSET_MIN_COUNT 60 s)", non_negative)
    calibration_max_s: float = _f(360.0, "offsets are the median of at most this much recent data (openpilot _POSE_OFFSET_MAX_COUNT)", positive)
    calibration_cone_deg: float = _f(30.0, "only poses within this of the current offset count as calibration data (project default)", positive)
    calibration_max_speed_dps: float = _f(30.0, "'steady': head turning slower than this, deg/s (project default)", positive)
    recalibrate_after_s: float = _f(30.0, "no face for this long = maybe another driver: forget the offsets (project default)", positive)
    default_yaw_offset_deg: float = _f(0.0, "neutral yaw before calibration (camera placement; openpilot uses 5.6 for its mount)", in_range(-90, 90))
    default_pitch_offset_deg: float = _f(0.0, "neutral pitch before calibration", in_range(-90, 90))
    # --- poor vision / camera blocked (project defaults; 8-bit scale)
    dark_mean: float = _f(25.0, "no face + mean brightness below this (0..255) = too dark", in_range(0, 255))
    saturated_fraction: float = _f(0.4, "no face + this share of pixels >= 250 = over-exposed (sun on an IR camera)", in_range(0, 1))
    uniform_std: float = _f(8.0, "no face + brightness std below this = uniform (lens covered)", in_range(0, 255))
    blocked_after_s: float = _f(2.0, "poor vision lasting this long = camera blocked (event)", non_negative)
    # --- events
    face_lost_event_s: float = _f(2.0, "a face_not_seen event starts after this long without a face", non_negative)
    event_update_s: float = _f(1.0, "active events emit an `update` at most this often", positive)
    unknown_gaze_off_road: bool = _f(False, "count unknown gaze (no face) as off road for the Euro NCAP rules")

    def __post_init__(self) -> None:
        if self.microsleep_s < self.long_blink_s:
            raise ValueError(f"microsleep_s ({self.microsleep_s}) must be >= long_blink_s ({self.long_blink_s})")
        if not self.perclos_level1 <= self.perclos_level2 <= self.perclos_level3:
            raise ValueError("perclos_level1 <= perclos_level2 <= perclos_level3 must hold")
        if self.alert_s > self.pre_alert_s or self.no_face_alert_s > self.no_face_pre_alert_s:
            raise ValueError("alert times must be <= the pre-alert times (the alert comes later)")

    @classmethod
    def from_table(cls, r: Reader, table: Any) -> DmsConfig:
        """The profile's [dms] table over the defaults ("<file>: dms.<key>: <reason>" on a bad value)."""
        try:
            return cls(**read_section(r, table, "dms", cls))
        except ValueError as e:  # the cross-key rules
            raise r.fail("dms", str(e)) from None
