"""Per-stride score calibration of the shipped int8 short-range detector against MediaPipe's float model.

    python scripts/calibrate_detector_scores.py [--n 600] [--write]

Why: the quantisation-aware int8 detector scores *large* faces lower than the float model it
replaces. On tight face crops (the face fills the frame, so the stride-16 anchors fire) its
logits sit ~0.8 below the float model's at the same anchor (median score 0.70 vs 0.81), so
faces the landmark network accepts were dropped at the acquisition score; the stride-8 anchors
(smaller faces) agree. A constant logit offset per anchor stride, added before the sigmoid
(FaceDetector reads it from the manifest's `edgeaffect.score_logit_offset`), brings the int8
scores back to the reference. Boxes and keypoints are untouched.

Fit: calibration identities of the detector's own split (training.detector_qat, not held out),
each photo as it is (tight) and padded to 3x its size (smaller faces); at the float model's
highest-scoring anchor where the float model sees a face (score >= 0.5): offset = mean(float
logit - int8 logit) per stride, kept when >= 0.1. Checked on the held-out identities (median
|score difference| before / after). `--write` puts the offsets into the shipped manifest
(edgeaffect/models/assets/detector_int8.json) and writes models/detector/score_calibration.json.
Needs onnxruntime (the [convert] extra) and ../shared/data/expressions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MANIFEST = REPO / "edgeaffect" / "models" / "assets" / "detector_int8.json"
REFERENCE = REPO / "models" / "detector" / "detector.onnx"
KEY = "edgeaffect.score_logit_offset"


def samples(paths: list[str], det, sess, strides: np.ndarray) -> list[tuple[int, float, float]]:
    """(stride, int8 logit, float logit) at the float model's best anchor, where it sees a face."""
    iname = sess.get_inputs()[0].name
    onames = [o.name for o in sess.get_outputs()]
    cls = next(i for i, o in enumerate(sess.get_outputs()) if o.shape[-1] == 1)
    out = []
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < 32:
            continue
        h, w = img.shape[:2]
        pad = max(h, w)
        for im in (img, cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)):
            x, _, _, _ = det.preprocess(im)
            ref = np.asarray(sess.run(onames, {iname: x[0].transpose(2, 0, 1)[None]})[cls], np.float64).reshape(-1)
            got = np.asarray(det.runner.run(x)[det._cls], np.float64).reshape(-1)
            i = int(np.argmax(ref))
            if 1.0 / (1.0 + np.exp(-ref[i])) >= 0.5:
                out.append((int(strides[i]), float(got[i]), float(ref[i])))
    return out


def main() -> int:
    import onnxruntime as ort

    from edgeaffect.models.detector import FaceDetector, anchor_strides
    from edgeaffect.runtime.manifest import load_manifest
    from edgeaffect.runtime.runner import ModelRunner
    from training.detector_qat import _expression_images

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600, help="photos per split (default 600)")
    ap.add_argument("--write", action="store_true", help="write the offsets into the shipped manifest")
    a = ap.parse_args()
    man = load_manifest(MANIFEST)
    man.metadata.pop(KEY, None)  # fit against the raw int8 scores
    det = FaceDetector(ModelRunner(man, num_threads=1), 0.05)
    strides = anchor_strides(det.size, det.layout["strides"], det.layout["anchors_per_stride"])
    sess = ort.InferenceSession(str(REFERENCE), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    cal_paths, held_paths = (list(rng.permutation(_expression_images(h))[: a.n]) for h in (False, True))
    cal = samples(cal_paths, det, sess, strides)
    offsets: dict[str, float] = {}
    per_stride = {}
    for s in sorted(set(strides.tolist())):
        d = np.array([r - g for st, g, r in cal if st == s])
        mean = float(d.mean()) if len(d) else 0.0
        per_stride[str(s)] = {"n": int(len(d)), "mean_float_minus_int8_logit": round(mean, 4)}
        if len(d) >= 20 and mean >= 0.1:
            offsets[str(s)] = round(mean, 2)

    def score_gap(rows: list[tuple[int, float, float]], off: dict[str, float]) -> dict[str, float]:
        sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
        gaps = {str(s): [abs(sig(g + off.get(str(st), 0.0)) - sig(r)) for st, g, r in rows if st == s]
                for s in sorted(set(strides.tolist()))}
        return {k: round(float(np.median(v)), 4) for k, v in gaps.items() if v}

    held = samples(held_paths, det, sess, strides)
    report = {
        "command": "python scripts/calibrate_detector_scores.py" + (" --write" if a.write else ""),
        "model": man.file, "model_sha256": man.sha256, "reference": str(REFERENCE.relative_to(REPO)),
        "calibration_photos": len(cal_paths), "held_out_photos": len(held_paths),
        "samples": "each photo tight and padded to 3x; the float model's best anchor where it sees a face (score >= 0.5)",
        "calibration": per_stride, KEY: offsets,
        "held_out_median_abs_score_difference": {"before": score_gap(held, {}), "after": score_gap(held, offsets)},
    }
    print(json.dumps(report, indent=1))
    if a.write:
        raw = json.loads(MANIFEST.read_text())
        if offsets:
            raw["metadata"][KEY] = offsets
        else:
            raw["metadata"].pop(KEY, None)
        MANIFEST.write_text(json.dumps(raw, indent=1) + "\n")
        (REPO / "models" / "detector" / "score_calibration.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
