"""Measure the shipped landmark network's validity head on non-face pictures never used in training.

    python scripts/eval_validity.py      # writes models/landmarks/eval_validity.json

Pictures: the scikit-image samples that are bundled offline and are not among the training
negatives (training/data.py NONFACE_IMAGES) and hold no human face, plus windows on the
astronaut photo away from her face (that photo is kept out of training: it is the demo face).
Each picture is scored on five windows (centre, four quadrants); the figure kept is the
highest validity, i.e. the worst case. The model card quotes this file.

The validity head is not the whole test a window passes before the pipeline lists a face: the
tracker (edgeaffect.tracking.tracker) also needs the fit to trust itself (typical per-point sigma)
and re-fits on the window of its own points. `opens_track` runs that acquisition rule itself
(`edgeaffect.tracking.fit_for_track`, default thresholds; without the tracker's check that the
points stay on a detection, since there is none) on each picture's windows.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeaffect.models import ASSETS, find_model  # noqa: E402
from edgeaffect.models.landmarks import LandmarkModel  # noqa: E402
from edgeaffect.runtime.runner import ModelRunner  # noqa: E402
from edgeaffect.tracking import TrackerConfig, fit_for_track  # noqa: E402
from edgeaffect.tracking.tracker import RETRY_SCALE  # noqa: E402
from edgeaffect.vision.alignment import FaceWindow  # noqa: E402
from training.data import NONFACE_IMAGES  # noqa: E402

#: bundled scikit-image samples without a human face (camera, coins... are excluded: a face, or training data)
UNSEEN = ("logo", "microaneurysms", "stereo_motorcycle")
#: (cx, cy, size) windows on the astronaut photo that contain no face (flag, shuttle, suit)
ASTRONAUT_BACKGROUND = ((90, 90, 150), (420, 100, 150), (100, 420, 150), (400, 420, 150), (250, 460, 100))
WINDOWS = ((0.5, 0.5, 0.6), (0.3, 0.3, 0.5), (0.7, 0.3, 0.5), (0.3, 0.7, 0.5), (0.7, 0.7, 0.5))  # (fx, fy, fraction of min side)
THRESHOLD = 0.5


def grey(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3].astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(img.astype(np.uint8))


def pictures() -> dict[str, np.ndarray]:
    import skimage.data as skd

    assert not set(UNSEEN) & set(NONFACE_IMAGES), "an 'unseen' picture is a training negative"
    out: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in UNSEEN:
            im = getattr(skd, name)()
            if isinstance(im, tuple):  # stereo pair: both views
                for i, x in enumerate(im[:2]):
                    out[f"{name}_{i}"] = grey(x)
            else:
                out[name] = grey(im)
        out["astronaut_background"] = grey(skd.astronaut())
    return out


def main() -> None:
    path = find_model(ASSETS, "landmarks")
    lm = LandmarkModel(ModelRunner(path))
    cfg = TrackerConfig()
    scores: dict[str, float] = {}
    per_window: dict[str, list[float]] = {}
    sigma_per_window: dict[str, list[float]] = {}
    opens: dict[str, bool] = {}
    for name, g in pictures().items():
        h, w = g.shape
        if name == "astronaut_background":
            wins = [FaceWindow(cx, cy, s, 0.0) for cx, cy, s in ASTRONAUT_BACKGROUND]
        else:
            wins = [FaceWindow(w * fx, h * fy, min(h, w) * fs, 0.0) for fx, fy, fs in WINDOWS]
        fits = [lm.run(g, win) for win in wins]
        vals = [round(float(r.validity), 4) for r in fits]
        per_window[name] = vals
        sigma_per_window[name] = [round(r.typical_sigma, 4) for r in fits]
        scores[name] = max(vals)
        # the tracker's own rule for a new track (edgeaffect.tracking.fit_for_track), on any window
        opens[name] = any(fit_for_track(lm, g, win, cfg) is not None for win in wins)
    man = json.loads(path.read_text())
    doc = {
        "model": man.get("file", path.name), "sha256": man.get("sha256"), "threshold": THRESHOLD,
        "method": "highest validity over 5 windows per picture (centre at 0.6 of the short side, four quadrants at 0.5); "
                  "astronaut: 5 windows on the flag, shuttle and suit",
        "images": scores, "per_window": per_window,
        "below_threshold": sum(v < THRESHOLD for v in scores.values()), "n": len(scores),
        "typical_sigma_per_window": sigma_per_window,
        "opens_track": opens,
        "opens_track_rule": f"edgeaffect.tracking.fit_for_track with the TrackerConfig defaults: validity >= "
                            f"{cfg.validity_acquire} (one retry on a {RETRY_SCALE}x window), then the refit on the window "
                            f"of its own points has typical sigma <= {cfg.sigma_acquire}",
    }
    out = REPO / "models" / "landmarks" / "eval_validity.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["images"]), "opens a track:", json.dumps(opens), "->", out.relative_to(REPO))


if __name__ == "__main__":
    main()
