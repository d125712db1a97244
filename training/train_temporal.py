"""Train the temporal valence/arousal network on sequences composed from labelled images.

    python -m training.train_temporal [--steps 3000]

There is no valence/arousal ground truth reachable. What this trains on, exactly:
1. every usable expression image (identity-disjoint train / held-out split) is run through
   the project's own *trained* landmark and AU networks (float PyTorch) under K mild
   augmentations -> per-frame feature rows, exactly as the runtime builds them
   (edgeaffect.models.affect.frame_features);
2. windows of T frames are composed from segments (20-90 frames) of one image each, with
   tracker-like jitter, cross-fades at segment boundaries, bursts of invalid frames (zero
   rows, as at run time when the face is lost) and zero-padded stream starts;
3. the per-frame target is the segment's expression label mapped onto the circumplex
   (edgeaffect.constants.EXPRESSION_CIRCUMPLEX), smoothed over time; invalid frames keep
   the last target (the model must hold its estimate and raise its uncertainty).
The loss is the deep-evidential-regression NIG negative log-likelihood + evidence
regulariser on every step from the 32nd on. Checkpointed/resumable (work/temporal/).
Writes models/affect/{affect.onnx, train_metrics.json} with held-out CCC and the
leave-N-in test (keep the N% lowest-uncertainty frames: error must fall as N falls).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from edgeaffect.constants import EXPRESSION_CIRCUMPLEX, TEMPORAL_FEATURES
from edgeaffect.models.affect import decode_nig, frame_features, uncertainty_from_var
from edgeaffect.vision.alignment import (
    AU_CROP_SIZE,
    LANDMARK_CROP_SIZE,
    apply_affine,
    crop,
    invert_affine,
    window_from_landmarks,
)

from . import checkpoint
from .augment import au_sample, jitter_window, photometric
from .data import load_faceset
from .models import AUNet, LandmarkNet, TemporalVANet, count_macs, export_onnx
from .paths import MODELS_SRC, work

T = 128
K_AUG = 3
LABEL_WEIGHTS = {"neutral": 0.3, "happiness": 0.25, "surprise": 0.1, "sadness": 0.1, "anger": 0.1, "disgust": 0.08, "fear": 0.05, "contempt": 0.02}


def compute_features(fs, seed: int = 0) -> np.ndarray:
    """[N, K, F] feature rows from the trained float landmark + AU networks."""
    lm = LandmarkNet()
    st = torch.load(work("landmarks", "final.pt"), weights_only=False)
    lm.load_state_dict(st["model"])
    mean = torch.from_numpy(st["mean"])
    au = AUNet()
    au.load_state_dict(torch.load(work("aus", "final.pt"), weights_only=False)["model"])
    lm.eval()
    au.eval()
    rng = np.random.default_rng(seed)
    feats = np.zeros((len(fs.names), K_AUG, TEMPORAL_FEATURES), np.float32)
    with torch.no_grad():
        for k in range(K_AUG):
            for s in range(0, len(fs.names), 128):
                idx = range(s, min(s + 128, len(fs.names)))
                crops, mats = [], []
                for i in idx:
                    w = jitter_window(window_from_landmarks(fs.targets[i]), rng, strength=0.4)
                    m = w.to_crop_matrix(LANDMARK_CROP_SIZE)
                    img = crop(fs.images[i], m, LANDMARK_CROP_SIZE)
                    crops.append(photometric(img, rng) if k > 0 else img)
                    mats.append(m)
                x = torch.from_numpy(np.stack(crops)[:, None].astype(np.float32) / 255.0)
                off, ls, _ = lm(x)
                pts_c = ((mean + off.view(-1, 68, 2)) * LANDMARK_CROP_SIZE).numpy()
                sig = np.exp(ls.numpy())
                pts = [apply_affine(invert_affine(m), p) for m, p in zip(mats, pts_c)]
                au_in = np.stack([au_sample(fs.images[i], p, rng, AU_CROP_SIZE, augment=k > 0) for i, p in zip(idx, pts)])
                aus = au(torch.from_numpy(au_in[:, None].astype(np.float32) / 255.0)).numpy()
                for j, i in enumerate(idx):
                    feats[i, k] = frame_features(pts[j], sig[j], aus[j])
            print(f"features: augmentation {k + 1}/{K_AUG} done", flush=True)
    return feats


class SequenceComposer:
    def __init__(self, feats: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> None:
        self.feats, self.labels = feats, labels
        self.by_label = {lab: idx[labels[idx] == lab] for lab in LABEL_WEIGHTS if (labels[idx] == lab).any()}
        labs = list(self.by_label)
        p = np.array([LABEL_WEIGHTS[lab] for lab in labs])
        self.labs, self.p = labs, p / p.sum()

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.zeros((T, TEMPORAL_FEATURES), np.float32)
        y = np.zeros((T, 2), np.float32)
        valid = np.ones(T, bool)
        t = 0
        prev_row, prev_target = None, None
        while t < T:
            lab = self.labs[rng.choice(len(self.labs), p=self.p)]
            i = int(rng.choice(self.by_label[lab]))
            n = int(rng.integers(20, 91))
            target = np.array(EXPRESSION_CIRCUMPLEX[lab], np.float32)
            for j in range(n):
                if t >= T:
                    break
                row = self.feats[i, rng.integers(K_AUG)].copy()
                row[:136] += rng.normal(0, 0.01, 136).astype(np.float32)  # tracker jitter
                if prev_row is not None and j < 5:  # cross-fade between segments
                    a = (j + 1) / 6
                    row = a * row + (1 - a) * prev_row
                x[t] = row
                # affect changes smoothly: exponential approach to the new target
                y[t] = target if prev_target is None else prev_target + (target - prev_target) * (1 - math.exp(-(j + 1) / 8))
                t += 1
            prev_row, prev_target = x[t - 1].copy(), y[t - 1].copy()
        if rng.random() < 0.35:  # a burst of invalid frames (face lost): zeros, target held
            s = int(rng.integers(0, T))
            e = min(T, s + int(rng.integers(3, 50)))
            x[s:e] = 0.0
            valid[s:e] = False
        if rng.random() < 0.2:  # start of a stream: zero padding
            x[: int(rng.integers(1, T - 16))] = 0.0
        return x, y, valid


def nig_loss(raw: torch.Tensor, y: torch.Tensor, lam: float = 0.01) -> torch.Tensor:
    gamma = torch.tanh(raw[..., 0:2])
    nu = torch.nn.functional.softplus(raw[..., 2:4]) + 1e-3
    alpha = torch.nn.functional.softplus(raw[..., 4:6]) + 1.0 + 1e-3
    beta = torch.nn.functional.softplus(raw[..., 6:8]) + 1e-4
    omega = 2 * beta * (1 + nu)
    nll = (
        0.5 * torch.log(math.pi / nu)
        - alpha * torch.log(omega)
        + (alpha + 0.5) * torch.log(nu * (y - gamma) ** 2 + omega)
        + torch.lgamma(alpha)
        - torch.lgamma(alpha + 0.5)
    )
    reg = (y - gamma).abs() * (2 * nu + alpha)
    return (nll + lam * reg).mean() + ((y - gamma) ** 2).mean()


def ccc(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb = a.mean(), b.mean()
    cov = ((a - ma) * (b - mb)).mean()
    return float(2 * cov / (a.var() + b.var() + (ma - mb) ** 2 + 1e-12))


def evaluate(model, comp: SequenceComposer, n: int = 600, seed: int = 99) -> dict:
    rng = np.random.default_rng(seed)
    xs, ys, vs = zip(*[comp.sample(rng) for _ in range(n)])
    x = torch.from_numpy(np.stack(xs))
    model.eval()
    with torch.no_grad():
        raw = model(x).numpy()
    model.train()
    y = np.stack(ys)
    valid = np.stack(vs)
    # evaluate the steps the runtime uses (the last of each window) + every step >= 64
    d = decode_nig(raw[:, 64:])
    pred, yt, vmask = d["mean"], y[:, 64:], valid[:, 64:]
    cum = uncertainty_from_var(d["aleatoric"] + d["epistemic"]).mean(-1).ravel()
    err = np.sqrt(((pred - yt) ** 2).mean(-1)).ravel()
    order = np.argsort(cum)
    leave_n_in = {}
    for keep in (100, 90, 75, 50, 25, 10):
        k = max(1, int(len(order) * keep / 100))
        leave_n_in[f"{keep}%"] = float(err[order[:k]].mean())
    last = decode_nig(raw[:, -1])
    from scipy.stats import spearmanr

    return {
        "heldout_sequences": n,
        "ccc_valence_last_step": ccc(last["mean"][:, 0], y[:, -1, 0]),
        "ccc_arousal_last_step": ccc(last["mean"][:, 1], y[:, -1, 1]),
        "ccc_valence_valid_steps": ccc(pred[..., 0][vmask], yt[..., 0][vmask]),
        "ccc_arousal_valid_steps": ccc(pred[..., 1][vmask], yt[..., 1][vmask]),
        "rmse_leave_n_in": leave_n_in,
        "cumulative_uncertainty_vs_error_spearman": float(spearmanr(cum, err)[0]),
        "mean_cumulative_uncertainty_valid": float(cum.reshape(vmask.shape)[vmask].mean()),
        "mean_cumulative_uncertainty_invalid": float(cum.reshape(vmask.shape)[~vmask].mean()) if (~vmask).any() else None,
    }


def export_affect_onnx(model, path) -> None:
    export_onnx(model, torch.zeros(1, T, TEMPORAL_FEATURES), path, ["window"], ["va_raw"], {
        "edgeaffect.kind": "temporal",
        "edgeaffect.window_frames": str(T),
        "edgeaffect.features": "[68x2 normalised landmarks, 68 sigmas x20, 15 AUs / 5]; invalid frame = zeros",
        "edgeaffect.postprocess": "NIG: mean=tanh(c0:2), nu=softplus(c2:4), alpha=1+softplus(c4:6), beta=softplus(c6:8)",
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(3)
    fs = load_faceset()
    fpath = work("temporal", "features.npz")
    if fpath.exists():
        feats = np.load(fpath)["feats"]
    else:
        feats = compute_features(fs)
        np.savez(fpath, feats=feats)
    train = SequenceComposer(feats, fs.labels, np.flatnonzero(~fs.heldout))
    held = SequenceComposer(feats, fs.labels, np.flatnonzero(fs.heldout))
    model = TemporalVANet(TEMPORAL_FEATURES)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.steps, pct_start=0.1)
    ckpt = work("temporal", "ckpt.pt")
    start, history = 0, []
    st = checkpoint.load(ckpt)
    if st:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        start, history = st["step"], st["history"]
        print("resumed at step", start, flush=True)
    rng = np.random.default_rng(5 + start)
    t0, agg = time.time(), 0.0
    for step in range(start, a.steps):
        xs, ys, _ = zip(*[train.sample(rng) for _ in range(a.batch)])
        raw = model(torch.from_numpy(np.stack(xs)))
        loss = nig_loss(raw[:, 32:], torch.from_numpy(np.stack(ys))[:, 32:])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        sched.step()
        agg += loss.item()
        if (step + 1) % 250 == 0:
            m = evaluate(model, held, n=200)
            m["step"] = step + 1
            history.append(m)
            print(f"step {step + 1} loss {agg / 250:.4f} {time.time() - t0:.0f}s", json.dumps({k: m[k] for k in ('ccc_valence_last_step', 'ccc_arousal_last_step', 'rmse_leave_n_in')}), flush=True)
            agg = 0.0
            checkpoint.save(ckpt, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), step=step + 1, history=history)
    out = MODELS_SRC / "affect"
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, work("temporal", "final.pt"))
    export_affect_onnx(model, out / "affect.onnx")
    final = evaluate(model, held, n=600)
    macs, params = count_macs(model, torch.zeros(1, T, TEMPORAL_FEATURES))
    final.update(macs_per_window=macs, params=params, steps=a.steps, window_frames=T)
    (out / "train_metrics.json").write_text(json.dumps({"final": final, "history": history}, indent=1))
    print(json.dumps(final, indent=1), flush=True)


if __name__ == "__main__":
    main()
