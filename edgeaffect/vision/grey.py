"""The grey image of a colour frame, converted only where a crop reads it.

The landmark, eye and AU networks see small warped crops of the grey frame: on a 640x360
frame with one face they read ~10 % of its pixels, yet converting the whole BGR frame cost
~50 us per frame, the largest single OpenCV call left on the hot path (and it ran on frames
with no face at all, where only the detector, which reads the BGR image, is needed).
`GreyOnDemand` converts the rectangle a warp will sample, and nothing twice: the pixels it
hands out are exactly `cv2.cvtColor(bgr, COLOR_BGR2GRAY)`'s, so every crop is byte-identical
to a crop of the fully converted frame (tested with a poisoned buffer). `.full` converts the
rest when something needs the whole image (NIR enhancement, a user hook).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["GreyOnDemand", "GreySource", "footprint_of", "grey_for_warp", "source_bounds", "warp_footprint"]

#: Source pixels a bilinear warp reads around a mapped output position: the pixel, its
#: right/lower neighbour, plus one pixel for OpenCV's 1/32-px fixed-point coordinates.
_READ_BEFORE, _READ_AFTER = 1, 3


def source_bounds(m: np.ndarray | list, out_w: int, out_h: int) -> tuple[float, float, float, float] | None:
    """(x_min, y_min, x_max, y_max): the frame positions of a `cv2.warpAffine(., m, (out_w,
    out_h))` crop's corner pixels (`m` maps frame -> crop, as warpAffine takes it); an affine
    map's extremes are at the corners, so they bound everything the warp reads. None for a
    singular or non-finite `m`."""
    (a, b, c), (d, e, f) = m.tolist() if isinstance(m, np.ndarray) else m
    det = a * e - b * d
    if det == 0.0 or not math.isfinite(det):
        return None
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    ic, if_ = -(ia * c + ib * f), -(id_ * c + ie * f)
    u1, v1 = out_w - 1.0, out_h - 1.0
    xs = (ic, ia * u1 + ic, ib * v1 + ic, ia * u1 + ib * v1 + ic)
    ys = (if_, id_ * u1 + if_, ie * v1 + if_, id_ * u1 + ie * v1 + if_)
    out = (min(xs), min(ys), max(xs), max(ys))
    return out if all(map(math.isfinite, out)) else None


def footprint_of(bounds: tuple[float, float, float, float] | None, img_w: int, img_h: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end-exclusive, clamped to the image and never empty: every source
    pixel a bilinear warp with these `source_bounds` can read, for the constant and the
    replicated border alike (a replicated read outside the image is the clamped pixel, which
    the clamped rectangle holds). The whole image when the bounds are unknown."""
    if bounds is None:
        return 0, 0, img_w, img_h
    lo_x, lo_y, hi_x, hi_y = bounds
    x0 = min(max(math.floor(lo_x) - _READ_BEFORE, 0), img_w - 1)
    y0 = min(max(math.floor(lo_y) - _READ_BEFORE, 0), img_h - 1)
    x1 = max(min(math.floor(hi_x) + _READ_AFTER, img_w), x0 + 1)
    y1 = max(min(math.floor(hi_y) + _READ_AFTER, img_h), y0 + 1)
    return x0, y0, x1, y1


def warp_footprint(m: np.ndarray | list, out_w: int, out_h: int, img_w: int, img_h: int) -> tuple[int, int, int, int]:
    """`footprint_of(source_bounds(m, out_w, out_h), img_w, img_h)`."""
    return footprint_of(source_bounds(m, out_w, out_h), img_w, img_h)


#: Slack around the previous frame's footprint in `GreyOnDemand.expect` (a moving face's crops
#: shift by a few pixels per frame; each pixel of slack on a 60-100 px face costs less than a
#: second conversion call).
HINT_PAD_PX, HINT_PAD_FRACTION = 2, 0.04


