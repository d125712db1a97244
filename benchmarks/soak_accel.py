"""Accelerated soak of the whole run path: leak slope, tracemalloc sites, disk writes per hour.

    python benchmarks/soak_accel.py --source VIDEO --frames 1000000 [--warmup-frames 20000]
        [--sample-frames 5000] [--tracemalloc 0|K] [--write-dir DIR] [output-policy flags]
        [--label NAME] [--out benchmarks/results]

Frames come from the looped clip (preloaded in RAM) as fast as the pipeline takes them, not
paced: 1 M frames are ~9.3 hours of a 30 fps camera. Each goes through `session.run_source`,
the loop behind `edgeaffect run` (analyzer stages in the executor, JSONL/CSV writers through
the segmented output store, the status-line and watchdog hooks), with the output policy
given by the same flags as `edgeaffect run` (--rotate-mb, --retain-mb, --flush-every ...;
default here: rotate 16 MB, retain 256 MB, flush every 1 s, so the disk stays bounded).

Measured:
* RSS every --sample-frames frames; after the warm-up, the least-squares slope of RSS over
  frames, reported as MB per hour-equivalent (108,000 frames = one hour at 30 fps); goal
  < 0.1 MB/h-eq (--max-slope). The harness keeps O(1) memory: per-frame latencies and the
  samples go into preallocated, pre-touched arrays (decimated by 2 when full). Each sample also
  records RssAnon / RssFile, glibc's mallinfo2 (heap, mmapped, in use, free, top), threads,
  Python's allocated blocks and the segments started, to tell where RSS moves. Secondary
  statistics, not judged: Theil-Sen slope, RSS band, RssAnon slope.
* `--tracemalloc K`: Python allocations traced from the end of the warm-up, a snapshot every K
  frames; the report lists the allocation sites that grew most (file:line, traceback) between
  the first and the last snapshot, and the traced total per snapshot. Tracing slows the run
  several times: use it on a short run (tens of thousands of frames) to find a leak, and a
  run without it to measure the slope.
* bytes, write() calls and fsyncs of all output files, per hour-equivalent (SD-card wear),
  and the output directory's size at the end (bounded by --retain-mb).

Writes LABEL.json (schema edgeaffect.soak-accel/1), LABEL.md and LABEL.png (RSS over
frames with the fitted slope; per-window latency). Ctrl-C / SIGTERM ends early: the report
is still written, marked INCOMPLETE, with the frame count reached. Exit 0 PASS, 1 FAIL,
2 INCOMPLETE / usage error. Not part of CI.
"""

from __future__ import annotations

import argparse
import gc
import platform
import shutil
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeaffect.bench import fingerprint  # noqa: E402
from edgeaffect.bench.e2e_bench import ClipFrames  # noqa: E402
from edgeaffect.bench.meminfo import mallinfo, proc_rss  # noqa: E402
from edgeaffect.bench.report import save_png  # noqa: E402
from edgeaffect.bench.stats import DecimatingSeries  # noqa: E402
from edgeaffect.bench.sysmon import peak_rss_mb, rss_mb  # noqa: E402
from edgeaffect.capture.base import Frame, FrameSource  # noqa: E402

SCHEMA = "edgeaffect.soak-accel/1"
FRAMES_PER_HOUR = 30 * 3600


class LoopedClip(FrameSource):
    """The preloaded clip looped: frame k is clip frame k mod n, timestamps k / fps (no decode, no copy)."""

    is_live = False

    def __init__(self, clip: ClipFrames, n_frames: int, pace_fps: float | None = None) -> None:
        self.clip = clip
        self.n = n_frames
        self.k = 0
        self.pace = pace_fps  # None: as fast as taken; else frame k is not handed out before k / pace s
        self._t0: float | None = None
        self.stop = False  # set by the harness (--duration): the source ends, the run closes normally
        self.period_ms = 1000.0 / clip.fps
        self.name = f"loop({clip.path.name})"

    @property
    def fps(self) -> float:
        return self.clip.fps

    @property
    def frame_count(self) -> int:
        return self.n

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.k >= self.n or self.stop:
            return None
        k = self.k
        self.k += 1
        if self.pace:
            now = time.perf_counter()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + k / self.pace
            if due > now:
                time.sleep(due - now)
        return Frame(self.clip.get(k), (k + 1) * self.period_ms, k)

    def close(self) -> None:
        pass


