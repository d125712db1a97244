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
    closure_p: float = 0.0,
    yaw_p: float = 0.0,
    max_yaw_deg: float = 60.0,
    jitter: float = 1.0,
    info: dict | None = None,
    scale_bias: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training crop: (image uint8 [size,size], points in crop px [68,2], occluded [68]).

    jitter: strength of the window jitter (`jitter_window`); 1.0 covers detector windows,
    smaller values look like the tracker's windows from the previous frame's landmarks.

    closure_p: chance of a synthetic eye closure (`close_eyes`); yaw_p: chance of a
    cylinder yaw warp up to max_yaw_deg (`yaw_warp`; hidden points come back occluded).
    info: if given, gets "yaw_deg" (the warp's angle, 0 without one).
    scale_bias: log-scale added to the jittered window (> 0: wider, like the detector's first
    window, which measured 0.03-0.22 larger than the landmark window on the shared photos)."""
    w = window_from_landmarks(pts)
    if negative:
        w = bad_window(w, rng)
    elif augment:
        w = jitter_window(w, rng, jitter)
        if scale_bias:
            w = FaceWindow(w.cx, w.cy, w.size * math.exp(scale_bias), w.angle)
    m = w.to_crop_matrix(size)
    img = crop(gray, m, size)
    p = apply_affine(m, pts).astype(np.float32)
    occ = np.zeros(68, bool)
    if augment:
        if not negative and rng.random() < closure_p:
            img, p = close_eyes(img, p, random_closure(p, rng), rng)
        if not negative and rng.random() < yaw_p:
            th = math.radians(rng.uniform(15.0, max_yaw_deg)) * (1 if rng.random() < 0.5 else -1)
            img, p, occ = yaw_warp(img, p, th)
            if info is not None:
                info["yaw_deg"] = math.degrees(th)
        if rng.random() < 0.5:
            img = img[:, ::-1].copy()
            p = p[FLIP].copy()
            occ = occ[FLIP].copy()
            p[:, 0] = size - 1 - p[:, 0]
        if not negative and rng.random() < 0.35:
            occ = occ | occlude(img, p, rng)
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


# ---------------------------------------------------------------- eye state

#: iBUG eye contours as (outer/inner corner A, upper near A, upper near B, corner B, lower near B, lower near A).
EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))


def eye_aspect_ratios(pts: np.ndarray) -> np.ndarray:
    """[2] EAR of the subject's right (36-41) and left (42-47) eye (Soukupova & Cech)."""
    out = np.zeros(2, np.float32)
    for k, e in enumerate(EYES):
        p = pts[list(e)]
        w = np.linalg.norm(p[0] - p[3])
        out[k] = (np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * max(w, 1e-6))
    return out


#: EAR below which an eye counts as closed / above which it counts as open for the
#: eye-closed target (refined MediaPipe eyelids: ~0.04-0.05 shut, 0.26-0.35 open on real
#: video). In between the target ramps linearly (a squint is neither).
EAR_CLOSED, EAR_OPEN = 0.10, 0.18


def closed_target(ear: np.ndarray) -> np.ndarray:
    return np.clip((EAR_OPEN - np.asarray(ear, np.float32)) / (EAR_OPEN - EAR_CLOSED), 0.0, 1.0)


def close_eyes(img: np.ndarray, pts: np.ndarray, amount: tuple[float, float], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic eye closure: warp the upper lid onto the lower lid along the teacher landmarks.

    In each eye's frame (u along the corner-to-corner axis, v across it, down) the lid
    curves are piecewise-linear through the iBUG points. The skin band above the upper lid
    (half an eye width high) is stretched down to the new lid line v_u + c (v_l - v_u), and
    the visible eye between the lids is squeezed into what remains (nothing at c = 1), so
    lashes and lid crease move down with the lid and the iris disappears. The map is the
    identity at the corners and at the band's top, so no seams appear. Returns the warped
    image and the points with the upper-lid points moved onto the new lid line.
    """
    h, w = img.shape
    out_pts = pts.copy()
    map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    src_x, src_y = map_x.copy(), map_y.copy()
    lash = np.zeros((h, w), np.float32)
    for e, c in zip(EYES, amount):
        if c <= 0:
            continue
        p = pts[list(e)].astype(np.float64)
        a, b = p[0], p[3]
        length = np.linalg.norm(b - a)
        if length < 3:
            continue
        uax = (b - a) / length
        vax = np.array([-uax[1], uax[0]])
        loc = (p - a) @ np.stack([uax, vax], 1)  # [6, 2] (u, v)
        up = loc[[0, 1, 2, 3]]
        lo = loc[[0, 5, 4, 3]]
        if not (np.all(np.diff(up[:, 0]) > 0) and np.all(np.diff(lo[:, 0]) > 0)):
            continue  # degenerate contour (extreme pose): leave this eye alone
        rel = np.stack([map_x - a[0], map_y - a[1]], -1) @ np.stack([uax, vax], 1)
        u, v = rel[..., 0], rel[..., 1]
        inside = (u > 0) & (u < length)
        vu = np.interp(u, up[:, 0], up[:, 1])
        vl = np.interp(u, lo[:, 0], lo[:, 1])
        gap = np.maximum(vl - vu, 0.0)
        vn = vu + c * gap  # new upper-lid line
        vt = vu - 0.7 * length  # top of the stretched skin band
        # the teacher's lid line can sit inside the iris: take the skin from a margin above it,
        # so what covers the eye is lid skin, not a stretched iris
        vm = vu - c * (0.12 * length + 0.25 * gap)
        vs = v.copy()
        m1 = inside & (v >= vt) & (v < vn)
        vs[m1] = vt[m1] + (v[m1] - vt[m1]) * (vm[m1] - vt[m1]) / np.maximum(vn[m1] - vt[m1], 1e-3)
        m2 = inside & (v >= vn) & (v <= vl)
        vs[m2] = vm[m2] + (v[m2] - vn[m2]) * (vl[m2] - vm[m2]) / np.maximum(vl[m2] - vn[m2], 1e-3)
        vs[m2 & (vl - vn < 0.3)] = vl[m2 & (vl - vn < 0.3)]
        dv = vs - v
        src_x += (dv * vax[0]).astype(np.float32)
        src_y += (dv * vax[1]).astype(np.float32)
        if c > 0.6:  # lash line along the closed lid
            lash = np.maximum(lash, (inside * np.exp(-((v - vn) ** 2) / 0.8) * min(1.0, gap.max() / 3.0)).astype(np.float32))
        for j in (1, 2):  # upper-lid points move onto the new lid line
            uj = loc[j, 0]
            vj = loc[j, 1] + c * (float(np.interp(uj, lo[:, 0], lo[:, 1])) - loc[j, 1])
            out_pts[e[j]] = a + uj * uax + vj * vax
    warped = cv2.remap(img, src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if lash.any():
        dark = rng.uniform(0.15, 0.45)
        warped = np.clip(warped.astype(np.float32) * (1.0 - dark * lash), 0, 255).astype(np.uint8)
    return warped, out_pts.astype(np.float32)


def random_closure(pts: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Closure amounts (right, left): mostly both eyes (blinks, drowsiness), sometimes a wink;
    60 % fully shut, 40 % partly (squint, drooping lids). Eyes already shut stay as they are."""
    ear = eye_aspect_ratios(pts)
    c = float(rng.uniform(0.9, 1.0)) if rng.random() < 0.6 else float(rng.uniform(0.3, 0.85))
    both = rng.random() < 0.8
    side = int(rng.integers(2))
    amt = [c if (both or k == side) else 0.0 for k in range(2)]
    return tuple(a if ear[k] > EAR_OPEN else 0.0 for k, a in enumerate(amt))  # type: ignore[return-value]


# ---------------------------------------------------------------- yaw beyond the data


def yaw_warp(img: np.ndarray, pts: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn the face about a vertical axis by `theta` radians on a cylinder of the face's width.

    A point at horizontal offset x = R sin(phi) from the face's axis goes to R sin(phi + theta);
    points whose phi + theta passes ~80 deg are behind the silhouette: they stay at its edge
    and are returned as occluded (their uncertainty must be large). Pixels outside the
    cylinder are unchanged. A crude stand-in for profile views the data barely has (no depth
    of the nose); it teaches the net to keep points on the face and to raise sigma on the
    hidden side. Returns (image, points, occluded [68]).
    """
    h, w = img.shape
    cx = 0.5 * (pts[0, 0] + pts[16, 0])
    r = 0.55 * abs(pts[16, 0] - pts[0, 0]) + 1.0
    xs = np.arange(w, dtype=np.float64) - cx
    inside = np.abs(xs) < r
    phi_out = np.arcsin(np.clip(xs / r, -1, 1))
    phi_src = phi_out - theta
    src = np.where(inside & (np.abs(phi_src) < np.pi / 2), cx + r * np.sin(phi_src), xs + cx)
    # The side the face turns away from uncovers a band: stretch the background beyond the
    # face edge over it (monotonic, no copies of the face).
    edge = r * math.cos(theta)
    x_all = xs + cx
    if theta > 0 and cx - edge > 1:
        band = x_all < cx - edge
        src = np.where(band, x_all * (cx - r) / (cx - edge), src)
    elif theta < 0 and cx + edge < w - 2:
        band = x_all > cx + edge
        src = np.where(band, (w - 1) - ((w - 1) - x_all) * ((w - 1) - (cx + r)) / ((w - 1) - (cx + edge)), src)
    map_x = np.broadcast_to(src.astype(np.float32)[None, :], (h, w)).copy()
    map_y = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)).copy()
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    p = pts.astype(np.float64).copy()
    phi = np.arcsin(np.clip((p[:, 0] - cx) / r, -1, 1)) + theta
    occ = np.abs(phi) > np.radians(80)
    p[:, 0] = cx + r * np.sin(np.clip(phi, -np.pi / 2, np.pi / 2))
    return out, p.astype(np.float32), occ


def dark_positive(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dim, flat version of a face crop: what a dark stage or a NIR camera's red-channel
    frame gives (the fidelity gate's NIR-like crops have mean grey ~0.1-0.16). Int8 activations
    calibrated on bright and dark frames alike resolve such crops coarsely; training on them
    with quantisation in the loop (and the float/int8 consistency term) keeps the two close."""
    out = img.astype(np.float32) * rng.uniform(0.12, 0.5) + rng.uniform(0, 12)
    if rng.random() < 0.5:  # a glare spot like the NIR illuminator's
        h, w = out.shape
        yy, xx = np.mgrid[0:h, 0:w]
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h * 0.4), rng.uniform(8, 22)
        out = np.maximum(out, 255.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
    return np.clip(out + rng.normal(0, rng.uniform(0.5, 4), out.shape), 0, 255).astype(np.uint8)


def dark_negative(pool: list[np.ndarray], rng: np.random.Generator, size: int) -> np.ndarray:
    """A dim, low-contrast non-face patch (a dark car interior, a stage background)."""
    img = random_negative_patch(pool, rng, size).astype(np.float32)
    img = img * rng.uniform(0.05, 0.35) + rng.uniform(0, 25)
    return np.clip(img + rng.normal(0, rng.uniform(1, 6), img.shape), 0, 255).astype(np.uint8)
