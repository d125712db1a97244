"""A network's last linear layer, run in float numpy on the int8 body's dequantised features.

Why: a full-int8 output tensor has 256 levels over its calibrated range. For the temporal
network that was a valence step of ~0.06 (21-29 distinct values over hundreds of frames),
for the AU network a clip at the calibrated maximum (AU12 a constant 2.988). The body
(every convolution) stays int8; its last hidden layer (ReLU features, dequantised to float
by the interpreter) goes through the final Linear / 1x1 conv here, in float64, and the
squashing (sigmoid, softmax, or none for the NIG parameters the caller decodes) follows.
A weighted sum of 32-128 independently rounded features is smooth: no output steps.

The weights travel in the model's manifest as metadata key `edgeaffect.float_head` (copied
from the ONNX export's metadata by the converter), so the .tflite, its manifest and this
code agree by construction; the converter's fidelity gate scores the same head
(edgeaffect_converters.api applies `apply_float_head` to both float and quantised outputs).

Format: {"input": <body output name>, "weight": [[out x in]], "bias": [out],
         "outputs": {<name>: {"slice": [a, b], "activation": "sigmoid"|"softmax"|"none", "scale": s}}}
"""

from __future__ import annotations

from typing import Any

import numpy as np

KEY = "edgeaffect.float_head"


class FloatHead:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.input = str(spec["input"])
        self.weight = np.asarray(spec["weight"], np.float64)
        self.bias = np.asarray(spec["bias"], np.float64)
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"float head: weight {self.weight.shape} / bias {self.bias.shape} do not fit")
        self.outputs = {k: dict(v) for k, v in spec["outputs"].items()}
        for o in self.outputs.values():
            if o.get("activation", "none") not in ("sigmoid", "softmax", "none"):
                raise ValueError(f"float head: unknown activation {o.get('activation')!r}")
        # (name, slice, activation, scale) once, not looked up on every call
        self._plan = [(k, slice(*o["slice"]), o.get("activation", "none"), float(o.get("scale", 1.0))) for k, o in self.outputs.items()]

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, feats: np.ndarray) -> np.ndarray:
        f = np.asarray(feats, np.float64)
        return f @ self.weight.T + self.bias

    def __call__(self, feats: np.ndarray) -> dict[str, np.ndarray]:
        """feats [..., in] -> {name: [..., k]} (float32)."""
        z = self.logits(feats)
        out = {}
        for name, sl, act, scale in self._plan:
            v = z[..., sl]
            if act == "sigmoid":
                v = 1.0 / (1.0 + np.exp(-v))
            elif act == "softmax":
                v = np.exp(v - v.max(-1, keepdims=True))
                v = v / v.sum(-1, keepdims=True)
            out[name] = (v * scale if scale != 1.0 else v).astype(np.float32)
        return out


def float_head(metadata: dict[str, Any]) -> FloatHead | None:
    import json

    spec = metadata.get(KEY)
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = json.loads(spec)
    return FloatHead(spec)


def apply_float_head(metadata: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Body outputs -> head outputs when the model declares a float head, else unchanged."""
    head = float_head(metadata)
    if head is None or head.input not in outputs:
        return outputs
    return head(outputs[head.input])
