"""Side by side with MediaPipe: same process, same video, same machine, one core.

Contenders (each keeps its state across rounds, like a camera loop):

* `edgeaffect`: the full pipeline, landmarks (68 + uncertainty) + 15 AUs + valence/arousal,
  `num_threads=1`, VIDEO mode (detector only when not tracking);
* `mediapipe_face_mesh` (**the yardstick**): MediaPipe's legacy `face_mesh` alone in tracking
  mode (`static_image_mode=False`, `max_num_faces=1`, `refine_landmarks=False`: the 468-point
  network without the attention/iris refinement, the cheaper of the two and so the stricter
  contender; `--mp-refine` switches to `refine_landmarks=True`). It runs its own short-range
  detector only when it has lost the face: this is how MediaPipe is deployed;
* `mediapipe_face_landmarker_video`: the Tasks `FaceLandmarker` in VIDEO mode, only when a
  `face_landmarker*.task` model bundle is available (the 0.10.21 wheel does not carry one:
  nothing is downloaded; pass `task_path` / `--mp-task FILE` to include it);
* `mediapipe_detection_mesh` (extra row, never the headline): `face_detection` (short range)
  AND `face_mesh` on every frame.

"Face found" is counted from landmark output only (`multi_face_landmarks` /
`face_landmarks` / edgeaffect's valid-landmark status), never from a detection box.

Fairness: the frames are decoded into RAM first (decoding is not timed for anyone); the BGR->RGB
conversion MediaPipe needs is timed as part of MediaPipe's frame (every OpenCV user pays it;
edgeaffect's own colour conversion is inside its call). The legacy MediaPipe API has no
thread setting, so the whole process is pinned to one CPU core (`sched_setaffinity`) unless
disabled, and OpenCV is set to one thread; edgeaffect runs its interpreters with one thread.
Rounds alternate the order of the contenders (A B C, B C A, C A B, ...) so that drifting
background load hits all of them alike. Reported per contender: fps = frames / summed per-frame
wall time, p50/p90, process CPU ms per frame (os.times: all threads, unaffected by other
processes' load). Ratios: wall fps, median frame time, CPU time, and the median over rounds
of the per-round fps ratio (each round runs every contender back to back, so a round is a
pair under near-identical load). The first `warmup` frames of each contender are processed
but not measured.
"""

from __future__ import annotations

import contextlib
import os
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SourceError
from .stats import summarize

#: issue 12: >= 2.0x MediaPipe face mesh alone (tracking mode), in process, one thread
GOAL_RATIO = 2.0
PRIMARY = "mediapipe_face_mesh"


def import_mediapipe() -> tuple[Any, str | None]:
    """(mediapipe module, None) or (None, reason)."""
    try:
        import mediapipe as mp

        _ = mp.solutions.face_mesh.FaceMesh  # the legacy API (mediapipe <= 0.10.21 on x86_64)
        _ = mp.solutions.face_detection.FaceDetection
    except ImportError as e:
        return None, f"mediapipe is not importable ({e}); install mediapipe==0.10.21 (x86_64) to run the comparison"
    except AttributeError as e:
        return None, f"this mediapipe has no legacy solutions API ({e}); the comparison needs mediapipe==0.10.21"
    return mp, None


