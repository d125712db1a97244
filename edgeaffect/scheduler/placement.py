"""Where each module runs: static placement from a profile, or chosen from measurements.

Cost model (what `choose_placement` optimises)
----------------------------------------------
The executor runs each group of stages on its own worker, so frames flow as a pipeline:
steady-state throughput is bounded by the busiest compute unit, whose load per frame is the
sum of the latencies of the modules placed on it (weighted by how often each module runs,
e.g. the detector only on track loss, the VA net every k frames). The end-to-end latency of
one frame is the sum of its modules' latencies (the worst case: every module runs). Among
the placements whose latency fits the frame budget we take the highest throughput (ties:
lower latency, then fewer units); if none fits, the highest throughput, and `reason` says
so. Modules x units is tiny (4 modules, <= 4 units: <= 256 assignments), so the search is
exhaustive and exact.

Two CPU "units" in one profile are two disjoint thread groups (e.g. 2+2 cores on a Pi),
which is how a CPU-only device gets pipeline overlap; the profile is responsible for not
oversubscribing the cores.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("edgeaffect.scheduler")


@dataclass(frozen=True, eq=False)
class ComputeUnit:
    name: str  # profile key, e.g. "cpu", "cpu_b", "tpu"
    kind: str = "cpu"  # cpu | xnnpack | edgetpu | armnn | gpu | onnxruntime
    threads: int = 1  # CPU threads of this group (XNNPACK num_threads; host threads for delegates)
    delegate: Any = None  # edgeaffect.runtime.delegates.DelegateSpec | None

    def describe(self) -> str:
        d = f" via {self.delegate.library or self.delegate.kind}" if self.delegate is not None else ""
        return f"{self.name} ({self.kind}, {self.threads} thr{d})"


@dataclass
class Placement:
    assignment: dict[str, str]  # module -> unit name
    throughput_fps: float = math.nan  # predicted steady-state frames/s (nan: not measured)
    latency_ms: float = math.nan  # predicted worst-case end-to-end latency
    unit_load_ms: dict[str, float] = field(default_factory=dict)  # expected ms of work per frame per unit
    within_budget: bool = True
    reason: str = ""
    source: str = "static"  # static | auto | auto-cached | default
    #: "module@unit" -> why that pair could not be measured (full text; the summary groups them by unit)
    failures: dict[str, str] = field(default_factory=dict)
    #: the measurement cache this placement came from (file, created, key parts), for auto placements
    cache: dict[str, Any] = field(default_factory=dict)

    def unit_for(self, module: str) -> str | None:
        return self.assignment.get(module)

    def summary(self) -> str:
        """One line: where each module runs, the model-only prediction, which units could not run."""
        a = ", ".join(f"{m}->{u}" for m, u in self.assignment.items())
        src = self.source
        if self.cache.get("cached"):
            src += f", measured {self.cache.get('created', '?')}"
        perf = ""
        if not math.isnan(self.throughput_fps):
            perf = (f"; models alone predict {self.throughput_fps:.0f} fps, latency {self.latency_ms:.1f} ms "
                    "(per-frame Python/OpenCV work not included)")
        bad = ""
        if self.failures:
            units = sorted({k.split("@", 1)[-1] for k in self.failures})
            bad = f"; not runnable here: {', '.join(units)} (details in run.json)"
        budget = "" if self.within_budget else "; OVER the frame budget"
        return f"placement [{src}] {a}{perf}{budget}{bad}" + (f": {self.reason}" if self.reason else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": dict(self.assignment), "throughput_fps": _num(self.throughput_fps),
            "latency_ms": _num(self.latency_ms), "unit_load_ms": {k: round(v, 3) for k, v in self.unit_load_ms.items()},
            "within_budget": self.within_budget, "reason": self.reason, "source": self.source,
            "failures": dict(self.failures), "cache": dict(self.cache),
        }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


def evaluate(
    assignment: Mapping[str, str],
    latency_ms: Mapping[tuple[str, str], float],
    rates: Mapping[str, float] | None = None,
) -> tuple[float, float, dict[str, float]]:
    """(throughput_fps, worst-case latency_ms, load per unit) of one assignment."""
    rates = rates or {}
    load: dict[str, float] = {}
    lat = 0.0
    for m, u in assignment.items():
        ms = latency_ms[(m, u)]
        lat += ms
        load[u] = load.get(u, 0.0) + ms * float(rates.get(m, 1.0))
    busiest = max(load.values()) if load else 0.0
    thr = 1000.0 / busiest if busiest > 0 else math.inf
    return thr, lat, load


def choose_placement(
    modules: Sequence[str],
    units: Sequence[ComputeUnit],
    latency_ms: Mapping[tuple[str, str], float],
    frame_budget_ms: float,
    *,
    rates: Mapping[str, float] | None = None,
) -> Placement:
    """Best placement of `modules` on `units` given measured per-(module, unit) latencies.

    A missing or non-finite latency means "this module cannot run on this unit" (e.g. the
    temporal net on an Edge TPU). `rates`: fraction of frames each module runs on (default
    1.0). Raises ValueError if some module can run nowhere.
    """
    names = [u.name for u in units]
    options: list[list[str]] = []
    for m in modules:
        ok = [u for u in names if math.isfinite(float(latency_ms.get((m, u), math.inf)))]
        if not ok:
            raise ValueError(f"module {m!r} has no measured latency on any unit ({', '.join(names)})")
        options.append(ok)
    best: tuple | None = None
    best_any: tuple | None = None
    order = {u: i for i, u in enumerate(names)}
    for combo in itertools.product(*options):
        a = dict(zip(modules, combo, strict=True))
        thr, lat, load = evaluate(a, latency_ms, rates)
        # Higher throughput, then lower latency, then fewer units, then profile order (deterministic).
        key = (-round(thr, 6), round(lat, 6), len(set(combo)), [order[u] for u in combo])
        cand = (key, a, thr, lat, load)
        if best_any is None or key < best_any[0]:
            best_any = cand
        if lat <= frame_budget_ms + 1e-9 and (best is None or key < best[0]):
            best = cand
    assert best_any is not None
    n = 1
    for o in options:
        n *= len(o)
    if best is not None:
        _, a, thr, lat, load = best
        busiest = max(load, key=load.get)
        reason = (f"highest throughput of {n} placements within the {frame_budget_ms:.1f} ms budget "
                  f"(bottleneck {busiest}: {load[busiest]:.1f} ms/frame; end-to-end {lat:.1f} ms)")
        return Placement(a, thr, lat, load, True, reason, "auto")
    _, a, thr, lat, load = best_any
    fastest = min(evaluate(dict(zip(modules, c, strict=True)), latency_ms)[1] for c in itertools.product(*options))
    reason = (f"no placement fits the {frame_budget_ms:.1f} ms budget (the fastest end-to-end is {fastest:.1f} ms); "
              f"chose the highest throughput, end-to-end {lat:.1f} ms")
    return Placement(a, thr, lat, load, False, reason, "auto")


def static_placement(
    assignment: Mapping[str, str],
    units: Sequence[ComputeUnit],
    latency_ms: Mapping[tuple[str, str], float] | None = None,
    frame_budget_ms: float | None = None,
    *,
    rates: Mapping[str, float] | None = None,
    reason: str = "static placement from the profile",
) -> Placement:
    known = {u.name for u in units}
    for m, u in assignment.items():
        if u not in known:
            raise ValueError(f"module {m!r} placed on unknown unit {u!r} (units: {', '.join(sorted(known))})")
    p = Placement(dict(assignment), reason=reason, source="static")
    if latency_ms and all((m, u) in latency_ms for m, u in assignment.items()):
        p.throughput_fps, p.latency_ms, p.unit_load_ms = evaluate(assignment, latency_ms, rates)
        if frame_budget_ms is not None:
            p.within_budget = p.latency_ms <= frame_budget_ms
    return p


# ----------------------------------------------------------------------------- profiling
def default_cache_dir() -> Path:
    env = os.environ.get("EDGEAFFECT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeaffect"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("model name", "Model", "Hardware"):
                return v.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> str:
    """The CPU's ISA flags (x86 `flags`, ARM `Features`): two hosts with one model name can differ here
    (an AVX2-only and an AVX-512 VNNI "AMD EPYC" run int8 kernels several times apart)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("flags", "Features"):
                return " ".join(sorted(v.split()))
    except OSError:
        pass
    return ""


