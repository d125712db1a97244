"""Temperature and throttling readers: Linux thermal zones and the Raspberry Pi's vcgencmd.

Everything here is cheap, never raises on a missing file/tool (returns None / empty), and
takes its paths and command runner as parameters so tests can point it at fakes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

THERMAL_ROOT = "/sys/class/thermal"


@dataclass(frozen=True)
class ThermalZone:
    name: str  # thermal_zone0
    type: str  # cpu-thermal, x86_pkg_temp, CPU-therm (Jetson) ...
    temp_c: float


def read_thermal_zones(root: str | Path = THERMAL_ROOT) -> list[ThermalZone]:
    """All readable /sys/class/thermal/thermal_zone*/temp (millidegrees C) as ThermalZones."""
    zones: list[ThermalZone] = []
    base = Path(root)
    try:
        cands = sorted(base.glob("thermal_zone*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    except OSError:
        return zones
    for z in cands:
        try:
            raw = (z / "temp").read_text().strip()
            t = float(raw) / 1000.0
        except (OSError, ValueError):
            continue
        try:
            typ = (z / "type").read_text().strip()
        except OSError:
            typ = "unknown"
        if -40.0 < t < 200.0:  # disconnected sensors report nonsense (e.g. -274 C)
            zones.append(ThermalZone(z.name, typ, t))
    return zones


Runner = Callable[..., subprocess.CompletedProcess]


def vcgencmd_path() -> str | None:
    return shutil.which("vcgencmd") or next(
        (p for p in ("/usr/bin/vcgencmd", "/opt/vc/bin/vcgencmd") if Path(p).exists()), None
    )


def _vcgencmd(args: list[str], exe: str | None, run: Runner) -> str | None:
    exe = exe or vcgencmd_path()
    if not exe:
        return None
    try:
        r = run([exe, *args], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def vcgencmd_temp(exe: str | None = None, run: Runner = subprocess.run) -> float | None:
    """SoC temperature from `vcgencmd measure_temp` ("temp=48.3'C"), or None."""
    out = _vcgencmd(["measure_temp"], exe, run)
    m = re.search(r"temp=([-\d.]+)", out or "")
    return float(m.group(1)) if m else None


@dataclass(frozen=True)
class ThrottleState:
    """Decoded `vcgencmd get_throttled` bits (Raspberry Pi firmware)."""

    raw: int

    def _bit(self, n: int) -> bool:
        return bool(self.raw >> n & 1)

    under_voltage = property(lambda self: self._bit(0))
    freq_capped = property(lambda self: self._bit(1))
    throttled = property(lambda self: self._bit(2))
    soft_temp_limit = property(lambda self: self._bit(3))
    under_voltage_occurred = property(lambda self: self._bit(16))
    freq_capped_occurred = property(lambda self: self._bit(17))
    throttled_occurred = property(lambda self: self._bit(18))
    soft_temp_limit_occurred = property(lambda self: self._bit(19))

    @property
    def active(self) -> bool:
        """Performance is reduced right now (throttled, frequency capped or soft limit)."""
        return self.throttled or self.freq_capped or self.soft_temp_limit

    def describe(self) -> str:
        now = [n for n, b in (("under-voltage", self.under_voltage), ("freq-capped", self.freq_capped),
                              ("throttled", self.throttled), ("soft-temp-limit", self.soft_temp_limit)) if b]
        return f"0x{self.raw:x}" + (f" ({', '.join(now)})" if now else "")


def parse_throttled(text: str) -> ThrottleState | None:
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text or "")
    return ThrottleState(int(m.group(1), 0)) if m else None


def vcgencmd_throttled(exe: str | None = None, run: Runner = subprocess.run) -> ThrottleState | None:
    return parse_throttled(_vcgencmd(["get_throttled"], exe, run) or "")


@dataclass(frozen=True)
class ThermalReading:
    temp_c: float | None  # hottest zone (or vcgencmd), None if nothing readable
    throttled: bool  # firmware reports throttling/frequency capping right now
    source: str  # "thermal_zone", "vcgencmd", "thermal_zone+vcgencmd", "none"
    detail: str = ""


class ThermalMonitor:
    """Rate-limited reader: `read()` re-reads at most every `min_interval_s` seconds."""

    def __init__(
        self,
        root: str | Path = THERMAL_ROOT,
        *,
        use_vcgencmd: bool = True,
        vcgencmd: str | None = None,
        run: Runner = subprocess.run,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.use_vcgencmd = use_vcgencmd
        self.vcgencmd = vcgencmd
        self.run = run
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._last: ThermalReading | None = None
        self._t = -1e18

    def read(self, force: bool = False) -> ThermalReading:
        now = self.clock()
        if not force and self._last is not None and now - self._t < self.min_interval_s:
            return self._last
        zones = read_thermal_zones(self.root)
        temps = [z.temp_c for z in zones]
        src = ["thermal_zone"] if zones else []
        detail = ", ".join(f"{z.type}={z.temp_c:.1f}C" for z in zones)
        throttled = False
        if self.use_vcgencmd and (self.vcgencmd or vcgencmd_path()):
            t = vcgencmd_temp(self.vcgencmd, self.run)
            th = vcgencmd_throttled(self.vcgencmd, self.run)
            if t is not None:
                temps.append(t)
                detail += f"{', ' if detail else ''}vcgencmd={t:.1f}C"
            if th is not None:
                throttled = th.active
                detail += f"{', ' if detail else ''}get_throttled={th.describe()}"
            if t is not None or th is not None:
                src.append("vcgencmd")
        r = ThermalReading(max(temps) if temps else None, throttled, "+".join(src) or "none", detail)
        self._last, self._t = r, now
        return r
