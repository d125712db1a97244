"""Reconnect with back-off (fake camera that disconnects), latest-frame policy, V4L2/GStreamer
errors without hardware, and source-spec parsing."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from edgeaffect.capture.base import Frame, FrameSource
from edgeaffect.capture.factory import open_source, parse_source_spec, with_camera
from edgeaffect.capture.gstreamer import GStreamerSource, gstreamer_available, jetson_csi_pipeline
from edgeaffect.capture.reconnect import LatestFrameSource, ReconnectingSource
from edgeaffect.capture.v4l2 import V4L2Source, fourcc_to_str, resolve_device
from edgeaffect.errors import SourceError
from edgeaffect.profiles import CameraConfig, load_profile


class FlakyCamera(FrameSource):
    """Delivers `frames_per_session` frames, then 'disconnects' (SourceError) until reopened."""

    is_live = True
    name = "flaky"

    def __init__(self, plan, frames_per_session=5, period_s=0.0):
        self.plan = plan  # shared dict: opens_to_fail, sessions
        self.n = frames_per_session
        self.period_s = period_s
        self.i = 0

    def open(self):
        if self.plan["opens_to_fail"] > 0:
            self.plan["opens_to_fail"] -= 1
            raise SourceError("camera /dev/video9 does not exist")
        self.plan["sessions"] += 1

    @property
    def fps(self):
        return 30.0

    def read(self):
        if self.i >= self.n:
            raise SourceError("camera stopped delivering frames (unplugged?)")
        if self.period_s:
            time.sleep(self.period_s)
        f = Frame(np.zeros((4, 4), np.uint8), 1000.0 + self.i * 33.3, self.i)  # restarts at 0 each session
        self.i += 1
        return f

    def close(self):
        self.plan["closed"] = self.plan.get("closed", 0) + 1


def test_reconnect_keeps_timestamps_and_indices_monotonic():
    plan = {"opens_to_fail": 0, "sessions": 0}
    sleeps = []
    src = ReconnectingSource(lambda: FlakyCamera(plan), backoff=(0.5, 1, 2, 5), max_retries=5, sleep=sleeps.append)
    plan_fail_after_first = 2
    with src:
        frames = []
        for k in range(17):
            if k == 5:  # second session: the first two re-opens fail
                plan["opens_to_fail"] = plan_fail_after_first
            frames.append(src.read())
    assert src.reconnects == 3 and plan["sessions"] == 4
    idx = [f.index for f in frames]
    ts = [f.timestamp_ms for f in frames]
    assert all(b > a for a, b in zip(idx, idx[1:], strict=False))
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False))
    assert [f.meta["source_index"] for f in frames[:7]] == [0, 1, 2, 3, 4, 0, 1]
    assert frames[-1].meta["reconnects"] == 3
    assert sleeps[:4] == [0.5, 0.5, 1.0, 0.5]  # reconnect wait, then back-off 0.5, 1 after failed opens


def test_camera_that_never_opens_fails_after_retries():
    plan = {"opens_to_fail": 10**9, "sessions": 0}
    sleeps = []
    src = ReconnectingSource(lambda: FlakyCamera(plan), backoff=(0.5, 1, 2), sleep=sleeps.append)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"gave up after 3 attempts.*/dev/video9"):
        src.open()
    assert sleeps == [0.5, 1.0] and time.monotonic() - t0 < 1


def test_disconnect_then_never_back_is_bounded():
    plan = {"opens_to_fail": 0, "sessions": 0}
    src = ReconnectingSource(lambda: FlakyCamera(plan, frames_per_session=2), backoff=(0.1,), max_retries=3,
                             sleep=lambda s: None)
    src.open()
    src.read(), src.read()
    plan["opens_to_fail"] = 10**9
    with pytest.raises(SourceError, match="camera lost.*gave up after 3"):
        src.read()


def test_file_end_is_not_a_disconnect(tmp_path):
    p = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        w.write(np.full((48, 64, 3), i * 40, np.uint8))
    w.release()
    src = ReconnectingSource(lambda: open_source(str(p)), sleep=lambda s: None)
    with src:
        assert len(list(src)) == 5
    assert src.reconnects == 0


def test_latest_frame_policy_skips_stale_frames():
    plan = {"opens_to_fail": 0, "sessions": 0}
    src = LatestFrameSource(FlakyCamera(plan, frames_per_session=40, period_s=0.002), read_timeout_s=2)
    got = []
    with src:
        while True:
            try:
                f = src.read()
            except SourceError:
                break  # the fake disconnects after 40 frames: the error reaches the reader
            got.append(f.index)
            time.sleep(0.01)  # slow consumer
    assert got == sorted(set(got)) and len(got) < 40 and src.skipped > 0
    assert got[-1] >= 35  # the consumer saw (nearly) the newest frame, not a backlog


def test_latest_frame_end_of_stream():
    class Finite(FlakyCamera):
        def read(self):
            return None if self.i >= 3 else super().read()

    src = LatestFrameSource(Finite({"opens_to_fail": 0, "sessions": 0}))
    with src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert 1 <= len(frames) <= 3


def test_v4l2_missing_device_node():
    with pytest.raises(SourceError, match="/dev/video77 does not exist"):
        V4L2Source("/dev/video77").open()
    assert resolve_device("v4l2:3") == "/dev/video3" and resolve_device(2) == "/dev/video2"


class FakeCapture:
    """cv2.VideoCapture stand-in: the 'camera' only does YUYV."""

    def __init__(self, dev, api):
        self.props = {cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter_fourcc(*"YUYV")), cv2.CAP_PROP_FRAME_WIDTH: 640.0,
                      cv2.CAP_PROP_FRAME_HEIGHT: 480.0, cv2.CAP_PROP_FPS: 30.0}
        self.released = False

    def isOpened(self):  # noqa: N802
        return True

    def set(self, prop, value):
        if prop != cv2.CAP_PROP_FOURCC:
            self.props[prop] = float(value)
        return True

    def get(self, prop):
        return self.props.get(prop, 0.0)

    def read(self):
        return True, np.zeros((480, 640, 3), np.uint8)

    def release(self):
        self.released = True


def test_v4l2_wrong_pixel_format(tmp_path):
    dev = tmp_path / "video0"
    dev.touch()
    with pytest.raises(SourceError, match=r"does not support pixel format 'GREY' \(it delivers 'YUYV'\)"):
        V4L2Source(str(dev), 640, 480, 30, "GREY", capture_factory=FakeCapture).open()
    src = V4L2Source(str(dev), 640, 480, 30, "YUYV", capture_factory=FakeCapture)
    f = src.read()
    assert f.image.shape == (480, 640, 3) and f.pixel_format == "BGR" and src.actual["fourcc"] == "YUYV"
    assert fourcc_to_str(cv2.VideoWriter_fourcc(*"MJPG")) == "MJPG"


def test_gstreamer_pipeline_and_missing_support():
    p = jetson_csi_pipeline(1, 1280, 720, 30)
    assert p.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM)") and p.endswith("sync=false")
    assert "framerate=(fraction)30/1" in p and "appsink" in p
    src = GStreamerSource(p)
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer; the missing-support message cannot be checked")
    with pytest.raises(SourceError, match="no GStreamer support"):
        src.open()


def test_source_specs(tmp_path):
    assert parse_source_spec("/dev/video0") == ("v4l2", "/dev/video0")
    assert parse_source_spec("v4l2:0") == ("v4l2", "0")
    assert parse_source_spec("gst:videotestsrc ! appsink") == ("gstreamer", "videotestsrc ! appsink")
    assert parse_source_spec("picamera2:0") == ("picamera2", "0")
    assert parse_source_spec("csi:1") == ("csi", "1")
    assert parse_source_spec("clip.mp4") == ("file", "clip.mp4")
    with pytest.raises(SourceError, match="no such video file"):
        open_source(str(tmp_path / "missing.mp4"))
    src = open_source("/dev/video0")
    assert isinstance(src, LatestFrameSource) and isinstance(src.inner, ReconnectingSource)
    assert isinstance(open_source("v4l2:0", latest_frame=False, reconnect=False), V4L2Source)
    jet = open_source(load_profile("jetson-orin-nano").camera, latest_frame=False, reconnect=False)
    assert isinstance(jet, GStreamerSource) and "nvarguscamerasrc sensor-id=0" in jet.pipeline
    cfg = with_camera(load_profile("rpi5").camera, str(tmp_path / "x.mp4"))
    assert cfg.source == "file" and not cfg.latest_frame and not cfg.reconnect
    with pytest.raises(TypeError):
        open_source(3.5)
    with pytest.raises(SourceError, match="needs camera.device"):
        open_source(CameraConfig(source="file"))


def test_reconnecting_v4l2_without_device_fails_fast():
    src = open_source("/dev/video77", latest_frame=False, backoff=(0.01,))
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="/dev/video77 does not exist"):
        src.open()
    assert time.monotonic() - t0 < 2
    assert threading.active_count() < 50