def device_fingerprint(units: Sequence[ComputeUnit], models: Mapping[str, Any], extra: str = "", profile: str = "") -> str:
    """Hash of what the measurements depend on: machine (arch, CPU model, ISA flags, cores), LiteRT
    backend, the profile, its units and delegate libraries, and the model files (by sha256)."""
    from ..runtime.backends import load_backend

    try:
        b = load_backend()
        backend = f"{b.name}-{b.version}"
    except Exception:  # noqa: BLE001
        backend = "none"
    parts = [platform.machine(), _cpu_model(), _cpu_flags(), str(os.cpu_count()), backend, extra, f"profile={profile}"]
    for u in units:
        lib = getattr(u.delegate, "library", "") if u.delegate is not None else ""
        parts.append(f"{u.name}:{u.kind}:{u.threads}:{lib}")
    for m in sorted(models):
        parts.append(f"{m}:{_model_id(models[m])}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _model_id(model: Any) -> str:
    sha = getattr(model, "sha256", None)
    if sha:
        return str(sha)[:16]
    p = Path(str(model))
    if p.suffix == ".json" and p.exists():
        try:
            return str(json.loads(p.read_text()).get("sha256", ""))[:16] or p.name
        except (OSError, ValueError):
            return p.name
    try:
        st = p.stat()
        return f"{p.name}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        return str(model)


def _random_inputs(shapes: Sequence[Sequence[int]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.0, 1.0, size=tuple(s)).astype(np.float32) for s in shapes]


def time_runner(runner: Any, *, warmup: int = 2, runs: int = 10) -> float:
    """Median wall time (ms) of runner.run on fixed random inputs."""
    xs = _random_inputs(runner.input_shapes)
    for _ in range(max(0, warmup)):
        runner.run(*xs)
    ts = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        runner.run(*xs)
        ts.append((time.perf_counter() - t0) * 1000)
    return float(statistics.median(ts))


def profile_units(
    models: Mapping[str, Any],
    units: Sequence[ComputeUnit],
    *,
    warmup: int = 2,
    runs: int = 10,
    cache_dir: str | Path | None = None,
    refresh: bool = False,
    backend: Any = None,
    runner_factory: Callable[[Any, ComputeUnit], Any] | None = None,
    profile: str = "",
) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    """Measure every module on every unit (median of `runs` after `warmup`).

    `models`: module -> manifest path / Manifest. `runner_factory(model, unit) -> runner`
    defaults to `edgeaffect.runtime.delegates.make_runner` without warnings; a unit whose
    delegate is unavailable is *not* measured (it would only measure the CPU fallback).
    Returns `(latency_ms, info)`; info has the fingerprint, cache file, whether it was a
    cache hit and per-pair failures. Results are cached in `cache_dir` (default
    ~/.cache/edgeaffect, or $EDGEAFFECT_CACHE_DIR), keyed by machine, models and profile
    (`device_fingerprint`); the file name shows the profile and architecture.
    """
    fp = device_fingerprint(units, models, extra=f"w{warmup}r{runs}", profile=profile)
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in (profile or "noprofile"))
    cfile = cdir / f"placement-{slug}-{platform.machine()}-{fp}.json"
    info: dict[str, Any] = {"fingerprint": fp, "cache_file": str(cfile), "cached": False, "failures": {},
                            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if not refresh and cfile.exists():
        try:
            d = json.loads(cfile.read_text())
            if d.get("fingerprint") != fp:
                raise ValueError("fingerprint mismatch")
            lat = {tuple(k.split("@", 1)): float(v) for k, v in d["latency_ms"].items()}
            info.update(cached=True, failures=d.get("failures", {}), created=d.get("created", "?"))
            return lat, info  # type: ignore[return-value]
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable placement cache %s", cfile)
    if runner_factory is None:
        from ..runtime.delegates import make_runner

        def runner_factory(model: Any, unit: ComputeUnit) -> Any:
            r, _desc, w = make_runner(model, unit, backend=backend, warn=False)
            if w:
                raise RuntimeError(w[0])
            return r

    lat: dict[tuple[str, str], float] = {}
    for m, model in models.items():
        for u in units:
            try:
                r = runner_factory(model, u)
                lat[(m, u.name)] = time_runner(r, warmup=warmup, runs=runs)
            except Exception as e:  # noqa: BLE001 - a unit that cannot run a module is data, not a crash
                info["failures"][f"{m}@{u.name}"] = str(e).splitlines()[0] if str(e) else type(e).__name__
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        tmp = cfile.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "fingerprint": fp, "created": info["created"], "profile": profile, "machine": platform.machine(),
            "cpu": _cpu_model(), "models": {m: _model_id(v) for m, v in models.items()},
            "units": [u.describe() for u in units],
            "latency_ms": {f"{m}@{u}": round(v, 4) for (m, u), v in lat.items()},
            "failures": info["failures"],
        }, indent=1))
        tmp.replace(cfile)
    except OSError as e:
        log.warning("cannot write placement cache %s (%s)", cfile, e)
    return lat, info


def auto_placement(
    models: Mapping[str, Any],
    units: Sequence[ComputeUnit],
    frame_budget_ms: float,
    *,
    rates: Mapping[str, float] | None = None,
    **profile_kwargs: Any,
) -> Placement:
    """profile_units + choose_placement; `cache` and `failures` say where the numbers came from."""
    lat, info = profile_units(models, units, **profile_kwargs)
    p = choose_placement(list(models), units, lat, frame_budget_ms, rates=rates)
    if info["cached"]:
        p.source = "auto-cached"
    p.cache = {"file": info["cache_file"], "cached": info["cached"], "created": info["created"], "fingerprint": info["fingerprint"]}
    p.failures = dict(info["failures"])
    return p
