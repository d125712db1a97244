"""edgeaffect.bench: statistics on known data, the Pi estimate arithmetic, the paced frame loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeaffect.bench import estimate
from edgeaffect.bench.stats import PERCENTILE_METHOD, drift_ratio, percentile, summarize, windows


def test_percentiles_on_1_to_100_numpy_linear():
    s = summarize(range(1, 101))
    assert s["count"] == 100
    assert s["min"] == 1 and s["max"] == 100
    assert s["mean"] == pytest.approx(50.5)
    assert s["p50"] == pytest.approx(50.5)  # rank 49.5
    assert s["p90"] == pytest.approx(90.1)  # rank 89.1
    assert s["p99"] == pytest.approx(99.01)  # rank 98.01
    assert s["std"] == pytest.approx(math.sqrt((100**2 - 1) / 12), abs=1e-4)  # population std
    assert "linear" in PERCENTILE_METHOD


def test_small_and_degenerate_inputs():
    assert summarize([]) == {"count": 0, "min": None, "max": None, "mean": None, "std": None, "p50": None, "p90": None, "p99": None}
    one = summarize([7.0])
    assert one["count"] == 1 and one["p50"] == one["p99"] == 7.0 and one["std"] == 0.0
    # NaN / inf are dropped, not propagated
    s = summarize([1.0, float("nan"), 3.0, float("inf")])
    assert s["count"] == 2 and s["mean"] == 2.0
    # 1..10: p90 at rank 8.1 -> 9.1
    assert summarize(np.arange(1, 11))["p90"] == pytest.approx(9.1)
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert math.isnan(percentile([], 90))


def test_drift_ratio_windows():
    first, last = windows(np.arange(100), 0.1)
    assert list(first) == list(range(10)) and list(last) == list(range(90, 100))
    flat = np.full(1000, 5.0)
    assert drift_ratio(flat) == pytest.approx(1.0)
    ramp = np.concatenate([np.full(500, 10.0), np.full(500, 20.0)])
    assert drift_ratio(ramp) == pytest.approx(2.0)


def test_pi_estimate_arithmetic_and_labels():
    e = estimate.pi_estimate(44e6, 10.0, 8.82, "test", threads=1)
    # model time grows with the MACs; the scaled frame time with the time here and with how much faster
    # this machine's measured int8 rate is; more Pi threads (up to its 4 cores) make the Pi faster
    assert estimate.pi_estimate(88e6, 10.0, 8.82)["pi4"]["model_only_ms"] == pytest.approx(2 * e["pi4"]["model_only_ms"], abs=0.02)
    assert estimate.pi_estimate(44e6, 20.0, 8.82)["pi4"]["frame_ms_scaled"] == pytest.approx(2 * e["pi4"]["frame_ms_scaled"], abs=0.02)
    assert estimate.pi_estimate(44e6, 10.0, 17.64)["pi4"]["frame_ms_scaled"] == pytest.approx(2 * e["pi4"]["frame_ms_scaled"], abs=0.02)
    assert estimate.pi_estimate(44e6, 10.0, 8.82, threads=2)["pi4"]["model_only_ms"] < e["pi4"]["model_only_ms"]
    assert e["pi4"]["fps_scaled"] == pytest.approx(1000 / e["pi4"]["frame_ms_scaled"], abs=0.1)
    lo, hi = e["pi5"]["frame_ms_scaled"]
    assert lo == pytest.approx(e["pi4"]["frame_ms_scaled"] / 3, abs=0.01) and hi == pytest.approx(e["pi4"]["frame_ms_scaled"] / 2, abs=0.01)
    assert "ESTIMATE" in e["label"] and any("A1" in a for a in e["assumptions"])
    # 4 threads use the anchor's full rate; more threads don't exceed the Pi's 4 cores
    assert estimate.pi4_rate(4) == pytest.approx(estimate.PI4_INT8_GMACS)
    assert estimate.pi4_rate(8) == estimate.pi4_rate(4)
    none = estimate.pi_estimate(None, None, None)
    assert none["pi4"] is None and none["pi5"] is None


class _Clip:
    fps = 30.0
    count = 5

    def get(self, k):
        return np.zeros((48, 64, 3), np.uint8)


class _FakeClock:
    """perf_counter / thread_time / sleep of a clock that only moves when work or a sleep moves it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def perf_counter(self) -> float:
        return self.t

    thread_time = perf_counter

    def sleep(self, s: float) -> None:
        self.t += max(0.0, s)


class _SlowAnalyzer:
    """process() takes `ms` of the fake clock; returns an object shaped like FrameResult."""

    def __init__(self, ms: float, clock: _FakeClock):
        self.ms, self.clock = ms, clock

    def process(self, img, ts):
        self.clock.t += self.ms / 1000.0

        class R:
            status = "ok"
            timings_ms = {"track": self.ms}

        return R()


def test_paced_loop_drops_frames_when_busy_and_not_when_idle(monkeypatch):
    from edgeaffect.bench import e2e_bench

    clock = _FakeClock()  # deterministic: the loop's clock is the fake one (no wall-clock timing in a test)
    monkeypatch.setattr(e2e_bench, "time", clock)

    def run(ms: float, pace: float, n: int):
        recs = []
        e2e_bench.frame_loop(_SlowAnalyzer(ms, clock), _Clip(), stop=lambda done, _t: done >= n, on_frame=recs.append,
                             pace_fps=pace)
        return recs

    busy = run(12.0, 200.0, 15)  # 5 ms period, 12 ms work: 1-2 frames replaced per processed frame
    dropped = sum(r.dropped_before for r in busy)
    assert dropped >= 10 and all(1 <= r.dropped_before <= 2 for r in busy[1:])
    ks = [r.k for r in busy]
    assert ks == sorted(ks) and len(set(ks)) == len(ks)
    assert all(r.response_ms is not None and r.response_ms >= r.latency_ms - 0.5 for r in busy)
    idle = run(0.5, 20.0, 5)  # 50 ms period, 0.5 ms work: nothing dropped, frames wait for the clock
    assert sum(r.dropped_before for r in idle) == 0
    assert [r.k for r in idle] == list(range(5))


def test_decimating_series_halves_in_place_like_a_copy_and_keeps_its_buffer():
    """When full, the series keeps rows 0, 2, 4, ... (the same rows as buf[:n:2].copy()) and
    records every second frame from then on, without a new buffer or a half-buffer temporary
    (a 1.5 MB temporary was the soak's one RSS step)."""
    from edgeaffect.bench.stats import DecimatingSeries

    for cap in (2, 3, 7, 4096, 4097, 10_001):
        s = DecimatingSeries(cap, width=2, dtype=np.float32)
        buf = s.buf
        ref: list[tuple[float, float]] = []
        stride = 1
        for k in range(5 * cap + 3):
            if (k + 1) % stride == 0:
                if len(ref) == cap:
                    ref = ref[::2]
                    stride *= 2
                ref.append((float(k), float(-k)))
            s.add(float(k), float(-k))
        assert s.buf is buf  # the same memory the whole time
        np.testing.assert_array_equal(s.view(), np.array(ref, np.float32))
