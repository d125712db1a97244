"""End-to-end benchmark, MLPerf Mobile single-stream style: one frame in flight at a time.

A video is looped until at least `min_frames` frames AND `min_seconds` seconds have been
measured (MLPerf single-stream: >= 1024 queries and >= 60 s; both overridable for smoke
runs). Each frame's latency is the wall time of `Analyzer.process()` (capture/decoding is
excluded: the clip is decoded into RAM first when it fits in `preload_mb`, MLPerf's
"samples loaded to RAM"; otherwise decoding time is measured separately). Reported:

* latency p50/p90/p99 (+ count/min/max/mean/std), the p90 being MLPerf's score;
* per-frame thread CPU time (`time.thread_time`; robust to other load on a shared machine);
* throughput (measured frames / measured wall time) and service rate (1000 / mean latency);
* paced mode (`pace_fps`, e.g. the video's rate): frames arrive on a fixed clock, a frame
  that arrives while the analyzer is busy is replaced by the newer one (a camera's
  latest-frame policy) and counted as dropped; `response_ms` = completion - arrival;
* CPU utilisation (process CPU time / wall), machine-wide CPU busy (other load), peak RSS,
  temperature, clocks and throttling where readable (edgeaffect.thermal);
* the per-stage breakdown from `FrameResult.timings_ms` (detector is part of track), model
  invocations per frame and time inside the interpreter vs Python pre/post-processing;
* MACs per frame from the manifests (all models, steady-state tracking, and the measured
  mix of invocations).

The first `warmup_frames` frames are processed but excluded from every statistic.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeAffectError, SourceError
from .stats import summarize
from .sysmon import SystemMonitor

MLPERF_MIN_FRAMES = 1024
MLPERF_MIN_SECONDS = 60.0


@dataclass
class E2EConfig:
    source: str
    min_frames: int = MLPERF_MIN_FRAMES
    min_seconds: float = MLPERF_MIN_SECONDS
    max_seconds: float | None = None  # hard stop (None: none)
    warmup_frames: int = 10
    pace_fps: float | None = None  # None: back to back; >0: frames arrive on this clock
    preload_mb: float = 256.0
    threads: int = 1
    models_dir: str | None = None
    max_faces: int = 1
    enable_aus: bool = True
    enable_affect: bool = True
    monitor_interval_s: float = 1.0
    keep_series: bool = True
    extra_options: dict[str, Any] = field(default_factory=dict)


class ClipFrames:
    """A looping video: preloaded into RAM when it fits, else decoded on demand (timed separately)."""

    def __init__(self, path: str | Path, preload_mb: float = 256.0, max_frames: int | None = None) -> None:
        import cv2

        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"video file {self.path} does not exist")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"cannot open {self.path} as a video")
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise SourceError(f"{self.path}: no frame could be decoded")
        self.height, self.width = first.shape[:2]
        self.decode_ms = array("d")
        limit = max_frames or n or 10**9
        fits = n > 0 and n * first.nbytes / 2**20 <= preload_mb
        self.preloaded = fits
        self._frames: list[np.ndarray] = []
        self._cap = None
        #: per-frame decode time measured while preloading (not inside any latency)
        self.preload_decode_ms = array("d")
        if fits:
            self._frames.append(first)
            while len(self._frames) < limit:
                t0 = time.perf_counter()
                ok, img = cap.read()
                if not ok or img is None:
                    break
                self.preload_decode_ms.append((time.perf_counter() - t0) * 1000.0)
                self._frames.append(img)
            cap.release()
            self.count = len(self._frames)
        else:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._cap = cap
            self.count = min(n, limit) if n else limit
        self._pos = 0  # streaming: next frame index the decoder will return

    def get(self, k: int) -> np.ndarray:
        """Frame number k of the endless loop (k never decreases)."""
        if self.preloaded:
            return self._frames[k % self.count]
        import cv2

        assert self._cap is not None
        img = None
        while self._pos <= k:
            t0 = time.perf_counter()
            ok, img = self._cap.read()
            if not ok or img is None:  # end of the clip: loop
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, img = self._cap.read()
                if not ok or img is None:
                    raise SourceError(f"{self.path}: decoding failed on loop")
            self.decode_ms.append((time.perf_counter() - t0) * 1000.0)
            self._pos += 1
        assert img is not None
        return img

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._frames = []

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "name": self.path.name, "fps": round(self.fps, 3), "width": self.width,
                "height": self.height, "clip_frames": self.count, "preloaded": self.preloaded}


class InvocationCounter:
    """Model calls and time inside `runner.run` per module, from the analyzer's TimingRunner wrappers.

    Build the analyzer with `make_analyzer` (or `BaseOptions(wrappers=[RunnerTimings().wrap])`):
    the counter reads the timing wrappers the runner factory put around every runner.
    """

    def __init__(self, analyzer: Any) -> None:
        from ..runtime.wrappers import TimingRunner, find_wrapper

        self.manifests = dict(analyzer.model_manifests)
        found = {m: find_wrapper(r, TimingRunner) for m, r in analyzer.runners.items()}
        self.timers = {m: t for m, t in found.items() if t is not None}
        missing = sorted(set(analyzer.runners) - set(self.timers))
        if missing:
            raise EdgeAffectError(f"the analyzer's {', '.join(missing)} runners are not timed: build it with "
                                  "make_analyzer() or BaseOptions(wrappers=[RunnerTimings().wrap])")

    @property
    def count(self) -> Counter[str]:
        return Counter({m: t.count for m, t in self.timers.items()})

    @property
    def ms(self) -> dict[str, float]:
        return {m: t.total_ms for m, t in self.timers.items()}

    @property
    def enabled(self) -> bool:
        return all(t.enabled for t in self.timers.values())

    @enabled.setter
    def enabled(self, on: bool) -> None:
        for t in self.timers.values():
            t.enabled = on

    def summary(self, frames: int) -> dict[str, dict[str, Any]]:
        n, count, ms = frames, self.count, self.ms
        return {m: {"count": count.get(m, 0), "per_frame": round(count.get(m, 0) / n, 4) if n else None,
                    "mean_ms": round(ms[m] / count[m], 4) if count.get(m) else None,
                    "ms_per_frame": round(ms[m] / n, 4) if n else None} for m in ms}

    def reset(self) -> None:
        for t in self.timers.values():
            t.reset()


@dataclass
class FrameRecord:
    k: int  # schedule index (the clip frame is k % clip_frames)
    t_s: float  # completion time since the start of the run
    latency_ms: float
    cpu_ms: float
    response_ms: float | None
    status: str
    timings_ms: dict[str, float]
    dropped_before: int
    result: Any = None  # the FrameResult (None when the frame raised)


def frame_loop(
    analyzer: Any,
    clip: ClipFrames,
    *,
    stop: Callable[[int, float], bool],
    on_frame: Callable[[FrameRecord], None],
    pace_fps: float | None = None,
    monitor: SystemMonitor | None = None,
    t0: float | None = None,
    k0: int = 0,
) -> int:
    """Process frames one at a time until `stop(frames_done, elapsed_s)`; returns the next schedule index."""
    period = 1.0 / clip.fps
    t0 = time.perf_counter() if t0 is None else t0
    k = k0
    done = 0
    pace_t0 = time.perf_counter()
    while True:
        now = time.perf_counter()
        if stop(done, now - t0):
            return k
        dropped = 0
        arrival = None
        if pace_fps:
            j = int(math.floor((now - pace_t0) * pace_fps)) + k0
            if j < k:  # the next frame has not arrived yet: wait for it
                time.sleep(max(0.0, pace_t0 + (k - k0) / pace_fps - now))
            else:
                dropped, k = j - k, j
            arrival = pace_t0 + (k - k0) / pace_fps
        img = clip.get(k)
        ts = (k + 1) * period * 1000.0
        c0 = time.thread_time()
        s0 = time.perf_counter()
        res = None
        try:
            res = analyzer.process(img, ts)
            status, timings = res.status, res.timings_ms
        except EdgeAffectError as e:  # a benchmark must not die on one bad frame; it is counted
            status, timings = f"error:{type(e).__name__}", {}
        s1 = time.perf_counter()
        c1 = time.thread_time()
        on_frame(FrameRecord(k, s1 - t0, (s1 - s0) * 1000.0, (c1 - c0) * 1000.0,
                             None if arrival is None else (s1 - arrival) * 1000.0, status, timings, dropped, res))
        done += 1
        k += 1
        if monitor is not None:
            monitor.maybe_sample()


def make_analyzer(cfg: E2EConfig) -> Any:
    """The benchmarked analyzer: the real one, every runner wrapped in a TimingRunner."""
    from ..analyzer import Analyzer, AnalyzerOptions, BaseOptions, RunningMode
    from ..runtime.wrappers import RunnerTimings

    base = BaseOptions(models_dir=Path(cfg.models_dir) if cfg.models_dir else None, num_threads=cfg.threads,
                       wrappers=[RunnerTimings().wrap])
    opts = AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=cfg.max_faces, base_options=base,
                           enable_aus=cfg.enable_aus, enable_affect=cfg.enable_affect, **cfg.extra_options)
    return Analyzer(opts)


def macs_summary(manifests: dict[str, Any], invocations: Counter[str] | None = None, frames: int = 0) -> dict[str, Any]:
    per = {m: man.macs for m, man in manifests.items()}
    known = {m: v for m, v in per.items() if v}
    out: dict[str, Any] = {
        "per_module": per,
        "missing": sorted(m for m, v in per.items() if not v),
        "sum_all_models": sum(known.values()) if known else None,
        # steady state while tracking one face: landmarks + AU + temporal once each (no detector)
        "per_frame_tracking": sum(v for m, v in known.items() if m != "detector") or None,
    }
    if invocations is not None and frames:
        out["per_frame_measured"] = int(round(sum(invocations.get(m, 0) * v for m, v in known.items()) / frames))
    return out


def run_e2e(cfg: E2EConfig, analyzer: Any = None, progress: Callable[[str], None] | None = None,
            on_measured: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the report section `e2e` (plus `series` when cfg.keep_series).

    `on_measured(n)` is called after each measured frame with the count so far (a progress bar)."""
    clip = ClipFrames(cfg.source, cfg.preload_mb)
    own = analyzer is None
    t_load = time.perf_counter()
    an = analyzer or make_analyzer(cfg)
    load_ms = (time.perf_counter() - t_load) * 1000.0
    counter = InvocationCounter(an)
    pace = cfg.pace_fps if cfg.pace_fps and cfg.pace_fps > 0 else None
    # warm-up: processed, not measured
    warm = array("d")
    k = frame_loop(an, clip, stop=lambda n, _t: n >= cfg.warmup_frames, on_frame=lambda r: warm.append(r.latency_ms))
    counter.reset()
    lat, cpu, tt, resp = array("d"), array("d"), array("d"), array("d")
    status: Counter[str] = Counter()
    stages: dict[str, array] = {}
    dropped = [0]
    det_frames = [0]
    frame_model_ms, out_ms = array("d"), array("d")
    cols: dict[str, array] = {k: array("d") for k in ALIGNED_STAGES}
    model_total = [sum(counter.ms.values())]
    import tempfile

    from ..outputs import JsonlWriter

    out_tmp = tempfile.TemporaryDirectory(prefix="edgeaffect-bench-out-")
    writer = JsonlWriter(Path(out_tmp.name) / "results.jsonl")

    def on_frame(r: FrameRecord) -> None:
        tot = sum(counter.ms.values())
        frame_model_ms.append(tot - model_total[0])
        model_total[0] = tot
        if r.result is not None:  # what `edgeaffect run` does next: one JSON line (outside the latency)
            w0 = time.perf_counter()
            writer.write(r.result)
            out_ms.append((time.perf_counter() - w0) * 1000.0)
        for k in ALIGNED_STAGES:  # one value per frame (0 where the stage did not run)
            cols[k].append(r.timings_ms.get(k, 0.0))
        lat.append(r.latency_ms)
        cpu.append(r.cpu_ms)
        tt.append(r.t_s)
        if r.response_ms is not None:
            resp.append(r.response_ms)
        status[r.status] += 1
        dropped[0] += r.dropped_before
        for st, v in r.timings_ms.items():
            stages.setdefault(st, array("d")).append(v)
        if "detector" in r.timings_ms:
            det_frames[0] += 1
        if on_measured is not None:
            on_measured(len(lat))

    def stop(n: int, el: float) -> bool:
        if cfg.max_seconds is not None and el >= cfg.max_seconds:
            return True
        return n >= cfg.min_frames and el >= cfg.min_seconds

    if progress:
        progress(f"measuring: >= {cfg.min_frames} frames and >= {cfg.min_seconds:g} s"
                 + (f" (paced at {pace:g} fps)" if pace else " (back to back)"))
    mon = SystemMonitor(cfg.monitor_interval_s).start()
    t0 = time.perf_counter()
    frame_loop(an, clip, stop=stop, on_frame=on_frame, pace_fps=pace, monitor=mon, t0=t0, k0=k)
    wall = time.perf_counter() - t0
    sysres = mon.stop()
    writer.close()
    out_tmp.cleanup()
    n = len(lat)
    lat_np = np.frombuffer(lat, dtype=np.float64) if n else np.zeros(0)
    model_ms = sum(counter.ms.values())
    inv = counter.summary(n)
    mean_lat = float(lat_np.mean()) if n else math.nan
    out: dict[str, Any] = {
        "source": clip.describe(),
        "frames": n,
        "warmup_frames": len(warm),
        "warmup_latency_ms": summarize(warm),
        "loops_over_clip": round((k + n) / clip.count, 2),
        "wall_s": round(wall, 3),
        "analyzer_load_ms": round(load_ms, 1) if own else None,
        "latency_ms": summarize(lat),
        "cpu_ms": summarize(cpu),
        "throughput_fps": round(n / wall, 3) if wall > 0 else None,
        "service_fps": round(1000.0 / mean_lat, 3) if n and mean_lat > 0 else None,
        "paced_fps": pace,
        "dropped_frames": dropped[0] if pace else None,
        "drop_rate": round(dropped[0] / (dropped[0] + n), 4) if pace and n else None,
        "response_ms": summarize(resp) if pace else None,
        "status_counts": dict(status),
        "detector_frames": det_frames[0],
        "stages_ms": {st: summarize(v) for st, v in stages.items()},
        "stage_frames": {st: len(v) for st, v in stages.items()},
        "stage_breakdown": stage_breakdown(lat, cols, frame_model_ms, out_ms, clip.preload_decode_ms or clip.decode_ms),
        "model_invocations": inv,
        "model_ms_per_frame": round(model_ms / n, 4) if n else None,
        "overhead_ms_per_frame": round(mean_lat - model_ms / n, 4) if n else None,
        "macs": macs_summary(counter.manifests, counter.count, n),
        "decode_ms": summarize(clip.decode_ms) if not clip.preloaded else None,
        "system": sysres,
        "criteria": {"min_frames": cfg.min_frames, "min_seconds": cfg.min_seconds, "max_seconds": cfg.max_seconds,
                     "mlperf_single_stream": cfg.min_frames >= MLPERF_MIN_FRAMES and cfg.min_seconds >= MLPERF_MIN_SECONDS,
                     "met": n >= cfg.min_frames and wall >= cfg.min_seconds},
    }
    if cfg.keep_series:
        out["series"] = {
            "t_s": [round(v, 4) for v in tt],
            "latency_ms": [round(v, 3) for v in lat],
            "system": mon.series(),
        }
    clip.close()
    if own:
        an.close()
    return out


