"""A float ONNX model run by onnxruntime behind ModelRunner's interface (the [convert] extra).

Used where a network has no TFLite file yet: calibration of a model converted for the first
time runs the pipeline with the float ONNX networks (`BaseOptions(model_files={module:
"x.onnx"})`), and the fidelity gate uses it as the reference. The manifest is built from the
ONNX graph and its `edgeaffect.*` metadata; inputs are NHWC as for the TFLite files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .manifest import Manifest, TensorSpec


class OnnxModelAdapter:
    """Runs a float ONNX model with onnxruntime behind ModelRunner's interface (NHWC in)."""

    def __init__(self, path: str | Path, kind: str) -> None:
        import onnx
        import onnxruntime as ort

        self.path = Path(path)
        model = onnx.load(str(self.path))
        meta = {p.key: p.value for p in model.metadata_props}
        self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        shape = [int(d) for d in inp.shape]
        self._nchw = len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)
        tfl_shape = [shape[0], shape[2], shape[3], shape[1]] if self._nchw else shape
        outs = [TensorSpec(o.name, o.name, [int(d) for d in o.shape], "float32", onnx_index=i)
                for i, o in enumerate(self.session.get_outputs())]
        self.manifest = Manifest(
            name=self.path.stem, kind=meta.get("edgeaffect.kind", kind), variant="onnx-float32", file=self.path.name,
            sha256="", inputs=[TensorSpec(inp.name, inp.name, tfl_shape, "float32", "NHWC" if len(shape) == 4 else "")],
            outputs=outs, metadata=meta,
        )
        self._in = inp.name

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(s.shape) for s in self.manifest.inputs]

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(inputs[0], np.float32)
        if self._nchw:
            x = x.transpose(0, 3, 1, 2)
        names = [o.name for o in self.manifest.outputs]
        return dict(zip(names, self.session.run(names, {self._in: x}), strict=True))
