"""The overlay: a side panel that never overflows, AU bars and V/A dial with scales and numbers,
H.264 when this OpenCV can encode it, mp4v otherwise."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from edgeaffect.outputs import OverlayRenderer
from edgeaffect.outputs import overlay as ov
from edgeaffect.results import FaceResult, FrameResult

from .test_outputs import sample_result

RealVideoWriter = cv2.VideoWriter


def faces(n: int, lost: int = 1) -> list[FaceResult]:
    base = sample_result(0).faces[0]
    rng = np.random.default_rng(n)
    out = [FaceResult(track_id=10 + k, valid=True, validity=0.9, source="tracking", box=(20.0 * k, 20.0, 40.0, 40.0),
                      landmarks=base.landmarks, landmark_sigma=base.landmark_sigma, aus=rng.uniform(0, 5, 15).astype(np.float32),
                      valence=float(rng.uniform(-1, 1)), arousal=float(rng.uniform(-1, 1)), uncertainty={"cumulative": 0.3},
                      expression=rng.dirichlet(np.ones(7)) if k % 2 == 0 else None)
           for k in range(n)]
    return out + [FaceResult(track_id=99 + k, valid=False, validity=0.0, source="lost", box=(1.0, 2.0, 3.0, 4.0)) for k in range(lost)]


@pytest.mark.parametrize("height", [120, 240, 360, 720])
@pytest.mark.parametrize("n", [0, 1, 3, 8])
def test_panel_never_overflows_and_accounts_for_every_face(height, n):
    r = OverlayRenderer()
    fs = faces(n)
    out = r.render(np.zeros((height, 320, 3), np.uint8), FrameResult(0, 0.0, fs, "ok"))
    assert out.shape == (height, 320 + r.panel_width, 3)
    assert all(0 <= b.y0 < b.y1 <= height for b in r.last_layout)
    assert all(a.y1 <= b.y0 for a, b in zip(r.last_layout, r.last_layout[1:]))  # no block drawn over another
    assert sum(b.count for b in r.last_layout) == len(fs), r.last_layout  # every face listed, at least as "+N more faces"
    full = [b for b in r.last_layout if b.kind == "full"]
    # a valid face gets the full block whenever one fits (it is ~300 px tall)
    assert [b.track_id for b in full[:1]] == ([10] if height >= 360 and n else [])


def test_full_block_has_au_scale_values_and_va_numbers():
    r = OverlayRenderer()
    f = faces(1, lost=0)[0]
    f.expression = None
    f.aus = np.zeros(15, np.float32)  # empty bars: whatever is drawn right of them is the printed value
    out = r.render(np.zeros((360, 320, 3), np.uint8), FrameResult(0, 0.0, [f], "ok"))
    panel = out[:, 320:]
    (b,) = r.last_layout
    bars_y0 = b.y0 + r.HEADER + r.SCALE
    x1 = r.panel_width - 40
    values = panel[bars_y0: bars_y0 + 15 * r.AU_ROW, x1 + 4:]
    assert (values > 100).any(axis=2).any(axis=1).sum() >= 15 * 3   # a number on each of the 15 rows
    scale = panel[b.y0 + r.HEADER: bars_y0 - 2, 40:x1 + 8]
    assert (scale > 100).any()                                       # the 0..5 tick labels
    below = panel[bars_y0 + 15 * r.AU_ROW:b.y1]
    assert (below[..., 1] > 200).any()                               # the V/A point and numbers


class _NoH264:
    """cv2.VideoWriter as built without an H.264 encoder (the pip wheels): avc1 refuses to open."""

    def __init__(self, path, fourcc, fps, size):
        self._vw = None if fourcc == cv2.VideoWriter_fourcc(*"avc1") else RealVideoWriter(path, fourcc, fps, size)

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self._vw is not None and self._vw.isOpened()

    def write(self, img):
        self._vw.write(img)

    def release(self):
        if self._vw is not None:
            self._vw.release()


class _WithH264(_NoH264):
    """... and as built with one (cannot exist here: records that avc1 was asked for and writes mp4v)."""

    def __init__(self, path, fourcc, fps, size):
        self.asked = fourcc
        super().__init__(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)


@pytest.mark.parametrize("fake,codec", [(_NoH264, "mp4v"), (_WithH264, "avc1")])
def test_writer_prefers_h264_and_falls_back_to_mp4v(tmp_path, monkeypatch, fake, codec):
    monkeypatch.setattr(ov.cv2, "VideoWriter", fake)
    w = ov.OverlayVideoWriter(tmp_path / "o.mp4", fps=10)
    for i in range(3):
        w.write(np.zeros((120, 160, 3), np.uint8), sample_result(i))
    w.close()
    assert w.codec == codec and w.count == 3


def test_real_writer_is_readable_and_quiet(tmp_path, capfd):
    w = ov.OverlayVideoWriter(tmp_path / "o.mp4", fps=10)
    for i in range(5):
        w.write(np.full((120, 160, 3), 40 * i, np.uint8), sample_result(i))
    w.close()
    err = capfd.readouterr().err
    assert "encoder" not in err.lower(), err  # a missing H.264 encoder is not an error to print
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and w.codec in ("avc1", "mp4v")
    ok, img = cap.read()
    assert ok and img.shape == (120, 160 + OverlayRenderer().panel_width, 3)


def test_expression_line_when_the_face_has_one():
    r = OverlayRenderer()
    f = faces(1, lost=0)[0]
    plain = r.render(np.zeros((360, 320, 3), np.uint8), FrameResult(0, 0.0, [dataclasses.replace(f, expression=None)], "ok"))
    h_plain = r.last_layout[0].y1 - r.last_layout[0].y0
    shown = r.render(np.zeros((360, 320, 3), np.uint8), FrameResult(0, 0.0, [f], "ok"))
    assert r.last_layout[0].y1 - r.last_layout[0].y0 == h_plain + r.COMPACT
    y0 = r.last_layout[0].y0 + r.HEADER
    band = slice(y0, y0 + r.COMPACT - 2)  # grey text (every channel bright) where the dim 0..5 scale is otherwise
    assert (shown[band, 320:] > 180).all(axis=2).any() and not (plain[band, 320:] > 180).all(axis=2).any()
