"""Train the landmark network by distillation from the teacher ensemble.

    python -m training.train_landmarks [--epochs 14] [--limit N]

Checkpoints every epoch to work/landmarks/ckpt.pt and resumes from it; when done, writes
models/landmarks/{landmarks.onnx, train_metrics.json}. Runs on the CPU (~2.5 min/epoch on
2 cores).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from edgeaffect.vision.alignment import LANDMARK_CROP_SIZE as SIZE
from edgeaffect.vision.alignment import apply_affine, window_from_landmarks

from . import checkpoint
from .augment import landmark_sample, random_negative_patch
from .data import load_faceset, nonface_pool
from .models import LandmarkNet, count_macs, export_onnx
from .paths import MODELS_SRC, work


def mean_shape(fs) -> np.ndarray:
    acc = []
    for i in np.flatnonzero(~fs.heldout):
        m = window_from_landmarks(fs.targets[i]).to_crop_matrix(SIZE)
        acc.append(apply_affine(m, fs.targets[i]) / SIZE)
    return np.mean(acc, 0).astype(np.float32)


def make_batch(fs, idx, rng, pool, n_neg_window: int, n_neg_patch: int):
    imgs, pts, occ, valid, dis = [], [], [], [], []
    for i in idx:
        im, p, o = landmark_sample(fs.images[i], fs.targets[i], rng, SIZE)
        imgs.append(im)
        pts.append(p / SIZE)
        occ.append(o)
        valid.append(1.0)
        dis.append(fs.disagreement[i])
    for _ in range(n_neg_window):
        i = int(rng.choice(idx))
        im, _, _ = landmark_sample(fs.images[i], fs.targets[i], rng, SIZE, negative=True)
        imgs.append(im)
    for _ in range(n_neg_patch):
        if rng.random() < 0.3:  # an upside-down face is not a trackable face
            i = int(rng.choice(idx))
            im, _, _ = landmark_sample(fs.images[i], fs.targets[i], rng, SIZE)
            im = im[::-1, ::-1].copy()
        else:
            im = random_negative_patch(pool, rng, SIZE)
        imgs.append(im)
    n_neg = n_neg_window + n_neg_patch
    valid += [0.0] * n_neg
    x = torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32) / 255.0)
    return (
        x,
        torch.from_numpy(np.stack(pts).astype(np.float32)),
        torch.from_numpy(np.stack(dis).astype(np.float32)),
        torch.tensor(valid),
        np.stack(occ),
    )


#: Extra target std (in inter-ocular units) for an occluded point: its position is a
#: guess from the shape prior, so its uncertainty must be higher whatever the error was.
OCCLUDED_STD = 0.12


def losses(model, mean, x, pts, dis, valid, occ=None):
    n_pos = pts.shape[0]
    off, log_sigma, vlogit = model(x)
    pred = mean + off[:n_pos].view(-1, 68, 2)
    iod = torch.linalg.norm(pts[:, 36] - pts[:, 45], dim=1).clamp(min=0.05)
    err = torch.linalg.norm(pred - pts, dim=2)  # [B,68] crop-normalised units
    l_coord = (err / iod[:, None]).mean()
    ls = log_sigma[:n_pos].clamp(-8, 3)
    e2 = err.detach() ** 2 + 0.5 * (dis * iod[:, None]) ** 2
    if occ is not None:
        e2 = e2 + torch.from_numpy(occ.astype("float32")) * (OCCLUDED_STD * iod[:, None]) ** 2
    l_nll = (e2 / (2 * torch.exp(2 * ls)) + 2 * ls).mean()
    l_valid = nn.functional.binary_cross_entropy_with_logits(vlogit[:, 0], valid)
    return l_coord, l_nll, l_valid, err, iod


def train_step(model, mean_t, opt, fs, idx, rng, pool, batch: int, nll_weight: float) -> tuple[float, float, float]:
    """One optimiser step on a batch of positives + 1/6 bad windows + 1/6 non-face patches.
    Loss = 10 * coordinate NME + nll_weight * uncertainty NLL + 0.5 * validity BCE (stage 1
    uses 0.05 on the NLL, the uncertainty fine-tune 0.5). Returns the three loss values."""
    x, pts, dis, valid, occ = make_batch(fs, idx, rng, pool, batch // 6, batch // 6)
    lc, ln, lv = losses(model, mean_t, x, pts, dis, valid, occ)[:3]
    loss = lc * 10 + nll_weight * ln + 0.5 * lv
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return lc.item(), ln.item(), lv.item()


def evaluate(model, fs, mean, pool, seed: int = 123) -> dict:
    rng = np.random.default_rng(seed)
    model.eval()
    idx = np.flatnonzero(fs.heldout)
    nmes, errs, sigmas, occs, vpos, vneg = [], [], [], [], [], []
    with torch.no_grad():
        for s in range(0, len(idx), 64):
            b = idx[s : s + 64]
            x, pts, dis, valid, occ = make_batch(fs, b, rng, pool, 16, 16)
            off, ls, v = model(x)
            n = len(b)
            pred = mean + off[:n].view(-1, 68, 2)
            err = torch.linalg.norm(pred - pts, dim=2)
            iod = torch.linalg.norm(pts[:, 36] - pts[:, 45], dim=1)
            nmes.append((err.mean(1) / iod).numpy())
            errs.append((err / iod[:, None]).numpy())
            sigmas.append((torch.exp(ls[:n]) / iod[:, None]).numpy())
            occs.append(occ)
            p = torch.sigmoid(v[:, 0]).numpy()
            vpos.append(p[:n])
            vneg.append(p[n:])
    from scipy.stats import spearmanr

    errs_a, sig_a, occ_a = np.concatenate(errs), np.concatenate(sigmas), np.concatenate(occs)
    vpos_a, vneg_a = np.concatenate(vpos), np.concatenate(vneg)
    model.train()
    return {
        "heldout_images": int(len(idx)),
        "nme_vs_teacher_ensemble_mean": float(np.concatenate(nmes).mean()),
        "nme_vs_teacher_ensemble_median": float(np.median(np.concatenate(nmes))),
        "sigma_error_spearman": float(spearmanr(sig_a.ravel(), errs_a.ravel())[0]),
        "sigma_occluded_over_visible": float(sig_a[occ_a].mean() / sig_a[~occ_a].mean()) if occ_a.any() else None,
        "error_occluded_over_visible": float(errs_a[occ_a].mean() / errs_a[~occ_a].mean()) if occ_a.any() else None,
        "validity_true_positive_rate": float((vpos_a > 0.5).mean()),
        "validity_true_negative_rate": float((vneg_a < 0.5).mean()),
    }


def export_landmarks_onnx(model: LandmarkNet, mean: np.ndarray, path) -> None:
    export_onnx(model, torch.zeros(1, 1, SIZE, SIZE), path, ["image"], ["offsets", "log_sigma", "validity"], {
        "edgeaffect.kind": "landmarks",
        "edgeaffect.input_range": "[0,1] grey, crop of edgeaffect.vision.alignment.FaceWindow",
        "edgeaffect.mean_shape": json.dumps(np.round(mean, 6).tolist()),
        "edgeaffect.postprocess": "points = (mean_shape + offsets.reshape(68,2)) * crop_size; sigma = exp(log_sigma) * crop_size; valid = sigmoid(validity) > 0.5",
    })


def write_outputs(model, mean, history, epochs, n_train) -> None:
    out = MODELS_SRC / "landmarks"
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "mean": mean}, work("landmarks", "final.pt"))
    export_landmarks_onnx(model, mean, out / "landmarks.onnx")
    macs, params = count_macs(model, torch.zeros(1, 1, SIZE, SIZE))
    final = dict(history[-1]) if history else {}
    final.update(macs=macs, params=params, epochs=epochs, train_images=int(n_train))
    (out / "train_metrics.json").write_text(json.dumps({"final": final, "history": history}, indent=1))
    print("exported", out / "landmarks.onnx", flush=True)


def finetune_sigma(a) -> None:
    """Stage 2: keep the trained coordinate network, re-learn the uncertainty head with the
    occlusion-aware target (the whole net trains at a low rate, coordinates keep their loss)."""
    fs = load_faceset(a.limit)
    pool = nonface_pool()
    train_idx = np.flatnonzero(~fs.heldout)
    base = torch.load(work("landmarks", "final.pt"), weights_only=False)
    ck = work("landmarks", "ckpt_sigma.pt")
    model = LandmarkNet()
    state = {k: v for k, v in base["model"].items() if not k.startswith("log_sigma.")}
    print("stage-1 weights loaded; new uncertainty head:", model.load_state_dict(state, strict=False).missing_keys, flush=True)
    mean = base["mean"]
    mean_t = torch.from_numpy(mean)
    head = list(model.log_sigma.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("log_sigma.")]
    opt = torch.optim.AdamW([{"params": head, "lr": 2e-3}, {"params": rest, "lr": 1e-4}], weight_decay=1e-4)
    steps = len(train_idx) // a.batch
    history, start = [], 0
    st = checkpoint.load(ck)
    if st:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start, history = st["epoch"] + 1, st["history"]
    for epoch in range(start, a.finetune_sigma):
        rng = np.random.default_rng(5000 + epoch)
        perm = rng.permutation(train_idx)
        for s in range(steps):
            lc, ln, _ = train_step(model, mean_t, opt, fs, perm[s * a.batch : (s + 1) * a.batch], rng, pool, a.batch, nll_weight=0.5)
            if s % 50 == 0:
                print(f"sigma ep {epoch} step {s}/{steps} nme {lc:.4f} nll {ln:.3f}", flush=True)
        m = evaluate(model, fs, mean_t, pool)
        m["epoch"] = f"sigma-{epoch}"
        history.append(m)
        print(json.dumps(m), flush=True)
        checkpoint.save(ck, model=model.state_dict(), opt=opt.state_dict(), epoch=epoch, history=history)
    stage1 = base.get("history") or (checkpoint.load(work("landmarks", "ckpt.pt")) or {}).get("history", [])
    write_outputs(model, mean, stage1 + history, a.epochs, len(train_idx))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--finetune-sigma", type=int, default=0, metavar="EPOCHS",
                    help="stage 2: re-train the uncertainty head (occlusion-aware target) from work/landmarks/final.pt")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.finetune_sigma:
        finetune_sigma(a)
        return
    fs = load_faceset(a.limit)
    pool = nonface_pool()
    train_idx = np.flatnonzero(~fs.heldout)
    print(f"{len(fs.names)} usable images, {len(train_idx)} train, {fs.heldout.sum()} held out", flush=True)
    ckpt_path = work("landmarks", "ckpt.pt")
    model = LandmarkNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps_per_epoch = len(train_idx) // a.batch
    total = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=total, pct_start=0.1)
    st = checkpoint.load(ckpt_path)
    start_epoch, mean = 0, mean_shape(fs)
    history = []
    if st:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        start_epoch, mean, history = st["epoch"] + 1, st["mean"], st["history"]
        print("resumed at epoch", start_epoch, flush=True)
    mean_t = torch.from_numpy(mean)
    for epoch in range(start_epoch, a.epochs):
        rng = np.random.default_rng(1000 + epoch)
        perm = rng.permutation(train_idx)
        t0, agg = time.time(), np.zeros(3)
        for s in range(steps_per_epoch):
            lc, ln, lv = train_step(model, mean_t, opt, fs, perm[s * a.batch : (s + 1) * a.batch], rng, pool, a.batch, nll_weight=0.05)
            sched.step()
            agg += [lc, ln, lv]
            if s % 50 == 0:
                print(f"ep {epoch} step {s}/{steps_per_epoch} nme {agg[0] / (s + 1):.4f} nll {agg[1] / (s + 1):.3f} val {agg[2] / (s + 1):.3f} {time.time() - t0:.0f}s", flush=True)
        metrics = evaluate(model, fs, mean_t, pool)
        metrics["epoch"] = epoch
        history.append(metrics)
        print(json.dumps(metrics), flush=True)
        checkpoint.save(ckpt_path, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), epoch=epoch, mean=mean, history=history)
    torch.save({"model": model.state_dict(), "mean": mean, "history": history}, work("landmarks", "final.pt"))
    write_outputs(model, mean, history, a.epochs, len(train_idx))


if __name__ == "__main__":
    main()
