"""Train the AU network (15 AU intensities + 7-class expression head) against two teachers.

    python -m training.train_aus [--epochs 6] [--init models/aus/aus.onnx]

Targets (training/targets.py):
- expression: soft targets, half the dataset label, half the posterior of the independent
  `fer` teacher (training/fer_teacher.py) *on the very crop the network is trained on*
  (every augmentation: occluder, blur, flip, lighting, is drawn on the source image, then
  the AU crop and the teacher's crop are cut from the same augmented image);
- AUs: geometric FACS measures relative to a neutral reference shape (the person's own
  neutral images where the data has them) combined with the clean-crop soft posterior
  through the expression-AU relatedness table.
Sampling is class-balanced (weight freq^-0.75 of the clean soft target's arg-max class):
the data set is 42 % happiness and 2 % sadness.

Initialised from the previous AU network's weights when its ONNX export is given (its
batch norms are folded, so they are frozen as identity + bias). Checkpointed and resumable
(<work>/aus/ckpt.pt). Writes models/aus/{aus.onnx, train_metrics.json}: the ONNX is the int8
*body* (crop -> 128 hidden features) with the final linear layer as a float head in its
metadata (edgeaffect/models/_head.py), so AUs and expression probabilities have no int8
output steps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeaffect.constants import AU_NAMES, EXPRESSIONS, IBUG_FLIP_PERMUTATION
from edgeaffect.vision.alignment import AU_CROP_SIZE as SIZE
from edgeaffect.vision.alignment import au_crop_matrix, crop

from . import checkpoint
from .augment import occlude, photometric
from .data import load_faceset
from .fer_teacher import FerTeacher, balanced_accuracy, fer_crop, label_faceset
from .models import AUBody, AUNet, count_macs, export_onnx
from .paths import MODELS_SRC, REPO, work
from .targets import (
    au_targets,
    geometric_measures,
    geometric_scores,
    measure_matrix,
    neutral_reference,
    soft_expression_targets,
)

#: (AU, positive expressions) pairs reported as AUC against neutral faces.
AUC_CHECKS = [
    ("AU12", ("happiness",)), ("AU06", ("happiness",)), ("AU25", ("happiness", "surprise")),
    ("AU01", ("surprise",)), ("AU02", ("surprise",)), ("AU05", ("surprise",)),
    ("AU04", ("anger", "sadness")), ("AU15", ("sadness",)), ("AU09", ("disgust",)), ("AU10", ("disgust",)),
    ("AU07", ("anger",)), ("AU23", ("anger",)), ("AU17", ("sadness", "disgust")),
]
FLIP = np.array(IBUG_FLIP_PERMUTATION)


class Targets:
    def __init__(self, fs) -> None:
        self.fer = label_faceset(fs)
        self.soft = soft_expression_targets(fs.labels, self.fer)
        meas = [geometric_measures(t) for t in fs.targets]
        keys, m = measure_matrix(meas)
        from .data import identity

        neutral_w = ((fs.labels == "neutral") & (self.fer[:, EXPRESSIONS.index("neutral")] > 0.3)).astype(np.float64)
        ref, mad = neutral_reference(m, np.array([identity(n) for n in fs.names]), neutral_w)
        self.scores = geometric_scores(keys, m, ref, mad)
        gap = m[:, keys.index("lip_gap")]
        ear = m[:, keys.index("ear")]
        self.aus = au_targets(self.scores, self.soft, gap, ear)
        self.cls = self.soft.argmax(1)


def affect_sample(gray: np.ndarray, pts: np.ndarray, rng: np.random.Generator, augment: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """(AU crop, fer crop, occluded) cut from one augmented source image."""
    img = gray
    p = np.asarray(pts, np.float32)
    occluded = False
    if augment:
        img = gray.copy()
        if rng.random() < 0.5:
            img = img[:, ::-1].copy()
            p = p[FLIP].copy()
            p[:, 0] = img.shape[1] - 1 - p[:, 0]
        if rng.random() < 0.3:
            occluded = bool(occlude(img, p, rng).mean() > 0.1)
        img = photometric(img, rng)
    q = p
    if augment:  # the runtime aligns on the landmark net's (noisy) points
        iod = np.linalg.norm(p[36] - p[45])
        q = p + rng.normal(0, 0.025 * iod, p.shape).astype(np.float32)
    return crop(img, au_crop_matrix(q, SIZE), SIZE), fer_crop(img, p), occluded


def auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    if len(pos) == 0 or len(neg) == 0:
        return None
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort(kind="mergesort").argsort() + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def predict(model: AUNet, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AU intensities, expression probabilities) for uint8 crops [N,S,S]."""
    model.eval()
    aus, ex = [], []
    with torch.no_grad():
        for s in range(0, len(crops), 128):
            a, e = model(torch.from_numpy(crops[s : s + 128, None].astype(np.float32) / 255.0))
            aus.append((5 * torch.sigmoid(a)).numpy())
            ex.append(torch.softmax(e, 1).numpy())
    return np.concatenate(aus), np.concatenate(ex)