class GreyOnDemand:
    """Grey image of one BGR frame, filled rectangle by rectangle as crops need it.

    The buffer is frame-sized, so warps keep their frame-coordinate matrices and border
    behaviour; only the converted rectangle (`converted`, growing as a bounding box) is ever
    read. Not thread-safe: one frame is processed by one thread at a time.
    """

    __slots__ = ("_bgr", "_buf", "_box", "_full", "_hint", "_asked")

    def __init__(self, bgr: np.ndarray, *, _buffer: np.ndarray | None = None) -> None:
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f"GreyOnDemand needs an HxWx3 uint8 BGR image, got {bgr.shape} {bgr.dtype}")
        self._bgr = bgr
        # _buffer: tests pass a poisoned buffer to prove no unconverted pixel is read
        self._buf = np.empty(bgr.shape[:2], np.uint8) if _buffer is None else _buffer
        self._box: tuple[int, int, int, int] | None = None
        self._full = False
        self._hint: tuple[int, int, int, int] | None = None
        self._asked: tuple[int, int, int, int] | None = None  # bounding box of the requests (without the hint)

    @property
    def asked(self) -> tuple[int, int, int, int] | None:
        """Bounding box of what the crops asked for on this frame (the next frame's `expect`);
        unlike `converted`, it does not include the hint, so it cannot grow frame after frame."""
        return self._asked

    def expect(self, box: tuple[int, int, int, int] | None) -> None:
        """A guess of what the crops will read (the previous frame's `asked` while a face is
        tracked, plus a little slack): the first conversion takes it in too, so the later crops find their pixels
        converted instead of adding thin strips one call each. Only speed depends on it."""
        self._hint = box

    @property
    def shape(self) -> tuple[int, int]:
        return self._buf.shape  # type: ignore[return-value]

    @property
    def converted(self) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) already converted, end-exclusive; None before the first crop."""
        return self._box

    @property
    def full(self) -> np.ndarray:
        """The whole grey image (converts what is still missing, once)."""
        if not self._full:
            h, w = self._buf.shape
            self._fill((0, 0, w, h))
            self._full = True
        return self._buf

    def covering(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """The frame-sized buffer with at least `box` (x0, y0, x1, y1) converted."""
        a = self._asked
        self._asked = box if a is None else (min(a[0], box[0]), min(a[1], box[1]), max(a[2], box[2]), max(a[3], box[3]))
        if not self._full:
            self._fill(box)
        return self._buf

    def for_warp(self, m: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
        """The buffer, converted wherever `cv2.warpAffine(., m, (out_w, out_h))` reads."""
        if self._full:
            return self._buf
        h, w = self._buf.shape
        return self.covering(warp_footprint(m, out_w, out_h, w, h))

    def _fill(self, box: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = box
        old = self._box
        if old is None:
            if self._hint is not None:
                h, w = self._buf.shape
                hx0, hy0, hx1, hy1 = self._hint
                pad = HINT_PAD_PX + int(HINT_PAD_FRACTION * max(hx1 - hx0, hy1 - hy0))  # the face moves a little
                hx0, hy0, hx1, hy1 = hx0 - pad, hy0 - pad, hx1 + pad, hy1 + pad
                x0, y0 = max(min(x0, hx0), 0), max(min(y0, hy0), 0)
                x1, y1 = min(max(x1, hx1), w), min(max(y1, hy1), h)
            self._convert(x0, y0, x1, y1)
            self._box = (x0, y0, x1, y1)
            return
        ox0, oy0, ox1, oy1 = old
        if ox0 <= x0 and oy0 <= y0 and x1 <= ox1 and y1 <= oy1:
            return
        # grow the converted box to the bounding box of both: convert the (up to four)
        # strips around the old box, never a pixel twice
        nx0, ny0, nx1, ny1 = min(x0, ox0), min(y0, oy0), max(x1, ox1), max(y1, oy1)
        if ny0 < oy0:
            self._convert(nx0, ny0, nx1, oy0)
        if oy1 < ny1:
            self._convert(nx0, oy1, nx1, ny1)
        if nx0 < ox0:
            self._convert(nx0, oy0, ox0, oy1)
        if ox1 < nx1:
            self._convert(ox1, oy0, nx1, oy1)
        self._box = (nx0, ny0, nx1, ny1)

    def _convert(self, x0: int, y0: int, x1: int, y1: int) -> None:
        cv2.cvtColor(self._bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY, dst=self._buf[y0:y1, x0:x1])


#: What the crop functions accept as their grey image: a whole grey frame, or one converted on demand.
GreySource = np.ndarray | GreyOnDemand


def grey_for_warp(image: GreySource, m: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """The array to hand `cv2.warpAffine(., m, (out_w, out_h))`: `image` itself, or the
    on-demand buffer with the warp's footprint converted."""
    if isinstance(image, GreyOnDemand):
        return image.for_warp(m, out_w, out_h)
    return image
