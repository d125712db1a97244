"""Train the landmark network by distillation from the teacher ensemble.

    python -m training.train_landmarks [--epochs 14] [--limit N]                 # stage 1 from scratch
    python -m training.train_landmarks --finetune-sigma 3                        # stage 2 (uncertainty head)
    python -m training.train_landmarks --no-eyes --eyes 0 --qat 1 --steps 220 --lr 4e-4 --init-onnx <stage-2 ONNX>
        # what ships: ReLU6 + quantisation-aware fine-tuning of the stage-2 net (full int8 passes the gate)
    python -m training.train_landmarks --eyes 3 --qat 1 --steps 200 --lr 4e-4 [--init-onnx ...]
        # the eye-state candidate (not shipped: its eye head did not learn, validity regressed; see below)

Stage 3 (`--eyes N --qat M`, issue 9): starting from the previous float network (work/
landmarks/final.pt, else the weights of the shipped ONNX), N epochs with eyelid targets from
the refined MediaPipe mesh, synthetic eye closure, cylinder yaw warps up to +-65 deg,
dark/background negatives and a per-eye closed head; then M epochs of quantisation-aware
fine-tuning (training/qat.py: BN folded, per-channel int8 weights, int8 activations, ReLU6),
so the full-integer TFLite passes the NME gate.

Whole-network stage 3 and the full-int8 gate (issue 9 items 5/6): a whole-network fine-tune
(no --heads-only) is more accurate but its int8 file drifted further from its float ONNX
(NME delta 0.67 % IOD on the gate's held-out crops, limit 0.5 %; measured by re-converting,
the dark NIR-like crops of the calibration clip give 0.5-1.7 % each). Three QAT-phase levers,
each measured on the same float checkpoint: `--consistency W` (NME between the quantised and
the unquantised pass: what the gate measures), `--qat-dark-p P` (dimmed positives like the
NIR crops) and `--range-penalty W` (residual branches pulled inside +-6, function-preserving:
their -17..12 range was the largest single source of the delta). Consistency 20 + dark 0.25:
0.530 %; consistency 40 + dark 0.3 + range 5: 0.461 % (PASS).
`--yaw-p P --max-yaw D` turn that share of positives with the cylinder yaw warp (augment.yaw_warp;
hidden points flagged occluded; the warp looks credible to ~50-65 deg, not to a profile); warped
positives are left out of the validity anchor. `--out DIR` writes the ONNX and metrics elsewhere.
Validity after a whole-network fine-tune: the shared photo emma.jpg's turned face (yaw ~-71) is
judged on the detector's first window (measured 25 % wider and 17 deg off the landmark window);
the shipped net gives it 0.92, the whole-network float net 0.81, every QAT variant 0.57-0.79
(< the tracker's 0.8 acquire threshold). `--validity-only --wide-p 0.5 --anchor-validity 4
--anchor-onnx <previous shipped ONNX>` (one QAT epoch on the finished network, validity head
alone; wider detector-like windows for a share of positives) brought it back to 0.83 with the
points unchanged.

`--anchor-corners W` keeps the eye corners (iBUG 36/39/42/45) near the --anchor-onnx network's: the
eye-state network (eyes_int8) reads patches cut at those corners and was trained on the shipped
landmark network's; an earlier whole-network candidate without it (a session's runV1) gave a real
closed-eye photo closed probabilities of 0.64/0.34 and the driver monitor saw no closure
(tests/test_dms_pipeline.py). What ships is scripts/train_landmarks_recipe.sh: one command.
`--anchor-corners-tight` limits that anchor to the tracker-like and dimmed positives (the windows the
runtime cuts eye patches on). Measured once, not shipped: 6 float + 2 QAT epochs at --lr 5e-4 from the
network of scripts/train_landmarks_recipe.sh with it gave photos / NIR-like / video NME median 3.44 /
3.28 / 4.45 %, eye-net held-out closed recall 0.755, but tests/test_fidelity_shipped.py measured its
int8 NME delta at 0.503 % (> 0.5 %; the build gate's own held-out set gave 0.421 %).

Checkpoints every epoch under work/landmarks/ (with --out: under DIR/state, so chained runs never
resume each other's checkpoints) and resumes from them; when done, writes
models/landmarks/{landmarks.onnx, train_metrics.json} and tests/fixtures/mediapipe_offsets.json
(the MediaPipe-to-iBUG offsets the targets used). CPU only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeaffect.vision.alignment import LANDMARK_CROP_SIZE as SIZE
from edgeaffect.vision.alignment import apply_affine, window_from_landmarks

from . import checkpoint
from .augment import (
    closed_target,
    dark_negative,
    dark_positive,
    eye_aspect_ratios,
    landmark_sample,
    random_negative_patch,
)
from .data import load_faceset, nonface_pool
from .models import LandmarkNet, count_macs, export_onnx
from .paths import MODELS_SRC, REPO, work


def mean_shape(fs) -> np.ndarray:
    acc = []
    for i in np.flatnonzero(~fs.heldout):
        m = window_from_landmarks(fs.targets[i]).to_crop_matrix(SIZE)
        acc.append(apply_affine(m, fs.targets[i]) / SIZE)
    return np.mean(acc, 0).astype(np.float32)


#: Window jitter strength of the "tight" positives (`--tight-p`): the tracker's window comes
#: from the previous frame's landmarks (and a detection gets one refinement pass from its
#: first landmarks), so at runtime most windows sit much closer to the landmark window than
#: the full jitter (strength 1.0: 7 % shift, 12 % log-scale, 12 deg rotation s.d.).
TIGHT_JITTER = 0.35


def make_batch(fs, idx, rng, pool, n_neg_window: int, n_neg_patch: int, closure_p: float = 0.0, yaw_p: float = 0.0, max_yaw: float = 60.0,
               tight_p: float = 0.0, jitter: float = 1.0, dark_p: float = 0.0, wide_p: float = 0.0):
    """Positives (idx) + bad windows + non-face patches. Returns (x, pts, dis, valid, occ, eye_closed, tight, warped):
    eye_closed [n_pos, 2] is the soft closed target from the (augmented) target points' EAR.
    tight_p: share of positives cropped with TIGHT_JITTER instead of `jitter` (no extra random
    draw when 0, so older runs stay reproducible); `tight` [n_pos + n_neg] marks them.
    dark_p: share of positives dimmed like a dark stage / NIR frame (`dark_positive`; no draw when 0).
    Dimmed positives are marked in `tight` too: both stay out of the validity label term (the
    validity anchor, if any, keeps the reference network's answer on them).
    wide_p: share of the other positives cropped with a wider window (log-scale + U(0.05, 0.25)),
    like the detector's first window that a new track's validity (>= 0.8) is judged on.
    `warped` [n_pos + n_neg] marks the positives turned by the cylinder yaw warp."""
    imgs, pts, occ, valid, dis, eyes, tight = [], [], [], [], [], [], []
    warped = []
    for i in idx:
        tight.append(tight_p > 0 and rng.random() < tight_p)
        j = TIGHT_JITTER if tight[-1] else jitter
        info: dict = {}
        sb = float(rng.uniform(0.05, 0.25)) if wide_p > 0 and not tight[-1] and rng.random() < wide_p else 0.0
        im, p, o = landmark_sample(fs.images[i], fs.targets[i], rng, SIZE, closure_p=closure_p, yaw_p=yaw_p, max_yaw_deg=max_yaw, jitter=j,
                                   info=info, scale_bias=sb)
        warped.append(bool(info.get("yaw_deg")))
        if dark_p > 0 and rng.random() < dark_p:
            im = dark_positive(im, rng)
            tight[-1] = True
        imgs.append(im)
        pts.append(p / SIZE)
        occ.append(o)
        valid.append(1.0)
        dis.append(fs.disagreement[i])
        eyes.append(closed_target(eye_aspect_ratios(p)))
    for _ in range(n_neg_window):
        i = int(rng.choice(idx))
        im, _, _ = landmark_sample(fs.images[i], fs.targets[i], rng, SIZE, negative=True)
        imgs.append(im)
    for _ in range(n_neg_patch):
        r = rng.random()
        if r < 0.25:  # an upside-down face is not a trackable face
            i = int(rng.choice(idx))
            im, _, _ = landmark_sample(fs.images[i], fs.targets[i], rng, SIZE)
            im = im[::-1, ::-1].copy()
        elif r < 0.45:  # dim background (a stage, a car at night): validity must stay low
            im = dark_negative(pool, rng, SIZE)
        else:
            im = random_negative_patch(pool, rng, SIZE)
        imgs.append(im)
    n_neg = n_neg_window + n_neg_patch
    valid += [0.0] * n_neg
    tight += [False] * n_neg
    warped += [False] * n_neg
    x = torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32) / 255.0)
    return (
        x,
        torch.from_numpy(np.stack(pts).astype(np.float32)),
        torch.from_numpy(np.stack(dis).astype(np.float32)),
        torch.tensor(valid),
        np.stack(occ),
        torch.from_numpy(np.stack(eyes).astype(np.float32)),
        torch.tensor(tight),
        torch.tensor(warped),
    )


EYELID_POINTS = (37, 38, 40, 41, 43, 44, 46, 47)
#: iBUG 36, 39, 42, 45: the eye corners the runtime cuts the eye-state network's patches at
#: (edgeaffect.vision.eyes.eye_patch_matrices). That network was trained on patches cut at the
#: shipped landmark network's corners, so `--anchor-corners` keeps a fine-tune's corners there.
EYE_CORNERS = (36, 39, 42, 45)


def corner_anchor_loss(off: torch.Tensor, ref_off: torch.Tensor, pts: torch.Tensor, only: torch.Tensor | None = None) -> torch.Tensor:
    """Mean distance between the eye corners of two offset outputs (positives: the first
    len(pts) rows), in inter-ocular units of the target points. `only` [n_pos] bool: just those
    positives (e.g. the tracker-like windows the runtime cuts eye patches on)."""
    n_pos = pts.shape[0]
    d = (off[:n_pos] - ref_off[:n_pos]).view(-1, 68, 2)[:, list(EYE_CORNERS)]
    iod = torch.linalg.norm(pts[:, 36] - pts[:, 45], dim=1).clamp(min=0.05)
    e = torch.linalg.norm(d, dim=2) / iod[:, None]
    if only is not None:
        if not bool(only.any()):
            return e.sum() * 0.0
        e = e[only]
    return e.mean()
#: Parts of the stage-3 net that the shipped ONNX lacks (fresh weights on a warm start).
NEW_PARTS = ("eye_closed", "eye_r", "eye_l")

#: Extra target std (in inter-ocular units) for an occluded point: its position is a
#: guess from the shape prior, so its uncertainty must be higher whatever the error was.
OCCLUDED_STD = 0.12


def _ear_t(p: torch.Tensor) -> torch.Tensor:
    """[B, 2] EAR of the right (36-41) and left (42-47) eye of [B, 68, 2] points."""
    out = []
    for a in (36, 42):
        e = p[:, a : a + 6]
        w = torch.linalg.norm(e[:, 0] - e[:, 3], dim=1).clamp(min=0.02)  # >= ~2 px: an eye seen edge-on has no EAR
        out.append((torch.linalg.norm(e[:, 1] - e[:, 5], dim=1) + torch.linalg.norm(e[:, 2] - e[:, 4], dim=1)) / (2 * w))
    return torch.stack(out, 1).clamp(max=0.6)


def point_weights(jaw: float = 1.0) -> torch.Tensor:
    """[68] per-point weights of the coordinate loss, mean 1: the jaw line (iBUG 0-16) is
    where the student is furthest from the teachers on real photos and video (median NME
    ~6-7 % there vs 2-4 % elsewhere, shipped int8 model)."""
    w = torch.ones(68)
    w[:17] = jaw
    return w / w.mean()


def losses(model, mean, x, pts, dis, valid, occ=None, eyes=None, weights: torch.Tensor | None = None, tight: torch.Tensor | None = None,
           valid_ref: torch.Tensor | None = None, anchor_weight: float = 0.0, store: dict | None = None):
    """(coordinate NME, sigma NLL, validity BCE, error, iod, EAR L1, eye-closed BCE).
    The last two are zero without eye targets or without an eye head. `weights`: [68]
    per-point weights of the coordinate term (mean 1; None: all points alike). `tight`: samples
    left out of the validity term (tight-window positives: with them in it, validity on the
    detector's wider first window fell below the tracker's acquire threshold, measured).
    `valid_ref`: validity probabilities of a frozen reference network (the net being fine-tuned,
    as it was) on the same batch, a soft target added to the validity term with `anchor_weight`:
    a fine-tune for coordinates must not move the validity the tracker acquires and drops faces
    on (measured without it: a real photo's face fell below the 0.8 acquire threshold, a
    profile stretch of the shared clip lost its track, a background window rose to 0.52)."""
    n_pos = pts.shape[0]
    outs = model(x)
    off, log_sigma, vlogit = outs[:3]
    if store is not None:  # the caller reuses this forward pass (train_step's consistency term)
        store["offsets"] = off
    pred = mean + off[:n_pos].view(-1, 68, 2)
    # normaliser: inter-ocular distance, but never below 0.6 x brow-to-chin height (a turned
    # head's eye corners converge; its errors must not blow up the loss)
    iod = torch.maximum(torch.linalg.norm(pts[:, 36] - pts[:, 45], dim=1), 0.6 * torch.linalg.norm(pts[:, 27] - pts[:, 8], dim=1)).clamp(min=0.05)
    err = torch.linalg.norm(pred - pts, dim=2)  # [B,68] crop-normalised units
    l_coord = (err / iod[:, None]).mean() if weights is None else (err / iod[:, None] * weights).mean()
    ls = log_sigma[:n_pos].clamp(-8, 3)
    e2 = err.detach() ** 2 + 0.5 * (dis * iod[:, None]) ** 2
    if occ is not None:
        e2 = e2 + torch.from_numpy(occ.astype("float32")) * (OCCLUDED_STD * iod[:, None]) ** 2
    l_nll = (e2 / (2 * torch.exp(2 * ls)) + 2 * ls).mean()
    if tight is None or not bool(tight.any()):
        l_valid = nn.functional.binary_cross_entropy_with_logits(vlogit[:, 0], valid)
    else:
        keep = ~tight
        l_valid = nn.functional.binary_cross_entropy_with_logits(vlogit[keep, 0], valid[keep])
    if valid_ref is not None:
        l_valid = l_valid + anchor_weight * nn.functional.binary_cross_entropy_with_logits(vlogit[:, 0], valid_ref)
    zero = torch.zeros(())
    l_ear, l_eye = zero, zero
    if eyes is not None:
        # eyelids: their own NME term (well-conditioned) plus a small EAR term; EAR alone is a
        # ratio whose gradient (|g| ~20 at weight 5, measured) swamps every other loss
        lids = list(EYELID_POINTS)
        l_ear = (err[:, lids] / iod[:, None]).mean() + 0.1 * (_ear_t(pred) - _ear_t(pts)).abs().mean()
        if len(outs) > 3:
            l_eye = nn.functional.binary_cross_entropy_with_logits(outs[3][:n_pos], eyes)
    return l_coord, l_nll, l_valid, err, iod, l_ear, l_eye


def quant_consistency(model, mean_t, x, pts, off_q: torch.Tensor) -> torch.Tensor:
    """NME (positives normalised by their inter-ocular distance, the rest by the mean shape's)
    between the QAT model's quantised forward pass (off_q, already computed) and its
    unquantised one on batch x."""
    from . import qat

    n_pos = pts.shape[0]
    qat.set_act_quant(model, False)
    try:
        off_f = model(x)[0]
    finally:
        qat.set_act_quant(model, True)
    pq = mean_t + off_q.view(-1, 68, 2)
    pf = mean_t + off_f.view(-1, 68, 2)
    iod = torch.full((x.shape[0],), float(torch.linalg.norm(mean_t[36] - mean_t[45])))
    iod[:n_pos] = torch.linalg.norm(pts[:, 36] - pts[:, 45], dim=1).clamp(min=0.05)
    return (torch.linalg.norm(pq - pf, dim=2).mean(1) / iod).mean()


def train_step(model, mean_t, opt, fs, idx, rng, pool, batch: int, nll_weight: float, eyes: bool = False,
               closure_p: float = 0.0, yaw_p: float = 0.0, tight_p: float = 0.0, weights: torch.Tensor | None = None,
               anchor: nn.Module | None = None, anchor_weight: float = 0.0, max_yaw: float = 65.0, dark_p: float = 0.0,
               consistency: float = 0.0, range_weight: float = 0.0, wide_p: float = 0.0, corner_weight: float = 0.0,
               corner_tight_only: bool = False) -> tuple[float, ...]:
    """One optimiser step on a batch of positives + 1/6 bad windows + 1/6 non-face patches.
    Loss = 10 * coordinate NME + nll_weight * uncertainty NLL + 0.5 * validity BCE (stage 1
    uses 0.05 on the NLL, the uncertainty fine-tune 0.5); with `eyes` (stage 3) also
    5 * (eyelid NME + 0.1 |EAR(pred) - EAR(target)|) + 1.0 * eye-closed BCE.
    consistency (QAT phase only): + that weight x the NME between the activation-quantised and
    the unquantised forward pass of the same weights (what the int8 fidelity gate measures);
    range_weight (QAT phase only): + that weight x the residual branches' overshoot beyond
    +-6 (training/qat.py bound_residuals; function-preserving, narrows their int8 scale).
    corner_weight (needs `anchor`): + that weight x the eye corners' distance to the anchor
    network's (corner_anchor_loss).
    Returns the loss values."""
    x, pts, dis, valid, occ, eye_t, tight, warped = make_batch(fs, idx, rng, pool, batch // 6, batch // 6, closure_p, yaw_p, max_yaw,
                                                               tight_p, dark_p=dark_p, wide_p=wide_p)
    valid_ref, ref_off = None, None
    if anchor is not None and (anchor_weight > 0 or corner_weight > 0):
        with torch.no_grad():
            ref_out = anchor(x)
        ref_off = ref_out[0]
    if anchor is not None and anchor_weight > 0:
        with torch.no_grad():
            valid_ref = torch.sigmoid(ref_out[2][:, 0])
        # the reference never saw a yaw warp: on warped positives the anchor is the label itself
        valid_ref = torch.where(warped, valid, valid_ref)
    store: dict = {}
    lc, ln, lv, _, _, le, lk = losses(model, mean_t, x, pts, dis, valid, occ, eye_t if eyes else None, weights, tight, valid_ref, anchor_weight,
                                      store)
    loss = lc * 10 + nll_weight * ln + 0.5 * lv + 5.0 * le + 1.0 * lk
    lq, lr_ = torch.zeros(()), torch.zeros(())
    if range_weight > 0:
        from . import qat

        lr_ = qat.range_penalty(model)
        loss = loss + range_weight * lr_
    if consistency > 0:
        lq = quant_consistency(model, mean_t, x, pts, store["offsets"])
        loss = loss + consistency * lq
    if corner_weight > 0 and ref_off is not None:
        only = tight[: pts.shape[0]] if corner_tight_only else None
        loss = loss + corner_weight * corner_anchor_loss(store["offsets"], ref_off, pts, only)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return lc.item(), ln.item(), lv.item(), le.item(), lk.item(), lq.item(), lr_.item()


def evaluate(model, fs, mean, pool, seed: int = 123, closure_p: float = 0.0, jitter: float = 1.0) -> dict:
    """Held-out identities, augmented crops. With closure_p > 0 a share of the crops get
    synthetic closure too (eye metrics on closed eyes); real closed eyes are counted as they come.
    jitter < 1: positives cropped with a tighter window jitter (the tracker's windows)."""
    rng = np.random.default_rng(seed)
    model.eval()
    idx = np.flatnonzero(fs.heldout)
    nmes, errs, sigmas, occs, vpos, vneg = [], [], [], [], [], []
    ear_p, ear_t, eye_p, eye_t = [], [], [], []
    with torch.no_grad():
        for s in range(0, len(idx), 64):
            b = idx[s : s + 64]
            x, pts, dis, valid, occ, et, _, _ = make_batch(fs, b, rng, pool, 16, 16, closure_p, jitter=jitter)
            outs = model(x)
            off, ls, v = outs[:3]
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
            ear_p.append(_ear_t(pred).numpy())
            ear_t.append(_ear_t(pts).numpy())
            eye_t.append(et.numpy())
            if len(outs) > 3:
                eye_p.append(torch.sigmoid(outs[3][:n]).numpy())
    from scipy.stats import spearmanr

    errs_a, sig_a, occ_a = np.concatenate(errs), np.concatenate(sigmas), np.concatenate(occs)
    vpos_a, vneg_a = np.concatenate(vpos), np.concatenate(vneg)
    model.train()
    out = {
        "heldout_images": int(len(idx)),
        "nme_vs_teacher_ensemble_mean": float(np.concatenate(nmes).mean()),
        "nme_vs_teacher_ensemble_median": float(np.median(np.concatenate(nmes))),
        "sigma_error_spearman": float(spearmanr(sig_a.ravel(), errs_a.ravel())[0]),
        "sigma_occluded_over_visible": float(sig_a[occ_a].mean() / sig_a[~occ_a].mean()) if occ_a.any() else None,
        "error_occluded_over_visible": float(errs_a[occ_a].mean() / errs_a[~occ_a].mean()) if occ_a.any() else None,
        "validity_true_positive_rate": float((vpos_a > 0.5).mean()),
        "validity_true_negative_rate": float((vneg_a < 0.5).mean()),
        # the tracker acquires a face from a detection only above 0.8 (TrackerConfig.validity_acquire)
        "validity_positive_above_0.8": float((vpos_a > 0.8).mean()),
    }
    ep, et_ = np.concatenate(ear_p).ravel(), np.concatenate(ear_t).ravel()
    out["ear_pearson_vs_target"] = float(np.corrcoef(ep, et_)[0, 1])
    out["ear_mae"] = float(np.abs(ep - et_).mean())
    out["eval_closure_p"] = closure_p
    if eye_p:
        pp, tt = np.concatenate(eye_p).ravel(), np.concatenate(eye_t).ravel()
        closed, openy = tt > 0.99, tt < 0.01
        out["eye_closed_eyes"] = int(closed.sum())
        out["eye_closed_recall"] = float((pp[closed] > 0.5).mean()) if closed.any() else None
        out["eye_closed_precision"] = float(closed[pp > 0.5].mean()) if (pp > 0.5).any() else None
        out["eye_open_false_closed_rate"] = float((pp[openy] > 0.5).mean()) if openy.any() else None
    return out


def export_landmarks_onnx(model: LandmarkNet, mean: np.ndarray, path) -> None:
    names = ["offsets", "log_sigma", "validity"] + (["eye_closed"] if model.eye_closed is not None and model.eye_state_output else [])
    export_onnx(model, torch.zeros(1, 1, SIZE, SIZE), path, ["image"], names, {
        "edgeaffect.kind": "landmarks",
        "edgeaffect.input_range": "[0,1] grey, crop of edgeaffect.vision.alignment.FaceWindow",
        "edgeaffect.mean_shape": json.dumps(np.round(mean, 6).tolist()),
        "edgeaffect.postprocess": "points = (mean_shape + offsets.reshape(68,2)) * crop_size; sigma = exp(log_sigma) * crop_size; "
        "valid = sigmoid(validity) > 0.5; eye closed probability = sigmoid(eye_closed) (subject's right eye 36-41, left eye 42-47)",
        "edgeaffect.eye_closed_order": json.dumps(["right", "left"]),
    })


#: Where write_outputs puts landmarks.onnx + train_metrics.json (`--out`; default the repo's models/landmarks).
OUT_DIR = MODELS_SRC / "landmarks"
#: Where stage 3 keeps its checkpoints and final.pt: work/landmarks/, or `--out DIR`/state with --out.
#: One shared place made chained runs unsafe: a second run (e.g. the --validity-only pass after a
#: whole-network run) found the first run's finished ckpt_qat.pt, "resumed" it at its last epoch and
#: re-exported the first run's network without training.
STATE_DIR: Path | None = None


def state_path(name: str) -> Path:
    if STATE_DIR is None:
        return work("landmarks", name)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    return STATE_DIR / name


def write_outputs(model, mean, history, epochs, n_train, offsets: np.ndarray | None = None, extra: dict | None = None) -> None:
    """With `--out` elsewhere than models/landmarks (a candidate run beside others), the
    offsets fixture tests/fixtures/mediapipe_offsets.json is left alone."""
    out = OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "mean": mean}, state_path("final.pt"))
    export_landmarks_onnx(model, mean, out / "landmarks.onnx")
    macs, params = count_macs(model, torch.zeros(1, 1, SIZE, SIZE))
    final = dict(history[-1]) if history else {}
    final.update(macs=macs, params=params, epochs=epochs, train_images=int(n_train))
    final.update(extra or {})
    (out / "train_metrics.json").write_text(json.dumps({"final": final, "history": history}, indent=1))
    if offsets is not None and out == MODELS_SRC / "landmarks":  # the evaluation references must use the offsets the targets used
        (REPO / "tests" / "fixtures" / "mediapipe_offsets.json").write_text(json.dumps({
            "offsets": np.round(offsets, 4).tolist(),
            "produced_by": "python -m training.train_landmarks (training.targets.calibrate_mediapipe_offsets on the refined-mesh teachers)",
        }))
    print("exported", out / "landmarks.onnx", flush=True)


def load_onnx_weights(model: LandmarkNet, path) -> np.ndarray:
    """Warm start from an exported landmark ONNX (BatchNorm folded into the convolutions by
    the exporter): conv weights/biases go into each conv, its BN becomes the identity plus
    the folded bias; Gemm weights into the Linear layers in graph order. Returns the mean
    shape from the ONNX metadata. Heads the ONNX lacks (eye_closed) stay freshly initialised."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    gemms = [n for n in m.graph.node if n.op_type in ("Gemm", "MatMul")]
    tconvs = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, nn.Conv2d)]
    mods = dict(model.named_modules())
    tconvs = [(name, mod) for name, mod in tconvs if not name.startswith(NEW_PARTS)]
    tlin = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, nn.Linear) and not name.startswith(NEW_PARTS)]
    if len(convs) != len(tconvs) or len(gemms) != len(tlin):
        raise ValueError(f"{path}: {len(convs)} convs / {len(gemms)} gemms vs model {len(tconvs)} / {len(tlin)}")
    # Gemms whose weight keeps its PyTorch name ("fc.0.weight") go to that layer: the exporter
    # does not emit the heads in module order (the shipped ONNX has the offsets layer last)
    lin_names = {name for name, _ in tlin}
    by_name = {n.input[1][: -len(".weight")]: n for n in gemms if n.input[1].endswith(".weight")}
    if set(by_name) == lin_names:
        gemms = [by_name[name] for name, _ in tlin]
    with torch.no_grad():
        for node, (name, conv) in zip(convs, tconvs):
            w = init[node.input[1]]
            b = init[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            conv.weight.copy_(torch.from_numpy(w))
            parent, idx = name.rsplit(".", 1)
            bn = mods[parent][int(idx) + 1]
            assert isinstance(bn, nn.BatchNorm2d), name
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        for node, (_name, lin) in zip(gemms, tlin):
            w = init[node.input[1]]
            if node.op_type == "MatMul" or (w.shape != tuple(lin.weight.shape) and w.shape[::-1][0] == lin.weight.shape[0]):
                w = w.T
            if w.shape != tuple(lin.weight.shape):  # a layer that gained inputs (offsets: + eye features): new columns stay zero
                lin.weight.zero_()
                lin.weight[:, : w.shape[1]].copy_(torch.from_numpy(np.ascontiguousarray(w)))
            else:
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            bias = node.input[2] if len(node.input) > 2 else None
            if bias is None:  # MatMul + Add
                add = next(n for n in m.graph.node if n.op_type == "Add" and node.output[0] in n.input)
                bias = next(i for i in add.input if i in init)
            lin.bias.copy_(torch.from_numpy(init[bias].reshape(-1)))
    meta = {p.key: p.value for p in m.metadata_props}
    return np.asarray(json.loads(meta["edgeaffect.mean_shape"]), np.float32).reshape(68, 2)


def sample_weights(fs) -> np.ndarray:
    """Oversample what the data has little of: real closed eyes (x4) and turned heads (x3)."""
    from edgeaffect.vision.headpose import estimate_head_pose

    w = np.ones(len(fs.names))
    for i, t in enumerate(fs.targets):
        if (eye_aspect_ratios(t) < 0.15).any():
            w[i] += 3.0
        x0, y0 = t.min(0)
        x1, y1 = t.max(0)
        pose = estimate_head_pose(t - [x0, y0], (int(x1 - x0) + 1, int(y1 - y0) + 1))
        if pose is not None and abs(pose.yaw) > 25:
            w[i] += 2.0
    return w


def plain_state(model: LandmarkNet) -> dict:
    """State dict of a QAT-prepared (BN-folded, baked) net in the plain LandmarkNet layout:
    each BN becomes identity + the conv's folded bias, so LandmarkNet().load_state_dict works."""
    ref = LandmarkNet(eyes=model.eye_closed is not None)
    st = ref.state_dict()
    mods = dict(model.named_modules())
    ref_mods = dict(ref.named_modules())
    for name, mod in ref.named_modules():
        if isinstance(mod, nn.Conv2d):
            src = mods[name]
            st[name + ".weight"] = src.weight.detach().clone()
            parent, idx = name.rsplit(".", 1)
            bn = f"{parent}.{int(idx) + 1}"
            st[bn + ".weight"] = torch.ones_like(st[bn + ".weight"])
            st[bn + ".bias"] = src.bias.detach().clone()
            st[bn + ".running_mean"] = torch.zeros_like(st[bn + ".running_mean"])
            st[bn + ".running_var"] = torch.full_like(st[bn + ".running_var"], 1.0 - ref_mods[bn].eps)
        elif isinstance(mod, nn.Linear):
            st[name + ".weight"] = mods[name].weight.detach().clone()
            st[name + ".bias"] = mods[name].bias.detach().clone()
    return st


def freeze_all_but_heads(model: nn.Module) -> None:
    """`--heads-only`: the backbone and the validity head stop learning, so the validity output
    (the tracker's acquire/lose decision) stays exactly the initial network's; the coordinate
    (fc, offsets) and uncertainty heads train. Every whole-network fine-tune tried moved validity
    on real frames (a photo's face fell below the 0.8 acquire threshold in each of them)."""
    for name, prm in model.named_parameters():
        prm.requires_grad_(not name.startswith(("backbone.", "validity.")))


def freeze_all_but_validity(model: nn.Module) -> None:
    """`--validity-only`: only the validity head learns (points and uncertainty stay exactly the
    initial network's): a re-fit of the tracker's acquire/lose signal on a finished network."""
    for name, prm in model.named_parameters():
        prm.requires_grad_(name.startswith("validity."))


def freeze_bn(model: nn.Module) -> None:
    """BatchNorm uses its running statistics while fine-tuning (affine parameters still learn):
    a warm start from an ONNX export has BN folded into the convs and identity statistics,
    which batch statistics would overwrite. The new eye branches keep training-mode BN: without
    it their freshly initialised convs give near-zero features and the eye head cannot learn
    (measured: eye-closed BCE stuck at the base rate)."""
    model.train()
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d) and not name.startswith(NEW_PARTS):
            m.eval()


