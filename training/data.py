"""Loading the cached teacher labels and images; identity-disjoint train/held-out split."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import cv2
import numpy as np

from .paths import expressions_dir, work
from .targets import build_ensemble, calibrate_mediapipe_offsets

NONFACE_IMAGES = (
    "brick", "coffee", "coins", "grass", "gravel", "horse", "moon", "page", "text", "rocket", "chelsea",
    "hubble_deep_field", "immunohistochemistry", "clock", "cell", "colorwheel", "retina",
    "shepp_logan_phantom", "binary_blobs", "checkerboard",
)  # scikit-image samples without human faces; `astronaut` is kept out: it is the demo/test face.


def identity(name: str) -> str:
    stem = name.rsplit(".", 1)[0]
    return re.sub(r"[_-]?\d+k?$", "", stem)


def is_heldout(name: str, fraction: float = 0.1, salt: str = "") -> bool:
    h = int(hashlib.sha256((salt + identity(name)).encode()).hexdigest()[:8], 16)
    return (h % 1000) < fraction * 1000


#: The AU / expression / valence networks use their own identity split (12 % of identities):
#: the landmark split holds out only 13 sadness, 1 disgust and 1 fear image, too few to
#: measure anything on. The salt was chosen among 400 by held-out *label counts only* (every
#: rare class 15-35 % held out; no model was run): 78 sadness, 50 anger, 50 disgust, 3 fear,
#: 70 surprise, 739 happiness, 1097 neutral. The landmark network may have seen these
#: images with landmark targets (never with expression labels).
AFFECT_SPLIT = {"fraction": 0.12, "salt": "affect32:"}


@dataclass
class FaceSet:
    names: np.ndarray
    labels: np.ndarray
    targets: np.ndarray  # [N,68,2] ensemble, image px
    disagreement: np.ndarray  # [N,68] IOD units
    images: list[np.ndarray]  # grey uint8
    heldout: np.ndarray  # bool
    mp_offsets: np.ndarray


def load_faceset(limit: int | None = None, split: str = "landmarks") -> FaceSet:
    """`split`: "landmarks" (the landmark network's identity split) or "affect" (AFFECT_SPLIT)."""
    z = np.load(work("teachers", "expressions.npz"))
    offsets = calibrate_mediapipe_offsets(z["mp"], z["dlib"])
    tgt, dis, ok = build_ensemble(z["mp"], z["dlib"], offsets)
    idx = np.flatnonzero(ok)
    if limit:
        idx = idx[:limit]
    img_dir = expressions_dir() / "images"
    images = [cv2.imread(str(img_dir / n), cv2.IMREAD_GRAYSCALE) for n in z["names"][idx]]
    names = z["names"][idx]
    return FaceSet(
        names=names,
        labels=z["labels"][idx],
        targets=tgt[idx],
        disagreement=dis[idx],
        images=images,
        heldout=np.array([is_heldout(n, **AFFECT_SPLIT) if split == "affect" else is_heldout(n) for n in names]),
        mp_offsets=offsets,
    )


def nonface_pool() -> list[np.ndarray]:
    import skimage.data as skd

    pool = []
    for n in NONFACE_IMAGES:
        # binary_blobs draws fresh random blobs on every call: seeded, so the pool (and every set
        # built from it) is the same on every run
        im = np.asarray(skd.binary_blobs(rng=0) if n == "binary_blobs" else getattr(skd, n)())
        if im.dtype == bool:
            im = im.astype(np.uint8) * 255
        if im.ndim == 3:
            im = cv2.cvtColor(im[..., :3].astype(np.uint8), cv2.COLOR_RGB2GRAY)
        pool.append(np.ascontiguousarray(im.astype(np.uint8)))
    return pool
