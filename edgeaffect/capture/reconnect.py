"""Live-source wrappers: reconnect with back-off, and the latest-frame policy.

ReconnectingSource(factory): `factory()` builds a fresh (unopened) source. A failed open is
retried after each back-off delay; a read failure (SourceError, or None from a live source)
closes the source and re-opens it the same way. A camera that never opens raises
SourceError after `open_retries` attempts (bounded: never hangs); after a disconnect,
`max_retries` bounds the attempts (None = keep trying, for unattended devices). Output
frames keep strictly increasing timestamps and indices across reconnects; the index jumps
by the number of frame periods the outage lasted, so the gap is visible downstream.

Unattended devices (a kiosk whose USB camera is re-plugged an hour later): `retry_forever=True`
retries both the first open and every re-open without limit, with the back-off capped at its
last delay (`capped_backoff(60)` = 0.5, 1, 2, 4, ... 60 s). `set_hooks()` lets the run loop
see the outage: `on_event(kind, fields)` gets camera_lost / camera_retry / camera_restored
(written as status lines), `heartbeat()` is called at least every second while waiting (the
systemd watchdog ping: waiting for a camera is not a hang), and `should_stop()` ends the wait
(SIGTERM during an outage) with a SourceError.

LatestFrameSource(inner): a grabber thread reads continuously and keeps only the newest
frame; read() returns a frame newer than the last one returned (waiting for it), so a slow
consumer always sees the freshest image and the camera driver's queue never backs up.
Overwritten frames are counted (`skipped`) and show as index gaps.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from ..errors import SourceError
from .base import Frame, FrameSource

log = logging.getLogger("edgeaffect.capture")

EventHook = Callable[[str, dict], None]


def capped_backoff(cap_s: float, first_s: float = 0.5) -> tuple[float, ...]:
    """Doubling delays from `first_s` up to `cap_s` (the last one repeats)."""
    if cap_s <= 0 or first_s <= 0:
        raise ValueError("back-off delays must be > 0")
    out = [min(first_s, cap_s)]
    while out[-1] < cap_s:
        out.append(min(out[-1] * 2, cap_s))
    return tuple(out)


def set_source_hooks(src: object, **hooks: object) -> bool:
    """Hand the run loop's hooks to a source that takes them (ReconnectingSource, LatestFrameSource)."""
    f = getattr(src, "set_hooks", None)
    if f is None:  # a wrapper (e.g. ConditionedSource): hand them to the source it wraps
        inner = getattr(src, "inner", None)
        return inner is not None and set_source_hooks(inner, **hooks)
    f(**hooks)
    return True


