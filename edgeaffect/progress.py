"""A one-line progress bar for long runs on a terminal (frames done / total, fps, ETA).

    bar = ProgressBar(total=275, label="run")      # total may be None (camera, --loop) or a callable
    for i, result in enumerate(results, 1):
        bar.update(i)
    bar.close()

Quiet unless the stream is a terminal (a pipe, a log file, CI or `-q` get nothing), redrawn
at most every `interval_s`, cleared on close so the summary line that follows stays clean.
With `duration_s` (a time-bounded benchmark) the bar fills with time instead of frames.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO


def _clock(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """Frames done / total, frames per second over the last few seconds, time left."""

    def __init__(self, total: int | None | Callable[[], int | None] = None, *, label: str = "", unit: str = "frames",
                 duration_s: float | None = None, stream: TextIO | None = None, enabled: bool | None = None,
                 interval_s: float = 0.2, rate_window_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._total = total
        self.label, self.unit, self.duration_s = label, unit, duration_s
        self.interval_s, self.rate_window_s, self.clock = interval_s, rate_window_s, clock
        self.done = 0
        self._t0: float | None = None
        self._last_draw = -1e9
        self._samples: deque[tuple[float, int]] = deque()
        self._width_drawn = 0
        self._filters: list[tuple[logging.Handler, logging.Filter]] = []

    @property
    def total(self) -> int | None:
        t = self._total() if callable(self._total) else self._total
        return int(t) if t else None

    def fps(self) -> float | None:
        """Frames per second over the last `rate_window_s` (None before two samples)."""
        if len(self._samples) < 2:
            return None
        (t_a, n_a), (t_b, n_b) = self._samples[0], self._samples[-1]
        return (n_b - n_a) / (t_b - t_a) if t_b > t_a else None

    def line(self, now: float | None = None) -> str:
        """The text of the bar at this moment (what `update` draws)."""
        now = self.clock() if now is None else now
        elapsed = now - (self._t0 if self._t0 is not None else now)
        fps = self.fps()
        total = self.total
        prefix = f"{self.label} " if self.label else ""
        if self.duration_s:
            frac: float | None = min(1.0, elapsed / self.duration_s)
            left: float | None = self.duration_s - elapsed
            count = f"{self.done:,} {self.unit}"
        elif total:
            frac = min(1.0, self.done / total)
            left = (total - self.done) / fps if fps else None
            count = f"{self.done:,}/{total:,} {self.unit}"
        else:
            frac, left, count = None, None, f"{self.done:,} {self.unit}"
        tail = "  ".join([count, f"{fps:.1f} fps" if fps is not None else "-- fps",
                          f"ETA {_clock(left)}" if left is not None else f"{_clock(elapsed)} elapsed"])
        width = shutil.get_terminal_size((80, 20)).columns
        if frac is None:
            return (prefix + tail)[: width - 1]
        room = min(40, width - len(prefix) - len(tail) - 10)
        if room < 10:  # a narrow terminal keeps the numbers, not the bar
            return f"{prefix}{100 * frac:.0f}%  {tail}"[: width - 1]
        fill = int(frac * room)
        return f"{prefix}[{'#' * fill}{'.' * (room - fill)}] {100 * frac:3.0f}%  {tail}"[: width - 1]

    def update(self, done: int, total: int | None = None) -> None:
        """`done` frames so far (absolute, not a step)."""
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        if total:  # the caller's count wins; else the total given at construction (read lazily)
            self._total = total
        self.done = done
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.rate_window_s:
            self._samples.popleft()
        if self.enabled and now - self._last_draw >= self.interval_s:
            self._last_draw = now
            self._draw(self.line(now))

    def on_progress(self, p: Any) -> None:
        """The run loop's hook (`edgeaffect.session.Progress`: frames, total): draw from it."""
        self.update(int(p.frames), getattr(p, "total", None))

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def __call__(self, *_args: object) -> None:
        """Use as a per-result callback: each call is one more frame."""
        self.advance()

    def _draw(self, text: str) -> None:
        pad = max(0, self._width_drawn - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width_drawn = len(text)

    def clear(self) -> None:
        """Erase the bar now; the next update redraws it (used before a log line is printed)."""
        if self.enabled and self._width_drawn:
            self.stream.write("\r" + " " * self._width_drawn + "\r")
            self.stream.flush()
            self._width_drawn = 0
            self._last_draw = -1e9

    def close(self) -> None:
        """Erase the bar (the caller prints its own summary line)."""
        self.clear()
        for h, f in self._filters:
            h.removeFilter(f)
        self._filters = []

    def __enter__(self) -> ProgressBar:
        """While open, a log record written to a terminal handler first erases the bar (no garbled lines)."""
        if self.enabled:
            bar = self

            class _ClearFirst(logging.Filter):
                def filter(self, record: logging.LogRecord) -> bool:
                    bar.clear()
                    return True

            for h in logging.getLogger().handlers:
                f = _ClearFirst()
                h.addFilter(f)
                self._filters.append((h, f))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