def _run_epochs(model, mean_t, opt, sched, fs, pool, weights, a, ck, phase: str, epochs: int, history: list, start: int, extra_state: dict,
                anchor: nn.Module | None = None) -> None:
    eyes = model.eye_closed is not None
    train_idx = np.flatnonzero(~fs.heldout)
    p = weights[train_idx] / weights[train_idx].sum()
    steps = a.steps or len(train_idx) // a.batch
    for epoch in range(start, epochs):
        freeze_bn(model)
        rng = np.random.default_rng((7000 if phase == "eyes" else 9000) + epoch)
        t0, agg = time.time(), np.zeros(7)
        for s in range(steps):
            b = rng.choice(train_idx, a.batch, replace=False, p=p)
            agg += train_step(model, mean_t, opt, fs, b, rng, pool, a.batch, nll_weight=0.5, eyes=eyes,
                              closure_p=0.3 if eyes else 0.0, yaw_p=stage3_yaw_p(a), max_yaw=a.max_yaw, tight_p=a.tight_p,
                              weights=None if a.jaw_weight == 1.0 else point_weights(a.jaw_weight),
                              anchor=anchor, anchor_weight=a.anchor_validity if anchor is not None else 0.0,
                              dark_p=a.qat_dark_p if phase == "qat" else a.dark_p, consistency=a.consistency if phase == "qat" else 0.0,
                              range_weight=a.range_penalty if phase == "qat" else 0.0, wide_p=a.wide_p,
                              corner_weight=a.anchor_corners if anchor is not None else 0.0, corner_tight_only=a.anchor_corners_tight)
            if sched is not None:
                sched.step()
            if s % 50 == 0:
                g = agg / (s + 1)
                print(f"{phase} ep {epoch} step {s}/{steps} nme {g[0]:.4f} nll {g[1]:.3f} val {g[2]:.3f} ear {g[3]:.4f} eye {g[4]:.3f} q/f {g[5]:.4f} range {g[6]:.4f} {time.time() - t0:.0f}s", flush=True)
        m = evaluate(model, fs, mean_t, pool)
        if a.tight_p > 0:  # held-out NME on tracker-like windows too
            t = evaluate(model, fs, mean_t, pool, jitter=TIGHT_JITTER)
            m["tight_window_nme_median"], m["tight_window_nme_mean"] = t["nme_vs_teacher_ensemble_median"], t["nme_vs_teacher_ensemble_mean"]
        if eyes:
            m.update({f"closure_{k}": v for k, v in evaluate(model, fs, mean_t, pool, seed=321, closure_p=0.5).items() if k.startswith(("eye_", "ear_"))})
        m["epoch"] = f"{phase}-{epoch}"
        history.append(m)
        print(json.dumps(m), flush=True)
        checkpoint.save(ck, model=model.state_dict(), opt=opt.state_dict(), sched=None if sched is None else sched.state_dict(),
                        epoch=epoch, history=history, **extra_state)


