"""Sustained mode: latency next to temperature, clock and throttle state, interval by interval.

Users report latency tripling after minutes on a Raspberry Pi: the SoC heats up and the
firmware lowers the clock, or a weak power supply trips under-voltage capping. A short
benchmark never sees it. `edgeaffect bench sustained --duration 600 --interval 10` runs the
real analyzer over a looping clip for `duration` seconds and writes one row per interval:

* frames, fps, latency p50/p90/max and thread-CPU p90 of the frames completed in the interval;
* temperature: the hottest /sys/class/thermal zone, and `vcgencmd measure_temp` on a Pi;
* clock: mean `scaling_cur_freq` over the CPUs and `cpuinfo_max_freq` (cpufreq), and
  `vcgencmd measure_clock arm` on a Pi;
* throttle state: `vcgencmd get_throttled` bits on a Pi (throttled / frequency capped /
  soft temperature limit / under-voltage, now and since boot), and on x86 the increase of the
  kernel's `thermal_throttle/*_throttle_count` counters during the interval;
* the 1-minute load average (other work on the machine).

Every reader takes its root directory and command runner as parameters and returns None when
the entry is absent (an x86 VM has no thermal zones and no cpufreq): such columns stay empty,
nothing fails. The summary compares the first and last intervals (p90 drift) and reports the
hottest temperature, the lowest clock and whether any interval was throttled.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..thermal import Runner, ThermalMonitor, parse_throttled, vcgencmd_path
from .stats import summarize


def _read_int(p: Path) -> int | None:
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class DeviceReading:
    temp_c: float | None
    clock_mhz: float | None  # mean current clock over the CPUs (cpufreq) or vcgencmd's arm clock
    clock_max_mhz: float | None
    throttled: bool | None  # None: no way to tell on this machine
    under_voltage: bool | None
    throttle_raw: str | None  # vcgencmd get_throttled value, hex
    throttle_events: int | None  # x86: kernel thermal_throttle counter increase since the previous reading
    sources: list[str] = field(default_factory=list)


class DeviceReader:
    """Temperature / clock / throttle readers over a (possibly fake) sysfs tree and vcgencmd."""

    def __init__(self, sys_root: str | Path = "/sys", *, use_vcgencmd: bool = True, vcgencmd: str | None = None,
                 run: Runner = subprocess.run) -> None:
        self.sys = Path(sys_root)
        self.vcgencmd = vcgencmd or (vcgencmd_path() if use_vcgencmd else None)
        self.run = run
        self.thermal = ThermalMonitor(self.sys / "class" / "thermal", use_vcgencmd=use_vcgencmd, vcgencmd=self.vcgencmd,
                                      run=run, min_interval_s=0.0)
        self._cpus = sorted(self.sys.glob("devices/system/cpu/cpu[0-9]*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
        self._last_count: int | None = self._throttle_count()

    def _throttle_count(self) -> int | None:
        vals = [_read_int(f) for c in self._cpus for f in (c / "thermal_throttle").glob("*_throttle_count")]
        vals = [v for v in vals if v is not None]
        return sum(vals) if vals else None

    def _vc(self, *args: str) -> str | None:
        if not self.vcgencmd:
            return None
        try:
            r = self.run([self.vcgencmd, *args], capture_output=True, text=True, timeout=2)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    def read(self) -> DeviceReading:
        src: list[str] = []
        th = self.thermal.read(force=True)
        if th.source != "none":
            src.append(th.source)
        cur = [_read_int(c / "cpufreq" / "scaling_cur_freq") for c in self._cpus]
        mx = [_read_int(c / "cpufreq" / "cpuinfo_max_freq") for c in self._cpus]
        cur_v = [v for v in cur if v]
        mx_v = [v for v in mx if v]
        clock = round(sum(cur_v) / len(cur_v) / 1000.0, 1) if cur_v else None
        clock_max = round(max(mx_v) / 1000.0, 1) if mx_v else None
        if cur_v:
            src.append("cpufreq")
        throttled: bool | None = None
        under_v: bool | None = None
        raw: str | None = None
        st = parse_throttled(self._vc("get_throttled") or "")
        if st is not None:
            throttled, under_v, raw = st.active, st.under_voltage, f"0x{st.raw:x}"
            src.append("vcgencmd")
            if clock is None:
                m = re.search(r"=(\d+)", self._vc("measure_clock", "arm") or "")
                clock = round(int(m.group(1)) / 1e6, 1) if m else None
        count = self._throttle_count()
        events = None
        if count is not None:
            events = count - self._last_count if self._last_count is not None else 0
            self._last_count = count
            throttled = bool(throttled) or events > 0
            src.append("thermal_throttle")
        return DeviceReading(th.temp_c, clock, clock_max, throttled, under_v, raw, events, src)


def _loadavg1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def run_sustained(analyzer: Any, clip: Any, *, duration_s: float, interval_s: float = 10.0, pace_fps: float | None = None,
                  reader: DeviceReader | None = None, warmup_frames: int = 10,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Loop `clip` (anything with .get(k) and .fps) through `analyzer` for `duration_s`; one row per interval."""
    from .e2e_bench import FrameRecord, frame_loop

    say = progress or (lambda s: None)
    rd = reader or DeviceReader()
    k = frame_loop(analyzer, clip, stop=lambda n, _t: n >= warmup_frames, on_frame=lambda r: None)
    rows: list[dict[str, Any]] = []
    lat, cpu = array("d"), array("d")
    all_lat = array("d")
    t0 = time.perf_counter()
    nxt = [interval_s]
    last_t = [0.0]

    def flush(t_now: float) -> None:
        r = rd.read()
        n = len(lat)
        dt = t_now - last_t[0]
        s = summarize(lat) if n else summarize([])
        row = {"t_s": round(t_now, 3), "frames": n, "fps": round(n / dt, 3) if dt > 0 else None,
               "latency_p50_ms": s["p50"], "latency_p90_ms": s["p90"], "latency_max_ms": s["max"],
               "cpu_p90_ms": summarize(cpu)["p90"] if n else None,
               "temp_c": r.temp_c, "clock_mhz": r.clock_mhz, "clock_max_mhz": r.clock_max_mhz,
               "throttled": r.throttled, "under_voltage": r.under_voltage, "throttle_raw": r.throttle_raw,
               "throttle_events": r.throttle_events, "loadavg_1min": _loadavg1(), "sources": r.sources}
        rows.append(row)
        say(f"t={row['t_s']:.0f} s: {n} frames, p90 {_fmt(row['latency_p90_ms'])} ms, temp {_fmt(r.temp_c)} C, "
            f"clock {_fmt(r.clock_mhz)} MHz, throttled {r.throttled}")
        del lat[:], cpu[:]  # next interval
        last_t[0] = t_now

    def on_frame(r: FrameRecord) -> None:
        lat.append(r.latency_ms)
        cpu.append(r.cpu_ms)
        all_lat.append(r.latency_ms)
        if r.t_s >= nxt[0]:
            flush(r.t_s)
            nxt[0] += interval_s

    rows.append({"t_s": 0.0, "frames": 0, **_reading_cols(rd.read())})
    frame_loop(analyzer, clip, stop=lambda _n, el: el >= duration_s, on_frame=on_frame, pace_fps=pace_fps, t0=t0, k0=k)
    if len(lat):
        flush(time.perf_counter() - t0)
    measured = [r for r in rows if r.get("frames")]
    p90s = [r["latency_p90_ms"] for r in measured if r.get("latency_p90_ms") is not None]
    temps = [r["temp_c"] for r in rows if r.get("temp_c") is not None]
    clocks = [r["clock_mhz"] for r in rows if r.get("clock_mhz") is not None]
    thr = [r["throttled"] for r in rows if r.get("throttled") is not None]
    summary = {
        "duration_s": round(time.perf_counter() - t0, 3), "interval_s": interval_s, "intervals": len(measured),
        "frames": len(all_lat), "latency_ms": summarize(all_lat),
        "p90_first_interval_ms": p90s[0] if p90s else None, "p90_last_interval_ms": p90s[-1] if p90s else None,
        "p90_drift": round(p90s[-1] / p90s[0], 3) if len(p90s) >= 2 and p90s[0] else None,
        "temp_c_max": max(temps) if temps else None, "temp_c_start": temps[0] if temps else None,
        "clock_mhz_min": min(clocks) if clocks else None, "clock_mhz_max": max(clocks) if clocks else None,
        "throttled_any": any(thr) if thr else None,
        "under_voltage_any": any(r.get("under_voltage") for r in rows) if any(r.get("under_voltage") is not None for r in rows) else None,
        "readable": sorted({s for r in rows for s in r.get("sources") or []}),
        "pace_fps": pace_fps,
    }
    if not temps:
        summary["note_temp"] = "no temperature readable here (no /sys/class/thermal zone, no vcgencmd): column left empty"
    if not clocks:
        summary["note_clock"] = "no CPU clock readable here (no cpufreq, no vcgencmd): column left empty"
    return {"summary": summary, "intervals": rows}


