"""Turn whatever a camera or file hands us into the two images the pipeline uses.

Cameras deliver grey (NIR, OV9281 R8), 10/16-bit mono (R10/R16), BGR, BGRA/XRGB8888
(picamera2's default) and occasionally float frames. Everything downstream wants an 8-bit
BGR image (detector, overlay) and an 8-bit grey image (landmark/AU networks, which are
trained on grey so that RGB and NIR cameras share one model).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..capture.base import Frame, to_uint8
from ..capture.conditioning import enhance_nir
from ..errors import FrameFormatError
from .grey import GreyOnDemand, GreySource

__all__ = ["MIN_FRAME_SIDE", "NormalisedFrame", "enhance_nir", "normalise_frame"]

#: Smallest frame side we try to analyse; below this a face cannot hold 68 landmarks.
MIN_FRAME_SIDE = 32


@dataclass(frozen=True)
class NormalisedFrame:
    """The frame as the pipeline reads it. `grey_source` is the grey image the crops read:
    the frame's own grey (mono sensors, a conditioned `Frame.gray`) or, for colour frames,
    a `GreyOnDemand` that converts only the pixels the crops sample (identical values).
    `image` is the frame itself, 8-bit: HxWx3 BGR, or HxW grey for a mono sensor, whose BGR
    copy (`bgr`) is made only when something asks for it (the overlay): the detector takes the
    grey frame as it is (a NIR driver camera's frame is never tripled)."""

    image: np.ndarray  # HxWx3 BGR or HxW grey, uint8
    grey_source: GreySource  # HxW uint8, or converted on demand
    was_mono: bool

    @functools.cached_property
    def bgr(self) -> np.ndarray:
        """HxWx3 uint8 BGR (a mono frame's is made on first use)."""
        return cv2.cvtColor(self.image, cv2.COLOR_GRAY2BGR) if self.image.ndim == 2 else self.image

    @property
    def gray(self) -> np.ndarray:
        """The whole HxW uint8 grey image (a colour frame is converted in full on first use)."""
        g = self.grey_source
        return g.full if isinstance(g, GreyOnDemand) else g


def normalise_frame(frame: np.ndarray | Frame, *, bit_depth: int | None = None, channel_order: str = "bgr") -> NormalisedFrame:
    """Validate and convert a frame. Raises FrameFormatError with a precise reason.

    A `Frame` says its own bit depth and channel order (and may carry a conditioned grey
    image). For a bare array: `bit_depth` = significant bits of uint16 samples (None: 16;
    never inferred from the pixels), `channel_order` "bgr" (OpenCV) or "rgb" (MediaPipe users
    hand RGB), used only for 3/4-channel frames.
    """
    if isinstance(frame, Frame):
        nf = normalise_frame(frame.image, bit_depth=frame.bit_depth, channel_order=frame.channel_order)
        if frame.gray is not None:
            if frame.gray.shape != nf.image.shape[:2] or frame.gray.dtype != np.uint8:
                raise FrameFormatError(f"Frame.gray must be a {nf.image.shape[:2]} uint8 image, got {frame.gray.shape} {frame.gray.dtype}")
            nf = NormalisedFrame(nf.image, frame.gray, nf.was_mono)
        return nf
    if not isinstance(frame, np.ndarray):
        raise FrameFormatError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise FrameFormatError(
            f"unsupported frame shape {frame.shape}; expected HxW (mono), HxWx1, HxWx3 or HxWx4"
        )
    h, w = frame.shape[:2]
    if min(h, w) < MIN_FRAME_SIDE:
        raise FrameFormatError(f"frame {w}x{h} is smaller than {MIN_FRAME_SIDE} px on a side")
    frame = np.ascontiguousarray(to_uint8(frame, bit_depth))
    if frame.ndim == 2:
        return NormalisedFrame(image=frame, grey_source=frame, was_mono=True)
    if frame.shape[2] == 4:
        code = cv2.COLOR_BGRA2BGR if channel_order == "bgr" else cv2.COLOR_RGBA2BGR
        bgr = cv2.cvtColor(frame, code)
    elif channel_order == "rgb":
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    else:
        bgr = frame
    return NormalisedFrame(image=bgr, grey_source=GreyOnDemand(bgr), was_mono=False)
