"""benchmarks/soak_accel.py's bookkeeping: preallocated samples, and the secondary (not judged) statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
soak_accel = pytest.importorskip("soak_accel")


def test_sample_table_round_trip_and_decimation():
    t = soak_accel.SampleTable(4)
    for i in range(6):  # two more than planned: halved once, the order kept
        t.add(i * 100, i * 1.5, 300.0 + i, None if i == 0 else 50.0, 1.0, 2.0, i >= 2, [1.0, 2.0, 3.0],
              {"anon_mb": 200.0 + i, "threads": 4}, {"arena_mb": 150.0}, 1000 + i, i)
    rows = t.rows()
    assert [r["frames"] for r in rows] == [100, 300, 400, 500]
    r = rows[-1]
    assert r["rss_mb"] == 305.0 and r["warm"] is True and r["loadavg"] == [1.0, 2.0, 3.0]
    assert r["mem"] == {"anon_mb": 205.0, "threads": 4, "arena_mb": 150.0, "py_blocks": 1005, "segments": 5}
    assert rows[0]["fps"] == 50.0 and t.last()[0] == 500
    t2 = soak_accel.SampleTable(2)
    t2.add(0, 0.0, None, None, None, None, False, None, None, None, 1, None)
    assert t2.row(0)["fps"] is None and t2.row(0)["loadavg"] is None and t2.row(0)["rss_mb"] != t2.row(0)["rss_mb"]


def test_secondary_statistics_see_through_steps_that_come_back():
    frames = np.arange(0, 1_000_001, 5000)
    rss = np.full(len(frames), 291.0)
    rss[(frames // 25000) % 3 == 1] += 2.1  # allocator steps up and down, no trend
    post = [{"frames": int(f), "rss_mb": float(r), "mem": {"anon_mb": float(r) - 80.0}} for f, r in zip(frames, rss)]
    sec = soak_accel.secondary_stats(post)
    assert sec["theil_sen_mb_per_hour_eq"] == 0.0 and sec["band_mb"] == pytest.approx(2.1)
    assert sec["anon_band_mb"] == pytest.approx(2.1)
    trend = [{**p, "rss_mb": p["rss_mb"] + 0.5 * p["frames"] / soak_accel.FRAMES_PER_HOUR} for p in post]
    assert soak_accel.secondary_stats(trend)["theil_sen_mb_per_hour_eq"] == pytest.approx(0.5, abs=0.01)
