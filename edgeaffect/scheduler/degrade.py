"""Rate control and graceful degradation under overload or thermal throttling.

Defined order (each level includes the previous ones; `track` is never skipped, because the
landmarks are what every other output and the next frame's crop depend on):

====  ================  ===========================================================
lvl   name              effect
====  ================  ===========================================================
0     normal            only the profile's own rates (au_every, affect_every)
1     affect_reduced    the temporal VA net runs every `degraded_affect_every` frames
2     au_alternate      ... and the AU net runs on alternate frames only
====  ================  ===========================================================

Triggers, re-evaluated on every submitted frame:
- thermal: hottest zone >= throttle_c, or `vcgencmd get_throttled` says throttled now
  -> at least level 1; >= critical_c -> level 2 (3 C hysteresis on the way back);
- overload: more than `overload_drop_ratio` of the last `window` frames dropped at the
  executor's input, or their median latency above `latency_budget_ms` -> one level up;
  below `recover_drop_ratio` (and within budget) for a whole window -> one level down.
  At least `hold_frames` frames pass between overload level changes.

What was skipped and why is written to the WorkItem (`skipped`) and to
`frame.meta["degrade"] = {"level", "name", "reason"}` so the output line shows it.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from ..thermal import ThermalMonitor, ThermalReading
from .stages import WorkItem

LEVEL_NAMES = ("normal", "affect_reduced", "au_alternate")
MAX_LEVEL = len(LEVEL_NAMES) - 1


@dataclass
class DegradeConfig:
    au_every: int = 1  # profile rate: AU net every k frames even when healthy
    affect_every: int = 1  # profile rate: VA net every k frames even when healthy
    degraded_affect_every: int = 3  # level >= 1
    degraded_au_every: int = 2  # level >= 2 ("alternate frames")
    throttle_c: float | None = 80.0
    critical_c: float | None = 85.0
    hysteresis_c: float = 3.0
    overload_drop_ratio: float = 0.10
    recover_drop_ratio: float = 0.02
    latency_budget_ms: float | None = None
    window: int = 30
    hold_frames: int = 30
    enabled: bool = True


class DegradeController:
    """Implements the executor's RateController protocol (apply / on_drop / on_complete)."""

    def __init__(self, config: DegradeConfig | None = None, thermal: ThermalMonitor | None = None) -> None:
        self.cfg = config or DegradeConfig()
        self.thermal = thermal
        self.thermal_level = 0
        self.overload_level = 0
        self._events: deque[bool] = deque(maxlen=max(2, self.cfg.window))  # True = dropped
        self._lat: deque[float] = deque(maxlen=max(2, self.cfg.window))
        self._since_change = 0
        self.last_thermal: ThermalReading | None = None
        self.level_changes: list[tuple[int, int, str]] = []  # (seq, level, reason)
        self._prev_level = 0
        self._reason = ""

    @property
    def level(self) -> int:
        return max(self.thermal_level, self.overload_level) if self.cfg.enabled else 0

    # ------------------------------------------------------------ triggers
    def _update_thermal(self) -> None:
        if self.thermal is None or not self.cfg.enabled:
            return
        r = self.thermal.read()
        self.last_thermal = r
        c = self.cfg
        t = r.temp_c
        lvl = 0
        if t is not None and c.critical_c is not None and (
            t >= c.critical_c or (self.thermal_level == 2 and t >= c.critical_c - c.hysteresis_c)
        ):
            lvl = 2
        elif r.throttled or (t is not None and c.throttle_c is not None and (
            t >= c.throttle_c or (self.thermal_level >= 1 and t >= c.throttle_c - c.hysteresis_c)
        )):
            lvl = 1
        self.thermal_level = lvl

    def _update_overload(self) -> None:
        c = self.cfg
        self._since_change += 1
        if len(self._events) < self._events.maxlen or self._since_change < c.hold_frames:
            return
        ratio = sum(self._events) / len(self._events)
        slow = (c.latency_budget_ms is not None and len(self._lat) >= 3
                and statistics.median(self._lat) > c.latency_budget_ms)
        if (ratio > c.overload_drop_ratio or slow) and self.overload_level < MAX_LEVEL:
            self.overload_level += 1
            self._since_change = 0
            self._events.clear()
            self._lat.clear()
        elif ratio <= c.recover_drop_ratio and not slow and self.overload_level > 0:
            self.overload_level -= 1
            self._since_change = 0
            self._events.clear()
            self._lat.clear()

    def reason(self) -> str:
        parts = []
        if self.thermal_level and self.last_thermal is not None:
            r = self.last_thermal
            t = f"{r.temp_c:.1f} C" if r.temp_c is not None else "n/a"
            parts.append(f"thermal ({t}{', firmware throttling' if r.throttled else ''})")
        if self.overload_level:
            parts.append("overload (frames dropped / over latency budget)")
        return " + ".join(parts)

    # ------------------------------------------------------------ protocol
    def apply(self, item: WorkItem, seq: int) -> None:
        self._update_thermal()
        self._update_overload()
        lvl = self.level
        c = self.cfg
        affect_k = max(c.affect_every, c.degraded_affect_every if lvl >= 1 else 1)
        au_k = max(c.au_every, c.degraded_au_every if lvl >= 2 else 1)
        if affect_k > 1 and seq % affect_k:
            item.skipped.add("affect")
        if au_k > 1 and seq % au_k:
            item.skipped.add("au")
        if lvl != self._prev_level:
            self._reason = self.reason() or "recovered"
            self.level_changes.append((seq, lvl, self._reason))
            self._prev_level = lvl
        if lvl:
            item.frame.meta["degrade"] = {"level": lvl, "name": LEVEL_NAMES[lvl], "reason": self.reason()}
        elif item.skipped:
            item.frame.meta["degrade"] = {"level": 0, "name": "rate", "reason": "profile rates"}

    def on_drop(self, item: WorkItem) -> None:
        self._events.append(True)

    def on_complete(self, item: WorkItem, latency_ms: float) -> None:
        self._events.append(False)
        self._lat.append(latency_ms)
