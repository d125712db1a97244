"""Live-source wrappers: reconnect with back-off, and the latest-frame policy.

ReconnectingSource(factory): `factory()` builds a fresh (unopened) source. A failed open is
retried after each back-off delay; a read failure (SourceError, or None from a live source)
closes the source and re-opens it the same way. A camera that never opens raises
SourceError after `open_retries` attempts (bounded: never hangs); after a disconnect,
`max_retries` bounds the attempts (None = keep trying, for unattended devices). Output
frames keep strictly increasing timestamps and indices across reconnects; the index jumps
by the number of frame periods the outage lasted, so the gap is visible downstream.

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
    ) -> None:
        if not backoff:
            raise ValueError("backoff needs at least one delay")
        self.factory = factory
        self.backoff = tuple(float(b) for b in backoff)
        self.max_retries = max_retries
        self.open_retries = open_retries if open_retries is not None else len(self.backoff)
        self._sleep = sleep
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

    def _open_new(self, attempts: int | None, why: str) -> None:
        n = 0
        last = ""
        while True:
            src = None
            try:
                src = self.factory()
                src.open()
                self._src = src
                if src.fps:
                    self._period_ms = 1000.0 / src.fps
                return
            except SourceError as e:
                last = str(e)
                if src is not None:
                    with contextlib.suppress(Exception):
                        src.close()
            n += 1
            self.failures.append(last)
            if attempts is not None and n >= attempts:
                raise SourceError(f"{why}: gave up after {n} attempt{'s' if n != 1 else ''} "
                                  f"(back-off {', '.join(f'{b:g}' for b in self.backoff)} s); last error: {last}")
            delay = self.backoff[min(n - 1, len(self.backoff) - 1)]
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", why, n, last, delay)
            self._sleep(delay)

    def open(self) -> None:
        if self._src is None:
            self._open_new(self.open_retries, "camera could not be opened")

    def _reconnect(self, reason: str) -> None:
        log.warning("source lost (%s); reconnecting", reason)
        self.failures.append(reason)
        if self._src is not None:
            with contextlib.suppress(Exception):  # a dead device may fail to close; we re-open anyway
                self._src.close()
            self._src = None
        self._t_lost = time.monotonic()
        self._sleep(self.backoff[0])
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