def evaluate(model, fs, tg: Targets) -> dict:
    idx = np.flatnonzero(fs.heldout)
    crops = np.stack([affect_sample(fs.images[i], fs.targets[i], None, augment=False)[0] for i in idx])
    pred, ex = predict(model, crops)
    labels = fs.labels[idx]
    neutral = labels == "neutral"
    res: dict = {"heldout_images": int(len(idx)), "heldout_label_counts": {k: int((labels == k).sum()) for k in np.unique(labels)}}
    res["auc_vs_neutral"] = {}
    for au, pos_labels in AUC_CHECKS:
        j = AU_NAMES.index(au)
        pos = np.isin(labels, pos_labels)
        res["auc_vs_neutral"][f"{au}:{'+'.join(pos_labels)}"] = {
            "net": auc(pred[pos, j], pred[neutral, j]),
            "geometry_only": auc(tg.scores[idx][pos, j], tg.scores[idx][neutral, j]),
            "n_pos": int(pos.sum()),
        }
    hap, sad = labels == "happiness", labels == "sadness"
    a4, a12, a15 = (AU_NAMES.index(a) for a in ("AU04", "AU12", "AU15"))
    res["auc_au12_happiness_vs_sadness"] = auc(pred[hap, a12], pred[sad, a12])
    res["auc_au04_au15_sadness_vs_happiness"] = auc(pred[sad, a4] + pred[sad, a15], pred[hap, a4] + pred[hap, a15])
    names = np.array(EXPRESSIONS)
    res["expression_balanced_accuracy"], res["expression_recall"] = balanced_accuracy(labels, names[ex.argmax(1)])
    res["fer_teacher_balanced_accuracy"], _ = balanced_accuracy(labels, names[tg.fer[idx].argmax(1)])
    t = tg.aus[idx]
    res["pearson_vs_target"] = {a: float(np.corrcoef(pred[:, j], t[:, j])[0, 1]) if t[:, j].std() > 0 else None for j, a in enumerate(AU_NAMES)}
    res["mae_vs_target"] = float(np.abs(pred - t).mean())
    model.train()
    freeze_bn(model)
    return res


