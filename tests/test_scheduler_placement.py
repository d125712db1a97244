"""Placement on fake compute units with known latencies; profiling + per-device cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edgeaffect.scheduler.placement import (
    ComputeUnit,
    auto_placement,
    choose_placement,
    evaluate,
    profile_units,
    static_placement,
)

MODULES = ("detector", "landmarks", "au", "temporal")
CPU_A, CPU_B, TPU = ComputeUnit("cpu_a", "cpu", 2), ComputeUnit("cpu_b", "cpu", 2), ComputeUnit("tpu", "edgetpu", 1)


def _load_test_delegates():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_ea_test_delegates", Path(__file__).with_name("test_delegates.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lat_table(**per_unit: dict[str, float]) -> dict[tuple[str, str], float]:
    return {(m, u): ms for u, d in per_unit.items() for m, ms in d.items()}


def test_two_cpu_groups_balance_the_load():
    lat = lat_table(cpu_a={"detector": 8, "landmarks": 10, "au": 6, "temporal": 3},
                    cpu_b={"detector": 8, "landmarks": 10, "au": 6, "temporal": 3})
    p = choose_placement(MODULES, [CPU_A, CPU_B], lat, frame_budget_ms=100)
    load = p.unit_load_ms
    # Best split of {8,10,6,3}: 14 | 13 (e.g. detector+au | landmarks+temporal) -> 1000/14 fps.
    assert max(load.values()) == pytest.approx(14.0)
    assert p.throughput_fps == pytest.approx(1000 / 14)
    assert p.latency_ms == pytest.approx(27.0) and p.within_budget
    assert "highest throughput" in p.reason


def test_accelerator_takes_what_it_runs_fast():
    inf = math.inf
    lat = lat_table(cpu_a={"detector": 20, "landmarks": 25, "au": 12, "temporal": 4},
                    tpu={"detector": 3, "landmarks": 4, "au": 5, "temporal": inf})  # temporal unsupported on TPU
    p = choose_placement(MODULES, [CPU_A, TPU], lat, frame_budget_ms=50)
    assert p.assignment["temporal"] == "cpu_a"
    assert p.assignment["detector"] == "tpu" and p.assignment["landmarks"] == "tpu"
    thr, latency, _ = evaluate(p.assignment, lat)
    assert latency <= 50 and thr == pytest.approx(p.throughput_fps)
    # exhaustive check: nothing within budget beats it
    import itertools

    for combo in itertools.product(("cpu_a", "tpu"), repeat=4):
        a = dict(zip(MODULES, combo, strict=True))
        if any(math.isinf(lat[(m, u)]) for m, u in a.items()):
            continue
        t, la, _ = evaluate(a, lat)
        if la <= 50:
            assert t <= p.throughput_fps + 1e-9


def test_budget_is_respected_even_at_a_throughput_cost():
    # Unit "slow" is a separate (second) unit: splitting raises throughput but its latency
    # blows the budget, so the budget-respecting choice keeps everything on the fast unit.
    fast, slow = ComputeUnit("fast", "cpu", 2), ComputeUnit("slow", "gpu", 1)
    lat = lat_table(fast={"detector": 5, "landmarks": 5, "au": 5, "temporal": 5},
                    slow={"detector": 12, "landmarks": 12, "au": 12, "temporal": 12})
    unconstrained = choose_placement(MODULES, [fast, slow], lat, frame_budget_ms=1000)
    assert "slow" in unconstrained.assignment.values()
    p = choose_placement(MODULES, [fast, slow], lat, frame_budget_ms=25)
    assert p.within_budget and p.latency_ms <= 25
    assert set(p.assignment.values()) == {"fast"}


def test_impossible_budget_reports_reason():
    lat = lat_table(cpu_a={"detector": 10, "landmarks": 10, "au": 10, "temporal": 10})
    p = choose_placement(MODULES, [CPU_A], lat, frame_budget_ms=5)
    assert not p.within_budget and "no placement fits" in p.reason and p.latency_ms == 40


def test_rates_weight_the_load():
    lat = lat_table(cpu_a={"detector": 40, "landmarks": 10, "au": 6, "temporal": 3},
                    cpu_b={"detector": 40, "landmarks": 10, "au": 6, "temporal": 3})
    p = choose_placement(MODULES, [CPU_A, CPU_B], lat, 200, rates={"detector": 0.05})
    assert p.unit_load_ms[p.assignment["detector"]] < 40  # the detector's 2 ms expected cost


def test_module_without_any_unit_is_an_error():
    with pytest.raises(ValueError, match="temporal"):
        choose_placement(MODULES, [TPU], lat_table(tpu={"detector": 1, "landmarks": 1, "au": 1}), 10)


def test_static_placement_validates_units():
    with pytest.raises(ValueError, match="unknown unit"):
        static_placement({"detector": "npu"}, [CPU_A])
    p = static_placement(dict.fromkeys(MODULES, "cpu_a"), [CPU_A],
                         lat_table(cpu_a=dict.fromkeys(MODULES, 2.0)), 5)
    assert p.latency_ms == 8 and not p.within_budget and p.source == "static"


def test_profile_units_measures_and_caches(tmp_path):
    make_tiny_model = _load_test_delegates().make_tiny_model

    mp = make_tiny_model(tmp_path)
    models = dict.fromkeys(MODULES, mp)
    units = [ComputeUnit("cpu_a", "cpu", 1), ComputeUnit("tpu", "edgetpu", 1)]  # no TPU here
    lat, info = profile_units(models, units, warmup=1, runs=3, cache_dir=tmp_path / "cache")
    assert not info["cached"] and set(lat) == {(m, "cpu_a") for m in MODULES}
    assert all(v > 0 for v in lat.values())
    assert "detector@tpu" in info["failures"]  # fallback-only units are not measured
    lat2, info2 = profile_units(models, units, warmup=1, runs=3, cache_dir=tmp_path / "cache")
    assert info2["cached"] and lat2 == pytest.approx(lat, abs=1e-3)
    p = auto_placement(models, units, 100, warmup=1, runs=3, cache_dir=tmp_path / "cache")
    assert p.source == "auto-cached" and set(p.assignment.values()) == {"cpu_a"} and "detector@tpu" in p.failures
    line = p.summary()
    assert "\n" not in line and "not runnable here: tpu (details in run.json)" in line and "delegate" not in line
    assert "measured " in line and "not included" in line  # cached date; the prediction is models only
    assert p.to_dict()["failures"] == info["failures"] and p.to_dict()["cache"]["file"] == info2["cache_file"]


def test_placement_cache_is_keyed_by_machine_models_and_profile(tmp_path, monkeypatch):
    """A cache measured on another host with the same CPU name (AVX2 vs AVX-512 VNNI), with other models or
    for another profile is not reused."""
    import edgeaffect.scheduler.placement as P

    class Fake:
        input_shapes = [(1, 4)]

        def run(self, *xs):
            return {}

    models = {m: f"{m}.json" for m in MODULES}
    kw = {"runs": 1, "warmup": 0, "cache_dir": tmp_path, "runner_factory": lambda m, u: Fake()}
    monkeypatch.setattr(P, "_cpu_flags", lambda: "avx2 fma")
    _, a = profile_units(models, [CPU_A], profile="rpi5", **kw)
    assert profile_units(models, [CPU_A], profile="rpi5", **kw)[1]["cached"]
    assert "rpi5" in Path(a["cache_file"]).name
    assert not profile_units(models, [CPU_A], profile="rpi4", **kw)[1]["cached"]
    assert not profile_units({**models, "au": "other_au.json"}, [CPU_A], profile="rpi5", **kw)[1]["cached"]
    monkeypatch.setattr(P, "_cpu_flags", lambda: "avx2 avx512_vnni fma")
    assert not profile_units(models, [CPU_A], profile="rpi5", **kw)[1]["cached"]


def test_summary_is_one_short_line_with_many_failures():
    long = "unit 'gpu': GPU delegate unavailable: library libtensorflowlite_gpu_delegate.so not found " * 3
    p = static_placement(dict.fromkeys(MODULES, "cpu_a"), [CPU_A], lat_table(cpu_a=dict.fromkeys(MODULES, 2.0)), 50)
    p.failures = {f"{m}@{u}": long for m in MODULES for u in ("gpu", "trt")}
    line = p.summary()
    assert "\n" not in line and len(line) < 300 and "not runnable here: gpu, trt" in line


def test_profile_units_with_fake_runners(tmp_path):
    class Fake:
        input_shapes = [(1, 4)]

        def run(self, *xs):
            return {}

    calls = []

    def factory(model, unit):
        calls.append((model, unit.name))
        if unit.name == "tpu" and model == "temporal.json":
            raise RuntimeError("unsupported op")
        return Fake()

    models = {m: f"{m}.json" for m in MODULES}
    lat, info = profile_units(models, [CPU_A, TPU], runs=2, warmup=0, cache_dir=tmp_path, runner_factory=factory)
    assert len(calls) == 8 and ("temporal", "tpu") not in lat and "temporal@tpu" in info["failures"]


def test_plan_runtime_static_with_fallback_and_auto(tmp_path):
    import warnings

    from edgeaffect.profiles import load_profile
    from edgeaffect.scheduler.plan import plan_runtime

    mp = _load_test_delegates().make_tiny_model(tmp_path)
    models = dict.fromkeys(MODULES, mp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_runtime(load_profile("rpi5-coral"), models)  # no Edge TPU here
    assert plan.placement.assignment["detector"] == "tpu" and "fell back to the CPU" in plan.placement.reason
    assert "fallback from edgetpu" in plan.unit_desc["detector"] and any("libedgetpu" in w or "edgetpu" in w
                                                                         for w in plan.warnings)
    assert set(plan.runners) == set(MODULES) and "rpi5-coral" in plan.describe()
    auto = plan_runtime(load_profile("rpi5"), models, cache_dir=tmp_path / "c")
    assert auto.placement.source == "auto" and set(auto.placement.assignment.values()) <= {"cpu_a", "cpu_b"}
    assert auto.placement.to_dict()["within_budget"] is True
    import numpy as np

    from edgeaffect.capture.base import Frame
    from edgeaffect.scheduler import Stage

    x = np.full((1, 16), 0.5, np.float32)

    def st(name, mods):
        def fn(item):
            if name not in item.skipped:
                for m in mods:
                    auto.runners[m].run(x)
            return item

        return Stage(name, mods, fn, optional=name != "track")

    stages = [st("track", ("detector", "landmarks")), st("au", ("au",)), st("affect", ("temporal",))]
    ex = auto.executor(stages, live=False)
    out = list(ex.run(Frame(np.zeros((4, 4), np.uint8), i * 33.0, i) for i in range(12)))
    assert [w.frame.index for w in out] == list(range(12)) and ex.stats.dropped == 0
