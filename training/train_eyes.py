"""Train the eye-state network: one aligned grey eye patch -> closed logit.

    EDGEAFFECT_WORK=/work/shared-work nice -n 10 python -m training.train_eyes [--epochs 6]
        # -> models/eyes/eyes.onnx, models/eyes/train_metrics.json,
        #    work/eyes/calib_heldout.npy (held-out real patches for the int8 calibration and gate)

Teacher: MediaPipe Face Mesh refine_landmarks=True (work/teachers/expressions.npz, `mp`, the
refined eyelid points mapped to iBUG-68), per-eye EAR; soft target sigmoid((0.14 - EAR) / 0.02).
Patches: edgeaffect.vision.eyes.eye_patches geometry from the eye corners (iBUG 36/39, 42/45)
of BOTH teachers (MediaPipe and dlib) and of the shipped landmark network (at runtime the
corners come from it), jittered by ~4 % of the eye width, the left eye mirrored. The logit
offset that undoes the closed-eye oversampling is chosen on validation identities (training
side) with the landmark network's corners.
Photometric augmentation: gamma, blur, noise, contrast compression (NIR-like); the input is
normalised by edgeaffect.vision.eyes.normalise_eye_patches, exactly as at runtime.
Closed patches are oversampled. Identities held out by training.data.is_heldout are never seen.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import cv2
import numpy as np
import torch
import torch.nn as nn

from edgeaffect.vision.eyes import EYE_PATCH_H, EYE_PATCH_W, eye_patch_matrix, normalise_eye_patches
from training.augment import eye_aspect_ratios
from training.data import is_heldout
from training.models import conv_bn, count_macs, export_onnx
from training.paths import REPO, expressions_dir, work

EAR_MID, EAR_SOFT = 0.14, 0.02
OVERSAMPLE = 16  # patches per eye with teacher EAR < 0.16 (one per open eye)
CORNERS = ((36, 39), (42, 45))


class EyeNet(nn.Module):
    """24x40 grey -> 1 logit; ReLU6 everywhere (int8-friendly), ~1.3 MMACs."""

    def __init__(self) -> None:
        super().__init__()
        a = nn.ReLU6
        self.body = nn.Sequential(
            conv_bn(1, 8, 3, 2, a), conv_bn(8, 16, 3, 1, a), conv_bn(16, 32, 3, 2, a), conv_bn(32, 32, 3, 1, a), conv_bn(32, 48, 3, 2, a)
        )
        self.fc = nn.Linear(48, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean((2, 3)))


def soft_target(ear: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-(EAR_MID - np.asarray(ear, np.float64)) / EAR_SOFT))).astype(np.float32)


def cut(gray: np.ndarray, a: np.ndarray, b: np.ndarray, mirror: bool) -> np.ndarray:
    p = cv2.warpAffine(gray, eye_patch_matrix(a, b), (EYE_PATCH_W, EYE_PATCH_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return p[:, ::-1] if mirror else p


def build_bank(idx: np.ndarray, names, mp, dl, ear: np.ndarray, rng: np.random.Generator, jitter: float, n_open: int, n_closed: int,
               net: np.ndarray | None = None):
    """(patches uint8 [N,H,W], targets [N], teacher EAR [N], image index [N])."""
    img_dir = expressions_dir() / "images"
    xs, ts, es, ii = [], [], [], []
    for i in idx:
        gray = cv2.imread(str(img_dir / names[i]), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            continue
        for k, (ca, cb) in enumerate(CORNERS):
            e = float(ear[i, k])
            if not math.isfinite(e):
                continue
            n = n_closed if e < 0.16 else n_open
            cand = (mp[i], dl[i]) if net is None else (mp[i], dl[i], net[i])
            sets = [s for s in cand if not np.isnan(s[[ca, cb]]).any()]
            off = int(rng.integers(len(sets)))
            for r in range(n):
                pts = sets[(r + off) % len(sets)]
                a, b = pts[ca].astype(np.float64), pts[cb].astype(np.float64)
                if jitter > 0:
                    w = np.linalg.norm(b - a)
                    a = a + rng.normal(0, jitter * w, 2)
                    b = b + rng.normal(0, jitter * w, 2)
                xs.append(cut(gray, a, b, mirror=k == 1))
                ts.append(soft_target(e))
                es.append(e)
                ii.append(i)
    return np.stack(xs), np.array(ts, np.float32), np.array(es, np.float32), np.array(ii)


def synthetic_bank(idx: np.ndarray, names, mp, dl, net, ear: np.ndarray, rng: np.random.Generator, jitter: float, n: int):
    """Synthetic closure (training.augment.close_eyes: the upper lid warped onto the lower one
    along MediaPipe's points) of `n` open-eye training images, so identities never seen with
    their eyes shut are; target from the warped points' EAR. Corners are not moved by the warp."""
    from training.augment import close_eyes, random_closure

    img_dir = expressions_dir() / "images"
    xs, ts = [], []
    pick = rng.choice(idx, min(n, len(idx)), replace=False)
    for i in pick:
        gray = cv2.imread(str(img_dir / names[i]), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            continue
        amt = random_closure(mp[i], rng)
        if max(amt) <= 0:
            continue
        warped, pts = close_eyes(gray, mp[i], amt, rng)
        e2 = eye_aspect_ratios(pts)
        for k, (ca, cb) in enumerate(CORNERS):
            sets = [s for s in (mp[i], dl[i], net[i]) if not np.isnan(s[[ca, cb]]).any()]
            src = sets[int(rng.integers(len(sets)))]
            a, b = src[ca].astype(np.float64), src[cb].astype(np.float64)
            w = np.linalg.norm(b - a)
            a, b = a + rng.normal(0, jitter * w, 2), b + rng.normal(0, jitter * w, 2)
            xs.append(cut(warped, a, b, mirror=k == 1))
            ts.append(soft_target(e2[k]))
    return np.stack(xs), np.array(ts, np.float32)


def landmark_model_tag() -> str:
    """First 12 hex digits of the shipped landmark model's sha256 (names the caches built with it)."""
    from edgeaffect.models import ASSETS, find_model

    return str(json.loads(find_model(ASSETS, "landmarks").read_text()).get("sha256", ""))[:12]


def net_points(names, mp, dl) -> np.ndarray:
    """[N, 68, 2] the shipped landmark network's points on every image (NaN where a teacher is
    missing), from the crop the tracker would give it (as scripts/eval_eyes.py): at runtime the
    eye corners come from this network, so training sees its corner errors too. Cached."""
    from edgeaffect.models import ASSETS, find_model

    cache = work("eyes", f"net_points_{landmark_model_tag()}.npy")  # per landmark model file
    if cache.exists():
        return np.load(cache)
    from edgeaffect.models.landmarks import LandmarkModel
    from edgeaffect.runtime.runner import ModelRunner
    from edgeaffect.vision.alignment import window_from_landmarks
    from training.targets import teacher_target

    offsets = np.array(json.loads((REPO / "tests" / "fixtures" / "mediapipe_offsets.json").read_text())["offsets"])
    lm = LandmarkModel(ModelRunner(find_model(ASSETS, "landmarks"), num_threads=1))
    out = np.full((len(names), 68, 2), np.nan, np.float32)
    img_dir = expressions_dir() / "images"
    for i in range(len(names)):
        if np.isnan(mp[i]).any() or np.isnan(dl[i]).any():
            continue
        gray = cv2.imread(str(img_dir / names[i]), cv2.IMREAD_GRAYSCALE)
        if gray is not None:
            out[i] = lm.run(gray, window_from_landmarks(teacher_target(dl[i], mp[i], offsets))).points
    np.save(cache, out)
    return out


def photometric(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N,H,W] -> augmented uint8 (gamma, contrast compression, blur, noise)."""
    x = x.astype(np.float32) / 255.0
    n = len(x)
    g = np.exp(rng.normal(0, 0.35, n)).astype(np.float32)[:, None, None]
    x = np.power(np.clip(x, 1e-4, 1.0), g)
    c = rng.uniform(0.35, 1.0, n).astype(np.float32)[:, None, None]  # NIR-like flat contrast
    x = 0.5 + (x - 0.5) * c
    blur = rng.random(n) < 0.3
    for j in np.flatnonzero(blur):
        x[j] = cv2.GaussianBlur(x[j], (0, 0), float(rng.uniform(0.5, 1.3)))
    x = x + rng.normal(0, 1, x.shape).astype(np.float32) * rng.uniform(0, 0.04, n).astype(np.float32)[:, None, None]
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def auc(score: np.ndarray, pos: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(score)
    npos, nneg = int(pos.sum()), int((~pos).sum())
    return float((r[pos].sum() - npos * (npos + 1) / 2) / max(npos * nneg, 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic", type=int, default=0, help="open-eye training images also shown synthetically closed")
    ap.add_argument("--calib-only", action="store_true", help="only (re)write work/eyes/calib_heldout.npy from the cached patches")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    z = np.load(work("teachers", "expressions.npz"))
    names, mp, dl = z["names"], z["mp"], z["dlib"]
    have = ~np.isnan(mp).any((1, 2))
    ear = np.full((len(names), 2), np.nan, np.float32)
    ear[have] = np.stack([eye_aspect_ratios(m) for m in mp[have]])
    held = np.array([is_heldout(n) for n in names])
    t0 = time.time()
    # validation identities (from the training side, never the held-out ones): choose the logit offset
    val = np.array([is_heldout(n, 0.1, salt="eyes-val:") for n in names]) & ~held
    net = net_points(names, mp, dl)  # the landmark network's own corners: a third corner set
    cache = work("eyes", f"bank_v3_{a.seed}_{landmark_model_tag()}.npz")
    if cache.exists():
        c = np.load(cache)
        xtr, ytr, xva, eva, xte, ete, ite = c["xtr"], c["ytr"], c["xva"], c["eva"], c["xte"], c["ete"], c["ite"]
    else:
        tr = np.flatnonzero(have & ~held & ~val)
        xtr, ytr, _, _ = build_bank(tr, names, mp, dl, ear, rng, 0.04, 1, OVERSAMPLE, net)
        # validation: the landmark network's corners (the runtime's input), no jitter, one patch per
        # eye (the natural mix); held-out: MediaPipe's corners (scripts/eval_eyes.py runs the runtime path)
        hv = have & val & ~np.isnan(net).any((1, 2))
        xva, _, eva, _ = build_bank(np.flatnonzero(hv), names, net, net, ear, rng, 0.0, 1, 1)
        xte, _, ete, ite = build_bank(np.flatnonzero(have & held), names, mp, mp, ear, rng, 0.0, 1, 1)
        np.savez(cache, xtr=xtr, ytr=ytr, xva=xva, eva=eva, xte=xte, ete=ete, ite=ite)
    if a.calib_only:
        write_calibration(xte, ete, rng)
        return
    if a.synthetic:
        opened = np.flatnonzero(have & ~held & ~val & (np.nan_to_num(ear, nan=0.0) > 0.18).all(1))
        xs, ys = synthetic_bank(opened, names, mp, dl, net, ear, np.random.default_rng(a.seed + 1), 0.04, a.synthetic)
        xtr, ytr = np.concatenate([xtr, xs]), np.concatenate([ytr, ys])
        print(f"synthetic closure: {len(xs)} patches ({(ys > 0.5).sum()} closed)", flush=True)
    print(f"bank: train {len(xtr)} ({(ytr > 0.5).sum()} closed), held-out {len(xte)} ({(ete < 0.10).sum()} closed) in {time.time() - t0:.0f}s", flush=True)
    net = EyeNet()
    macs, params = count_macs(net, torch.zeros(1, 1, EYE_PATCH_H, EYE_PATCH_W))
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-4)
    bs = 256
    steps = a.epochs * (len(xtr) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    lossf = nn.BCEWithLogitsLoss()
    step = 0
    for ep in range(a.epochs):
        net.train()
        perm = rng.permutation(len(xtr))
        tot = 0.0
        for s in range(len(xtr) // bs):
            j = perm[s * bs : (s + 1) * bs]
            xb = torch.from_numpy(normalise_eye_patches(photometric(xtr[j], rng)))[:, None]
            loss = lossf(net(xb).squeeze(1), torch.from_numpy(ytr[j]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            tot += float(loss.detach())
        print(f"epoch {ep + 1}/{a.epochs} loss {tot / max(len(xtr) // bs, 1):.4f} ({time.time() - t0:.0f}s)", flush=True)
    net.eval()
    with torch.no_grad():
        # closed patches were drawn OVERSAMPLE times as often as open ones, which shifts the logit;
        # the offset that undoes it is chosen on the validation identities (best F1 of closed
        # EAR < 0.10 vs open EAR > 0.18 at p > 0.5, natural mix), never on the held-out ones
        lv = net(torch.from_numpy(normalise_eye_patches(xva))[:, None]).squeeze(1).numpy()
        vc, vo = eva < 0.10, eva > 0.18
        best = (-1.0, 0.0)
        for off in np.arange(-4.0, 1.01, 0.1):
            tp = int(((lv + off > 0) & vc).sum())
            fp = int(((lv + off > 0) & vo).sum())
            f1 = 2 * tp / max(2 * tp + fp + int(vc.sum()) - tp, 1)
            best = max(best, (f1, round(float(off), 2)))
        offset = best[1]
        net.fc.bias += offset
        xin = normalise_eye_patches(xte)
        p = torch.sigmoid(net(torch.from_numpy(xin)[:, None]).squeeze(1)).numpy()
    closed, opened = ete < 0.10, ete > 0.18
    sel = closed | opened
    tp = int(((p > 0.5) & closed).sum())
    metrics = {
        "produced_by": "python -m training.train_eyes" + (f" --synthetic {a.synthetic}" if a.synthetic else ""), "epochs": a.epochs,
        "synthetic_closure_images": a.synthetic, "closed_oversampling": OVERSAMPLE,
        "logit_offset_from_validation": offset, "validation_f1": round(best[0], 4),
        "validation_closed_eyes": int(vc.sum()), "validation_open_eyes": int(vo.sum()), "macs": int(macs), "params": int(params),
        "train_patches": int(len(xtr)), "heldout_patches": int(len(xte)),
        "heldout_float_auc_closed_vs_open": round(auc(p[sel], closed[sel]), 4),
        "heldout_float_recall": round(tp / max(int(closed.sum()), 1), 4),
        "heldout_float_precision": round(tp / max(int(((p > 0.5) & sel).sum()), 1), 4),
        "heldout_closed_eyes": int(closed.sum()), "heldout_open_eyes": int(opened.sum()),
    }
    print(json.dumps(metrics, indent=1), flush=True)
    out = REPO / "models" / "eyes"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), work("eyes", "eyes.pt"))
    (out / "train_metrics.json").write_text(json.dumps({"final": metrics}, indent=1))
    export_onnx(net, torch.zeros(1, 1, EYE_PATCH_H, EYE_PATCH_W), out / "eyes.onnx", ["patch"], ["closed_logit"],
                {"edgeaffect.kind": "eyes", "edgeaffect.patch": json.dumps([EYE_PATCH_W, EYE_PATCH_H])})
    write_calibration(xte, ete, rng)


def write_calibration(xte: np.ndarray, ete: np.ndarray, rng: np.random.Generator) -> None:
    """Held-out identities' real patches (NHWC, normalised as at runtime) for the converter's
    calibration and int8 gate: every eye with teacher EAR < 0.18 (closed and squinting, where
    the decision lies) plus open ones, 600 in all."""
    low = np.flatnonzero(ete < 0.18)
    rest = np.setdiff1d(np.arange(len(ete)), low)
    pick = np.sort(np.concatenate([low, rng.choice(rest, max(600 - len(low), 0), replace=False)]))
    np.save(work("eyes", "calib_heldout.npy"), normalise_eye_patches(xte[pick])[:, :, :, None])


if __name__ == "__main__":
    main()