class ReconnectingSource(FrameSource):
    is_live = True

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        backoff: Sequence[float] = (0.5, 1, 2, 5),
        max_retries: int | None = 10,
        *,
        open_retries: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        name: str | None = None,
        retry_forever: bool = False,
    ) -> None:
        if not backoff:
            raise ValueError("backoff needs at least one delay")
        self.factory = factory
        self.backoff = tuple(float(b) for b in backoff)
        self.retry_forever = retry_forever
        self.max_retries = None if retry_forever else max_retries
        self.open_retries: int | None = None if retry_forever else (open_retries if open_retries is not None else len(self.backoff))
        self._sleep = sleep
        self._on_event: EventHook | None = None
        self._heartbeat: Callable[[], None] | None = None
        self._should_stop: Callable[[], bool] | None = None
        self.reconnecting = False  # True while the camera is being (re-)opened after a failure
        self.attempts = 0  # failed open attempts in the current outage
        self._outage = False
        self._src: FrameSource | None = None
        self.reconnects = 0
        self.failures: list[str] = []
        self._last_ts: float | None = None
        self._last_index = -1
        self._offset_ts = 0.0
        self._offset_index = 0
        self._period_ms = 33.3
        self._pending_gap = False
        self._t_lost = 0.0
        self.name = name or "reconnecting"

    @property
    def fps(self) -> float | None:
        return self._src.fps if self._src is not None else None

    def set_hooks(self, *, on_event: EventHook | None = None, heartbeat: Callable[[], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> None:
        self._on_event, self._heartbeat, self._should_stop = on_event, heartbeat, should_stop

    def _emit(self, kind: str, **fields: object) -> None:
        if self._on_event is not None:
            try:
                self._on_event(kind, {"source": self.name, **fields})
            except Exception as e:  # noqa: BLE001 - reporting must never stop the reconnect loop
                log.warning("status hook failed: %s", e)

    def _wait(self, delay: float) -> None:
        """Back-off sleep; with a heartbeat, in slices of <= 1 s (watchdog pings, stop checks)."""
        if self._heartbeat is None and self._should_stop is None:
            self._sleep(delay)
            return
        left = delay
        while True:
            if self._should_stop is not None and self._should_stop():
                raise SourceError("stopped while waiting for the camera")
            if self._heartbeat is not None:
                self._heartbeat()
            if left <= 0:
                return
            step = min(1.0, left)
            self._sleep(step)
            left -= step

    def _open_new(self, attempts: int | None, why: str) -> None:
        n = 0
        last = ""
        self.reconnecting = True
        try:
            while True:
                src = None
                try:
                    src = self.factory()
                    src.open()
                    self._src = src
                    if src.fps:
                        self._period_ms = 1000.0 / src.fps
                    if self._outage:
                        self._outage = False
                        self._emit("camera_restored", attempts=n + 1,
                                   outage_s=round(time.monotonic() - self._t_lost, 3) if self._t_lost else None)
                    self.attempts = 0
                    return
                except SourceError as e:
                    last = str(e)
                    if src is not None:
                        with contextlib.suppress(Exception):
                            src.close()
                n += 1
                self.attempts = n
                if len(self.failures) < 100:  # bounded: a camera retried forever must not grow a list forever
                    self.failures.append(last)
                if attempts is not None and n >= attempts:
                    raise SourceError(f"{why}: gave up after {n} attempt{'s' if n != 1 else ''} "
                                      f"(back-off {', '.join(f'{b:g}' for b in self.backoff)} s); last error: {last}")
                delay = self.backoff[min(n - 1, len(self.backoff) - 1)]
                if not self._outage:
                    self._outage = True
                    self._t_lost = self._t_lost or time.monotonic()
                    self._emit("camera_lost", reason=last, phase="open")
                self._emit("camera_retry", attempt=n, error=last, next_retry_s=delay)
                log.warning("%s: attempt %d failed (%s); retrying in %.1f s", why, n, last, delay)
                self._wait(delay)
        finally:
            self.reconnecting = False

    def open(self) -> None:
        if self._src is None:
            self._t_lost = 0.0
            self._open_new(self.open_retries, "camera could not be opened")

    def _reconnect(self, reason: str) -> None:
        log.warning("source lost (%s); reconnecting", reason)
        if len(self.failures) < 100:
            self.failures.append(reason)
        if self._src is not None:
            with contextlib.suppress(Exception):  # a dead device may fail to close; we re-open anyway
                self._src.close()
            self._src = None
        self._t_lost = time.monotonic()
        self._outage = True
        self._emit("camera_lost", reason=reason, phase="read")
        self.reconnecting = True
        self._wait(self.backoff[0])
        self._open_new(self.max_retries, f"camera lost ({reason}) and could not be re-opened")
        self.reconnects += 1
        self._pending_gap = True

    def read(self) -> Frame | None:
        if self._src is None:
            self.open()
        while True:
            assert self._src is not None
            try:
                f = self._src.read()
            except SourceError as e:
                self._reconnect(str(e))
                continue
            if f is None:
                if not self._src.is_live:
                    return None  # end of a finite source (a file)
                self._reconnect("live source returned no frame")
                continue
            return self._remap(f)

    def _remap(self, f: Frame) -> Frame:
        if self._pending_gap and self._last_ts is not None:
            outage_ms = max((time.monotonic() - self._t_lost) * 1000.0, self._period_ms)
            lost = max(1, int(round(outage_ms / self._period_ms)))
            self._offset_ts = self._last_ts + outage_ms - f.timestamp_ms
            self._offset_index = self._last_index + lost - f.index
            self._pending_gap = False
        ts = f.timestamp_ms + self._offset_ts
        idx = f.index + self._offset_index
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + 1e-3
        if idx <= self._last_index:
            idx = self._last_index + 1
        self._last_ts, self._last_index = ts, idx
        f.meta.setdefault("source_index", f.index)
        f.meta["reconnects"] = self.reconnects
        f.timestamp_ms, f.index = ts, idx
        return f

    def close(self) -> None:
        if self._src is not None:
            try:
                self._src.close()
            finally:
                self._src = None


class LatestFrameSource(FrameSource):
    is_live = True

    def __init__(self, inner: FrameSource, *, read_timeout_s: float = 10.0) -> None:
        self.inner = inner
        self.read_timeout_s = read_timeout_s
        self._cv = threading.Condition()
        self._latest: Frame | None = None
        self._seq = 0
        self._taken = 0
        self._error: BaseException | None = None
        self._ended = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.skipped = 0  # frames overwritten before anyone read them
        self.name = f"latest({getattr(inner, 'name', 'source')})"
        self._should_stop: Callable[[], bool] | None = None

    def set_hooks(self, **hooks: object) -> None:
        """Forwarded to the inner source; `should_stop` also ends a wait for a frame here."""
        self._should_stop = hooks.get("should_stop")  # type: ignore[assignment]
        set_source_hooks(self.inner, **hooks)

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    def open(self) -> None:
        if self._thread is not None:
            return
        self.inner.open()
        self._thread = threading.Thread(target=self._grab, name="edgeaffect-grabber", daemon=True)
        self._thread.start()

    def _grab(self) -> None:
        try:
            while not self._stop:
                f = self.inner.read()
                with self._cv:
                    if f is None:
                        self._ended = True
                        self._cv.notify_all()
                        return
                    if self._latest is not None and self._seq > self._taken:
                        self.skipped += 1
                    self._latest = f
                    self._seq += 1
                    self._cv.notify_all()
        except BaseException as e:  # noqa: BLE001 - handed to the reader thread
            with self._cv:
                self._error = e
                self._cv.notify_all()

    def read(self) -> Frame | None:
        if self._thread is None:
            self.open()
        deadline = time.monotonic() + self.read_timeout_s
        with self._cv:
            while self._seq == self._taken:
                if self._error is not None:
                    err, self._error = self._error, None
                    raise err if isinstance(err, SourceError) else SourceError(f"capture thread failed: {err}")
                if self._ended:
                    return None
                if self._should_stop is not None and self._should_stop():
                    return None
                if getattr(self.inner, "reconnecting", False):  # an outage is handled (and reported) by the inner source
                    deadline = time.monotonic() + self.read_timeout_s
                rem = deadline - time.monotonic()
                if rem <= 0:
                    raise SourceError(f"no frame from {self.inner.name} for {self.read_timeout_s:g} s")
                self._cv.wait(min(rem, 0.1))
            self._taken = self._seq
            f = self._latest
            assert f is not None
            return f

    def close(self) -> None:
        self._stop = True
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout=2.0)
        self.inner.close()
