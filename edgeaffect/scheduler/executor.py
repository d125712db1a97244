"""Pipelined execution of ordered, stateful stages with bounded latency.

```
submit ──► [in q, bound B] ──► worker 1 (stages on unit A) ──► [q, bound B] ──► worker 2 ... ──► results
   └─ full? drop the OLDEST queued frame (counted), never grow
```
- One worker thread per *stage group*: consecutive stages whose modules share a compute unit
  (per the Placement) form one group, because they would contend for that unit anyway.
  Without a placement every stage gets its own worker. LiteRT's `invoke()` and numpy's
  kernels release the GIL, so the workers overlap for real: stage N of frame t runs while
  stage N-1 works on frame t+1.
- Each worker handles its items strictly FIFO and there is exactly one worker per group,
  so frames leave in submission order; a sequence number checks that none is duplicated or
  reordered (a violation raises instead of being hidden).
- Latency is bounded by the queue bounds: inner queues block (back-pressure), and the only
  place a frame is dropped is the input, where the *oldest* waiting frame is discarded to
  make room for the newest (`drop="oldest"`, for live cameras). `drop="block"` makes
  submit() wait instead (offline files: every frame analysed).
- A stage that raises stops the pipeline; the exception is re-raised by get()/run() at the
  position of the failing frame, after every earlier frame has been delivered.
- `mode="sequential"` runs all stages in the caller's thread (the baseline for the gain).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..capture.base import Frame
from .placement import Placement
from .stages import Stage, WorkItem, validate_stages


class RateController(Protocol):
    """What the executor asks of a degrade/rate policy (see degrade.DegradeController)."""

    def apply(self, item: WorkItem, seq: int) -> None: ...  # mark item.skipped (optional stages only)
    def on_drop(self, item: WorkItem) -> None: ...
    def on_complete(self, item: WorkItem, latency_ms: float) -> None: ...


_END = object()


@dataclass
class _Entry:
    seq: int
    item: WorkItem
    t_submit: float


@dataclass
class _Failed:
    entry: _Entry
    stage: str
    exc: BaseException


class _Aborted(Exception):
    pass


class BoundedQueue:
    """FIFO with a hard bound, blocking put/get, drop-oldest put, and a max-depth record."""

    def __init__(self, bound: int | None) -> None:
        self.bound = bound
        self._d: deque[Any] = deque()
        self._cv = threading.Condition()
        self._aborted = False
        self.max_depth = 0

    def __len__(self) -> int:
        return len(self._d)

    def _push(self, x: Any, count: bool = True) -> None:
        self._d.append(x)
        if count:  # the end/failure markers ride over the bound and are not frames
            self.max_depth = max(self.max_depth, len(self._d))
        self._cv.notify_all()

    def put(self, x: Any, *, force: bool = False) -> None:
        """Blocking put (`force`: ignore the bound, used only for the end marker)."""
        with self._cv:
            while not force and self.bound is not None and len(self._d) >= self.bound:
                if self._aborted:
                    raise _Aborted
                self._cv.wait(0.1)
            if self._aborted:
                raise _Aborted
            self._push(x, count=not force)

    def put_drop_oldest(self, x: Any) -> Any:
        """Put without blocking; if full, remove and return the oldest element (else None)."""
        with self._cv:
            dropped = None
            if self.bound is not None and len(self._d) >= self.bound:
                dropped = self._d.popleft()
            self._push(x)
            return dropped

    def get(self, timeout: float | None = None) -> Any:
        """Next element; raises TimeoutError after `timeout` s (None: wait forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while not self._d:
                if self._aborted:
                    raise _Aborted
                if deadline is not None:
                    rem = deadline - time.monotonic()
                    if rem <= 0:
                        raise TimeoutError
                    self._cv.wait(min(rem, 0.1))
                else:
                    self._cv.wait(0.1)
            x = self._d.popleft()
            self._cv.notify_all()
            return x

    def abort(self) -> None:
        with self._cv:
            self._aborted = True
            self._cv.notify_all()


LATENCY_WINDOW = 10_000  # frames whose latencies the percentiles cover (~5.5 min at 30 fps, 320 KB)


@dataclass
class ExecutorStats:
    mode: str
    workers: list[list[str]]  # stage names per worker
    queue_bound: int
    submitted: int = 0
    completed: int = 0
    dropped: int = 0
    dropped_indices: list[int] = field(default_factory=list)  # frame indices (first 10000)
    max_queue_depth: list[int] = field(default_factory=list)  # per inter-stage queue (input first)
    stage_ms: dict[str, float] = field(default_factory=dict)  # total busy time per stage
    # submit -> result of the last LATENCY_WINDOW completed frames (bounded: a run may last months)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    wall_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0

    def latency_percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1))))]

    def report(self) -> str:
        groups = " | ".join("+".join(g) for g in self.workers)
        return (f"{self.mode}: {self.completed}/{self.submitted} frames in {self.wall_s:.2f} s = {self.fps:.1f} fps, "
                f"dropped {self.dropped}, latency p50 {self.latency_percentile(50):.1f} ms p90 "
                f"{self.latency_percentile(90):.1f} ms, workers [{groups}], queue bound {self.queue_bound} "
                f"(max depth {self.max_queue_depth})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "workers": self.workers, "queue_bound": self.queue_bound,
            "submitted": self.submitted, "completed": self.completed, "dropped": self.dropped,
            "dropped_indices": self.dropped_indices[:100], "max_queue_depth": self.max_queue_depth,
            "fps": round(self.fps, 3), "latency_p50_ms": round(self.latency_percentile(50), 3),
            "latency_p90_ms": round(self.latency_percentile(90), 3),
            "stage_ms": {k: round(v, 3) for k, v in self.stage_ms.items()},
        }


