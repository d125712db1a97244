"""Train the temporal valence/arousal network on realistic sequences with teacher targets.

    python -m training.train_temporal [--steps 3000]

There is no valence/arousal ground truth reachable. What this trains on, exactly:
1. every usable expression image (identity-disjoint split, training.data.AFFECT_SPLIT) is
   run through the runtime's own model wrappers: the shipped landmark network and the new
   AU network (float ONNX: AUs + expression probabilities) under three variants (clean,
   photometric jitter, occluded: a hand over the mouth) -> per-frame feature rows exactly
   as the analyzer builds them (edgeaffect.models.affect.frame_features);
2. sequences of one identity are composed from those rows (training/sequences.py): onset /
   apex / offset dynamics, transitions, tracker jitter, occluded stretches, invalid bursts;
3. the per-frame target is the circumplex position (edgeaffect.constants.EXPRESSION_CIRCUMPLEX)
   of one teacher's posterior per segment, the dataset label or the `fer` teacher: where
   they disagree the aleatoric term must grow.
The loss is the deep-evidential-regression NIG negative log-likelihood + evidence
regulariser on every step from the 32nd on. Checkpointed/resumable (<work>/temporal/).
Writes models/affect/{affect.onnx, train_metrics.json}: the ONNX is the int8 body (window ->
[1,T,32] hidden) with the final 1x1 conv as a float head in its metadata
(edgeaffect/models/_head.py), so V/A have no int8 output steps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from edgeaffect.constants import EXPRESSIONS, TEMPORAL_FEATURES
from edgeaffect.models.affect import decode_nig, uncertainty_from_var

from . import checkpoint
from .data import identity, load_faceset
from .models import TemporalBody, TemporalVANet, count_macs, export_onnx
from .paths import ASSETS, MODELS_SRC, work
from .sequences import SequenceComposer, T, image_rows


def label_posterior(labels: np.ndarray, fer: np.ndarray) -> np.ndarray:
    out = fer.copy()
    for i, lab in enumerate(labels):
        if lab in EXPRESSIONS:
            out[i] = 0
            out[i, EXPRESSIONS.index(lab)] = 1
    return out


def compute_rows(fs) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows [N,3,F] from the shipped landmark net + models/aus/aus.onnx, cached by
    both files' hashes."""
    from edgeaffect.calibration_inputs import OnnxModelAdapter
    from edgeaffect.models import find_model
    from edgeaffect.models.aus import AUModel
    from edgeaffect.models.landmarks import LandmarkModel
    from edgeaffect.runtime.runner import ModelRunner

    au_onnx = MODELS_SRC / "aus" / "aus.onnx"
    lm_manifest = find_model(ASSETS, "landmarks")
    lm_runner = ModelRunner(lm_manifest)
    key = hashlib.sha256(au_onnx.read_bytes() + lm_runner.manifest.sha256.encode()).hexdigest()[:16]
    path = work("temporal", f"rows_{key}.npz")
    if path.exists():
        z = np.load(path)
        return z["rows"], z["expr"]
    rows, expr = image_rows(fs.images, fs.targets, LandmarkModel(lm_runner), AUModel(OnnxModelAdapter(au_onnx, "au")))
    np.savez(path, rows=rows, expr=expr, names=fs.names)
    return rows, expr


