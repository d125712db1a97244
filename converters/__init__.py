"""ONNX -> TFLite conversion, calibration, fidelity gate, accelerator lint and manifests.

This package is the `[convert]` extra: importing `edgeaffect_converters` itself is cheap and pulls in no
heavy dependency. The device-safe parts (`edgeaffect_converters.inspect_model`, `edgeaffect_converters.lint`) import
only numpy and `edgeaffect.runtime`; everything that needs onnx, onnxruntime, onnx2tf or
TensorFlow (`edgeaffect_converters.api`, `edgeaffect_converters.onnx2tf_route`, `edgeaffect_converters.fidelity`, ...) imports
it when called. See converters/README.md.
"""

__all__ = ["convert", "Budget", "ConversionResult"]


def __getattr__(name: str):  # lazy: `from edgeaffect_converters import convert` without importing TF up front
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
