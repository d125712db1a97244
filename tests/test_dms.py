"""Driver-monitoring policy on synthetic per-frame sequences with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from edgeaffect.dms import DmsConfig, DriverMonitor, image_quality
from edgeaffect.dms.signals import POSE_POINTS, head_pose_std
from edgeaffect.errors import ProfileError
from edgeaffect.results import FaceResult, FrameResult


def frame(i: int, t_s: float, *, yaw: float = 0.0, pitch: float = 0.0, openness: float | None = 1.0,
          face: bool = True, closed_prob: tuple[float, float] | None = None, validity: float = 0.95) -> FrameResult:
    if not face:
        return FrameResult(i, t_s * 1000.0, [], status="no_face")
    eyes: dict = {} if openness is None else {"openness": openness}
    if closed_prob is not None:
        eyes.update(closed_prob_left=closed_prob[0], closed_prob_right=closed_prob[1])
    f = FaceResult(track_id=0, valid=True, validity=validity, source="tracking", box=(100, 100, 200, 200),
                   head_pose={"yaw": yaw, "pitch": pitch, "roll": 0.0}, eyes=eyes)
    return FrameResult(i, t_s * 1000.0, [f])


def run(frames, cfg: DmsConfig | None = None, **kw):
    m = DriverMonitor(cfg or DmsConfig(calibrate=False))
    states, events = [], []
    for fr in frames:
        s, ev = m.update(fr, **kw)
        states.append(s)
        events += ev
    events += m.finish()
    return m, states, events


def of_type(events, type_):
    return [e for e in events if e.type == type_]


def test_four_second_glance_is_one_distraction_with_exact_start_and_end():
    fps = 30
    frames = []
    for i in range(20 * fps):
        t = i / fps
        frames.append(frame(i, t, yaw=45.0 if 10.0 <= t < 14.0 else 0.0))
    _, states, events = run(frames)
    dist = of_type(events, "distraction")
    ids = {e.id for e in dist}
    assert len(ids) == 1, [e.to_dict() for e in dist]
    start = next(e for e in dist if e.phase == "start")
    end = next(e for e in dist if e.phase == "end")
    assert start.data["rule"] == "long_glance"
    assert start.start_ms == pytest.approx(10000.0)
    assert start.timestamp_ms == pytest.approx(13000.0)  # the 3 s rule is met 3 s into the glance
    assert end.end_ms == pytest.approx(14000.0)
    assert end.to_dict()["duration_ms"] == pytest.approx(4000.0)
    assert [e.phase for e in dist][0] == "start" and [e.phase for e in dist][-1] == "end"
    # distracted exactly while the event is open: [13 s, 14 s)
    flagged = [s.timestamp_ms for s in states if s.distracted]
    assert flagged[0] == pytest.approx(13000.0) and flagged[-1] == pytest.approx(14000.0 - 1000.0 / fps)
    # awareness fell 4 s / 11 s and an openpilot-style pre-alert was raised, then recovered
    assert min(s.awareness for s in states) == pytest.approx(1 - 4 / 11, abs=1e-6)
    assert {s.alert for s in states} == {"none", "pre_alert"}
    assert states[-1].awareness == pytest.approx(1.0)


def test_a_face_turned_beyond_the_landmark_range_is_present_and_looking_away():
    """A head turned to a full profile: the tracker lists the driver `turned_away` (not valid,
    no pose). That is a driver present and looking off road, not an absent driver: 4 s of it
    is one long-glance distraction, and the face-not-seen timer does not run."""
    fps = 30
    frames = []
    for i in range(20 * fps):
        t = i / fps
        if 10.0 <= t < 14.0:
            f = FaceResult(track_id=0, valid=False, validity=0.97, source="turned_away", box=(100, 100, 200, 200))
            frames.append(FrameResult(i, t * 1000.0, [f], status="no_face"))
        else:
            frames.append(frame(i, t))
    _, states, events = run(frames)
    starts = [e for e in of_type(events, "distraction") if e.phase == "start"]
    assert len(starts) == 1 and starts[0].data["rule"] == "long_glance"
    assert starts[0].start_ms == pytest.approx(10000.0) and starts[0].timestamp_ms == pytest.approx(13000.0)
    turned = [s for s in states if 10000.0 <= s.timestamp_ms < 14000.0]
    assert all(s.face_detected and s.gaze_zone == "off_road" and s.face_not_seen_s == 0.0 for s in turned)
    assert not of_type(events, "face_not_seen")


def test_glance_rule_is_timestamp_driven_not_frame_driven():
    for fps in (7, 30, 60):
        frames = [frame(i, i / fps, yaw=-40.0 if 2.0 <= i / fps < 4.9 else 0.0) for i in range(8 * fps)]
        _, _, events = run(frames)
        assert not of_type(events, "distraction"), fps  # 2.9 s: under the 3 s rule at any frame rate
        frames = [frame(i, i / fps, yaw=-40.0 if 2.0 <= i / fps < 5.2 else 0.0) for i in range(8 * fps)]
        _, _, events = run(frames)
        assert len({e.id for e in of_type(events, "distraction")}) == 1, fps


def test_cumulative_rule_short_glances_over_ten_seconds_in_thirty():
    fps = 20
    # 2.5 s off, 1.5 s on, repeated: no single glance reaches 3 s; 10 s off road accrues by t = 15.5 s
    frames = [frame(i, i / fps, yaw=35.0 if (i / fps) % 4.0 < 2.5 else 0.0) for i in range(30 * fps)]
    _, states, events = run(frames)
    rules = {e.data.get("rule") for e in of_type(events, "distraction") if e.phase == "start"}
    assert rules == {"cumulative"}
    start = next(e for e in of_type(events, "distraction") if e.phase == "start")
    # off road: [0,2.5) [4,6.5) [8,10.5) [12,14.5) [16,...): 10 s reached at 16.0 s, exceeded just after
    assert 16.0 < start.timestamp_ms / 1000 <= 16.0 + 2 / fps
    assert max(s.off_road_s for s in states) <= 7 * 2.5 + 2.0 + 1e-6  # 7 whole periods + 2 s of the 8th in 30 s


def test_perclos_sixty_seconds_with_eyes_shut_thirty_percent():
    fps = 30
    # eyes shut on 3 of every 10 frames (100 ms closures every 333 ms)
    frames = [frame(i, i / fps, openness=0.05 if i % 10 < 3 else 0.95) for i in range(60 * fps + 1)]
    _, states, _ = run(frames)
    last = states[-1]
    assert last.timestamp_ms == pytest.approx(60000.0)
    assert last.perclos_coverage_s == pytest.approx(60.0)
    assert last.perclos == pytest.approx(0.30, abs=1e-9)
    # 180 closures of 100 ms: blinks, none long; drowsiness from PERCLOS alone (>= 0.30 -> level 3)
    assert last.blinks_total == 180
    assert last.blink_mean_ms == pytest.approx(100.0)
    assert last.long_blinks == 0 and last.drowsiness == 3


def test_perclos_same_minute_at_other_frame_rates_and_with_network_probabilities():
    for fps in (10, 25):
        # one 18 s closure inside 60 s = 0.30 regardless of the frame rate
        frames = [frame(i, i / fps, closed_prob=(0.9, 0.8) if 20.0 <= i / fps < 38.0 else (0.1, 0.05), openness=None)
                  for i in range(60 * fps + 1)]
        _, states, events = run(frames)
        assert states[-1].perclos == pytest.approx(0.30, abs=1e-6), fps
        assert states[-1].eyes.source == "network"
        micro = of_type(events, "microsleep")
        assert [e.phase for e in micro if e.phase != "update"] == ["start", "end"]
        assert micro[0].start_ms == pytest.approx(20000.0) and micro[0].timestamp_ms == pytest.approx(21000.0)
        assert micro[-1].end_ms == pytest.approx(38000.0)


def test_blinks_long_blinks_and_drowsiness_levels():
    fps = 30
    cfg = DmsConfig(calibrate=False)
    closures = {5.0: 0.2, 10.0: 0.6, 15.0: 0.7, 20.0: 0.8}  # one blink, three long blinks
    def openness(t: float) -> float:
        return 0.05 if any(s <= t < s + d for s, d in closures.items()) else 0.9
    frames = [frame(i, i / fps, openness=openness(i / fps)) for i in range(25 * fps)]
    m, states, events = run(frames, cfg)
    last = states[-1]
    assert last.blinks_total == 4
    assert last.long_blinks == 3 and last.microsleeps == 0
    assert len({e.id for e in of_type(events, "long_blink")}) == 3
    assert not of_type(events, "microsleep")
    assert last.drowsiness == 2  # three long blinks within the minute
    lb = [e for e in of_type(events, "long_blink") if e.phase == "start"][0]
    assert lb.start_ms == pytest.approx(10000.0) and lb.timestamp_ms == pytest.approx(10500.0)
    drowsy = of_type(events, "drowsiness")
    assert drowsy[0].phase == "start" and drowsy[0].timestamp_ms == pytest.approx(20800.0)
    assert drowsy[-1].phase == "end" and drowsy[-1].data["ended_by"] == "run_end"


def test_face_not_seen_timer_event_and_passive_awareness():
    fps = 10
    frames = [frame(i, i / fps, face=not (5.0 <= i / fps < 25.0)) for i in range(30 * fps)]
    _, states, events = run(frames)
    s = next(s for s in states if s.timestamp_ms == pytest.approx(15000.0))
    assert s.face_not_seen_s == pytest.approx(10.0)
    fns = of_type(events, "face_not_seen")
    assert fns[0].phase == "start" and fns[0].start_ms == pytest.approx(5000.0) and fns[0].timestamp_ms == pytest.approx(7000.0)
    assert fns[-1].phase == "end" and fns[-1].end_ms == pytest.approx(25000.0)
    # no face for 20 s: awareness 1 - 20/30; pre-alert (<= 15/30 left) after 15 s, alert (<= 6/30) never
    low = min(st.awareness for st in states)
    assert low == pytest.approx(1 - 19.9 / 30, abs=1e-6)  # last face-less frame at 24.9 s
    assert {st.alert for st in states} == {"none", "pre_alert"}
    first_pre = next(st for st in states if st.alert == "pre_alert")
    assert first_pre.timestamp_ms == pytest.approx(20000.0)


def test_long_distraction_reaches_alert():
    fps = 10
    frames = [frame(i, i / fps, pitch=-30.0 if 1.0 <= i / fps < 12.0 else 0.0) for i in range(14 * fps)]
    _, states, events = run(frames)
    levels = [s.alert for s in states]
    assert "alert" in levels
    first_alert = next(s for s in states if s.alert == "alert")
    assert first_alert.timestamp_ms == pytest.approx(1000.0 + 5000.0, abs=1)  # 11 s - 6 s left
    al = of_type(events, "alert")
    assert len({e.id for e in al}) == 1
    assert [e.data["level"] for e in al if e.phase == "update" and e.data["level"] == "alert"]
    assert min(s.awareness for s in states) == pytest.approx(0.0)


def test_calibration_learns_the_drivers_neutral_pose():
    fps = 10
    cfg = DmsConfig(calibration_s=20.0)
    # the driver's neutral pose is yaw +15 (camera off to one side); at 40-60 s they look 10 deg further
    frames = []
    for i in range(70 * fps):
        t = i / fps
        y = 15.0 + 0.5 * np.sin(t) + (10.0 if 40.0 <= t < 60.0 else 0.0)
        frames.append(frame(i, t, yaw=float(y)))
    _, states, events = run(frames, cfg)
    s = next(s for s in states if s.timestamp_ms >= 30000)
    assert s.calibrated and s.pose_offset["yaw"] == pytest.approx(15.0, abs=0.3)
    assert not of_type(events, "distraction")  # 25 deg absolute but 10 deg from this driver's neutral
    before = [s for s in states if s.timestamp_ms < 19000]
    assert not any(s.calibrated for s in before)
    # without calibration the same drive is a distraction
    _, _, ev2 = run(frames, DmsConfig(calibrate=False))
    assert of_type(ev2, "distraction")


def test_calibration_forgotten_after_long_absence():
    fps = 5
    cfg = DmsConfig(calibration_s=5.0, recalibrate_after_s=10.0)
    frames = [frame(i, i / fps, yaw=12.0, face=not (10.0 <= i / fps < 25.0)) for i in range(30 * fps)]
    _, states, _ = run(frames, cfg)
    assert next(s for s in states if s.timestamp_ms == 9000).calibrated
    assert not next(s for s in states if s.timestamp_ms == 21000).calibrated
    assert states[-1].pose_offset["yaw"] == 0.0  # relearning


def test_camera_blocked_from_a_covered_lens_and_over_exposure():
    fps = 10
    dark = image_quality(np.full((400, 640), 3, np.uint8))
    sun = image_quality(np.full((400, 640, 3), 255, np.uint8))
    normal = image_quality(np.random.default_rng(0).integers(0, 255, (400, 640), dtype=np.uint8))
    m = DriverMonitor(DmsConfig(calibrate=False))
    events, states = [], []
    for i in range(60):
        t = i / fps
        q = dark if 1.0 <= t < 4.0 else sun if 4.0 <= t < 5.0 else normal
        s, ev = m.update(frame(i, t, face=False), quality=q)
        events += ev
        states.append(s)
    blocked = of_type(events, "camera_blocked")
    assert blocked[0].phase == "start" and blocked[0].start_ms == pytest.approx(1000.0) and blocked[0].timestamp_ms == pytest.approx(3000.0)
    assert blocked[-1].phase == "end" and blocked[-1].end_ms == pytest.approx(5000.0)
    assert states[15].poor_vision == ["dark", "uniform"]
    assert "saturated" in states[45].poor_vision
    assert states[55].poor_vision == []
    # a face in view is never "poor vision", whatever the image
    s, _ = DriverMonitor().update(frame(0, 0.0), quality=dark)
    assert s.poor_vision == [] and not s.camera_blocked


def test_deterministic_and_json_serialisable():
    import json

    frames = [frame(i, i / 15, yaw=30.0 * np.sin(i / 20), openness=0.5 + 0.5 * np.cos(i / 3)) for i in range(300)]
    a = [s.to_dict() for s in run(frames)[1]]
    b = [s.to_dict() for s in run(frames)[1]]
    assert a == b
    json.dumps(a, allow_nan=False)


def test_repeated_timestamp_changes_nothing():
    m = DriverMonitor()
    s1, _ = m.update(frame(0, 1.0))
    s2, ev = m.update(FrameResult(1, 1000.0, [], status="bad_frame", message="x"))
    assert s2 is s1 and ev == []


def test_head_pose_std_matches_monte_carlo_of_the_pnp_fit():
    import cv2

    from edgeaffect.dms.signals import MODEL_3D
    from edgeaffect.vision.headpose import estimate_head_pose

    rng = np.random.default_rng(1)
    pts = rng.uniform(250, 390, (68, 2))  # only the six PnP points matter (checked below)
    cam = np.array([[640.0, 0, 320], [0, 640, 200], [0, 0, 1]])
    proj, _ = cv2.projectPoints(MODEL_3D * np.array([1, -1, -1]), np.array([-0.2, 0.5, 0.1]), np.array([0, 0, 2500.0]), cam, None)
    pts[list(POSE_POINTS)] = proj[:, 0]  # a head turned ~30 deg, seen by the same pinhole camera
    base = estimate_head_pose(pts, (640, 400))
    moved = pts.copy()
    moved[[i for i in range(68) if i not in POSE_POINTS]] += 7.0
    assert estimate_head_pose(moved, (640, 400)) == base
    sigma = np.full(68, 1.5)
    pred = head_pose_std(pts, sigma, (640, 400))
    assert pred is not None
    samples = []
    for _ in range(400):
        p = pts + rng.normal(0, 1.5, pts.shape)
        q = estimate_head_pose(p, (640, 400))
        samples.append((q.yaw, q.pitch, q.roll))
    emp = np.std(np.array(samples), axis=0)
    for k, e in zip(("yaw", "pitch", "roll"), emp):
        assert pred[k] == pytest.approx(e, rel=0.12), (k, pred[k], e)
    doubled = head_pose_std(pts, 2 * sigma, (640, 400))
    assert doubled["yaw"] == pytest.approx(2 * pred["yaw"], abs=0.02)


def test_profile_table_validation():
    from edgeaffect.configspec import Reader

    def from_table(cls, table, where, _section):
        return cls.from_table(Reader(where), table)

    c = from_table(DmsConfig, {"glance_s": 2, "calibrate": False}, "x.toml", "dms")
    assert c.glance_s == 2.0 and not c.calibrate
    with pytest.raises(ProfileError, match=r"dms.glance: unknown key \(did you mean 'glance_s'\?\)"):
        from_table(DmsConfig, {"glance": 2}, "x.toml", "dms")
    with pytest.raises(ProfileError, match="dms.face_threshold: must be between 0 and 1"):
        from_table(DmsConfig, {"face_threshold": 2.0}, "x.toml", "dms")
    with pytest.raises(ProfileError, match="microsleep_s"):
        from_table(DmsConfig, {"microsleep_s": 0.3}, "x.toml", "dms")
