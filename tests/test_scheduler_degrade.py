"""Thermal readers (fake sysfs, fake vcgencmd) and the degradation order."""

from __future__ import annotations

import subprocess

import numpy as np

from edgeaffect.capture.base import Frame
from edgeaffect.scheduler import DegradeConfig, DegradeController, WorkItem
from edgeaffect.thermal import ThermalMonitor, parse_throttled, read_thermal_zones, vcgencmd_temp


def fake_zones(root, temps):
    for i, (typ, t) in enumerate(temps):
        z = root / f"thermal_zone{i}"
        z.mkdir(parents=True, exist_ok=True)
        (z / "type").write_text(typ + "\n")
        (z / "temp").write_text(f"{int(t * 1000)}\n")


def fake_vcgencmd(temp="temp=48.3'C", throttled="throttled=0x0"):
    def run(cmd, **kw):
        out = temp if cmd[-1] == "measure_temp" else throttled
        return subprocess.CompletedProcess(cmd, 0, out + "\n", "")

    return run


def item(i):
    return WorkItem(Frame(np.zeros((4, 4), np.uint8), i * 10.0, i))


def test_read_thermal_zones(tmp_path):
    fake_zones(tmp_path, [("cpu-thermal", 61.5), ("gpu-thermal", 55.0)])
    (tmp_path / "thermal_zone9").mkdir()  # unreadable zone is skipped
    zs = read_thermal_zones(tmp_path)
    assert [(z.type, z.temp_c) for z in zs] == [("cpu-thermal", 61.5), ("gpu-thermal", 55.0)]
    assert read_thermal_zones(tmp_path / "missing") == []


def test_vcgencmd_parsing():
    assert vcgencmd_temp("vcgencmd", fake_vcgencmd()) == 48.3
    st = parse_throttled("throttled=0x50005")
    assert st.under_voltage and st.throttled and not st.freq_capped and st.active
    assert st.under_voltage_occurred and st.throttled_occurred and "under-voltage" in st.describe()
    assert not parse_throttled("throttled=0x50000").active


def test_monitor_combines_sources(tmp_path):
    fake_zones(tmp_path, [("cpu-thermal", 70.0)])
    m = ThermalMonitor(tmp_path, vcgencmd="vcgencmd", run=fake_vcgencmd("temp=72.0'C", "throttled=0x4"))
    r = m.read()
    assert r.temp_c == 72.0 and r.throttled and r.source == "thermal_zone+vcgencmd"


def test_degrade_order_thermal(tmp_path):
    fake_zones(tmp_path, [("cpu-thermal", 60.0)])
    mon = ThermalMonitor(tmp_path, use_vcgencmd=False, min_interval_s=0)
    c = DegradeController(DegradeConfig(throttle_c=80, critical_c=85, degraded_affect_every=3), mon)
    # healthy: nothing skipped
    items = [item(i) for i in range(6)]
    for i, it in enumerate(items):
        c.apply(it, i)
    assert all(not it.skipped for it in items) and c.level == 0
    # hot: level 1 -> only affect reduced (every 3rd frame runs)
    fake_zones(tmp_path, [("cpu-thermal", 81.0)])
    items = [item(i) for i in range(6)]
    for i, it in enumerate(items):
        c.apply(it, i)
    assert c.level == 1
    assert [sorted(it.skipped) for it in items] == [[], ["affect"], ["affect"], [], ["affect"], ["affect"]]
    assert items[1].frame.meta["degrade"]["name"] == "affect_reduced" and "thermal" in items[1].frame.meta["degrade"]["reason"]
    # critical: level 2 -> AU on alternate frames as well; track never skipped
    fake_zones(tmp_path, [("cpu-thermal", 86.0)])
    items = [item(i) for i in range(6)]
    for i, it in enumerate(items):
        c.apply(it, i)
    assert c.level == 2
    assert [sorted(it.skipped) for it in items] == [[], ["affect", "au"], ["affect"], ["au"], ["affect"], ["affect", "au"]]
    assert all("track" not in it.skipped for it in items)
    # hysteresis: 83 C stays at level 2, 79 C drops to level 1 (>= 80-3), 70 C recovers
    for t, lvl in ((83.0, 2), (79.0, 1), (70.0, 0)):
        fake_zones(tmp_path, [("cpu-thermal", t)])
        c.apply(item(0), 0)
        assert c.level == lvl, t
    assert [lv for _, lv, _ in c.level_changes] == [1, 2, 1, 0]


def test_degrade_on_overload_and_recovery():
    c = DegradeController(DegradeConfig(window=10, hold_frames=5, overload_drop_ratio=0.2, recover_drop_ratio=0.0))
    seq = 0
    for _ in range(12):  # heavy dropping
        it = item(seq)
        c.apply(it, seq)
        c.on_drop(it) if seq % 2 else c.on_complete(it, 10.0)
        seq += 1
    assert c.level == 1
    for _ in range(40):  # healthy again
        it = item(seq)
        c.apply(it, seq)
        c.on_complete(it, 10.0)
        seq += 1
    assert c.level == 0


def test_profile_rates_apply_without_degradation():
    c = DegradeController(DegradeConfig(affect_every=2, au_every=1))
    items = [item(i) for i in range(4)]
    for i, it in enumerate(items):
        c.apply(it, i)
    assert [sorted(it.skipped) for it in items] == [[], ["affect"], [], ["affect"]]
    assert items[1].frame.meta["degrade"]["name"] == "rate"
