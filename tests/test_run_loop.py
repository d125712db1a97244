"""The one run loop: executor always, one per-frame error policy, failed runs recorded, signal exit
codes, progress hook, and the device path built from a profile plus command-line flags."""

from __future__ import annotations

import json
import os
import signal
import warnings

import cv2
import numpy as np
import pytest

from edgeaffect import AnalyzerOptions, BaseOptions
from edgeaffect.capture.base import Frame
from edgeaffect.demo import demo_frames
from edgeaffect.errors import ModelError, SourceError
from edgeaffect.scheduler.executor import PipelineExecutor
from edgeaffect.session import Progress, exit_code, run_source


@pytest.fixture(scope="module")
def frames():
    return [Frame(img, (i + 1) * 33.3, i, "GREY" if img.ndim == 2 else "BGR") for i, img in enumerate(demo_frames(16))]


def _lines(out):
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


class _FailOn:
    """Wrapper: the landmark runner raises `exc` on its n-th call (a frame a network cannot take)."""

    def __init__(self, n: int, exc: Exception) -> None:
        self.n, self.exc, self.calls = n, exc, 0

    def wrap(self, module, runner):
        if module != "landmarks":
            return runner
        outer = self

        class R:
            manifest = runner.manifest

            def __getattr__(self, name):
                return getattr(runner, name)

            def run(self, *xs):
                outer.calls += 1
                if outer.calls == outer.n:
                    raise outer.exc
                return runner.run(*xs)

        return R()


def _pipelined(stages, live):
    return PipelineExecutor(stages, None, 2, mode="pipelined", drop="block")


@pytest.mark.parametrize("executor", [None, _pipelined], ids=["sequential", "pipelined"])
def test_one_per_frame_error_policy_in_both_executors(assets, frames, tmp_path, executor):
    fail = _FailOn(5, ModelError("landmark input rejected"))
    opts = AnalyzerOptions(max_faces=1, base_options=BaseOptions(wrappers=[fail.wrap]))
    s = run_source(frames, tmp_path, opts, executor=executor)
    lines = _lines(tmp_path)
    assert s.frames == len(lines) == len(frames) and s.error is None and exit_code(s) == 0
    bad = [x for x in lines if x["status"] == "bad_frame"]
    assert len(bad) == 1 and bad[0]["message"] == "track: landmark input rejected"
    assert s.bad_frames == 1 and s.frames_with_face >= len(frames) - 4
    assert [x["frame_index"] for x in lines] == list(range(len(frames)))
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["executor"] == ("sequential" if executor is None else "pipelined")


def test_backwards_timestamp_is_a_bad_frame_and_the_run_goes_on(assets, frames, tmp_path):
    fs = list(frames[:6])
    fs[3] = Frame(fs[3].image, fs[1].timestamp_ms, 3, fs[3].pixel_format)
    s = run_source(fs, tmp_path, AnalyzerOptions(max_faces=1))
    st = [x["status"] for x in _lines(tmp_path)]
    assert st[3] == "bad_frame" and st.count("bad_frame") == 1 and s.frames == 6


def test_a_bug_ends_the_run_recorded_and_raised(assets, frames, tmp_path):
    fail = _FailOn(3, RuntimeError("boom"))
    opts = AnalyzerOptions(max_faces=1, base_options=BaseOptions(wrappers=[fail.wrap]))
    with pytest.raises(RuntimeError, match="boom"):
        run_source(frames, tmp_path, opts)
    summ = json.loads((tmp_path / "summary.json").read_text())
    assert summ["error"] == "RuntimeError: boom"
    assert len(_lines(tmp_path)) == summ["frames"]  # what was written stays valid


def test_source_failures_are_recorded_and_exit_non_zero(assets, frames, tmp_path):
    def stops():
        yield from frames[:4]
        raise SourceError("camera /dev/video9 stopped delivering frames")

    s = run_source(stops(), tmp_path / "a", AnalyzerOptions(max_faces=1))
    assert s.frames == 4 and "stopped delivering" in s.error and exit_code(s) == 1
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["error"] == s.error

    from edgeaffect.capture.file import VideoFileSource

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(SourceError, match="cannot open"):
        run_source(VideoFileSource(bad), tmp_path / "b")
    summ = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert "cannot open" in summ["error"] and summ["frames"] == 0


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_finish_the_frame_and_exit_130_143(assets, frames, tmp_path, sig, code):
    def stopped():
        for i, f in enumerate(frames):
            if i == 5:
                os.kill(os.getpid(), sig)
            yield f

    s = run_source(stopped(), tmp_path, AnalyzerOptions(max_faces=1))
    assert s.stopped_by == sig.name and exit_code(s) == code and s.error is None
    assert 5 <= s.frames < len(frames) and len(_lines(tmp_path)) == s.frames


