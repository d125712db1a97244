"""Cut the first N frames of a video into a lossless FFV1 .mkv (decoded identically on every ISA).

    python scripts/aarch64/make_cut.py SOURCE OUT.mkv [--frames 60]

H.264 decoders differ by 1-2 grey levels between x86_64 and aarch64; the cross-ISA pipeline
check decodes the source once (here, on x86_64) and feeds both machines these exact pixels.
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=60)
    a = ap.parse_args(argv)
    cap = cv2.VideoCapture(a.source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while len(frames) < a.frames:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    if not frames:
        print(f"make_cut: no frames read from {a.source}", file=sys.stderr)
        return 2
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(a.out, cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    if not vw.isOpened():
        print("make_cut: this OpenCV cannot write FFV1", file=sys.stderr)
        return 2
    for f in frames:
        vw.write(f)
    vw.release()
    back = cv2.VideoCapture(a.out)
    for i, f in enumerate(frames):
        ok, g = back.read()
        if not ok or not np.array_equal(f, g):
            print(f"make_cut: frame {i} does not decode back identically", file=sys.stderr)
            return 2
    print(f"make_cut: {len(frames)} frames {w}x{h} -> {a.out} (FFV1, lossless: decoded back identically)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
