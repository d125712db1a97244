"""Flicker report: landmark jitter on a still face and valid/invalid switches on the shared clip.

    python scripts/flicker_report.py --out benchmarks/results/flicker.json [--baseline-src DIR [--baseline-commit ID]]

* still face: scikit-image's astronaut photo, not moving, 90 frames, once exactly repeated
  and once with seeded sensor noise (Gaussian, sigma 2 grey levels). Jitter = per frame, the
  mean distance the 68 points move from the previous frame (px), and the same over the
  inter-ocular distance; a still face should give ~0.
* shared clip (../shared/data/video/short_hamilton_clip.mp4, skipped when absent): frames
  with a listed face, switches between "a face is listed" and "none", isolated one- or
  two-frame blips, track ids, and the largest number of faces listed on one frame.

`--baseline-src DIR` also measures another checkout of the repo (e.g. a `git worktree` of an
older commit) in a subprocess with PYTHONPATH=DIR and stores both, labelled by commit.
Only the public API is used (Analyzer, AnalyzerOptions, process), so older code runs too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"


def _commit(src: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def still_face(frames: int = 90, noise: float = 0.0) -> dict[str, Any]:
    import cv2
    from skimage import data

    from edgeaffect import Analyzer, AnalyzerOptions

    src = cv2.cvtColor(np.asarray(data.astronaut()), cv2.COLOR_RGB2BGR)
    m = np.array([[1.0, 0.0, 64.0], [0.0, 1.0, -16.0]])
    base = cv2.warpAffine(src, m, (640, 480), borderValue=(40, 40, 40)).astype(np.float32)
    rng = np.random.default_rng(7)
    prev, steps, iods, listed = None, [], [], 0
    with Analyzer(AnalyzerOptions(max_faces=1)) as a:
        for i in range(frames):
            img = base + rng.normal(0.0, noise, base.shape) if noise else base
            r = a.process(np.clip(img, 0, 255).astype(np.uint8), (i + 1) * 1000 / 30)
            face = next((f for f in r.faces if f.valid and f.landmarks is not None), None)
            listed += face is not None
            pts = None if face is None else np.asarray(face.landmarks, np.float64)
            if pts is not None and prev is not None:
                steps.append(float(np.linalg.norm(pts - prev, axis=1).mean()))
                iods.append(float(np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))))
            prev = pts
    s = np.asarray(steps) if steps else np.zeros(1)
    iod = float(np.mean(iods)) if iods else float("nan")
    return {"frames": frames, "noise_sigma": noise, "frames_with_face": listed,
            "jitter_px_mean": round(float(s.mean()), 4), "jitter_px_p95": round(float(np.percentile(s, 95)), 4),
            "jitter_px_max": round(float(s.max()), 4), "jitter_over_iod_mean": round(float(s.mean()) / iod, 5),
            "interocular_px": round(iod, 1)}


def clip_switches(path: Path) -> dict[str, Any]:
    from edgeaffect import Analyzer, AnalyzerOptions
    from edgeaffect.capture.file import VideoFileSource

    has, ids, most = [], set(), 0
    with Analyzer(AnalyzerOptions()) as a, VideoFileSource(path) as src:
        for frame in src:
            r = a.process(frame.image, frame.timestamp_ms)
            valid = [f for f in r.faces if f.valid]
            has.append(bool(valid))
            ids |= {f.track_id for f in valid}
            most = max(most, len(r.faces))
    h = np.asarray(has, bool)
    switches = int(np.count_nonzero(h[1:] != h[:-1]))
    # runs of one or two frames between runs of the other state
    runs, start = [], 0
    for k in range(1, len(h) + 1):
        if k == len(h) or h[k] != h[start]:
            runs.append((bool(h[start]), k - start, start))
            start = k
    blips = [r for j, r in enumerate(runs) if 0 < j < len(runs) - 1 and r[1] <= 2]
    return {"frames": int(len(h)), "frames_with_face": int(h.sum()), "valid_invalid_switches": switches,
            "blips_1_2_frames": len(blips), "blip_frames": [r[2] for r in blips], "track_ids": len(ids),
            "max_faces_listed_on_a_frame": most}


def measure() -> dict[str, Any]:
    out: dict[str, Any] = {"still_face": still_face(), "still_face_noisy": still_face(noise=2.0)}
    out["shared_clip"] = clip_switches(CLIP) if CLIP.exists() else {"skipped": f"{CLIP} not present"}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="report file (JSON); default: print only")
    ap.add_argument("--baseline-src", default=None, help="another checkout of the repo to measure as 'before'")
    ap.add_argument("--baseline-commit", default=None, help="label for the baseline when it is not a git checkout")
    ap.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.measure_only:
        print(json.dumps(measure()))
        return 0
    report: dict[str, Any] = {"command": "python scripts/flicker_report.py " + " ".join(argv or sys.argv[1:])}
    if a.baseline_src:
        src = Path(a.baseline_src).resolve()
        env = {**os.environ, "PYTHONPATH": str(src)}
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure-only"], env=env, capture_output=True,
                           text=True, cwd=src)
        if p.returncode != 0:
            print(p.stderr[-2000:], file=sys.stderr)
            return 1
        report["before"] = {"commit": a.baseline_commit or _commit(src), **json.loads(p.stdout.strip().splitlines()[-1])}
    report["after"] = {"commit": _commit(REPO), **measure()}
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