def test_progress_hook_reports_frames_total_and_fps(assets, tmp_path):
    from edgeaffect.demo import DemoSource

    seen: list[Progress] = []
    run_source(DemoSource(12), tmp_path, AnalyzerOptions(max_faces=1), max_frames=8, on_progress=seen.append,
               write_csv=False)
    assert [p.frames for p in seen] == list(range(1, 9)) and all(p.total == 8 for p in seen)
    assert seen[-1].fps > 0 and seen[-1].eta_s == 0.0 and seen[0].eta_s > 0


def test_device_setup_honours_threads_and_nir_enhance_with_a_profile(assets, frames, tmp_path):
    from edgeaffect.capture.factory import open_source
    from edgeaffect.device_run import prepare
    from edgeaffect.registry import MODULES

    clip = tmp_path / "clip.avi"
    h, w = frames[0].image.shape[:2]
    vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for f in frames:
        vw.write(f.image if f.image.ndim == 3 else cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR))
    vw.release()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        setup = prepare("rpi5-coral", source=str(clip), max_faces=1, threads=2, nir_enhance=True)
    assert all(setup.plan.factory.threads_for(m) == 2 for m in MODULES)
    assert setup.camera.source == "file" and setup.camera.nir.enabled and setup.camera.nir.clahe
    src = open_source(setup.camera)
    s = run_source(src, tmp_path / "o", setup.options, runner_factory=setup.plan.factory, executor=setup.executor,
                   header_extra=setup.header())
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["profile"] == "rpi5-coral" and run["executor"] == "pipelined" and "placement" in run
    assert s.frames == len(frames) and s.extra["executor"]["dropped"] == 0  # a file: every frame analysed
    assert np.isfinite(s.fps)


def test_cli_truncated_video_records_the_error_and_exits_1(assets, frames, tmp_path):
    import subprocess
    import sys

    clip = tmp_path / "clip.avi"
    h, w = frames[0].image.shape[:2]
    vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for f in frames * 2:
        vw.write(f.image if f.image.ndim == 3 else cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR))
    vw.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    p = subprocess.run([sys.executable, "-m", "edgeaffect.cli", "run", "--source", str(cut), "--out",
                        str(tmp_path / "o"), "--max-faces", "1"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    summ = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert "truncated" in summ["error"] and summ["frames"] == len(_lines(tmp_path / "o")) > 0


def test_sequential_and_pipelined_runs_and_a_plain_loop_agree(assets, frames, tmp_path):
    """The run loop adds nothing to the analysis: a plain process() loop, the sequential executor and the
    pipelined one (three workers, every frame) give the same results.jsonl apart from timings (and the
    wall clock, which the run loop stamps on each line)."""
    from edgeaffect import Analyzer

    def strip(d):
        return {k: v for k, v in d.items() if k not in ("timings_ms", "wall_utc")}

    with Analyzer(AnalyzerOptions(max_faces=1)) as an:
        plain = [strip(an.process(f.image, f.timestamp_ms).to_dict()) for f in frames]
    run_source(frames, tmp_path / "s", AnalyzerOptions(max_faces=1), write_csv=False)
    run_source(frames, tmp_path / "p", AnalyzerOptions(max_faces=1), executor=_pipelined, write_csv=False)
    seq = [strip(x) for x in _lines(tmp_path / "s")]
    pip = [strip(x) for x in _lines(tmp_path / "p")]
    assert sum(x["status"] == "ok" for x in seq) >= len(frames) - 4
    assert plain == seq == pip


def test_profile_detection_table_reaches_the_analyzer(assets):
    """kiosk-usb's [models] detector = "full_range" and [detection] small_face_px = 40 become the running
    analyzer's detector file and tile size (a far-face search a kiosk needs; issue 9 item 4)."""
    from edgeaffect.analyzer import Analyzer
    from edgeaffect.device_run import prepare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        setup = prepare("kiosk-usb", source="demo", max_faces=1)
    assert setup.options.detect_small_faces and setup.options.small_face_px == 40.0
    an = Analyzer(setup.options, runner_factory=setup.plan.factory)
    try:
        det = an.tracker.detector
        assert det.full_range and det.small_face_px == 40.0
        assert an.model_manifests["detector"].file.startswith("detector_full")
    finally:
        an.close()
