"""Hardware delegates from a device profile, each with a CPU fallback and one clear warning.

A compute unit (see `edgeaffect.scheduler.placement.ComputeUnit`) has a `kind`:

=============  ==========================================  =====================================
kind           what runs the model                         needs
=============  ==========================================  =====================================
cpu, xnnpack   LiteRT's built-in XNNPACK (no delegate)      nothing; `threads` = num_threads
edgetpu        Coral Edge TPU external delegate             libedgetpu.so.1 + `*_edgetpu.tflite`
armnn          Arm NN delegate (CpuAcc = NEON, GpuAcc =     libarmnnDelegate.so
               Mali GPU via OpenCL)
gpu            TFLite GPU delegate (OpenCL/OpenGL ES)       libtensorflowlite_gpu_delegate.so
onnxruntime    ONNX Runtime (TensorRT / CUDA / CPU          onnxruntime(-gpu) + the model's .onnx
               execution providers), Jetson path
=============  ==========================================  =====================================

Anything missing degrades to XNNPACK on the CPU with exactly one warning per cause and
process (`DelegateFallbackWarning`, also logged), naming the library/file that was missing
and what to install. A library that exists but is not a TFLite delegate (no
`tflite_plugin_create_delegate` symbol, not an ELF shared object, empty file) is checked
with ctypes *before* handing it to the interpreter, whose own failure path is noisy.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DelegateError, ModelError

log = logging.getLogger("edgeaffect.delegates")

#: Default library per delegate kind.
DEFAULT_LIBRARIES: dict[str, str] = {
    "edgetpu": "libedgetpu.so.1",
    "armnn": "libarmnnDelegate.so",
    "gpu": "libtensorflowlite_gpu_delegate.so",
}
INSTALL_HINTS: dict[str, str] = {
    "edgetpu": "install libedgetpu1-std from Coral's apt repository and plug in the Edge TPU",
    "armnn": "install Arm NN's delegate (e.g. the ArmNN release tarball or libarmnn-delegate) and put it on LD_LIBRARY_PATH",
    "gpu": "build/install libtensorflowlite_gpu_delegate.so for this LiteRT version (OpenCL or GLES)",
}
CPU_KINDS = ("cpu", "xnnpack")
DELEGATE_KINDS = tuple(DEFAULT_LIBRARIES)
ORT_KINDS = ("onnxruntime",)
UNIT_KINDS = CPU_KINDS + DELEGATE_KINDS + ORT_KINDS
DEFAULT_ORT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class DelegateFallbackWarning(RuntimeWarning):
    """A delegate/provider could not be used; the module runs on the CPU instead."""


@dataclass(frozen=True, eq=False)
class DelegateSpec:
    """A `[delegates.<name>]` entry of a profile: which library and which options."""

    name: str
    kind: str  # edgetpu | armnn | gpu | onnxruntime
    library: str = ""  # bare soname (searched) or a path; unused for onnxruntime
    options: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- libraries
@lru_cache(maxsize=1)
def _ldconfig_cache() -> dict[str, str]:
    out: dict[str, str] = {}
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            txt = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in txt.splitlines()[1:]:
            name, _, path = line.strip().partition(" => ")
            if path:
                out.setdefault(name.split(" ")[0], path.strip())
        break
    return out


def library_search_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    m = platform.machine()
    for d in (
        f"/usr/lib/{m}-linux-gnu", f"/lib/{m}-linux-gnu", "/usr/local/lib", "/usr/lib", "/lib",
        "/usr/lib/aarch64-linux-gnu/tegra", "/opt/armnn/lib", "/usr/local/lib/armnn",
    ):
        dirs.append(Path(d))
    return dirs


def find_shared_library(name: str) -> Path | None:
    """Locate a shared library by path or soname the way dlopen would (roughly); None if absent."""
    if not name:
        return None
    if "/" in name:
        p = Path(name).expanduser()
        return p if p.exists() else None
    for d in library_search_dirs():
        p = d / name
        if p.exists():
            return p
    hit = _ldconfig_cache().get(name)
    return Path(hit) if hit and Path(hit).exists() else None


def check_delegate_library(path: Path) -> str | None:
    """None if `path` looks like a TFLite external delegate, else the reason it is not."""
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"cannot stat it ({e.strerror})"
    if size == 0:
        return "it is an empty file"
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                return "it is not an ELF shared library"
    except OSError as e:
        return f"cannot read it ({e.strerror})"
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        return f"dlopen failed ({e})"
    if not hasattr(lib, "tflite_plugin_create_delegate"):
        return "it is a shared library but not a TFLite external delegate (no tflite_plugin_create_delegate symbol)"
    return None


# ----------------------------------------------------------------------------- warnings
_warned: set[str] = set()


def _fallback(message: str, warn: bool) -> str:
    """Emit `message` once per process (warnings + logging); always return it."""
    if warn and message not in _warned:
        _warned.add(message)
        log.warning(message)
        warnings.warn(message, DelegateFallbackWarning, stacklevel=3)
    return message


def reset_warnings() -> None:
    """Forget which fallbacks were already reported (tests)."""
    _warned.clear()


# ----------------------------------------------------------------------------- model variants
def edgetpu_variant(model_path: str | Path) -> Path:
    """`x.tflite` -> `x_edgetpu.tflite` (what `edgetpu_compiler x.tflite` writes)."""
    p = Path(model_path)
    if p.stem.endswith("_edgetpu"):
        return p
    return p.with_name(p.stem + "_edgetpu" + p.suffix)


def _unit_fields(unit: Any) -> tuple[str, str, int, DelegateSpec | None]:
    if isinstance(unit, dict):
        d = unit.get("delegate")
        if isinstance(d, dict):
            d = DelegateSpec(d.get("name", unit.get("kind", "?")), unit.get("kind", "cpu"), d.get("library", ""),
                             dict(d.get("options", {})))
        return str(unit.get("name", unit.get("kind", "cpu"))), str(unit.get("kind", "cpu")), int(unit.get("threads", 1)), d
    return str(unit.name), str(unit.kind), int(getattr(unit, "threads", 1) or 1), getattr(unit, "delegate", None)


def make_delegates(
    unit_spec: Any, backend: Any = None, *, model_path: str | Path | None = None, warn: bool = True
) -> tuple[list[Any], str, list[str]]:
    """Delegate objects for one compute unit: `(delegates, description, warnings)`.

    `unit_spec`: a ComputeUnit (name, kind, threads, delegate: DelegateSpec | None) or an
    equivalent dict. `backend`: an `InterpreterBackend` (default `load_backend()`).
    `model_path`: for the Edge TPU, the CPU model whose `*_edgetpu.tflite` variant must exist.
    On any failure the list is empty (= XNNPACK on `threads` CPU threads) and the warning,
    emitted once per process, is also returned.
    """
    name, kind, threads, spec = _unit_fields(unit_spec)
    cpu_desc = f"CPU (XNNPACK, {threads} thread{'s' if threads != 1 else ''})"
    if kind in CPU_KINDS:
        return [], cpu_desc, []
    if kind in ORT_KINDS:
        return [], "ONNX Runtime unit (not a TFLite delegate: use make_runner)", []
    if kind not in DELEGATE_KINDS:
        raise DelegateError(f"unit {name!r}: unknown kind {kind!r} (expected one of {', '.join(UNIT_KINDS)})")
    lib = (spec.library if spec else "") or DEFAULT_LIBRARIES[kind]
    options = dict(spec.options) if spec else {}
    label = {"edgetpu": "Edge TPU", "armnn": "Arm NN", "gpu": "GPU"}[kind]

    def fall(reason: str) -> tuple[list[Any], str, list[str]]:
        msg = _fallback(f"unit {name!r}: {label} delegate unavailable: {reason}; running on {cpu_desc} instead", warn)
        return [], cpu_desc + f" [fallback from {kind}]", [msg]

    if kind == "edgetpu" and model_path is not None:
        variant = edgetpu_variant(model_path)
        if not variant.exists():
            return fall(f"the Edge TPU needs the compiled model {variant.name} (run `edgetpu_compiler "
                        f"{Path(model_path).name}`), which is not at {variant.parent}")
    path = find_shared_library(lib)
    if path is None:
        return fall(f"library {lib} not found ({INSTALL_HINTS[kind]})")
    bad = check_delegate_library(path)
    if bad:
        return fall(f"{path} exists but {bad}")
    if backend is None:
        from .backends import load_backend

        backend = load_backend()
    try:
        d = backend.load_delegate(str(path), {k: str(v) for k, v in options.items()})
    except Exception as e:  # noqa: BLE001 - any failure of a vendor library means "use the CPU"
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return fall(f"{path} failed to create a delegate ({first}; device missing or options {options} wrong?)")
    opt = ", ".join(f"{k}={v}" for k, v in options.items())
    return [d], f"{label} delegate {path}" + (f" ({opt})" if opt else ""), []


# ----------------------------------------------------------------------------- ONNX Runtime
class OnnxRuntimeRunner:
    """ModelRunner-compatible wrapper over onnxruntime (Jetson: TensorRT/CUDA providers).

    `run(*inputs) -> {output_name: float32 array}`, `input_shapes`, `init_ms`, `providers`
    (those actually in use). Providers that this onnxruntime build lacks are dropped with one
    warning; CPUExecutionProvider is always last. onnxruntime is imported lazily.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        providers: Sequence[str] = DEFAULT_ORT_PROVIDERS,
        provider_options: dict[str, dict[str, Any]] | None = None,
        num_threads: int = 1,
        output_names: Sequence[str] | None = None,
        warn: bool = True,
    ) -> None:
        try:
            import onnxruntime as ort  # lazy: not a runtime dependency
        except ImportError:
            raise DelegateError(
                "onnxruntime is not installed (on a Jetson: the onnxruntime-gpu wheel for your JetPack)"
            ) from None
        p = Path(model_path)
        if not p.exists():
            raise ModelError(f"ONNX model {p} not found")
        available = set(ort.get_available_providers())
        wanted = [x for x in providers if x != "CPUExecutionProvider"]
        use = [x for x in wanted if x in available]
        missing = [x for x in wanted if x not in available]
        if missing:
            _fallback(f"onnxruntime {ort.__version__} lacks {', '.join(missing)} (has {', '.join(sorted(available))}); "
                      f"using {', '.join(use + ['CPUExecutionProvider'])}", warn)
        use.append("CPUExecutionProvider")
        popts = provider_options or {}
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(num_threads))
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        t0 = time.perf_counter()
        try:
            self.session = ort.InferenceSession(
                str(p), sess_options=so, providers=use, provider_options=[dict(popts.get(x, {})) for x in use]
            )
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"{p}: onnxruntime rejected the model ({str(e).splitlines()[0]})") from None
        self.init_ms = (time.perf_counter() - t0) * 1000
        self.path = p
        self.providers = list(self.session.get_providers())
        self._inputs = self.session.get_inputs()
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._names = list(output_names) if output_names else self._outputs

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(d) if isinstance(d, int) else 1 for d in i.shape) for i in self._inputs]

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise ModelError(f"{self.path.name}: expected {len(self._inputs)} inputs, got {len(inputs)}")
        feed = {i.name: np.asarray(x, dtype=np.float32) for i, x in zip(self._inputs, inputs, strict=True)}
        outs = self.session.run(self._outputs, feed)
        return {n: np.asarray(y, dtype=np.float32) for n, y in zip(self._names, outs, strict=False)}