class SampleTable:
    """The RSS samples in a preallocated, pre-touched float array (a list of dicts would itself grow by ~2 KB per
    sample: ~0.05 MB per hour-equivalent at one sample per 5,000 frames, half the slope budget); `rows()` gives
    the report's dicts at the end."""

    MEM = ("anon_mb", "file_mb", "shmem_mb", "threads", "arena_mb", "mmap_mb", "mmap_chunks", "in_use_mb", "free_mb",
           "top_mb", "py_blocks", "segments")
    COLS = ("frames", "t_s", "rss_mb", "fps", "p50_ms", "p90_ms", "warm", "load1", "load5", "load15", *MEM)

    def __init__(self, capacity: int) -> None:
        self.a = np.full((capacity, len(self.COLS)), np.nan)
        self.n = 0

    def add(self, frames: int, t_s: float, rss: float | None, fps: float | None, p50: float | None, p90: float | None,
            warm: bool, load: Any, proc: dict[str, Any] | None, minfo: dict[str, Any] | None, blocks: int,
            segments: int | None) -> None:
        if self.n == len(self.a):  # more samples than planned (a --duration run): keep every other one
            self.a[: self.n // 2] = self.a[1 : self.n : 2]
            self.n //= 2
        m = {**(proc or {}), **(minfo or {}), "py_blocks": blocks, "segments": segments}
        ld = list(load or [None] * 3)[:3]
        vals = (frames, t_s, rss, fps, p50, p90, float(warm), *ld, *(m.get(k) for k in self.MEM))
        self.a[self.n] = [np.nan if v is None else float(v) for v in vals]
        self.n += 1

    def last(self) -> np.ndarray | None:
        return self.a[self.n - 1] if self.n else None

    def row(self, i: int) -> dict[str, Any]:
        v = dict(zip(self.COLS, (None if x != x else float(x) for x in self.a[i])))

        def r(k: str, nd: int) -> float | None:
            return None if v[k] is None else round(v[k], nd)

        mem = {k: (int(v[k]) if k in ("threads", "mmap_chunks", "py_blocks", "segments") else round(v[k], 3))
               for k in self.MEM if v[k] is not None}
        load = [v[k] for k in ("load1", "load5", "load15")]
        return {"frames": int(v["frames"]), "t_s": r("t_s", 2), "rss_mb": float("nan") if v["rss_mb"] is None else r("rss_mb", 3),
                "fps": r("fps", 1), "p50_ms": r("p50_ms", 3), "p90_ms": r("p90_ms", 3), "warm": bool(v["warm"]),
                "loadavg": None if load[0] is None else load, "mem": mem}

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(i) for i in range(self.n)]


def _segments_started(d: Path) -> int | None:
    """Segments started so far in the run's directory (the highest SEQ in a segment name; retention deletes old ones)."""
    from edgeaffect.outputs.segments import _NAME

    try:
        seqs = [int(m["seq"]) for p in d.iterdir() if (m := _NAME.match(p.name))]
    except OSError:
        return None
    return max(seqs, default=0)


def _top_growth(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, n: int = 15) -> list[dict[str, Any]]:
    out = []
    for st in last.compare_to(first, "traceback")[:n]:
        if st.size_diff <= 0:
            continue
        tb = [f"{f.filename.replace(str(REPO) + '/', '')}:{f.lineno}" for f in st.traceback]
        out.append({"size_diff_kb": round(st.size_diff / 1024, 2), "count_diff": st.count_diff,
                    "size_kb": round(st.size / 1024, 2), "site": tb[-1] if tb else "?", "traceback": tb[-8:]})
    return out


