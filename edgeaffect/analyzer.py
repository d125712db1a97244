"""Public API: AnalyzerOptions, RunningMode, Analyzer.

Shaped like MediaPipe Tasks: an options object, a running mode (IMAGE: independent images;
VIDEO: frames with increasing timestamps, tracked; LIVE_STREAM: frames pushed from a camera
callback, results delivered to a callback, newest frame wins), and one result object per
frame (`FrameResult`, one JSON line).

Per frame the work is three ordered stages: `track` (detector only when needed + landmark
network + head pose + eyes), `au` (aligned crop + AU network) and `affect` (window push +
temporal network). The scheduler (edgeaffect.scheduler) may run them on different compute
units and overlap them across frames; it decides where and when, never what.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from .capture.base import Frame
from .errors import EdgeAffectError, FrameFormatError, ModelError
from .models.affect import AffectModel, frame_features
from .models.aus import AUModel
from .models.detector import FULL_RANGE_SMALL_FACE_PX, FaceDetector
from .models.eyes import EyeStateModel
from .models.landmarks import LandmarkModel
from .registry import MODULES, STAGE_MODULES, optional_stage
from .results import FaceResult, FrameResult
from .runtime.factory import BaseOptions, RunnerFactory
from .tracking import TrackedFace, Tracker, TrackerConfig
from .tracking import window_from_detection as window_from_detection  # re-exported (older import path)
from .vision.alignment import au_crop_matrix
from .vision.eyes import au45_with_eye_state, with_eyelids
from .vision.frames import NormalisedFrame, enhance_nir, normalise_frame
from .vision.grey import GreyOnDemand
from .vision.headpose import estimate_head_pose

__all__ = ["MODULES", "Analyzer", "AnalyzerOptions", "BaseOptions", "RunningMode"]


class RunningMode(str, Enum):
    IMAGE = "image"
    VIDEO = "video"
    LIVE_STREAM = "live_stream"


#: IMAGE mode searches each picture for faces down to this width (frame px) with either detector:
#: a photo is analysed once, so the tiles are sized for far faces (a speaker at a lectern, an
#: audience) rather than for a frame budget. On 13 shared photos pasted at 50-120 px into a
#: 1024x817 frame (tests/test_faces_real.py) the short-range model then finds every face.
IMAGE_SMALL_FACE_PX = FULL_RANGE_SMALL_FACE_PX


@dataclass
class AnalyzerOptions:
    """How the analysis behaves; `base_options` says what runs where (model files, backend, threads, units).

    `models_dir`, `model_files`, `num_threads` and `backend` are accepted as keywords and
    attributes for brevity; they live in (and read from) `base_options`.
    """

    running_mode: RunningMode = RunningMode.VIDEO  # IMAGE | VIDEO | LIVE_STREAM (module docstring)
    max_faces: int = 4  # faces tracked at once; a driver monitor sets 1, a kiosk keeps several
    base_options: BaseOptions = field(default_factory=BaseOptions)  # model files, backend, threads, compute units
    # face score in [0, 1] a detection needs to open a new track. 0.4, not BlazeFace's usual 0.5: the
    # shipped full-int8 detector scores large, frame-filling faces lower than the float model it
    # replaced (0.41-0.48 on tight face crops); the landmark validity check (validity_acquire) is
    # what keeps background out (scripts/eval_affect.py counts the faces found). A per-stride logit
    # calibration toward MediaPipe's float scores was tried instead and dropped: it also listed the
    # back of a head on the shared clip (frames 64-81) as a face, with validity up to 1.0
    detector_score_threshold: float = 0.4
    detector_keep: float = 0.4  # hysteresis: near a lost track, a detection down to this score re-acquires it
    validity_threshold: float = 0.5  # landmark validity in [0, 1] below which a track is lost
    validity_acquire: float = 0.8  # hysteresis: landmark validity a new track needs (one face, one id)
    # the landmark fit's own uncertainty (LandmarkResult.typical_sigma, crop-normalised) above which it
    # is no face whatever its validity: a full profile, beyond the network's pose range, gets points
    # collapsed over cheek and hair with validity up to 0.99 but sigma 0.06-0.10 (edgeaffect.tracking.tracker)
    landmark_sigma_keep: float = 0.06
    landmark_sigma_acquire: float = 0.05  # hysteresis: what a new track's refined fit needs
    redetect_every: int = 30  # frames between looks for new faces while tracking < max_faces (0: never)
    scene_cuts: bool = True  # an edit cut in a video ends every track (new ids after it; edgeaffect.tracking.scene_cut)
    detect_small_faces: bool = True  # nothing found on the whole frame -> detect on square tiles too
    # smallest face (frame px) the tiled search is sized for; None: IMAGE mode 40 (IMAGE_SMALL_FACE_PX), else the
    # detector's default (full range 40; short range: tiles of the short side, 2 extra runs per search)
    small_face_px: float | None = None
    max_lost_frames: int = 45  # frames a lost face keeps its id and window (not listed meanwhile)
    enable_aus: bool = True  # run the AU network
    enable_eyes: bool = True  # run the eye-state network (when the models dir has one): per-eye closed probability
    enable_affect: bool = True  # run the temporal valence/arousal network
    au_every: int = 1  # run the AU net every k-th frame (hold between)
    affect_every: int = 1  # run the temporal net every k-th frame (hold between)
    nir_enhance: bool = False  # CLAHE on the grey image of bare-array frames (Frames are conditioned at capture)
    channel_order: str = "bgr"  # bare 3/4-channel arrays: "bgr" (OpenCV) or "rgb" (a Frame says its own)
    bit_depth: int | None = None  # bare uint16 mono arrays: significant bits (None: 16); a Frame says its own
    result_callback: Callable[[FrameResult, np.ndarray], None] | None = None  # LIVE_STREAM: (result, image)
    models_dir: InitVar[Path | None] = None
    model_files: InitVar[dict[str, str | Path] | None] = None
    num_threads: InitVar[int | None] = None
    backend: InitVar[str | None] = None

    def __post_init__(self, models_dir: Path | None, model_files: dict[str, str | Path] | None,
                      num_threads: int | None, backend: str | None) -> None:
        given = {"models_dir": None if models_dir is None else Path(models_dir),
                 "model_files": None if model_files is None else dict(model_files),
                 "num_threads": None if num_threads is None else int(num_threads), "backend": backend}
        changes = {k: v for k, v in given.items() if v is not None}
        if changes:  # a copy: the caller's BaseOptions object is left as it was
            self.base_options = dataclasses.replace(self.base_options, **changes)


def _forward(name: str) -> property:
    def get(self: AnalyzerOptions) -> Any:
        return getattr(self.base_options, name)

    def set_(self: AnalyzerOptions, value: Any) -> None:
        setattr(self.base_options, name, value)

    return property(get, set_, doc=f"Shorthand for base_options.{name}.")


for _name in ("models_dir", "model_files", "num_threads", "backend"):
    setattr(AnalyzerOptions, _name, _forward(_name))


@dataclass
class FrameWork:
    """The analyzer's per-frame state passed between stages (opaque to the scheduler)."""

    index: int
    timestamp_ms: float
    frame: NormalisedFrame | None = None
    faces: list[TrackedFace] = field(default_factory=list)
    result: FrameResult | None = None
    skipped: set[str] = field(default_factory=set)
    timings_ms: dict[str, float] = field(default_factory=dict)


