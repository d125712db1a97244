"""The landmark fit's own uncertainty on faces, on turned faces and on a full profile: the
figures behind the tracker's `sigma_keep` / `sigma_acquire` (edgeaffect.tracking.tracker).

    EDGEAFFECT_WORK=/work/shared-work python scripts/eval_fit_sigma.py   # writes models/landmarks/eval_fit_sigma.json

`LandmarkResult.typical_sigma` (the upper median of the crop-normalised per-point sigma) on:

* held-out identities of ../shared/data/expressions, on the tracking-mode window of their
  teacher points (as scripts/eval_pose_nme.py): what a face looks like to the rule;
* real turned faces the pipeline lists: every valid track's fit on the shared clip outside its
  close-up profile (VIDEO mode, max_faces=4: the speaker at up to ~45 deg, the audience in 3/4
  view) and on ../shared/data/faces/emma.jpg (three faces, one at a teacher-free yaw of ~-70 deg);
* the shared clip's full-profile close-up (tests/fixtures/profile_frames.json, hand-labelled):
  for every detection there, the fit on the detector's window (first try) and the refit on the
  window of its own points, with the validity the head gives them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # training.* (repo-only package)


def heldout() -> dict:
    from edgeaffect.analyzer import Analyzer, AnalyzerOptions
    from edgeaffect.vision.alignment import window_from_landmarks
    from training.data import load_faceset

    fs = load_faceset()
    an = Analyzer(AnalyzerOptions(max_faces=1, enable_aus=False, enable_affect=False))
    s = np.array([an.tracker.landmarks.run(fs.images[i], window_from_landmarks(fs.targets[i].astype(np.float32))).typical_sigma
                  for i in np.flatnonzero(fs.heldout)])
    an.close()
    return {"images": int(s.size), "p50": float(np.median(s)), "p99": float(np.percentile(s, 99)), "max": float(s.max())}


def clip_and_profile(video: Path, stretch: tuple[int, int]) -> tuple[dict, dict]:
    from edgeaffect import Analyzer, AnalyzerOptions
    from edgeaffect.tracking import window_from_detection
    from edgeaffect.vision.alignment import window_from_landmarks

    listed: list[float] = []
    first: list[tuple[float, float]] = []  # (validity, typical sigma) on the detector's window
    refit: list[tuple[float, float]] = []
    cap = cv2.VideoCapture(str(video))
    with Analyzer.create(AnalyzerOptions(max_faces=4)) as a:
        lm, det = a.tracker.landmarks, a.tracker.detector
        k = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            a.process(frame, k * 1000.0 / 29.97)
            if stretch[0] <= k <= stretch[1]:
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                for d in det.detect(frame):
                    r = lm.run(gray, window_from_detection(d))
                    r2 = lm.run(gray, window_from_landmarks(r.points))
                    first.append((r.validity, r.typical_sigma))
                    refit.append((r2.validity, r2.typical_sigma))
            else:
                listed += [t.landmarks.typical_sigma for t in a.tracker.tracks
                           if t.lost == 0 and t.turned == 0 and t.landmarks is not None]
            k += 1
    cap.release()
    f, r = np.array(first), np.array(refit)
    profile = {"frames": list(stretch), "detections": len(first),
               "first_fit_validity_max": float(f[:, 0].max()), "first_fit_sigma_min": float(f[:, 1].min()),
               "refit_sigma_min": float(r[:, 1].min()), "refit_sigma_median": float(np.median(r[:, 1]))}
    return {"fits": len(listed), "max": float(max(listed)), "p50": float(np.median(listed))}, profile


def emma() -> dict:
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode

    img = cv2.imread(str(REPO.parent / "shared" / "data" / "faces" / "emma.jpg"), cv2.IMREAD_COLOR)
    with Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=4)) as a:
        faces = [f for f in a.process_image(img).faces if f.valid]
        s = [t.landmarks.typical_sigma for t in a.tracker.tracks if t.lost == 0 and t.landmarks is not None]
    yaw = [round(f.head_pose["yaw"], 1) for f in faces if f.head_pose]
    return {"faces_listed": len(faces), "yaw": yaw, "yaw_most_turned": max(yaw, key=abs), "max": float(max(s))}


def main() -> None:
    from edgeaffect.tracking import TrackerConfig

    fix = REPO / "tests" / "fixtures"
    stretch = tuple(json.loads((fix / "profile_frames.json").read_text())["profile_stretch"])
    video = REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"
    clip, profile = clip_and_profile(video, stretch)  # type: ignore[arg-type]
    cfg = TrackerConfig()
    out = {
        "command": "python scripts/eval_fit_sigma.py",
        "what": "LandmarkResult.typical_sigma (upper median of the crop-normalised per-point sigma)",
        "tracker": {"sigma_keep": cfg.sigma_keep, "sigma_acquire": cfg.sigma_acquire},
        "heldout_photos": heldout(),
        "turned_faces_listed": {"clip_outside_profile": clip, "emma": emma()},
        "full_profile": profile,
    }
    dest = REPO / "models" / "landmarks" / "eval_fit_sigma.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
