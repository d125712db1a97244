"""Pipeline executor: order, no duplicates, drops counted, bounded queues, errors, overlap."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgeaffect.capture.base import Frame
from edgeaffect.scheduler import PipelineExecutor, Stage, WorkItem
from edgeaffect.scheduler.executor import BoundedQueue, group_stages
from edgeaffect.scheduler.placement import ComputeUnit, static_placement
from edgeaffect.scheduler.stages import STAGE_MODULES, validate_stages

IMG = np.zeros((8, 8), np.uint8)


def frames(n):
    return [Frame(IMG, i * 10.0, i) for i in range(n)]


def make_stages(delays=(0.0, 0.0, 0.0), log=None, fail_at=None):
    """Stateful stages: each asserts it sees frames in increasing order (as tracking would)."""
    last = {}
    lock = threading.Lock()

    def mk(name, delay):
        def fn(item: WorkItem) -> WorkItem:
            i = item.frame.index
            assert last.get(name, -1) < i, f"{name} saw frame {i} after {last.get(name)}"
            last[name] = i
            if fail_at is not None and name == "au" and i == fail_at:
                raise RuntimeError(f"boom at {i}")
            if delay:
                time.sleep(delay)
            if log is not None:
                with lock:
                    log.append((name, i, name in item.skipped))
            item.payload = (item.payload or ()) + (name,)
            return item

        return fn

    return [Stage("track", STAGE_MODULES["track"], mk("track", delays[0])),
            Stage("au", STAGE_MODULES["au"], mk("au", delays[1]), optional=True),
            Stage("affect", STAGE_MODULES["affect"], mk("affect", delays[2]), optional=True)]


@pytest.mark.parametrize("queue_size", [1, 2])
@pytest.mark.parametrize("mode", ["pipelined", "sequential"])
def test_block_mode_keeps_every_frame_in_order(mode, queue_size):
    ex = PipelineExecutor(make_stages((0.001, 0.002, 0.0005)), None, queue_size, mode=mode, drop="block")
    out = list(ex.run(frames(40)))
    assert [w.frame.index for w in out] == list(range(40))
    assert all(w.payload == ("track", "au", "affect") for w in out)
    assert ex.stats.dropped == 0 and ex.stats.completed == 40
    assert all(d <= queue_size for d in ex.stats.max_queue_depth)
    assert {"track", "au", "affect", "pipeline_latency"} <= set(out[0].timings_ms)


@pytest.mark.parametrize("queue_size", [1, 2])
def test_overload_drops_oldest_counts_and_keeps_order(queue_size):
    ex = PipelineExecutor(make_stages((0.004, 0.004, 0.0)), None, queue_size, drop="oldest")
    ex.start()
    out, dropped = [], []
    for f in frames(60):
        d = ex.submit(f)  # submitted much faster than processed
        if d is not None:
            dropped.append(d.frame.index)
        assert all(depth <= queue_size for depth in ex.queue_depths())
        while (r := ex.get(timeout=0)) is not None:
            out.append(r)
    ex.finish()
    while (r := ex.get(timeout=5)) is not None:
        out.append(r)
    ex.close()
    got = [w.frame.index for w in out]
    assert got == sorted(got) and len(set(got)) == len(got)  # in order, no duplicates
    assert ex.stats.dropped == len(dropped) > 0
    assert sorted(got + dropped) == list(range(60))  # every frame either delivered or counted as dropped
    assert ex.stats.dropped_indices == dropped
    assert max(ex.stats.max_queue_depth) <= queue_size
    assert got[-1] == 59  # the newest frame is never the one dropped


def _overlaps(mode: str) -> int:
    """Pairs of (stage, frame) executions of different stages that ran at the same time."""
    spans: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def timed(stage: Stage) -> Stage:
        def fn(item: WorkItem) -> WorkItem:
            t0 = time.perf_counter()
            out = stage.fn(item)
            with lock:
                spans.append((stage.name, t0, time.perf_counter()))
            return out

        return Stage(stage.name, stage.modules, fn, optional=stage.optional)

    # sleep stands in for GIL-free work (interpreter invoke): 3 stages x 10 ms
    list(PipelineExecutor([timed(s) for s in make_stages((0.01, 0.01, 0.01))], None, 2, mode=mode, drop="block").run(frames(20)))
    return sum(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for i, a in enumerate(spans) for b in spans[i + 1:])


def test_pipelining_overlaps_stages():
    """Stages of different frames run at the same time when pipelined, never when sequential (checked
    from when each stage ran, not from how long the run took: no speed is asserted)."""
    assert _overlaps("sequential") == 0
    assert _overlaps("pipelined") > 0


def test_stage_error_is_raised_in_order_after_earlier_frames():
    ex = PipelineExecutor(make_stages(fail_at=7), None, 2, drop="block")
    got = []
    with pytest.raises(RuntimeError, match="boom at 7"):
        for w in ex.run(frames(20)):
            got.append(w.frame.index)
    assert got == list(range(7))


def test_required_stage_is_never_skipped_and_skips_reach_the_stage():
    class Ctl:
        def apply(self, item, seq):
            item.skipped |= {"track", "affect"}

        def on_drop(self, item):
            pass

        def on_complete(self, item, latency_ms):
            pass

    log = []
    out = list(PipelineExecutor(make_stages(log=log), None, 1, drop="block", controller=Ctl()).run(frames(5)))
    assert all(w.skipped == {"affect"} for w in out)
    assert ("affect", 0, True) in log and ("track", 0, False) in log  # fn called, mark visible


def test_grouping_follows_placement():
    units = [ComputeUnit("cpu_a"), ComputeUnit("cpu_b")]
    p = static_placement({"detector": "cpu_a", "landmarks": "cpu_a", "au": "cpu_b", "temporal": "cpu_b"}, units)
    groups = group_stages(make_stages(), p)
    assert [[s.name for s in g] for g in groups] == [["track"], ["au", "affect"]]
    p1 = static_placement(dict.fromkeys(("detector", "landmarks", "au", "temporal"), "cpu_a"), units)
    assert len(group_stages(make_stages(), p1)) == 1
    ex = PipelineExecutor(make_stages(), p, 2, drop="block")
    assert [w.frame.index for w in ex.run(frames(10))] == list(range(10))
    assert ex.stats.workers == [["track"], ["au", "affect"]]


def test_validation():
    s = make_stages()
    with pytest.raises(ValueError):
        validate_stages([s[1], s[0]])  # optional first stage
    with pytest.raises(ValueError):
        validate_stages([s[0], s[0]])
    with pytest.raises(ValueError):
        PipelineExecutor(s, None, 8)


def test_bounded_queue():
    q = BoundedQueue(2)
    assert q.put_drop_oldest(1) is None and q.put_drop_oldest(2) is None
    assert q.put_drop_oldest(3) == 1 and len(q) == 2 and q.max_depth == 2
    assert q.get() == 2
    with pytest.raises(TimeoutError):
        BoundedQueue(1).get(timeout=0.01)
