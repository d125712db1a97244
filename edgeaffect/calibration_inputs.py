"""Exact network inputs produced by the pipeline's own preprocessing, for calibration and
fidelity checks.

Quantisation ranges are only as good as the calibration data: a landmark net calibrated
on centred dataset crops will clip on the shifted, rotated crops tracking produces. So
the converter asks the pipeline itself: frames are run through detector -> landmark window
-> landmark net -> AU alignment -> temporal window, and every tensor fed to a network is
collected as it was fed. An optional NIR-like variant (mono, red-channel luminance, IR
contrast) is added for image models.

The networks used to *produce* the crops may be the shipped TFLite files or, when a model
is being converted for the first time, float ONNX files run with onnxruntime (the
[convert] extra) behind the same interface (`OnnxModelAdapter`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import EdgeAffectError
from .runtime.manifest import Manifest, TensorSpec

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


class OnnxModelAdapter:
    """Runs a float ONNX model with onnxruntime behind ModelRunner's interface (NHWC in)."""

    def __init__(self, path: str | Path, kind: str) -> None:
        import onnx
        import onnxruntime as ort

        self.path = Path(path)
        model = onnx.load(str(self.path))
        meta = {p.key: p.value for p in model.metadata_props}
        self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        shape = [int(d) for d in inp.shape]
        self._nchw = len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)
        tfl_shape = [shape[0], shape[2], shape[3], shape[1]] if self._nchw else shape
        outs = [TensorSpec(o.name, o.name, [int(d) for d in o.shape], "float32", onnx_index=i) for i, o in enumerate(self.session.get_outputs())]
        self.manifest = Manifest(
            name=self.path.stem, kind=meta.get("edgeaffect.kind", kind), variant="onnx-float32", file=self.path.name, sha256="",
            inputs=[TensorSpec(inp.name, inp.name, tfl_shape, "float32", "NHWC" if len(shape) == 4 else "")], outputs=outs, metadata=meta,
        )
        self._in = inp.name

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(inputs[0], np.float32)
        if self._nchw:
            x = x.transpose(0, 3, 1, 2)
        names = [o.name for o in self.manifest.outputs]
        return dict(zip(names, self.session.run(names, {self._in: x})))


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


def _runner(kind: str, onnx_models: dict[str, str | Path] | None, models_dir: Path | None) -> Any:
    from .models import ASSETS, find_model
    from .runtime.runner import ModelRunner

    if onnx_models and kind in onnx_models:
        return OnnxModelAdapter(onnx_models[kind], kind)
    return ModelRunner(find_model(Path(models_dir) if models_dir else ASSETS, kind))


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
    """Run the pipeline's preprocessing over `source` and return the float inputs fed to each
    network: 'detector' [N,128,128,3], 'landmarks' [N,S,S,1], 'au' [N,S,S,1], 'temporal' [N,T,F].

    Tracking is used exactly as at run time (re-detect when the landmark net says invalid),
    so landmark crops include tracking-shifted windows, not only detector windows.
    """
    from .models.affect import AffectWindow, frame_features
    from .models.aus import AUModel
    from .models.detector import FaceDetector
    from .models.landmarks import LandmarkModel
    from .tracking import window_from_detection
    from .vision.alignment import crop, window_from_landmarks
    from .vision.frames import normalise_frame

    sources = [source] if isinstance(source, (str, Path)) else list(source)
    want = set(kinds)
    det = FaceDetector(_runner("detector", onnx_models, models_dir))
    lm = LandmarkModel(_runner("landmarks", onnx_models, models_dir)) if want & {"landmarks", "au", "temporal"} else None
    au = AUModel(_runner("au", onnx_models, models_dir)) if want & {"au", "temporal"} else None
    t_len = None
    if "temporal" in want:
        tr = _runner("temporal", onnx_models, models_dir)
        t_len = int(tr.manifest.inputs[0].shape[1])
    out: dict[str, list[np.ndarray]] = {k: [] for k in want}
    for src in sources:
        variants = [False, True] if nir_variant else [False]
        for nir in variants:
            window = AffectWindow(t_len) if t_len else None
            prev = None
            for i, bgr in enumerate(_iter_frames(src, max_frames)):
                if nir:
                    bgr = _nir(bgr)
                nf = normalise_frame(bgr)
                if "detector" in want:
                    out["detector"].append(det.preprocess(nf.bgr)[0][0])
                if lm is None:
                    continue
                res = None
                if prev is not None:
                    w = window_from_landmarks(prev)
                    res = lm.run(nf.gray, w)
                    if "landmarks" in want:
                        out["landmarks"].append(crop(nf.gray, w.to_crop_matrix(lm.size), lm.size)[:, :, None].astype(np.float32) / 255.0)
                    if res.validity < 0.5:
                        res = None
                if res is None:
                    dets = det.detect(nf.bgr, max_faces=1)
                    if dets:
                        w = window_from_detection(dets[0])
                        res = lm.run(nf.gray, w)
                        if "landmarks" in want:
                            out["landmarks"].append(crop(nf.gray, w.to_crop_matrix(lm.size), lm.size)[:, :, None].astype(np.float32) / 255.0)
                        if res.validity < 0.5:
                            res = None
                prev = res.points if res is not None else None
                aus = None
                if res is not None and au is not None:
                    patch = au.crop(nf.gray, res.points)
                    if "au" in want:
                        out["au"].append(patch[:, :, None].astype(np.float32) / 255.0)
                    aus = au.infer(patch)
                if window is not None:
                    window.push(frame_features(res.points, res.sigma_norm, aus) if res is not None else frame_features(None, None, None))
                    if i % temporal_stride == 0 and len(window) >= min(16, window.length):
                        out["temporal"].append(window.array())
    result = {}
    rng = np.random.default_rng(0)
    for k, v in out.items():
        if not v:
            raise EdgeAffectError(f"calibration source produced no {k} inputs (no faces found?): give a video or folder with visible faces")
        arr = np.stack(v).astype(np.float32)
        if len(arr) > max_per_kind:
            arr = arr[np.sort(rng.choice(len(arr), max_per_kind, replace=False))]
        result[k] = arr
    return result


def describe(inputs: dict[str, np.ndarray], source: Any, nir_variant: bool) -> str:
    return json.dumps({k: list(v.shape) for k, v in inputs.items()}) + f" from {source} (pipeline preprocessing{', +NIR-like variant' if nir_variant else ''})"