def load_frames(path: str | Path, max_frames: int | None = None, max_mb: float = 512.0) -> tuple[list[np.ndarray], float]:
    import cv2

    p = Path(path)
    if not p.exists():
        raise SourceError(f"video file {p} does not exist")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise SourceError(f"cannot open {p} as a video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
    frames: list[np.ndarray] = []
    size = 0.0
    while max_frames is None or len(frames) < max_frames:
        ok, img = cap.read()
        if not ok or img is None:
            break
        size += img.nbytes / 2**20
        if size > max_mb:
            break
        frames.append(img)
    cap.release()
    if not frames:
        raise SourceError(f"{p}: no frame could be decoded")
    return frames, fps


class Contender:
    def __init__(self, name: str, what: str, process: Callable[[np.ndarray, float], bool], close: Callable[[], None] | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.name, self.what, self.process, self._close = name, what, process, close
        self.info = info or {}
        self.lat = array("d")
        self.found = array("b")
        self.cpu_s = 0.0
        self.round_fps: list[float] = []  # one entry per round (frames / summed frame time)
        self.round_cpu_ms: list[float] = []  # process CPU ms per frame, per round
        self.frames = 0
        self.faces = 0
        self.ts = 0.0

    def close(self) -> None:
        if self._close:
            with contextlib.suppress(Exception):
                self._close()


def edgeaffect_contender(models_dir: str | None = None, threads: int = 1, analyzer: Any = None) -> Contender:
    from ..analyzer import Analyzer, AnalyzerOptions, RunningMode

    an = analyzer or Analyzer(AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=1, num_threads=threads,
                                              models_dir=Path(models_dir) if models_dir else None,
                                              enable_aus=True, enable_affect=True))

    def process(img: np.ndarray, ts: float) -> bool:
        r = an.process(img, ts)
        return r.status == "ok"

    o = an.options
    what = f"68 landmarks + sigma, 15 AUs, valence/arousal + uncertainty ({threads} thread{'s' if threads != 1 else ''})"
    if o.au_every > 1 or o.affect_every > 1:
        what += f" [AUs every {o.au_every}, VA every {o.affect_every} frames, held between]"
    return Contender("edgeaffect", what, process, an.close,
                     {"num_threads": threads, "backend": f"{an.backend.name} {an.backend.version}",
                      "au_every": o.au_every, "affect_every": o.affect_every,
                      "models": {k: m.sha256[:16] for k, m in an.model_manifests.items()}})


def find_face_landmarker_task(mp: Any) -> Path | None:
    """A `face_landmarker*.task` bundle inside the installed mediapipe package, if any (no download)."""
    root = Path(getattr(mp, "__file__", "") or ".").parent
    if not root.is_dir():
        return None
    hits = sorted(root.rglob("face_landmarker*.task"))
    return hits[0] if hits else None


def _face_mesh_kw(refine: bool) -> dict[str, Any]:
    return {"static_image_mode": False, "max_num_faces": 1, "refine_landmarks": bool(refine),
            "min_detection_confidence": 0.5, "min_tracking_confidence": 0.5}


def mediapipe_contenders(mp: Any, both: bool = True, *, refine: bool = False,
                         task_path: str | Path | None = None) -> tuple[list[Contender], dict[str, Any]]:
    """(contenders, notes): the face-mesh yardstick first, then the Tasks landmarker (when its
    .task bundle exists), then the labelled detection+mesh extra row (when `both`)."""
    import cv2

    out: list[Contender] = []
    notes: dict[str, Any] = {}
    fm_kw = _face_mesh_kw(refine)
    npts = 478 if refine else 468
    mesh = mp.solutions.face_mesh.FaceMesh(**fm_kw)

    def p_mesh(img: np.ndarray, ts: float) -> bool:
        m = mesh.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        return bool(m.multi_face_landmarks)

    out.append(Contender(PRIMARY, f"face_mesh {npts} points, tracking mode (own detector only when the face is lost)",
                         p_mesh, mesh.close, {"face_mesh": fm_kw, "role": "yardstick"}))

    task = Path(task_path) if task_path else find_face_landmarker_task(mp)
    if task is None or not task.exists():
        notes["face_landmarker_video"] = {
            "available": False,
            "reason": (f"--mp-task {task} does not exist" if task is not None else
                       f"no face_landmarker*.task bundle in the installed mediapipe {getattr(mp, '__version__', '?')} "
                       "wheel (the Tasks API needs a separately downloaded model; none is downloaded here)")}
    else:
        try:
            from mediapipe.tasks.python import BaseOptions
            from mediapipe.tasks.python import vision as mpv

            opts = mpv.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(task)),
                                             running_mode=mpv.RunningMode.VIDEO, num_faces=1)
            lmk = mpv.FaceLandmarker.create_from_options(opts)
            last = [-1]

            def p_task(img: np.ndarray, ts: float) -> bool:
                t = max(int(ts), last[0] + 1)  # the Tasks API wants strictly increasing integer ms
                last[0] = t
                rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                r = lmk.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), t)
                return bool(r.face_landmarks)

            out.append(Contender("mediapipe_face_landmarker_video", "Tasks FaceLandmarker, VIDEO mode, 1 face",
                                 p_task, lmk.close, {"task": str(task), "running_mode": "VIDEO", "num_faces": 1,
                                                     "role": "yardstick (Tasks API)"}))
            notes["face_landmarker_video"] = {"available": True, "task": str(task)}
        except Exception as e:  # an unusable bundle must not kill the other rows
            notes["face_landmarker_video"] = {"available": False, "reason": f"{task}: {type(e).__name__}: {e}"}
    if both:
        det = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
        mesh_b = mp.solutions.face_mesh.FaceMesh(**fm_kw)

        def p_both(img: np.ndarray, ts: float) -> bool:
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            det.process(rgb)
            return bool(mesh_b.process(rgb).multi_face_landmarks)  # face found = landmarks only

        def c_both() -> None:
            det.close()
            mesh_b.close()

        out.append(Contender("mediapipe_detection_mesh",
                             f"EXTRA ROW, not the yardstick: face_detection (short range) + face_mesh {npts} points, every frame",
                             p_both, c_both, {"face_mesh": fm_kw, "face_detection": {"model_selection": 0}, "role": "extra"}))
    return out, notes


