"""Exact network inputs produced by the pipeline's own preprocessing, for calibration and
fidelity checks.

Quantisation ranges are only as good as the calibration data: a landmark net calibrated
on centred dataset crops will clip on the shifted, rotated crops tracking produces. So
the converter asks the pipeline itself: frames are run through the Analyzer (detector ->
tracking -> landmark net -> AU alignment -> temporal window), and every tensor fed to a
network is collected as it was fed. An optional NIR-like variant (mono, red-channel luminance, IR
contrast) is added for image models.

The networks used to *produce* the crops may be the shipped TFLite files or, when a model
is being converted for the first time, float ONNX files run with onnxruntime (the
[convert] extra) behind the same interface (`runtime.onnx_float.OnnxModelAdapter`); either
way they run inside the real Analyzer, observed by recording wrapper runners.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import EdgeAffectError
from .runtime.onnx_float import OnnxModelAdapter

__all__ = ["OnnxModelAdapter", "collect_model_inputs", "describe"]

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def _iter_frames(source: str | Path, max_frames: int) -> Iterator[np.ndarray]:
    p = Path(source)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        for f in files[:max_frames]:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                yield img
        return
    if p.suffix.lower() in VIDEO_EXTS:
        cap = cv2.VideoCapture(str(p))
        if not cap.isOpened():
            raise EdgeAffectError(f"calibration source {p} cannot be opened as a video")
        n = 0
        while n < max_frames:
            ok, img = cap.read()
            if not ok:
                break
            n += 1
            yield img
        cap.release()
        return
    if p.suffix.lower() in IMAGE_EXTS:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            yield img
        return
    raise EdgeAffectError(f"calibration source {p}: expected a video, an image folder or an image")


def _nir(bgr: np.ndarray) -> np.ndarray:
    from .demo import nir_like

    return cv2.cvtColor(nir_like(bgr, 0.0), cv2.COLOR_GRAY2BGR)


def collect_model_inputs(
    source: str | Path | Sequence[str | Path],
    kinds: Sequence[str],
    max_per_kind: int = 500,
    nir_variant: bool = False,
    onnx_models: dict[str, str | Path] | None = None,
    models_dir: Path | None = None,
    max_frames: int = 2000,
    temporal_stride: int = 2,
) -> dict[str, np.ndarray]:
    """Run the real analyzer over `source` and return the float inputs fed to each network:
    'detector' [N,128,128,3], 'landmarks' [N,S,S,1], 'au' [N,S,S,1], 'temporal' [N,T,F].

    The networks' inputs are recorded by wrapper runners (edgeaffect.runtime.wrappers) around
    the analyzer's own runners, so landmark crops include tracking-shifted and refinement
    windows exactly as at run time, and temporal windows are what the network is fed (every
    `temporal_stride`-th call). Detector inputs are the whole frame as the detector
    preprocesses it, every frame (while tracking, the analyzer itself rarely detects).
    `onnx_models`: module -> float .onnx used instead of a TFLite file (a network converted
    for the first time).
    """
    from .analyzer import Analyzer, AnalyzerOptions, RunningMode
    from .models.detector import FaceDetector
    from .registry import lookup
    from .runtime.factory import BaseOptions, RunnerFactory
    from .runtime.wrappers import InputRecorder
    from .vision.frames import normalise_frame

    sources = [source] if isinstance(source, (str, Path)) else list(source)
    want = {lookup(k).name for k in kinds}
    recorder = InputRecorder(want - {"detector"}, every={"temporal": temporal_stride})
    base = BaseOptions(models_dir=Path(models_dir) if models_dir else None, model_files=dict(onnx_models or {}),
                       wrappers=[recorder.wrap])
    factory = RunnerFactory(base)
    det = FaceDetector(factory.runner("detector"))
    an = None
    if want - {"detector"}:
        opts = AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=1, base_options=base,
                               enable_aus=bool(want & {"au", "temporal"}), enable_affect="temporal" in want)
        an = Analyzer(opts, runner_factory=factory)
    out: dict[str, list[np.ndarray]] = {"detector": []}
    for src in sources:
        for nir in [False, True] if nir_variant else [False]:
            if an is not None:
                an.reset()
            for i, bgr in enumerate(_iter_frames(src, max_frames)):
                if nir:
                    bgr = _nir(bgr)
                if "detector" in want:
                    out["detector"].append(det.preprocess(normalise_frame(bgr).bgr)[0][0])
                if an is not None:
                    an.process(bgr, (i + 1) * 1000.0 / 30.0)
    out.update(recorder.inputs)
    result = {}
    rng = np.random.default_rng(0)
    for k in sorted(want):
        v = out.get(k) or []
        if not v:
            raise EdgeAffectError(f"calibration source produced no {k} inputs (no faces found?): give a video or folder with visible faces")
        arr = np.stack(v).astype(np.float32)
        if len(arr) > max_per_kind:
            arr = arr[np.sort(rng.choice(len(arr), max_per_kind, replace=False))]
        result[k] = arr
    return result


def describe(inputs: dict[str, np.ndarray], source: Any, nir_variant: bool) -> str:
    return json.dumps({k: list(v.shape) for k, v in inputs.items()}) + f" from {source} (pipeline preprocessing{', +NIR-like variant' if nir_variant else ''})"
