"""Latency statistics with one stated percentile method.

Percentiles use numpy's default "linear" method (type 7 of Hyndman & Fan, the same as
`numpy.percentile(x, q)` and R's default): for sorted x[0..n-1] the q-th percentile sits at
fractional rank (n - 1) * q / 100, interpolating linearly between neighbours. On 1..100 this
gives p50 = 50.5 and p90 = 90.1. MLPerf's single-stream score is the p90 of per-query
latency; benchmark_model's avg/std/min/max are reported alongside.

`std` is the population standard deviation (ddof=0), as benchmark_model reports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

PERCENTILE_METHOD = "numpy linear (Hyndman-Fan type 7): rank (n-1)*q/100, linear interpolation"
PERCENTILES = (50, 90, 99)


def _r(x: float, nd: int) -> float:
    return round(float(x), nd)


def summarize(values: Iterable[float] | np.ndarray, nd: int = 4) -> dict[str, Any]:
    """count/min/max/mean/std/p50/p90/p99 of `values` (NaNs dropped). Empty -> count 0, others None."""
    a = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    n = int(a.size)
    if n == 0:
        return {"count": 0, "min": None, "max": None, "mean": None, "std": None, "p50": None, "p90": None, "p99": None}
    p = np.percentile(a, PERCENTILES, method="linear")
    return {
        "count": n,
        "min": _r(a.min(), nd),
        "max": _r(a.max(), nd),
        "mean": _r(a.mean(), nd),
        "std": _r(a.std(ddof=0), nd),
        "p50": _r(p[0], nd),
        "p90": _r(p[1], nd),
        "p99": _r(p[2], nd),
    }


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.percentile(a, q, method="linear")) if a.size else math.nan


def windows(values: Sequence[float] | np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The first and last `fraction` of `values` (at least one element each when non-empty)."""
    a = np.asarray(values, dtype=np.float64)
    k = max(1, int(round(a.size * fraction))) if a.size else 0
    return a[:k], a[a.size - k:]


def drift_ratio(values: Sequence[float] | np.ndarray, fraction: float = 0.1, q: float = 90) -> float:
    """p_q(last `fraction`) / p_q(first `fraction`): > 1 means the tail got slower."""
    first, last = windows(values, fraction)
    a, b = percentile(first, q), percentile(last, q)
    return b / a if a and math.isfinite(a) and math.isfinite(b) else math.nan


#: rows moved per step when a DecimatingSeries halves itself (48 KB of float32 x 3 columns)
_COMPACT_ROWS = 4096


def _keep_every_second_row(buf: np.ndarray, n: int) -> int:
    """Move rows 0, 2, 4, ... of buf[:n] to the front, in place; returns the new row count.

    In blocks of _COMPACT_ROWS, never as one `buf[:n:2].copy()`: that temporary (half the
    buffer, 1.5 MB for the soak's default) was the one RSS step left in the 1 M-frame soak. glibc
    served the first one by mmap and, on freeing it, raised its mmap threshold (and the trim
    threshold to twice that) above the temporary's size, so the next one came from the heap and
    its freed top was kept: +1.2 MB in RSS at the second halving (~524,000 frames). Block-sized
    temporaries stay small. Moving forward is safe: block i's destination rows [i, i+B) lie below
    the source rows of every later block (>= 2(i+B))."""
    half = (n + 1) // 2
    for i in range(0, half, _COMPACT_ROWS):
        j = min(i + _COMPACT_ROWS, half)
        buf[i:j] = buf[2 * i : 2 * j : 2]
    return half


class DecimatingSeries:
    """Per-frame rows (e.g. time or frame, latency, CPU) in a fixed buffer touched up front; when
    full it keeps every second row and then records every second frame, so memory stays constant
    however long a soak runs (growth during the run would read as a leak)."""

    def __init__(self, capacity: int, width: int = 3, dtype: Any = np.float64) -> None:
        self.buf = np.zeros((max(int(capacity), 2), width), dtype)
        self.buf.fill(0.0)  # commit the pages now, before the warm-up ends
        self.n = 0
        self.stride = 1
        self._seen = 0

    def add(self, *row: float) -> None:
        self._seen += 1
        if self._seen % self.stride:
            return
        if self.n == len(self.buf):
            self.n = _keep_every_second_row(self.buf, self.n)
            self.stride *= 2
        self.buf[self.n] = row
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def view(self) -> np.ndarray:
        return self.buf[: self.n]

    def col(self, j: int) -> np.ndarray:
        return self.buf[: self.n, j]
