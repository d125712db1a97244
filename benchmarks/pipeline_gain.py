"""Pipelined vs sequential execution of the real analyzer on a real video (this machine).

    python benchmarks/pipeline_gain.py [--source VIDEO] [--frames 275] [--repeat 3]

Both modes run the same Analyzer stages (track | au | affect) over the same decoded frames
with one interpreter thread per model; "pipelined" gives each stage its own worker (stage N
of frame t overlaps stage N-1 of frame t+1), "sequential" runs them one after another.
drop="block" so every frame is processed in both modes and throughputs compare. Prints
one JSON line (best of --repeat per mode) and writes it to --out if given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2

from edgeaffect import Analyzer, AnalyzerOptions
from edgeaffect.capture.base import Frame
from edgeaffect.scheduler.executor import PipelineExecutor
from edgeaffect.scheduler.stages import WorkItem

REPO = Path(__file__).resolve().parents[1]


def run_once(frames: list, mode: str) -> float:
    an = Analyzer(AnalyzerOptions(max_faces=1, num_threads=1))
    ex = PipelineExecutor(an.stages(), None, 2, mode=mode, drop="block", group_by="stage")
    t0 = time.perf_counter()
    items = (WorkItem(Frame(f, i * 33.367, i), an.begin_frame(f, i * 33.367)) for i, f in enumerate(frames))
    n = sum(1 for item in ex.run(items) if an.finish_frame(item.payload) is not None)
    dt = time.perf_counter() - t0
    ex.close()
    an.close()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"))
    ap.add_argument("--frames", type=int, default=275)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    cap = cv2.VideoCapture(a.source)
    frames = []
    while len(frames) < a.frames:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    res = {"sequential_fps": 0.0, "pipelined_fps": 0.0}
    for _ in range(a.repeat):
        for mode in ("sequential", "pipelined"):
            res[f"{mode}_fps"] = max(res[f"{mode}_fps"], run_once(frames, mode))
    res.update(
        gain=round(res["pipelined_fps"] / res["sequential_fps"], 3), frames=len(frames), cores=os.cpu_count(),
        load_avg_1min=round(os.getloadavg()[0], 2), source=Path(a.source).name, threads_per_model=1,
    )
    res["sequential_fps"], res["pipelined_fps"] = round(res["sequential_fps"], 1), round(res["pipelined_fps"], 1)
    # the machine these fps belong to (README labels every figure with it)
    from edgeaffect.bench.fingerprint import collect

    with Analyzer(AnalyzerOptions()) as an:
        res["fingerprint"] = collect(backend=an.backend, manifests=dict(an.model_manifests), num_threads=1)
    res["command"] = "python benchmarks/pipeline_gain.py " + " ".join(sys.argv[1:])
    line = json.dumps(res)
    print(line)
    if a.out:
        Path(a.out).write_text(line + "\n")


if __name__ == "__main__":
    main()
