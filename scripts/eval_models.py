"""Evaluate the shipped int8 pipeline on real images/video never used in training.

    python scripts/eval_models.py      # writes models/{detector,landmarks,aus,affect}/eval_real.json

Data: ../shared/data/faces (13 photos, 16 teacher-labelled faces) and the 275-frame
shared video; teacher labels in tests/fixtures (python -m training.label_teachers --eval).
Landmark error is normalised by the outer-eye-corner distance (300-W NME).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for training.targets (repo-only package)

from edgeaffect import Analyzer, AnalyzerOptions, RunningMode  # noqa: E402
from edgeaffect.capture.file import VideoFileSource  # noqa: E402
from edgeaffect.constants import interocular_distance  # noqa: E402
from edgeaffect.demo import nir_like  # noqa: E402
from edgeaffect.models.detector import iou  # noqa: E402
from training.targets import teacher_target, video_teacher_at  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FIX = REPO / "tests" / "fixtures"
OFFSETS = np.array(json.loads((FIX / "mediapipe_offsets.json").read_text())["offsets"])


def main() -> None:
    teacher = json.loads((FIX / "teacher_faces.json").read_text())
    a = Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=4))
    nmes, nmes_nir, found, errs, sigs = [], [], 0, [], []
    total = 0
    for name, faces in teacher.items():
        img = cv2.imread(str(SHARED / "faces" / name), cv2.IMREAD_COLOR)
        res = a.process_image(img)
        res_nir = a.process_image(nir_like(img, 0.0))
        for tf in faces:
            total += 1
            t = teacher_target(np.array(tf["dlib"], np.float32), None if tf["mediapipe"] is None else np.array(tf["mediapipe"], np.float32), OFFSETS)
            iod = interocular_distance(t)
            m = [f for f in res.faces if f.valid and iou(f.box, tuple(tf["box"])) > 0.3]
            if m:
                found += 1
                e = np.linalg.norm(m[0].landmarks - t, axis=1) / iod
                nmes.append(float(e.mean()))
                errs += list(e)
                sigs += list(m[0].landmark_sigma / iod)
            mn = [f for f in res_nir.faces if f.valid and iou(f.box, tuple(tf["box"])) > 0.3]
            if mn:
                nmes_nir.append(float((np.linalg.norm(mn[0].landmarks - t, axis=1) / iod).mean()))
    models_used = dict(a.model_manifests)
    a.close()
    # video
    z = np.load(FIX / "teacher_video.npz")
    # every face the pipeline lists (max_faces=4), each scored against the teacher face at its box:
    # with max_faces=1 which of the audience the single track settles on after a cut decides
    # which frames are scored
    v = Analyzer(AnalyzerOptions(max_faces=4))
    with VideoFileSource(SHARED / "video" / "short_hamilton_clip.mp4") as src:
        vres = [v.process(fr.image, fr.timestamp_ms) for fr in src]
    v.close()
    vn, valid = [], []
    unc_valid, unc_lost, redetections, teacher_frames, teacher_frames_valid = [], [], 0, 0, 0
    for k, r in enumerate(vres):
        listed = [f for f in r.faces if f.valid]
        valid.append(bool(listed))
        for f in r.faces:
            if f.uncertainty:
                (unc_valid if f.valid else unc_lost).append(f.uncertainty["cumulative"])
        if k > 0 and any(f.source == "detector" for f in listed):
            redetections += 1
        n = int(z["count"][k])
        if n:
            teacher_frames += 1
            teacher_frames_valid += int(bool(listed))
        for f in listed:
            t = video_teacher_at(z, k, f.box, OFFSETS)
            if t is not None:
                vn.append(float((np.linalg.norm(f.landmarks - t, axis=1) / interocular_distance(t)).mean()))
    out = {
        "detector": {"photos_teacher_faces": total, "found_valid_at_teacher_box": found},
        "landmarks": {
            "photos_faces_evaluated": len(nmes),
            "photos_nme_median": float(np.median(nmes)), "photos_nme_mean": float(np.mean(nmes)),
            "photos_nir_like_nme_median": float(np.median(nmes_nir)) if nmes_nir else None,
            "photos_sigma_vs_error_spearman": float(spearmanr(sigs, errs)[0]),
            "video_frames": len(vres), "video_valid_fraction": float(np.mean(valid)),
            "video_valid_fraction_on_teacher_face_frames": teacher_frames_valid / max(teacher_frames, 1),
            "video_frames_with_teacher": len(vn), "video_nme_median": float(np.median(vn)), "video_nme_mean": float(np.mean(vn)),
            "video_redetections_after_loss": redetections,
            "reference": "teacher ensemble (dlib + offset-corrected MediaPipe), normalised by outer-eye-corner distance",
        },
        "affect": {
            "video_mean_cumulative_uncertainty_valid_frames": float(np.mean(unc_valid)) if unc_valid else None,
            "video_mean_cumulative_uncertainty_lost_frames": float(np.mean(unc_lost)) if unc_lost else None,
        },
    }
    used = {m: man.sha256 for m, man in models_used.items()}  # which model files these figures belong to
    for name, d in out.items():
        d["models_sha256"] = used
        (REPO / "models" / name).mkdir(parents=True, exist_ok=True)
        (REPO / "models" / name / "eval_real.json").write_text(json.dumps(d, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
