"""Measure the gain of pipelined over sequential execution of the analyzer's stage layout.

    nice -n 10 python scripts/pipeline_gain.py [--frames 150] [--profile x86-dev] [--queue 2]
        [--cost 10,6,3] [--stage-models "track=a.tflite,b.tflite;au=c.tflite;affect=d.tflite"]

Stages are the scheduler's three (track, au, affect) with the worker grouping the profile's
placement implies (x86-dev: track on one core | au + affect on the other). Each stage runs
real TFLite models when given (--stage-models) or when edgeaffect/models/assets/*.tflite
exist (assigned by manifest kind / file name), else numpy work of known single-thread cost
(--cost, ms per stage; numpy's BLAS is pinned to one thread like XNNPACK's num_threads=1).
The same frames go through PipelineExecutor(mode="sequential") and (mode="pipelined",
drop="block": every frame processed, so the throughputs are comparable). Prints one line.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeaffect.capture.base import Frame  # noqa: E402
from edgeaffect.registry import REGISTRY  # noqa: E402
from edgeaffect.scheduler import PipelineExecutor, Stage, WorkItem  # noqa: E402
from edgeaffect.scheduler.placement import static_placement  # noqa: E402
from edgeaffect.scheduler.stages import STAGE_MODULES  # noqa: E402

KIND_TO_STAGE = {m.kind: m.stage for m in REGISTRY}


def numpy_work(ms: float) -> callable:
    # Few, large GIL-free calls (like one interpreter invoke per model): many tiny numpy calls
    # would measure GIL hand-off (5 ms switch interval) instead of the pipeline.
    a = np.random.default_rng(0).standard_normal((384, 384)).astype(np.float32)
    a @ a
    t0 = time.perf_counter()
    for _ in range(10):
        a @ a
    per = (time.perf_counter() - t0) / 10 * 1000
    n = max(1, int(round(ms / per)))

    def work() -> None:
        for _ in range(n):
            a @ a

    return work


def tflite_work(paths: list[Path]) -> callable:
    from edgeaffect.runtime.backends import load_backend

    b = load_backend()
    runs = []
    for p in paths:
        if p.with_suffix(".json").exists():
            from edgeaffect.runtime.runner import ModelRunner
            from edgeaffect.scheduler.placement import _random_inputs

            r = ModelRunner(p.with_suffix(".json"), num_threads=1)
            xs = _random_inputs(r.input_shapes)
            runs.append(lambda r=r, xs=xs: r.run(*xs))
        else:
            it = b.Interpreter(model_path=str(p), num_threads=1)
            it.allocate_tensors()
            for d in it.get_input_details():
                it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            runs.append(it.invoke)

    def work() -> None:
        for f in runs:
            f()

    return work


def assets_by_stage() -> dict[str, list[Path]]:
    import json

    out: dict[str, list[Path]] = {}
    for p in sorted((REPO / "edgeaffect/models/assets").glob("*.tflite")):
        if p.stem.endswith("_edgetpu"):
            continue
        kind = ""
        if p.with_suffix(".json").exists():
            kind = json.loads(p.with_suffix(".json").read_text()).get("kind", "")
        if not kind:
            n = p.stem.lower()
            kind = next((k for k, keys in (("detector", ("detect", "blaze")), ("landmarks", ("landmark",)),
                                           ("au", ("au",)), ("temporal", ("temporal", "affect", "va")))
                         if any(s in n for s in keys)), "")
        if kind in KIND_TO_STAGE:
            out.setdefault(KIND_TO_STAGE[kind], []).append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--profile", default="x86-dev", help="profile whose placement sets the worker grouping")
    ap.add_argument("--queue", type=int, default=2)
    ap.add_argument("--cost", default="10,6,3", help="numpy work per stage in ms (track,au,affect)")
    ap.add_argument("--stage-models", default="", help='"track=a.tflite,b.tflite;au=c.tflite;affect=d.tflite"')
    ap.add_argument("--work", choices=("numpy", "sleep"), default="numpy",
                    help="stand-in work without models: numpy (CPU) or sleep (an accelerator that frees the CPU)")
    ap.add_argument("--repeat", type=int, default=2, help="take the best of N runs of each mode")
    a = ap.parse_args(argv)

    if a.stage_models:
        by_stage = {k: [Path(x) for x in v.split(",") if x]
                    for k, _, v in (s.partition("=") for s in a.stage_models.split(";") if s)}
    else:
        by_stage = assets_by_stage()
    costs = dict(zip(("track", "au", "affect"), (float(c) for c in a.cost.split(",")), strict=True))
    works, what = {}, []
    for name in ("track", "au", "affect"):
        if by_stage.get(name):
            works[name] = tflite_work(by_stage[name])
            what.append(f"{name}=" + "+".join(p.name for p in by_stage[name]))
        elif a.work == "sleep":
            works[name] = lambda s=costs[name] / 1000.0: time.sleep(s)
            what.append(f"{name}=sleep {costs[name]:g}ms")
        else:
            works[name] = numpy_work(costs[name])
            what.append(f"{name}=numpy {costs[name]:g}ms")

    def stage_fn(name: str) -> callable:
        w = works[name]

        def fn(item: WorkItem) -> WorkItem:
            if name not in item.skipped:
                w()
            return item

        return fn

    stages = [Stage("track", STAGE_MODULES["track"], stage_fn("track")),
              Stage("au", STAGE_MODULES["au"], stage_fn("au"), optional=True),
              Stage("affect", STAGE_MODULES["affect"], stage_fn("affect"), optional=True)]
    placement = None
    if a.profile:
        from edgeaffect.profiles import load_profile

        prof = load_profile(a.profile)
        if isinstance(prof.placement, dict):
            placement = static_placement(prof.placement, prof.units_list())
    img = np.zeros((480, 640, 3), np.uint8)
    frames = [Frame(img, i * 33.3, i) for i in range(a.frames)]
    for f in frames[:5]:  # warm-up
        for s in stages:
            s.fn(WorkItem(f))

    def measure(mode: str) -> tuple[float, PipelineExecutor]:
        best, best_ex = 0.0, None
        for _ in range(a.repeat):
            ex = PipelineExecutor(stages, placement, a.queue, mode=mode, drop="block")
            n = sum(1 for _ in ex.run(frames))
            assert n == len(frames)
            if ex.stats.fps > best:
                best, best_ex = ex.stats.fps, ex
        return best, best_ex

    seq, _ = measure("sequential")
    pip, ex = measure("pipelined")
    groups = " | ".join("+".join(g) for g in ex.stats.workers)
    print(f"pipeline gain: sequential {seq:.1f} fps -> pipelined {pip:.1f} fps = x{pip / seq:.2f} "
          f"({a.frames} frames, {os.cpu_count()} cores, workers [{groups}], queue {a.queue}, "
          f"p50 latency {ex.stats.latency_percentile(50):.1f} ms; {', '.join(what)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
