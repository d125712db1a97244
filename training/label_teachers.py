"""Run the landmark teachers over the shared expression images (and the evaluation
images/video) and cache their raw outputs.

    python -m training.label_teachers            # expressions -> work/teachers/expressions.npz
    python -m training.label_teachers --eval     # faces/ + video -> tests/fixtures/teacher_*.json|npz

Resumable: results are written in shards; finished shards are skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
from pathlib import Path

import cv2
import numpy as np

from .paths import REPO, SHARED_DATA, expressions_dir, work
from .teachers import mesh_to_ibug

PAD = 0.4
SHARD = 500


def read_legend() -> list[tuple[str, str, str]]:
    rows = []
    with open(expressions_dir() / "legend.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            stem = Path(r["image"]).stem
            rows.append((stem + ".jpg", r["emotion"].strip().lower(), r["user.id"]))
    return rows


_T: dict = {}


def _init() -> None:
    from .teachers import DlibTeacher, MediaPipeTeacher

    _T["dlib"] = DlibTeacher()
    _T["mp"] = MediaPipeTeacher()


MESH_POINTS = 478  # refined Face Mesh: 468 + 10 iris points


def label_crop(path: str) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Teacher landmarks for one tight face crop: (mp68, dlib68, flags, mesh478) in original pixels;
    NaN if missing. flags bit0: dlib detector found the face, bit1: mediapipe found the face.
    mesh478 is the whole refined mesh (eyelid and iris points for eye-state targets)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    nan = np.full((68, 2), np.nan, np.float32)
    nan_mesh = np.full((MESH_POINTS, 2), np.nan, np.float32)
    if img is None:
        return nan, nan, 0, nan_mesh
    h, w = img.shape[:2]
    p = int(PAD * max(h, w))
    big = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=(110, 110, 110))
    gray = cv2.cvtColor(big, cv2.COLOR_BGR2GRAY)
    flags = 0
    mesh = _T["mp"].full_mesh(cv2.cvtColor(big, cv2.COLOR_BGR2RGB))
    mp68 = None if mesh is None else mesh_to_ibug(mesh)
    box = _T["dlib"].detect(gray)
    if box is not None:
        flags |= 1
    if mp68 is not None:
        flags |= 2
    if box is None and mp68 is not None:
        # dlib's detector misses many tight/rotated crops: seed its predictor from the mesh.
        x0, y0 = mp68[:, 0].min(), mp68[17:, 1].min()
        x1, y1 = mp68[:, 0].max(), mp68[:, 1].max()
        box = (x0, y0, x1 - x0, y1 - y0)
    d68 = _T["dlib"].landmarks(gray, box) - p if box is not None else nan
    m68 = mp68 - p if mp68 is not None else nan
    full = mesh - p if mesh is not None else nan_mesh
    return m68.astype(np.float32), d68.astype(np.float32), flags, full.astype(np.float32)


def _label_shard(args: tuple[int, list[str]]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    i, paths = args
    out = [label_crop(p) for p in paths]
    return (i, np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), np.array([o[2] for o in out]),
            np.stack([o[3] for o in out]))


def label_expressions(workers: int) -> Path:
    rows = read_legend()
    img_dir = expressions_dir() / "images"
    rows = [r for r in rows if (img_dir / r[0]).exists()]
    shard_dir = work("teachers", "shards", "x").parent
    jobs = []
    for i in range(0, len(rows), SHARD):
        if not (shard_dir / f"{i:06d}.npz").exists():
            jobs.append((i, [str(img_dir / r[0]) for r in rows[i : i + SHARD]]))
    print(f"{len(rows)} images, {len(jobs)} shards to label", flush=True)
    with mp.Pool(workers, initializer=_init) as pool:
        for i, m, d, f, mesh in pool.imap_unordered(_label_shard, jobs):
            np.savez(shard_dir / f"{i:06d}.npz", mp=m, dlib=d, flags=f, mesh=mesh)
            print(f"shard {i} done", flush=True)
    parts = [np.load(shard_dir / f"{i:06d}.npz") for i in range(0, len(rows), SHARD)]
    out = work("teachers", "expressions.npz")
    np.savez_compressed(
        out,
        names=np.array([r[0] for r in rows]),
        labels=np.array([r[1] for r in rows]),
        users=np.array([r[2] for r in rows]),
        mp=np.concatenate([p["mp"] for p in parts]),
        dlib=np.concatenate([p["dlib"] for p in parts]),
        flags=np.concatenate([p["flags"] for p in parts]),
        mesh=np.concatenate([p["mesh"] for p in parts]),
    )
    print("wrote", out)
    return out


def label_scene(bgr: np.ndarray, dl, mesh) -> list[dict]:
    """All faces in a full scene image: dlib boxes + dlib 68 + the matching MediaPipe mesh."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    scale = 1.0
    if max(gray.shape) > 1400:
        scale = 1400 / max(gray.shape)
        gray_s = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    else:
        gray_s = gray
    dets = dl.detector(gray_s, 1)
    faces = []
    for d in dets:
        box = (d.left() / scale, d.top() / scale, d.width() / scale, d.height() / scale)
        d68 = dl.landmarks(gray, box)
        # MediaPipe on a generous crop around this face only (it is a single-face mesh here).
        x, y, w, h = box
        cx, cy, s = x + w / 2, y + h / 2, max(w, h) * 2.2
        x0, y0 = int(max(0, cx - s / 2)), int(max(0, cy - s / 2))
        x1, y1 = int(min(bgr.shape[1], cx + s / 2)), int(min(bgr.shape[0], cy + s / 2))
        sub = bgr[y0:y1, x0:x1]
        m68 = mesh.landmarks(cv2.cvtColor(sub, cv2.COLOR_BGR2RGB)) if sub.size else None
        faces.append(
            {
                "box": [round(float(v), 1) for v in box],
                "dlib": d68.round(2).tolist(),
                "mediapipe": None if m68 is None else (m68 + np.array([x0, y0])).round(2).tolist(),
            }
        )
    return faces


