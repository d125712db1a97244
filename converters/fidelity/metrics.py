"""Fidelity metrics: pure numpy functions of float and quantised outputs (SNR, ICC, CCC, Spearman, NME)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SNR_CAP = 200.0  # dB reported for (near-)exact matches; keeps the JSON finite




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


def rounded(v: float | None, nd: int = 5) -> float | None:
    return None if v is None else round(float(v), nd)
