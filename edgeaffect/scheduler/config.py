"""Scheduler configuration, owned by the scheduler: pacing and queues, per-module rates, thermal policy.

A profile's [scheduler], [rates] and [thermal] tables; each key is declared once here
(type, default, range) and validated by `edgeaffect.configspec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..configspec import Reader, between, one_of, positive, read_section, setting


@dataclass(frozen=True)
class SchedulerConfig:
    target_fps: float = setting(30.0, float, between(0.1, 1000))
    latency_budget_ms: float | None = setting(None, float, positive)  # end-to-end; default 3 frame periods
    queue_size: int = setting(2, int, between(1, 4))
    pipelined: bool = setting(True, bool)
    drop: str = setting("oldest", str, one_of(("oldest", "block")))  # oldest (live) | block (files: every frame)
    profile_runs: int = setting(10, int, between(1, 1000))  # auto placement: timed runs per module and unit
    profile_warmup: int = setting(2, int, between(0, 100))

    @property
    def budget_ms(self) -> float:
        return self.latency_budget_ms if self.latency_budget_ms else 3000.0 / self.target_fps

    @classmethod
    def from_table(cls, r: Reader, table: Any, section: str = "scheduler") -> SchedulerConfig:
        return cls(**read_section(r, table, section, cls))


@dataclass(frozen=True)
class RatesConfig:
    detector: str | int = setting("on_track_loss", (str, int))  # on_track_loss | every_frame | k (also every k frames)
    au_every: int = setting(1, int, between(1, 100))
    affect_every: int = setting(1, int, between(1, 100))
    expected_redetect_ratio: float = setting(0.05, float, between(0.0, 1.0))  # detector share while tracking (placement cost)

    def module_rates(self) -> dict[str, float]:
        if self.detector == "every_frame":
            det = 1.0
        elif isinstance(self.detector, int):
            det = max(1.0 / self.detector, self.expected_redetect_ratio)
        else:
            det = self.expected_redetect_ratio
        # eyes: two patches (both eyes) per face per frame
        return {"detector": det, "landmarks": 1.0, "eyes": 2.0, "au": 1.0 / self.au_every, "temporal": 1.0 / self.affect_every}

    @classmethod
    def from_table(cls, r: Reader, table: Any, section: str = "rates") -> RatesConfig:
        kw = read_section(r, table, section, cls)
        det = kw["detector"]
        if isinstance(det, str) and det not in ("on_track_loss", "every_frame"):
            raise r.fail(f"{section}.detector", f"must be \"on_track_loss\", \"every_frame\" or an integer k >= 1 (got {det!r})")
        if isinstance(det, int) and det < 1:
            raise r.fail(f"{section}.detector", f"must be >= 1 (got {det})")
        return cls(**kw)


@dataclass(frozen=True)
class ThermalConfig:
    throttle_c: float = setting(80.0, float, between(30, 120))  # start degrading (Pi firmware soft-throttles at 80-85 C)
    critical_c: float = setting(85.0, float, between(30, 125))  # degrade to the last level
    poll_s: float = setting(2.0, float, between(0.05, 600))
    degrade: bool = setting(True, bool)  # overload/thermal degradation enabled
    degraded_affect_every: int = setting(3, int, between(2, 100))
    degraded_au_every: int = setting(2, int, between(2, 100))
    zones_root: str = setting("/sys/class/thermal", str)
    use_vcgencmd: bool = setting(True, bool)

    @classmethod
    def from_table(cls, r: Reader, table: Any, section: str = "thermal") -> ThermalConfig:
        t = cls(**read_section(r, table, section, cls))
        if t.critical_c <= t.throttle_c:
            raise r.fail(f"{section}.critical_c", f"must be above throttle_c ({t.throttle_c:g})")
        return t
