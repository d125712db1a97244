"""Fidelity: float ONNX (onnxruntime) vs every TFLite variant on held-out samples.

Per output: max/mean absolute error and SNR (dB). Per kind, the task metric the gate uses:
- landmarks: NME delta in % of inter-ocular distance (points = mean_shape + offsets as 68x2,
  IOD = |p36 - p45| of the float prediction). This is the float-vs-quantised point distance,
  an upper bound on |NME(q, truth) - NME(float, truth)| (triangle inequality), so no ground
  truth is needed. Also log_sigma Spearman and validity-decision agreement.
- au: ICC(3,1) float-vs-quantised per AU (all AUs must pass) and MAE.
- temporal: CCC of V and A (tanh of channels 0/1) at the last step and over all steps, and
  Spearman of the uncertainty channels 2..7.
- detector / generic: SNR and max error per output (generic: argmax agreement too).

The TFLite side runs through `edgeaffect.runtime.ModelRunner`, i.e. the runtime's own
manifest check, name binding and (de)quantisation: converter and device share one code path.

When a variant fails, `localise` finds the first layer whose error jumps: the ONNX graph is
run with every intermediate tensor exposed, the TFLite interpreter with
`experimental_preserve_all_tensors`, and each TFLite op output is matched (same element
count, identity or channels-last layout, best SNR) to an ONNX tensor.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeaffect.runtime.backends import ops_details

SNR_CAP = 200.0  # dB reported for (near-)exact matches; keeps the JSON finite


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
    min_rank_corr: float | None = None  # uncertainty Spearman (log_sigma, temporal ch 2..7); None = report only
    layer_jump_db: float = 10.0  # localisation: an SNR drop this large between matched layers is "a jump"
    layer_floor_db: float = 20.0  # localisation: the first matched layer below this is "the first large error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- metrics (pure numpy)


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    err = float(np.sum((ref - np.asarray(x, np.float64)) ** 2))
    sig = float(np.sum(ref**2))
    if not math.isfinite(err):
        return -SNR_CAP
    if err <= sig * 1e-20:
        return SNR_CAP
    if sig == 0.0:
        return -SNR_CAP
    return float(np.clip(10.0 * math.log10(sig / err), -SNR_CAP, SNR_CAP))


#: AU outputs whose float std on the held-out set is below this (1 % of the 0..5 scale) are
#: gated on mean absolute error <= AU_LOW_SPREAD_MAE instead of ICC (see task_metrics).
AU_MIN_SPREAD = 0.05
AU_LOW_SPREAD_MAE = 0.05


def icc_3_1(a: np.ndarray, b: np.ndarray) -> float | None:
    """ICC(3,1), two-way mixed, consistency, single rater (Shrout & Fleiss) for raters a, b."""
    y = np.stack([np.asarray(a, np.float64), np.asarray(b, np.float64)], 1)
    n, k = y.shape
    if n < 2:
        return None
    grand = y.mean()
    ssr = k * np.sum((y.mean(1) - grand) ** 2)
    ssc = n * np.sum((y.mean(0) - grand) ** 2)
    sse = np.sum((y - grand) ** 2) - ssr - ssc
    msr = ssr / (n - 1)
    mse = sse / ((n - 1) * (k - 1))
    den = msr + (k - 1) * mse
    if den <= 1e-30:
        return None
    return float((msr - mse) / den)


def ccc(a: np.ndarray, b: np.ndarray) -> float | None:
    """Lin's concordance correlation coefficient."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    va, vb = a.var(), b.var()
    den = va + vb + (a.mean() - b.mean()) ** 2
    if den <= 1e-30:
        return None
    return float(2 * np.mean((a - a.mean()) * (b - b.mean())) / den)


