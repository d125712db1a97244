"""Augmentation for the crop networks.

Every crop is drawn the way the runtime draws it (edgeaffect.vision.alignment), then
jittered in pose/scale/shift beyond what tracking produces, flipped with the iBUG index
remap, and degraded photometrically (blur, noise, gamma, contrast, NIR-like channel,
IR glare) and with synthetic occluders (hand-like blobs, glasses bars, random boxes).
The occlusion mask is returned so that evaluation can check that uncertainty rises on
occluded points.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edgeaffect.constants import IBUG_FLIP_PERMUTATION
from edgeaffect.vision.alignment import (
    FaceWindow,
    apply_affine,
    au_crop_matrix,
    crop,
    window_from_landmarks,
)

FLIP = np.array(IBUG_FLIP_PERMUTATION)


def jitter_window(w: FaceWindow, rng: np.random.Generator, strength: float = 1.0) -> FaceWindow:
    big = rng.random() < 0.15
    rot_sd = math.radians(28 if big else 12) * strength
    return FaceWindow(
        w.cx + rng.normal(0, 0.07 * strength) * w.size,
        w.cy + rng.normal(0, 0.07 * strength) * w.size,
        w.size * math.exp(rng.normal(0, 0.12 * strength)),
        w.angle + rng.normal(0, rot_sd),
    )


def bad_window(w: FaceWindow, rng: np.random.Generator) -> FaceWindow:
    """A window a tracker should reject: the face is mostly out of it, or far too small/large."""
    kind = rng.integers(3)
    if kind == 0:
        ang = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0.6, 1.2) * w.size
        return FaceWindow(w.cx + d * math.cos(ang), w.cy + d * math.sin(ang), w.size, w.angle)
    if kind == 1:
        return FaceWindow(w.cx, w.cy, w.size * rng.uniform(3.0, 5.0), w.angle)
    return FaceWindow(w.cx + rng.normal(0, 0.15) * w.size, w.cy + rng.normal(0, 0.15) * w.size, w.size * rng.uniform(0.25, 0.4), w.angle)


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.2:
        # motion blur
        k = int(rng.integers(3, 8))
        ker = np.zeros((k, k), np.float32)
        ker[k // 2] = 1.0 / k
        m = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        ker = cv2.warpAffine(ker, m, (k, k))
        out = cv2.filter2D(out, -1, ker / max(ker.sum(), 1e-6))
    # contrast / brightness / gamma
    out = (out - out.mean()) * math.exp(rng.normal(0, 0.25)) + out.mean() + rng.normal(0, 18)
    out = np.clip(out, 0, 255)
    if rng.random() < 0.5:
        out = 255.0 * (out / 255.0) ** math.exp(rng.normal(0, 0.35))
    if rng.random() < 0.15:
        # IR over-exposure: a saturated glare blob (sun through the windscreen, glasses)
        h, w = out.shape
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        blob = np.zeros_like(out)
        cv2.circle(blob, c, int(rng.integers(3, w // 4)), 255.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), 3)
        out = np.maximum(out, blob)
    if rng.random() < 0.4:
        out = out + rng.normal(0, rng.uniform(2, 10), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def occlude(img: np.ndarray, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw an occluder; returns the boolean mask of occluded landmarks."""
    h, w = img.shape
    mask = np.zeros((h, w), np.uint8)
    kind = rng.integers(3)
    shade = int(rng.integers(20, 235))
    if kind == 0:  # hand-like: a blob with finger-ish ellipses
        c = pts[int(rng.integers(0, 68))] + rng.normal(0, 8, 2)
        ax = (int(rng.integers(10, 24)), int(rng.integers(14, 30)))
        cv2.ellipse(mask, (int(c[0]), int(c[1])), ax, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        for _ in range(int(rng.integers(2, 5))):
            off = rng.normal(0, 10, 2)
            cv2.ellipse(mask, (int(c[0] + off[0]), int(c[1] + off[1])), (4, int(rng.integers(12, 22))), float(rng.uniform(0, 180)), 0, 360, 255, -1)
    elif kind == 1:  # glasses bar / sunglasses
        y = int((pts[36:48, 1].mean()) + rng.normal(0, 2))
        x0, x1 = int(pts[36:48, 0].min() - 6), int(pts[36:48, 0].max() + 6)
        if rng.random() < 0.5:  # dark lenses
            for eye in (pts[36:42], pts[42:48]):
                cc = eye.mean(0)
                cv2.ellipse(mask, (int(cc[0]), int(cc[1])), (int(np.ptp(eye[:, 0]) * 0.8 + 3), int(np.ptp(eye[:, 0]) * 0.55 + 3)), 0, 0, 360, 255, -1)
            shade = int(rng.integers(0, 60))
        else:  # frames only
            cv2.line(mask, (x0, y), (x1, y), 255, int(rng.integers(2, 5)))
            cv2.line(mask, (x0, y - 6), (x1, y - 6), 255, 2)
    else:  # random box (scarf, microphone, phone)
        x, y = pts[int(rng.integers(0, 68))] + rng.normal(0, 6, 2)
        bw, bh = rng.integers(12, 40, 2)
        cv2.rectangle(mask, (int(x - bw / 2), int(y - bh / 2)), (int(x + bw / 2), int(y + bh / 2)), 255, -1)
    texture = np.clip(shade + rng.normal(0, 12, (h, w)), 0, 255).astype(np.uint8)
    sel = mask > 0
    img[sel] = texture[sel]
    ij = np.clip(np.round(pts).astype(int), 0, [w - 1, h - 1])
    return sel[ij[:, 1], ij[:, 0]]


def landmark_sample(
    gray: np.ndarray,
    pts: np.ndarray,
    rng: np.random.Generator,
    size: int,
    *,
    negative: bool = False,
    augment: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training crop: (image uint8 [size,size], points in crop px [68,2], occluded [68])."""
    w = window_from_landmarks(pts)
    if negative:
        w = bad_window(w, rng)
    elif augment:
        w = jitter_window(w, rng)
    m = w.to_crop_matrix(size)
    img = crop(gray, m, size)
    p = apply_affine(m, pts).astype(np.float32)
    occ = np.zeros(68, bool)
    if augment:
        if rng.random() < 0.5:
            img = img[:, ::-1].copy()
            p = p[FLIP].copy()
            p[:, 0] = size - 1 - p[:, 0]
        if not negative and rng.random() < 0.35:
            occ = occlude(img, p, rng)
        img = photometric(img, rng)
    return img, p, occ


def au_sample(gray: np.ndarray, pts: np.ndarray, rng: np.random.Generator, size: int, augment: bool = True) -> np.ndarray:
    """AU crop from (noisy) landmarks, as the runtime does it from the landmark net's output."""
    if augment:
        iod = np.linalg.norm(pts[36] - pts[45])
        pts = pts + rng.normal(0, 0.025 * iod, pts.shape)
    img = crop(gray, au_crop_matrix(pts, size), size)
    if augment:
        if rng.random() < 0.5:
            img = img[:, ::-1].copy()  # AUs are (nearly) symmetric labels
        img = photometric(img, rng)
    return img


def random_negative_patch(pool: list[np.ndarray], rng: np.random.Generator, size: int) -> np.ndarray:
    """A crop with no face in it, from non-face images or synthetic texture."""
    if pool and rng.random() < 0.8:
        src = pool[int(rng.integers(len(pool)))]
        h, w = src.shape
        s = int(rng.uniform(0.15, 0.9) * min(h, w))
        x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        img = cv2.resize(src[y : y + s, x : x + s], (size, size), interpolation=cv2.INTER_AREA)
    else:
        img = cv2.resize(rng.integers(0, 255, (8, 8)).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        img = img[:, ::-1].copy()
    return photometric(img, rng)
