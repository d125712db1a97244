"""Interpreter backends, delegates, and manifest-checked model loading."""

from .backends import InterpreterBackend, available_backends, load_backend
from .manifest import Manifest, TensorSpec, load_manifest, sha256_file
from .runner import ModelRunner

__all__ = [
    "InterpreterBackend", "available_backends", "load_backend",
    "Manifest", "TensorSpec", "load_manifest", "sha256_file", "ModelRunner",
]
