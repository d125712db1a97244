"""Per-module benchmark in the style of LiteRT's `benchmark_model`.

For each model (detector, landmarks, au, temporal), each thread count and each delegate:

* `load_ms`: ModelRunner construction (manifest, sha256 check, interpreter, allocate);
  `init_ms`: interpreter creation + allocate_tensors only (benchmark_model's "Init");
* `first_inference_ms`, then warm-up runs (at least `warmup_runs` and `warmup_min_s`);
* timed runs (at least `num_runs` and `min_s`, at most `max_s`): `invoke_ms` is the bare
  `interpreter.invoke()` (comparable to benchmark_model's "Inference"), `run_ms` is
  `ModelRunner.run()` as the pipeline calls it (float -> int8 quantise, invoke, dequantise);
  count/min/max/mean/std/p50/p90/p99 each (stats.PERCENTILE_METHOD);
* memory: RSS before loading and after the runs (delta = what this model costs resident);
* `gmacs_per_s`: the manifest's MACs / mean invoke time, this machine's effective int8 rate;
* `ops`: the op mix from the interpreter's node list. Per-op *timing* is not exposed by the
  ai-edge-litert 2.1 Python API (no profiler hook on `Interpreter`); when a LiteRT
  `benchmark_model` binary is given (or on PATH), it is run with `--enable_op_profiling=true`
  and its summary and op table are attached.

Inputs are seeded uniform noise over each input tensor's representable range (int8 inputs)
or [0, 1] (float inputs): int8 kernels' speed does not depend on the values.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeAffectError
from ..registry import MODULES, lookup
from .stats import summarize
from .sysmon import rss_mb


@dataclass
class ModuleBenchConfig:
    threads: list[int] = field(default_factory=lambda: [1])
    delegates: list[str] = field(default_factory=lambda: ["xnnpack"])
    warmup_runs: int = 1  # benchmark_model defaults: 1 warm-up run, >= 0.5 s
    warmup_min_s: float = 0.5
    num_runs: int = 50  # benchmark_model defaults: 50 runs, >= 1 s, <= 150 s
    min_s: float = 1.0
    max_s: float = 150.0
    benchmark_model: str | None = None  # LiteRT benchmark_model binary for an op profile (None: PATH lookup, "": off)
    seed: int = 0


def model_paths(models_dir: str | Path | None = None, model_files: dict[str, str | Path] | None = None,
                modules: list[str] | None = None) -> dict[str, Path]:
    """Manifest paths per module, like the Analyzer resolves them (missing files are kept: they error later)."""
    from ..errors import ModelError
    from ..models import ASSETS, DEFAULT_MODELS, find_model

    base = Path(models_dir) if models_dir else ASSETS
    out: dict[str, Path] = {}
    for name in modules or list(MODULES):
        try:
            m = lookup(name).name
        except ValueError as e:
            raise EdgeAffectError(str(e)) from None
        if model_files and m in model_files:
            p = Path(model_files[m])
        else:
            try:
                p = find_model(base, m)
            except ModelError:
                if modules is None and not lookup(m).required:
                    continue  # an optional module this (older) models dir lacks: nothing to benchmark
                p = base / f"{DEFAULT_MODELS[m]}_int8.json"  # missing: errors later, naming it
        out[m] = p.with_suffix(".json") if p.suffix == ".tflite" else p
    return out


def parse_delegate(spec: str) -> dict[str, Any]:
    """'xnnpack' | 'reference' | 'edgetpu' | 'armnn[:LIB[:k=v,k=v]]' | 'gpu[:LIB]' | 'onnxruntime[:providers]'."""
    parts = spec.split(":", 2)
    kind = parts[0].strip().lower()
    if kind in ("xnnpack", "cpu", "reference"):
        return {"kind": kind}
    lib = parts[1] if len(parts) > 1 else ""
    opts: dict[str, Any] = {}
    if len(parts) > 2 and parts[2]:
        for kv in parts[2].split(","):
            if "=" not in kv:
                raise EdgeAffectError(f"delegate option {kv!r} in {spec!r} must be key=value")
            k, v = kv.split("=", 1)
            opts[k.strip()] = v.strip()
    if kind == "onnxruntime" and lib:
        opts["providers"], lib = lib, ""
    return {"kind": kind, "library": lib, "options": opts}


def _make_runner(manifest_path: Path, threads: int, delegate: str, backend: Any) -> tuple[Any, str, list[str]]:
    from ..runtime.runner import ModelRunner

    d = parse_delegate(delegate)
    if d["kind"] in ("xnnpack", "cpu"):
        return ModelRunner(manifest_path, num_threads=threads, backend=backend), f"CPU (XNNPACK, {threads} threads)", []
    if d["kind"] == "reference":
        r = ModelRunner(manifest_path, num_threads=threads, backend=backend, use_xnnpack=False)
        return r, f"CPU reference kernels (no XNNPACK, {threads} threads)", []
    from ..runtime.delegates import make_runner

    unit = {"name": delegate, "kind": d["kind"], "threads": threads,
            "delegate": {"name": d["kind"], "library": d["library"], "options": d["options"]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_runner(manifest_path, unit, backend=backend, num_threads=threads, warn=False)


def random_inputs(manifest: Any, seed: int = 0) -> list[np.ndarray]:
    """Float inputs for runner.run(): uniform over the int8 tensor's real range, else [0, 1]."""
    rng = np.random.default_rng(seed)
    xs = []
    for spec in manifest.inputs:
        lo, hi = 0.0, 1.0
        if spec.scale and spec.dtype in ("int8", "uint8"):
            info = np.iinfo(np.dtype(spec.dtype))
            lo, hi = (info.min - spec.zero_point) * spec.scale, (info.max - spec.zero_point) * spec.scale
        xs.append(rng.uniform(lo, hi, size=spec.shape).astype(np.float32))
    return xs


