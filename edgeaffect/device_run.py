"""`edgeaffect run --profile NAME`: the device path.

The profile (firmware_configs/NAME.toml) chooses the camera, the compute unit and threads
of every module (statically, or by a short measured profiling run: `placement = "auto"`),
the per-module rates and the thermal policy. The analyzer's three stages then run in the
scheduler's pipelined executor: stage N of frame t overlaps stage N-1 of frame t+1, queues
are bounded, and under overload the oldest frame is dropped (live sources) rather than
letting latency grow. The chosen placement, its reason and every delegate fallback are
printed and written to run.json.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .analyzer import Analyzer, AnalyzerOptions
from .capture.base import Frame
from .registry import MODULES
from .results import FrameResult
from .runtime.factory import RunnerFactory
from .session import RunSummary, run_source

log = logging.getLogger("edgeaffect")


def run_with_profile(a: argparse.Namespace, out: Path) -> RunSummary:
    from .capture.factory import open_source, with_camera
    from .profiles import load_profile
    from .scheduler.plan import plan_runtime
    from .scheduler.stages import WorkItem

    profile = load_profile(a.profile)
    opts = AnalyzerOptions()
    if a.models_dir:
        opts.models_dir = Path(a.models_dir)
    if a.max_faces is not None:
        opts.max_faces = a.max_faces
    opts.au_every = profile.rates.au_every
    opts.affect_every = profile.rates.affect_every
    if isinstance(profile.rates.detector, int):
        opts.redetect_every = profile.rates.detector
    locate = RunnerFactory(opts.base_options, warn=False).model_path
    plan = plan_runtime(profile, {m: locate(m) for m in MODULES}, base=opts.base_options)
    print(plan.describe())
    analyzer = Analyzer(opts, runner_factory=plan.factory)
    cam = with_camera(profile.camera, a.source)
    source = open_source(cam, realtime=a.realtime or None, loop=a.loop)
    live = bool(getattr(source, "is_live", False))
    executor = plan.executor(analyzer.stages(), live=live)

    def pipelined(frames: Iterator[Frame]) -> Iterator[tuple[Frame, FrameResult]]:
        items = (WorkItem(f, analyzer.begin_frame(f)) for f in frames)
        try:
            for item in executor.run(items):
                res = analyzer.finish_frame(item.payload)
                yield item.frame, res
        finally:
            executor.close()

    header: dict[str, Any] = {"profile": profile.name, "placement": plan.to_dict(), "executor": executor.mode if hasattr(executor, "mode") else "pipelined"}
    summary = run_source(
        source, out, analyzer=analyzer, overlay=a.overlay, write_csv=not a.no_csv, max_frames=a.max_frames,
        header_extra=header, pipeline=pipelined, on_result=getattr(a, "on_result", None),
    )
    stats = getattr(executor, "stats", None)
    if stats is not None:
        summary.extra["executor"] = stats.report()
        print(stats.report())
    analyzer.close()
    return summary
