"""BlazeFace short-range face detector (MediaPipe's model, converted by this project).

Input 128x128 RGB in [-1, 1] (we letterbox the frame to a square first so faces keep their
aspect), outputs 896 anchors x 16 regressors (box + 6 keypoints) and 896 logits. Decoding
follows MediaPipe's face_detection_short_range graph: SSD anchors (strides 8,16,16,16,
fixed size), sigmoid scores, weighted non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..runtime.runner import ModelRunner

INPUT_SIZE = 128


def ssd_anchors(size: int = INPUT_SIZE, strides: tuple[int, ...] = (8, 16, 16, 16)) -> np.ndarray:
    """[896, 2] anchor centres in [0, 1] (fixed anchor size 1.0 as in MediaPipe's config)."""
    anchors = []
    i = 0
    while i < len(strides):
        s = strides[i]
        n_per_cell = 0
        while i < len(strides) and strides[i] == s:
            n_per_cell += 2  # aspect ratio 1.0 + the interpolated-scale anchor
            i += 1
        g = int(np.ceil(size / s))
        for y in range(g):
            for x in range(g):
                for _ in range(n_per_cell):
                    anchors.append(((x + 0.5) / g, (y + 0.5) / g))
    return np.array(anchors, np.float32)


ANCHORS = ssd_anchors()


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in frame pixels
    score: float
    keypoints: np.ndarray  # [6, 2]: right eye, left eye, nose tip, mouth, right ear, left ear (image-left first for eyes)

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.keypoints[0], self.keypoints[1]


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax1, ay1, ax2, ay2 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx1, by1, bx2, by2 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class FaceDetector:
    def __init__(self, runner: ModelRunner, score_threshold: float = 0.5, nms_threshold: float = 0.3) -> None:
        self.runner = runner
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        names = [o.name for o in runner.manifest.outputs]
        self._reg = next(n for n in names if "regress" in n)
        self._cls = next(n for n in names if "classif" in n)
        self._nchw = runner.manifest.inputs[0].shape[1] == 3

    def preprocess(self, bgr: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Letterbox to square, resize to 128, RGB in [-1, 1]. Returns (input, scale, pad_x, pad_y)."""
        h, w = bgr.shape[:2]
        side = max(h, w)
        px, py = (side - w) / 2.0, (side - h) / 2.0
        m = np.array([[INPUT_SIZE / side, 0, px * INPUT_SIZE / side], [0, INPUT_SIZE / side, py * INPUT_SIZE / side]], np.float32)
        img = cv2.warpAffine(bgr, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_AREA if side > 2 * INPUT_SIZE else cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        x = rgb[None]
        if self._nchw:
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x), side / INPUT_SIZE, px, py

    def detect(self, bgr: np.ndarray, max_faces: int = 8) -> list[Detection]:
        x, scale, px, py = self.preprocess(bgr)
        out = self.runner.run(x)
        return self.decode(out[self._reg][0], out[self._cls][0, :, 0], scale, px, py, max_faces)

    def detect_tiled(self, bgr: np.ndarray, max_faces: int = 8) -> list[Detection]:
        """Detection on overlapping square tiles along the frame's long side.

        The short-range model sees the whole frame at 128 px, so a face under ~1/8 of the
        frame side (a speaker on a stage, a driver far from a wide-angle camera) is too
        small for it. Square tiles of the short side halve or third the downscale; used
        only when the whole-frame pass finds nothing (it costs one detector run per tile).
        """
        h, w = bgr.shape[:2]
        short, long_side = min(h, w), max(h, w)
        side = short if long_side >= 1.2 * short else int(0.6 * short)  # near-square: a 2x2 grid

        def starts(dim: int) -> np.ndarray:
            n = 1 if dim <= side else int(np.ceil(dim / side))  # linspace spreads the overlap
            return np.linspace(0, dim - side, n).astype(int)

        found: list[Detection] = []
        for y0 in starts(h):
            for x0 in starts(w):
                off = np.array([x0, y0], np.float32)
                for d in self.detect(bgr[y0 : y0 + side, x0 : x0 + side], max_faces):
                    box = (d.box[0] + float(x0), d.box[1] + float(y0), d.box[2], d.box[3])
                    if all(iou(box, f.box) < self.nms_threshold for f in found):
                        found.append(Detection(box, d.score, d.keypoints + off))
        found.sort(key=lambda d: -d.score)
        return found[:max_faces]

    def decode(self, reg: np.ndarray, logits: np.ndarray, scale: float, px: float, py: float, max_faces: int) -> list[Detection]:
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
        keep = np.flatnonzero(scores >= self.score_threshold)
        if keep.size == 0:
            return []
        r = reg[keep] / INPUT_SIZE
        a = ANCHORS[keep]
        cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
        w, h = r[:, 2], r[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1) * INPUT_SIZE
        kps = (r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]) * INPUT_SIZE
        # back to frame pixels
        boxes[:, :2] = boxes[:, :2] * scale - np.array([px, py])
        boxes[:, 2:] *= scale
        kps = kps * scale - np.array([px, py])
        return self._weighted_nms(boxes, kps, scores[keep], max_faces)

    def _weighted_nms(self, boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, max_faces: int) -> list[Detection]:
        order = np.argsort(-scores)
        dets: list[Detection] = []
        used = np.zeros(len(order), bool)
        for oi, i in enumerate(order):
            if used[oi]:
                continue
            group = [j for oj, j in enumerate(order) if not used[oj] and iou(tuple(boxes[i]), tuple(boxes[j])) > self.nms_threshold]
            for oj, j in enumerate(order):
                if j in group:
                    used[oj] = True
            wts = scores[group][:, None]
            box = (boxes[group] * wts).sum(0) / wts.sum()
            kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
            dets.append(Detection(tuple(float(v) for v in box), float(scores[i]), kp.astype(np.float32)))
            if len(dets) >= max_faces:
                break
        return dets