#: analyzer timings_ms keys collected frame-aligned for the breakdown
ALIGNED_STAGES = ("prep", "detector", "track", "pose_eyes", "au", "affect")

#: the per-frame cost rows every e2e report carries (issue 12 item 3), in pipeline order
BREAKDOWN_ROWS = (
    ("decode", "decode/capture (OpenCV, measured apart: not in the latency)"),
    ("prep", "frame checks + colour conversion (grey: on demand, inside the crops)"),
    ("detect", "face detector (pre/post + network; 0 on frames where it did not run)"),
    ("landmarks", "landmark network + tracking windows + the face region's grey conversion (track - detect - pose_eyes)"),
    ("pose_eyes", "head pose + eye state + result assembly"),
    ("au", "AU crop + network"),
    ("va", "valence/arousal window + temporal network"),
    ("output", "JSONL line: to_dict + JSON encoding + write (outside the latency)"),
    ("model", "inside ModelRunner.run, all networks (quantise + invoke + dequantise)"),
    ("python_overhead", "frame latency - model: Python, numpy and OpenCV around the networks"),
    ("frame", "frame latency (Analyzer.process)"),
)


def stage_breakdown(lat: Any, stages: dict[str, Any], model_ms: Any, out_ms: Any, decode_ms: Any) -> dict[str, Any]:
    """p50/p90/mean per frame of every pipeline stage (see BREAKDOWN_ROWS), from the analyzer's
    `timings_ms` (`stages`: one value per frame, 0 where a stage did not run), the timed runners
    and the bench's own decode/output timing."""
    n = len(lat)
    lat_np = np.frombuffer(lat, dtype=np.float64) if n else np.zeros(0)

    def col(name: str) -> np.ndarray:
        v = stages.get(name)
        a = np.frombuffer(v, dtype=np.float64) if v is not None and len(v) else np.zeros(0)
        return a if a.size == n else np.zeros(n)

    det, track, pose = col("detector"), col("track"), col("pose_eyes")
    rows: dict[str, np.ndarray] = {
        "decode": np.asarray(decode_ms, dtype=np.float64),
        "prep": col("prep"), "detect": det, "landmarks": np.clip(track - det - pose, 0, None) if n else det,
        "pose_eyes": pose, "au": col("au"), "va": col("affect"),
        "output": np.asarray(out_ms, dtype=np.float64),
        "model": np.asarray(model_ms, dtype=np.float64), "frame": lat_np,
    }
    m = rows["model"]
    rows["python_overhead"] = lat_np - m if m.size == n else np.zeros(0)
    out: dict[str, Any] = {}
    for key, what in BREAKDOWN_ROWS:
        a = rows.get(key, np.zeros(0))
        a = a[np.isfinite(a)]
        out[key] = {"what": what, "frames": int(a.size),
                    "p50": round(float(np.percentile(a, 50)), 4) if a.size else None,
                    "p90": round(float(np.percentile(a, 90)), 4) if a.size else None,
                    "mean": round(float(a.mean()), 4) if a.size else None}
    return out


def model_rate_from_e2e(e2e: dict[str, Any], manifests: dict[str, Any]) -> dict[str, Any] | None:
    """Effective int8 MAC rate inside the pipeline (runner.run incl. quantise/dequantise), int8 models only."""
    inv = e2e.get("model_invocations") or {}
    macs = ms = 0.0
    used = []
    for m, d in inv.items():
        man = manifests.get(m)
        if not man or not man.macs or not str(man.variant).startswith("int8") or not d.get("count") or not d.get("mean_ms"):
            continue
        macs += man.macs * d["count"]
        ms += d["mean_ms"] * d["count"]
        used.append(m)
    if not ms:
        return None
    return {"gmacs_per_s": round(macs / (ms / 1000.0) / 1e9, 3), "models": used,
            "basis": "sum(MACs x calls) / sum(runner.run time) over the int8 models during the e2e run"}
