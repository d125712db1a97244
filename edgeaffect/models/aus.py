"""The project's Action Unit network: 5-point aligned crop -> 15 AU intensities in [0, 5]
and, from the same body, expression probabilities (edgeaffect.constants.EXPRESSIONS).

Models with a float head (manifest metadata `edgeaffect.float_head`, see _head.py) output
their last hidden layer from the int8 body; the final linear layer, 5*sigmoid and softmax
run here in float. Older models with an `aus` output (no expression) still load."""

from __future__ import annotations

import numpy as np

from ..constants import AU_NAMES, EXPRESSIONS
from ..errors import ModelError
from ..runtime.runner import ModelRunner
from ..vision.alignment import au_crop_matrix, crop
from ..vision.grey import GreySource
from ._head import float_head
from ._meta import expect_kind, meta


class AUModel:
    def __init__(self, runner: ModelRunner) -> None:
        expect_kind(runner.manifest, "au")
        self.runner = runner
        spec = runner.manifest.inputs[0]
        if len(spec.shape) != 4 or spec.shape[3] != 1:
            raise ModelError(f"{runner.manifest.file}: AU model input must be [1,S,S,1] grey NHWC, got {spec.shape}")
        self.size = int(spec.shape[1])
        names = tuple(meta(runner.manifest, "edgeaffect.au_names", list(AU_NAMES)))
        if names != AU_NAMES:
            raise ModelError(f"{runner.manifest.file}: AU order {names} differs from edgeaffect's {AU_NAMES}")
        try:
            self.head = float_head(runner.manifest.metadata)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{runner.manifest.file}: bad edgeaffect.float_head metadata ({e}); re-convert the model") from None
        self.has_expression = self.head is not None and "expression" in self.head.outputs
        if self.has_expression:
            expr = tuple(meta(runner.manifest, "edgeaffect.expressions", list(EXPRESSIONS)))
            if expr != EXPRESSIONS:
                raise ModelError(f"{runner.manifest.file}: expression order {expr} differs from edgeaffect's {EXPRESSIONS}")

    def crop(self, gray: GreySource, points68: np.ndarray, matrix112: np.ndarray | None = None) -> np.ndarray:
        """`matrix112`: au_crop_matrix(points68, 112) if already computed (rescaled here)."""
        if matrix112 is None:
            m = au_crop_matrix(points68, self.size)
        else:
            m = matrix112 * (self.size / 112.0)
        return crop(gray, m, self.size)

    def run(self, gray: GreySource, points68: np.ndarray, matrix112: np.ndarray | None = None) -> np.ndarray:
        return self.infer(self.crop(gray, points68, matrix112))

    def run_all(self, gray: GreySource, points68: np.ndarray, matrix112: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(AU intensities, expression probabilities or None) for one face."""
        return self.infer_all(self.crop(gray, points68, matrix112))

    def infer(self, patch: np.ndarray) -> np.ndarray:
        """AU intensities for an already aligned uint8 crop (see `crop`)."""
        return self.infer_all(patch)[0]

    def infer_all(self, patch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(AU intensities [15], expression probabilities [7] or None) for one aligned crop."""
        out = self.runner.run(patch[None, :, :, None].astype(np.float32) / 255.0)
        if self.head is not None:
            out = self.head(out[self.head.input].reshape(-1))
        expr = out["expression"].reshape(-1).astype(np.float32) if "expression" in out else None
        return np.minimum(np.maximum(out["aus"].reshape(-1), 0.0), 5.0).astype(np.float32), expr  # == np.clip
