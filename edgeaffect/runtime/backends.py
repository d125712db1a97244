"""TFLite interpreter backends, in order of preference.

1. ai-edge-litert (`ai_edge_litert.interpreter`): the maintained LiteRT wheel, x86_64 and
   aarch64, XNNPACK built in. Measured 8-30x faster than tflite-runtime 2.14 on int8 here.
2. tflite-runtime (`tflite_runtime.interpreter`): the legacy slim wheel (numpy<2 only).
3. tensorflow (`tensorflow.lite`): full TensorFlow, e.g. a Jetson image that already has it.

Only the first importable one is used unless a name is forced. Nothing here imports
TensorFlow unless the first two are missing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import BackendUnavailableError

BACKEND_ORDER = ("ai-edge-litert", "tflite-runtime", "tensorflow")
_MODULES = {
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite",
}
_DIST = {"ai-edge-litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime", "tensorflow": "tensorflow"}


@dataclass(frozen=True)
class InterpreterBackend:
    name: str
    module: Any
    version: str

    @property
    def Interpreter(self) -> Any:  # noqa: N802 - mirrors the TFLite API name
        return self.module.Interpreter

    def load_delegate(self, library: str, options: dict[str, Any] | None = None) -> Any:
        fn = getattr(self.module, "load_delegate", None)
        if fn is None and self.name == "tensorflow":
            fn = self.module.experimental.load_delegate
        if fn is None:
            raise BackendUnavailableError(f"backend {self.name} cannot load external delegates")
        return fn(library, options or {})

    @property
    def xnnpack_resolver(self) -> Any:
        """OpResolverType enum value that forces XNNPACK, or None if the backend lacks it."""
        ort = getattr(self.module, "OpResolverType", None)
        if ort is None and self.name == "tensorflow":
            ort = getattr(self.module.experimental, "OpResolverType", None)
        return getattr(ort, "BUILTIN", None) if ort is not None else None

    @property
    def reference_resolver(self) -> Any:
        """Kernels without XNNPACK (BUILTIN_WITHOUT_DEFAULT_DELEGATES), for bit-exact checks."""
        ort = getattr(self.module, "OpResolverType", None)
        if ort is None and self.name == "tensorflow":
            ort = getattr(self.module.experimental, "OpResolverType", None)
        return getattr(ort, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None) if ort is not None else None


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "unknown"


def _try(name: str) -> InterpreterBackend | None:
    try:
        mod = importlib.import_module(_MODULES[name])
    except Exception:
        return None
    return InterpreterBackend(name, mod, _version(_DIST[name]))


def available_backends() -> list[InterpreterBackend]:
    """Every importable backend (importing tensorflow is slow; only done when listed here)."""
    return [b for b in (_try(n) for n in BACKEND_ORDER) if b is not None]


_cache: dict[str | None, InterpreterBackend] = {}


def load_backend(prefer: str | None = None) -> InterpreterBackend:
    """The first importable backend (or `prefer`, which must be importable)."""
    if prefer in _cache:
        return _cache[prefer]
    names = (prefer,) if prefer else BACKEND_ORDER
    for n in names:
        if n not in _MODULES:
            raise BackendUnavailableError(f"unknown backend {n!r}; choose one of {', '.join(BACKEND_ORDER)}")
        b = _try(n)
        if b is not None:
            _cache[prefer] = b
            return b
    if prefer:
        raise BackendUnavailableError(f"backend {prefer!r} is not importable: pip install {_DIST[prefer]}")
    raise BackendUnavailableError(
        "no TFLite interpreter found: pip install ai-edge-litert "
        "(or tflite-runtime on numpy<2, or tensorflow)"
    )


def ops_details(interpreter: Any, *, delegates: bool = True) -> list[dict[str, Any]]:
    """The interpreter's node list in execution order: dicts with op_name, index, inputs, outputs.

    LiteRT, tflite-runtime and tf.lite expose it only as the private `_get_ops_details()`;
    this is the one place that calls it. `delegates=False` drops the DELEGATE nodes a
    delegate (XNNPACK included) adds, leaving the model's own ops. A backend without the
    call raises BackendUnavailableError.
    """
    fn = getattr(interpreter, "_get_ops_details", None)
    if fn is None:
        raise BackendUnavailableError(f"{type(interpreter).__module__}.{type(interpreter).__name__} does not list its ops")
    ops = list(fn())
    return ops if delegates else [o for o in ops if o["op_name"] != "DELEGATE"]
