"""Anchor-level fidelity gate for SSD-style face detectors (BlazeFace short and full range).

Raw SNR on the regressor tensor is the wrong test for a detector: most of its anchors are
far from any face and regress to meaningless values that the application never reads, and
a few of those set the int8 range. What matters is whether the quantised model reports the
same faces: so both outputs are decoded the way the runtime does it (SSD anchors, sigmoid
scores, weighted non-maximum suppression, float64: the runtime's decoder itself), and the decoded detections of the float
and the quantised model are matched per held-out frame.

Gate (Budget.det_*): detection recall and precision of the quantised model against the float
one (a float detection above the score threshold must be found by the quantised model above
threshold - `DET_MARGIN`, and the other way round, so a score sitting on the threshold does
not count as a disagreement twice), mean IoU of matched boxes, and mean absolute score error
of matched detections.

Anchors: the manifest metadata key `edgeaffect.anchors` (JSON: input_size, strides,
anchors_per_stride, score_threshold), else inferred from the anchor count (896: BlazeFace
short range 128 px; 2304: full range 192 px).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

# One anchor generator and one set of layouts for the runtime and its gate (converters imports
# edgeaffect, never the reverse).
from edgeaffect.models.detector import FULL_RANGE, SHORT_RANGE, decode_ssd, ssd_anchors

#: Hysteresis on the score threshold when matching (see the module docstring).
DET_MARGIN = 0.1
MATCH_IOU = 0.5

KNOWN_ANCHORS = {
    896: {**SHORT_RANGE, "score_threshold": 0.5},
    2304: {**FULL_RANGE, "score_threshold": 0.6},
}

__all__ = ["DET_MARGIN", "KNOWN_ANCHORS", "MATCH_IOU", "anchor_config", "anchor_gate", "decode", "ssd_anchors"]


def anchor_config(metadata: dict[str, Any], n_anchors: int) -> dict[str, Any] | None:
    cfg = metadata.get("edgeaffect.anchors")
    if isinstance(cfg, str):
        try:
            cfg = json.loads(cfg)
        except json.JSONDecodeError:
            cfg = None
    if isinstance(cfg, dict):
        return cfg
    return KNOWN_ANCHORS.get(n_anchors)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of [N,4] and [M,4] boxes given as (x0, y0, x1, y1)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def decode(reg: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_size: int, threshold: float,
           nms_iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [K,4] x0,y0,x1,y1 in input-image fractions, scores [K]): the runtime's own decoder
    (`edgeaffect.models.detector.decode_ssd`, weighted NMS), so the gate judges what the device reports."""
    dets = decode_ssd(reg, logits, anchors, input_size, threshold, nms_iou)
    if not dets:
        return np.zeros((0, 4)), np.zeros(0)
    xywh = np.array([d.box for d in dets], np.float64) / input_size
    boxes = np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]
    return boxes, np.array([d.score for d in dets], np.float64)


def _match(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by IoU >= MATCH_IOU: [(i in a, j in b, iou)]."""
    m = _iou_matrix(a, b)
    pairs = []
    while m.size and m.max() >= MATCH_IOU:
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        pairs.append((int(i), int(j), float(m[i, j])))
        m[i, :] = -1
        m[:, j] = -1
    return pairs


def anchor_gate(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], metadata: dict[str, Any], budget) -> tuple[dict[str, Any], list[str]]:
    """(metrics, failures) of decoded-detection agreement, quantised vs float, on held-out frames."""
    names = list(ref)
    score = next((n for n in names if ref[n].ndim == 3 and ref[n].shape[-1] == 1), None)
    if score is None:
        return {}, ["detector: no [N,A,1] score output to decode"]
    n_anc = ref[score].shape[1]
    reg = next((n for n in names if n != score and ref[n].ndim == 3 and ref[n].shape[1] == n_anc and ref[n].shape[-1] >= 4), None)
    cfg = anchor_config(metadata, n_anc)
    if reg is None or cfg is None:
        return {}, [f"detector: cannot decode {n_anc} anchors (no edgeaffect.anchors metadata and not a known BlazeFace layout)"]
    anchors = ssd_anchors(int(cfg["input_size"]), list(cfg["strides"]), int(cfg["anchors_per_stride"]))
    if len(anchors) != n_anc:
        return {}, [f"detector: anchor config gives {len(anchors)} anchors, the model has {n_anc}"]
    thr, size = float(cfg["score_threshold"]), int(cfg["input_size"])
    n_float = n_quant = found = kept = 0
    ious, score_err, frames_same_count = [], [], 0
    for k in range(ref[score].shape[0]):
        fb, fs = decode(ref[reg][k], ref[score][k, :, 0], anchors, size, thr - DET_MARGIN)
        qb, qs = decode(got[reg][k], got[score][k, :, 0], anchors, size, thr - DET_MARGIN)
        f_hi, q_hi = fs >= thr, qs >= thr
        n_float += int(f_hi.sum())
        n_quant += int(q_hi.sum())
        frames_same_count += int(f_hi.sum() == q_hi.sum())
        pairs = _match(fb, qb)
        for i, j, iou in pairs:
            if f_hi[i]:
                found += 1
                ious.append(iou)
                score_err.append(abs(fs[i] - qs[j]))
            if q_hi[j]:
                kept += 1
    frames = int(ref[score].shape[0])
    recall = found / n_float if n_float else None
    precision = kept / n_quant if n_quant else None
    m = {
        "frames": frames, "detections_float": n_float, "detections_quantised": n_quant,
        "recall": None if recall is None else round(recall, 4),
        "precision": None if precision is None else round(precision, 4),
        "mean_iou": round(float(np.mean(ious)), 4) if ious else None,
        "p05_iou": round(float(np.percentile(ious, 5)), 4) if ious else None,
        "score_mae": round(float(np.mean(score_err)), 4) if score_err else None,
        "frames_same_face_count": round(frames_same_count / max(frames, 1), 4),
        "score_threshold": thr, "threshold_margin": DET_MARGIN, "match_iou": MATCH_IOU,
    }
    fails = []
    if n_float == 0:
        fails.append("detector: the float model finds no face on the held-out frames; the anchor gate needs frames with faces")
    else:
        if recall is not None and recall < budget.det_recall:
            fails.append(f"detector: decoded-detection recall {recall:.3f} < {budget.det_recall} (vs float)")
        if precision is None or precision < budget.det_precision:
            fails.append(f"detector: decoded-detection precision {precision if precision is None else round(precision, 3)} < {budget.det_precision} (vs float)")
        if ious and float(np.mean(ious)) < budget.det_iou:
            fails.append(f"detector: mean IoU of matched boxes {np.mean(ious):.3f} < {budget.det_iou}")
        if score_err and float(np.mean(score_err)) > budget.det_score_mae:
            fails.append(f"detector: mean score error {np.mean(score_err):.3f} > {budget.det_score_mae}")
    return {"anchor_gate": m}, fails