def _reading_cols(r: DeviceReading) -> dict[str, Any]:
    return {"temp_c": r.temp_c, "clock_mhz": r.clock_mhz, "clock_max_mhz": r.clock_max_mhz, "throttled": r.throttled,
            "under_voltage": r.under_voltage, "throttle_raw": r.throttle_raw, "throttle_events": r.throttle_events,
            "loadavg_1min": _loadavg1(), "sources": r.sources}


def _fmt(v: Any, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def sustained_md(s: dict[str, Any]) -> list[str]:
    sm = s.get("summary") or {}
    out = ["## Sustained run: latency next to temperature, clock and throttling", "",
           f"{sm.get('frames')} frames over {_fmt(sm.get('duration_s'))} s in {sm.get('intervals')} intervals of "
           f"{sm.get('interval_s')} s" + (f", paced at {sm['pace_fps']:g} fps" if sm.get("pace_fps") else ", back to back") + ". "
           f"p90 first interval {_fmt(sm.get('p90_first_interval_ms'), 2)} ms, last {_fmt(sm.get('p90_last_interval_ms'), 2)} ms "
           f"(drift {_fmt(sm.get('p90_drift'), 2)}x); temperature {_fmt(sm.get('temp_c_start'))} -> max {_fmt(sm.get('temp_c_max'))} C; "
           f"clock {_fmt(sm.get('clock_mhz_min'), 0)}-{_fmt(sm.get('clock_mhz_max'), 0)} MHz; throttled: "
           f"{'-' if sm.get('throttled_any') is None else ('YES' if sm['throttled_any'] else 'no')}; under-voltage: "
           f"{'-' if sm.get('under_voltage_any') is None else ('YES' if sm['under_voltage_any'] else 'no')}. "
           f"Readable here: {', '.join(sm.get('readable') or []) or 'nothing (columns empty)'}.", ""]
    for k in ("note_temp", "note_clock"):
        if sm.get(k):
            out += [f"- {sm[k]}"]
    hdr = ["t (s)", "frames", "fps", "p50 ms", "p90 ms", "max ms", "CPU p90 ms", "temp C", "clock MHz", "throttled", "load 1m"]
    rows = [[_fmt(r.get("t_s"), 0), r.get("frames"), _fmt(r.get("fps")), _fmt(r.get("latency_p50_ms"), 2),
             _fmt(r.get("latency_p90_ms"), 2), _fmt(r.get("latency_max_ms"), 2), _fmt(r.get("cpu_p90_ms"), 2),
             _fmt(r.get("temp_c")), _fmt(r.get("clock_mhz"), 0),
             "-" if r.get("throttled") is None else ("YES " + (r.get("throttle_raw") or "") if r["throttled"] else "no"),
             _fmt(r.get("loadavg_1min"), 2)] for r in s.get("intervals") or []]
    out += ["", "| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr), *["| " + " | ".join(str(c) for c in r) + " |" for r in rows], ""]
    return out


def sustained_plot(s: dict[str, Any], label: str, path: Path) -> str | None:
    """Latency p50/p90 per interval over temperature and clock, throttled intervals shaded."""
    try:
        from .report import _pyplot, save_png

        plt = _pyplot()
    except ImportError:
        return None
    rows = [r for r in s.get("intervals") or [] if r.get("frames")]
    if not rows:
        return None
    t = np.array([r["t_s"] for r in rows], float)

    def col(k: str) -> np.ndarray:
        return np.array([np.nan if r.get(k) is None else r[k] for r in rows], float)

    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    ax = axes[0]
    ax.plot(t, col("latency_p50_ms"), "o-", ms=3, label="p50")
    ax.plot(t, col("latency_p90_ms"), "o-", ms=3, color="#d62728", label="p90")
    ax.set_ylabel("latency ms")
    ax.set_title(f"{label}: sustained run, per {s['summary'].get('interval_s')} s interval")
    ax.legend(loc="upper left")
    load = col("loadavg_1min")
    if not np.isnan(load).all():  # other work on the machine explains latency a thermal reading cannot
        axl = ax.twinx()
        axl.plot(t, load, "--", color="#7f7f7f", lw=1)
        axl.set_ylabel("load avg 1 min (dashed)", color="#7f7f7f")
    temp, clock = col("temp_c"), col("clock_mhz")
    axes[1].plot(t, temp, color="#ff7f0e")
    axes[1].set_ylabel("temp C")
    if np.isnan(temp).all():
        axes[1].text(0.5, 0.5, "temperature not readable on this machine", transform=axes[1].transAxes, ha="center")
    axes[2].plot(t, clock, color="#2ca02c")
    axes[2].set_ylabel("clock MHz")
    if np.isnan(clock).all():
        axes[2].text(0.5, 0.5, "CPU clock not readable on this machine", transform=axes[2].transAxes, ha="center")
    iv = float(s["summary"].get("interval_s") or 1.0)
    for r in rows:
        if r.get("throttled"):
            for a in axes:
                a.axvspan(r["t_s"] - iv, r["t_s"], color="#d62728", alpha=0.12, lw=0)
    axes[2].set_xlabel("time (s)  [shaded: throttled / frequency capped]")
    return save_png(plt, fig, path)