def group_stages(stages: Sequence[Stage], placement: Placement | None, by: str = "placement") -> list[list[Stage]]:
    """Split the ordered stages into worker groups (see module docstring)."""
    if placement is None or by == "stage":
        return [[s] for s in stages]
    groups: list[list[Stage]] = []
    units_of: list[set[str]] = []
    for s in stages:
        units = {u for m in s.modules if (u := placement.assignment.get(m)) is not None}
        if groups and units and units & units_of[-1]:
            groups[-1].append(s)
            units_of[-1] |= units
        else:
            groups.append([s])
            units_of.append(set(units))
    return groups


class PipelineExecutor:
    """Run stages over frames as a pipeline (or sequentially) with in-order, drop-counted output.

    Typical use::

        with PipelineExecutor(stages, placement, queue_size=2) as ex:
            for item in ex.run(source):       # frames in, WorkItems out (in order)
                write(item)
        print(ex.stats.report())
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        placement: Placement | None = None,
        queue_size: int = 2,
        *,
        mode: str = "pipelined",
        drop: str = "oldest",
        controller: RateController | None = None,
        group_by: str = "placement",
        on_drop: Callable[[WorkItem], None] | None = None,
    ) -> None:
        validate_stages(stages)
        if queue_size not in (1, 2, 3, 4):
            raise ValueError(f"queue_size must be 1..4 (got {queue_size}); bigger queues only add latency")
        if mode not in ("pipelined", "sequential"):
            raise ValueError(f"mode must be 'pipelined' or 'sequential', not {mode!r}")
        if drop not in ("oldest", "block"):
            raise ValueError(f"drop must be 'oldest' or 'block', not {drop!r}")
        self.stages = list(stages)
        self.placement = placement
        self.queue_size = queue_size
        self.mode = mode
        self.drop = drop
        self.controller = controller
        self.on_drop = on_drop
        self._required = {s.name for s in stages if not s.optional}
        self.groups = group_stages(self.stages, placement, group_by) if mode == "pipelined" else [self.stages]
        self.stats = ExecutorStats(mode, [[s.name for s in g] for g in self.groups], queue_size)
        self.stats.stage_ms = {s.name: 0.0 for s in self.stages}
        self._queues: list[BoundedQueue] = []
        self._out = BoundedQueue(None)  # drained by get()/run(); bounded in practice by the pipeline
        self._threads: list[threading.Thread] = []
        self._seq = 0
        self._last_out = -1
        self._started = False
        self._finished = False
        self._ended = False
        self._t0 = 0.0
        self._lock = threading.Lock()

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> PipelineExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._t0 = time.perf_counter()
        if self.mode == "sequential":
            return
        self._queues = [BoundedQueue(self.queue_size) for _ in self.groups]
        for i, g in enumerate(self.groups):
            out = self._queues[i + 1] if i + 1 < len(self.groups) else self._out
            t = threading.Thread(target=self._worker, args=(g, self._queues[i], out),
                                 name=f"edgeaffect-{'+'.join(s.name for s in g)}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers (pending frames are abandoned; call finish() + drain to keep them)."""
        for q in self._queues:
            q.abort()
        self._out.abort()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        self._update_depths()
        if self._t0 and not self.stats.wall_s:
            self.stats.wall_s = time.perf_counter() - self._t0

    # -------------------------------------------------------------- work
    def _run_stages(self, group: Sequence[Stage], e: _Entry) -> _Entry | _Failed:
        item = e.item
        for s in group:
            t0 = time.perf_counter()
            try:
                out = s.fn(item)
            except Exception as exc:  # noqa: BLE001 - re-raised in the consumer, in order
                return _Failed(e, s.name, exc)
            dt = (time.perf_counter() - t0) * 1000
            if not isinstance(out, WorkItem):
                return _Failed(e, s.name, TypeError(f"stage {s.name!r} returned {type(out).__name__}, not WorkItem"))
            item = out
            item.timings_ms[s.name] = dt
            with self._lock:
                self.stats.stage_ms[s.name] += dt
        e.item = item
        return e

    def _worker(self, group: Sequence[Stage], q_in: BoundedQueue, q_out: BoundedQueue) -> None:
        try:
            while True:
                x = q_in.get()
                if x is _END:
                    q_out.put(_END, force=True)
                    return
                if isinstance(x, _Failed):
                    q_out.put(x, force=True)
                    continue
                q_out.put(self._run_stages(group, x))
        except _Aborted:
            return

    def _wrap(self, x: Frame | WorkItem) -> _Entry:
        item = x if isinstance(x, WorkItem) else WorkItem(frame=x)
        e = _Entry(self._seq, item, time.perf_counter())
        self._seq += 1
        if self.controller is not None:
            self.controller.apply(item, e.seq)
        bad = item.skipped & self._required
        if bad:  # never skip a required stage (tracking state would break)
            item.skipped -= bad
        return e

    def submit(self, x: Frame | WorkItem) -> WorkItem | None:
        """Queue a frame. Returns the WorkItem dropped to make room (drop='oldest'), else None."""
        if self._finished:
            raise RuntimeError("submit() after finish()")
        self.start()
        e = self._wrap(x)
        self.stats.submitted += 1
        if self.mode == "sequential":
            r = self._run_stages(self.stages, e)
            self._out.put(r)
            return None
        q = self._queues[0]
        if self.drop == "block":
            q.put(e)
            return None
        old = q.put_drop_oldest(e)
        if old is None:
            return None
        self.stats.dropped += 1
        if len(self.stats.dropped_indices) < 10000:
            self.stats.dropped_indices.append(old.item.frame.index)
        if self.controller is not None:
            self.controller.on_drop(old.item)
        if self.on_drop is not None:
            self.on_drop(old.item)
        return old.item

    def finish(self) -> None:
        """No more frames: everything queued is still processed and delivered."""
        if self._finished:
            return
        self.start()
        self._finished = True
        if self.mode == "sequential":
            self._out.put(_END)
        else:
            self._queues[0].put(_END, force=True)

    def get(self, timeout: float | None = None) -> WorkItem | None:
        """Next result in order; None on timeout or after the last one (see `done`)."""
        if self._ended:
            return None
        try:
            x = self._out.get(timeout)
        except (TimeoutError, _Aborted):
            return None
        if x is _END:
            self._ended = True
            self.stats.wall_s = time.perf_counter() - self._t0
            self._update_depths()
            return None
        if isinstance(x, _Failed):
            self._ended = True
            self.close()
            raise x.exc
        if x.seq <= self._last_out:
            raise RuntimeError(f"pipeline order violated: frame seq {x.seq} after {self._last_out}")
        self._last_out = x.seq
        lat = (time.perf_counter() - x.t_submit) * 1000
        self.stats.completed += 1
        self.stats.latencies_ms.append(lat)
        x.item.timings_ms["pipeline_latency"] = lat
        if self.controller is not None:
            self.controller.on_complete(x.item, lat)
        return x.item

    @property
    def done(self) -> bool:
        return self._ended

    def run(self, frames: Iterable[Frame | WorkItem]) -> Iterator[WorkItem]:
        """Feed `frames`, yield results in order as they complete, then drain."""
        self.start()
        try:
            for f in frames:
                self.submit(f)
                while (r := self.get(timeout=0)) is not None:
                    yield r
            self.finish()
            while (r := self.get()) is not None:
                yield r
        finally:
            self.close()

    def _update_depths(self) -> None:
        self.stats.max_queue_depth = [q.max_depth for q in self._queues]

    def queue_depths(self) -> list[int]:
        return [len(q) for q in self._queues]
