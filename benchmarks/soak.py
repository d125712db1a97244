"""Soak test: loop a video for a long time and fail on memory growth or latency drift.

    python benchmarks/soak.py --source VIDEO [--duration 1800] [--warmup 60] [--models-dir DIR]
                              [--max-growth-mb 50] [--max-drift 1.25] [--drift-metric wall|cpu]
                              [--pace FPS] [--out DIR] [--label NAME]

Every `--interval` seconds it records RSS, latency p50/p90/max and thread-CPU p90 of the
frames in that window, throughput, temperature/throttling/clock and the load average.
After the run (or Ctrl-C, which ends it early and is reported as INCOMPLETE):

* memory: RSS at the end minus RSS at the end of the warm-up must stay <= --max-growth-mb
  (default 50 MB); the linear trend (MB/hour) is reported as well;
* latency drift: p90 of the last 10% of the post-warm-up frames must stay <= --max-drift
  (default 1.25) x p90 of the first 10%. `--drift-metric cpu` uses per-frame thread CPU time
  instead of wall time: use it on a shared machine, where wall time drifts with the
  neighbours' load (both are always reported);
* no frame may raise (errors are counted; bad frames cannot occur on a good video).

Writes LABEL.json (schema edgeaffect.soak/1, with the device fingerprint), LABEL.md and
LABEL.png (latency and RSS over time); prints PASS/FAIL per check; exit 0 = PASS,
1 = FAIL, 2 = INCOMPLETE / usage error. The harness's own memory does not grow during the
run (it would show in the RSS trend): per-frame samples go into buffers allocated and
touched before the warm-up (halved in resolution if they fill), interval samples into a
preallocated table turned into the report's dictionaries at the end.
(`benchmarks/soak_accel.py` soaks the whole run path, unpaced, with tracemalloc and disk writes.)
"""

from __future__ import annotations

import argparse
import platform
import signal
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeaffect.bench import fingerprint  # noqa: E402
from edgeaffect.bench.e2e_bench import ClipFrames, E2EConfig, FrameRecord, frame_loop, make_analyzer  # noqa: E402
from edgeaffect.bench.report import save_png, write_json  # noqa: E402
from edgeaffect.bench.stats import DecimatingSeries, percentile, summarize, windows  # noqa: E402
from edgeaffect.bench.sysmon import cpu_mhz, peak_rss_mb, rss_mb  # noqa: E402

SCHEMA = "edgeaffect.soak/1"
_SAMPLE_COLS = ("t_s", "rss_mb", "frames", "fps", "p50_ms", "p90_ms", "max_ms", "cpu_p90_ms", "temp_c", "throttled",
                "cpu_mhz", "load1", "load5", "load15", "warm")


def _nan(v: object) -> float:
    return float("nan") if v is None else float(v)  # type: ignore[arg-type]


def _none(v: float, nd: int | None = None) -> float | None:
    return None if v != v else (round(v, nd) if nd is not None else v)


def _loadavg() -> list[float] | None:
    return fingerprint.loadavg()


