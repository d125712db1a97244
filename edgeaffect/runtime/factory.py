"""BaseOptions (what runs where) and the runner factory: the one construction route for model runners.

Like MediaPipe Tasks' two option layers: `BaseOptions` says which model files, which
interpreter backend, how many threads and which compute unit per module; the analyzer's
own options say how the task behaves. `RunnerFactory(base).runner(module)` builds (once)
the runner of a module from them:

* the model file: `model_files[module]` (a .json manifest, its .tflite, or a float .onnx run
  by onnxruntime), else the preferred variant in `models_dir` (default: the shipped models);
* where it runs: `units[module]` (a scheduler ComputeUnit: Edge TPU / Arm NN / GPU delegate
  or ONNX Runtime, each with its CPU fallback and one warning), else LiteRT's XNNPACK on the
  CPU with `threads.get(module, num_threads)` threads;
* `wrappers`, applied in order (timing, recording: edgeaffect.runtime.wrappers).

The scheduler's device plan (edgeaffect.scheduler.plan_runtime) fills `units` and `threads`
from a profile and hands the factory it used to the Analyzer, so every runner, placed or
not, wrapped or not, is built here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..registry import lookup
from .backends import InterpreterBackend, load_backend


class Runner(Protocol):
    """What the model wrappers need: the manifest and float-in, float-out `run`."""

    manifest: Any

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]: ...


#: `(module, runner) -> runner`: a wrapper the factory applies to every runner it builds.
RunnerWrapper = Callable[[str, Any], Any]


@dataclass
class BaseOptions:
    """What runs where: model files, interpreter backend, threads and compute unit per module."""

    models_dir: Path | None = None  # directory of <prefix>_<variant>.tflite + .json; None: the shipped models
    model_files: dict[str, str | Path] = field(default_factory=dict)  # module -> .json / .tflite / float .onnx
    backend: str | None = None  # "ai-edge-litert" | "tflite-runtime" | "tensorflow"; None: first importable
    num_threads: int = 1  # interpreter threads per model on the CPU
    threads: dict[str, int] = field(default_factory=dict)  # module -> threads (overrides num_threads)
    units: dict[str, Any] = field(default_factory=dict)  # module -> compute unit (delegate/ORT); absent: CPU
    wrappers: list[RunnerWrapper] = field(default_factory=list)  # applied in order to every runner


class RunnerFactory:
    """Builds, once per module, the runner BaseOptions describe; records how each one runs."""

    def __init__(self, base: BaseOptions | None = None, *, backend: InterpreterBackend | None = None,
                 warn: bool = True) -> None:
        self.base = base or BaseOptions()
        self.backend = backend or load_backend(self.base.backend)
        self.warn = warn
        self.descriptions: dict[str, str] = {}  # module -> what runs it ("CPU (XNNPACK, 1 thread)", ...)
        self.warnings: dict[str, list[str]] = {}  # module -> delegate fallbacks
        self._built: dict[str, Any] = {}

    def model_path(self, module: str) -> Path:
        """The model file `module` would be loaded from (a ModelError if none)."""
        from ..models import ASSETS, find_model

        name = lookup(module).name
        files = {lookup(k).name: v for k, v in self.base.model_files.items()}
        if name in files:
            return Path(files[name])
        return find_model(Path(self.base.models_dir) if self.base.models_dir else ASSETS, name)

    def threads_for(self, module: str) -> int:
        return int(self.base.threads.get(module, self.base.num_threads))

    def runner(self, module: str) -> Any:
        """The (wrapped) runner of `module`, built on first use."""
        name = lookup(module).name
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    @property
    def built(self) -> dict[str, Any]:
        return dict(self._built)

    def _build(self, module: str) -> Any:
        from .delegates import make_runner
        from .runner import ModelRunner

        path = self.model_path(module)
        threads = self.threads_for(module)
        unit = self.base.units.get(module)
        warns: list[str] = []
        r: Any
        if path.suffix == ".onnx":
            from .onnx_float import OnnxModelAdapter

            r, desc = OnnxModelAdapter(path, lookup(module).kind), "onnxruntime float32 (CPU)"
        elif unit is not None:
            r, desc, warns = make_runner(path, unit, backend=self.backend, num_threads=threads, warn=self.warn)
        else:
            r = ModelRunner(path, num_threads=threads, backend=self.backend)
            desc = f"CPU (XNNPACK, {threads} thread{'s' if threads != 1 else ''})"
        for wrap in self.base.wrappers:
            r = wrap(module, r)
        self.descriptions[module] = desc
        self.warnings[module] = list(warns)
        return r

    def build_all(self, modules: Mapping[str, Any] | list[str]) -> dict[str, Any]:
        return {m: self.runner(m) for m in modules}
