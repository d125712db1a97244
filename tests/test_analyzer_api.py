"""Library API behaviour: running modes, timestamps, odd frames, live stream."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgeaffect import Analyzer, AnalyzerOptions, RunningMode
from edgeaffect.demo import demo_frames
from edgeaffect.errors import EdgeAffectError


@pytest.fixture(scope="module")
def frames():
    return list(demo_frames(24))


def test_video_mode_tracks_the_demo_face(assets, frames):
    with Analyzer(AnalyzerOptions(max_faces=1)) as a:
        res = [a.process(f, i * 33.3) for i, f in enumerate(frames)]
    assert res[0].faces[0].source == "detector"
    assert sum(r.status == "ok" for r in res) >= 20
    assert sum(1 for r in res if r.faces and r.faces[0].source == "tracking") >= 15
    assert all(r.frame_index == i for i, r in enumerate(res))


def test_timestamps_must_increase(assets, frames):
    with Analyzer(AnalyzerOptions()) as a:
        a.process(frames[0], 10.0)
        with pytest.raises(EdgeAffectError, match="increase"):
            a.process(frames[1], 10.0)


def test_wrong_mode_call(assets, frames):
    with Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE)) as a, pytest.raises(EdgeAffectError, match="running_mode"):
        a.process(frames[0], 0.0)


@pytest.mark.parametrize(
    "convert",
    [
        lambda f: f[:, :, 1],  # greyscale
        lambda f: (f[:, :, 1].astype(np.uint16) << 8),  # 16-bit mono
        lambda f: np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]),  # BGRA
        lambda f: f.astype(np.float32) / 255.0,  # float
    ],
)
def test_odd_frame_formats_are_analysed(assets, frames, convert):
    with Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE)) as a:
        res = a.process_image(convert(frames[0]))
    assert res.status == "ok" and res.faces[0].valid


@pytest.mark.parametrize("frame", [np.zeros((8, 8, 3), np.uint8), np.zeros((64, 64, 5), np.uint8), np.zeros((64, 64), np.int32)])
def test_bad_frames_give_a_defined_result(assets, frame):
    with Analyzer(AnalyzerOptions()) as a:
        res = a.process(frame, 0.0)
        assert res.status == "bad_frame" and res.message and res.faces == []
        assert a.process(np.zeros((64, 64, 3), np.uint8), 1.0).status == "no_face"  # keeps going


def test_live_stream_delivers_to_callback(assets, frames):
    """Newest frame wins: a burst is partly dropped (and counted); paced frames all arrive."""
    got = []
    arrived = threading.Event()

    def cb(result, image):
        got.append(result)
        arrived.set()

    with Analyzer(AnalyzerOptions(running_mode=RunningMode.LIVE_STREAM, result_callback=cb)) as a:
        for i, f in enumerate(frames[:10]):  # a burst, faster than the analyzer
            a.process_async(f, i * 33.3)
        deadline = time.monotonic() + 30
        while len(got) + a.live_dropped < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) + a.live_dropped == 10 and len(got) >= 1
        n = len(got)
        for i, f in enumerate(frames[10:13]):  # paced: one at a time
            arrived.clear()
            a.process_async(f, (10 + i) * 33.3)
            assert arrived.wait(30)
        deadline = time.monotonic() + 30
        while len(got) < n + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(got) == n + 3
    assert [r.timestamp_ms for r in got] == sorted(r.timestamp_ms for r in got)
    assert all(r.status in ("ok", "no_face") for r in got)


def test_rate_control_holds_values_between_runs(assets, frames):
    with Analyzer(AnalyzerOptions(au_every=3, affect_every=2)) as a:
        res = [a.process(f, i * 33.3) for i, f in enumerate(frames[:6])]
    assert "au" in res[1].skipped and "au" not in res[3].skipped
    assert "affect" in res[1].skipped and "affect" not in res[2].skipped
    ok = [r for r in res if r.status == "ok"]
    assert all(r.faces[0].aus is not None and r.faces[0].valence is not None for r in ok)
