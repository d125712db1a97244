"""BlazeFace face detectors (MediaPipe's models, converted by this project): short or full range.

Short range: input 128x128 RGB in [-1, 1] (we letterbox the frame to a square first so faces
keep their aspect), 896 anchors x 16 regressors (box + 6 keypoints) and 896 logits; anchors as
in MediaPipe's face_detection_short_range graph (strides 8,16,16,16, two anchors per layer
and cell, fixed size). Full range (`face_detection_full_range`, far faces: kiosks, lecterns):
input 192x192, 2304 anchors (stride 4, one anchor per cell: 48x48). The layout comes from the
manifest's `edgeaffect.anchors` metadata when the converter wrote it, else from the model's
input size and anchor count. Decoding: sigmoid scores, weighted non-maximum suppression,
all in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import ModelError
from ..runtime.runner import ModelRunner
from ._meta import meta

INPUT_SIZE = 128  # short range
#: Face width (model-input pixels) from which BlazeFace finds faces reliably: on the far-face
#: composites (models/detector_full/eval_far_faces.json) both models find >= 90 % of faces that
#: reach ~18 px at their input, and lose most below ~10 px. The small-face search sizes its tiles
#: so that the smallest face it is asked for reaches this width.
RELIABLE_FACE_PX = 18.0
#: Smallest face (frame pixels) the full-range model's small-face search is sized for by default
#: (issue 9: kiosks, lecterns: faces of ~40 px and up). Short range keeps its short-side tiles.
FULL_RANGE_SMALL_FACE_PX = 40.0

#: How much larger than the frame the zoomed-out search pass's square is (FaceDetector.detect_zoomed_out).
ZOOM_OUT = 2.0

#: MediaPipe's SSD anchor layouts (face_detection_{short,full}_range graphs).
SHORT_RANGE = {"input_size": 128, "strides": [8, 16, 16, 16], "anchors_per_stride": 2}
FULL_RANGE = {"input_size": 192, "strides": [4], "anchors_per_stride": 1}


def ssd_anchors(size: int = INPUT_SIZE, strides: tuple[int, ...] | list[int] = (8, 16, 16, 16), anchors_per_stride: int = 2) -> np.ndarray:
    """[N, 2] float64 anchor centres in [0, 1] (fixed anchor size 1.0 as in MediaPipe's config).
    `anchors_per_stride`: 2 with an interpolated-scale anchor (short range), 1 without (full range)."""
    anchors = []
    i = 0
    while i < len(strides):
        s = strides[i]
        n_per_cell = 0
        while i < len(strides) and strides[i] == s:
            n_per_cell += anchors_per_stride  # aspect ratio 1.0 (+ the interpolated-scale anchor)
            i += 1
        g = int(np.ceil(size / s))
        for y in range(g):
            for x in range(g):
                for _ in range(n_per_cell):
                    anchors.append(((x + 0.5) / g, (y + 0.5) / g))
    return np.array(anchors, np.float64)


ANCHORS = ssd_anchors()  # short range


def letterbox_warp(bgr: np.ndarray, m: np.ndarray, size: int, flags: int) -> np.ndarray:
    """`cv2.warpAffine(bgr, m, (size, size), flags, constant black border)` for a letterbox `m`
    (scale + shift: the image lands at (m[0, 2], m[1, 2]), scaled by m[0, 0]), warping only the
    band that holds the image: on a 16:9 frame ~44 % of the square is padding, which the full
    warp computes pixel by pixel. Outside the band (2 px of margin past the image edge: bilinear
    reads one pixel beyond) the output is exactly the border's 0; inside, the band warp's
    shifted matrix gives the same pixels (tested over random frame sizes)."""
    (sx, _, x0), (_, sy, y0) = np.asarray(m, np.float64).tolist()
    h, w = bgr.shape[:2]
    r0, r1 = max(math.floor(y0) - 2, 0), min(math.ceil(y0 + h * sy) + 2, size)
    c0, c1 = max(math.floor(x0) - 2, 0), min(math.ceil(x0 + w * sx) + 2, size)
    if (r1 - r0) * (c1 - c0) >= size * size:
        return cv2.warpAffine(bgr, m, (size, size), flags=flags, borderValue=0)
    out = np.zeros((size, size, *bgr.shape[2:]), np.uint8)
    band = m.copy()
    band[0, 2] -= c0
    band[1, 2] -= r0
    cv2.warpAffine(bgr, band, (c1 - c0, r1 - r0), dst=out[r0:r1, c0:c1], flags=flags, borderMode=cv2.BORDER_CONSTANT,
                   borderValue=0)
    return out


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in frame pixels
    score: float
    keypoints: np.ndarray  # [6, 2] float64: right eye, left eye, nose tip, mouth, right ear, left ear (image-left first for eyes)

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


def iou_many(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`iou(a, b_k)` for every row of `b` ([N, 4] x, y, w, h), with the same float64 operations in
    the same order as `iou` (so the same values, bit for bit)."""
    iw = np.maximum(0.0, np.minimum(a[0] + a[2], b[:, 0] + b[:, 2]) - np.maximum(a[0], b[:, 0]))
    ih = np.maximum(0.0, np.minimum(a[1] + a[3], b[:, 1] + b[:, 3]) - np.maximum(a[1], b[:, 1]))
    inter = iw * ih
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    out = np.zeros(len(b), np.float64)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def strongest_of_overlaps(dets: list[Detection], iou_threshold: float) -> list[Detection]:
    """Detections by falling score (stable: equal scores keep their order), each kept only when
    it overlaps no stronger kept one by `iou_threshold` or more: one hit per face when tiles or
    passes see the same face twice."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, k.box) < iou_threshold for k in kept):
            kept.append(d)
    return kept


def decode_ssd(reg: np.ndarray, logits: np.ndarray, anchors: np.ndarray, size: int, score_threshold: float,
               nms_threshold: float, max_faces: int | None = None, *, scale: float = 1.0, px: float = 0.0,
               py: float = 0.0) -> list[Detection]:
    """BlazeFace's SSD decoding, shared by the runtime and the converters' anchor gate: sigmoid
    scores, anchor-relative boxes and keypoints, then MediaPipe's weighted NMS.

    Boxes and keypoints come out in model-input pixels, or in frame pixels when the input was the
    frame scaled by 1/`scale` and shifted by (`px`, `py`) (the letterbox). float64 throughout:
    numpy's float32 exp differs in the last bit between x86_64 and aarch64 on ~40 % of inputs,
    and that noise used to reach the crops (issue 13)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float64), -60, 60)))
    keep = np.flatnonzero(scores >= score_threshold)
    if keep.size == 0:
        return []
    r = np.asarray(reg, np.float64)[keep] / size
    a = anchors[keep]
    cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1) * size
    kps = (r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]) * size
    # back to frame pixels
    boxes[:, :2] = boxes[:, :2] * scale - np.array([px, py])
    boxes[:, 2:] *= scale
    kps = kps * scale - np.array([px, py])
    return weighted_nms(boxes, kps, scores[keep], nms_threshold, max_faces)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, nms_threshold: float,
                 max_faces: int | None = None) -> list[Detection]:
    """MediaPipe's weighted NMS: each group (the best remaining box and every remaining box
    overlapping it by more than `nms_threshold`) becomes one score-weighted mean box. The
    overlaps are computed for a whole group at once (`iou_many`: the same float64 operations
    as `iou`, so the same groups), not pair by pair in Python."""
    order = np.argsort(-scores, kind="stable")
    dets: list[Detection] = []
    remaining = order
    while remaining.size:
        i = remaining[0]
        overlap = iou_many(boxes[i], boxes[remaining]) > nms_threshold
        overlap[0] = True  # the box itself (iou 1, or 0 for a degenerate box: it still leads its group)
        group = remaining[overlap]
        remaining = remaining[~overlap]
        wts = scores[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
        dets.append(Detection(tuple(float(v) for v in box), float(scores[i]), kp))
        if max_faces is not None and len(dets) >= max_faces:
            break
    return dets


def anchor_layout(manifest: Any, size: int, n_anchors: int) -> dict[str, Any]:
    """The model's SSD anchor layout: its manifest's `edgeaffect.anchors` metadata when present,
    else MediaPipe's short- or full-range layout recognised from input size and anchor count."""
    m = meta(manifest, "edgeaffect.anchors", {})
    if isinstance(m, dict) and m.get("strides"):
        return {"input_size": int(m.get("input_size", size)), "strides": [int(v) for v in m["strides"]],
                "anchors_per_stride": int(m.get("anchors_per_stride", 2))}
    for layout in (SHORT_RANGE, FULL_RANGE):
        if size == layout["input_size"] and n_anchors == len(ssd_anchors(size, layout["strides"], layout["anchors_per_stride"])):
            return dict(layout)
    raise ModelError(f"{manifest.file}: a {size}x{size} detector with {n_anchors} anchors is neither BlazeFace short "
                     "range (128, 896) nor full range (192, 2304), and its manifest has no edgeaffect.anchors layout")


class FaceDetector:
    def __init__(self, runner: ModelRunner, score_threshold: float = 0.5, nms_threshold: float = 0.3,
                 small_face_px: float | None = None) -> None:
        """`small_face_px`: the smallest face (frame pixels) `detect_tiled` is sized for; None: the
        model's default (full range FULL_RANGE_SMALL_FACE_PX; short range its short-side tiles)."""
        self.runner = runner
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        outs = runner.manifest.outputs
        names = [o.name for o in outs]
        by_width = {int(o.shape[-1]): o.name for o in outs}
        self._reg = next((n for n in names if "regress" in n), by_width.get(16, names[0]))
        self._cls = next((n for n in names if "classif" in n), by_width.get(1, names[-1]))
        shape = list(runner.manifest.inputs[0].shape)
        self._nchw = shape[1] == 3
        self.size = int(shape[2] if self._nchw else shape[1])
        n_anchors = int(next(o.shape for o in outs if o.name == self._reg)[1])
        self.layout = anchor_layout(runner.manifest, self.size, n_anchors)
        self.anchors = ssd_anchors(self.size, self.layout["strides"], self.layout["anchors_per_stride"])
        if len(self.anchors) != n_anchors:
            raise ModelError(f"{runner.manifest.file}: {n_anchors} anchors in the output, but the anchor layout "
                             f"{self.layout} gives {len(self.anchors)}")
        if small_face_px is not None and not small_face_px > 0:
            raise ModelError(f"small_face_px must be > 0 (frame pixels), got {small_face_px}")
        self.small_face_px = small_face_px if small_face_px is not None else (FULL_RANGE_SMALL_FACE_PX if self.full_range else None)

    @property
    def full_range(self) -> bool:
        return self.layout["strides"] == FULL_RANGE["strides"]

    def preprocess(self, bgr: np.ndarray, zoom_out: float = 1.0) -> tuple[np.ndarray, float, float, float]:
        """Letterbox to square, resize to the model's size, RGB in [-1, 1]. Returns (input, scale, pad_x, pad_y).
        `bgr` may also be an HxW grey frame (a mono sensor): it is warped as one channel and
        then tripled, which gives the input its BGR copy would (each channel warps alike).
        `zoom_out` > 1: the square is that much larger than the frame's long side, so the frame
        sits smaller in the middle of a black canvas (see `detect_zoomed_out`)."""
        h, w = bgr.shape[:2]
        size = self.size
        side = max(h, w) * max(float(zoom_out), 1.0)
        px, py = (side - w) / 2.0, (side - h) / 2.0
        m = np.array([[size / side, 0, px * size / side], [0, size / side, py * size / side]], np.float32)
        img = letterbox_warp(bgr, m, size, cv2.INTER_AREA if side > 2 * size else cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB if img.ndim == 2 else cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        x = rgb[None]
        if self._nchw:
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x), side / size, px, py

    def detect(self, bgr: np.ndarray, max_faces: int = 8, zoom_out: float = 1.0) -> list[Detection]:
        x, scale, px, py = self.preprocess(bgr, zoom_out)
        out = self.runner.run(x)
        return self.decode(out[self._reg][0], out[self._cls][0, :, 0], scale, px, py, max_faces)

    def detect_zoomed_out(self, bgr: np.ndarray, max_faces: int = 8) -> list[Detection]:
        """Detection with the frame at half size in the middle of the model's input.

        The shipped full-int8 short-range model scores large, frame-filling faces low (its
        stride-16 logits sit ~0.9 below MediaPipe's float model's) and misses some outright,
        e.g. LFW-style crops where the face is ~half the frame; at half size the same faces
        fall on the stride-8 anchors and score 0.6-0.9. The tracker runs this pass only while
        searching (nothing tracked, no strong hit on the whole frame)."""
        return self.detect(bgr, max_faces, zoom_out=ZOOM_OUT)

    def tiles(self, h: int, w: int) -> list[tuple[int, int, int]]:
        """(x0, y0, side) of the square tiles `detect_tiled` runs on for an h x w frame.

        Without `small_face_px`: tiles of the short side along the long one (a near-square frame:
        a 2x2 grid of 0.6 x the short side). With it: first tiles of side
        input_size * small_face_px / RELIABLE_FACE_PX (so such a face reaches the model's reliable
        width), never below the input size nor above the short side, overlapping by at least
        2 small faces so a face on a tile border is whole in one tile; then, on a frame much
        larger than those tiles (a photo), one grid per octave up to the short-side tiles, each
        overlapping by twice the smallest face it is for, so that faces between the small ones
        and those the whole frame sees (a 280-px face in a 1434x2333 portrait) are whole on some
        tile at a size the model finds.
        """
        short = min(h, w)
        default = self.short_side_tile(h, w)

        def grid(side: int, overlap: float) -> list[tuple[int, int, int]]:
            def starts(dim: int) -> np.ndarray:
                if dim <= side:
                    return np.zeros(1, int)
                n = int(np.ceil((dim - overlap) / (side - overlap)))
                return np.linspace(0, dim - side, max(n, 2)).astype(int)  # linspace spreads the overlap

            return [(int(x0), int(y0), side) for y0 in starts(h) for x0 in starts(w)]

        if self.small_face_px is None:
            return grid(default, 0.0)
        want = int(round(self.size * self.small_face_px / RELIABLE_FACE_PX))
        side = max(min(want, default), min(self.size, short))
        out = grid(side, min(2 * self.small_face_px, side / 2))
        levels = [2 * side]
        while levels[-1] * 2 < default:
            levels.append(levels[-1] * 2)
        levels = [v for v in levels if v < default] + ([default] if default >= 1.5 * side else [])
        for level in levels:  # each overlaps by twice the smallest face it finds reliably
            out += grid(level, min(2 * level * RELIABLE_FACE_PX / self.size, level / 2))
        return out

    @staticmethod
    def short_side_tile(h: int, w: int) -> int:
        """Side of the default tiles: the short side along the long one (0.6 x it on a near-square frame: a 2x2 grid)."""
        short, long_side = min(h, w), max(h, w)
        return short if long_side >= 1.2 * short else int(0.6 * short)

    def detect_tiled(self, bgr: np.ndarray, max_faces: int = 8, small_tile_score: float | None = None) -> list[Detection]:
        """Detection on overlapping square tiles (see `tiles`).

        The model sees the whole frame at its input size (128 or 192 px), so a face under ~1/8
        (short range) or ~1/12 (full range) of the frame side - a speaker on a stage, a kiosk
        user 2-3 m away - is too small for it. Tiles shrink the downscale; used only while
        searching (nothing tracked), since it costs one detector run per tile.
        `small_tile_score`: the score a hit on a tile smaller than the short-side tiles needs (the
        small-face grids: many tiles, so more chances for clutter; a face there is small and the
        models score small faces high, where the int8 short-range model scores a tile-filling face
        as low as 0.57, Colin_Powell_0224 on a 640x480 frame).
        """
        h, w = bgr.shape[:2]
        default = self.short_side_tile(h, w)
        pool: list[Detection] = []
        for x0, y0, side in self.tiles(h, w):
            off = np.array([x0, y0], np.float64)
            floor = small_tile_score if (small_tile_score is not None and side != default) else -1.0
            for d in self.detect(bgr[y0 : y0 + side, x0 : x0 + side], max_faces):
                if d.score < floor:
                    continue
                pool.append(Detection((d.box[0] + float(x0), d.box[1] + float(y0), d.box[2], d.box[3]), d.score, d.keypoints + off))
        return strongest_of_overlaps(pool, self.nms_threshold)[:max_faces]  # a face seen by two tiles: the stronger hit

    def decode(self, reg: np.ndarray, logits: np.ndarray, scale: float, px: float, py: float, max_faces: int) -> list[Detection]:
        """Detections in frame pixels (the model input was the frame scaled by 1/`scale` and shifted by (px, py))."""
        return decode_ssd(reg, logits, self.anchors, self.size, self.score_threshold, self.nms_threshold, max_faces,
                          scale=scale, px=px, py=py)