def op_mix(runner: Any) -> dict[str, int] | None:
    from ..runtime.backends import ops_details

    it = getattr(runner, "interpreter", None)
    if it is None:
        return None
    try:
        c = Counter(o["op_name"] for o in ops_details(it))
    except Exception:
        return None
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def _timed(fn: Any, min_runs: int, min_s: float, max_s: float) -> list[float]:
    out: list[float] = []
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        out.append((t1 - t0) * 1000.0)
        el = t1 - t_start
        if (len(out) >= min_runs and el >= min_s) or el >= max_s:
            return out


_BM_TIMINGS = re.compile(r"Init:\s*([\d.]+),\s*First inference:\s*([\d.]+),\s*Warmup \(avg\):\s*([\d.eE+-]+),\s*Inference \(avg\):\s*([\d.eE+-]+)")


def find_benchmark_model(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    return shutil.which("benchmark_model") or shutil.which("linux_x86-64_benchmark_model") or shutil.which("linux_aarch64_benchmark_model")


def run_benchmark_model(binary: str, tflite: Path, threads: int, timeout_s: float = 300) -> dict[str, Any]:
    """Run LiteRT's benchmark_model with op profiling; parse its timing line, keep its op table."""
    cmd = [binary, f"--graph={tflite}", f"--num_threads={threads}", "--enable_op_profiling=true"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError) as e:
        return {"command": " ".join(cmd), "error": str(e)}
    text = r.stdout + r.stderr
    out: dict[str, Any] = {"command": " ".join(cmd), "returncode": r.returncode}
    m = _BM_TIMINGS.search(text)
    if m:
        init_us, first_us, warm_us, inf_us = (float(v) for v in m.groups())
        out.update(init_ms=init_us / 1000, first_inference_ms=first_us / 1000, warmup_avg_ms=warm_us / 1000,
                   inference_avg_ms=inf_us / 1000)
    i = text.find("Operator-wise Profiling Info")
    if i < 0:
        i = text.find("Top by Computation Time")
    out["op_profile_text"] = text[i:i + 12000] if i >= 0 else None
    return out


def bench_module(module: str, manifest_path: Path, threads: int = 1, delegate: str = "xnnpack",
                 cfg: ModuleBenchConfig | None = None, backend: Any = None) -> dict[str, Any]:
    """One (module, threads, delegate) cell. Errors (missing delegate, bad model) are recorded, not raised."""
    cfg = cfg or ModuleBenchConfig()
    entry: dict[str, Any] = {"module": module, "manifest": str(manifest_path), "threads": threads, "delegate": delegate}
    rss0 = rss_mb()
    t0 = time.perf_counter()
    try:
        runner, desc, warns = _make_runner(manifest_path, threads, delegate, backend)
    except EdgeAffectError as e:
        entry["error"] = str(e)
        return entry
    entry["load_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    entry["init_ms"] = round(float(getattr(runner, "init_ms", float("nan"))), 3)
    entry["delegate_detail"] = desc
    entry["fallback"] = bool(warns)
    if warns:
        entry["warnings"] = warns
    from ..runtime.manifest import load_manifest

    m = getattr(runner, "manifest", None) or load_manifest(manifest_path)  # OnnxRuntimeRunner has no manifest
    entry.update(file=m.file, sha256=m.sha256, variant=m.variant, macs=m.macs, params=m.params,
                 inputs=[{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in m.inputs])
    xs = random_inputs(m, cfg.seed)
    t0 = time.perf_counter()
    runner.run(*xs)
    entry["first_inference_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    warm = _timed(lambda: runner.run(*xs), cfg.warmup_runs, cfg.warmup_min_s, cfg.max_s)
    entry["warmup"] = {"runs": len(warm), "mean_ms": round(float(np.mean(warm)), 4)}
    it = getattr(runner, "interpreter", None)
    if it is not None:
        inv = _timed(it.invoke, cfg.num_runs, cfg.min_s, cfg.max_s)  # tensors already set by the last run()
        entry["invoke_ms"] = summarize(inv)
    run = _timed(lambda: runner.run(*xs), cfg.num_runs, cfg.min_s, cfg.max_s)
    entry["run_ms"] = summarize(run)
    basis = entry.get("invoke_ms", entry["run_ms"])["mean"]
    entry["gmacs_per_s"] = round(m.macs / (basis / 1000.0) / 1e9, 3) if m.macs and basis else None
    rss1 = rss_mb()
    entry["rss_before_mb"] = None if rss0 is None else round(rss0, 2)
    entry["rss_after_mb"] = None if rss1 is None else round(rss1, 2)
    entry["memory_delta_mb"] = None if rss0 is None or rss1 is None else round(rss1 - rss0, 2)
    entry["ops"] = op_mix(runner)
    bm = None if cfg.benchmark_model == "" else find_benchmark_model(cfg.benchmark_model)  # "" = off, None = PATH lookup
    if bm and parse_delegate(delegate)["kind"] in ("xnnpack", "cpu"):
        entry["benchmark_model"] = run_benchmark_model(bm, m.tflite_path, threads)
    else:
        entry["op_profile"] = ("per-op timing unavailable: ai-edge-litert 2.1's Python Interpreter has no profiler; "
                               "pass --benchmark-model PATH (LiteRT's benchmark_model binary) for a per-op profile")
    return entry


def run_module_bench(paths: dict[str, Path], cfg: ModuleBenchConfig | None = None, backend: Any = None,
                     progress: Any = None) -> list[dict[str, Any]]:
    cfg = cfg or ModuleBenchConfig()
    if backend is None:
        from ..runtime.backends import load_backend

        backend = load_backend()
    out = []
    for module, p in paths.items():
        for d in cfg.delegates:
            for th in cfg.threads:
                e = bench_module(module, p, th, d, cfg, backend)
                if progress:
                    progress(e)
                out.append(e)
    return out


def int8_rate(entries: list[dict[str, Any]], threads: int = 1) -> dict[str, Any] | None:
    """This machine's effective int8 MAC rate on our models (XNNPACK, `threads`): sum MACs / sum time."""
    rows = [e for e in entries if "error" not in e and e.get("macs") and e.get("threads") == threads
            and parse_delegate(e["delegate"])["kind"] in ("xnnpack", "cpu") and str(e.get("variant", "")).startswith("int8")]
    if not rows:
        return None
    macs = sum(e["macs"] for e in rows)
    ms = sum(e["invoke_ms"]["mean"] for e in rows)
    return {"gmacs_per_s": round(macs / (ms / 1000) / 1e9, 3), "threads": threads, "models": [e["module"] for e in rows],
            "basis": "sum of manifest MACs / sum of mean invoke time over the int8 models"}
