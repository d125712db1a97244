"""Turn whatever a camera or file hands us into the two images the pipeline uses.

Cameras deliver grey (NIR, OV9281 R8), 10/16-bit mono (R10/R16), BGR, BGRA/XRGB8888
(picamera2's default) and occasionally float frames. Everything downstream wants an 8-bit
BGR image (detector, overlay) and an 8-bit grey image (landmark/AU networks, which are
trained on grey so that RGB and NIR cameras share one model).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FrameFormatError

#: Smallest frame side we try to analyse; below this a face cannot hold 68 landmarks.
MIN_FRAME_SIDE = 32


@dataclass(frozen=True)
class NormalisedFrame:
    bgr: np.ndarray  # HxWx3 uint8
    gray: np.ndarray  # HxW uint8
    was_mono: bool


def _to_uint8(frame: np.ndarray, bit_depth: int | None) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        if bit_depth is None:
            # Infer the sensor depth from the data: R10/R12 frames never exceed 2**bits - 1.
            peak = int(frame.max()) if frame.size else 0
            bit_depth = max(8, int(np.ceil(np.log2(peak + 1)))) if peak > 255 else 8
            bit_depth = min(16, bit_depth)
        shift = max(0, bit_depth - 8)
        return (frame >> shift).astype(np.uint8) if shift else np.clip(frame, 0, 255).astype(np.uint8)
    if frame.dtype in (np.float32, np.float64, np.float16):
        if not np.all(np.isfinite(frame)):
            raise FrameFormatError("frame contains NaN or infinite values")
        peak = float(frame.max()) if frame.size else 0.0
        scale = 255.0 if peak <= 1.0 + 1e-6 else 1.0
        return np.clip(frame * scale + 0.5, 0, 255).astype(np.uint8)
    raise FrameFormatError(
        f"unsupported frame dtype {frame.dtype}; expected uint8, uint16 (mono 10-16 bit) or float in [0, 1]"
    )


def normalise_frame(frame: np.ndarray, *, bit_depth: int | None = None, channel_order: str = "bgr") -> NormalisedFrame:
    """Validate and convert a frame. Raises FrameFormatError with a precise reason.

    channel_order: "bgr" (OpenCV), "rgb" (picamera2 RGB888 is BGR in memory, MediaPipe
    users hand RGB), used only for 3/4-channel frames.
    """
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
    frame = np.ascontiguousarray(_to_uint8(frame, bit_depth))
    if frame.ndim == 2:
        gray = frame
        bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        return NormalisedFrame(bgr=bgr, gray=gray, was_mono=True)
    if frame.shape[2] == 4:
        code = cv2.COLOR_BGRA2BGR if channel_order == "bgr" else cv2.COLOR_RGBA2BGR
        bgr = cv2.cvtColor(frame, code)
    elif channel_order == "rgb":
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    else:
        bgr = frame
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return NormalisedFrame(bgr=bgr, gray=gray, was_mono=False)


def enhance_nir(gray: np.ndarray, *, clahe: bool = True, gamma: float | None = None) -> np.ndarray:
    """Optional conditioning for over-exposed IR frames (sunlight through the windscreen)."""
    out = gray
    if gamma is not None and gamma > 0:
        lut = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, lut)
    if clahe:
        out = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(out)
    return out