def freeze_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def init_from_onnx(model: AUNet, path: Path) -> None:
    """Load the previous AU network (ONNX, batch norms folded into the convs)."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    convs = [(init[n.input[1]], init[n.input[2]]) for n in g.node if n.op_type == "Conv"]
    gemms = [(init[n.input[1]], init[n.input[2]]) for n in g.node if n.op_type == "Gemm"]
    tconvs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != len(tconvs) or len(bns) != len(tconvs) or len(gemms) != 2:
        raise SystemExit(f"{path}: layer layout does not match AUNet")
    with torch.no_grad():
        for (w, b), c, bn in zip(convs, tconvs, bns):
            c.weight.copy_(torch.from_numpy(w.copy()))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b.copy()))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        model.trunk[0].weight.copy_(torch.from_numpy(gemms[0][0]))
        model.trunk[0].bias.copy_(torch.from_numpy(gemms[0][1]))
        model.au.weight.copy_(torch.from_numpy(gemms[1][0]))
        model.au.bias.copy_(torch.from_numpy(gemms[1][1]))


def export_aus_onnx(model: AUNet, path) -> None:
    export_onnx(AUBody(model), torch.zeros(1, 1, SIZE, SIZE), path, ["image"], ["au_features"], {
        "edgeaffect.kind": "au",
        "edgeaffect.au_names": json.dumps(list(AU_NAMES)),
        "edgeaffect.expressions": json.dumps(list(EXPRESSIONS)),
        "edgeaffect.float_head": json.dumps(model.head_spec()),
        "edgeaffect.input_range": "[0,1] grey, 5-point similarity-aligned crop (edgeaffect.vision.alignment.au_crop_matrix)",
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--samples-per-epoch", type=int, default=4800)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", default=str(REPO / "models" / "aus" / "aus.onnx"), help="previous AU ONNX to start from ('' = scratch)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    fs = load_faceset(split="affect")
    tg = Targets(fs)
    teacher = FerTeacher()
    train_idx = np.flatnonzero(~fs.heldout)
    cls = tg.cls[train_idx]
    freq = np.bincount(cls, minlength=len(EXPRESSIONS)) / len(cls)
    w = np.array([freq[c] ** -0.75 for c in cls])
    w /= w.sum()
    print("train class share (clean soft arg-max):", dict(zip(EXPRESSIONS, np.round(freq, 4).tolist())), flush=True)
    ckpt_path = work("aus", "ckpt.pt")
    model = AUNet()
    init_note = "scratch"
    if a.init and Path(a.init).exists():
        init_from_onnx(model, Path(a.init))
        init_note = f"{Path(a.init).name} (previous AU network, batch norms folded and frozen)"
    frozen_bn = init_note != "scratch"
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    steps = a.samples_per_epoch // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps * a.epochs, pct_start=0.15)
    history, start = [], 0
    st = checkpoint.load(ckpt_path)
    if st:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        start, history = st["epoch"] + 1, st["history"]
        print("resumed at epoch", start, flush=True)
    model.train()
    if frozen_bn:
        freeze_bn(model)
    t_aus = torch.from_numpy(tg.aus)
    labw = 0.5
    for epoch in range(start, a.epochs):
        rng = np.random.default_rng(2000 + epoch)
        t0, agg = time.time(), np.zeros(2)
        for s in range(steps):
            b = rng.choice(train_idx, a.batch, p=w)
            samples = [affect_sample(fs.images[i], fs.targets[i], rng) for i in b]
            x = np.stack([c for c, _, _ in samples])
            post = teacher(np.stack([f for _, f, _ in samples]))
            soft = torch.from_numpy(soft_expression_targets(fs.labels[b], post, labw))
            au_logit, ex_logit = model(torch.from_numpy(x[:, None].astype(np.float32) / 255.0))
            l_au = nn.functional.smooth_l1_loss(5 * torch.sigmoid(au_logit), t_aus[b])
            l_ex = -(soft * torch.log_softmax(ex_logit, 1)).sum(1).mean()
            loss = l_au + l_ex
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            agg += (l_au.item(), l_ex.item())
            if s % 20 == 0:
                print(f"ep {epoch} step {s}/{steps} au {agg[0] / (s + 1):.4f} expr {agg[1] / (s + 1):.4f} {time.time() - t0:.0f}s", flush=True)
        m = evaluate(model, fs, tg)
        if not frozen_bn:
            model.train()
        m["epoch"] = epoch
        history.append(m)
        print(json.dumps({k: m[k] for k in ("epoch", "mae_vs_target", "expression_balanced_accuracy", "fer_teacher_balanced_accuracy",
                                            "auc_au12_happiness_vs_sadness", "auc_au04_au15_sadness_vs_happiness")}), flush=True)
        checkpoint.save(ckpt_path, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), epoch=epoch, history=history)
    out = MODELS_SRC / "aus"
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, work("aus", "final.pt"))
    export_aus_onnx(model, out / "aus.onnx")
    macs, params = count_macs(AUBody(model), torch.zeros(1, 1, SIZE, SIZE))
    head = model.au.in_features * (model.au.out_features + model.expr.out_features)
    final = dict(history[-1]) if history else {}
    final.update(macs=macs + head, macs_int8_body=macs, macs_float_head=head, params=sum(p.numel() for p in model.parameters()),
                 epochs=a.epochs, samples_per_epoch=a.samples_per_epoch, train_images=int(len(train_idx)), init=init_note,
                 expression_target=f"{labw} dataset label + {1 - labw} fer posterior of the augmented crop",
                 sampling="class-balanced, weight freq^-0.75 of the clean soft target's arg-max class",
                 train_class_share=dict(zip(EXPRESSIONS, np.round(freq, 4).tolist())))
    (out / "train_metrics.json").write_text(json.dumps({"final": final, "history": history}, indent=1))
    print("exported", out / "aus.onnx", flush=True)


if __name__ == "__main__":
    main()
