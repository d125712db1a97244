"""Events of the policy layers (driver monitoring, kiosk): `start` / `update` / `end` with ids.

One event is one episode (a distraction, a microsleep, a visit): its `start` line comes when
the rule is met, `update` lines at most every `update_every_s` while it lasts, and one `end`
line when it is over (or when the run ends: `data.ended_by = "run_end"`). `start_ms` is when
the episode began (e.g. the onset of the glance), which can be earlier than the frame whose
`timestamp_ms` emitted the `start` line (the frame where the 3 s rule was met).

Serialised as one JSON line each (schema `edgeaffect.event/1`: `event` names the kind, as in
the run's status lines, `phase` is start/update/end), in the same results.jsonl as the frames,
right after the frame that emitted them; MQTT publishes them to `.../events`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENT_SCHEMA = "edgeaffect.event/1"
PHASES = ("start", "update", "end")


@dataclass
class Event:
    phase: str  # start | update | end
    id: str  # "<layer>-<n>", unique within a run
    type: str  # distraction, microsleep, visit ...
    layer: str  # driver | kiosk
    frame_index: int
    timestamp_ms: float  # the frame that emitted this line
    start_ms: float  # when the episode began
    end_ms: float | None = None  # set on `end`
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        end = self.end_ms if self.end_ms is not None else self.timestamp_ms
        return {
            "schema": EVENT_SCHEMA,
            "event": self.type,
            "phase": self.phase,
            "id": self.id,
            "layer": self.layer,
            "frame_index": self.frame_index,
            "timestamp_ms": round(float(self.timestamp_ms), 3),
            "start_ms": round(float(self.start_ms), 3),
            "end_ms": None if self.end_ms is None else round(float(self.end_ms), 3),
            "duration_ms": round(float(end - self.start_ms), 3),
            "data": self.data,
        }


def is_event_line(d: dict[str, Any]) -> bool:
    return d.get("schema") == EVENT_SCHEMA and "phase" in d


@dataclass
class _Open:
    event_id: str
    type: str
    start_ms: float
    last_update_ms: float
    data: dict[str, Any]


class EventBook:
    """Ids and phases of one layer's events. Keys name an episode slot ("distraction:glance",
    "visit:7"); a key has at most one open event at a time."""

    def __init__(self, layer: str, update_every_s: float = 1.0) -> None:
        self.layer = layer
        self.update_every_ms = update_every_s * 1000.0
        self._open: dict[str, _Open] = {}
        self._n = 0

    def is_open(self, key: str) -> bool:
        return key in self._open

    def id_of(self, key: str) -> str | None:
        o = self._open.get(key)
        return o.event_id if o else None

    def open_ids(self) -> list[str]:
        return [o.event_id for o in self._open.values()]

    def start(self, key: str, type_: str, frame_index: int, ts_ms: float, start_ms: float,
              data: dict[str, Any] | None = None) -> Event:
        if key in self._open:
            raise RuntimeError(f"event {key!r} is already open")
        self._n += 1
        o = _Open(f"{self.layer}-{self._n}", type_, start_ms, ts_ms, dict(data or {}))
        self._open[key] = o
        return Event("start", o.event_id, type_, self.layer, frame_index, ts_ms, start_ms, None, dict(o.data))

    def update(self, key: str, frame_index: int, ts_ms: float, data: dict[str, Any] | None = None,
               force: bool = False) -> Event | None:
        """An `update` line if the event is open and (force or `update_every_s` has passed)."""
        o = self._open.get(key)
        if o is None:
            return None
        if data:
            o.data.update(data)
        if not force and ts_ms - o.last_update_ms < self.update_every_ms:
            return None
        o.last_update_ms = ts_ms
        return Event("update", o.event_id, o.type, self.layer, frame_index, ts_ms, o.start_ms, None, dict(o.data))

    def end(self, key: str, frame_index: int, ts_ms: float, end_ms: float,
            data: dict[str, Any] | None = None) -> Event | None:
        o = self._open.pop(key, None)
        if o is None:
            return None
        o.data.update(data or {})
        return Event("end", o.event_id, o.type, self.layer, frame_index, ts_ms, o.start_ms, end_ms, dict(o.data))

    def end_all(self, frame_index: int, ts_ms: float, reason: str = "run_end") -> list[Event]:
        return [e for k in list(self._open) if (e := self.end(k, frame_index, ts_ms, ts_ms, {"ended_by": reason}))]