def stage3_yaw_p(a) -> float:
    """Share of stage-3 positives given a cylinder yaw warp (`--yaw-p`; default 0.15 with the
    eye branches, none with --no-eyes, as the shipped recipes ran)."""
    return a.yaw_p if a.yaw_p is not None else (0.0 if a.no_eyes else 0.15)


def train_eyes_qat(a) -> None:
    """Stage 3 (see the module docstring): eyelids/eye state/pose/negatives, then QAT."""
    from . import qat

    fs = load_faceset(a.limit)
    pool = nonface_pool()
    weights = sample_weights(fs)
    print(f"{len(fs.names)} usable images, {int((~fs.heldout).sum())} train; oversampled {int((weights > 1).sum())}", flush=True)
    ck_e, ck_q = state_path("ckpt_eyes.pt"), state_path("ckpt_qat.pt")
    model = LandmarkNet(eyes=not a.no_eyes)
    prev = work("landmarks", "final.pt")
    base_hist: list = []
    if prev.exists() and not a.init_onnx:
        base = torch.load(prev, weights_only=False)
        print("init from", prev, model.load_state_dict(base["model"], strict=False), flush=True)
        mean = base["mean"]
        base_hist = base.get("history") or []
    else:
        src = a.init_onnx or str(MODELS_SRC / "landmarks" / "landmarks.onnx")
        mean = load_onnx_weights(model, src)
        print("init from ONNX weights", src, flush=True)
    anchor = None
    if a.anchor_validity > 0 or a.anchor_corners > 0:
        ref_onnx = a.anchor_onnx or a.init_onnx
        if not ref_onnx:
            raise SystemExit("--anchor-validity/--anchor-corners need --init-onnx or --anchor-onnx (the reference network)")
        anchor = LandmarkNet(eyes=not a.no_eyes)
        load_onnx_weights(anchor, ref_onnx)
        anchor.eval().requires_grad_(False)
    mean_t = torch.from_numpy(mean)
    train_idx = np.flatnonzero(~fs.heldout)
    steps = a.steps or len(train_idx) // a.batch
    if a.heads_only:
        freeze_all_but_heads(model)
    if a.validity_only:
        freeze_all_but_validity(model)
    # -- float phase
    history: list = []
    st_q = checkpoint.load(ck_q)
    if st_q is None:
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=max(1, steps * a.eyes), pct_start=0.05)
        st = checkpoint.load(ck_e)
        start = 0
        if st:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            start, history = st["epoch"] + 1, st["history"]
            print("resumed eyes phase at epoch", start, flush=True)
        _run_epochs(model, mean_t, opt, sched, fs, pool, weights, a, ck_e, "eyes", a.eyes, history, start, {"mean": mean}, anchor)
        torch.save({"model": model.state_dict(), "mean": mean, "history": history}, state_path("float_eyes.pt"))
    # -- quantisation-aware phase
    if a.qat:
        if st_q is None:
            model.load_state_dict(torch.load(state_path("float_eyes.pt"), weights_only=False)["model"])
        qat.prepare(model)
        if a.range_penalty > 0:
            qat.bound_residuals(model)
        qat_lr = a.qat_lr or a.lr * 0.2
        if a.heads_only:  # prepare() swapped in new (trainable) layers
            freeze_all_but_heads(model)
        if a.validity_only:
            freeze_all_but_validity(model)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=qat_lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps * a.qat), eta_min=qat_lr * 0.05)
        start = 0
        if st_q is not None:
            model.load_state_dict(st_q["model"])
            opt.load_state_dict(st_q["opt"])
            sched.load_state_dict(st_q["sched"])
            start, history = st_q["epoch"] + 1, st_q["history"]
            print("resumed QAT at epoch", start, flush=True)
        elif not history:
            history = (checkpoint.load(ck_e) or {}).get("history", [])
        _run_epochs(model, mean_t, opt, sched, fs, pool, weights, a, ck_q, "qat", a.qat, history, start, {"mean": mean}, anchor)
        model.eval()
        qat.bake(model)
        plain = LandmarkNet(eyes=not a.no_eyes)
        plain.load_state_dict(plain_state(model))
        model = plain
    model.eval()
    write_outputs(model, mean, base_hist + history, a.eyes + a.qat, len(train_idx), fs.mp_offsets,
                  {"stage3": {"eye_epochs": a.eyes, "qat_epochs": a.qat, "steps_per_epoch": steps, "batch": a.batch,
                              "closure_p": 0.3 if not a.no_eyes else 0.0, "yaw_p": stage3_yaw_p(a),
                              "max_yaw_deg": a.max_yaw, "tight_p": a.tight_p, "dark_p": a.dark_p, "qat_dark_p": a.qat_dark_p,
                              "consistency": a.consistency, "range_penalty": a.range_penalty, "wide_p": a.wide_p, "jaw_weight": a.jaw_weight, "anchor_validity": a.anchor_validity, "anchor_corners": a.anchor_corners, "anchor_corners_tight": a.anchor_corners_tight, "anchor_onnx": a.anchor_onnx, "heads_only": a.heads_only, "validity_only": a.validity_only, "qat_lr": a.qat_lr or a.lr * 0.2, "tight_jitter": TIGHT_JITTER, "lr": a.lr,
                              "init_onnx": a.init_onnx}})


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
            lc, ln = train_step(model, mean_t, opt, fs, perm[s * a.batch : (s + 1) * a.batch], rng, pool, a.batch, nll_weight=0.5)[:2]
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
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--finetune-sigma", type=int, default=0, metavar="EPOCHS",
                    help="stage 2: re-train the uncertainty head (occlusion-aware target) from work/landmarks/final.pt")
    ap.add_argument("--eyes", type=int, default=0, metavar="EPOCHS", help="stage 3: eyelids, eye state, yaw, negatives (float)")
    ap.add_argument("--qat", type=int, default=0, metavar="EPOCHS", help="stage 3: quantisation-aware epochs after --eyes")
    ap.add_argument("--init-onnx", default=None, help="stage 3: warm start from this landmark ONNX instead of work/landmarks/final.pt")
    ap.add_argument("--steps", type=int, default=0, help="steps per epoch (default: one pass over the training images)")
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--anchor-validity", type=float, default=0.0, help="stage 3 with --init-onnx: weight of a soft validity "
                    "target from the initial network (frozen copy), so a coordinate fine-tune keeps its validity")
    ap.add_argument("--anchor-onnx", default=None, help="the network whose validity --anchor-validity keeps (default: --init-onnx)")
    ap.add_argument("--anchor-corners", type=float, default=0.0, help="stage 3: weight of the eye corners' (iBUG 36/39/42/45) "
                    "distance to the --anchor-onnx network's: the eye-state network was trained on patches cut at those corners")
    ap.add_argument("--anchor-corners-tight", action="store_true", help="--anchor-corners on the tracker-like (--tight-p) "
                    "and dimmed positives only (the windows the runtime cuts eye patches on), not on the loosely jittered ones")
    ap.add_argument("--heads-only", action="store_true", help="stage 3: train the coordinate and uncertainty heads only "
                    "(backbone and validity head frozen, so validity is unchanged)")
    ap.add_argument("--validity-only", action="store_true", help="stage 3: train the validity head only (points and "
                    "uncertainty unchanged)")
    ap.add_argument("--jaw-weight", type=float, default=1.0, help="stage 3: weight of the jaw points (iBUG 0-16) in the coordinate loss")
    ap.add_argument("--qat-lr", type=float, default=None, help="peak rate of the QAT phase (cosine; default 0.2 x --lr)")
    ap.add_argument("--tight-p", type=float, default=0.0, help="stage 3: share of positives cropped with the tracker-like "
                    f"window jitter (strength {TIGHT_JITTER}) instead of the full one")
    ap.add_argument("--no-eyes", action="store_true", help="stage 3 without the eye branches/head and without closure/yaw "
                    "augmentation: ReLU6 + quantisation-aware fine-tuning of the shipped network only")
    ap.add_argument("--yaw-p", type=float, default=None, help="stage 3: share of positives turned by the cylinder yaw warp "
                    "(training/augment.py yaw_warp; hidden points flagged occluded). Default 0.15, 0 with --no-eyes")
    ap.add_argument("--max-yaw", type=float, default=65.0, help="stage 3: largest yaw of the warp, degrees (drawn from 15 to this)")
    ap.add_argument("--dark-p", type=float, default=0.0, help="stage 3 float phase: share of positives dimmed like a dark/NIR frame")
    ap.add_argument("--wide-p", type=float, default=0.0, help="stage 3: share of (non-tight) positives cropped with a wider, "
                    "detector-like window")
    ap.add_argument("--qat-dark-p", type=float, default=0.0, help="stage 3 QAT phase: share of positives dimmed like a dark/NIR frame")
    ap.add_argument("--consistency", type=float, default=0.0, help="stage 3 QAT phase: weight of the NME between the quantised "
                    "and the unquantised forward pass (the int8 fidelity gate's measure)")
    ap.add_argument("--range-penalty", type=float, default=0.0, help="stage 3 QAT phase: weight of the residual branches' "
                    "overshoot beyond +-6 (function-preserving; narrows the int8 scale the converter calibrates for them)")
    ap.add_argument("--export", action="store_true", help="only re-export models/landmarks/landmarks.onnx from work/landmarks/final.pt")
    ap.add_argument("--no-eye-state", action="store_true",
                    help="with --export: leave the eye_closed output out (when its held-out check failed; the eye branches still feed the points)")
    ap.add_argument("--out", default=None, help="write landmarks.onnx and train_metrics.json here instead of models/landmarks "
                    "(then tests/fixtures/mediapipe_offsets.json is not rewritten)")
    a = ap.parse_args()
    if a.out:
        global OUT_DIR, STATE_DIR
        OUT_DIR = Path(a.out).resolve()
        STATE_DIR = OUT_DIR / "state"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.export:
        st = torch.load(work("landmarks", "final.pt"), weights_only=False)
        model = LandmarkNet()
        model.load_state_dict(st["model"])
        model.eye_state_output = not a.no_eye_state
        model.eval()
        export_landmarks_onnx(model, st["mean"], MODELS_SRC / "landmarks" / "landmarks.onnx")
        tm = MODELS_SRC / "landmarks" / "train_metrics.json"
        if tm.exists():
            d = json.loads(tm.read_text())
            d["final"]["eye_state_output_exported"] = model.eye_state_output
            tm.write_text(json.dumps(d, indent=1))
        print("exported", MODELS_SRC / "landmarks" / "landmarks.onnx", "eye_closed output:", model.eye_state_output, flush=True)
        return
    if a.eyes or a.qat:
        train_eyes_qat(a)
        return
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
            lc, ln, lv = train_step(model, mean_t, opt, fs, perm[s * a.batch : (s + 1) * a.batch], rng, pool, a.batch, nll_weight=0.05)[:3]
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