def _pass(c: Contender, frames: list[np.ndarray], period_ms: float, skip: int) -> None:
    t_cpu = os.times()
    cpu0 = t_cpu.user + t_cpu.system
    n = 0
    tot_ms = 0.0
    for i, img in enumerate(frames):
        c.ts += period_ms
        t0 = time.perf_counter()
        found = c.process(img, c.ts)
        dt = (time.perf_counter() - t0) * 1000.0
        if i < skip:
            continue
        c.lat.append(dt)
        tot_ms += dt
        c.found.append(int(found))
        c.faces += int(found)
        n += 1
    t_cpu = os.times()
    # CPU of the warm-up frames is spread evenly (negligible for >= 100-frame passes)
    cpu_s = (t_cpu.user + t_cpu.system - cpu0) * (n / max(1, len(frames)))
    c.cpu_s += cpu_s
    c.frames += n
    if n and tot_ms > 0:
        c.round_fps.append(round(n * 1000.0 / tot_ms, 3))
        c.round_cpu_ms.append(round(cpu_s * 1000.0 / n, 4))


@contextlib.contextmanager
def pinned(cpu: int | str | None) -> Any:
    """Pin this process to one CPU ("auto": the highest-numbered usable one); restore afterwards."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    old = os.sched_getaffinity(0)
    target = max(old) if cpu == "auto" else int(cpu)
    try:
        os.sched_setaffinity(0, {target})
    except OSError:
        yield None
        return
    try:
        yield target
    finally:
        os.sched_setaffinity(0, old)


def _result(c: Contender) -> dict[str, Any]:
    tot = sum(c.lat) / 1000.0
    lat = np.frombuffer(c.lat, dtype=np.float64) if len(c.lat) else np.zeros(0)
    found = np.frombuffer(c.found, dtype=np.int8).astype(bool) if len(c.found) else np.zeros(0, bool)
    face_lat = lat[found]
    return {"what": c.what, "frames": c.frames, "latency_ms": summarize(lat), "fps": round(c.frames / tot, 3) if tot else None,
            "process_cpu_ms_per_frame": round(c.cpu_s * 1000.0 / c.frames, 3) if c.frames else None,
            "face_rate": round(c.faces / c.frames, 4) if c.frames else None,
            # a pipeline that loses the face only runs its detector: compare frames with a face too
            "face_frames": int(found.sum()), "latency_ms_face_frames": summarize(face_lat),
            "fps_face_frames": round(1000.0 / float(face_lat.mean()), 3) if face_lat.size else None,
            "round_fps": list(c.round_fps), "round_cpu_ms_per_frame": list(c.round_cpu_ms),
            **({"config": c.info} if c.info else {})}


def run_vs_mediapipe(
    frames: list[np.ndarray],
    fps: float,
    *,
    edgeaffect: Callable[[], Contender],
    rounds: int = 3,
    warmup: int = 10,
    pin_cpu: int | str | None = "auto",
    mediapipe_importer: Callable[[], tuple[Any, str | None]] = import_mediapipe,
    include_detection_mesh: bool = True,
    refine_landmarks: bool = False,
    task_path: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time the contenders over `frames` for `rounds` rounds. MediaPipe missing -> its part is skipped."""
    say = progress or (lambda s: None)
    mp, reason = mediapipe_importer()
    out: dict[str, Any] = {"frames_per_round": len(frames), "rounds": rounds, "warmup_frames": warmup, "goal_ratio": GOAL_RATIO}
    cv_threads = None
    with contextlib.suppress(Exception):
        import cv2

        cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
    contenders: list[Contender] = []
    try:
        with pinned(pin_cpu) as cpu:
            out["pinned_cpu"] = cpu
            contenders.append(edgeaffect())
            if mp is None:
                say(f"MediaPipe comparison skipped: {reason}")
                out["skipped"] = True
                out["reason"] = reason
            else:
                out["mediapipe_version"] = getattr(mp, "__version__", None)
                mps, notes = mediapipe_contenders(mp, include_detection_mesh, refine=refine_landmarks, task_path=task_path)
                contenders += mps
                out["mediapipe_notes"] = notes
                fl = notes.get("face_landmarker_video") or {}
                if not fl.get("available"):
                    say(f"Tasks FaceLandmarker (VIDEO) not measured: {fl.get('reason')}")
            period = 1000.0 / fps
            for r in range(rounds):
                k = r % len(contenders)
                for c in contenders[k:] + contenders[:k]:
                    _pass(c, frames, period, warmup if r == 0 else 0)
                    say(f"round {r + 1}/{rounds}: {c.name} {c.frames} frames, "
                        f"{c.frames / (sum(c.lat) / 1000.0):.1f} fps so far" if c.lat else f"round {r + 1}: {c.name}")
    finally:
        for c in contenders:
            c.close()
        if cv_threads is not None:
            with contextlib.suppress(Exception):
                import cv2

                cv2.setNumThreads(cv_threads)
    res = {c.name: _result(c) for c in contenders}
    if mp is None:
        res["mediapipe"] = {"skipped": True, "reason": reason, "what": "MediaPipe face detection + face mesh"}
    out["contenders"] = res
    out["ratios"] = ratios_vs(res, GOAL_RATIO)
    out["method"] = ("same process and video, frames preloaded in RAM, process pinned to CPU "
                     f"{out.get('pinned_cpu')}, OpenCV 1 thread, edgeaffect num_threads=1 (MediaPipe's legacy API has no "
                     f"thread option); {rounds} rounds with rotating order; fps = frames / summed per-frame wall time; "
                     "MediaPipe's BGR->RGB conversion is included in its time; face found = landmark output only; "
                     f"yardstick: {PRIMARY} (static_image_mode=False, refine_landmarks={bool(refine_landmarks)})")
    return out


