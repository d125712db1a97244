"""Record real network inputs (x86_64) for the cross-ISA network proof.

    python scripts/aarch64/record_inputs.py VIDEO OUT.npz [--per-module 6]

Runs the analyzer over VIDEO (e.g. the FFV1 cut of the pipeline check) with an input
recorder on every runner and keeps, per module, `--per-module` inputs spread over the run.
run_models.py --real-inputs OUT.npz then feeds exactly these arrays to the networks on both
ISAs: random inputs do not exercise the value ranges real crops and windows do.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from edgeaffect import Analyzer, AnalyzerOptions
from edgeaffect.runtime.factory import BaseOptions
from edgeaffect.runtime.wrappers import InputRecorder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("out")
    ap.add_argument("--per-module", type=int, default=6)
    a = ap.parse_args(argv)
    rec = InputRecorder()
    cap = cv2.VideoCapture(a.video)
    with Analyzer(AnalyzerOptions(base_options=BaseOptions(wrappers=[rec.wrap]))) as an:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            an.process(frame, (i + 1) * 1000 / 30)
            i += 1
    keep: dict[str, np.ndarray] = {}
    for module, xs in rec.inputs.items():
        if xs:
            idx = np.unique(np.linspace(0, len(xs) - 1, a.per_module).round().astype(int))
            keep[module] = np.stack([xs[j] for j in idx])
    np.savez_compressed(a.out, **keep)
    print(f"record_inputs: {i} frames; " + ", ".join(f"{m} {v.shape[0]}" for m, v in keep.items()) + f" -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