class Analyzer:
    """Facial affect analysis over frames. Create with `Analyzer.create(options)`; close() or use `with`."""

    def __init__(self, options: AnalyzerOptions, *, runner_factory: RunnerFactory | None = None) -> None:
        """`runner_factory`: the factory that builds (or already built) the model runners, e.g. the
        one a device plan placed on compute units (edgeaffect.scheduler.plan_runtime); default:
        `RunnerFactory(options.base_options)`."""
        self.options = options
        self.runner_factory = runner_factory or RunnerFactory(options.base_options)
        self.backend = self.runner_factory.backend
        runner = self.runner_factory.runner

        small_face_px = options.small_face_px
        if small_face_px is None and options.running_mode == RunningMode.IMAGE:
            small_face_px = IMAGE_SMALL_FACE_PX
        self.detector = FaceDetector(runner("detector"), min(options.detector_keep, options.detector_score_threshold),
                                     small_face_px=small_face_px)
        self.landmarks = LandmarkModel(runner("landmarks"), options.validity_threshold)
        self.eyes = EyeStateModel(runner("eyes")) if options.enable_eyes and self._has_model("eyes") else None
        self.aus = AUModel(runner("au")) if options.enable_aus else None
        self.affect = AffectModel(runner("temporal")) if options.enable_affect else None
        self.tracker = Tracker(self.detector, self.landmarks, _tracker_config(options))
        self._frames = 0
        self._last_ts: float | None = None
        self._grey_hint: tuple[int, int, int, int] | None = None  # what the last frame's crops read (GreyOnDemand.expect)
        self._live: _LiveWorker | None = None

    def _has_model(self, module: str) -> bool:
        """An optional module added later (registry `required=False`) is off when the models dir lacks it."""
        try:
            self.runner_factory.model_path(module)
        except ModelError:
            return False
        return True

    @classmethod
    def create(cls, options: AnalyzerOptions | None = None, **kw: Any) -> Analyzer:
        return cls(options or AnalyzerOptions(**kw))

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @property
    def runners(self) -> dict[str, Any]:
        """Module -> the runner in use (in registry order; disabled modules absent)."""
        models = {"detector": self.detector, "landmarks": self.landmarks, "eyes": self.eyes, "au": self.aus, "temporal": self.affect}
        return {m: models[m].runner for m in MODULES if models[m] is not None}

    @property
    def model_manifests(self) -> dict[str, Any]:
        return {m: r.manifest for m, r in self.runners.items()}

    def reset(self) -> None:
        """Forget all tracks and temporal windows (e.g. between unrelated videos)."""
        self.tracker.reset()
        self._frames = 0
        self._last_ts = None
        self._grey_hint = None

    # ------------------------------------------------------------------ public calls
    def process(self, frame: Frame | np.ndarray, timestamp_ms: float | None = None) -> FrameResult:
        """VIDEO mode: one frame, tracked against the previous ones.

        `frame`: a capture `Frame` (pixels + format, bit depth, timestamp; `timestamp_ms`
        defaults to its own) or a bare array read with `options.channel_order` /
        `options.bit_depth` (BGR / 16-bit by default), as OpenCV hands them."""
        self._require(RunningMode.VIDEO, "process")
        return self._run_all(self.begin_frame(frame, timestamp_ms))

    def process_image(self, image: Frame | np.ndarray) -> FrameResult:
        """IMAGE mode: an independent image (always detects; VA from a window filled with this frame)."""
        self._require(RunningMode.IMAGE, "process_image")
        self.reset()
        work = self.begin_frame(image, 0.0)
        return self._run_all(work)

    def process_async(self, frame: Frame | np.ndarray, timestamp_ms: float | None = None) -> None:
        """LIVE_STREAM mode: returns at once; the newest frame wins when the analyzer is busy."""
        self._require(RunningMode.LIVE_STREAM, "process_async")
        if self.options.result_callback is None:
            raise EdgeAffectError("LIVE_STREAM mode needs AnalyzerOptions.result_callback")
        if self._live is None:
            self._live = _LiveWorker(self)
        self._live.submit(frame, _timestamp(frame, timestamp_ms))

    @property
    def live_dropped(self) -> int:
        return self._live.dropped if self._live else 0

    def _require(self, mode: RunningMode, call: str) -> None:
        if self.options.running_mode != mode:
            raise EdgeAffectError(f"{call}() needs running_mode={mode.value}, the analyzer was created with {self.options.running_mode.value}")

    def _run_all(self, work: FrameWork) -> FrameResult:
        for fn in (self.stage_track, self.stage_au, self.stage_affect):
            fn(work)
        return self.finish_frame(work)

    # ------------------------------------------------------------------ stages
    def begin_frame(self, frame: Frame | np.ndarray, timestamp_ms: float | None = None) -> FrameWork:
        """Validate the timestamp and wrap the frame (no model runs here)."""
        timestamp_ms = _timestamp(frame, timestamp_ms)
        if self.options.running_mode != RunningMode.IMAGE:
            if self._last_ts is not None and timestamp_ms <= self._last_ts:
                raise EdgeAffectError(f"timestamps must increase: got {timestamp_ms} ms after {self._last_ts} ms")
            self._last_ts = timestamp_ms
        work = FrameWork(self._frames, float(timestamp_ms))
        self._frames += 1
        t0 = time.perf_counter()
        try:
            if isinstance(frame, Frame):
                work.frame = normalise_frame(frame)
            else:
                work.frame = normalise_frame(frame, bit_depth=self.options.bit_depth, channel_order=self.options.channel_order)
            conditioned = isinstance(frame, Frame) and frame.meta.get("conditioned")
            if self.options.nir_enhance and not conditioned:
                work.frame = NormalisedFrame(work.frame.image, enhance_nir(work.frame.gray), work.frame.was_mono)
        except FrameFormatError as e:
            work.result = FrameResult(work.index, work.timestamp_ms, status="bad_frame", message=str(e))
        work.timings_ms["prep"] = (time.perf_counter() - t0) * 1000  # frame checks + colour conversion (grey: converted on demand by the crops)
        return work

    def stage_track(self, work: FrameWork) -> FrameWork:
        if work.frame is None:
            return work
        t0 = time.perf_counter()
        gray, image = work.frame.grey_source, work.frame.image  # image: BGR, or a mono sensor's grey (the detector takes either)
        h, w = image.shape[:2]
        if isinstance(gray, GreyOnDemand):
            gray.expect(self._grey_hint)
        faces = self.tracker.step(gray, image, work.index, work.timings_ms)
        t1 = time.perf_counter()
        for f in faces:
            if f.valid:
                assert f.lm is not None
                pts = f.lm.points
                pose = estimate_head_pose(pts, (w, h))
                closed = f.lm.eye_closed
                if self.eyes is not None:
                    # the eye net also refines iBUG 36-47 when it has the point output: reported
                    # landmarks and EAR use them; tracking, AU crop and affect keep f.lm.points
                    # (sigma of those points: the landmark net's own, unchanged)
                    ref = self.eyes.refine(gray, pts)
                    closed = ref.closed
                    if ref.eyelids is not None:
                        pts = with_eyelids(pts, ref.eyelids)
                f.face = FaceResult(
                    track_id=f.track.id, valid=True, validity=f.lm.validity, source=f.source,
                    box=f.track.last_box, landmarks=pts, landmark_sigma=f.lm.sigma,
                    head_pose=pose.as_dict() if pose else None, eyes=f.track.eyes.update(pts, closed).as_dict(),
                    detector_score=f.detector_score,
                )
            elif f.source == "turned_away":
                # a face is there but beyond the landmark network's pose range (a profile): listed,
                # not valid, every per-face output null (no made-up landmarks, AUs or valence)
                assert f.lm is not None
                f.face = FaceResult(track_id=f.track.id, valid=False, validity=f.lm.validity, source=f.source,
                                    box=f.track.last_box)
            # a lost track is not listed (f.face stays None): its id waits for re-acquisition
        work.faces = faces
        t2 = time.perf_counter()
        work.timings_ms["pose_eyes"] = (t2 - t1) * 1000  # head pose + eye state + result assembly (inside track)
        work.timings_ms["track"] = (t2 - t0) * 1000
        return work

    def stage_au(self, work: FrameWork) -> FrameWork:
        if work.frame is None or self.aus is None:
            return work
        t0 = time.perf_counter()
        due = self.options.au_every <= 1 or work.index % self.options.au_every == 0
        skip = "au" in work.skipped or not due
        for f in work.faces:
            if not f.valid or f.face is None or f.lm is None:
                continue
            if f.au_matrix is None:  # the tracker holds it while the face is still
                f.au_matrix = au_crop_matrix(f.lm.points, 112)
            if not skip or f.track.aus is None:
                f.track.aus, f.track.expression = self.aus.run_all(work.frame.grey_source, f.lm.points, f.au_matrix)
            f.face.aus, f.face.expression = f.track.aus, f.track.expression
        if skip:
            work.skipped.add("au")
        work.timings_ms["au"] = (time.perf_counter() - t0) * 1000
        return work

    def stage_affect(self, work: FrameWork) -> FrameWork:
        if work.frame is None or self.affect is None:
            return work
        t0 = time.perf_counter()
        due = self.options.affect_every <= 1 or work.index % self.options.affect_every == 0
        skip = "affect" in work.skipped or not due
        for f in work.faces:
            tr = f.track
            if tr.affect_window is None:
                tr.affect_window = self.affect.new_window()
            # this frame's AUs (not tr.aus: in pipelined mode the AU stage may already be on the next frame)
            aus = f.face.aus if f.face is not None else None
            expr = f.face.expression if f.face is not None else None
            w = tr.affect_window.width
            row = frame_features(f.lm.points, f.lm.sigma_norm, aus, f.au_matrix, expr, w) if f.valid and f.lm is not None else frame_features(None, None, None, width=w)
            if self.options.running_mode == RunningMode.IMAGE:
                for _ in range(tr.affect_window.length):
                    tr.affect_window.push(row)
            else:
                tr.affect_window.push(row)
            if not f.valid:
                continue  # a lost track: the gap is recorded in its window, nothing is estimated or listed
            if not skip or tr.affect is None:
                tr.affect = self.affect.run(tr.affect_window)
            if f.face is not None and tr.affect is not None:
                a = tr.affect
                f.face.valence, f.face.arousal = a.valence, a.arousal
                f.face.uncertainty = {"epistemic": round(a.epistemic, 4), "aleatoric": round(a.aleatoric, 4), "cumulative": round(a.cumulative, 4)}
        if skip:
            work.skipped.add("affect")
        work.timings_ms["affect"] = (time.perf_counter() - t0) * 1000
        return work

    def finish_frame(self, work: FrameWork) -> FrameResult:
        if work.result is not None:  # bad frame
            return work.result
        grey = work.frame.grey_source if work.frame is not None else None
        self._grey_hint = grey.asked if isinstance(grey, GreyOnDemand) else None
        faces = [f.face for f in work.faces if f.face is not None]
        for fc in faces:  # reported AU45 rises with the eye state (the temporal net saw the AU net's own)
            if fc.aus is not None and fc.eyes is not None:
                fc.aus = au45_with_eye_state(fc.aus, (fc.eyes.get("closed_prob_right"), fc.eyes.get("closed_prob_left")))
        status = "ok" if any(f.valid for f in faces) else "no_face"
        return FrameResult(work.index, work.timestamp_ms, faces, status, None, sorted(work.skipped), dict(work.timings_ms))

    def stages(self) -> list[Any]:
        """The per-frame stages in the scheduler's protocol (edgeaffect.scheduler.stages).

        Per-frame error policy: an EdgeAffectError inside a stage (a frame a network cannot
        take) makes that frame a `bad_frame` result naming the stage, the later stages skip it,
        and the run goes on; any other exception is a bug and stops the run."""
        from .scheduler.stages import Stage

        def wrap(name: str, fn: Callable[[FrameWork], FrameWork]) -> Callable[[Any], Any]:
            def run(item: Any) -> Any:
                work: FrameWork = item.payload
                if work.result is not None:  # bad frame: nothing to do
                    return item
                work.skipped |= set(item.skipped)
                try:
                    fn(work)
                except EdgeAffectError as e:
                    work.result = FrameResult(work.index, work.timestamp_ms, status="bad_frame", message=f"{name}: {e}")
                item.skipped = set(work.skipped)
                return item

            return run

        fns = {"track": self.stage_track, "au": self.stage_au, "affect": self.stage_affect}
        return [Stage(name, mods, wrap(name, fns[name]), optional=optional_stage(name))
                for name, mods in STAGE_MODULES.items()]

    def bad_frame(self, frame: Frame | np.ndarray, timestamp_ms: float | None, message: str) -> FrameWork:
        """A frame refused before any stage ran (e.g. a timestamp that goes backwards), as stage work."""
        ts = float(timestamp_ms if timestamp_ms is not None else getattr(frame, "timestamp_ms", 0.0))
        work = FrameWork(self._frames, ts)
        self._frames += 1
        work.result = FrameResult(work.index, ts, status="bad_frame", message=message)
        return work



