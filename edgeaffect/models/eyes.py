"""The project's eye network: per-eye closed probability (openpilot's eyesClosedProb) and, when the
model has the output, the eye's refined contour (MediaPipe's face mesh + eye refinement split).

Input: the two eye patches cut by the landmark network's eye corners
(edgeaffect.vision.eyes.eye_patches: similarity-aligned, the left eye mirrored), normalised
per patch (normalise_eye_patches). Output per patch: one closed logit and, for an eye
refinement model, `eyelids`: the six iBUG contour points in patch pixels (EYE_CONTOURS order),
mapped back to the frame here (float64, eyelids_to_frame). Models with a float head (manifest
metadata `edgeaffect.float_head`, _head.py) output the int8 body's features and the last layer
runs here; older models output `closed_logit` directly (no points: today's behaviour). The
sigmoid runs in numpy on the dequantised logit, so the probability stays smooth under int8.

One invoke per eye: a batch of 2 would make the input [2, 24, 40, 1], four non-unit dimensions,
which the Edge TPU does not take (converters/lint.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..runtime.runner import ModelRunner
from ..vision.eyes import (
    EYE_PATCH_H,
    EYE_PATCH_W,
    eye_patch_matrices,
    eye_patches,
    eyelids_to_frame,
    normalise_eye_patches,
)
from ..vision.grey import GreySource
from ._head import float_head
from ._meta import expect_kind


@dataclass
class EyeRefinement:
    closed: np.ndarray  # [2] closed probability of the subject's right (iBUG 36-41) / left (42-47) eye
    eyelids: np.ndarray | None = None  # [12, 2] float64 frame px of iBUG 36..47, or None (no point output)


class EyeStateModel:
    def __init__(self, runner: ModelRunner) -> None:
        expect_kind(runner.manifest, "eyes")
        self.runner = runner
        spec = runner.manifest.inputs[0]
        if tuple(spec.shape) != (1, EYE_PATCH_H, EYE_PATCH_W, 1):
            raise ModelError(f"{runner.manifest.file}: eye model input must be [1,{EYE_PATCH_H},{EYE_PATCH_W},1] grey NHWC, got {spec.shape}")
        try:
            self.head = float_head(runner.manifest.metadata)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{runner.manifest.file}: bad edgeaffect.float_head metadata ({e}); re-convert the model") from None
        outs = set(self.head.outputs) if self.head is not None else {o.name for o in runner.manifest.outputs}
        if "closed_logit" not in outs:
            raise ModelError(f"{runner.manifest.file}: eye model has no closed_logit output (has {sorted(outs)})")
        #: the model refines the eye contour (an `eyelids` output of 12 values per eye)
        self.has_eyelids = "eyelids" in outs

    def infer_all(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(closed probabilities [2], contour points [2, 6, 2] in patch px or None) for
        [2, H, W] uint8 patches (subject's right, mirrored left)."""
        x = normalise_eye_patches(patches)
        n = len(x)
        outs = [self.runner.run(x[k][None, :, :, None]) for k in range(n)]
        if self.head is not None:  # both eyes' features through the float head at once
            res = self.head(np.concatenate([o[self.head.input].reshape(1, -1) for o in outs]))  # == np.stack, without its wrapper
            logits = res["closed_logit"].reshape(n).astype(np.float64)
        else:
            res = {"eyelids": np.stack([o["eyelids"] for o in outs])} if self.has_eyelids else {}
            logits = np.array([float(o["closed_logit"].reshape(-1)[0]) for o in outs])
        prob = (1.0 / (1.0 + np.exp(-np.minimum(np.maximum(logits, -30.0), 30.0)))).astype(np.float32)  # == np.clip
        lids = res["eyelids"].reshape(n, 6, 2).astype(np.float64) if self.has_eyelids else None
        return prob, lids

    def infer(self, patches: np.ndarray) -> np.ndarray:
        """[2] closed probabilities for [2, H, W] uint8 patches (subject's right, mirrored left)."""
        return self.infer_all(patches)[0]

    def refine(self, gray: GreySource, points68: np.ndarray) -> EyeRefinement:
        """Closed probabilities and (for a refinement model) iBUG 36..47 in frame pixels."""
        m = eye_patch_matrices(points68)
        prob, lids = self.infer_all(eye_patches(gray, points68, m))
        if lids is None:
            return EyeRefinement(prob)
        return EyeRefinement(prob, eyelids_to_frame(lids, m))

    def run(self, gray: GreySource, points68: np.ndarray) -> np.ndarray:
        """[2] probability that the subject's right (iBUG 36-41) / left (42-47) eye is closed."""
        return self.infer(eye_patches(gray, points68))
