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

With an eye refinement network (an `eyelids` output) the runtime replaces iBUG 36-47 with its
refined contour: `refined` rows are the EAR of those points (Pearson vs MediaPipe, medians
closed/open, recall/precision of EAR < 0.15), next to the landmark network's own (`landmark_net`
rows, the top-level EAR keys). AU45: the AU network on the same photos (the runtime's crop from
the landmark network's points), its own AU45 and the reported one
(edgeaffect.vision.eyes.au45_with_eye_state), medians on photos with closed eyes (mean teacher EAR
< 0.10) vs both eyes open.

Video (`video`): the shared clip through the whole Analyzer (VIDEO mode); per frame the tracked
face is matched to the teacher fixture's MediaPipe face (tests/fixtures/teacher_video.npz, IoU
> 0.3): refined EAR vs MediaPipe's, frames where MediaPipe sees both eyes open (EAR > 0.18) and
the eye net says closed (mean p > 0.5), blinks counted, MediaPipe's closed frames.

    python scripts/eval_eyes.py [--out FILE]   # FILE: another report path (e.g. a baseline run)

Also writes a small fixture (names + teacher EAR of a few held-out closed- and open-eye
photos) that tests/test_faces_real.py runs on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeaffect.constants import AU_INDEX  # noqa: E402
from edgeaffect.errors import ModelError  # noqa: E402
from edgeaffect.models import ASSETS, find_model  # noqa: E402
from edgeaffect.models.aus import AUModel  # noqa: E402
from edgeaffect.models.eyes import EyeStateModel  # noqa: E402
from edgeaffect.models.landmarks import LandmarkModel  # noqa: E402
from edgeaffect.runtime.runner import ModelRunner  # noqa: E402
from edgeaffect.vision.alignment import window_from_landmarks  # noqa: E402
from edgeaffect.vision.eyes import au45_with_eye_state, with_eyelids  # noqa: E402
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


def _ear_rows(pred_ear: np.ndarray, teach_ear: np.ndarray) -> dict:
    closed, opened = teach_ear < EAR_CLOSED, teach_ear > EAR_OPEN
    sel = closed | opened
    tp = int(((pred_ear < 0.15) & closed).sum())
    pc = int(((pred_ear < 0.15) & sel).sum())
    return {"ear_pearson_vs_mediapipe": round(float(np.corrcoef(pred_ear, teach_ear)[0, 1]), 4),
            "ear_mae": round(float(np.abs(pred_ear - teach_ear).mean()), 4),
            "ear_median_closed": round(float(np.median(pred_ear[closed])), 4) if closed.any() else None,
            "ear_median_open": round(float(np.median(pred_ear[opened])), 4) if opened.any() else None,
            "by_ear_threshold": {"threshold": 0.15, "recall": round(tp / max(int(closed.sum()), 1), 4),
                                 "precision": round(tp / pc, 4) if pc else None},
            "ear_auc": _auc(-pred_ear[sel], closed[sel])}


def _au45_rows(raw: np.ndarray, fused: np.ndarray, teach: np.ndarray) -> dict:
    """Per photo: eyes closed (mean teacher EAR of the two < EAR_CLOSED) vs both open (> EAR_OPEN)."""
    closed, opened = teach.mean(1) < EAR_CLOSED, (teach > EAR_OPEN).all(1)

    def med(v: np.ndarray, m: np.ndarray) -> float | None:
        return round(float(np.median(v[m])), 4) if m.any() else None

    return {"photos_closed": int(closed.sum()), "photos_open": int(opened.sum()),
            "au_net_median_closed": med(raw, closed), "au_net_median_open": med(raw, opened),
            "reported_median_closed": med(fused, closed), "reported_median_open": med(fused, opened),
            "reported_above_1_closed": round(float((fused[closed] > 1.0).mean()), 4) if closed.any() else None,
            "reported_above_1_open": round(float((fused[opened] > 1.0).mean()), 4) if opened.any() else None}


