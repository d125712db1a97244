"""Conversion errors: one-line messages that say what to do (the CLI prints them, exit code 2)."""

from __future__ import annotations

from edgeaffect.errors import EdgeAffectError, ModelError


class ConvertError(EdgeAffectError):
    """Base class for everything `edgeaffect convert` refuses."""

    exit_code = 2


class OnnxModelError(ConvertError, ModelError):
    """The ONNX file is missing, not ONNX, truncated, has dynamic inputs or unsupported ops."""


class CalibrationError(ConvertError):
    """The calibration source is missing, too small, has NaN/inf or the wrong shape."""


class ToolchainError(ConvertError):
    """A converter tool (onnx2tf, TensorFlow, onnxruntime) is missing or failed."""


def require(module: str, what: str = "conversion") -> None:
    """Fail with an install hint if an optional [convert] dependency is not importable."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ToolchainError(f"{module} is not installed, needed for {what}: pip install 'edgeaffect[convert]'")
