"""Per-frame cost of the policy layers (`run --dms --kiosk`) and of the MQTT sink's publish call.

    python benchmarks/layers_overhead.py --source ../shared/data/video/short_hamilton_clip.mp4 \
        --out benchmarks/results/layers_overhead.json

The clip is analysed once; then, over several rounds, the recorded (frame, result) pairs go
through ResultObservers.annotate (driver monitor: image statistics, head-pose std, policy;
kiosk counter) and, with --mqtt URL, through TelemetrySink.on_result (one spool append per
message). Reports p50 / p90 / mean milliseconds per frame (numpy linear percentiles).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mqtt", default=None, help="also time the MQTT sink against this broker (mqtt://HOST:PORT)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from edgeaffect import Analyzer, AnalyzerOptions
    from edgeaffect.capture import open_source
    from edgeaffect.observers import ResultObservers

    src = open_source(a.source)
    src.open()
    pairs = []
    with Analyzer(AnalyzerOptions(max_faces=1)) as an:
        for f in src:
            pairs.append((f, an.process(f)))
    src.close()
    report: dict = {"source": Path(a.source).name, "frames": len(pairs), "rounds": a.rounds,
                    "machine": platform.machine(), "processor": platform.processor() or None, "layers": {}}
    for name, kw in (("dms", {"dms": True}), ("kiosk", {"kiosk": True}), ("dms+kiosk", {"dms": True, "kiosk": True})):
        ts = []
        for _ in range(a.rounds):
            obs = ResultObservers(**kw)
            for f, r in pairs:
                t0 = time.perf_counter()
                obs.annotate(f, r)
                ts.append((time.perf_counter() - t0) * 1000)
        report["layers"][name] = {"p50_ms": round(float(np.percentile(ts, 50)), 4), "p90_ms": round(float(np.percentile(ts, 90)), 4),
                                  "mean_ms": round(float(np.mean(ts)), 4), "count": len(ts)}
    if a.mqtt:
        from edgeaffect.telemetry import config_from_args
        from edgeaffect.telemetry.mqtt import MqttPublisher
        from edgeaffect.telemetry.sink import TelemetrySink

        cfg = config_from_args(a.mqtt, device="overhead-bench", frames_hz=0.0)
        with tempfile.TemporaryDirectory() as d:
            sink = TelemetrySink(MqttPublisher(cfg, d), cfg, {})
            obs = ResultObservers(dms=True, kiosk=True)
            ts = []
            for f, r in pairs * a.rounds:
                ev = obs.annotate(f, r)
                t0 = time.perf_counter()
                sink.on_result(f, r, ev)
                ts.append((time.perf_counter() - t0) * 1000)
            sink.close()
        report["layers"]["mqtt_sink_every_frame"] = {"p50_ms": round(float(np.percentile(ts, 50)), 4),
                                                     "p90_ms": round(float(np.percentile(ts, 90)), 4),
                                                     "mean_ms": round(float(np.mean(ts)), 4), "count": len(ts)}
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
