"""Wrapper runners: the same `run(*inputs) -> dict` interface with something added around it.

A wrapper is any `(module, runner) -> runner` callable listed in `BaseOptions.wrappers`; the
runner factory applies them, in order, to every runner it builds, so benchmarks and the
calibration collector observe the real analyzer instead of re-implementing its loop or
patching `runner.run` afterwards.

    timings = RunnerTimings()                      # calls and time inside run() per module
    recorder = InputRecorder({"landmarks", "au"})  # every input fed to those networks
    Analyzer(AnalyzerOptions(base_options=BaseOptions(wrappers=[timings.wrap, recorder.wrap])))
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np


class _Wrapper:
    """Forwards everything but run() to the wrapped runner (manifest, input_shapes, init_ms ...)."""

    def __init__(self, inner: Any, module: str) -> None:
        self.inner = inner
        self.module = module

    @property
    def manifest(self) -> Any:
        return self.inner.manifest

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy/pickle): avoid recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        return self.inner.run(*inputs)


class TimingRunner(_Wrapper):
    """Counts calls and wall time inside the wrapped runner's run() (quantise + invoke + dequantise)."""

    def __init__(self, inner: Any, module: str) -> None:
        super().__init__(inner, module)
        self.count = 0
        self.total_ms = 0.0
        self.enabled = True

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        try:
            return self.inner.run(*inputs)
        finally:
            if self.enabled:
                self.total_ms += (time.perf_counter() - t0) * 1000.0
                self.count += 1

    def reset(self) -> None:
        self.count, self.total_ms = 0, 0.0


class RecordingRunner(_Wrapper):
    """Hands every input tuple to `sink(module, inputs)` before running it (the sink copies what it keeps)."""

    def __init__(self, inner: Any, module: str, sink: Callable[[str, tuple[np.ndarray, ...]], None]) -> None:
        super().__init__(inner, module)
        self.sink = sink

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        self.sink(self.module, inputs)
        return self.inner.run(*inputs)


def find_wrapper(runner: Any, cls: type) -> Any:
    """The first wrapper of type `cls` in a chain of wrappers around a runner, else None."""
    r = runner
    while r is not None:
        if isinstance(r, cls):
            return r
        r = r.__dict__.get("inner") if isinstance(r, _Wrapper) else None
    return None


class RunnerTimings:
    """A TimingRunner per module: pass `.wrap` in BaseOptions.wrappers, read `count` / `ms`."""

    def __init__(self) -> None:
        self.runners: dict[str, TimingRunner] = {}

    def wrap(self, module: str, runner: Any) -> TimingRunner:
        t = TimingRunner(runner, module)
        self.runners[module] = t
        return t

    @property
    def count(self) -> Counter[str]:
        return Counter({m: r.count for m, r in self.runners.items()})

    @property
    def ms(self) -> dict[str, float]:
        return {m: r.total_ms for m, r in self.runners.items()}

    @property
    def enabled(self) -> bool:
        return all(r.enabled for r in self.runners.values())

    @enabled.setter
    def enabled(self, on: bool) -> None:
        for r in self.runners.values():
            r.enabled = on

    def reset(self) -> None:
        for r in self.runners.values():
            r.reset()


class InputRecorder:
    """Keeps the inputs fed to the chosen modules (every `every[module]`-th call, first input tensor)."""

    def __init__(self, modules: Collection[str] | None = None, every: Mapping[str, int] | None = None) -> None:
        self.modules = set(modules) if modules is not None else None
        self.every = dict(every or {})
        self.calls: Counter[str] = Counter()
        self.inputs: dict[str, list[np.ndarray]] = {}
        self.enabled = True

    def wrap(self, module: str, runner: Any) -> Any:
        if self.modules is not None and module not in self.modules:
            return runner
        self.inputs.setdefault(module, [])
        return RecordingRunner(runner, module, self._record)

    def _record(self, module: str, inputs: tuple[np.ndarray, ...]) -> None:
        if not self.enabled:
            return
        n = self.calls[module]
        self.calls[module] += 1
        if n % max(1, self.every.get(module, 1)) == 0:
            x = np.asarray(inputs[0], np.float32)
            self.inputs[module].append(np.array(x[0] if x.ndim and x.shape[0] == 1 else x, copy=True))
