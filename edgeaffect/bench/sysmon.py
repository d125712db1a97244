"""Process and system readings for benchmarks: RSS, peak RSS, CPU time, system load, clocks, heat.

Stdlib first (/proc, resource, os.times) so it runs on a bare device image; psutil is used
only when importable and only where /proc is missing (macOS). Every reader returns None
when it cannot read, never raises.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float | None:
    """Current resident set size of this process (MB)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except Exception:
        return None


def peak_rss_mb() -> float | None:
    """Lifetime peak RSS of this process (MB): VmHWM, else getrusage's ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    try:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r / 2**20 if sys.platform == "darwin" else r / 1024.0
    except Exception:
        return None


def process_cpu_s() -> float:
    """User + system CPU seconds of this process (all threads)."""
    t = os.times()
    return t.user + t.system


def _proc_stat() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            parts = fh.readline().split()
        vals = [int(v) for v in parts[1:]]
    except (OSError, ValueError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return sum(vals) - idle, sum(vals)


def cpu_mhz(cpu: int = 0) -> float | None:
    try:
        v = Path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq").read_text().strip()
        return int(v) / 1000.0
    except (OSError, ValueError):
        return None


@dataclass
class Sample:
    t_s: float
    rss_mb: float | None
    temp_c: float | None
    throttled: bool
    cpu_mhz: float | None


@dataclass
class SystemMonitor:
    """Start/stop bracket plus cheap periodic samples (call `maybe_sample()` between frames)."""

    interval_s: float = 1.0
    thermal: bool = True
    samples: list[Sample] = field(default_factory=list)
    _t0: float = 0.0
    _cpu0: float = 0.0
    _stat0: tuple[int, int] | None = None
    _next: float = 0.0
    _thermal: Any = None
    result: dict[str, Any] = field(default_factory=dict)

    def start(self) -> SystemMonitor:
        if self.thermal:
            from ..thermal import ThermalMonitor

            self._thermal = ThermalMonitor(min_interval_s=0.0)
        self._t0 = time.perf_counter()
        self._cpu0 = process_cpu_s()
        self._stat0 = _proc_stat()
        self._load0 = _loadavg()
        self.samples.clear()
        self.sample()
        return self

    def sample(self) -> Sample:
        temp, thr = None, False
        if self._thermal is not None:
            r = self._thermal.read(force=True)
            temp, thr = r.temp_c, r.throttled
        s = Sample(time.perf_counter() - self._t0, rss_mb(), temp, thr, cpu_mhz())
        self.samples.append(s)
        self._next = s.t_s + self.interval_s
        return s

    def maybe_sample(self) -> None:
        if time.perf_counter() - self._t0 >= self._next:
            self.sample()

    def stop(self) -> dict[str, Any]:
        self.sample()
        wall = time.perf_counter() - self._t0
        cpu = process_cpu_s() - self._cpu0
        stat1 = _proc_stat()
        sys_busy = None
        if self._stat0 and stat1 and stat1[1] > self._stat0[1]:
            sys_busy = (stat1[0] - self._stat0[0]) / (stat1[1] - self._stat0[1])
        ncpu = os.cpu_count() or 1
        temps = [s.temp_c for s in self.samples if s.temp_c is not None]
        mhz = [s.cpu_mhz for s in self.samples if s.cpu_mhz is not None]
        rss = [s.rss_mb for s in self.samples if s.rss_mb is not None]
        own = cpu / wall / ncpu if wall > 0 else None
        self.result = {
            "wall_s": round(wall, 3),
            "process_cpu_s": round(cpu, 3),
            # process CPU time / wall: 1.0 = one core fully busy (can exceed 1 with threads)
            "cpu_utilisation_cores": round(cpu / wall, 3) if wall > 0 else None,
            "cpu_utilisation_of_machine": round(own, 3) if own is not None else None,
            # whole machine (all processes) busy fraction over the run, from /proc/stat:
            # what else was running shows as system_busy - process share
            "system_cpu_busy": round(sys_busy, 3) if sys_busy is not None else None,
            "other_load_cores": round((sys_busy - own) * ncpu, 2) if sys_busy is not None and own is not None else None,
            "loadavg_start": self._load0,
            "loadavg_end": _loadavg(),
            "rss_start_mb": round(rss[0], 1) if rss else None,
            "rss_end_mb": round(rss[-1], 1) if rss else None,
            "peak_rss_mb": _round(peak_rss_mb(), 1),
            "temp_c": {"start": temps[0], "max": max(temps), "end": temps[-1]} if temps else None,
            "throttled_any": any(s.throttled for s in self.samples),
            "cpu_mhz": {"min": min(mhz), "max": max(mhz), "mean": round(sum(mhz) / len(mhz), 1)} if mhz else None,
            "thermal_source": getattr(self._thermal.read(), "source", None) if self._thermal else None,
        }
        return self.result

    def series(self) -> dict[str, list]:
        return {
            "t_s": [round(s.t_s, 3) for s in self.samples],
            "rss_mb": [_round(s.rss_mb, 2) for s in self.samples],
            "temp_c": [s.temp_c for s in self.samples],
            "cpu_mhz": [s.cpu_mhz for s in self.samples],
            "throttled": [s.throttled for s in self.samples],
        }


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _round(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)
