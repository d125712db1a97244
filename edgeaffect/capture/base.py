"""One frame type and one source interface for every camera and file.

A source yields `Frame`s with a monotonic timestamp in milliseconds (MediaPipe's video and
live-stream modes want strictly increasing timestamps) and the frame index as delivered.
`read()` returns None at the end of a finite source and raises SourceError when a live
source fails in a way the caller must handle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Frame:
    image: np.ndarray  # HxW (mono), HxWx3 (BGR) or HxWx4; uint8 or uint16
    timestamp_ms: float  # monotonic, from the source (file: pts; camera: sensor/arrival time)
    index: int  # index as delivered by the source (gaps = frames dropped upstream)
    pixel_format: str = "BGR"  # BGR, RGB, GREY, R10, R16, XRGB8888 ...
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def channel_order(self) -> str:
        return "rgb" if self.pixel_format.upper() in ("RGB", "RGB888_RGB") else "bgr"


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
