"""Frame conditioning at the capture boundary, from the camera config (NIR gamma / CLAHE).

Over-exposed IR frames (sunlight through a windscreen) get a gamma curve and/or local
contrast equalisation once, here, as the camera config says (`camera.nir.gamma`,
`camera.nir.clahe`), so that the analyzer, the overlay and any recorder see the same
pixels. High-depth mono frames are brought to 8 bits by their declared bit depth first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from .base import Frame, FrameSource, to_uint8


def enhance_nir(gray: np.ndarray, *, clahe: bool = True, gamma: float | None = None) -> np.ndarray:
    """Gamma (> 1 darkens sun-saturated IR, < 1 brightens) then CLAHE on an 8-bit grey image."""
    out = gray
    if gamma is not None and gamma > 0:
        lut = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, lut)
    if clahe:
        out = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(out)
    return out


def wants_conditioning(nir: Any) -> bool:
    return nir is not None and bool(getattr(nir, "clahe", False) or getattr(nir, "gamma", None))


def condition_frame(frame: Frame, nir: Any = None) -> Frame:
    """The frame as the pipeline should see it under `nir` (a NirConfig: clahe, gamma).

    Mono frames become conditioned 8-bit GREY frames; colour frames keep their pixels and
    carry the conditioned luminance in `Frame.gray`. `meta["conditioned"]` records what was
    applied. Without conditioning the frame is returned unchanged.
    """
    if not wants_conditioning(nir) or frame.meta.get("conditioned"):
        return frame
    img = frame.image
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    applied = {"clahe": bool(nir.clahe), "gamma": nir.gamma}
    meta = {**frame.meta, "conditioned": applied}
    if img.ndim == 2:
        g = enhance_nir(to_uint8(img, frame.bit_depth), clahe=bool(nir.clahe), gamma=nir.gamma)
        return replace(frame, image=g, pixel_format="GREY", bit_depth=8, meta=meta, gray=None)
    rgb = frame.channel_order == "rgb"
    code = {3: cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_RGBA2GRAY if rgb else cv2.COLOR_BGRA2GRAY}
    g = cv2.cvtColor(np.ascontiguousarray(to_uint8(img, frame.bit_depth)), code[img.shape[2]])
    return replace(frame, meta=meta, gray=enhance_nir(g, clahe=bool(nir.clahe), gamma=nir.gamma))


class ConditionedSource(FrameSource):
    """Wraps a source; every frame it yields is conditioned once by `condition_frame(frame, nir)`."""

    def __init__(self, inner: FrameSource, nir: Any) -> None:
        self.inner = inner
        self.nir = nir
        self.name = getattr(inner, "name", "source")
        self.is_live = bool(getattr(inner, "is_live", False))

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame | None:
        f = self.inner.read()
        return None if f is None else condition_frame(f, self.nir)

    def close(self) -> None:
        self.inner.close()

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    @property
    def frame_count(self) -> int | None:
        return self.inner.frame_count

    def __iter__(self) -> Iterator[Frame]:
        for f in self.inner:
            yield condition_frame(f, self.nir)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
