"""One frame type and one source interface for every camera and file.

A source yields `Frame`s: the pixels together with what they mean (pixel format, bit depth,
channel order), a monotonic timestamp in milliseconds (MediaPipe's video and live-stream
modes want strictly increasing timestamps), the frame index as delivered and the capture
metadata (exposure, gain, sensor timestamp ...). Like MediaPipe's `mp.Image` with its
`ImageFormat`, nothing downstream guesses the format from the array: a 10-bit sample is
scaled by its declared depth, so the same sensor value always becomes the same 8-bit value.
`read()` returns None at the end of a finite source and raises SourceError when a live
source fails in a way the caller must handle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FrameFormatError

#: Significant bits per sample of the high-depth mono formats (every other format: its dtype's bits).
PIXEL_BIT_DEPTH: dict[str, int] = {"Y10": 10, "R10": 10, "Y12": 12, "R12": 12, "Y16": 16, "R16": 16}
#: Formats whose colour samples are in R, G, B order in memory (everything else with 3/4 channels is B, G, R).
RGB_ORDER_FORMATS = ("RGB", "RGB888_RGB", "RGBA")


@dataclass
class Frame:
    image: np.ndarray  # HxW (mono), HxWx3 or HxWx4; uint8, uint16 (mono, `bit_depth` significant bits) or float [0, 1]
    timestamp_ms: float  # monotonic, from the source (file: pts; camera: sensor/arrival time)
    index: int = 0  # index as delivered by the source (gaps = frames dropped upstream)
    pixel_format: str = "BGR"  # BGR, RGB, GREY, R10, R16, Y10, XRGB8888 ...
    meta: dict[str, Any] = field(default_factory=dict)  # capture metadata: exposure_us, analogue_gain, conditioned ...
    bit_depth: int | None = None  # significant bits per sample; None: from pixel_format / meta, else the dtype's
    gray: np.ndarray | None = None  # conditioned 8-bit luminance when it is not the image's own (NIR on colour)

    def __post_init__(self) -> None:
        if self.bit_depth is None:
            self.bit_depth = self.meta.get("bit_depth") or PIXEL_BIT_DEPTH.get(self.pixel_format.upper())
        if self.bit_depth is None and isinstance(self.image, np.ndarray) and self.image.dtype.kind == "u":
            self.bit_depth = 8 * self.image.dtype.itemsize

    @property
    def channel_order(self) -> str:
        return "rgb" if self.pixel_format.upper() in RGB_ORDER_FORMATS else "bgr"

    @classmethod
    def from_array(cls, image: np.ndarray, timestamp_ms: float = 0.0, *, channel_order: str = "bgr",
                   bit_depth: int | None = None, index: int = 0) -> Frame:
        """A frame from a bare array: mono is GREY, 3/4 channels BGR (or RGB), uint16 `bit_depth` (default 16)."""
        mono = isinstance(image, np.ndarray) and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1))
        fmt = "GREY" if mono else ("RGB" if channel_order.lower() == "rgb" else "BGR")
        return cls(image, float(timestamp_ms), index, fmt, bit_depth=bit_depth)


#: float frames may overshoot [0, 1] by this much (resampling ringing, colour conversion) and are clipped
FLOAT_RANGE_TOLERANCE = 0.01


def to_uint8(image: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Scale a frame's samples to 8 bits by their declared depth (never by the frame's content).

    uint8: unchanged. uint16: `bit_depth` significant bits (default 16) -> the top 8 of them,
    values above the declared range saturate at 255. float: [0, 1] -> [0, 255], by contract
    (MediaPipe's and OpenCV's float-image convention). A float frame outside [0, 1] (e.g. 0-255
    floats) is refused with a clear error instead of being scaled by its own brightest pixel,
    which would make a dark 0-255 frame (peak <= 1) 255x brighter than a bright one.
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        bits = 16 if bit_depth is None else int(bit_depth)
        if not 8 <= bits <= 16:
            raise FrameFormatError(f"bit depth {bits} is not supported for 16-bit samples (8 to 16)")
        shift = bits - 8
        return np.minimum(image >> shift if shift else image, 255).astype(np.uint8)
    if image.dtype in (np.float32, np.float64, np.float16):
        if not np.all(np.isfinite(image)):
            raise FrameFormatError("frame contains NaN or infinite values")
        lo, hi = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
        if lo < -FLOAT_RANGE_TOLERANCE or hi > 1.0 + FLOAT_RANGE_TOLERANCE:
            raise FrameFormatError(
                f"float frames must hold values in [0, 1]; this one spans {lo:g}..{hi:g} "
                "(for 0-255 floats divide by 255 or pass uint8)")
        return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    raise FrameFormatError(
        f"unsupported frame dtype {image.dtype}; expected uint8, uint16 (mono 10-16 bit) or float in [0, 1]"
    )


class FrameSource(ABC):
    """Base class of all capture sources. Use as a context manager or call close()."""

    name: str = "source"
    is_live: bool = False

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> Frame | None: ...

    @abstractmethod
    def close(self) -> None: ...

    @property
    def fps(self) -> float | None:
        return None

    @property
    def frame_count(self) -> int | None:
        return None

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            f = self.read()
            if f is None:
                return
            yield f
