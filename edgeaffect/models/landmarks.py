"""The project's 68-point landmark network: crop -> points, per-point sigma, validity."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..runtime.runner import ModelRunner
from ..vision.alignment import FaceWindow, crop, invert_affine
from ..vision.grey import GreySource
from ._meta import expect_kind, meta


@dataclass
class LandmarkResult:
    points: np.ndarray  # [68, 2] frame pixels
    sigma: np.ndarray  # [68] frame pixels (isotropic std)
    sigma_norm: np.ndarray  # [68] crop-normalised (scale-free; the temporal model's input)
    validity: float  # probability the crop holds a trackable face
    window: FaceWindow
    #: [2] probability that the subject's right (iBUG 36-41) / left (42-47) eye is closed, or
    #: None for a model without the eye-state output (openpilot's eyesClosedProb, per eye).
    eye_closed: np.ndarray | None = None

    @property
    def typical_sigma(self) -> float:
        """The fit's own uncertainty in one number: the upper median of `sigma_norm` (crop-normalised).

        Held-out photos stay below ~0.03; on a full profile, which the network was never trained
        on, the points collapse into a frontal-looking shape over the cheek and hair and this
        rises to 0.06-0.10 (the tracker's `sigma_keep` / `sigma_acquire`)."""
        return float(np.partition(self.sigma_norm, 34)[34])


class LandmarkModel:
    def __init__(self, runner: ModelRunner, validity_threshold: float = 0.5) -> None:
        expect_kind(runner.manifest, "landmarks")
        self.runner = runner
        self.validity_threshold = validity_threshold
        spec = runner.manifest.inputs[0]
        if len(spec.shape) != 4 or spec.shape[0] != 1 or spec.shape[1] != spec.shape[2] or spec.shape[3] != 1:
            raise ModelError(f"{runner.manifest.file}: landmark model input must be [1,S,S,1] grey NHWC, got {spec.shape}")
        self.size = int(spec.shape[1])
        self.mean_shape = np.asarray(meta(runner.manifest, "edgeaffect.mean_shape"), np.float32).reshape(68, 2)
        names = {o.name for o in runner.manifest.outputs}
        self.has_eyes = "eye_closed" in names

    def run(self, gray: GreySource, window: FaceWindow) -> LandmarkResult:
        m = window.to_crop_matrix(self.size)
        patch = crop(gray, m, self.size)
        out = self.runner.run(patch[None, :, :, None].astype(np.float32) / 255.0)
        pts_crop = (self.mean_shape + out["offsets"].reshape(68, 2)) * self.size
        inv = invert_affine(m)
        pts = pts_crop @ inv[:, :2].T + inv[:, 2]
        sigma_norm = np.exp(np.minimum(np.maximum(out["log_sigma"].reshape(68), -10), 3))  # == np.clip, without its Python wrapper
        validity = 1.0 / (1.0 + math.exp(-min(max(float(out["validity"].reshape(-1)[0]), -60.0), 60.0)))
        eye_closed = None
        if self.has_eyes:
            eye_closed = (1.0 / (1.0 + np.exp(-np.clip(out["eye_closed"].reshape(2), -30, 30)))).astype(np.float32)
        return LandmarkResult(
            points=pts.astype(np.float32),
            sigma=(sigma_norm * window.size).astype(np.float32),
            sigma_norm=sigma_norm.astype(np.float32),
            validity=validity,
            window=window,
            eye_closed=eye_closed,
        )
