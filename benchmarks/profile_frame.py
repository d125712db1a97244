"""Where a frame's CPU goes: interpreter time per network vs the Python/numpy/OpenCV around it.

    python benchmarks/profile_frame.py --source ../shared/data/video/short_hamilton_clip.mp4 \
        [--frames 1100] [--top 30] [--out benchmarks/results/profile-x86_64.txt]

One thread, VIDEO mode, max_faces 1, frames preloaded, pinned to one CPU when possible. Two
passes over the same frames: (1) thread CPU time per frame, split into time inside each
network's `run()` (a timing wrapper from edgeaffect.runtime.wrappers-style `BaseOptions.wrappers`,
measuring `time.thread_time`, so other processes' load does not count) and the rest;
(2) cProfile of the same loop, top functions by own time (cProfile inflates Python-heavy
functions: read it for ranking, pass 1 for amounts). The report starts with the device
fingerprint line and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class CpuTimer:
    """A runner wrapper: thread CPU time and calls inside each module's run()."""

    def __init__(self) -> None:
        self.cpu_s: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.enabled = True

    def wrap(self, module: str, runner: Any) -> Any:
        timer = self

        class Timed:
            manifest = runner.manifest

            def __getattr__(self, name: str) -> Any:
                return getattr(runner, name)

            def run(self, *inputs: Any) -> Any:
                if not timer.enabled:
                    return runner.run(*inputs)
                c0 = time.thread_time()
                try:
                    return runner.run(*inputs)
                finally:
                    timer.cpu_s[module] += time.thread_time() - c0
                    timer.calls[module] += 1

        return Timed()

    def reset(self) -> None:
        self.cpu_s.clear()
        self.calls.clear()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--frames", type=int, default=1100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--out", default=None, help="write the report here (default: stdout only)")
    a = ap.parse_args(argv)

    import cv2

    from edgeaffect.analyzer import Analyzer, AnalyzerOptions, RunningMode
    from edgeaffect.bench.fingerprint import collect, short_name
    from edgeaffect.bench.vs_mediapipe import load_frames, pinned
    from edgeaffect.runtime.factory import BaseOptions

    cv2.setNumThreads(1)
    frames, _ = load_frames(a.source)
    timer = CpuTimer()
    an = Analyzer(AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=1,
                                  base_options=BaseOptions(num_threads=1, wrappers=[timer.wrap])))
    ts = [0.0]

    def loop(n: int) -> int:
        ok = 0
        for k in range(n):
            ts[0] += 33.3
            ok += an.process(frames[k % len(frames)], ts[0]).status == "ok"
        return ok

    out: list[str] = []
    with pinned(None if a.no_pin else "auto") as cpu:
        loop(a.warmup)
        timer.reset()
        c0 = time.thread_time()
        faces = loop(a.frames)
        total_ms = (time.thread_time() - c0) * 1000.0 / a.frames
        timer.enabled = False  # pass 2 profiles the library, not the timer
        prof = cProfile.Profile()
        prof.enable()
        loop(a.frames)
        prof.disable()
    fp = collect(backend=an.backend, manifests=dict(an.model_manifests), num_threads=1)
    model_ms = sum(timer.cpu_s.values()) * 1000.0 / a.frames
    out += [f"# per-frame CPU profile: {Path(a.source).name}, {a.frames} frames ({faces} with a face), 1 thread, "
            f"pinned to CPU {cpu}",
            f"# {short_name(fp)}; int8 ISA {fp['cpu'].get('int8_isa')}; load average {fp.get('loadavg_at_collect')}; "
            f"git {(fp.get('git') or {}).get('commit', '?')[:12]}",
            f"# command: python benchmarks/profile_frame.py {' '.join(sys.argv[1:] if argv is None else argv)}", "",
            f"thread CPU per frame       {total_ms:7.3f} ms",
            f"  inside the networks      {model_ms:7.3f} ms  (run(): quantise + invoke + dequantise)",
            f"  Python/numpy/OpenCV      {total_ms - model_ms:7.3f} ms  (everything else: crops, geometry, eyes, pose, results)", ""]
    for m in sorted(timer.cpu_s, key=lambda k: -timer.cpu_s[k]):
        n = timer.calls[m]
        out.append(f"  {m:10s} {n / a.frames:5.3f} calls/frame x {timer.cpu_s[m] * 1000.0 / max(n, 1):6.3f} ms = "
                   f"{timer.cpu_s[m] * 1000.0 / a.frames:6.3f} ms/frame")
    s = io.StringIO()
    st = pstats.Stats(prof, stream=s)
    st.sort_stats("tottime").print_stats(a.top)
    out += ["", f"cProfile, second pass, top {a.top} by own time (inflated by the profiler; ranking, not amounts):", ""]
    out += [x.replace(str(Path(__file__).resolve().parents[1]) + "/", "") for x in s.getvalue().splitlines()
            if x.strip() and not x.startswith("   Ordered") and "function calls" not in x]
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        Path(a.out).write_text(text)
    an.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
