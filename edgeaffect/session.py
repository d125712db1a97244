"""Run the analyzer over a frame source and write JSONL / CSV / overlay outputs.

This is the loop behind `edgeaffect run` and `edgeaffect demo`, usable from Python. It is
careful about the two things a field deployment hits: a stop request (SIGINT/SIGTERM) is a
flag checked between frames, so the frame in flight is finished and every output file is
closed valid; and a bad frame or a source failure ends in a clear message, never in a torn
output line.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .analyzer import Analyzer, AnalyzerOptions
from .capture.base import Frame, FrameSource
from .capture.reconnect import set_source_hooks
from .errors import EdgeAffectError, SourceError
from .outputs import OverlayVideoWriter
from .outputs.run_outputs import OutputConfig, OutputSet, set_aside_previous_run
from .outputs.segments import iso_utc
from .results import FrameResult
from .runtime.factory import RunnerFactory
from .scheduler.executor import PipelineExecutor
from .scheduler.stages import Stage, WorkItem
from .sdnotify import SdNotifier

log = logging.getLogger("edgeaffect")


@dataclass
class RunSummary:
    frames: int = 0
    frames_with_face: int = 0
    bad_frames: int = 0
    seconds: float = 0.0
    stopped_by: str | None = None
    error: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        s = (
            f"{self.frames} frames ({self.frames_with_face} with a valid face, {self.bad_frames} bad) "
            f"in {self.seconds:.1f} s = {self.fps:.1f} fps"
        )
        if self.stopped_by:
            s += f"; stopped by {self.stopped_by}"
        if self.error:
            s += f"; ended early: {self.error}"
        return s


class StopFlag:
    """Installs SIGINT/SIGTERM handlers that only set a flag (restored on exit)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)


@dataclass(frozen=True)
class Progress:
    """Where a run is, after each frame written (for a progress bar: frames done / total, fps, ETA)."""

    frames: int  # frames written so far
    total: int | None  # frames the run will write (None: live camera, looping file, unknown length)
    seconds: float  # since the first frame was requested

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.fps <= 0:
            return None
        return max(0.0, (self.total - self.frames) / self.fps)


#: `(stages, live) -> executor`: how the run loop gets its executor (a device plan's, or sequential).
ExecutorFactory = Callable[[Sequence[Stage], bool], PipelineExecutor]


def sequential_executor(stages: Sequence[Stage], live: bool) -> PipelineExecutor:
    """All stages in the caller's thread, one frame at a time, every frame analysed."""
    return PipelineExecutor(stages, mode="sequential", drop="block")


def _expected_frames(source: Any, max_frames: int | None) -> int | None:
    if getattr(source, "is_live", False) or getattr(source, "loop", False):
        return max_frames
    n = getattr(source, "frame_count", None)
    if n is None and isinstance(source, Sized):
        n = len(source)
    if n is None:
        return max_frames
    return min(n, max_frames) if max_frames is not None else n


