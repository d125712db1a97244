"""Overlay rendering: landmarks coloured by their uncertainty, and a side panel per face with
AU bars on a 0-5 scale (value printed beside each bar) and the V/A point on the circumplex
(axes -1..+1, a circle whose radius is the cumulative uncertainty, the numbers underneath).

The panel never draws past its bottom edge: faces get a full block while there is room, then
one compact line each, then a "+N more faces" line.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..constants import AU_NAMES, EXPRESSIONS
from ..errors import OutputError
from ..results import FaceResult, FrameResult

log = logging.getLogger("edgeaffect.outputs")

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, GREY, DIM, GRID = (255, 255, 255), (200, 200, 200), (140, 140, 140), (70, 70, 70)
BAR, POINT, UNC = (0, 180, 255), (0, 255, 255), (0, 140, 255)
AU_MAX = 5.0


def _sigma_colour(s_rel: float) -> tuple[int, int, int]:
    """Green (certain) -> yellow -> red (uncertain); s_rel is sigma / inter-ocular distance."""
    t = float(np.clip(s_rel / 0.08, 0, 1))
    return (0, int(255 * (1 - t) + 0 * t) if t > 0.5 else 255, int(510 * t) if t < 0.5 else 255)


def _fmt(x: float | None, signed: bool = True) -> str:
    return "--" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


@dataclass(frozen=True)
class Block:
    """One drawn piece of the panel (what tests and callers can check)."""

    kind: str  # "full" | "compact" | "more"
    y0: int
    y1: int
    track_id: int | None = None
    count: int = 1


class OverlayRenderer:
    AU_ROW = 10  # px per AU bar
    HEADER = 16
    SCALE = 12  # the 0..5 scale row above the bars
    COMPACT = 14

    def __init__(self, panel_width: int = 240) -> None:
        self.panel_width = max(180, panel_width)
        self.last_layout: list[Block] = []

    # -- layout -------------------------------------------------------------------------
    def dial_radius(self) -> int:
        return min(40, (self.panel_width - 90) // 2)

    def full_height(self, f: FaceResult) -> int:
        h = self.HEADER + (self.COMPACT if f.expression is not None else 0)
        if f.aus is not None:
            h += self.SCALE + self.AU_ROW * len(f.aus) + 4
        if f.valence is not None and f.arousal is not None:
            h += 2 * self.dial_radius() + 34
        return h

    def layout(self, faces: list[FaceResult], height: int) -> list[Block]:
        """Full blocks while they fit, then compact lines, then "+N more"; nothing below `height`."""
        blocks: list[Block] = []
        y, bottom = 6, height - 4
        # valid faces first: a lost face's block has nothing to show
        order = sorted(faces, key=lambda f: (not f.valid, f.track_id))
        full_ok = True
        for i, f in enumerate(order):
            rest = len(order) - i - 1
            reserve = self.COMPACT if rest else 0  # always leave room to say more faces exist
            fh = self.full_height(f)
            if full_ok and f.valid and y + fh + reserve <= bottom:
                blocks.append(Block("full", y, y + fh, f.track_id))
                y += fh + 4
                continue
            full_ok = False
            if y + self.COMPACT + reserve <= bottom:
                blocks.append(Block("compact", y, y + self.COMPACT, f.track_id))
                y += self.COMPACT
                continue
            if y + self.COMPACT <= bottom:
                blocks.append(Block("more", y, y + self.COMPACT, None, len(order) - i))
            break
        return blocks

    # -- drawing ------------------------------------------------------------------------
    def render(self, frame_bgr: np.ndarray, result: FrameResult) -> np.ndarray:
        img = frame_bgr.copy()
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        h = img.shape[0]
        panel = np.full((h, self.panel_width, 3), 30, np.uint8)
        for f in result.faces:
            if f.box is not None:
                x, y, bw, bh = (int(v) for v in f.box)
                cv2.rectangle(img, (x, y), (x + bw, y + bh), (0, 200, 0) if f.valid else (0, 0, 200), 1)
                cv2.putText(img, f"#{f.track_id}{'' if f.valid else ' ' + f.source}", (x, max(12, y - 4)), FONT, 0.4, WHITE, 1)
            if f.landmarks is not None and f.landmark_sigma is not None:
                iod = float(np.linalg.norm(f.landmarks[36] - f.landmarks[45])) or 1.0
                for (px, py), s in zip(f.landmarks, f.landmark_sigma):
                    cv2.circle(img, (int(px), int(py)), 2, _sigma_colour(float(s) / iod), -1)
        by_id = {f.track_id: f for f in result.faces}
        self.last_layout = self.layout(result.faces, h)
        for b in self.last_layout:
            if b.kind == "full":
                self._full(panel, by_id[b.track_id], b.y0)
            elif b.kind == "compact":
                self._compact(panel, by_id[b.track_id], b.y0)
            else:
                cv2.putText(panel, f"+{b.count} more face{'s' if b.count > 1 else ''}", (6, b.y0 + 10), FONT, 0.35, GREY, 1)
        cv2.putText(img, f"{result.frame_index} {result.status}", (4, h - 6), FONT, 0.4, WHITE, 1)
        return np.hstack([img, panel])

    def _compact(self, panel: np.ndarray, f: FaceResult, y: int) -> None:
        if not f.valid:
            text = f"#{f.track_id} {f.source}"
        else:
            text = f"#{f.track_id} V {_fmt(f.valence)} A {_fmt(f.arousal)}"
            if f.aus is not None:
                k = int(np.argmax(f.aus))
                text += f" {AU_NAMES[k]} {float(f.aus[k]):.1f}"
        cv2.putText(panel, text, (6, y + 10), FONT, 0.35, WHITE if f.valid else DIM, 1)

    def _full(self, panel: np.ndarray, f: FaceResult, y: int) -> None:
        pw = self.panel_width
        cv2.putText(panel, f"face #{f.track_id}  validity {f.validity:.2f}", (6, y + 11), FONT, 0.4, WHITE, 1)
        y += self.HEADER
        if f.expression is not None:
            k = int(np.argmax(f.expression))
            cv2.putText(panel, f"expression: {EXPRESSIONS[k]} {float(f.expression[k]):.2f}", (6, y + 10), FONT, 0.35, GREY, 1)
            y += self.COMPACT
        if f.aus is not None:
            x0, x1 = 44, pw - 40  # bar from x0 (0) to x1 (5); the value is printed right of x1
            for k in range(int(AU_MAX) + 1):  # the scale: ticks and numbers 0..5
                xk = x0 + (x1 - x0) * k // int(AU_MAX)
                cv2.putText(panel, str(k), (xk - 3, y + 8), FONT, 0.3, DIM, 1)
                cv2.line(panel, (xk, y + self.SCALE - 1), (xk, y + self.SCALE + self.AU_ROW * len(f.aus)), GRID, 1)
            y += self.SCALE
            for name, v in zip(AU_NAMES, f.aus):
                v = float(np.clip(v, 0.0, AU_MAX))
                cv2.putText(panel, name, (6, y + 8), FONT, 0.3, GREY, 1)
                cv2.rectangle(panel, (x0, y + 1), (x0 + int((x1 - x0) * v / AU_MAX), y + self.AU_ROW - 2), BAR, -1)
                cv2.putText(panel, f"{v:.1f}", (x1 + 6, y + 8), FONT, 0.3, GREY, 1)
                y += self.AU_ROW
            y += 4
        if f.valence is not None and f.arousal is not None:
            r = self.dial_radius()
            c = (pw // 2, y + r + 12)
            cv2.circle(panel, c, r, (120, 120, 120), 1)
            cv2.line(panel, (c[0] - r, c[1]), (c[0] + r, c[1]), GRID, 1)
            cv2.line(panel, (c[0], c[1] - r), (c[0], c[1] + r), GRID, 1)
            for frac in (-0.5, 0.5):  # half-way ticks on both axes
                cv2.line(panel, (c[0] + int(frac * r), c[1] - 2), (c[0] + int(frac * r), c[1] + 2), DIM, 1)
                cv2.line(panel, (c[0] - 2, c[1] + int(frac * r)), (c[0] + 2, c[1] + int(frac * r)), DIM, 1)
            cv2.putText(panel, "-1", (c[0] - r - 16, c[1] + 4), FONT, 0.3, DIM, 1)
            cv2.putText(panel, "+1 V", (c[0] + r + 3, c[1] + 4), FONT, 0.3, DIM, 1)
            cv2.putText(panel, "A +1", (c[0] - 10, c[1] - r - 3), FONT, 0.3, DIM, 1)
            cv2.putText(panel, "-1", (c[0] - 6, c[1] + r + 10), FONT, 0.3, DIM, 1)
            val, aro = float(np.clip(f.valence, -1, 1)), float(np.clip(f.arousal, -1, 1))
            p = (int(c[0] + val * r), int(c[1] - aro * r))
            unc = (f.uncertainty or {}).get("cumulative")
            cv2.circle(panel, p, max(2, int((unc or 0.0) * r)), UNC, 1)
            cv2.circle(panel, p, 3, POINT, -1)
            cv2.putText(panel, f"V {_fmt(f.valence)}  A {_fmt(f.arousal)}  u {_fmt(unc, signed=False)}",
                        (6, c[1] + r + 22), FONT, 0.35, WHITE, 1)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence OpenCV/FFmpeg's own messages while probing an encoder that may not exist."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


#: tried in order: H.264 (plays in browsers) when this OpenCV's FFmpeg has an encoder for it, else MPEG-4 part 2
CODECS = (("avc1", "H.264"), ("mp4v", "MPEG-4 part 2 (mp4v)"))


class OverlayVideoWriter:
    """MP4 overlay writer, opened lazily at the first frame's size: H.264 (avc1) when the local
    OpenCV/FFmpeg can encode it, else mp4v (which most browsers won't play; `codec` says which)."""

    def __init__(self, path: str | Path, fps: float = 30.0, renderer: OverlayRenderer | None = None,
                 codecs: tuple[tuple[str, str], ...] = CODECS) -> None:
        self.path = Path(path)
        self.fps = fps
        self.renderer = renderer or OverlayRenderer()
        self.codecs = codecs
        self.codec: str | None = None  # fourcc in use once opened
        self.codec_name: str | None = None
        self._vw: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.count = 0

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tried = []
        for fourcc, name in self.codecs:
            with _quiet_stderr():
                vw = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, size)
            if vw.isOpened():
                self.codec, self.codec_name = fourcc, name
                if tried:
                    log.info("overlay: no %s encoder in this OpenCV build; writing %s", "/".join(tried), name)
                return vw
            vw.release()
            tried.append(fourcc)
        raise OutputError(f"cannot open {self.path} for video writing: this OpenCV has none of the encoders "
                          f"{', '.join(t for t, _ in self.codecs)}")

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        img = self.renderer.render(frame_bgr, result)
        if self._vw is None:
            self._size = (img.shape[1], img.shape[0])
            self._vw = self._open(self._size)
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size)
        self._vw.write(img)
        self.count += 1

    def close(self) -> None:
        if self._vw is not None:
            self._vw.release()
            self._vw = None
