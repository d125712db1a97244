"""Time-weighted sliding windows over sample-and-hold states (timestamps, not frame counts).

A state observed at frame t_i holds until the next frame t_{i+1}: the segment [t_i, t_{i+1})
carries it. So a 30 fps and a 12 fps stream of the same minute give the same PERCLOS, and a
dropped frame stretches its neighbour instead of vanishing. Gaps longer than `max_gap_s`
are unobserved time (neither open nor closed).
"""

from __future__ import annotations

from collections import deque


class SegmentWindow:
    """Sum of time per value (True / False) inside [now - window_s, now].

    Adjacent segments of the same value merge, so memory grows with the number of state
    changes in the window, not with the frame rate.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = float(window_s)
        self._segs: deque[list] = deque()  # [t0, t1, value]

    def add(self, t0: float, t1: float, value: bool) -> None:
        if t1 <= t0:
            return
        if self._segs and self._segs[-1][2] == value and abs(self._segs[-1][1] - t0) < 1e-9:
            self._segs[-1][1] = t1
        else:
            self._segs.append([t0, t1, value])
        lo = t1 - self.window_s
        while self._segs and self._segs[0][1] <= lo:
            self._segs.popleft()

    def totals(self, now: float) -> tuple[float, float]:
        """(seconds with value True, seconds observed) inside the window ending at `now`."""
        lo = now - self.window_s
        true_s = seen_s = 0.0
        for t0, t1, v in self._segs:
            d = min(t1, now) - max(t0, lo)
            if d <= 0:
                continue
            seen_s += d
            if v:
                true_s += d
        return true_s, seen_s

    def clear(self) -> None:
        self._segs.clear()


class EpisodeWindow:
    """Episodes (end time, duration) that ended inside the window: blinks, long blinks."""

    def __init__(self, window_s: float) -> None:
        self.window_s = float(window_s)
        self._items: deque[tuple[float, float]] = deque()

    def add(self, end_s: float, duration_s: float) -> None:
        self._items.append((end_s, duration_s))

    def _prune(self, now: float) -> None:
        while self._items and self._items[0][0] < now - self.window_s:
            self._items.popleft()

    def count(self, now: float, min_s: float = 0.0, max_s: float = float("inf")) -> int:
        self._prune(now)
        return sum(1 for _, d in self._items if min_s <= d < max_s)

    def mean_duration(self, now: float, max_s: float = float("inf")) -> float | None:
        self._prune(now)
        ds = [d for _, d in self._items if d < max_s]
        return sum(ds) / len(ds) if ds else None
