"""The driver-monitoring policy: per-frame results of the tracked driver -> driver state + events.

Pure and deterministic: the same FrameResults (and image statistics) in give the same states
and events out; time comes only from `FrameResult.timestamp_ms`, never from frame counts or a
clock, so 12 fps and 60 fps streams of the same drive give the same PERCLOS and the same
event times. States observed at a frame hold until the next frame (sample-and-hold, see
timeline.py).

What it computes, after openpilot's `driverMonitoringState` and Euro NCAP's DMS protocol:
- face detected / probability, per-eye closure, head pose with its std, gaze zone (on road /
  off road from the pose relative to the driver's learned neutral pose; a tracked face turned
  beyond the landmark network's pose range, source `turned_away`, is present and off road),
  poor vision and camera blocked;
- blinks (count, rate, mean duration), PERCLOS P80 over 60 s, long blinks and microsleeps,
  a drowsiness level;
- Euro NCAP distraction: one glance off road >= 3 s (`long_glance`), or > 10 s off road
  within 30 s (`cumulative`);
- face-not-seen timer, openpilot-style awareness (decays while distracted or eyes closed for
  a long blink, faster than while the face is not seen; recovers when attentive) with alert
  levels none / pre_alert / alert;
- per-driver calibration: neutral yaw/pitch = median pose over the first `calibration_s` of
  valid, steady data (then kept up to date); forgotten after `recalibrate_after_s` without a
  face (another driver may sit down).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..events import Event, EventBook
from ..results import FaceResult, FrameResult
from .config import DmsConfig
from .signals import EyeClosure, ImageQuality, eye_closure, head_pose_std
from .timeline import EpisodeWindow, SegmentWindow

DROWSINESS_LABELS = ("alert", "slightly_drowsy", "drowsy", "very_drowsy")
ALERT_LEVELS = ("none", "pre_alert", "alert")
_EPS = 1e-9


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


@dataclass
class DriverState:
    """The `driver` object of one frame (README: "Driver monitoring")."""

    timestamp_ms: float
    track_id: int | None
    face_detected: bool
    face_prob: float
    eyes: EyeClosure
    head_pose: dict[str, float] | None
    head_pose_std: dict[str, float] | None
    gaze_zone: str  # on_road | off_road | unknown
    glance_s: float  # duration of the current off-road glance
    off_road_s: float  # off-road seconds inside the cumulative window
    vision: ImageQuality | None
    poor_vision: list[str]  # reasons: dark, saturated, uniform (empty: fine or face seen)
    camera_blocked: bool
    blinks_total: int
    blink_rate_per_min: float | None
    blink_mean_ms: float | None
    perclos: float | None
    perclos_coverage_s: float
    long_blinks: int  # in the blink window
    microsleeps: int  # in the blink window
    drowsiness: int  # 0..3
    distracted: bool
    distracted_types: list[str]  # long_glance, cumulative
    face_not_seen_s: float
    awareness: float
    alert: str  # none | pre_alert | alert
    calibrated: bool
    calibration_progress: float
    pose_offset: dict[str, float]
    events: list[str] = field(default_factory=list)  # ids of the driver events open after this frame

    def to_dict(self) -> dict[str, Any]:
        e = self.eyes
        return {
            "track_id": self.track_id,
            "face_detected": self.face_detected,
            "face_prob": _r(self.face_prob),
            "eyes": {"source": e.source, "closed_prob_left": _r(e.closed_prob_left), "closed_prob_right": _r(e.closed_prob_right),
                     "closure": _r(e.closure), "closed": e.closed_p80},
            "head_pose": self.head_pose,
            "head_pose_std": self.head_pose_std,
            "gaze_zone": self.gaze_zone,
            "glance_s": _r(self.glance_s),
            "off_road_s": _r(self.off_road_s),
            "vision": None if self.vision is None else self.vision.as_dict(),
            "poor_vision": list(self.poor_vision),
            "camera_blocked": self.camera_blocked,
            "blinks": {"count": self.blinks_total, "rate_per_min": _r(self.blink_rate_per_min, 2),
                       "mean_duration_ms": _r(self.blink_mean_ms, 1)},
            "perclos": _r(self.perclos, 4),
            "perclos_coverage_s": _r(self.perclos_coverage_s, 2),
            "long_blinks": self.long_blinks,
            "microsleeps": self.microsleeps,
            "drowsiness": {"level": self.drowsiness, "label": DROWSINESS_LABELS[self.drowsiness]},
            "distracted": self.distracted,
            "distracted_types": list(self.distracted_types),
            "face_not_seen_s": _r(self.face_not_seen_s),
            "awareness": _r(self.awareness, 4),
            "alert": self.alert,
            "calibration": {"calibrated": self.calibrated, "progress": _r(self.calibration_progress),
                            "yaw_offset": _r(self.pose_offset["yaw"], 2), "pitch_offset": _r(self.pose_offset["pitch"], 2)},
            "events": list(self.events),
        }


def _largest(faces: list[FaceResult]) -> FaceResult | None:
    """The face with the largest box (the driver, nearest the camera), or None."""
    return max(faces, key=lambda f: (f.box[2] * f.box[3]) if f.box else 0.0, default=None)


class DriverMonitor:
    """Feed every FrameResult of a max_faces=1 run in order: `update()` -> (DriverState, events)."""

    def __init__(self, config: DmsConfig | None = None) -> None:
        self.cfg = config or DmsConfig()
        c = self.cfg
        self.book = EventBook("driver", c.event_update_s)
        self._t: float | None = None
        self._t0: float | None = None
        self._last_state: DriverState | None = None
        self._last_index = -1
        # sample-and-hold states of the previous frame
        self._prev_closed: bool | None = None
        self._prev_off: bool | None = None
        self._prev_mode = "none"  # distracted | attentive | no_face (awareness)
        self._eyes_win = SegmentWindow(c.perclos_window_s)
        self._off_win = SegmentWindow(c.cumulative_window_s)
        self._episodes = EpisodeWindow(c.blink_window_s)  # closures that ended with the eyes open
        self._micro = EpisodeWindow(c.blink_window_s)  # microsleep starts
        self._closure_start: float | None = None
        self._blinks_total = 0
        self._glance_start: float | None = None
        self._last_gaze: tuple[float, bool] | None = None
        self._absent_since: float | None = None
        self._poor_start: float | None = None
        self._aw = {"active": 1.0, "passive": 1.0}
        self._monitoring = "passive"
        self._awareness_seen = False
        self._drowsy_level = 0
        self._alert = "none"
        # calibration
        self._cal_valid_s = 0.0
        self._cal_samples: deque[tuple[float, float]] = deque(maxlen=max(1, int(c.calibration_max_s / 0.1)))
        self._cal_last_sample_t = -math.inf
        self._cal_prev: tuple[float, float] | None = None
        self._calibrated = False
        self._offset = (c.default_yaw_offset_deg, c.default_pitch_offset_deg)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def pick_driver(result: FrameResult) -> FaceResult | None:
        """The driver: the largest valid face (max_faces=1 runs have at most one)."""
        return _largest([f for f in result.faces if f.valid])

    def _calibrate(self, t: float, dt: float, pose: dict[str, float] | None, low_std: bool) -> None:
        c = self.cfg
        if not c.calibrate:
            return
        if pose is None or not low_std:
            self._cal_prev = None
            return
        yaw, pitch = float(pose["yaw"]), float(pose["pitch"])
        ok = abs(yaw - self._offset[0]) <= c.calibration_cone_deg and abs(pitch - self._offset[1]) <= c.calibration_cone_deg
        if self._cal_prev is None or dt <= 0 or dt > c.max_gap_s:
            ok = False  # steadiness needs two consecutive frames
        else:
            speed = math.hypot(yaw - self._cal_prev[0], pitch - self._cal_prev[1]) / dt
            ok = ok and speed <= c.calibration_max_speed_dps
        self._cal_prev = (yaw, pitch)
        if not ok:
            return
        self._cal_valid_s += dt
        added = False
        if t - self._cal_last_sample_t >= 0.1 - _EPS:
            self._cal_samples.append((yaw, pitch))
            self._cal_last_sample_t = t
            added = True
        if not self._calibrated and self._cal_valid_s >= c.calibration_s - _EPS and self._cal_samples:
            self._calibrated = True
            added = True
        if self._calibrated and added:
            arr = np.asarray(self._cal_samples)
            self._offset = (float(np.median(arr[:, 0])), float(np.median(arr[:, 1])))

    def _forget_calibration(self) -> None:
        c = self.cfg
        self._cal_valid_s = 0.0
        self._cal_samples.clear()
        self._cal_last_sample_t = -math.inf
        self._cal_prev = None
        self._calibrated = False
        self._offset = (c.default_yaw_offset_deg, c.default_pitch_offset_deg)

    # ------------------------------------------------------------------ the policy
    def update(self, result: FrameResult, quality: ImageQuality | None = None,
               frame_size: tuple[int, int] | None = None) -> tuple[DriverState, list[Event]]:
        """One frame. `quality`: image_quality() of the frame (poor-vision test; None skips it);
        `frame_size` (width, height) enables the head-pose std."""
        c = self.cfg
        ts_ms = float(result.timestamp_ms)
        t = ts_ms / 1000.0
        fi = result.frame_index
        if self._t is not None and t <= self._t:
            # not a new instant (a bad frame repeating a timestamp): nothing can change
            assert self._last_state is not None
            return self._last_state, []
        ev: list[Event] = []
        book = self.book
        prev_t = self._t
        dt = 0.0 if prev_t is None else t - prev_t
        observed = prev_t is not None and dt <= c.max_gap_s
        if self._t0 is None:
            self._t0 = t
        # 1. the interval since the previous frame carries the previous frame's states
        if observed:
            assert prev_t is not None
            if self._prev_closed is not None:
                self._eyes_win.add(prev_t, t, self._prev_closed)
            if self._prev_off is not None:
                self._off_win.add(prev_t, t, self._prev_off)
            aw = self._aw
            if self._prev_mode == "distracted":
                aw["active"] -= dt / c.awareness_distracted_s
            elif self._prev_mode == "attentive":
                a = aw["active"]
                step = dt / c.awareness_distracted_s
                aw["active"] = min(1.0, a + ((c.recovery_factor_max - c.recovery_factor_min) * (1.0 - a) + c.recovery_factor_min) * step)
                if aw["active"] >= 1.0:
                    aw["passive"] = min(1.0, aw["passive"] + step)
            elif self._prev_mode == "no_face":
                aw["passive"] -= dt / c.awareness_no_face_s
            for k in aw:
                aw[k] = max(aw[k], 0.0)

        # 2. this frame's face
        face = self.pick_driver(result)
        # the driver's face tracked but turned beyond the landmark network's pose range (a profile):
        # present, looking away (source `turned_away`: not valid, no pose, no eyes)
        turned = face is None and (face := _largest([f for f in result.faces if f.source == "turned_away"])) is not None
        face_prob = float(face.validity) if face is not None else 0.0
        detected = face is not None and face_prob >= c.face_threshold
        # absent since the first frame without the face (its predecessor's face holds until then)
        if detected:
            self._absent_since = None
        elif self._absent_since is None:
            self._absent_since = t
        ref = self._absent_since if self._absent_since is not None else t
        not_seen_s = 0.0 if detected else t - ref
        if not detected and not_seen_s >= c.recalibrate_after_s and (self._calibrated or self._cal_valid_s > 0):
            self._forget_calibration()

        eyes = eye_closure(face.eyes if detected and face is not None else None, c)
        pose = face.head_pose if detected and face is not None else None
        pose_std = None
        if pose is not None and face is not None and frame_size and face.landmarks is not None and face.landmark_sigma is not None:
            pose_std = head_pose_std(face.landmarks, face.landmark_sigma, frame_size)
        low_std = pose_std is None or max(pose_std["yaw"], pose_std["pitch"]) <= c.pose_std_limit_deg
        self._calibrate(t, dt, pose, low_std)
        yaw_off, pitch_off = self._offset

        # 3. gaze zone (+ hold over short unknown stretches)
        if pose is not None and low_std:
            dy, dp = pose["yaw"] - yaw_off, pose["pitch"] - pitch_off
            off = abs(dy) > c.yaw_limit_deg or dp > c.pitch_up_limit_deg or -dp > c.pitch_down_limit_deg
            zone = "off_road" if off else "on_road"
            self._last_gaze = (t, off)
            eff_off: bool | None = off
        elif turned and detected:
            zone = "off_road"  # beyond ~60 deg of yaw: off road by any limit
            self._last_gaze = (t, True)
            eff_off = True
        else:
            zone = "unknown"
            if self._last_gaze is not None and t - self._last_gaze[0] <= c.gaze_hold_s + _EPS:
                eff_off = self._last_gaze[1]
            elif c.unknown_gaze_off_road:
                eff_off = True
            else:
                eff_off = None

        # 4. Euro NCAP distraction: one long glance, or too much off-road time in the window
        glance_ended: tuple[float, float] | None = None
        if eff_off:
            if self._glance_start is None:
                self._glance_start = t
            glance_s = t - self._glance_start
        else:
            if self._glance_start is not None:
                glance_ended = (self._glance_start, t)
            self._glance_start = None
            glance_s = 0.0
        gk = "distraction:long_glance"
        if eff_off and glance_s >= c.glance_s - _EPS and not book.is_open(gk):
            assert self._glance_start is not None
            ev.append(book.start(gk, "distraction", fi, ts_ms, self._glance_start * 1000.0, {"rule": "long_glance", "glance_s": _r(glance_s)}))
        elif eff_off and book.is_open(gk):
            e = book.update(gk, fi, ts_ms, {"glance_s": _r(glance_s)})
            if e:
                ev.append(e)
        if glance_ended is not None and book.is_open(gk):
            g0, g1 = glance_ended
            e = book.end(gk, fi, ts_ms, g1 * 1000.0, {"glance_s": _r(g1 - g0), "ended_by": "on_road" if eff_off is False else "gaze_unknown"})
            if e:
                ev.append(e)
        off_s, _ = self._off_win.totals(t)
        ck = "distraction:cumulative"
        if off_s > c.cumulative_s + _EPS and not book.is_open(ck):
            ev.append(book.start(ck, "distraction", fi, ts_ms, ts_ms, {"rule": "cumulative", "off_road_s": _r(off_s)}))
        elif book.is_open(ck):
            if off_s <= c.cumulative_s + _EPS:
                e = book.end(ck, fi, ts_ms, ts_ms, {"off_road_s": _r(off_s)})
            else:
                e = book.update(ck, fi, ts_ms, {"off_road_s": _r(off_s)})
            if e:
                ev.append(e)
        types = [r for r, k in (("long_glance", gk), ("cumulative", ck)) if book.is_open(k)]

        # 5. eyes: closure episodes (blinks, long blinks, microsleeps), PERCLOS
        ce = eyes.closed_episode
        if ce:
            if self._closure_start is None:
                self._closure_start = t
            dur = t - self._closure_start
            for key, limit in (("long_blink", c.long_blink_s), ("microsleep", c.microsleep_s)):
                if dur >= limit - _EPS and not book.is_open(key):
                    ev.append(book.start(key, key, fi, ts_ms, self._closure_start * 1000.0, {"closed_s": _r(dur)}))
                    if key == "microsleep":
                        self._micro.add(t, dur)
                elif book.is_open(key):
                    e = book.update(key, fi, ts_ms, {"closed_s": _r(dur)})
                    if e:
                        ev.append(e)
        elif self._closure_start is not None:
            dur = t - self._closure_start
            ended_by = "eyes_open" if ce is False else "face_lost"
            if ended_by == "eyes_open":
                self._episodes.add(t, dur)
                if dur < c.microsleep_s - _EPS:
                    self._blinks_total += 1
            for key in ("long_blink", "microsleep"):
                e = book.end(key, fi, ts_ms, ts_ms, {"closed_s": _r(dur), "ended_by": ended_by})
                if e:
                    ev.append(e)
            self._closure_start = None
        closed_s, eye_seen_s = self._eyes_win.totals(t)
        perclos = closed_s / eye_seen_s if eye_seen_s > 0 else None
        long_blinks = self._episodes.count(t, c.long_blink_s - _EPS, c.microsleep_s - _EPS)
        micro = self._micro.count(t)
        n_blinks = self._episodes.count(t, 0.0, c.microsleep_s - _EPS)
        span = min(c.blink_window_s, t - self._t0)
        rate = n_blinks * 60.0 / span if span >= 1.0 else None
        mean_blink = self._episodes.mean_duration(t, c.microsleep_s - _EPS)

        # 6. drowsiness level
        p_ok = perclos is not None and eye_seen_s >= c.perclos_min_coverage_s - _EPS
        level = 0
        if (p_ok and perclos >= c.perclos_level1 - _EPS) or long_blinks >= 1:  # type: ignore[operator]
            level = 1
        if (p_ok and perclos >= c.perclos_level2 - _EPS) or long_blinks >= c.long_blinks_level2:  # type: ignore[operator]
            level = 2
        if (p_ok and perclos >= c.perclos_level3 - _EPS) or micro >= 1:  # type: ignore[operator]
            level = 3
        dk = "drowsiness"
        ddata = {"level": level, "label": DROWSINESS_LABELS[level], "perclos": _r(perclos, 4), "long_blinks": long_blinks, "microsleeps": micro}
        if level >= 2 and not book.is_open(dk):
            ev.append(book.start(dk, "drowsiness", fi, ts_ms, ts_ms, ddata))
        elif book.is_open(dk):
            e = book.end(dk, fi, ts_ms, ts_ms, ddata) if level < 2 else book.update(dk, fi, ts_ms, ddata, force=level != self._drowsy_level)
            if e:
                ev.append(e)
        self._drowsy_level = level

        # 7. face not seen, poor vision, camera blocked
        fk = "face_not_seen"
        if not detected and not_seen_s >= c.face_lost_event_s - _EPS and not book.is_open(fk):
            ev.append(book.start(fk, fk, fi, ts_ms, ref * 1000.0, {"not_seen_s": _r(not_seen_s)}))
        elif book.is_open(fk):
            e = book.end(fk, fi, ts_ms, ts_ms, {"not_seen_s": _r(t - ref if not detected else 0.0)}) if detected else book.update(fk, fi, ts_ms, {"not_seen_s": _r(not_seen_s)})
            if e:
                ev.append(e)
        reasons: list[str] = []
        if quality is not None and not detected:
            if quality.brightness < c.dark_mean:
                reasons.append("dark")
            if quality.saturated >= c.saturated_fraction:
                reasons.append("saturated")
            if quality.contrast < c.uniform_std:
                reasons.append("uniform")
        if reasons:
            if self._poor_start is None:
                self._poor_start = t
        else:
            self._poor_start = None
        blocked = self._poor_start is not None and t - self._poor_start >= c.blocked_after_s - _EPS
        bk = "camera_blocked"
        if blocked and not book.is_open(bk):
            assert self._poor_start is not None
            ev.append(book.start(bk, bk, fi, ts_ms, self._poor_start * 1000.0, {"reasons": reasons}))
        elif book.is_open(bk):
            e = book.update(bk, fi, ts_ms, {"reasons": reasons}) if blocked else book.end(bk, fi, ts_ms, ts_ms, {"ended_by": "face_seen" if detected else "vision_ok"})
            if e:
                ev.append(e)

        # 8. awareness alert level (the decay itself happens over the next interval)
        # openpilot keeps two awareness values: "active" (face seen: decays while distracted) and
        # "passive" (no face: decays slower); once the active one is at the alert level, losing
        # the face does not switch to the passive one ("no exploit after orange alert").
        eyes_long = self._closure_start is not None and t - self._closure_start >= c.long_blink_s - _EPS
        act_pre, act_alert = c.pre_alert_s / c.awareness_distracted_s, c.alert_s / c.awareness_distracted_s
        if detected:
            mode, monitoring = ("distracted" if (eff_off or eyes_long) else "attentive"), "active"
        elif self._monitoring == "active" and self._aw["active"] <= act_alert + _EPS and self._awareness_seen:
            mode, monitoring = "distracted", "active"
        else:
            mode, monitoring = "no_face", "passive"
        if monitoring == "active":
            pre, alert_t = act_pre, act_alert
            self._awareness_seen = True
        else:
            pre, alert_t = c.no_face_pre_alert_s / c.awareness_no_face_s, c.no_face_alert_s / c.awareness_no_face_s
        self._monitoring = monitoring
        a = self._aw[monitoring]
        if a <= alert_t + _EPS:
            alert = "alert"
        elif a <= pre + _EPS and mode != "attentive":  # recovering: no pre-alert banner (openpilot)
            alert = "pre_alert"
        else:
            alert = "none"
        ak = "alert"
        adata = {"level": alert, "awareness": _r(a, 4), "cause": "no_face" if mode == "no_face" else "distracted"}
        if alert != "none" and not book.is_open(ak):
            ev.append(book.start(ak, "alert", fi, ts_ms, ts_ms, adata))
        elif book.is_open(ak):
            e = book.end(ak, fi, ts_ms, ts_ms, adata) if alert == "none" else book.update(ak, fi, ts_ms, adata, force=alert != self._alert)
            if e:
                ev.append(e)
        self._alert = alert

        # 9. states that hold over the next interval
        self._prev_closed = eyes.closed_p80
        self._prev_off = eff_off
        self._prev_mode = mode
        self._t = t
        progress = 1.0 if self._calibrated else (min(1.0, self._cal_valid_s / c.calibration_s) if c.calibration_s > 0 else 0.0)
        state = DriverState(
            timestamp_ms=ts_ms, track_id=face.track_id if face is not None else None, face_detected=detected,
            face_prob=face_prob, eyes=eyes, head_pose=pose, head_pose_std=pose_std, gaze_zone=zone,
            glance_s=glance_s, off_road_s=off_s, vision=quality, poor_vision=reasons, camera_blocked=blocked,
            blinks_total=self._blinks_total, blink_rate_per_min=rate,
            blink_mean_ms=None if mean_blink is None else mean_blink * 1000.0,
            perclos=perclos, perclos_coverage_s=eye_seen_s, long_blinks=long_blinks, microsleeps=micro,
            drowsiness=level, distracted=bool(types), distracted_types=types, face_not_seen_s=not_seen_s,
            awareness=a, alert=alert, calibrated=self._calibrated, calibration_progress=progress,
            pose_offset={"yaw": yaw_off, "pitch": pitch_off}, events=book.open_ids(),
        )
        self._last_state = state
        self._last_index = fi
        return state, ev

    def finish(self) -> list[Event]:
        """End every open event (the run is over)."""
        if self._last_state is None:
            return []
        return self.book.end_all(self._last_index, self._last_state.timestamp_ms)