def run_source(
    source: FrameSource | Iterable[Frame],
    out_dir: str | Path,
    options: AnalyzerOptions | None = None,
    *,
    analyzer: Analyzer | None = None,
    runner_factory: RunnerFactory | None = None,
    executor: ExecutorFactory | None = None,
    overlay: bool = False,
    write_csv: bool = True,
    max_frames: int | None = None,
    header_extra: dict[str, Any] | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    observers: Any = None,
    outputs: OutputConfig | None = None,
    notifier: SdNotifier | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Analyse every frame of `source`; write run.json, results.jsonl, summary.json (+ results.csv, overlay.mp4).

    The one run loop: the analyzer's stages always run in an executor, `executor(stages, live)`
    (default: sequential; a device plan gives the pipelined one with its placement, queues and
    degradation). Per-frame errors become `bad_frame` results and the run goes on (see
    Analyzer.stages). A failure of the run itself (source cannot be opened, stops delivering,
    a bug) is recorded in summary.json `error`; errors other than a source that stopped are
    re-raised after every output is closed valid. `on_progress` is called after each frame.

    `observers` (edgeaffect.observers.ResultObservers): driver / kiosk layers annotate each
    result before it is written (their event lines follow the frame's line) and MQTT gets it after.

    `outputs` chooses formats, per-frame/per-second records, rotation, retention and the write
    policy (outputs/run_outputs.py; default: results.jsonl + results.csv unless write_csv=False).
    `notifier` speaks systemd's sd_notify (default: from $NOTIFY_SOCKET; a no-op outside systemd):
    READY once set up, WATCHDOG after frames and while a camera is being retried, STOPPING.
    A previous plain run's files in `out_dir` are moved to previous-STARTUTC/ first (a restart loses
    nothing; run_outputs.set_aside_previous_run) unless `overwrite`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    own = analyzer is None
    an = analyzer or Analyzer(options or AnalyzerOptions(), runner_factory=runner_factory)
    live = bool(getattr(source, "is_live", False))
    ex = (executor or sequential_executor)(an.stages(), live)
    header = {
        "schema": "edgeaffect.run/1",
        "models": {k: {"file": m.file, "sha256": m.sha256, "variant": m.variant} for k, m in an.model_manifests.items()},
        "backend": f"{an.backend.name} {an.backend.version}",
        "max_faces": an.options.max_faces,
        "executor": ex.mode,
        **(header_extra or {}),
    }
    if observers is not None:
        header.update(observers.header())
    if outputs is None:
        outputs = OutputConfig(formats=("jsonl", "csv") if write_csv else ("jsonl",))
    sd = notifier or SdNotifier()
    previous = None if overwrite else set_aside_previous_run(out)
    if previous is not None:
        log.warning("the previous run's files in %s were moved to %s (--overwrite replaces them instead)", out, previous)
    # Run metadata goes to run.json so that results.jsonl holds one line per frame (+ event/status lines).
    (out / "run.json").write_text(json.dumps(header, indent=1))
    outs = OutputSet(out, outputs)
    summary = RunSummary(outputs={**outs.outputs(), "run": str(out / "run.json"), "summary": str(out / "summary.json")})
    if previous is not None:
        summary.outputs["previous_run"] = str(previous)
    fps = getattr(source, "fps", None) or 30.0
    vid = OverlayVideoWriter(out / "overlay.mp4", fps=fps) if overlay else None
    if vid:
        summary.outputs["overlay"] = str(vid.path)
    total = _expected_frames(source, max_frames)
    t0 = time.perf_counter()
    opened = False
    try:
        if observers is not None:
            observers.start(header, out)
            outs.on_event.append(observers.on_status)  # camera outages also reach MQTT
        with StopFlag() as stop:
            # camera outages become status lines; waiting for a camera pings the watchdog; SIGTERM ends the wait
            set_source_hooks(source, on_event=lambda kind, f: outs.event(kind, **f), heartbeat=sd.ping,
                             should_stop=lambda: stop.reason is not None)
            name = getattr(source, "name", "source")
            sd.ready(f"opening {name}")  # supervised from here; a camera outage is reported, not a start failure
            if isinstance(source, FrameSource):
                source.open()
                opened = True
            sd.status(f"analysing {name}")

            def frames() -> Iterator[Frame]:
                n = 0
                it = iter(source)
                while not stop.reason and (max_frames is None or n < max_frames):
                    try:
                        frame = next(it)
                    except StopIteration:
                        return
                    except SourceError as e:
                        if stop.reason:  # SIGTERM while waiting for a camera: a stop, not a failure
                            return
                        summary.error = str(e)
                        log.error("source failed: %s", e)
                        return
                    n += 1
                    frame.meta.setdefault("wall_time", time.time())  # wall clock on arrival: lines carry it
                    yield frame

            def work_items(fs: Iterator[Frame]) -> Iterator[WorkItem]:
                for frame in fs:
                    try:
                        work = an.begin_frame(frame)  # the Frame: its format, bit depth and timestamp
                    except EdgeAffectError as e:  # e.g. a timestamp that goes backwards: record, go on
                        work = an.bad_frame(frame, None, str(e))
                    yield WorkItem(frame, work)

            for item in ex.run(work_items(frames())):
                frame, res = item.frame, an.finish_frame(item.payload)
                if res.wall_utc is None and "wall_time" in frame.meta:
                    res.wall_utc = iso_utc(frame.meta["wall_time"])
                events = observers.annotate(frame, res) if observers is not None else []
                outs.write(res)
                for ev in events:
                    outs.write_event(ev)
                sd.ping()
                if vid and res.status != "bad_frame":
                    img = frame.image
                    vid.write(img if img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 else _as_bgr(frame), res)
                if on_result:
                    on_result(res)
                if observers is not None:
                    observers.publish(frame, res, events)
                summary.frames += 1
                summary.frames_with_face += int(res.status == "ok")
                summary.bad_frames += int(res.status == "bad_frame")
                if on_progress:
                    on_progress(Progress(summary.frames, total, time.perf_counter() - t0))
            if stop.reason:
                summary.stopped_by = stop.reason
    except BaseException as e:
        summary.error = summary.error or (str(e) if isinstance(e, EdgeAffectError) else f"{type(e).__name__}: {e}")
        raise
    finally:
        ex.close()
        summary.extra["executor"] = ex.stats.to_dict()
        summary.extra["executor_report"] = ex.stats.report()
        summary.seconds = time.perf_counter() - t0
        if observers is not None:
            for ev in observers.finish():  # open episodes end with the run
                outs.write_event(ev)
            observers.close()
        sd.stopping()
        outs.close()
        summary.extra["writes"] = outs.stats()
        if vid:
            vid.close()
            summary.extra["overlay_codec"] = vid.codec
        if opened and isinstance(source, FrameSource):
            source.close()
        if own:
            an.close()
        (out / "summary.json").write_text(
            json.dumps({**summary.__dict__, "fps": round(summary.fps, 2)}, indent=1, default=str)
        )
    return summary


def exit_code(summary: RunSummary) -> int:
    """What a shell expects: 1 after a failed run, 130 / 143 after SIGINT / SIGTERM, else 0."""
    if summary.error:
        return 1
    return {"SIGINT": 130, "SIGTERM": 143}.get(summary.stopped_by or "", 0)


def _as_bgr(frame: Frame) -> Any:
    from .vision.frames import normalise_frame

    try:
        return normalise_frame(frame).bgr  # by the frame's declared format and bit depth
    except EdgeAffectError:
        return frame.image
