"""The MediaPipe side of the whole-process benchmark (`edgeaffect bench run-vs`).

    python benchmarks/mediapipe_run.py --source VIDEO --out DIR [--loop --max-frames N] [--refine]

What a user would write to get face landmarks from a video with MediaPipe, doing the same
jobs as `edgeaffect run --source VIDEO --out DIR --no-csv`: start the interpreter, decode
every frame with OpenCV, run the legacy Face Mesh in tracking mode (`static_image_mode=False`,
`max_num_faces=1`, `refine_landmarks=False` unless `--refine`: it runs its own detector only
when it has lost the face) and write one JSON line per frame to DIR/results.jsonl: frame
index, timestamp, status, and the face's landmarks in frame pixels rounded to 0.01 px (the
precision edgeaffect writes its 68 landmarks with; `--points 0` writes no points). On exit a
one-line summary goes to stderr. Nothing edgeaffect is imported, so start-up is MediaPipe's own.

TensorFlow is blocked from importing (`sys.modules["tensorflow"] = None`) unless
`--allow-tensorflow`: mediapipe 0.10.21 imports TensorFlow whenever it is installed (an optional
docs dependency of its Tasks package), which costs 10-20 s of start-up in a venv that also has the
[convert] extra. A MediaPipe deployment has no TensorFlow, so the script starts like one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="video file")
    ap.add_argument("--out", required=True, help="output directory (results.jsonl)")
    ap.add_argument("--loop", action="store_true", help="loop the video (with --max-frames)")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--refine", action="store_true", help="refine_landmarks=True (478 points, attention model)")
    ap.add_argument("--points", type=int, default=-1, help="landmarks written per face: -1 all (default), 0 none")
    ap.add_argument("--allow-tensorflow", action="store_true", help="let mediapipe import TensorFlow if installed")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    if not a.allow_tensorflow and "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # ImportError for mediapipe's optional import
    import cv2
    import mediapipe as mp

    cv2.setNumThreads(1)
    src = Path(a.source)
    cap = cv2.VideoCapture(str(src))
    if not src.exists() or not cap.isOpened():
        print(f"mediapipe_run: error: cannot open {src} as a video", file=sys.stderr)
        return 2
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=a.refine,
                                           min_detection_confidence=0.5, min_tracking_confidence=0.5)
    n = found = 0
    with open(out / "results.jsonl", "w") as fh:
        while a.max_frames is None or n < a.max_frames:
            ok, img = cap.read()
            if not ok or img is None:
                if a.loop and n > 0:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, img = cap.read()
                if not ok or img is None:
                    break
            h, w = img.shape[:2]
            res = mesh.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            faces = []
            for lms in res.multi_face_landmarks or []:
                pts = lms.landmark if a.points < 0 else lms.landmark[: a.points]
                faces.append({"landmarks": [[round(p.x * w, 2), round(p.y * h, 2)] for p in pts]})
            found += bool(faces)
            fh.write(json.dumps({"frame_index": n, "timestamp_ms": round(n * 1000.0 / fps, 3),
                                 "status": "ok" if faces else "no_face", "faces": faces}, separators=(",", ":")) + "\n")
            n += 1
    mesh.close()
    cap.release()
    s = time.perf_counter() - t0
    print(f"mediapipe_run: {n} frames ({found} with a face) in {s:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
