"""Train the AU network on geometric + label-derived AU targets (see training/targets.py).

    python -m training.train_aus [--epochs 10]

Checkpointed/resumable (work/aus/ckpt.pt). Writes models/aus/{aus.onnx, train_metrics.json}
with held-out AUCs: how well each AU separates an expression from neutral on identities
never seen in training.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from edgeaffect.constants import AU_NAMES
from edgeaffect.vision.alignment import AU_CROP_SIZE as SIZE

from . import checkpoint
from .augment import au_sample
from .data import load_faceset
from .models import AUNet, count_macs, export_onnx
from .paths import MODELS_SRC, work
from .targets import au_targets, geometric_measures, geometric_scores

#: (AU, positive expressions) pairs reported as AUC against neutral faces.
AUC_CHECKS = [
    ("AU12", ("happiness",)), ("AU06", ("happiness",)), ("AU25", ("happiness", "surprise")),
    ("AU01", ("surprise",)), ("AU02", ("surprise",)), ("AU05", ("surprise",)),
    ("AU04", ("anger", "sadness")), ("AU15", ("sadness",)), ("AU09", ("disgust",)), ("AU10", ("disgust",)),
    ("AU07", ("anger",)), ("AU23", ("anger",)), ("AU17", ("sadness", "disgust")),
]


def compute_targets(fs) -> tuple[np.ndarray, np.ndarray]:
    meas = [geometric_measures(t) for t in fs.targets]
    scores = geometric_scores(meas, (fs.labels == "neutral") & ~fs.heldout)
    gap = np.array([m["lip_gap"] for m in meas])
    ear = np.array([m["ear"] for m in meas])
    return au_targets(scores, fs.labels, gap, ear), scores


def auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    if len(pos) == 0 or len(neg) == 0:
        return None
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort().argsort() + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def predict(model, fs, idx, rng, augment=False) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(idx), 128):
            b = idx[s : s + 128]
            x = np.stack([au_sample(fs.images[i], fs.targets[i], rng, SIZE, augment=augment) for i in b])
            out.append(model(torch.from_numpy(x[:, None].astype(np.float32) / 255.0)).numpy())
    model.train()
    return np.concatenate(out)


def evaluate(model, fs, targets, scores) -> dict:
    idx = np.flatnonzero(fs.heldout)
    pred = predict(model, fs, idx, np.random.default_rng(7))
    labels = fs.labels[idx]
    neutral = labels == "neutral"
    res: dict = {"heldout_images": int(len(idx)), "heldout_label_counts": {k: int((labels == k).sum()) for k in np.unique(labels)}}
    res["auc_vs_neutral"] = {}
    for au, pos_labels in AUC_CHECKS:
        j = AU_NAMES.index(au)
        pos = np.isin(labels, pos_labels)
        res["auc_vs_neutral"][f"{au}:{'+'.join(pos_labels)}"] = {
            "net": auc(pred[pos, j], pred[neutral, j]),
            "geometry_only": auc(scores[idx][pos, j], scores[idx][neutral, j]),
            "n_pos": int(pos.sum()),
        }
    t = targets[idx]
    res["pearson_vs_target"] = {a: float(np.corrcoef(pred[:, j], t[:, j])[0, 1]) if t[:, j].std() > 0 else None for j, a in enumerate(AU_NAMES)}
    res["mae_vs_target"] = float(np.abs(pred - t).mean())
    return res


def export_aus_onnx(model: AUNet, path) -> None:
    export_onnx(model, torch.zeros(1, 1, SIZE, SIZE), path, ["image"], ["aus"], {
        "edgeaffect.kind": "au",
        "edgeaffect.au_names": json.dumps(list(AU_NAMES)),
        "edgeaffect.input_range": "[0,1] grey, 5-point similarity-aligned crop (edgeaffect.vision.alignment.au_crop_matrix)",
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    fs = load_faceset(a.limit)
    targets, scores = compute_targets(fs)
    train_idx = np.flatnonzero(~fs.heldout)
    # Rebalance: rare expressions carry most AU signal; sample by 1/sqrt(class frequency).
    labs = fs.labels[train_idx]
    freq = {k: (labs == k).mean() for k in np.unique(labs)}
    w = np.array([1 / np.sqrt(freq[k]) for k in labs])
    w /= w.sum()
    ckpt_path = work("aus", "ckpt.pt")
    model = AUNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = len(train_idx) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps * a.epochs, pct_start=0.1)
    history, start = [], 0
    st = checkpoint.load(ckpt_path)
    if st:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        start, history = st["epoch"] + 1, st["history"]
        print("resumed at epoch", start, flush=True)
    tt = torch.from_numpy(targets)
    for epoch in range(start, a.epochs):
        rng = np.random.default_rng(2000 + epoch)
        t0, agg = time.time(), 0.0
        for s in range(steps):
            b = rng.choice(train_idx, a.batch, p=w)
            x = np.stack([au_sample(fs.images[i], fs.targets[i], rng, SIZE) for i in b])
            pred = model(torch.from_numpy(x[:, None].astype(np.float32) / 255.0))
            loss = nn.functional.smooth_l1_loss(pred, tt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            agg += loss.item()
            if s % 50 == 0:
                print(f"ep {epoch} step {s}/{steps} loss {agg / (s + 1):.4f} {time.time() - t0:.0f}s", flush=True)
        m = evaluate(model, fs, targets, scores)
        m["epoch"] = epoch
        history.append(m)
        print(json.dumps({k: m[k] for k in ("epoch", "mae_vs_target")}), json.dumps({k: v["net"] for k, v in m["auc_vs_neutral"].items()}), flush=True)
        checkpoint.save(ckpt_path, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), epoch=epoch, history=history)
    out = MODELS_SRC / "aus"
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, work("aus", "final.pt"))
    export_aus_onnx(model, out / "aus.onnx")
    macs, params = count_macs(model, torch.zeros(1, 1, SIZE, SIZE))
    final = dict(history[-1]) if history else {}
    final.update(macs=macs, params=params, epochs=a.epochs, train_images=int(len(train_idx)))
    (out / "train_metrics.json").write_text(json.dumps({"final": final, "history": history}, indent=1))
    print("exported", out / "aus.onnx", flush=True)


if __name__ == "__main__":
    main()