def _tracker_config(opts: AnalyzerOptions) -> TrackerConfig:
    return TrackerConfig(
        max_faces=opts.max_faces, validity_threshold=opts.validity_threshold, redetect_every=opts.redetect_every,
        validity_acquire=max(opts.validity_acquire, opts.validity_threshold),
        sigma_keep=opts.landmark_sigma_keep, sigma_acquire=min(opts.landmark_sigma_acquire, opts.landmark_sigma_keep),
        detector_acquire=opts.detector_score_threshold,
        detect_small_faces=opts.detect_small_faces, max_lost_frames=opts.max_lost_frames, scene_cuts=opts.scene_cuts,
        always_detect=opts.running_mode == RunningMode.IMAGE,
    )


def _timestamp(frame: Frame | np.ndarray, timestamp_ms: float | None) -> float:
    if timestamp_ms is not None:
        return float(timestamp_ms)
    if isinstance(frame, Frame):
        return float(frame.timestamp_ms)
    raise EdgeAffectError("a bare array frame needs timestamp_ms (a capture Frame carries its own)")


class _LiveWorker:
    """LIVE_STREAM: one background thread, a one-slot mailbox (newest frame wins)."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self._slot: tuple[np.ndarray, float] | None = None
        self._cv = threading.Condition()
        self._stop = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name="edgeaffect-live", daemon=True)
        self._thread.start()

    def submit(self, frame: np.ndarray, ts: float) -> None:
        with self._cv:
            if self._slot is not None:
                self.dropped += 1
            self._slot = (frame, ts)
            self._cv.notify()

    def _loop(self) -> None:
        a = self.analyzer
        while True:
            with self._cv:
                while self._slot is None and not self._stop:
                    self._cv.wait()
                if self._stop and self._slot is None:
                    return
                frame, ts = self._slot  # type: ignore[misc]
                self._slot = None
            try:
                res = a._run_all(a.begin_frame(frame, ts))
            except (EdgeAffectError, ModelError) as e:
                res = FrameResult(-1, ts, status="bad_frame", message=str(e))
            assert a.options.result_callback is not None
            a.options.result_callback(res, frame)

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=5)
