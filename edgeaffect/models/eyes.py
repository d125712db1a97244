"""The project's eye-state network: per-eye closed probability (openpilot's eyesClosedProb).

Input: the two eye patches cut by the landmark network's eye corners
(edgeaffect.vision.eyes.eye_patches: similarity-aligned, the left eye mirrored), normalised
per patch (normalise_eye_patches). Output: one closed logit per patch; the sigmoid runs here
in numpy on the dequantised logit, so the probability stays smooth under int8.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..runtime.runner import ModelRunner
from ..vision.eyes import EYE_PATCH_H, EYE_PATCH_W, eye_patches, normalise_eye_patches
from ._meta import expect_kind


class EyeStateModel:
    def __init__(self, runner: ModelRunner) -> None:
        expect_kind(runner.manifest, "eyes")
        self.runner = runner
        spec = runner.manifest.inputs[0]
        if tuple(spec.shape) != (1, EYE_PATCH_H, EYE_PATCH_W, 1):
            raise ModelError(f"{runner.manifest.file}: eye model input must be [1,{EYE_PATCH_H},{EYE_PATCH_W},1] grey NHWC, got {spec.shape}")

    def infer(self, patches: np.ndarray) -> np.ndarray:
        """[2] closed probabilities for [2, H, W] uint8 patches (subject's right, mirrored left)."""
        x = normalise_eye_patches(patches)
        logits = np.array([float(self.runner.run(x[k][None, :, :, None])["closed_logit"].reshape(-1)[0]) for k in range(len(x))])
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.float32)

    def run(self, gray: np.ndarray, points68: np.ndarray) -> np.ndarray:
        """[2] probability that the subject's right (iBUG 36-41) / left (42-47) eye is closed."""
        return self.infer(eye_patches(gray, points68))