def composers(fs, rows):
    from .fer_teacher import label_faceset
    from .targets import soft_expression_targets

    fer = label_faceset(fs)
    soft = soft_expression_targets(fs.labels, fer)
    lab = label_posterior(fs.labels, fer)
    ids = np.array([identity(n) for n in fs.names])
    cls = soft.argmax(1)
    mk = lambda idx: SequenceComposer(rows, ids, soft, lab, fer, idx, cls)  # noqa: E731
    return mk(np.flatnonzero(~fs.heldout)), mk(np.flatnonzero(fs.heldout))


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
    """Held-out sequences, steps 64..T (the runtime uses the last step of each window;
    every step from 64 on has seen >= 64 frames). Error against the soft posterior's
    circumplex position (the average of the two teachers)."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    seqs = [comp.sample(rng) for _ in range(n)]
    x = torch.from_numpy(np.stack([q["x"] for q in seqs]))
    model.eval()
    with torch.no_grad():
        raw = np.concatenate([model(x[s : s + 64]).numpy() for s in range(0, n, 64)])
    model.train()
    sl = np.s_[:, 64:]
    y = np.stack([q["y_mean"] for q in seqs])[sl]
    valid = np.stack([q["valid"] for q in seqs])[sl]
    occl = np.stack([q["occluded"] for q in seqs])[sl]
    dis = np.stack([q["disagreement"] for q in seqs])[sl]
    d = decode_nig(raw[sl])
    pred = d["mean"]
    cum = uncertainty_from_var(d["aleatoric"] + d["epistemic"]).mean(-1)
    err = np.sqrt(((pred - y) ** 2).mean(-1))
    c, e = cum.ravel(), err.ravel()
    order = np.argsort(c, kind="mergesort")
    leave_n_in = {}
    for keep in (100, 90, 75, 50, 25, 10):
        k = max(1, int(len(order) * keep / 100))
        leave_n_in[f"{keep}%"] = float(np.sqrt((e[order[:k]] ** 2).mean()))
    last = decode_nig(raw[:, -1])
    ylast = np.stack([q["y_mean"][-1] for q in seqs])
    ok = valid & ~occl
    hi = dis > 0.5
    return {
        "heldout_sequences": n,
        "ccc_valence_last_step": ccc(last["mean"][:, 0], ylast[:, 0]),
        "ccc_arousal_last_step": ccc(last["mean"][:, 1], ylast[:, 1]),
        "ccc_valence_valid_steps": ccc(pred[..., 0][valid], y[..., 0][valid]),
        "ccc_arousal_valid_steps": ccc(pred[..., 1][valid], y[..., 1][valid]),
        "rmse_leave_n_in": leave_n_in,
        "cumulative_uncertainty_vs_error_spearman": float(spearmanr(c, e)[0]),
        "mean_cumulative_uncertainty_valid": float(cum[ok].mean()),
        "mean_cumulative_uncertainty_occluded": float(cum[occl & valid].mean()) if (occl & valid).any() else None,
        "mean_cumulative_uncertainty_invalid": float(cum[~valid].mean()) if (~valid).any() else None,
        "mean_cumulative_uncertainty_teachers_agree": float(cum[ok & ~hi].mean()) if (ok & ~hi).any() else None,
        "mean_cumulative_uncertainty_teachers_disagree": float(cum[ok & hi].mean()) if (ok & hi).any() else None,
    }


def export_affect_onnx(model, path) -> None:
    export_onnx(TemporalBody(model), torch.zeros(1, T, TEMPORAL_FEATURES), path, ["window"], ["va_features"], {
        "edgeaffect.kind": "temporal",
        "edgeaffect.window_frames": str(T),
        "edgeaffect.features": "[68x2 normalised landmarks, 68 sigmas x20, 15 AUs / 5, 7 expression probabilities]; invalid frame = zeros",
        "edgeaffect.float_head": json.dumps(model.head_spec()),
        "edgeaffect.postprocess": "float head -> va_raw; NIG: mean=tanh(c0:2), nu=softplus(c2:4), alpha=1+softplus(c4:6), beta=softplus(c6:8)",
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(MODELS_SRC / "affect"), help="where affect.onnx and train_metrics.json go")
    ap.add_argument("--still", type=float, default=0.0, help="share of windows filled with one still frame (IMAGE mode)")
    ap.add_argument("--label-p", type=float, default=0.5, help="probability a segment's target comes from the dataset label")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(3)
    fs = load_faceset(split="affect")
    rows, _ = compute_rows(fs)
    train, held = composers(fs, rows)
    train.label_p = a.label_p
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
        seqs = [train.sample(rng, still_p=a.still) for _ in range(a.batch)]
        raw = model(torch.from_numpy(np.stack([q["x"] for q in seqs])))
        loss = nig_loss(raw[:, 32:], torch.from_numpy(np.stack([q["y"] for q in seqs]))[:, 32:])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        sched.step()
        agg += loss.item()
        if (step + 1) % 250 == 0:
            m = evaluate(model, held, n=160)
            m["step"] = step + 1
            history.append(m)
            print(f"step {step + 1} loss {agg / 250:.4f} {time.time() - t0:.0f}s", json.dumps({k: m[k] for k in (
                "ccc_valence_last_step", "ccc_arousal_last_step", "rmse_leave_n_in", "cumulative_uncertainty_vs_error_spearman")}), flush=True)
            agg = 0.0
            checkpoint.save(ckpt, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), step=step + 1, history=history)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, work("temporal", "final.pt"))
    export_affect_onnx(model, out / "affect.onnx")
    final = evaluate(model, held, n=600)
    macs, params = count_macs(model, torch.zeros(1, T, TEMPORAL_FEATURES))
    final.update(macs_per_window=macs, params=params, steps=a.steps, window_frames=T, still_share=a.still, label_p=a.label_p,
                 float_head_macs_per_frame=model.out.in_channels * model.out.out_channels)
    (out / "train_metrics.json").write_text(json.dumps({"final": final, "history": history}, indent=1))
    print(json.dumps(final, indent=1), flush=True)


if __name__ == "__main__":
    main()
