"""ONNX -> TFLite conversion, calibration, fidelity gate, accelerator lint and manifests.

This package is the `[convert]` extra: importing `converters` itself is cheap and pulls in no
heavy dependency. The device-safe parts (`converters.inspect_model`, `converters.lint`) import
only numpy and `edgeaffect.runtime`; everything that needs onnx, onnxruntime, onnx2tf or
TensorFlow (`converters.api`, `converters.onnx2tf_route`, `converters.fidelity`, ...) imports
it when called. See converters/README.md.
"""

__all__ = ["convert", "Budget", "ConversionResult"]


def __getattr__(name: str):  # lazy: `from converters import convert` without importing TF up front
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