def _onnx_for(manifest: Any) -> Path | None:
    """The .onnx a TFLite model was converted from, if it sits beside it or the manifest names it."""
    base = manifest.tflite_path
    cands = [base.with_suffix(".onnx")]
    src = (manifest.source or {}).get("onnx") or (manifest.source or {}).get("path")
    if src:
        s = Path(src)
        cands.append(s if s.is_absolute() else base.parent / s)
    return next((c for c in cands if c.exists()), None)


def make_runner(
    model: str | Path | Any,
    unit_spec: Any,
    *,
    backend: Any = None,
    num_threads: int | None = None,
    warn: bool = True,
) -> tuple[Any, str, list[str]]:
    """A runner for `model` (manifest path or Manifest) on a compute unit, with fallbacks.

    Returns `(runner, description, warnings)`; the runner has `run(*inputs) -> dict`.
    Edge TPU: uses the `*_edgetpu.tflite` variant (with its own manifest if present, else
    the CPU manifest's signature without the sha256 check). onnxruntime: uses the .onnx the
    model was converted from. A delegate that loads but then rejects the model falls back to
    the CPU with a warning as well.
    """
    from .manifest import Manifest, load_manifest
    from .runner import ModelRunner

    name, kind, threads, spec = _unit_fields(unit_spec)
    threads = num_threads or threads
    m = model if isinstance(model, Manifest) else load_manifest(model)
    warns: list[str] = []
    if kind in ORT_KINDS:
        onnx = _onnx_for(m)
        if onnx is None:
            warns.append(_fallback(f"unit {name!r}: ONNX Runtime needs {m.tflite_path.with_suffix('.onnx').name} "
                                   f"beside {m.file}; running the TFLite model on the CPU instead", warn))
        else:
            opts = dict(spec.options) if spec else {}
            provs = opts.pop("providers", DEFAULT_ORT_PROVIDERS)
            if isinstance(provs, str):
                provs = [x.strip() for x in provs.split(",") if x.strip()]
            try:
                r = OnnxRuntimeRunner(onnx, providers=provs, provider_options=opts.get("provider_options"),
                                      num_threads=threads, output_names=[o.name for o in m.outputs], warn=warn)
                return r, f"ONNX Runtime {onnx.name} on {', '.join(r.providers)}", warns
            except (DelegateError, ModelError) as e:
                warns.append(_fallback(f"unit {name!r}: {e}; running the TFLite model on the CPU instead", warn))
        kind = "cpu"
    target = m
    if kind == "edgetpu":
        variant = edgetpu_variant(m.tflite_path)
        if variant.exists():
            vm = variant.with_suffix(".json")
            if vm.exists():
                target = load_manifest(vm)
            else:
                import dataclasses

                target = dataclasses.replace(m, file=variant.name)
    dels, desc, w = make_delegates({"name": name, "kind": kind, "threads": threads,
                                    "delegate": _spec_dict(spec)}, backend, model_path=m.tflite_path, warn=warn)
    warns += w
    if not dels:
        target = m
    try:
        r = ModelRunner(target, num_threads=threads, backend=backend, delegates=dels,
                        verify_sha256=target is m)
        return r, desc, warns
    except ModelError as e:
        if not dels:
            raise
        warns.append(_fallback(f"unit {name!r}: {desc} rejected {target.file} ({e}); running on the CPU instead", warn))
        r = ModelRunner(m, num_threads=threads, backend=backend)
        return r, f"CPU (XNNPACK, {threads} threads) [fallback from {kind}]", warns


def _spec_dict(spec: DelegateSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {"name": spec.name, "library": spec.library, "options": dict(spec.options)}