def label_eval() -> None:
    from .teachers import DlibTeacher, MediaPipeTeacher

    dl, mesh = DlibTeacher(), MediaPipeTeacher()
    fixtures = REPO / "tests" / "fixtures"
    fixtures.mkdir(parents=True, exist_ok=True)
    faces = {}
    for p in sorted((SHARED_DATA / "faces").iterdir()):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        faces[p.name] = label_scene(img, dl, mesh)
        print(p.name, len(faces[p.name]), "faces", flush=True)
    (fixtures / "teacher_faces.json").write_text(json.dumps(faces))
    cap = cv2.VideoCapture(str(SHARED_DATA / "video" / "short_hamilton_clip.mp4"))
    max_faces = 4
    d_all, m_all, boxes, counts = [], [], [], []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        fs = sorted(label_scene(frame, dl, mesh), key=lambda f: -f["box"][2])[:max_faces]
        d = np.full((max_faces, 68, 2), np.nan, np.float32)
        m = np.full((max_faces, 68, 2), np.nan, np.float32)
        b = np.full((max_faces, 4), np.nan, np.float32)
        for j, f in enumerate(fs):
            d[j] = f["dlib"]
            if f["mediapipe"]:
                m[j] = f["mediapipe"]
            b[j] = f["box"]
        d_all.append(d)
        m_all.append(m)
        boxes.append(b)
        counts.append(len(fs))
    # every face the teacher finds per frame (the clip cuts between a stage and an audience)
    np.savez_compressed(
        fixtures / "teacher_video.npz", dlib=np.stack(d_all), mediapipe=np.stack(m_all), boxes=np.stack(boxes), count=np.array(counts)
    )
    print("video frames:", len(counts), "with a face:", int((np.array(counts) > 0).sum()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    if a.eval:
        label_eval()
    else:
        label_expressions(a.workers)


if __name__ == "__main__":
    main()
