"""Side by side with MediaPipe: same process, same video, same machine, one core.

Contenders (each keeps its state across rounds, like a camera loop):

* `edgeaffect`: the full pipeline, landmarks (68 + uncertainty) + 15 AUs + valence/arousal,
  `num_threads=1`, VIDEO mode (detector only when not tracking);
* `mediapipe_detection_mesh`: MediaPipe's legacy `face_detection` (short range) AND
  `face_mesh` (static_image_mode=False, max_num_faces=1, refine_landmarks=False) on every
  frame: the pair the issue names, the headline ratio;
* `mediapipe_face_mesh`: `face_mesh` alone (it runs its own detector when it loses the face):
  the stricter comparison, reported too.

Fairness: the frames are decoded into RAM first (decoding is not timed for anyone); the BGR->RGB
conversion MediaPipe needs is timed as part of MediaPipe's frame (every OpenCV user pays it;
edgeaffect's own colour conversion is inside its call). The legacy MediaPipe API has no
thread setting, so the whole process is pinned to one CPU core (`sched_setaffinity`) unless
disabled, and OpenCV is set to one thread; edgeaffect runs its interpreters with one thread.
Rounds alternate the order of the contenders (A B C, B C A, C A B, ...) so that drifting
background load hits all of them alike. fps = frames / summed per-frame wall time; process
CPU ms per frame (os.times) is reported too. The first `warmup` frames of each contender
are processed but not measured.
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

GOAL_RATIO = 1.5


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


def mediapipe_contenders(mp: Any, both: bool = True) -> list[Contender]:
    import cv2

    out = []
    fm_kw = {"static_image_mode": False, "max_num_faces": 1, "refine_landmarks": False,
             "min_detection_confidence": 0.5, "min_tracking_confidence": 0.5}
    if both:
        det = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
        mesh = mp.solutions.face_mesh.FaceMesh(**fm_kw)

        def p_both(img: np.ndarray, ts: float) -> bool:
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            d = det.process(rgb)
            m = mesh.process(rgb)
            return bool(m.multi_face_landmarks) or bool(d.detections)

        def c_both() -> None:
            det.close()
            mesh.close()

        out.append(Contender("mediapipe_detection_mesh", "face_detection (short range) + face_mesh 468 points, every frame",
                             p_both, c_both, {"face_mesh": fm_kw, "face_detection": {"model_selection": 0}}))
    mesh2 = mp.solutions.face_mesh.FaceMesh(**fm_kw)

    def p_mesh(img: np.ndarray, ts: float) -> bool:
        m = mesh2.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        return bool(m.multi_face_landmarks)

    out.append(Contender("mediapipe_face_mesh", "face_mesh 468 points (own detector when not tracking)", p_mesh, mesh2.close,
                         {"face_mesh": fm_kw}))
    return out


def _pass(c: Contender, frames: list[np.ndarray], period_ms: float, skip: int) -> None:
    t_cpu = os.times()
    cpu0 = t_cpu.user + t_cpu.system
    n = 0
    for i, img in enumerate(frames):
        c.ts += period_ms
        t0 = time.perf_counter()
        found = c.process(img, c.ts)
        dt = (time.perf_counter() - t0) * 1000.0
        if i < skip:
            continue
        c.lat.append(dt)
        c.found.append(int(found))
        c.faces += int(found)
        n += 1
    t_cpu = os.times()
    # CPU of the warm-up frames is spread evenly (negligible for >= 100-frame passes)
    c.cpu_s += (t_cpu.user + t_cpu.system - cpu0) * (n / max(1, len(frames)))
    c.frames += n


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
                contenders += mediapipe_contenders(mp, include_detection_mesh)
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
    ratios = []
    ea = res.get("edgeaffect") or {}
    for name, label, primary in (("mediapipe_detection_mesh", "vs MediaPipe face detection + face mesh", True),
                                 ("mediapipe_face_mesh", "vs MediaPipe face mesh alone (stricter)", False)):
        m = res.get(name)
        if not m or not m.get("fps") or not ea.get("fps"):
            continue
        fr = ea["fps"] / m["fps"]
        cr = (m["process_cpu_ms_per_frame"] / ea["process_cpu_ms_per_frame"]) if ea.get("process_cpu_ms_per_frame") and m.get("process_cpu_ms_per_frame") else None
        ff = ea["fps_face_frames"] / m["fps_face_frames"] if ea.get("fps_face_frames") and m.get("fps_face_frames") else None
        ratios.append({"name": f"edgeaffect {label}", "vs": name, "fps_ratio": round(fr, 3),
                       "cpu_ratio": None if cr is None else round(cr, 3),
                       "fps_ratio_face_frames": None if ff is None else round(ff, 3),
                       "goal": GOAL_RATIO, "goal_met": fr >= GOAL_RATIO, "primary": primary})
    out["ratios"] = ratios
    out["method"] = ("same process and video, frames preloaded in RAM, process pinned to CPU "
                     f"{out.get('pinned_cpu')}, OpenCV 1 thread, edgeaffect num_threads=1 (MediaPipe's legacy API has no "
                     f"thread option); {rounds} rounds with rotating order; fps = frames / summed per-frame wall time; "
                     "MediaPipe's BGR->RGB conversion is included in its time")
    return out
