"""The frame contract: a Frame carries its format from capture to the analyzer; conditioning
happens once, at the capture boundary, from the camera config."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeaffect import Analyzer, AnalyzerOptions
from edgeaffect.capture.base import Frame
from edgeaffect.capture.conditioning import ConditionedSource, condition_frame, enhance_nir
from edgeaffect.capture.factory import open_source
from edgeaffect.demo import demo_frames
from edgeaffect.errors import EdgeAffectError
from edgeaffect.profiles import CameraConfig, NirConfig


@pytest.fixture(scope="module")
def frames():
    return list(demo_frames(10))


def _clip(tmp_path, frames) -> str:
    path = tmp_path / "clip.avi"
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for f in frames:
        vw.write(f if f.ndim == 3 else cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()
    return str(path)


def test_analyzer_takes_frames_and_bare_arrays_alike(assets, frames):
    with Analyzer(AnalyzerOptions(max_faces=1)) as a, Analyzer(AnalyzerOptions(max_faces=1)) as b:
        for i, img in enumerate(frames):
            ts = (i + 1) * 33.3
            fr = Frame(img, ts, i, "GREY" if img.ndim == 2 else "BGR")
            ra, rb = a.process(img, ts), b.process(fr)  # the Frame's own timestamp
            assert ra.status == rb.status and ra.timestamp_ms == rb.timestamp_ms
            assert [f.landmarks.tolist() if f.landmarks is not None else None for f in ra.faces] == \
                   [f.landmarks.tolist() if f.landmarks is not None else None for f in rb.faces]
        with pytest.raises(EdgeAffectError, match="needs timestamp_ms"):
            a.process(frames[0])


def test_ten_bit_frame_analysed_like_its_8_bit_version(assets, frames):
    """A 10-bit mono Frame (R10) gives the same result as the 8-bit grey it encodes, whatever its peak."""
    gray = [f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[:4]]
    with Analyzer(AnalyzerOptions(max_faces=1)) as a, Analyzer(AnalyzerOptions(max_faces=1)) as b:
        for i, g in enumerate(gray):
            ten = g.astype(np.uint16) << 2
            ten[0, 0] = 1023 if i % 2 else 0  # changes the frame's max, not the face
            g8 = g.copy()
            g8[0, 0] = 255 if i % 2 else 0
            ra, rb = a.process(g8, (i + 1) * 33.3), b.process(Frame(ten, (i + 1) * 33.3, i, "R10"))
            assert ra.status == rb.status == "ok"
            assert np.allclose(ra.faces[0].landmarks, rb.faces[0].landmarks)


def test_conditioning_once_at_the_capture_boundary(tmp_path, frames):
    nir = NirConfig(enabled=True, clahe=True, gamma=1.5)
    src = open_source(CameraConfig(source="file", device=_clip(tmp_path, frames), nir=nir))
    assert isinstance(src, ConditionedSource)
    with src:
        got = list(src)
    with open_source(_clip(tmp_path, frames)) as raw_src:
        raw = list(raw_src)
    assert len(got) == len(raw) == len(frames)
    for g, r in zip(got, raw, strict=True):
        assert g.meta["conditioned"] == {"clahe": True, "gamma": 1.5}
        want = enhance_nir(cv2.cvtColor(r.image, cv2.COLOR_BGR2GRAY), clahe=True, gamma=1.5)
        assert np.array_equal(g.gray, want) and np.array_equal(g.image, r.image)
        assert condition_frame(g, nir) is g, "a conditioned frame is never conditioned twice"
    # NIR disabled in the config: no conditioning
    assert not isinstance(open_source(CameraConfig(source="file", device=_clip(tmp_path, frames),
                                                   nir=NirConfig(enabled=False, clahe=True))), ConditionedSource)


def test_conditioned_frame_is_not_enhanced_again_by_the_analyzer(assets, frames):
    g = frames[0] if frames[0].ndim == 2 else cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
    cf = condition_frame(Frame(g, 1.0, 0, "GREY"), NirConfig(enabled=True, clahe=True))
    with Analyzer(AnalyzerOptions(nir_enhance=True)) as an:
        work = an.begin_frame(cf)
        assert np.array_equal(work.frame.gray, cf.image)  # CLAHE applied once, at capture
        work2 = an.begin_frame(g, 2.0)  # a bare array still gets the option's CLAHE
        assert np.array_equal(work2.frame.gray, enhance_nir(g))


def test_truncated_video_is_an_error_not_a_short_run(tmp_path, frames):
    from edgeaffect.errors import SourceError

    full = tmp_path / "clip.avi"
    _clip(tmp_path, frames * 3)
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.5)])
    with open_source(str(full)) as src:
        assert len(list(src)) == len(frames) * 3
    src = open_source(str(cut))
    src.open()
    got = []
    with pytest.raises(SourceError, match=r"decoding stopped after \d+ of 30 frames"):
        for f in src:
            got.append(f)
    src.close()
    assert 0 < len(got) < 30
