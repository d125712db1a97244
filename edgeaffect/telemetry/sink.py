"""The run loop's MQTT sink: results, events, driver/kiosk state and stats -> topics.

Topics (`<prefix>/<device>/...`, QoS 1, payloads in payloads.py):
- `frames`: per-frame results, at most `frames_hz` per second of *timestamp* time (0 = all);
  without landmarks unless `full_frames`;
- `events`: every driver / kiosk event line (start / update / end);
- `driver`, `kiosk`: the state object whenever one of its discrete fields changes (face seen,
  gaze zone, distraction, drowsiness level, alert, camera blocked, calibrated / people,
  attending, visits);
- `stats` (retained): every `stats_every_s` of wall time and at the end: fps, per-frame
  processing latency p50/p90/p99 (the pipelined executor's
  per-frame latency when it runs, else the sum of the frame's top-level stage timings), dropped frames (gaps in
  the source's frame indices), bad frames, temperature and throttling, RSS, model sha256s,
  spool / connection state, and the camera/source state: `source` "ok" | "outage",
  `source_outages` (count), `source_outage_s` (seconds lost so far, the current outage included),
  `source_outage_current_s` (None when ok), `source_retry_attempts` (in the current outage),
  `source_last_error`; during an outage (no frames) stats still go out, from the reconnect loop's
  retries at most every `stats_every_s`, and at once when an outage starts or ends;
- `events` also carries the camera's `camera_lost` / `camera_restored` status lines
  (edgeaffect.event/1, the same dicts the JSONL gets; `camera_retry` only updates stats);
- `info` (retained, once): models, backend, profile, device fingerprint;
- `availability` (retained): `online` / last will `offline` (mqtt.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..results import FrameResult
from .config import MqttConfig
from .payloads import compact_frame, envelope

_NESTED_TIMINGS = ("detector", "pose_eyes", "pipeline_latency")


def _driver_key(d: dict[str, Any]) -> tuple:
    return (d.get("face_detected"), d.get("gaze_zone"), d.get("distracted"), tuple(d.get("distracted_types") or ()),
            (d.get("drowsiness") or {}).get("level"), d.get("alert"), d.get("camera_blocked"),
            (d.get("calibration") or {}).get("calibrated"), tuple(d.get("poor_vision") or ()))


def _kiosk_key(d: dict[str, Any]) -> tuple:
    return (d.get("people"), d.get("attending"), d.get("visits_total"))


class TelemetrySink:
    def __init__(self, publisher: Any, cfg: MqttConfig, header: dict[str, Any] | None = None, *,
                 clock: Callable[[], float] = time.monotonic, thermal: Any = None) -> None:
        self.pub = publisher
        self.cfg = cfg
        self.clock = clock
        self.run = f"{int(time.time() * 1000):x}-{os.getpid()}"
        self._seq: dict[str, int] = defaultdict(int)
        header = header or {}
        self.models = header.get("models") or {}
        if thermal is None:
            from ..thermal import ThermalMonitor

            thermal = ThermalMonitor(min_interval_s=max(1.0, cfg.stats_every_s / 2))
        self.thermal = thermal
        self.frames = 0
        self.bad = 0
        self.with_face = 0
        self.dropped = 0
        self._last_index: int | None = None
        self._last_frame_ts: float | None = None
        self._driver_key: tuple | None = None
        self._kiosk_key: tuple | None = None
        self._lat: list[float] = []
        self._t0 = clock()
        self._win_t0 = self._t0
        self._win_frames = 0
        self._cpu0 = os.times()
        # the reconnect loop reports from the capture thread (or the run thread while it waits): one lock for both
        self._lock = threading.RLock()
        self.source_state = "ok"
        self.source_outages = 0
        self._outage_s_closed = 0.0
        self._outage_t0: float | None = None
        self.source_retry_attempts = 0
        self.source_last_error: str | None = None
        info = {"models": self.models, "backend": header.get("backend"), "profile": header.get("profile"),
                "max_faces": header.get("max_faces"), "fingerprint": _fingerprint()}
        self._send("info", "info", info, retain=True)

    def _send(self, leaf: str, type_: str, data: dict[str, Any], retain: bool = False) -> None:
        with self._lock:
            seq = self._seq[leaf]
            self._seq[leaf] += 1
            self.pub.publish(leaf, envelope(type_, self.cfg.device, self.run, seq, data), retain=retain)

    def on_status(self, d: dict[str, Any]) -> None:
        """A status line of the run (OutputSet.event): camera outages change `stats` and go to `events`."""
        kind = d.get("event")
        with self._lock:
            now = self.clock()
            if kind == "camera_lost":
                if self._outage_t0 is None:
                    self._outage_t0 = now
                    self.source_outages += 1
                self.source_state = "outage"
                self.source_retry_attempts = 0
                self.source_last_error = d.get("reason")
            elif kind == "camera_retry":
                self.source_retry_attempts = int(d.get("attempt") or self.source_retry_attempts + 1)
                self.source_last_error = d.get("error") or self.source_last_error
            elif kind == "camera_restored":
                if self._outage_t0 is not None:
                    self._outage_s_closed += now - self._outage_t0
                    self._outage_t0 = None
                self.source_state = "ok"
                self.source_retry_attempts = 0
            else:
                return
            if kind != "camera_retry":
                self._send("events", "event", d)
                self.send_stats()  # retained: a dashboard sees the outage (or its end) at once
            elif now - self._win_t0 >= self.cfg.stats_every_s:
                self.send_stats()  # no frames arrive during an outage: the retries keep stats going

    def source_stats(self) -> dict[str, Any]:
        with self._lock:
            cur = None if self._outage_t0 is None else self.clock() - self._outage_t0
            return {"source": self.source_state, "source_outages": self.source_outages,
                    "source_outage_s": round(self._outage_s_closed + (cur or 0.0), 3),
                    "source_outage_current_s": None if cur is None else round(cur, 3),
                    "source_retry_attempts": self.source_retry_attempts, "source_last_error": self.source_last_error}

    def on_result(self, frame: Any, result: FrameResult, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._on_result(frame, result, events)

    def _on_result(self, frame: Any, result: FrameResult, events: list[dict[str, Any]]) -> None:
        self.frames += 1
        self._win_frames += 1
        self.bad += int(result.status == "bad_frame")
        self.with_face += int(result.status == "ok")
        idx = getattr(frame, "index", None)
        if isinstance(idx, int):
            if self._last_index is not None and idx > self._last_index + 1:
                self.dropped += idx - self._last_index - 1
            self._last_index = idx
        t = result.timings_ms
        if t:  # the pipelined executor's end-to-end latency, else the top-level stages (`detector`, `pose_eyes` are inside `track`)
            self._lat.append(float(t["pipeline_latency"]) if "pipeline_latency" in t
                             else float(sum(v for k, v in t.items() if k not in _NESTED_TIMINGS)))
        d: dict[str, Any] | None = None
        period_ms = 1000.0 / self.cfg.frames_hz if self.cfg.frames_hz > 0 else 0.0
        if self._last_frame_ts is None or result.timestamp_ms - self._last_frame_ts >= period_ms - 1e-6:
            d = result.to_dict()
            self._send("frames", "frame", compact_frame(d, self.cfg.full_frames))
            self._last_frame_ts = result.timestamp_ms
        for e in events:
            self._send("events", "event", e)
        drv = getattr(result, "driver", None)
        if drv is not None:
            dd = drv.to_dict() if hasattr(drv, "to_dict") else drv
            k = _driver_key(dd)
            if k != self._driver_key:
                self._send("driver", "driver", {"frame_index": result.frame_index, "timestamp_ms": result.timestamp_ms, **dd})
                self._driver_key = k
        ks = getattr(result, "kiosk", None)
        if ks is not None:
            kd = ks.to_dict() if hasattr(ks, "to_dict") else ks
            k = _kiosk_key(kd)
            if k != self._kiosk_key:
                self._send("kiosk", "kiosk", {"frame_index": result.frame_index, "timestamp_ms": result.timestamp_ms, **kd})
                self._kiosk_key = k
        if self.clock() - self._win_t0 >= self.cfg.stats_every_s:
            self.send_stats()

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """Events that come without a frame (the end of the run closing open episodes)."""
        for e in events:
            self._send("events", "event", e)

    def stats(self) -> dict[str, Any]:
        from ..bench.stats import summarize
        from ..bench.sysmon import rss_mb

        now = self.clock()
        win = max(now - self._win_t0, 1e-9)
        th = self.thermal.read() if self.thermal is not None else None
        t1 = os.times()
        cpu_s = (t1.user + t1.system) - (self._cpu0.user + self._cpu0.system)
        lat = summarize(self._lat, 3)
        try:
            load = [round(v, 2) for v in os.getloadavg()]
        except OSError:
            load = None
        return {
            "uptime_s": round(now - self._t0, 2), "window_s": round(win, 3), "frames": self.frames,
            "frames_window": self._win_frames, "fps": round(self._win_frames / win, 2),
            "latency_ms": {k: lat[k] for k in ("p50", "p90", "p99", "mean", "count")},
            "dropped_frames": self.dropped, "bad_frames": self.bad, "frames_with_face": self.with_face,
            "temperature_c": None if th is None or th.temp_c is None else round(th.temp_c, 1),
            "throttled": None if th is None else th.throttled, "rss_mb": _round(rss_mb(), 1),
            "cpu_cores": round(cpu_s / win, 3), "loadavg": load, "models": self.models,
            "mqtt": self.pub.status(), **self.source_stats(),
        }

    def send_stats(self) -> None:
        with self._lock:
            self._send("stats", "stats", {**self.stats(), "run": self.run}, retain=True)
            self._win_t0 = self.clock()
            self._win_frames = 0
            self._lat = []
            self._cpu0 = os.times()

    def close(self, drain_s: float = 10.0) -> None:
        with self._lock:
            if self._win_frames or self._outage_t0 is not None:
                self.send_stats()
        self.pub.close(drain_s)


def _round(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)


def _fingerprint() -> dict[str, Any]:
    """A small device fingerprint for fleet tables (machine, CPU, cores, OS)."""
    try:
        from ..bench.fingerprint import collect

        fp = collect()
        return {k: fp.get(k) for k in ("machine", "board", "cpu", "memory_mb", "os", "packages")}
    except Exception:  # noqa: BLE001 - telemetry never stops a run
        import platform

        return {"machine": platform.machine()}