def video_check() -> dict:
    """The shared clip through the Analyzer: eye state against the teacher fixture's MediaPipe face."""
    from edgeaffect import Analyzer, AnalyzerOptions
    from edgeaffect.capture.file import VideoFileSource
    from edgeaffect.models.detector import iou

    video = REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"
    fix = np.load(REPO / "tests" / "fixtures" / "teacher_video.npz")
    rows = []
    blinks = frames = 0
    with Analyzer.create(AnalyzerOptions(max_faces=4)) as a, VideoFileSource(video) as src:
        for fr in src:  # every listed face, each against the MediaPipe face at its box
            k = fr.index
            frames += 1
            res = a.process(fr.image, fr.timestamp_ms)
            for f in res.faces:
                if not f.valid:
                    continue
                e = f.eyes
                blinks += int(bool(e["blink"]))
                n = int(fix["count"][k])
                j = max(range(n), key=lambda j: iou(f.box, tuple(fix["boxes"][k][j]))) if n else None
                if j is None or iou(f.box, tuple(fix["boxes"][k][j])) <= 0.3 or np.isnan(fix["mediapipe"][k][j]).any():
                    continue
                mp_ear = eye_aspect_ratios(fix["mediapipe"][k][j])
                ours = eye_aspect_ratios(np.asarray(f.landmarks))
                p = e["closed_prob_left"], e["closed_prob_right"]
                rows.append((k, *mp_ear, *ours, np.nan if p[0] is None else 0.5 * (p[0] + p[1]), float(e["blink"])))
    r = np.array(rows, np.float64)
    mp_open = (r[:, 1:3] > EAR_OPEN).all(1)
    mp_closed = (r[:, 1:3] < EAR_CLOSED).any(1)
    prob = r[:, 5]
    out = {"video": video.name, "frames": frames, "frames_matched_to_mediapipe": int(len(r)),
           "frames_mediapipe_both_open": int(mp_open.sum()), "frames_mediapipe_an_eye_closed": int(mp_closed.sum()),
           "blinks_counted_whole_clip": blinks,
           "blinks_on_matched_frames_mediapipe_open": int(r[mp_open, 6].sum()),
           "ear_pearson_vs_mediapipe": round(float(np.corrcoef(r[:, 3:5].ravel(), r[:, 1:3].ravel())[0, 1]), 4),
           "ear_median_ours_where_mediapipe_open": round(float(np.median(r[mp_open, 3:5])), 4) if mp_open.any() else None,
           "mediapipe_ear_median_open": round(float(np.median(r[mp_open, 1:3])), 4) if mp_open.any() else None,
           "mediapipe_ear_min": round(float(r[:, 1:3].min()), 4)}
    if not np.isnan(prob).all():
        out["closed_prob_threshold"] = 0.5
        out["frames_closed_prob_high_where_mediapipe_open"] = int((prob[mp_open] > 0.5).sum())
        out["closed_prob_max_where_mediapipe_open"] = round(float(prob[mp_open].max()), 4) if mp_open.any() else None
        out["closed_prob_median_where_mediapipe_open"] = round(float(np.median(prob[mp_open])), 4) if mp_open.any() else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "models" / "landmarks" / "eval_eyes.json"))
    ap.add_argument("--no-fixture", action="store_true", help="do not rewrite tests/fixtures/eye_state_frames.json")
    args = ap.parse_args()
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
    au_path = find_model(ASSETS, "au")
    aus = AUModel(ModelRunner(au_path, num_threads=1))
    img_dir = expressions_dir() / "images"
    pred, prob, rows, enet, refined, au_raw, au_rep = [], [], [], [], [], [], []
    for i in idx:
        gray = cv2.imread(str(img_dir / names[i]), cv2.IMREAD_GRAYSCALE)
        t = teacher_target(dl[i], mp[i], offsets)
        r = lm.run(gray, window_from_landmarks(t))
        pred.append(eye_aspect_ratios(r.points))
        prob.append(r.eye_closed if r.eye_closed is not None else np.full(2, np.nan))
        ref = eyes.refine(gray, r.points) if eyes is not None else None
        enet.append(ref.closed if ref is not None else np.full(2, np.nan))
        shown = with_eyelids(r.points, ref.eyelids) if ref is not None and ref.eyelids is not None else r.points
        refined.append(eye_aspect_ratios(shown))
        a = aus.run(gray, r.points)  # the runtime's AU crop: the landmark network's points
        au_raw.append(float(a[AU_INDEX["AU45"]]))
        cp = ref.closed if ref is not None else r.eye_closed
        au_rep.append(float(au45_with_eye_state(a, None if cp is None else (float(cp[0]), float(cp[1])))[AU_INDEX["AU45"]]))
        rows.append(i)
    pred_a, prob_a, rows_a, enet_a = np.array(pred), np.array(prob), np.array(rows), np.array(enet)
    ref_a, raw_a, rep_a = np.array(refined), np.array(au_raw), np.array(au_rep)
    has_prob = not np.isnan(prob_a).any()
    report = {"model": model_path.name, "eye_model": None if eye_path is None else eye_path.name,
              "eye_model_sha256": None if eye_path is None else json.loads(eye_path.read_text()).get("sha256"), "reference": "MediaPipe Face Mesh refine_landmarks=True eyelids (EAR), teacher cache",
              "closed_below": EAR_CLOSED, "open_above": EAR_OPEN,
              "photos": int(len(rows_a)), "photos_heldout_identities": int(held[rows_a].sum())}
    report["eye_model_has_eyelids"] = bool(eyes is not None and eyes.has_eyelids)
    report["au_model"] = au_path.name
    report["au45_rule"] = "reported AU45 = max(AU net's AU45, 5 x mean per-eye closed probability) (edgeaffect.vision.eyes.au45_with_eye_state)"
    for label, m in (("heldout_identities", held[rows_a]), ("all_identities", np.ones(len(rows_a), bool))):
        report[label] = _stats(pred_a[m].ravel(), teach[rows_a][m].ravel(), prob_a[m].ravel() if has_prob else None,
                               enet_a[m].ravel() if eyes is not None else None)
        report[label]["refined"] = _ear_rows(ref_a[m].ravel(), teach[rows_a][m].ravel())
        report[label]["au45"] = _au45_rows(raw_a[m], rep_a[m], teach[rows_a][m])
    report["video"] = video_check()
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=1))
    if args.no_fixture:
        print(json.dumps(report, indent=1))
        return
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
