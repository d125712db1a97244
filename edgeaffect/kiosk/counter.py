"""Kiosk policy: per-frame results of all tracked faces -> visits, attention and people count.

A *visit* is one track in view: it starts (entry event) once the track has been in view for
`min_visit_s` (a flicker is no visitor) and ends (exit event) after `exit_after_s` out of
view. Per visit: dwell (first seen -> last seen), time in view, time attending (head within a
cone around the screen direction) and its share of the time in view, and the time-weighted
mean valence/arousal and expression probabilities while in view. Like the driver monitor, time comes only from the frames'
timestamps and a state observed at one frame holds until the next.

Privacy: only the tracker's per-run numeric id and these aggregates are kept: no landmarks,
no face crops, no embeddings; a person who leaves and comes back is a new visit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..constants import EXPRESSIONS
from ..events import Event, EventBook
from ..results import FaceResult, FrameResult
from .config import KioskConfig


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


@dataclass
class _Visit:
    track_id: int
    first_s: float
    last_seen_s: float
    seen_until_s: float  # last seen frame's state holds until the next frame
    visible_s: float = 0.0
    attention_s: float = 0.0
    va_s: float = 0.0
    val_sum: float = 0.0
    aro_sum: float = 0.0
    expr_s: float = 0.0
    expr_sum: Any = None  # time-weighted sum of the expression probabilities
    prev: tuple[bool, bool, float | None, float | None, Any] | None = None  # visible, attending, V, A, expression
    prev_t: float | None = None
    key: str | None = None  # open event key once the visit has started

    @property
    def dwell_s(self) -> float:
        return self.seen_until_s - self.first_s


@dataclass
class VisitState:
    track_id: int
    visit_id: str | None  # the entry event's id (None until min_visit_s)
    present: bool
    attending: bool
    dwell_s: float
    visible_s: float
    attention_s: float
    attention_share: float | None
    mean_valence: float | None
    mean_arousal: float | None
    top_expression: str | None = None  # the largest time-weighted mean expression probability so far

    def to_dict(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "visit_id": self.visit_id, "present": self.present, "attending": self.attending,
                "dwell_s": _r(self.dwell_s), "visible_s": _r(self.visible_s), "attention_s": _r(self.attention_s),
                "attention_share": _r(self.attention_share), "mean_valence": _r(self.mean_valence, 4),
                "mean_arousal": _r(self.mean_arousal, 4), "top_expression": self.top_expression}


@dataclass
class KioskState:
    """The `kiosk` object of one frame (README: "Kiosk")."""

    timestamp_ms: float
    people: int  # visitors in view now (started visits)
    attending: int  # of them, facing the screen now
    visits_total: int  # visits started so far in this run
    tracks: list[VisitState] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"people": self.people, "attending": self.attending, "visits_total": self.visits_total,
                "tracks": [v.to_dict() for v in self.tracks]}

    def track(self, track_id: int) -> VisitState | None:
        return next((v for v in self.tracks if v.track_id == track_id), None)


class KioskCounter:
    """Feed every FrameResult in order: `update()` -> (KioskState, events)."""

    def __init__(self, config: KioskConfig | None = None) -> None:
        self.cfg = config or KioskConfig()
        self.book = EventBook("kiosk", self.cfg.event_update_s)
        self._visits: dict[int, _Visit] = {}
        self._total = 0
        self._t: float | None = None
        self._last: KioskState | None = None
        self._last_index = -1

    def attending(self, f: FaceResult) -> bool:
        c = self.cfg
        p = f.head_pose
        return bool(f.valid and p is not None and abs(p["yaw"] - c.screen_yaw_deg) <= c.cone_yaw_deg
                    and abs(p["pitch"] - c.screen_pitch_deg) <= c.cone_pitch_deg)

    def _summary(self, v: _Visit) -> dict[str, Any]:
        return {"track_id": v.track_id, "dwell_s": _r(v.dwell_s), "visible_s": _r(v.visible_s), "attention_s": _r(v.attention_s),
                "attention_share": _r(v.attention_s / v.visible_s) if v.visible_s > 0 else None,
                "mean_valence": _r(v.val_sum / v.va_s, 4) if v.va_s > 0 else None,
                "mean_arousal": _r(v.aro_sum / v.va_s, 4) if v.va_s > 0 else None,
                "mean_expression": None if v.expr_s <= 0 else {n: _r(p / v.expr_s, 4) for n, p in zip(EXPRESSIONS, v.expr_sum)},
                "top_expression": None if v.expr_s <= 0 else EXPRESSIONS[int(np.argmax(v.expr_sum))]}

    def update(self, result: FrameResult) -> tuple[KioskState, list[Event]]:
        c = self.cfg
        ts_ms = float(result.timestamp_ms)
        t = ts_ms / 1000.0
        fi = result.frame_index
        if self._t is not None and t <= self._t:
            assert self._last is not None
            return self._last, []
        ev: list[Event] = []
        seen = {f.track_id: f for f in result.faces if f.valid}
        # 1. the interval since each visit's previous frame carries that frame's state
        for v in self._visits.values():
            if v.prev is not None and v.prev_t is not None and t - v.prev_t <= c.max_gap_s:
                dt = t - v.prev_t
                vis, att, val, aro, expr = v.prev
                if vis:
                    v.visible_s += dt
                    v.seen_until_s = t
                    if att:
                        v.attention_s += dt
                    if val is not None and aro is not None:
                        v.va_s += dt
                        v.val_sum += val * dt
                        v.aro_sum += aro * dt
                    if expr is not None:
                        v.expr_s += dt
                        v.expr_sum = (v.expr_sum if v.expr_sum is not None else 0.0) + np.asarray(expr, dtype=np.float64) * dt
        # 2. this frame
        for tid in seen:
            v = self._visits.get(tid)
            if v is None:
                v = self._visits[tid] = _Visit(tid, t, t, t)
            v.last_seen_s = t
        for tid, v in list(self._visits.items()):
            f = seen.get(tid)
            v.prev = ((True, self.attending(f), f.valence, f.arousal, getattr(f, "expression", None)) if f is not None
                      else (False, False, None, None, None))
            v.prev_t = t
            if f is not None and v.key is None and t - v.first_s >= c.min_visit_s - 1e-9:
                v.key = f"visit:{tid}:{v.first_s}"
                self._total += 1
                ev.append(self.book.start(v.key, "visit", fi, ts_ms, v.first_s * 1000.0, self._summary(v)))
            elif f is not None and v.key is not None:
                e = self.book.update(v.key, fi, ts_ms, self._summary(v))
                if e:
                    ev.append(e)
            if f is None and t - v.seen_until_s >= c.exit_after_s - 1e-9:
                if v.key is not None:
                    e = self.book.end(v.key, fi, ts_ms, v.seen_until_s * 1000.0, {**self._summary(v), "ended_by": "exit"})
                    if e:
                        ev.append(e)
                del self._visits[tid]
        tracks = []
        for v in sorted(self._visits.values(), key=lambda v: v.track_id):
            s = self._summary(v)
            tracks.append(VisitState(
                v.track_id, self.book.id_of(v.key) if v.key else None,
                v.track_id in seen, bool(v.prev and v.prev[1]), v.dwell_s, v.visible_s, v.attention_s,
                s["attention_share"], s["mean_valence"], s["mean_arousal"], s["top_expression"]))
        present = [s for s in tracks if s.present and s.visit_id is not None]
        state = KioskState(ts_ms, len(present), sum(1 for s in present if s.attending), self._total, tracks)
        self._t = t
        self._last = state
        self._last_index = fi
        return state, ev

    def finish(self) -> list[Event]:
        """End every open visit (the run is over)."""
        if self._last is None:
            return []
        out = []
        for v in self._visits.values():
            if v.key is not None:
                e = self.book.end(v.key, self._last_index, self._last.timestamp_ms, v.seen_until_s * 1000.0,
                                  {**self._summary(v), "ended_by": "run_end"})
                if e:
                    out.append(e)
        return out
