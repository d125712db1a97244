"""Kiosk policy on synthetic multi-person sequences with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeaffect.kiosk import KioskConfig, KioskCounter
from edgeaffect.results import FaceResult, FrameResult


def face(tid: int, yaw: float = 0.0, valence: float | None = 0.5, arousal: float | None = -0.2, expression=None) -> FaceResult:
    return FaceResult(track_id=tid, valid=True, validity=0.9, source="tracking", box=(10, 10, 50, 50),
                      landmarks=None, head_pose={"yaw": yaw, "pitch": 0.0, "roll": 0.0}, valence=valence, arousal=arousal,
                      expression=expression)


HAPPY = np.array([0.1, 0.8, 0.02, 0.02, 0.02, 0.02, 0.02])
NEUTRAL = np.array([0.7, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03])


def run(seq, cfg=None):
    k = KioskCounter(cfg or KioskConfig())
    states, events = [], []
    for i, (t, faces) in enumerate(seq):
        s, ev = k.update(FrameResult(i, t * 1000.0, faces, status="ok" if faces else "no_face"))
        states.append(s)
        events += ev
    events += k.finish()
    return states, events


def test_two_visitors_dwell_attention_affect_and_count():
    fps = 10
    seq = []
    for i in range(40 * fps):
        t = i / fps
        fs = []
        if 2.0 <= t < 12.0:  # A: 10 s, facing the screen for the first 4 s only
            fs.append(face(1, yaw=5.0 if t < 6.0 else 60.0, valence=0.6 if t < 7.0 else -0.4,
                           expression=HAPPY if t < 9.0 else NEUTRAL))
        if 5.0 <= t < 30.0:  # B: 25 s, always facing
            fs.append(face(2, yaw=-10.0, valence=None, arousal=None))
        if 20.0 <= t < 20.3:  # C: a 0.3 s flicker is no visitor
            fs.append(face(3))
        seq.append((t, fs))
    states, events = run(seq)
    starts = [e for e in events if e.phase == "start"]
    ends = [e for e in events if e.phase == "end"]
    assert [e.data["track_id"] for e in starts] == [1, 2]
    assert starts[0].start_ms == pytest.approx(2000.0) and starts[0].timestamp_ms == pytest.approx(2500.0)
    a = next(e for e in ends if e.data["track_id"] == 1)
    assert a.data["ended_by"] == "exit" and a.timestamp_ms == pytest.approx(14000.0)  # 2 s out of view
    assert a.end_ms == pytest.approx(12000.0)
    assert a.data["dwell_s"] == pytest.approx(10.0) and a.data["visible_s"] == pytest.approx(10.0)
    assert a.data["attention_s"] == pytest.approx(4.0) and a.data["attention_share"] == pytest.approx(0.4)
    assert a.data["mean_valence"] == pytest.approx((0.6 * 5 - 0.4 * 5) / 10)  # time-weighted over the visit
    assert a.data["mean_arousal"] == pytest.approx(-0.2)
    assert a.data["mean_expression"]["happiness"] == pytest.approx((0.8 * 7 + 0.1 * 3) / 10)  # 7 s happy, 3 s neutral
    assert a.data["top_expression"] == "happiness"
    b = next(e for e in ends if e.data["track_id"] == 2)
    assert b.data["attention_share"] == pytest.approx(1.0) and b.data["mean_valence"] is None
    assert b.data["mean_expression"] is None
    assert b.data["dwell_s"] == pytest.approx(25.0)
    assert max(s.people for s in states) == 2
    assert states[-1].visits_total == 2 and states[-1].people == 0
    s7 = states[7 * fps]
    assert s7.people == 2 and s7.attending == 1
    assert len({e.id for e in events}) == 2
    # nothing identifying in what is written
    dumped = json.dumps([s.to_dict() for s in states] + [e.to_dict() for e in events])
    assert "landmarks" not in dumped and "box" not in dumped


def test_brief_dropout_is_one_visit_and_run_end_closes_visits():
    fps = 10
    seq = [(i / fps, [] if 3.0 <= i / fps < 4.0 else [face(4)]) for i in range(8 * fps)]
    _, events = run(seq)
    assert len({e.id for e in events}) == 1
    end = events[-1]
    assert end.phase == "end" and end.data["ended_by"] == "run_end"
    assert end.data["visible_s"] == pytest.approx(3.0 + 3.9)  # [0, 3) and [4, 7.9): the last frame has no interval yet
    assert end.data["dwell_s"] == pytest.approx(7.9)


def test_event_lines_in_results_jsonl_are_skipped_by_read_jsonl(tmp_path):
    from edgeaffect.outputs import JsonlWriter, read_jsonl

    seq = [(i / 10, [face(1)]) for i in range(10)]
    states, events = run(seq)
    with JsonlWriter(tmp_path / "r.jsonl") as w:
        for i, (t, fs) in enumerate(seq):
            w.write(FrameResult(i, t * 1000.0, fs))
        for e in events:
            w.write(e.to_dict())
    assert len(list(read_jsonl(tmp_path / "r.jsonl"))) == 10
    assert len(list(read_jsonl(tmp_path / "r.jsonl", frames_only=False))) == 10 + len(events) == 12