def run(a: argparse.Namespace) -> dict:
    from edgeaffect.thermal import ThermalMonitor

    cfg = E2EConfig(source=a.source, threads=a.threads, models_dir=a.models_dir, max_faces=1, pace_fps=a.pace)
    clip = ClipFrames(a.source, a.preload_mb)
    an = make_analyzer(cfg)
    thermal = ThermalMonitor(min_interval_s=0.0)
    fp = fingerprint.collect(backend=an.backend, manifests=dict(an.model_manifests), delegates=[], num_threads=a.threads)
    stop_reason: dict[str, str | None] = {"sig": None}

    def on_sig(signum, _f):
        stop_reason["sig"] = signal.Signals(signum).name

    old = {s: signal.signal(s, on_sig) for s in (signal.SIGINT, signal.SIGTERM)}
    rate = a.pace or 400.0
    post = DecimatingSeries(max(int((a.duration - a.warmup) * rate * 1.1) + 1000, 1024))  # post-warm-up frames
    win: dict = {"lat": array("f"), "cpu": array("f"), "n": 0, "t0": 0.0}
    status: Counter[str] = Counter()
    table = np.full((int(a.duration / a.interval) + 64, len(_SAMPLE_COLS)), np.nan)  # interval samples, preallocated
    n_samples = [0]
    state = {"warm_rss": None, "warm_t": None, "next": a.interval}

    def sample(t: float) -> None:
        th = thermal.read(force=True)
        n = win["n"]
        dt = t - win["t0"]
        load = _loadavg() or [None, None, None]
        row = (t, rss_mb(), n, n / dt if dt > 0 else None, percentile(win["lat"], 50) if n else None,
               percentile(win["lat"], 90) if n else None, float(max(win["lat"])) if n else None,
               percentile(win["cpu"], 90) if n else None, th.temp_c, th.throttled, cpu_mhz(), *load[:3], t >= a.warmup)
        if n_samples[0] < len(table):
            table[n_samples[0]] = [_nan(v) for v in row]
            n_samples[0] += 1
        win.update(lat=array("f"), cpu=array("f"), n=0, t0=t)
        if a.verbose:
            print(f"[soak] {t:7.0f} s  RSS {_nan(row[1]):.1f} MB  p90 {row[5]} ms  {row[3]} fps  "
                  f"temp {row[8]}  load {load}", flush=True)

    def on_frame(r: FrameRecord) -> None:
        status[r.status] += 1
        win["lat"].append(r.latency_ms)
        win["cpu"].append(r.cpu_ms)
        win["n"] += 1
        if r.t_s >= a.warmup:
            if state["warm_rss"] is None:
                state["warm_rss"], state["warm_t"] = rss_mb(), r.t_s
            post.add(r.t_s, r.latency_ms, r.cpu_ms)
        if r.t_s >= state["next"]:
            sample(r.t_s)
            state["next"] += a.interval

    print(f"[soak] {a.duration:g} s over {a.source} (warm-up {a.warmup:g} s), sampling every {a.interval:g} s; Ctrl-C ends early",
          flush=True)
    t_start = time.perf_counter()
    sample(0.0)
    try:
        frame_loop(an, clip, stop=lambda n, el: el >= a.duration or stop_reason["sig"] is not None, on_frame=on_frame,
                   pace_fps=a.pace, t0=t_start)
    finally:
        for s_, h in old.items():
            signal.signal(s_, h)
    wall = time.perf_counter() - t_start
    if win["n"]:
        sample(wall)
    an.close()
    clip.close()
    samples = []
    for row in table[: n_samples[0]]:
        d = dict(zip(_SAMPLE_COLS, row.tolist()))
        samples.append({"t_s": round(d["t_s"], 2), "rss_mb": round(d["rss_mb"], 2), "frames": int(d["frames"]),
                        "fps": _none(d["fps"], 2), "p50_ms": _none(d["p50_ms"], 3), "p90_ms": _none(d["p90_ms"], 3),
                        "max_ms": _none(d["max_ms"], 3), "cpu_p90_ms": _none(d["cpu_p90_ms"], 3),
                        "temp_c": _none(d["temp_c"]),
                        "throttled": None if d["throttled"] != d["throttled"] else bool(d["throttled"]),
                        "cpu_mhz": _none(d["cpu_mhz"]),
                        "loadavg": None if d["load1"] != d["load1"] else [d["load1"], d["load5"], d["load15"]],
                        "warm": bool(d["warm"])})
    lat, cpu = post.col(1).astype(np.float32), post.col(2).astype(np.float32)

    res: dict = {"schema": SCHEMA, "label": a.label or f"{platform.machine()}-soak",
                 "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv),
                 "fingerprint": fp, "config": {k: v for k, v in vars(a).items()}, "wall_s": round(wall, 1),
                 "interrupted_by": stop_reason["sig"], "status_counts": dict(status), "samples": samples, "checks": []}
    checks = res["checks"]
    complete = stop_reason["sig"] is None and wall >= a.duration * 0.99
    post = [s for s in samples if s["warm"] and s["rss_mb"] == s["rss_mb"]]
    if state["warm_rss"] is None or len(lat) < 20:
        checks.append({"name": "enough data", "ok": False, "detail": f"only {len(lat)} frames after the {a.warmup:g} s warm-up"})
    else:
        rss_end = rss_mb() or float("nan")
        growth = rss_end - state["warm_rss"]
        slope = None
        if len(post) >= 3:
            ts = np.array([s["t_s"] for s in post])
            rs = np.array([s["rss_mb"] for s in post])
            slope = float(np.polyfit(ts, rs, 1)[0] * 3600.0) if np.ptp(ts) > 0 else None
        checks.append({"name": "memory growth", "ok": growth <= a.max_growth_mb, "value_mb": round(growth, 2),
                       "bound_mb": a.max_growth_mb, "rss_after_warmup_mb": round(state["warm_rss"], 1),
                       "rss_end_mb": round(rss_end, 1), "peak_rss_mb": peak_rss_mb(),
                       "trend_mb_per_hour": None if slope is None else round(slope, 2),
                       "detail": f"RSS {state['warm_rss']:.1f} -> {rss_end:.1f} MB ({growth:+.1f} MB, bound {a.max_growth_mb:g} MB)"
                                 + (f", trend {slope:+.1f} MB/h" if slope is not None else "")})
        drifts = {}
        for name, arr in (("wall", lat), ("cpu", cpu)):
            first, last = windows(arr.astype(np.float64), 0.1)
            p_first, p_last = percentile(first, 90), percentile(last, 90)
            drifts[name] = {"p90_first_ms": round(p_first, 3), "p90_last_ms": round(p_last, 3),
                            "ratio": round(p_last / p_first, 3) if p_first > 0 else None}
        m = drifts[a.drift_metric]
        ok = m["ratio"] is not None and m["ratio"] <= a.max_drift
        checks.append({"name": f"latency drift ({a.drift_metric})", "ok": ok, "bound": a.max_drift, **m, "both": drifts,
                       "detail": f"p90 first 10% {m['p90_first_ms']:.2f} ms -> last 10% {m['p90_last_ms']:.2f} ms "
                                 f"= {m['ratio']}x (bound {a.max_drift}x; wall {drifts['wall']['ratio']}x, cpu {drifts['cpu']['ratio']}x)"})
        res["latency_ms_post_warmup"] = summarize(lat)
    errors = sum(v for k, v in status.items() if k.startswith("error"))
    checks.append({"name": "no frame errors", "ok": errors == 0, "detail": f"{errors} frames raised; statuses {dict(status)}"})
    res["verdict"] = "PASS" if all(c["ok"] for c in checks) and complete else ("FAIL" if not all(c["ok"] for c in checks) else "INCOMPLETE")
    if not complete:
        res["incomplete_reason"] = f"ran {wall:.0f} of {a.duration:g} s" + (f" (stopped by {stop_reason['sig']})" if stop_reason["sig"] else "")
    return res


