"""Landmark error by head pose: where the shipped landmark network is good and where it is not.

    EDGEAFFECT_WORK=/work/shared-work python scripts/eval_pose_nme.py   # writes models/landmarks/eval_pose.json

Two sets, both never trained on, bucketed by the |yaw| of the *teacher's* points (the head pose
solver of the runtime, edgeaffect.vision.headpose, run on the teacher ensemble, so a bucket does
not depend on the model being judged):

* held-out identities of ../shared/data/expressions (the landmark network's identity split,
  training.data.is_heldout; teacher cache from `python -m training.label_teachers`): the shipped
  landmark network alone, on the window the tracker would use for those points
  (window_from_landmarks of the teacher points), i.e. the tracking-mode crop;
* the shared video (teacher labels in tests/fixtures): the whole pipeline in VIDEO mode, each
  valid face against the teacher face at its box (the same matching as scripts/eval_models.py).

NME: mean point error / outer-eye-corner distance (300-W), against the teacher ensemble (dlib +
offset-corrected MediaPipe). Pitch is reported per bucket as a median, not bucketed (the sets
have little pitch range).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # training.* (repo-only package)

BUCKETS = ((0.0, 15.0), (15.0, 30.0), (30.0, 45.0), (45.0, 90.0))


def teacher_yaw_pitch(points: np.ndarray, size: tuple[int, int]) -> tuple[float, float] | None:
    from edgeaffect.vision.headpose import estimate_head_pose

    pose = estimate_head_pose(np.asarray(points, np.float32), size)
    return None if pose is None else (pose.yaw, pose.pitch)


def bucketed(nme: list[float], yaw: list[float], pitch: list[float]) -> list[dict]:
    e, y, p = np.asarray(nme), np.abs(np.asarray(yaw)), np.asarray(pitch)
    out = []
    for lo, hi in BUCKETS:
        sel = (y >= lo) & (y < hi) if hi < 90 else (y >= lo)
        n = int(sel.sum())
        out.append({"abs_yaw_deg": [lo, hi], "n": n,
                    "nme_median": float(np.median(e[sel])) if n else None,
                    "nme_mean": float(np.mean(e[sel])) if n else None,
                    "nme_p90": float(np.percentile(e[sel], 90)) if n else None,
                    "pitch_median_deg": float(np.median(p[sel])) if n else None})
    return out


def heldout_expressions() -> dict:
    from edgeaffect.analyzer import Analyzer, AnalyzerOptions
    from edgeaffect.constants import interocular_distance
    from edgeaffect.vision.alignment import window_from_landmarks
    from training.data import load_faceset

    fs = load_faceset()
    an = Analyzer(AnalyzerOptions(max_faces=1, enable_aus=False, enable_affect=False))
    lm = an.tracker.landmarks
    nme, yaw, pitch = [], [], []
    for i in np.flatnonzero(fs.heldout):
        img, t = fs.images[i], fs.targets[i].astype(np.float32)
        ang = teacher_yaw_pitch(t, (img.shape[1], img.shape[0]))
        if ang is None:
            continue
        r = lm.run(img, window_from_landmarks(t))
        nme.append(float((np.linalg.norm(r.points - t, axis=1) / interocular_distance(t)).mean()))
        yaw.append(ang[0])
        pitch.append(ang[1])
    sha = an.model_manifests["landmarks"].sha256
    an.close()
    return {"images": len(nme), "nme_median": float(np.median(nme)), "by_abs_yaw": bucketed(nme, yaw, pitch),
            "what": "held-out identities of ../shared/data/expressions, landmark network on the tracking-mode window "
                    "of the teacher points", "landmarks_sha256": sha}


def shared_video() -> dict:
    from edgeaffect import Analyzer, AnalyzerOptions
    from edgeaffect.capture.file import VideoFileSource
    from edgeaffect.constants import interocular_distance
    from training.targets import video_teacher_at

    fix = REPO / "tests" / "fixtures"
    offsets = np.array(json.loads((fix / "mediapipe_offsets.json").read_text())["offsets"])
    z = np.load(fix / "teacher_video.npz")
    an = Analyzer(AnalyzerOptions(max_faces=1))
    nme, yaw, pitch = [], [], []
    frames = 0
    for frame in VideoFileSource(REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"):
        fr, k = frame.image, frame.index
        frames += 1
        r = an.process(fr, frame.timestamp_ms)
        f = r.faces[0] if r.faces else None
        t = video_teacher_at(z, k, f.box, offsets) if f and f.valid else None
        if t is not None:
            ang = teacher_yaw_pitch(t, (fr.shape[1], fr.shape[0]))
            if ang is not None:
                nme.append(float((np.linalg.norm(f.landmarks - t, axis=1) / interocular_distance(t)).mean()))
                yaw.append(ang[0])
                pitch.append(ang[1])
    shas = {m: man.sha256 for m, man in an.model_manifests.items()}
    an.close()
    return {"frames": frames, "faces_evaluated": len(nme), "nme_median": float(np.median(nme)),
            "by_abs_yaw": bucketed(nme, yaw, pitch),
            "what": "shared video, whole pipeline (VIDEO mode), valid faces matched to the teacher face at their box",
            "models_sha256": shas}


def main() -> None:
    out = {
        "reference": "teacher ensemble (dlib + offset-corrected MediaPipe); NME normalised by the outer-eye-corner distance; "
                     "yaw of the teacher points by edgeaffect.vision.headpose",
        "command": "python scripts/eval_pose_nme.py",
        "expressions_heldout": heldout_expressions(),
        "video": shared_video(),
    }
    dest = REPO / "models" / "landmarks" / "eval_pose.json"
    dest.write_text(json.dumps(out, indent=1))
    for k in ("expressions_heldout", "video"):
        print(k, [(b["abs_yaw_deg"], b["n"], None if b["nme_median"] is None else round(b["nme_median"], 4))
                  for b in out[k]["by_abs_yaw"]])
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