def run(a: argparse.Namespace) -> dict[str, Any]:
    from edgeaffect.analyzer import Analyzer, AnalyzerOptions
    from edgeaffect.outputs.run_outputs import output_config
    from edgeaffect.session import run_source

    clip = ClipFrames(a.source, a.preload_mb)
    an = Analyzer(AnalyzerOptions(max_faces=1, num_threads=a.threads, models_dir=Path(a.models_dir) if a.models_dir else None))
    fp = fingerprint.collect(backend=an.backend, manifests=dict(an.model_manifests), delegates=[], num_threads=a.threads)
    cfg = output_config(a)
    wdir = Path(a.write_dir)
    if wdir.exists():
        shutil.rmtree(wdir)
    series = DecimatingSeries(a.series_capacity, dtype=np.float32)  # frame, latency ms, thread-CPU ms
    table = SampleTable(a.frames // a.sample_frames + 3)  # preallocated: the samples add nothing to RSS as they come
    snaps: list[dict[str, Any]] = []
    state: dict[str, Any] = {"n": 0, "t_last": None, "c_last": None, "first_snap": None, "last_snap": None,
                             "win": [], "t0": time.perf_counter()}

    def sample(n: int) -> None:
        gc.collect()
        win = np.array(state["win"], np.float64) if state["win"] else np.zeros(0)
        state["win"] = []
        t = time.perf_counter() - state["t0"]
        prev = table.last()
        fps = (n - prev[0]) / (t - prev[1]) if prev is not None and t > prev[1] else None
        table.add(n, t, rss_mb(), fps, float(np.percentile(win, 50)) if len(win) else None,
                  float(np.percentile(win, 90)) if len(win) else None, n >= a.warmup_frames, fingerprint.loadavg(),
                  proc_rss(), mallinfo(), sys.getallocatedblocks(), _segments_started(wdir))
        if a.verbose:
            s = table.row(table.n - 1)
            m = s["mem"]
            print(f"[soak-accel] {n:>8d} frames  {t:7.0f} s  RSS {s['rss_mb']:.2f} MB  {s['fps']} fps  p90 {s['p90_ms']} ms  "
                  f"anon {m.get('anon_mb')} file {m.get('file_mb')} arena {m.get('arena_mb')} mmap {m.get('mmap_mb')} "
                  f"in-use {m.get('in_use_mb')} free {m.get('free_mb')} top {m.get('top_mb')} thr {m.get('threads')} "
                  f"blocks {m.get('py_blocks')} seg {m.get('segments')}", flush=True)

    def snapshot(n: int) -> None:
        gc.collect()
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
             tracemalloc.Filter(False, __file__)])
        cur, peak = tracemalloc.get_traced_memory()
        if state["first_snap"] is None:
            state["first_snap"] = snap
        state["last_snap"] = snap
        entry = {"frames": n, "traced_kb": round(cur / 1024, 1), "rss_mb": round(rss_mb() or float("nan"), 3)}
        if len(snaps) >= 1:
            entry["top"] = _top_growth(state["first_snap"], snap, 5)
        snaps.append(entry)
        if a.verbose:
            print(f"[soak-accel] tracemalloc at {n}: traced {entry['traced_kb']} KB", flush=True)

    def on_result(res: Any) -> None:
        n = state["n"] = state["n"] + 1
        now, cpu = time.perf_counter(), time.thread_time()
        if state["t_last"] is not None:
            lat, c = (now - state["t_last"]) * 1000.0, (cpu - state["c_last"]) * 1000.0
            series.add(n, lat, c)
            if len(state["win"]) < 4096:
                state["win"].append(lat)
        state["t_last"], state["c_last"] = now, cpu
        if n == a.warmup_frames and a.tracemalloc:
            tracemalloc.start(a.tracemalloc_depth)
            snapshot(n)
        elif a.tracemalloc and n > a.warmup_frames and (n - a.warmup_frames) % a.tracemalloc == 0:
            snapshot(n)
        if n % a.sample_frames == 0:
            sample(n)
        if a.duration and not src.stop and time.perf_counter() - state["t0"] >= a.duration:
            src.stop = True
            state["stopped"] = f"--duration {a.duration:g} s"

    print(f"[soak-accel] {a.frames} frames of {a.source} {f'paced at {a.pace:g} fps' if a.pace else 'unpaced'} through run_source (warm-up {a.warmup_frames}), "
          f"outputs to {wdir} ({', '.join(cfg.formats) or 'none'}; {cfg.records}); Ctrl-C ends early", flush=True)
    sample(0)
    src = LoopedClip(clip, a.frames, a.pace)
    summary = run_source(src, wdir, analyzer=an, max_frames=a.frames, outputs=cfg, on_result=on_result)
    stopped = summary.stopped_by or state.get("stopped")
    wall = time.perf_counter() - state["t0"]
    n = state["n"]
    last = table.last()
    if last is None or last[0] != n:
        sample(n)
    samples = table.rows()
    if a.tracemalloc and tracemalloc.is_tracing():
        if n > (snaps[-1]["frames"] if snaps else 0):
            snapshot(n)
        tracemalloc.stop()
    an.close()
    clip.close()

    writes = (summary.extra.get("writes") if summary else None) or {}
    disk = sum(p.stat().st_size for p in wdir.rglob("*") if p.is_file()) if wdir.exists() else 0
    res: dict[str, Any] = {
        "schema": SCHEMA, "label": a.label or f"{platform.machine()}-soak-accel",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv),
        "fingerprint": fp, "config": {k: v for k, v in vars(a).items()}, "wall_s": round(wall, 1), "frames": n,
        "frames_requested": a.frames, "hours_equivalent_30fps": round(n / FRAMES_PER_HOUR, 3), "stopped_by": stopped,
        "run_summary": None if summary is None else {"frames": summary.frames, "frames_with_face": summary.frames_with_face,
                                                      "bad_frames": summary.bad_frames, "error": summary.error},
        "output_policy": {"formats": list(cfg.formats), "records": cfg.records, **cfg.policy.__dict__},
        "samples": samples, "tracemalloc": snaps, "checks": [],
    }
    checks = res["checks"]
    rss_check(res, a, peak_rss_mb())
    if a.tracemalloc and state["first_snap"] is not None and state["last_snap"] is not None:
        res["tracemalloc_top_growth"] = _top_growth(state["first_snap"], state["last_snap"], 15)
    if n:
        per_h = FRAMES_PER_HOUR / n
        res["writes"] = {**writes, "per_wall_hour": {"mb": round(writes.get("bytes_written", 0) * 3600 / wall / 2**20, 2),
                                                     "gzip_mb": round(writes.get("gzip_bytes_written", 0) * 3600 / wall / 2**20, 2),
                                                     "write_calls": int(writes.get("write_calls", 0) * 3600 / wall),
                                                     "fsyncs": int(writes.get("fsyncs", 0) * 3600 / wall)},
                         "per_hour_eq": {"bytes": int(writes.get("bytes_written", 0) * per_h),
                                                   "mb": round(writes.get("bytes_written", 0) * per_h / 2**20, 2),
                                                   "gzip_mb": round(writes.get("gzip_bytes_written", 0) * per_h / 2**20, 2),
                                                   "write_calls": int(writes.get("write_calls", 0) * per_h),
                                                   "fsyncs": int(writes.get("fsyncs", 0) * per_h)},
                         "output_dir_bytes_at_end": disk}
        if cfg.policy.retain_bytes:
            checks.append({"name": "disk bounded", "ok": disk <= cfg.policy.retain_bytes + 2**20,
                           "detail": f"output directory {disk / 2**20:.1f} MB at the end (retain {cfg.policy.retain_bytes / 2**20:g} MB "
                                     "+ run.json/summary.json/index.json)"})
    if summary is not None:
        checks.append({"name": "no run error", "ok": not summary.error and summary.bad_frames == 0,
                       "detail": f"error {summary.error!r}, {summary.bad_frames} bad frames"})
    lat = series.view()
    post_lat = lat[lat[:, 0] >= a.warmup_frames] if len(lat) else lat
    if len(post_lat) >= 20:
        k = max(1, len(post_lat) // 10)
        p_first, p_last = (float(np.percentile(post_lat[:k, 2], 90)), float(np.percentile(post_lat[-k:, 2], 90)))
        res["latency_ms_post_warmup"] = {"p50": round(float(np.percentile(post_lat[:, 1], 50)), 3),
                                         "p90": round(float(np.percentile(post_lat[:, 1], 90)), 3),
                                         "cpu_p90_first_10pct": round(p_first, 3), "cpu_p90_last_10pct": round(p_last, 3),
                                         "series_stride": series.stride}
    verdict(res, a.frames)
    return res


def _fit(post: list[dict[str, Any]]) -> tuple[float, float, int]:
    f = np.array([x["frames"] for x in post], np.float64)
    r = np.array([x["rss_mb"] for x in post], np.float64)
    k, c = np.polyfit(f, r, 1)
    return float(k * FRAMES_PER_HOUR), float(c), int(f[-1] - f[0])


def _theil_sen(f: np.ndarray, r: np.ndarray) -> float:
    i, j = np.triu_indices(len(f), 1)
    df = f[j] - f[i]
    ok = df > 0
    return float(np.median((r[j] - r[i])[ok] / df[ok])) if ok.any() else float("nan")


def secondary_stats(post: list[dict[str, Any]]) -> dict[str, Any]:
    """Not judged, for reading the plot: the Theil-Sen slope (median of all pairwise slopes: steps that go up
    and come back barely move it), the band RSS moved in, and the least-squares slope of RssAnon alone
    (private anonymous pages: the heap; RSS also counts file pages of mapped libraries and models)."""
    f = np.array([x["frames"] for x in post], np.float64)
    r = np.array([x["rss_mb"] for x in post], np.float64)
    out: dict[str, Any] = {"theil_sen_mb_per_hour_eq": round(_theil_sen(f, r) * FRAMES_PER_HOUR, 4),
                           "band_mb": round(float(r.max() - r.min()), 3)}
    anon = [(x["frames"], x["mem"]["anon_mb"]) for x in post if (x.get("mem") or {}).get("anon_mb") is not None]
    if len(anon) >= 6:
        fa, ra = np.array(anon, np.float64).T
        out["anon_slope_mb_per_hour_eq"] = round(float(np.polyfit(fa, ra, 1)[0]) * FRAMES_PER_HOUR, 4)
        out["anon_band_mb"] = round(float(ra.max() - ra.min()), 3)
    return out


def rss_check(res: dict[str, Any], a: Any, peak: float | None) -> None:
    """RSS slope after the warm-up (least squares over the samples), and over the second half of them alone: an
    allocator that settles (or trims) some way into the run bends a single fit either way. The worse slope is judged."""
    checks = res["checks"]
    checks[:] = [c for c in checks if c["name"] not in ("RSS slope", "enough data")]  # in place: callers hold the list
    post = [x for x in res["samples"] if x["warm"] and x["rss_mb"] == x["rss_mb"]]
    if not (len(post) >= 6 and post[-1]["frames"] > post[0]["frames"]):
        if not a.writes_only:
            checks.insert(0, {"name": "enough data", "ok": False, "detail": f"only {len(post)} post-warm-up samples"})
        return
    slope, icept, span = _fit(post)
    half = [x for x in post if x["frames"] >= (post[0]["frames"] + post[-1]["frames"]) / 2]
    slope2, icept2, span2 = _fit(half)
    res["rss"] = {"after_warmup_mb": post[0]["rss_mb"], "end_mb": post[-1]["rss_mb"], "peak_mb": peak,
                  "min_mb": min(x["rss_mb"] for x in post), "max_mb": max(x["rss_mb"] for x in post),
                  "growth_mb": round(post[-1]["rss_mb"] - post[0]["rss_mb"], 3),
                  "slope_mb_per_hour_eq": round(slope, 4), "fit_intercept_mb": round(icept, 3),
                  "frames_fitted": span, "samples_fitted": len(post),
                  "slope_second_half_mb_per_hour_eq": round(slope2, 4), "fit_second_half_intercept_mb": round(icept2, 3),
                  "frames_fitted_second_half": span2}
    res["rss"]["secondary"] = secondary_stats(post)
    if a.writes_only:
        return
    worst = max(slope, slope2)
    both = (f"{slope:+.4f} MB per hour-equivalent of 30 fps frames over {span} post-warm-up frames, {slope2:+.4f} over the "
            f"second half ({span2} frames); RSS {post[0]['rss_mb']:.2f} -> {post[-1]['rss_mb']:.2f} MB "
            f"(range {res['rss']['min_mb']:.2f}-{res['rss']['max_mb']:.2f})")
    if span2 < a.min_fit_frames:
        checks.insert(0, {"name": "RSS slope", "ok": False, "value": round(worst, 4), "bound": a.max_slope,
                          "detail": f"{both}: too short to judge (the second half must cover --min-fit-frames {a.min_fit_frames}; "
                                    "RSS noise is a few tenths of a MB)"})
    else:
        checks.insert(0, {"name": "RSS slope", "ok": worst < a.max_slope, "value": round(worst, 4), "bound": a.max_slope,
                          "detail": f"{both}; the worse one is judged (bound {a.max_slope:g})"})


def verdict(res: dict[str, Any], frames_requested: int) -> None:
    complete = res.get("stopped_by") is None and res["frames"] >= frames_requested
    ok = all(c["ok"] for c in res["checks"])
    res["verdict"] = ("PASS" if complete else "INCOMPLETE") if ok else "FAIL"
    if not complete:
        res["incomplete_reason"] = f"ran {res['frames']} of {frames_requested} frames" + (
            f" (stopped by {res['stopped_by']})" if res.get("stopped_by") else "")
    else:
        res.pop("incomplete_reason", None)


def render_md(res: dict[str, Any]) -> str:
    L = [f"# edgeaffect accelerated soak: {res['label']} — {res['verdict']}", "",
         f"{res['created_utc']} · `{res['command']}` · {res['wall_s']} s wall · {res['frames']} frames "
         f"(= {res['hours_equivalent_30fps']} h at 30 fps) · device: {fingerprint.short_name(res['fingerprint'])}", ""]
    for c in res["checks"]:
        L.append(f"- {'PASS' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
    if res.get("incomplete_reason"):
        L.append(f"- INCOMPLETE: {res['incomplete_reason']}")
    sec = (res.get("rss") or {}).get("secondary")
    if sec:
        L += ["", "Secondary statistics (not judged; the check above is the least-squares slope): Theil-Sen RSS slope "
                  f"{sec['theil_sen_mb_per_hour_eq']:+.4f} MB per hour-equivalent, RSS band {sec['band_mb']} MB"
                  + (f"; RssAnon least-squares slope {sec['anon_slope_mb_per_hour_eq']:+.4f} MB per hour-equivalent, band "
                     f"{sec['anon_band_mb']} MB" if "anon_slope_mb_per_hour_eq" in sec else "") + "."]
    w = res.get("writes")
    if w:
        ph = w["per_hour_eq"]
        pw = w.get("per_wall_hour") or {}
        L += ["", f"Output writes per hour-equivalent (policy {res['output_policy']}): **{ph['mb']} MB in "
                  f"{ph['write_calls']} write() calls, {ph['fsyncs']} fsyncs** (per wall-clock hour of this run: {pw.get('mb')} MB, "
                  f"{pw.get('write_calls')} write() calls, {pw.get('fsyncs')} fsyncs; time-based batching and fsyncs scale with "
                  "wall time, so an unpaced run packs more frames per write than a 30 fps camera: `--pace 30` measures that); "
                  f"totals {w.get('bytes_written')} bytes, "
                  f"{w.get('write_calls')} writes, {w.get('rotations')} rotations, {w.get('deleted_segments')} segments "
                  f"deleted by retention; output directory at the end {w['output_dir_bytes_at_end'] / 2**20:.1f} MB."]
    if res.get("tracemalloc_top_growth"):
        L += ["", "## tracemalloc: allocation sites that grew most (first -> last snapshot)", "",
              "| grew KB | blocks | now KB | site | traceback (innermost last) |", "|---|---|---|---|---|"]
        for t in res["tracemalloc_top_growth"]:
            L.append(f"| {t['size_diff_kb']} | {t['count_diff']:+d} | {t['size_kb']} | `{t['site']}` | "
                     f"{' <- '.join(reversed(t['traceback'][-4:]))} |")
        L += ["", "| frames | traced KB | RSS MB |", "|---|---|---|"]
        for s in res["tracemalloc"]:
            L.append(f"| {s['frames']} | {s['traced_kb']} | {s['rss_mb']} |")
    mem = any(x.get("mem") for x in res["samples"])
    L += ["", "| frames | t (s) | RSS MB | fps | p50 ms | p90 ms | load |" + (
        " RssAnon MB | heap MB (mallinfo2 arena) | threads | Python blocks | segments |" if mem else ""),
          "|---|---|---|---|---|---|---|" + ("---|---|---|---|---|" if mem else "")]
    step = max(1, len(res["samples"]) // 40)
    for s in res["samples"][::step]:
        m = s.get("mem") or {}
        L.append(f"| {s['frames']} | {s['t_s']} | {s['rss_mb']} | {s['fps']} | {s['p50_ms']} | {s['p90_ms']} | "
                 f"{(s['loadavg'] or ['-'])[0]} |" + (f" {m.get('anon_mb')} | {m.get('arena_mb')} | {m.get('threads')} | "
                                                      f"{m.get('py_blocks')} | {m.get('segments')} |" if mem else ""))
    return "\n".join(L) + "\n"


def plot(res: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: plot skipped"
    s = res["samples"]
    if len(s) < 2:
        return "no samples to plot"
    h = [x["frames"] / FRAMES_PER_HOUR for x in s]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    a1.plot(h, [x["rss_mb"] for x in s], color="#2ca02c", label="RSS")
    rss = res.get("rss")
    if rss:
        xs = np.array([x["frames"] for x in s if x["warm"]], np.float64)
        a1.plot(xs / FRAMES_PER_HOUR, rss["fit_intercept_mb"] + rss["slope_mb_per_hour_eq"] * xs / FRAMES_PER_HOUR, ls="--",
                color="k", label=f"fit after warm-up: {rss['slope_mb_per_hour_eq']:+.3f} MB/h-eq")
    if rss and rss.get("slope_second_half_mb_per_hour_eq") is not None:
        mid = (min(x["frames"] for x in s if x["warm"]) + s[-1]["frames"]) / 2
        xs2 = np.array([x["frames"] for x in s if x["warm"] and x["frames"] >= mid], np.float64)
        a1.plot(xs2 / FRAMES_PER_HOUR, rss["fit_second_half_intercept_mb"] + rss["slope_second_half_mb_per_hour_eq"] * xs2
                / FRAMES_PER_HOUR, ls=":", color="r", label=f"fit, second half: {rss['slope_second_half_mb_per_hour_eq']:+.3f} MB/h-eq")
    a1.set_ylabel("RSS (MB)")
    a1.legend()
    a1.set_title(f"accelerated soak {res['label']}: {res['verdict']} ({res['frames']} frames)")
    a2.plot(h, [x["p50_ms"] for x in s], label="p50")
    a2.plot(h, [x["p90_ms"] for x in s], label="p90")
    a2.set_ylabel("ms per frame (whole loop)")
    a2.set_xlabel("hours of 30 fps video (frames / 108,000)")
    a2.legend()
    save_png(plt, fig, path)
    return None


def reanalyse(a: argparse.Namespace) -> int:
    import json

    res = json.loads(Path(a.from_report).read_text())
    cfg = res["config"]
    for k in ("max_slope", "min_fit_frames"):  # the re-analysis may change the judging, not what was measured
        cfg[k] = getattr(a, k)
    ns = argparse.Namespace(**{**cfg, "writes_only": cfg.get("writes_only", False)})
    rss_check(res, ns, (res.get("rss") or {}).get("peak_mb"))
    verdict(res, res["frames_requested"])
    res["reanalysed"] = {"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv)}
    return write_report(res, Path(a.out))


def write_report(res: dict[str, Any], out: Path) -> int:
    from benchmarks.soak import write_report as write

    return write(res, out, render_md, plot, "soak-accel")


def main(argv: list[str] | None = None) -> int:
    from edgeaffect.errors import EdgeAffectError
    from edgeaffect.outputs.run_outputs import add_output_args

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=None, help="video file to loop (required unless --from-report)")
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--duration", type=float, default=None, help="also stop after this many seconds (reported INCOMPLETE)")
    ap.add_argument("--pace", type=float, default=None,
                    help="hand frames out at this rate (e.g. 30: the write figures of a real camera; default unpaced)")
    ap.add_argument("--warmup-frames", type=int, default=20_000)
    ap.add_argument("--sample-frames", type=int, default=5_000)
    ap.add_argument("--max-slope", type=float, default=0.1, help="MB per hour-equivalent (default 0.1)")
    ap.add_argument("--min-fit-frames", type=int, default=FRAMES_PER_HOUR,
                    help="post-warm-up frames the slope needs before it is judged (default 108000 = 1 h at 30 fps)")
    ap.add_argument("--writes-only", action="store_true",
                    help="a short run for the write figures (e.g. with --pace 30): the RSS slope is recorded, not checked")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="K", help="trace Python allocations, a snapshot every K frames")
    ap.add_argument("--tracemalloc-depth", type=int, default=12)
    ap.add_argument("--series-capacity", type=int, default=1 << 18)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--preload-mb", type=float, default=256.0)
    ap.add_argument("--write-dir", default="soak-accel-outputs", help="where the run's outputs go (emptied first)")
    ap.add_argument("--label", default=None)
    ap.add_argument("--out", default="soak-out")
    ap.add_argument("-v", "--verbose", action="store_true")
    add_output_args(ap)
    ap.set_defaults(rotate_mb=16.0, retain_mb=256.0, flush_every="1s")
    ap.add_argument("--from-report", default=None, metavar="JSON",
                    help="re-analyse a finished report's samples (RSS fits, checks) and rewrite its JSON/MD/PNG in --out")
    a = ap.parse_args(argv)
    if a.from_report:
        return reanalyse(a)
    if not a.source or not Path(a.source).exists():
        print(f"soak_accel: error: --source {a.source} does not exist", file=sys.stderr)
        return 2
    if a.warmup_frames >= a.frames:
        print("soak_accel: error: --warmup-frames must be below --frames", file=sys.stderr)
        return 2
    try:
        res = run(a)
    except EdgeAffectError as e:
        print(f"soak_accel: error: {e}", file=sys.stderr)
        return 2
    return write_report(res, Path(a.out))


if __name__ == "__main__":
    sys.exit(main())