def _median(v: list[float]) -> float | None:
    return float(np.median(v)) if v else None


def ratios_vs(res: dict[str, Any], goal: float = GOAL_RATIO) -> list[dict[str, Any]]:
    """edgeaffect against every MediaPipe row. Only the face-mesh-alone yardstick (and the Tasks
    landmarker, when measured) are `primary`; the detection+mesh row is labelled `extra`."""
    ea = res.get("edgeaffect") or {}
    out = []
    rows = (
        (PRIMARY, "vs MediaPipe face mesh alone, tracking mode (the yardstick)", True),
        ("mediapipe_face_landmarker_video", "vs MediaPipe Tasks FaceLandmarker, VIDEO mode", True),
        ("mediapipe_detection_mesh", "vs MediaPipe face detection + face mesh every frame (extra row, not the yardstick)", False),
    )
    for name, label, primary in rows:
        m = res.get(name)
        if not m or not m.get("fps") or not ea.get("fps"):
            continue
        fr = ea["fps"] / m["fps"]
        cr = (m["process_cpu_ms_per_frame"] / ea["process_cpu_ms_per_frame"]) if ea.get("process_cpu_ms_per_frame") and m.get("process_cpu_ms_per_frame") else None
        ff = ea["fps_face_frames"] / m["fps_face_frames"] if ea.get("fps_face_frames") and m.get("fps_face_frames") else None
        p50e, p50m = (ea.get("latency_ms") or {}).get("p50"), (m.get("latency_ms") or {}).get("p50")
        pr = p50m / p50e if p50e and p50m else None
        per_round = [a / b for a, b in zip(ea.get("round_fps") or [], m.get("round_fps") or []) if a and b]
        rr = _median(per_round)
        # per-round CPU ratios: a round runs both back to back, and CPU time ignores the neighbours' load
        per_round_cpu = [b / a for a, b in zip(ea.get("round_cpu_ms_per_frame") or [], m.get("round_cpu_ms_per_frame") or [])
                         if a and b]
        out.append({"name": f"edgeaffect {label}", "vs": name, "fps_ratio": round(fr, 3),
                    "cpu_ratio": None if cr is None else round(cr, 3),
                    "p50_ratio": None if pr is None else round(pr, 3),
                    "round_fps_ratios": [round(v, 3) for v in per_round],
                    "median_round_fps_ratio": None if rr is None else round(rr, 3),
                    "round_cpu_ratios": [round(v, 3) for v in per_round_cpu],
                    "median_round_cpu_ratio": None if not per_round_cpu else round(float(np.median(per_round_cpu)), 3),
                    "fps_ratio_face_frames": None if ff is None else round(ff, 3),
                    "faces_at_least_as_many": (ea.get("face_frames") or 0) >= (m.get("face_frames") or 0),
                    # the goal is judged against the yardstick rows only; the extra row carries none
                    "goal": goal if primary else None,
                    "goal_met": (fr >= goal and (ea.get("face_frames") or 0) >= (m.get("face_frames") or 0)) if primary else None,
                    "goal_met_cpu": (cr is not None and cr >= goal and (ea.get("face_frames") or 0) >= (m.get("face_frames") or 0))
                    if primary else None,
                    "primary": primary})
    return out
