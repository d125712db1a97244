"""The gate: the fidelity budget, per-kind task metrics and the pass/fail reasons (with range hints)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeaffect.runtime.backends import ops_details

from .metrics import AU_LOW_SPREAD_MAE, AU_MIN_SPREAD, ccc, icc_3_1, nme_delta_pct, spearman
from .metrics import rounded as _r


@dataclass
class Budget:
    """Gate thresholds (the fidelity budget). Defaults from issue 3; all overridable by flags."""

    nme_delta_pct: float = 0.5  # landmarks: mean NME delta, % of inter-ocular distance
    au_icc: float = 0.98  # au: ICC(3,1) float-vs-quantised, every AU
    va_ccc: float = 0.99  # temporal: CCC of V and A (last step and all steps)
    min_snr_db: float = 20.0  # generic: every output (detectors: the anchor-level gate below instead)
    det_recall: float = 0.97  # detector: decoded detections found by the quantised model (vs float)
    det_precision: float = 0.97  # detector: quantised detections the float model also reports
    det_iou: float = 0.90  # detector: mean IoU of matched decoded boxes
    det_score_mae: float = 0.05  # detector: mean |score float - score quantised| of matched detections
    eyes_agreement: float = 0.97  # eyes: closed decisions (sigmoid(logit) > 0.5) equal to float's
    eyes_prob_mae: float = 0.03  # eyes: mean |p float - p quantised| of the closed probability
    eyes_point_px: float = 0.25  # eyes with an `eyelids` output: mean point distance float vs quantised, patch px (eye = 24 px)
    min_rank_corr: float | None = None  # uncertainty Spearman (log_sigma, temporal ch 2..7); None = report only
    layer_jump_db: float = 10.0  # localisation: an SNR drop this large between matched layers is "a jump"
    layer_floor_db: float = 20.0  # localisation: the first matched layer below this is "the first large error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)





def _find_output(names: list[str], per_sample: dict[str, int], prefer: tuple[str, ...], numel: int | None) -> str | None:
    for p in prefer:
        for n in names:
            if n == p:
                return n
    for p in prefer:
        for n in names:
            if p in n.lower():
                return n
    if numel is not None:
        for n in names:
            if per_sample[n] == numel:
                return n
    return None


def task_metrics(kind: str, ref: dict[str, np.ndarray], got: dict[str, np.ndarray], metadata: dict[str, Any], budget: Budget) -> tuple[dict[str, Any], list[str]]:
    """(metrics, gate failures) for one variant; arrays are [N, ...] in the ONNX layout.
    A model whose metadata declares a float head (edgeaffect/models/_head.py: the last layer
    runs in numpy on the int8 body's features) is scored on the head's outputs, as run."""
    from edgeaffect.models._head import apply_float_head

    ref, got = apply_float_head(metadata, ref), apply_float_head(metadata, got)
    names = list(ref)
    per = {n: int(np.prod(ref[n].shape[1:])) for n in names}
    m: dict[str, Any] = {}
    fails: list[str] = []
    if kind == "landmarks":
        off = _find_output(names, per, ("offsets", "landmarks", "points"), 136)
        if off is None:
            return {"error": "no output with 68x2 values"}, ["landmarks: no output with 136 values (68 x,y) to score"]
        ms = metadata.get("edgeaffect.mean_shape")
        mean_shape = None
        if ms is not None:
            try:
                mean_shape = np.asarray(ms, np.float64).reshape(68, 2)
            except ValueError:
                mean_shape = None
        m["mean_shape"] = "edgeaffect.mean_shape metadata" if mean_shape is not None else "none (offsets scored as absolute points)"
        d = nme_delta_pct(ref[off].reshape(len(ref[off]), -1), got[off].reshape(len(got[off]), -1), mean_shape)
        if len(d) == 0 or not np.isfinite(d).all():
            fails.append(f"output {off}: NME delta undefined (non-finite output or zero IOD)")
        else:
            m["nme_delta_pct"] = {"mean": _r(d.mean(), 4), "p95": _r(np.percentile(d, 95), 4), "max": _r(d.max(), 4), "output": off}
            if d.mean() > budget.nme_delta_pct:
                fails.append(f"output {off}: NME delta {d.mean():.3f} % IOD > {budget.nme_delta_pct} %")
        ls = _find_output([n for n in names if n != off], per, ("log_sigma", "sigma", "uncertainty"), 68)
        if ls is not None:
            rho = spearman(ref[ls], got[ls])
            m["log_sigma_spearman"] = {"value": _r(rho, 4), "output": ls}
            if budget.min_rank_corr is not None and (rho is None or rho < budget.min_rank_corr):
                fails.append(f"output {ls}: Spearman {rho if rho is None else round(rho, 4)} < {budget.min_rank_corr}")
        va = _find_output([n for n in names if n not in (off, ls)], per, ("validity", "valid", "face"), 1)
        if va is not None:
            m["validity_agreement"] = {"value": _r(float(np.mean((ref[va].ravel() > 0) == (got[va].ravel() > 0))), 4), "output": va}
    elif kind == "au":
        au = _find_output(names, per, ("aus", "au", "au_intensities"), 15)
        if au is None:
            return {"error": "no output with 15 values"}, ["au: no output with 15 AU values to score"]
        r, g = ref[au].reshape(len(ref[au]), -1), got[au].reshape(len(got[au]), -1)
        au_names = metadata.get("edgeaffect.au_names")
        if not (isinstance(au_names, list) and len(au_names) == r.shape[1]):
            au_names = [f"au{i}" for i in range(r.shape[1])]
        per_au = {}
        for j, a in enumerate(au_names):
            icc = icc_3_1(r[:, j], g[:, j])
            mae = float(np.abs(r[:, j] - g[:, j]).mean())
            spread = float(r[:, j].std())
            per_au[a] = {"icc": _r(icc, 4), "mae": _r(mae, 5), "float_std": _r(spread, 4)}
            if icc is None or spread < AU_MIN_SPREAD:
                # ICC measures agreement *relative to the spread*: an AU that barely moves in the
                # held-out data (std < 1 % of its 0..5 scale) makes ICC a ratio of two noises,
                # so it is judged by its absolute error instead.
                per_au[a]["judged_by"] = "mae (AU barely varies in the held-out data)"
                if mae > AU_LOW_SPREAD_MAE:
                    fails.append(f"output {au}: {a} barely varies (float std {spread:.3f}) and its mean abs error {mae:.3f} > {AU_LOW_SPREAD_MAE}")
            elif icc < budget.au_icc:
                fails.append(f"output {au}: {a} ICC {icc:.4f} < {budget.au_icc}")
        iccs = [v["icc"] for v in per_au.values() if v["icc"] is not None and "judged_by" not in v]
        m["au_icc"] = {"min": min(iccs) if iccs else None, "mean": _r(np.mean(iccs), 4) if iccs else None, "per_au": per_au, "output": au}
        if "expression" in ref and ref["expression"].ndim == 2:
            # report only: agreement of the expression head's arg-max and its largest probability change
            re_, ge = ref["expression"], got["expression"]
            m["expression"] = {"argmax_agreement": _r(float(np.mean(re_.argmax(1) == ge.argmax(1))), 4),
                               "max_abs_prob_diff": _r(float(np.abs(re_ - ge).max()), 4)}
    elif kind == "temporal":
        out = None
        for n in names:
            if ref[n].ndim == 3 and ref[n].shape[-1] >= 2:
                out = n
                break
        if out is None:
            return {"error": "no [N,T,C] output"}, ["temporal: no [1,T,C>=2] output to score"]
        r, g = ref[out].astype(np.float64), got[out].astype(np.float64)
        vals = {}
        for ci, lab in ((0, "valence"), (1, "arousal")):
            for where, sl in (("last_step", np.s_[:, -1, ci]), ("all_steps", np.s_[:, :, ci])):
                c = ccc(np.tanh(r[sl]), np.tanh(g[sl]))
                vals[f"{lab}_{where}"] = _r(c, 5)
                if c is None or c < budget.va_ccc:
                    fails.append(f"output {out}: {lab} CCC ({where.replace('_', ' ')}) {c if c is None else round(c, 4)} < {budget.va_ccc}")
        m["va_ccc"] = {**vals, "output": out}
        unc = {}
        for ci in range(2, r.shape[-1]):
            rho = spearman(r[:, :, ci], g[:, :, ci])
            unc[f"ch{ci}"] = _r(rho, 4)
            if budget.min_rank_corr is not None and (rho is None or rho < budget.min_rank_corr):
                fails.append(f"output {out}: uncertainty channel {ci} Spearman {rho if rho is None else round(rho, 4)} < {budget.min_rank_corr}")
        if unc:
            m["uncertainty_spearman"] = unc
    elif kind == "eyes":
        # a classifier: one logit per patch; the sigmoid runs in numpy at runtime (smooth probability)
        out = _find_output(names, per, ("closed_logit", "logit", "closed"), 1)
        if out is None:
            return {"error": "no output with 1 value"}, ["eyes: no output with one closed logit to score"]
        pr = 1.0 / (1.0 + np.exp(-np.clip(ref[out].astype(np.float64).ravel(), -30, 30)))
        pg = 1.0 / (1.0 + np.exp(-np.clip(got[out].astype(np.float64).ravel(), -30, 30)))
        agree, mae = float(np.mean((pr > 0.5) == (pg > 0.5))), float(np.abs(pr - pg).mean())
        m["closed_decision_agreement"] = {"value": _r(agree, 4), "float_closed": int((pr > 0.5).sum()), "samples": int(len(pr)), "output": out}
        m["closed_prob_mae"] = {"value": _r(mae, 5), "max": _r(float(np.abs(pr - pg).max()), 4), "output": out}
        if agree < budget.eyes_agreement:
            fails.append(f"output {out}: closed-decision agreement {agree:.4f} < {budget.eyes_agreement}")
        if mae > budget.eyes_prob_mae:
            fails.append(f"output {out}: closed-probability MAE {mae:.4f} > {budget.eyes_prob_mae}")
        lids = _find_output([n for n in names if n != out], per, ("eyelids",), 12)
        if lids is not None:
            # an eye refinement model: its six contour points (patch pixels), Euclidean per point
            d = np.linalg.norm(ref[lids].astype(np.float64).reshape(-1, 6, 2) - got[lids].astype(np.float64).reshape(-1, 6, 2), axis=2)
            m["eyelid_point_err_px"] = {"mean": _r(float(d.mean()), 4), "p95": _r(float(np.percentile(d, 95)), 4),
                                        "max": _r(float(d.max()), 4), "output": lids}
            if not np.isfinite(d).all() or d.mean() > budget.eyes_point_px:
                fails.append(f"output {lids}: mean eyelid point error {d.mean():.3f} px > {budget.eyes_point_px} px (patch pixels)")
    elif kind == "detector":
        from ..detector_gate import anchor_gate

        m.update(detector_agreement(ref, got))
        gm, gf = anchor_gate(ref, got, metadata, budget)
        m.update(gm)
        fails += gf
    if kind in ("detector", "generic"):
        agree = {}
        for n in names:
            if ref[n].ndim == 2 and ref[n].shape[1] >= 2:
                agree[n] = _r(float(np.mean(ref[n].argmax(1) == got[n].argmax(1))), 4)
        if agree and kind == "generic":
            m["argmax_agreement"] = agree
    return m, fails


def detector_agreement(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, Any]:
    """SSD-style detector (scores [N,A,1] + regressors [N,A,>=4]): does the quantised model find
    the same anchors? Report only (the gate is detector_gate.anchor_gate on decoded boxes): positive-anchor recall/precision at p>0.5,
    top-1 anchor agreement, probability error and box error (model units) on float positives."""
    names = list(ref)
    score = next((n for n in names if ref[n].ndim == 3 and ref[n].shape[-1] == 1), None)
    if score is None:
        return {}
    a = ref[score].shape[1]
    reg = next((n for n in names if n != score and ref[n].ndim == 3 and ref[n].shape[1] == a and ref[n].shape[-1] >= 4), None)

    def sig(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(z.astype(np.float64), -80, 80)))

    pf, pq = sig(ref[score][..., 0]), sig(got[score][..., 0])
    posf, posq = pf > 0.5, pq > 0.5
    both = int((posf & posq).sum())
    out: dict[str, Any] = {"detection_agreement": {
        "score_output": score, "positives_float": int(posf.sum()), "positives_quantised": int(posq.sum()),
        "recall": _r(both / posf.sum(), 4) if posf.any() else None,
        "precision": _r(both / posq.sum(), 4) if posq.any() else None,
        "top1_anchor_agreement": _r(float(np.mean(pf.argmax(1) == pq.argmax(1))), 4),
        "prob_mae": _r(float(np.abs(pf - pq).mean()), 5), "prob_max_err": _r(float(np.abs(pf - pq).max()), 4),
    }}
    if reg is not None and posf.any():
        out["detection_agreement"]["box_mae_on_float_positives"] = _r(float(np.abs(ref[reg][posf][:, :4] - got[reg][posf][:, :4]).mean()), 4)
    return out


def output_quant_steps(tflite_path: Path) -> dict[str, tuple[float, str]]:
    """{output tensor name: (int8 step, op that produced the int8 values)} of a quantised file."""
    from edgeaffect.runtime.backends import load_backend

    be = load_backend()
    kw: dict[str, Any] = {"model_path": str(tflite_path)}
    if be.reference_resolver is not None:
        kw["experimental_op_resolver_type"] = be.reference_resolver
    it = be.Interpreter(**kw)
    tdet = {d["index"]: d for d in it.get_tensor_details()}
    producer = {int(t): o for o in ops_details(it, delegates=False) for t in o["outputs"]}
    out: dict[str, tuple[float, str]] = {}
    for d in it.get_output_details():
        t = int(d["index"])
        op = producer.get(t)
        if op is not None and op["op_name"] == "DEQUANTIZE":
            t = int(op["inputs"][0])
            op = producer.get(t)
        scale = float(tdet[t]["quantization"][0])
        if scale:
            out[d["name"]] = (scale, op["op_name"] if op else "?")
    return out


def range_hints(ref: dict[str, np.ndarray], failing: list[str], steps: dict[str, tuple[float, str]]) -> list[str]:
    """Failing outputs whose int8 step is coarse compared with where their values actually lie
    (a range stretched by a few extreme values, or int8 SOFTMAX's fixed 1/256 step)."""
    hints = []
    for n in failing:
        if n not in steps:
            continue
        step, op = steps[n]
        r = ref[n].astype(np.float64).ravel()
        lo, hi = float(r.min()), float(r.max())
        p1, p99 = (float(v) for v in np.percentile(r, [1, 99]))
        if step <= max(p99 - p1, 1e-12) / 20.0:
            continue
        levels = (p99 - p1) / step
        h = f"output {n} is quantised with step {step:.3g} but 98 % of its values lie in [{p1:.3g}, {p99:.3g}] ({levels:.0f} int8 levels)"
        if op == "SOFTMAX":
            h += ": int8 SOFTMAX has a fixed 1/256 step; export logits (drop the Softmax) or keep it in float"
        elif hi - lo > 4.0 * max(p99 - p1, 1e-12):
            h += f"; its range [{lo:.3g}, {hi:.3g}] is set by a few extreme values: clamp it inside the model before export"
        elif lo > 0 or hi < 0:
            h += ("; int8 ranges always include 0, so an output that never comes near 0 wastes most levels: subtract a "
                  "constant inside the model and add it back in post-processing")
        else:
            h += "; the output barely varies on the held-out data: check that the calibration/held-out data are representative"
        hints.append(h)
    return hints


def snr_failures(kind: str, errors: dict[str, dict[str, Any]], budget: Budget) -> list[str]:
    fails = []
    for n, e in errors.items():
        if not e["finite"]:
            fails.append(f"output {n}: NaN/inf in the TFLite output")
        elif kind == "generic" and e["snr_db"] < budget.min_snr_db:
            fails.append(f"output {n}: SNR {e['snr_db']:.1f} dB < {budget.min_snr_db} dB (max abs error {e['max_abs']:.4g})")
    return fails
