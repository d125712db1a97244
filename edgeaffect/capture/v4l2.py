"""V4L2 cameras (USB webcams, mono/NIR UVC cameras, CSI bridges) through OpenCV's V4L2 backend.

Pixel formats: the fourcc is requested and then *read back*; a camera that silently delivers
something else is an error naming both, with the formats the device really offers (queried
with VIDIOC_ENUM_FMT). Mono formats (GREY, Y10, Y16) are read raw (CAP_PROP_CONVERT_RGB off)
so the frame stays 1-channel 8/16-bit; `vision.frames.normalise_frame` handles the rest.
"""

from __future__ import annotations

import fcntl
import glob
import os
import struct
import time
from collections.abc import Callable
from typing import Any

import cv2

from ..errors import SourceError
from .base import PIXEL_BIT_DEPTH, Frame, FrameSource

MONO_FOURCCS = {"GREY": "GREY", "Y8": "GREY", "Y10": "Y10 ", "Y12": "Y12 ", "Y16": "Y16 "}
_VIDIOC_ENUM_FMT = 0xC0405602  # _IOWR('V', 2, struct v4l2_fmtdesc), sizeof = 64
_BUF_TYPE_VIDEO_CAPTURE = 1


def fourcc_to_str(code: float | int) -> str:
    c = int(code)
    return "".join(chr((c >> (8 * i)) & 0xFF) for i in range(4))


def _norm_fourcc(f: str) -> str:
    f = f.upper()
    return MONO_FOURCCS.get(f.strip(), f.ljust(4)[:4])


def list_v4l2_formats(device: str) -> list[tuple[str, str]]:
    """[(fourcc, description)] the device offers for video capture; [] if it cannot be queried."""
    out: list[tuple[str, str]] = []
    try:
        fd = os.open(device, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return out
    try:
        for i in range(64):
            buf = bytearray(struct.pack("II", i, _BUF_TYPE_VIDEO_CAPTURE) + bytes(56))
            try:
                fcntl.ioctl(fd, _VIDIOC_ENUM_FMT, buf)
            except OSError:
                break
            desc = bytes(buf[12:44]).split(b"\0", 1)[0].decode(errors="replace")
            (pix,) = struct.unpack_from("I", buf, 44)
            out.append((fourcc_to_str(pix), desc))
    finally:
        os.close(fd)
    return out


def resolve_device(device: str | int) -> str:
    """0 / "0" / "v4l2:0" / "/dev/video0" -> "/dev/video0"."""
    d = str(device)
    if d.startswith("v4l2:"):
        d = d[5:]
    if d.isdigit():
        return f"/dev/video{d}"
    return d


class V4L2Source(FrameSource):
    name = "v4l2"
    is_live = True

    def __init__(
        self,
        device: str | int = "/dev/video0",
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
        *,
        buffer_size: int = 1,
        capture_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.width, self.height, self.req_fps = width, height, fps
        self.fourcc = _norm_fourcc(fourcc) if fourcc else None
        self.buffer_size = buffer_size
        self._factory = capture_factory or cv2.VideoCapture
        self._cap: Any = None
        self._index = 0
        self._last_ts = -1.0
        self._fps = 0.0
        self._mono = False
        self.actual: dict[str, Any] = {}

    def open(self) -> None:
        if not os.path.exists(self.device):
            avail = ", ".join(sorted(glob.glob("/dev/video*"))) or "none"
            raise SourceError(f"camera device {self.device} does not exist (V4L2 devices here: {avail})")
        cap = self._factory(self.device, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            hint = "permission denied? (add the user to the 'video' group)" if not os.access(self.device, os.R_OK) \
                else "busy (another process uses it) or not a capture device"
            raise SourceError(f"camera device {self.device} exists but cannot be opened: {hint}")
        if self.fourcc:
            self._mono = self.fourcc in MONO_FOURCCS.values()
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
            if self._mono:
                cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.req_fps:
            cap.set(cv2.CAP_PROP_FPS, self.req_fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, self.buffer_size)
        actual = fourcc_to_str(cap.get(cv2.CAP_PROP_FOURCC))
        self.actual = {
            "fourcc": actual, "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), "fps": float(cap.get(cv2.CAP_PROP_FPS) or 0),
        }
        if self.fourcc and actual.strip() != self.fourcc.strip():
            cap.release()
            offered = list_v4l2_formats(self.device)
            offer = ", ".join(f"{f.strip()} ({d})" for f, d in offered) if offered else "unknown (try v4l2-ctl --list-formats-ext)"
            raise SourceError(f"camera {self.device} does not support pixel format {self.fourcc.strip()!r} "
                              f"(it delivers {actual.strip()!r}); formats offered: {offer}")
        self._cap = cap
        self._fps = self.actual["fps"] or (self.req_fps or 0.0)

    @property
    def fps(self) -> float | None:
        return self._fps or None

    def read(self) -> Frame | None:
        if self._cap is None:
            self.open()
        ok, img = self._cap.read()
        if not ok or img is None:
            raise SourceError(f"camera {self.device} stopped delivering frames (unplugged?)")
        # Driver buffer timestamp when OpenCV exposes it, else arrival time; forced monotonic.
        ts = float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
        if ts <= 0:
            ts = time.monotonic() * 1000.0
        ts = max(ts, self._last_ts + 1e-3)
        self._last_ts = ts
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        fmt = "BGR"
        if img.ndim == 2:  # 16-bit samples: the requested Y10/Y12/Y16 says how many bits are significant
            fmt = (self.fourcc or "Y16").strip() if img.dtype.itemsize == 2 else "GREY"
            fmt = fmt if fmt in PIXEL_BIT_DEPTH or fmt == "GREY" else "Y16"
        f = Frame(img, ts, self._index, fmt, {"source": "v4l2", "device": self.device})
        self._index += 1
        return f

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
