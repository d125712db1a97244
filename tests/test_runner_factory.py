"""One construction route for model runners (BaseOptions -> RunnerFactory) and the wrapper runners."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgeaffect import Analyzer, AnalyzerOptions, BaseOptions
from edgeaffect.bench.e2e_bench import InvocationCounter
from edgeaffect.demo import demo_frames
from edgeaffect.errors import EdgeAffectError
from edgeaffect.models import find_model
from edgeaffect.runtime.factory import RunnerFactory
from edgeaffect.runtime.wrappers import InputRecorder, RunnerTimings, TimingRunner, find_wrapper
from edgeaffect.scheduler.placement import ComputeUnit


@pytest.fixture(scope="module")
def frames():
    return list(demo_frames(12))


def test_analyzer_options_shorthands_live_in_base_options(tmp_path):
    o = AnalyzerOptions(num_threads=3, models_dir=tmp_path, max_faces=1)
    assert o.base_options.num_threads == 3 and o.base_options.models_dir == tmp_path
    o.num_threads = 2
    assert o.base_options.num_threads == 2 and o.num_threads == 2
    b = BaseOptions(num_threads=1)
    assert AnalyzerOptions(base_options=b, num_threads=4).num_threads == 4 and b.num_threads == 1


def test_factory_resolves_files_by_any_module_name(assets, tmp_path):
    au = find_model(assets, "au")
    f = RunnerFactory(BaseOptions(model_files={"aus": au}, threads={"au": 2}))
    assert f.model_path("au") == au and f.threads_for("au") == 2 and f.threads_for("detector") == 1
    r = f.runner("au")
    assert f.runner("aus") is r, "built once per module"
    assert r.num_threads == 2 and f.descriptions["au"] == "CPU (XNNPACK, 2 threads)"


def test_factory_places_on_units_with_cpu_fallback(assets):
    unit = ComputeUnit("tpu", "edgetpu", 1, None)
    f = RunnerFactory(BaseOptions(units={"landmarks": unit}), warn=False)
    r = f.runner("landmarks")
    assert "fallback from edgetpu" in f.descriptions["landmarks"] and f.warnings["landmarks"]
    x = np.full(r.input_shapes[0], 0.5, np.float32)
    ref = RunnerFactory().runner("landmarks").run(x)
    got = r.run(x)
    assert all(np.array_equal(ref[k], got[k]) for k in ref)


def test_timing_and_recording_wrappers_observe_the_real_analyzer(assets, frames):
    timings, rec = RunnerTimings(), InputRecorder({"landmarks", "temporal"})
    base = BaseOptions(wrappers=[timings.wrap, rec.wrap])
    with Analyzer(AnalyzerOptions(max_faces=1, base_options=base)) as an:
        results = [an.process(f, (i + 1) * 33.3) for i, f in enumerate(frames)]
        counter = InvocationCounter(an)
        # every runner is timed (the recorder sits outside the timer for the modules it records)
        assert set(counter.timers) == {"detector", "landmarks", "eyes", "au", "temporal"}
        lm = an.runners["landmarks"]
    assert sum(r.status == "ok" for r in results) >= 8
    n_lm = timings.count["landmarks"]
    assert n_lm >= len(frames) and len(rec.inputs["landmarks"]) == n_lm, "every landmark call recorded once"
    # the temporal net runs once per listed face (a lost track only records the gap in its window)
    assert timings.count["temporal"] == len(rec.inputs["temporal"]) == sum(len(r.faces) for r in results)
    assert counter.summary(len(frames))["landmarks"]["count"] == n_lm and timings.ms["landmarks"] > 0
    shape = tuple(lm.manifest.inputs[0].shape[1:])
    assert all(x.shape == shape and x.dtype == np.float32 for x in rec.inputs["landmarks"])
    # the recorded input is exactly what the network saw: re-running it reproduces the output
    inner = find_wrapper(lm, TimingRunner).inner
    assert float(rec.inputs["landmarks"][0].min()) >= 0.0 and float(rec.inputs["landmarks"][0].max()) <= 1.0
    out = inner.run(rec.inputs["landmarks"][-1][None])
    assert set(out) == {o.name for o in lm.manifest.outputs}


def test_invocation_counter_refuses_an_untimed_analyzer(assets):
    with Analyzer(AnalyzerOptions(enable_affect=False)) as an, pytest.raises(EdgeAffectError, match="not timed"):
        InvocationCounter(an)


def test_device_plan_builds_through_the_factory(assets):
    from edgeaffect.profiles import load_profile
    from edgeaffect.registry import MODULES
    from edgeaffect.scheduler.plan import plan_runtime

    timings = RunnerTimings()
    locate = RunnerFactory().model_path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_runtime(load_profile("rpi5-coral"), {m: locate(m) for m in MODULES},
                            base=BaseOptions(wrappers=[timings.wrap]), threads=2)
    an = Analyzer(AnalyzerOptions(), runner_factory=plan.factory)
    assert an.runners == plan.runners and set(timings.runners) == set(MODULES)
    assert all(plan.factory.threads_for(m) == 2 for m in MODULES)
    assert "fallback from edgetpu" in plan.unit_desc["detector"]


def test_ops_details_is_the_one_door_to_the_private_op_list(assets):
    from edgeaffect.errors import BackendUnavailableError
    from edgeaffect.runtime.backends import ops_details

    it = RunnerFactory().runner("au").interpreter
    own = ops_details(it, delegates=False)
    allops = ops_details(it)
    assert own and all(o["op_name"] != "DELEGATE" for o in own) and {"op_name", "index", "inputs", "outputs"} <= set(own[0])
    assert len(allops) >= len(own)
    with pytest.raises(BackendUnavailableError, match="does not list its ops"):
        ops_details(object())
