"""MQTT payloads (schema `edgeaffect.mqtt/1`, documented in README "Fleet: MQTT").

Every JSON payload is one envelope:

    {"schema": "edgeaffect.mqtt/1", "type": "frame|event|driver|kiosk|stats|info|bench",
     "device": "<device>", "run": "<run id>", "seq": n, "wall_utc": "...", "data": {...}}

`seq` counts per (run, topic) from 0 with no gaps on the publishing side, so a consumer can
drop repeats (at-least-once delivery) and notice anything missing. `availability` is a bare
string (`online` / `offline`), Frigate's and Home Assistant's convention. Readers ignore
unknown keys; a breaking change bumps the schema number.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from ..jsonsafe import json_safe

MQTT_SCHEMA = "edgeaffect.mqtt/1"
TYPES = ("frame", "event", "driver", "kiosk", "stats", "info", "bench")


def wall_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def envelope(type_: str, device: str, run: str, seq: int, data: dict[str, Any]) -> str:
    return json.dumps({"schema": MQTT_SCHEMA, "type": type_, "device": device, "run": run, "seq": seq,
                       "wall_utc": wall_utc(), "data": json_safe(data)}, separators=(",", ":"), allow_nan=False)


def parse(payload: bytes | str) -> dict[str, Any] | None:
    """A received envelope, or None when it is not one (availability strings, foreign messages)."""
    try:
        d = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) and d.get("schema") == MQTT_SCHEMA else None


def compact_frame(d: dict[str, Any], full: bool = False) -> dict[str, Any]:
    """A frame line for the network: without landmarks and sigmas (136 + 68 numbers) unless `full`."""
    if full:
        return d
    out = dict(d)
    out["faces"] = [{k: v for k, v in f.items() if k not in ("landmarks", "landmark_sigma")} for f in d.get("faces", [])]
    return out


def stats_as_bench_report(device: str, stats: dict[str, Any], info: dict[str, Any] | None) -> dict[str, Any]:
    """A device's latest `stats` as an `edgeaffect.bench/1` e2e report, so `bench compare`'s table
    and plot can render live devices beside report files."""
    from ..bench.report import SCHEMA

    info = info or {}
    fp = dict(info.get("fingerprint") or {})
    fp["models"] = {k: {"file": (v or {}).get("file"), "sha256": (v or {}).get("sha256")}
                    for k, v in (stats.get("models") or info.get("models") or {}).items()}
    lat = stats.get("latency_ms") or {}
    return {
        "schema": SCHEMA, "kind": "e2e", "label": device, "created_utc": stats.get("wall_utc") or wall_utc(),
        "command": f"edgeaffect run (live stats over MQTT, run {stats.get('run')})", "fingerprint": fp,
        "config": {"source": "mqtt", "window_s": stats.get("window_s")},
        "e2e": {
            "frames": stats.get("frames"),
            "latency_ms": {k: lat.get(k) for k in ("p50", "p90", "p99", "mean", "count")},
            "throughput_fps": stats.get("fps"),
            "paced_fps": None,
            "system": {"temp_c": {"max": stats.get("temperature_c")}, "throttled_any": stats.get("throttled"),
                       "peak_rss_mb": stats.get("rss_mb"), "cpu_utilisation_cores": stats.get("cpu_cores"),
                       "loadavg_start": stats.get("loadavg")},
        },
        "notes": [f"live: {stats.get('dropped_frames', 0)} dropped frames, mqtt {stats.get('mqtt', {})}"],
    }