def render_md(res: dict) -> str:
    lines = [f"# edgeaffect soak: {res['label']} — {res['verdict']}", "",
             f"{res['created_utc']} · `{res['command']}` · {res['wall_s']} s · device: {fingerprint.short_name(res['fingerprint'])}", ""]
    for c in res["checks"]:
        lines.append(f"- {'PASS' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
    if res.get("incomplete_reason"):
        lines.append(f"- INCOMPLETE: {res['incomplete_reason']}")
    lines += ["", "| t (s) | RSS MB | fps | p50 ms | p90 ms | max ms | CPU p90 ms | temp C | throttled | load |", "|" + "---|" * 10]
    step = max(1, len(res["samples"]) // 40)
    for s in res["samples"][::step]:
        lines.append(f"| {s['t_s']} | {s['rss_mb']} | {s['fps']} | {s['p50_ms']} | {s['p90_ms']} | {s['max_ms']} | "
                     f"{s['cpu_p90_ms']} | {s['temp_c']} | {s['throttled']} | {(s['loadavg'] or ['-'])[0]} |")
    return "\n".join(lines) + "\n"


def plot(res: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: plot skipped"
    s = [x for x in res["samples"] if x["frames"]]
    if not s:
        return "no samples to plot"
    t = [x["t_s"] / 60 for x in s]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    a1.plot(t, [x["p50_ms"] for x in s], label="p50")
    a1.plot(t, [x["p90_ms"] for x in s], label="p90")
    a1.plot(t, [x["cpu_p90_ms"] for x in s], label="thread-CPU p90", ls=":")
    a1.set_ylabel("frame latency (ms)")
    a1.legend()
    a1.set_title(f"soak {res['label']}: {res['verdict']}")
    a2.plot(t, [x["rss_mb"] for x in s], color="#2ca02c")
    a2.set_ylabel("RSS (MB)")
    a2.set_xlabel("minutes")
    if any(x["temp_c"] is not None for x in s):
        a3 = a2.twinx()
        a3.plot(t, [x["temp_c"] if x["temp_c"] is not None else float("nan") for x in s], color="#ff7f0e")
        a3.set_ylabel("temp (C)")
    save_png(plt, fig, path)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True)
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800 = 30 min)")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds excluded from the checks (default 60)")
    ap.add_argument("--interval", type=float, default=10.0, help="sampling interval, seconds")
    ap.add_argument("--max-growth-mb", type=float, default=50.0)
    ap.add_argument("--max-drift", type=float, default=1.25)
    ap.add_argument("--drift-metric", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--pace", type=float, default=None, help="frames arrive at this rate (default: back to back)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--preload-mb", type=float, default=256.0)
    ap.add_argument("--label", default=None)
    ap.add_argument("--out", default="soak-out")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    a = ap.parse_args(argv)
    if not Path(a.source).exists():
        print(f"soak: error: --source {a.source} does not exist", file=sys.stderr)
        return 2
    if a.warmup >= a.duration:
        print("soak: error: --warmup must be shorter than --duration", file=sys.stderr)
        return 2
    return write_report(run(a), Path(a.out), render_md, plot, "soak")


def write_report(res: dict, out: Path, render: Callable[[dict], str], draw: Callable[[dict, Path], str | None], tag: str) -> int:
    """OUT/<label>.json, .md (`render`), .png (`draw`), one line per check; exit 0 PASS, 1 FAIL, 2 otherwise.
    Shared with benchmarks/soak_accel.py (its own renderer and plot, the same files and lines)."""
    out.mkdir(parents=True, exist_ok=True)
    stem = res["label"]
    write_json(res, out / f"{stem}.json")
    (out / f"{stem}.md").write_text(render(res))
    msg = draw(res, out / f"{stem}.png")
    for c in res["checks"]:
        print(f"{'PASS' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
    if res.get("writes"):
        ph = res["writes"]["per_hour_eq"]
        print(f"writes per hour-equivalent: {ph['mb']} MB, {ph['write_calls']} write() calls, {ph['fsyncs']} fsyncs")
    for t in (res.get("tracemalloc_top_growth") or [])[:5]:
        print(f"  grew {t['size_diff_kb']:8.1f} KB ({t['count_diff']:+d} blocks) at {t['site']}")
    if res.get("incomplete_reason"):
        print(f"INCOMPLETE: {res['incomplete_reason']}")
    if msg:
        print(msg)
    print(f"{tag} {res['verdict']}: {out / (stem + '.json')}")
    return {"PASS": 0, "FAIL": 1}.get(res["verdict"], 2)


if __name__ == "__main__":
    sys.exit(main())