def _rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), np.float64)
    r[order] = np.arange(len(x), dtype=np.float64)
    xs = x[order]
    # average ranks over ties
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        if j > i:
            r[order[i : j + 1]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if len(a) < 3:
        return None
    ra, rb = _rank(a), _rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def nme_delta_pct(off_ref: np.ndarray, off_x: np.ndarray, mean_shape: np.ndarray | None) -> np.ndarray:
    """Per-sample mean point distance between two predictions, in % of the reference IOD (36-45)."""
    pr = np.asarray(off_ref, np.float64).reshape(len(off_ref), 68, 2)
    px = np.asarray(off_x, np.float64).reshape(len(off_x), 68, 2)
    if mean_shape is not None:
        ms = np.asarray(mean_shape, np.float64).reshape(68, 2)
        pr, px = pr + ms, px + ms
    iod = np.linalg.norm(pr[:, 36] - pr[:, 45], axis=1)
    ok = iod > 1e-9
    d = np.linalg.norm(px - pr, axis=2).mean(1)
    return (d[ok] / iod[ok]) * 100.0


def output_errors(ref: np.ndarray, x: np.ndarray) -> dict[str, Any]:
    ref = np.asarray(ref, np.float64)
    x = np.asarray(x, np.float64)
    e = np.abs(ref - x)
    finite = bool(np.isfinite(x).all())
    return {
        "max_abs": float(e.max()) if finite else None,
        "mean_abs": float(e.mean()) if finite else None,
        "snr_db": round(snr_db(ref, x), 3),
        "ref_range": [float(ref.min()), float(ref.max())],
        "finite": finite,
    }


def _r(v: float | None, nd: int = 5) -> float | None:
    return None if v is None else round(float(v), nd)


# ---------------------------------------------------------------- task metrics and gate


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
    elif kind == "detector":
        from .detector_gate import anchor_gate

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


# ---------------------------------------------------------------- running both sides


def to_onnx_layout(x: np.ndarray, perm: list[int] | str | None, onnx_shape: list[int]) -> np.ndarray:
    """TFLite-layout array -> ONNX layout. perm maps ONNX->TFLite axes (tfl = onnx.transpose(perm))."""
    if perm == "reshape":
        return x.reshape([x.shape[0], *onnx_shape[1:]])
    if perm is None or list(perm) == list(range(x.ndim)):
        return x
    return np.ascontiguousarray(x.transpose(np.argsort(perm)))


def channels_last_perm(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def candidate_perms(onnx_shape: list[int], tfl_shape: list[int]) -> list[list[int] | str]:
    out: list[list[int] | str] = []
    if list(onnx_shape) == list(tfl_shape):
        out.append(list(range(len(tfl_shape))))
    if len(onnx_shape) >= 3:
        p = channels_last_perm(len(onnx_shape))
        if [onnx_shape[i] for i in p] == list(tfl_shape) and p not in out:
            out.append(p)
    if not out and int(np.prod(onnx_shape)) == int(np.prod(tfl_shape)):
        out.append("reshape")
    return out


def batches(arrays: dict[str, np.ndarray], batch: int) -> list[dict[str, np.ndarray]]:
    n = next(iter(arrays.values())).shape[0]
    return [{k: v[i : i + batch] for k, v in arrays.items()} for i in range(0, n - batch + 1, batch)]


def input_to_onnx(x: np.ndarray, onnx_shape: list[int]) -> np.ndarray:
    if len(onnx_shape) == 4 and list(x.shape[1:]) != list(onnx_shape[1:]):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def run_onnx(session, samples: dict[str, np.ndarray], info) -> dict[str, np.ndarray]:
    """Float reference outputs [N, ...] (ONNX layout) for TFLite-layout inputs."""
    b = max(1, int(next(iter(info.input_shapes.values()))[0]))
    safe = dict(zip(info.input_names, info.safe_input_names, strict=True))
    outs: dict[str, list[np.ndarray]] = {n: [] for n in info.output_names}
    for bt in batches(samples, b):
        feed = {safe[k]: input_to_onnx(v, info.input_shapes[k]) for k, v in bt.items()}
        res = session.run(info.output_names, feed)
        for n, r in zip(info.output_names, res, strict=True):
            outs[n].append(np.asarray(r, np.float32))
    return {n: np.concatenate(v, 0) for n, v in outs.items()}


def run_tflite(manifest_path: Path, samples: dict[str, np.ndarray], threads: int = 1) -> tuple[dict[str, np.ndarray], float]:
    """Raw (TFLite-layout) outputs [N, ...] through ModelRunner, and mean latency in ms."""
    from edgeaffect.runtime.runner import ModelRunner

    runner = ModelRunner(manifest_path, num_threads=threads)
    order = [s.name for s in runner.manifest.inputs]
    b = max(1, int(runner.manifest.inputs[0].shape[0]))
    outs: dict[str, list[np.ndarray]] = {}
    t_total, n = 0.0, 0
    for bt in batches(samples, b):
        t0 = time.perf_counter()
        res = runner.run(*[bt[k] for k in order])
        t_total += time.perf_counter() - t0
        n += 1
        for k, v in res.items():
            outs.setdefault(k, []).append(np.array(v, np.float32))
    return {k: np.concatenate(v, 0) for k, v in outs.items()}, (t_total / max(n, 1)) * 1000.0


def resolve_output_perms(raw_f32: dict[str, np.ndarray], ref: dict[str, np.ndarray], output_names: list[str]) -> dict[str, Any]:
    """Pick each output's TFLite->ONNX layout by value on the float32 variant (shapes can be ambiguous)."""
    perms: dict[str, Any] = {}
    for n in output_names:
        oshape = list(ref[n].shape)
        cands = candidate_perms(oshape, list(raw_f32[n].shape)) or ["reshape"]
        best, best_snr = cands[0], -1e9
        for p in cands:
            try:
                s = snr_db(ref[n], to_onnx_layout(raw_f32[n], p, oshape))
            except ValueError:
                continue
            if s > best_snr:
                best, best_snr = p, s
        perms[n] = best
    return perms


def check_binding(raw: dict[str, np.ndarray], ref: dict[str, np.ndarray], perms: dict[str, Any], variant: str = "") -> None:
    """Refuse an output binding that the float32 values contradict (a swapped pair of outputs).

    An output that matches no ONNX output is left to the gate (conversion/quantisation
    error); one that matches ANOTHER same-shape output much better than its own is a
    binding bug.
    """
    from .errors import ToolchainError

    for n, x in raw.items():
        own = snr_db(ref[n], to_onnx_layout(x, perms[n], list(ref[n].shape)))
        for m, r in ref.items():
            if m == n or r.shape != ref[n].shape:
                continue
            other = snr_db(r, to_onnx_layout(x, perms[n], list(r.shape)))
            if other > 15.0 and other > own + 10.0:
                raise ToolchainError(
                    f"{variant}: TFLite output bound to {n!r} reproduces ONNX output {m!r} instead (SNR {other:.0f} vs {own:.0f} dB): "
                    "output binding is wrong; please report this with the model"
                )


# ---------------------------------------------------------------- layer localisation


def _onnx_all_tensors(info, samples: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    """Every float intermediate tensor of the ONNX graph: name -> [N, ...]; producer (node, op)."""
    import onnx

    from .onnx_checks import ort_session

    m = onnx.ModelProto()
    m.CopyFrom(info.model)
    g = m.graph
    types = {vi.name: vi for vi in list(g.value_info) + list(g.output)}
    have = {o.name for o in g.output}
    producer: dict[str, tuple[str, str]] = {}
    for node in g.node:
        for o in node.output:
            if not o:
                continue
            producer[o] = (node.name or o, node.op_type)
            vi = types.get(o)
            if o in have or vi is None or vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                continue
            g.output.append(vi)
            have.add(o)
    sess = ort_session(m, optimize=False)
    names = [o.name for o in sess.get_outputs()]
    safe = dict(zip(info.input_names, info.safe_input_names, strict=True))
    b = max(1, int(next(iter(info.input_shapes.values()))[0]))
    acc: dict[str, list[np.ndarray]] = {n: [] for n in names}
    inputs: dict[str, list[np.ndarray]] = {safe[k]: [] for k in samples}
    for bt in batches(samples, b):
        feed = {safe[k]: input_to_onnx(v, info.input_shapes[k]) for k, v in bt.items()}
        for k, v in feed.items():
            inputs[k].append(v)
        for n, r in zip(names, sess.run(names, feed), strict=True):
            acc[n].append(np.asarray(r, np.float32))
    out = {n: np.concatenate(v, 0) for n, v in acc.items() if v and np.asarray(v[0]).dtype == np.float32}
    for k, v in inputs.items():
        out[k] = np.concatenate(v, 0)
        producer[k] = (k, "graph input")
    return out, producer


def _tflite_all_tensors(tflite_path: Path, samples: dict[str, np.ndarray], input_order: list[str]) -> list[dict[str, Any]]:
    """Dequantised output of every op (execution order) plus graph inputs: [{op, name, value}]."""
    from edgeaffect.runtime.backends import load_backend

    be = load_backend()
    kw: dict[str, Any] = {"model_path": str(tflite_path), "experimental_preserve_all_tensors": True}
    if be.reference_resolver is not None:
        kw["experimental_op_resolver_type"] = be.reference_resolver
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = be.Interpreter(**kw)
    it.allocate_tensors()
    tdet = {d["index"]: d for d in it.get_tensor_details()}
    ins = it.get_input_details()
    ops = ops_details(it, delegates=False)
    entries = [{"op_index": -1, "op": "INPUT", "tensor": d["index"], "name": d["name"], "vals": []} for d in ins]
    for o in ops:
        for t in o["outputs"]:
            if t >= 0:
                entries.append({"op_index": int(o["index"]), "op": o["op_name"], "tensor": int(t), "name": tdet[int(t)]["name"], "vals": []})
    b = max(1, int(ins[0]["shape"][0]))
    for bt in batches(samples, b):
        for d, k in zip(ins, input_order, strict=True):
            x = bt[k]
            scale, zp = d["quantization"]
            if np.dtype(d["dtype"]) in (np.int8, np.uint8, np.int16) and scale:
                info_ = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale + zp), info_.min, info_.max)
            it.set_tensor(d["index"], x.astype(d["dtype"]))
        it.invoke()
        for e in entries:
            d = tdet[e["tensor"]]
            try:
                v = it.get_tensor(e["tensor"])
            except ValueError:
                e["vals"] = None
                continue
            if e["vals"] is None:
                continue
            scale, zp = d["quantization"]
            v = np.asarray(v)
            if np.issubdtype(v.dtype, np.integer) and scale:
                v = (v.astype(np.float32) - zp) * scale
            elif not np.issubdtype(v.dtype, np.floating):
                e["vals"] = None
                continue
            e["vals"].append(v.astype(np.float32))
    return [dict(e, value=np.concatenate(e["vals"], 0)) for e in entries if e["vals"]]


def localise(info, tflite_path: Path, samples: dict[str, np.ndarray], input_order: list[str], budget: Budget) -> dict[str, Any]:
    """Per-layer SNR of a TFLite file against the ONNX graph, and the first layer whose error jumps."""
    onnx_t, producer = _onnx_all_tensors(info, samples)
    by_numel: dict[int, list[str]] = {}
    for n, v in onnx_t.items():
        by_numel.setdefault(int(v[0].size), []).append(n)
    layers = []
    for e in _tflite_all_tensors(tflite_path, samples, input_order):
        v = e["value"]
        best = None
        for n in by_numel.get(int(v[0].size), []):
            ref = onnx_t[n]
            if ref.shape[0] != v.shape[0]:
                continue
            for p in candidate_perms(list(ref.shape), list(v.shape)):
                try:
                    r = ref.reshape(v.shape) if p == "reshape" else np.ascontiguousarray(ref.transpose(p))
                except ValueError:
                    continue
                s = snr_db(r, v)
                if best is None or s > best[0]:
                    best = (s, n)
        if best is None:
            continue
        node, op = producer.get(best[1], (best[1], "?"))
        layers.append({
            "tflite_op_index": e["op_index"], "tflite_op": e["op"], "tflite_tensor": e["name"],
            "onnx_tensor": best[1], "onnx_node": node, "onnx_op": op, "snr_db": round(best[0], 2),
        })
    layers.sort(key=lambda d: d["tflite_op_index"])
    if not layers:
        return {"message": None, "first": None, "matched_layers": 0, "layers": []}
    first = next((d for d in layers if d["snr_db"] < budget.layer_floor_db), None)
    # a drop out of an exact (float) tensor is measured from 50 dB, about what 8-bit quantisation of a
    # well-scaled tensor gives, so the first QUANTIZE is not mistaken for a broken layer
    drops = [(min(layers[i - 1]["snr_db"], 50.0) - layers[i]["snr_db"], i) for i in range(1, len(layers))]
    big_drop, big_i = max(drops) if drops else (0.0, 0)
    jump = layers[big_i]
    below_floor = first is not None
    if first is None:  # every matched layer above the floor, yet an output failed: show the biggest drop
        first = jump
    k = layers.index(first)
    prev = layers[k - 1] if k > 0 else None
    first = dict(first, previous=None if prev is None else {kk: prev[kk] for kk in ("onnx_node", "onnx_op", "snr_db")})
    op = first["onnx_op"] if first["onnx_op"] != "graph input" else f"graph input, TFLite {first['tflite_op']}"
    msg = f"first large error at layer {first['onnx_node']} (op {op}), SNR {first['snr_db']:.1f} dB"
    if prev is not None:
        msg += f" (previous layer {prev['onnx_node']}: {prev['snr_db']:.1f} dB)"
    if not below_floor:
        msg += f"; no matched layer is below {budget.layer_floor_db:g} dB, this is the largest drop"
    pattern = "jump" if big_drop >= budget.layer_jump_db and layers[big_i]["snr_db"] < 30.0 else "gradual"
    if pattern == "gradual":
        msg += (f"; no single-layer jump >= {budget.layer_jump_db:g} dB (largest drop {big_drop:.1f} dB at {jump['onnx_node']}): "
                f"error accumulates over depth, SNR {layers[0]['snr_db']:.0f} -> {layers[-1]['snr_db']:.0f} dB")
    elif jump["onnx_node"] != first["onnx_node"]:
        msg += f"; largest single drop {big_drop:.1f} dB at {jump['onnx_node']} (op {jump['onnx_op']})"
    return {"message": msg, "first": first, "pattern": pattern, "largest_drop_db": round(big_drop, 2),
            "matched_layers": len(layers), "layers": layers}


# ---------------------------------------------------------------- reports


@dataclass
class VariantReport:
    variant: str
    file: str
    status: str = "PENDING"
    failures: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    localisation: dict[str, Any] | None = None
    latency_ms: float | None = None
    size_bytes: int = 0
    lint: dict[str, Any] | None = None

    def summary(self, held_out: int, budget: Budget, report_file: str) -> dict[str, Any]:
        """The `fidelity` block written into the variant's manifest."""
        return {
            "status": self.status,
            "held_out_samples": held_out,
            "failures": self.failures,
            "first_large_error": (self.localisation or {}).get("message"),
            "gate": budget.to_dict(),
            "task": self.task,
            "outputs": {k: {kk: v[kk] for kk in ("max_abs", "mean_abs", "snr_db")} for k, v in self.outputs.items()},
            "latency_ms_x86_1thread": None if self.latency_ms is None else round(self.latency_ms, 3),
            "report": report_file,
        }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_reports(path_json: Path, path_md: Path, report: dict[str, Any]) -> None:
    tmp = path_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=_json_default))
    tmp.replace(path_json)
    tmp = path_md.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(report))
    tmp.replace(path_md)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def render_markdown(r: dict[str, Any]) -> str:
    L = [f"# Fidelity report: {r['model']} ({r['kind']})", ""]
    L.append(f"**Overall: {r['status']}**  ·  source `{r['source']['file']}` sha256 `{r['source']['sha256'][:16]}…`  ·  {r.get('created', '')}")
    L.append("")
    cal = r.get("calibration", {})
    L.append(
        f"Calibration: {cal.get('calibration_samples')} samples, held-out: {cal.get('held_out_samples')} "
        f"(disjoint, split {cal.get('split')}); source `{cal.get('source')}` ({cal.get('produced_by')})."
    )
    g = r["gate"]
    L.append(
        f"Gate: landmarks NME delta <= {g['nme_delta_pct']} % IOD · AU ICC(3,1) >= {g['au_icc']} (every AU) · "
        f"VA CCC >= {g['va_ccc']} · generic SNR >= {g['min_snr_db']} dB"
        + (f" · detector decoded boxes vs float: recall/precision >= {g['det_recall']}/{g['det_precision']}, "
           f"mean IoU >= {g['det_iou']}, score MAE <= {g['det_score_mae']}" if "det_recall" in g else "")
        + (f" · uncertainty Spearman >= {g['min_rank_corr']}" if g.get("min_rank_corr") is not None else "")
    )
    L.append("")
    L.append("| variant | status | size KB | x86 ms (1 thr) | task metric | worst output SNR dB |")
    L.append("|---|---|---|---|---|---|")
    for v, d in r["variants"].items():
        worst = min((o["snr_db"] for o in d["outputs"].values()), default=None)
        L.append(f"| {v} | {d['status']} | {d['size_bytes'] / 1024:.1f} | {_fmt(d.get('latency_ms'))} | {_task_line(d.get('task', {}))} | {_fmt(worst)} |")
    L.append("")
    for v, d in r["variants"].items():
        L.append(f"## {v} — {d['status']}  (`{d['file']}`)")
        L.append("")
        L.append("| output | max abs | mean abs | SNR dB |")
        L.append("|---|---|---|---|")
        for n, o in d["outputs"].items():
            L.append(f"| {n} | {_fmt(o['max_abs'])} | {_fmt(o['mean_abs'])} | {_fmt(o['snr_db'])} |")
        L.append("")
        t = d.get("task", {})
        if "au_icc" in t:
            L.append("AU ICC(3,1): " + ", ".join(f"{k} {_fmt(x['icc'])}" for k, x in t["au_icc"]["per_au"].items()))
            L.append("")
        for f in d.get("failures", []):
            L.append(f"- FAIL: {f}")
        for h in (t.get("hints") or []):
            L.append(f"- Hint: {h}")
        if "anchor_gate" in t:
            L.append("- Anchor-level gate (decoded boxes vs float): " + ", ".join(f"{k} {_fmt(x)}" for k, x in t["anchor_gate"].items()))
        if "detection_agreement" in t:
            L.append("- Detection agreement: " + ", ".join(f"{k} {_fmt(x)}" for k, x in t["detection_agreement"].items()))
        loc = d.get("localisation")
        if loc and loc.get("message"):
            L.append(f"- Localisation: {loc['message']} ({loc['matched_layers']} layers matched)")
        lint = d.get("lint")
        if lint:
            L.append(f"- Lint: {lint.get('summary', '')}")
        L.append("")
    return "\n".join(L) + "\n"


def _task_line(t: dict[str, Any]) -> str:
    if "nme_delta_pct" in t:
        s = f"NME Δ {t['nme_delta_pct']['mean']} % IOD"
        if "log_sigma_spearman" in t:
            s += f", σ ρ {t['log_sigma_spearman']['value']}"
        return s
    if "au_icc" in t:
        return f"AU ICC min {t['au_icc']['min']}"
    if "anchor_gate" in t:
        d = t["anchor_gate"]
        return f"decoded boxes recall {d['recall']} precision {d['precision']}, IoU {d['mean_iou']}, score MAE {d['score_mae']}"
    if "detection_agreement" in t:
        d = t["detection_agreement"]
        return f"anchors p>0.5 recall {d['recall']} precision {d['precision']}, top-1 {d['top1_anchor_agreement']}"
    if "va_ccc" in t:
        v = t["va_ccc"]
        return f"CCC V {v['valence_last_step']}/{v['valence_all_steps']}, A {v['arousal_last_step']}/{v['arousal_all_steps']} (last/all)"
    if "argmax_agreement" in t:
        return "argmax agree " + ", ".join(f"{v}" for v in t["argmax_agreement"].values())
    return "SNR"
