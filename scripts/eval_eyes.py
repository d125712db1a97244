"""Eye state of the shipped landmark network on real closed- and open-eye photos.

    EDGEAFFECT_WORK=/work/shared-work python scripts/eval_eyes.py
        # -> models/landmarks/eval_eyes.json, tests/fixtures/eye_state_frames.json

Reference: MediaPipe Face Mesh with refine_landmarks=True (the teacher cache
work/teachers/expressions.npz, `mp`: refined eyelid points mapped to iBUG), per-eye EAR.
An eye is "closed" when the teacher EAR < 0.10 and "open" when > 0.18 (between: a squint,
left out of recall/precision). Images: ../shared/data/expressions, identities held out from
training (training.data.is_heldout) reported separately from all identities (the training
identities saw these very photos, so only the held-out rows measure generalisation).

The network sees the crop the tracker would give it: the window from the teacher landmarks
(edgeaffect.vision.alignment.window_from_landmarks), through the shipped TFLite file and the
runtime's own LandmarkModel. Reports Pearson r of EAR (network vs MediaPipe), closed-eye
recall/precision of the closed probability (> 0.5) and of EAR < 0.15 alone.

The eye-state network (edgeaffect.models.eyes, shipped eyes_<variant>.tflite) is run as the
runtime runs it: on the two eye patches cut by the landmark NETWORK's corners (not the
teacher's). Reported as `by_eye_net` (closed when its per-eye probability > 0.5) with the
ROC AUC of closed vs open eyes, next to the AUC of EAR alone (`ear_auc`, -EAR as the score).

Also writes a small fixture (names + teacher EAR of a few held-out closed- and open-eye
photos) that tests/test_eye_state_real.py runs on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeaffect.errors import ModelError  # noqa: E402
from edgeaffect.models import ASSETS, find_model  # noqa: E402
from edgeaffect.models.eyes import EyeStateModel  # noqa: E402
from edgeaffect.models.landmarks import LandmarkModel  # noqa: E402
from edgeaffect.runtime.runner import ModelRunner  # noqa: E402
from edgeaffect.vision.alignment import window_from_landmarks  # noqa: E402
from training.augment import EAR_CLOSED, EAR_OPEN, eye_aspect_ratios  # noqa: E402
from training.data import is_heldout  # noqa: E402
from training.paths import REPO, expressions_dir, work  # noqa: E402
from training.targets import teacher_target  # noqa: E402


def _auc(score: np.ndarray, pos: np.ndarray) -> float | None:
    """ROC AUC (Mann-Whitney, ties averaged) of `score` separating pos from ~pos."""
    from scipy.stats import rankdata

    npos, nneg = int(pos.sum()), int((~pos).sum())
    if not npos or not nneg:
        return None
    r = rankdata(score)
    return round(float((r[pos].sum() - npos * (npos + 1) / 2) / (npos * nneg)), 4)


def _stats(pred_ear: np.ndarray, teach_ear: np.ndarray, prob: np.ndarray | None, eye_net: np.ndarray | None = None) -> dict:
    closed, opened = teach_ear < EAR_CLOSED, teach_ear > EAR_OPEN
    sel = closed | opened
    out = {
        "eyes": int(len(teach_ear)), "closed_eyes": int(closed.sum()), "open_eyes": int(opened.sum()),
        "ear_pearson_vs_mediapipe": round(float(np.corrcoef(pred_ear, teach_ear)[0, 1]), 4),
        "ear_mae": round(float(np.abs(pred_ear - teach_ear).mean()), 4),
        "ear_median_closed": round(float(np.median(pred_ear[closed])), 4) if closed.any() else None,
        "ear_median_open": round(float(np.median(pred_ear[opened])), 4) if opened.any() else None,
        "teacher_ear_median_closed": round(float(np.median(teach_ear[closed])), 4) if closed.any() else None,
        "teacher_ear_median_open": round(float(np.median(teach_ear[opened])), 4) if opened.any() else None,
    }

    def pr(pred_closed: np.ndarray) -> dict:
        tp = int((pred_closed & closed).sum())
        pc = int((pred_closed & sel).sum())
        return {"recall": round(tp / max(int(closed.sum()), 1), 4), "precision": round(tp / pc, 4) if pc else None}

    out["by_ear_threshold"] = {"threshold": 0.15, **pr(pred_ear < 0.15)}
    out["ear_auc"] = _auc(-pred_ear[sel], closed[sel])
    if prob is not None:
        out["by_closed_prob"] = pr(prob > 0.5)
    if eye_net is not None:
        out["by_eye_net"] = {**pr(eye_net > 0.5), "auc": _auc(eye_net[sel], closed[sel]),
                             "median_prob_closed": round(float(np.median(eye_net[closed])), 4) if closed.any() else None,
                             "median_prob_open": round(float(np.median(eye_net[opened])), 4) if opened.any() else None}
    return out


def main() -> None:
    z = np.load(work("teachers", "expressions.npz"))
    offsets = np.array(json.loads((REPO / "tests" / "fixtures" / "mediapipe_offsets.json").read_text())["offsets"])
    names, mp, dl = z["names"], z["mp"], z["dlib"]
    have = ~np.isnan(mp).any((1, 2)) & ~np.isnan(dl).any((1, 2))
    teach = np.full((len(names), 2), np.nan, np.float32)
    teach[have] = np.stack([eye_aspect_ratios(m) for m in mp[have]])
    interesting = have & ((teach < EAR_CLOSED).any(1) | (teach > EAR_OPEN).all(1))
    held = np.array([is_heldout(n) for n in names])
    # every closed-eye photo + a sample of open-eye ones (4 per closed one) keeps the run short
    rng = np.random.default_rng(0)
    closed_idx = np.flatnonzero(have & (teach < EAR_CLOSED).any(1))
    open_idx = np.flatnonzero(interesting & ~(teach < EAR_CLOSED).any(1))
    open_idx = np.concatenate([open_idx[held[open_idx]], rng.choice(open_idx[~held[open_idx]], min(4 * len(closed_idx), int((~held[open_idx]).sum())), replace=False)])
    idx = np.unique(np.concatenate([closed_idx, open_idx]))
    model_path = find_model(ASSETS, "landmarks")
    lm = LandmarkModel(ModelRunner(model_path, num_threads=1))
    try:
        eye_path = find_model(ASSETS, "eyes")
        eyes: EyeStateModel | None = EyeStateModel(ModelRunner(eye_path, num_threads=1))
    except ModelError:
        eye_path, eyes = None, None
    img_dir = expressions_dir() / "images"
    pred, prob, rows, enet = [], [], [], []
    for i in idx:
        gray = cv2.imread(str(img_dir / names[i]), cv2.IMREAD_GRAYSCALE)
        t = teacher_target(dl[i], mp[i], offsets)
        r = lm.run(gray, window_from_landmarks(t))
        pred.append(eye_aspect_ratios(r.points))
        prob.append(r.eye_closed if r.eye_closed is not None else np.full(2, np.nan))
        enet.append(eyes.run(gray, r.points) if eyes is not None else np.full(2, np.nan))
        rows.append(i)
    pred_a, prob_a, rows_a, enet_a = np.array(pred), np.array(prob), np.array(rows), np.array(enet)
    has_prob = not np.isnan(prob_a).any()
    report = {"model": model_path.name, "eye_model": None if eye_path is None else eye_path.name,
              "eye_model_sha256": None if eye_path is None else json.loads(eye_path.read_text()).get("sha256"), "reference": "MediaPipe Face Mesh refine_landmarks=True eyelids (EAR), teacher cache",
              "closed_below": EAR_CLOSED, "open_above": EAR_OPEN,
              "photos": int(len(rows_a)), "photos_heldout_identities": int(held[rows_a].sum())}
    for label, m in (("heldout_identities", held[rows_a]), ("all_identities", np.ones(len(rows_a), bool))):
        report[label] = _stats(pred_a[m].ravel(), teach[rows_a][m].ravel(), prob_a[m].ravel() if has_prob else None,
                               enet_a[m].ravel() if eyes is not None else None)
    out = REPO / "models" / "landmarks" / "eval_eyes.json"
    out.write_text(json.dumps(report, indent=1))
    # fixture for the real-data test: held-out photos with both eyes clearly shut / open
    hc = [int(i) for i in rows_a[held[rows_a]] if (teach[i] < EAR_CLOSED).all()]
    ho = [int(i) for i in rows_a[held[rows_a]] if (teach[i] > EAR_OPEN + 0.04).all()][: max(len(hc), 8)]
    fix = {"produced_by": "python scripts/eval_eyes.py", "reference": report["reference"],
           "closed": [{"image": str(names[i]), "teacher_ear": [round(float(e), 4) for e in teach[i]], "teacher_points": np.round(teacher_target(dl[i], mp[i], offsets), 2).tolist()} for i in hc],
           "open": [{"image": str(names[i]), "teacher_ear": [round(float(e), 4) for e in teach[i]], "teacher_points": np.round(teacher_target(dl[i], mp[i], offsets), 2).tolist()} for i in ho]}
    (REPO / "tests" / "fixtures" / "eye_state_frames.json").write_text(json.dumps(fix))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
