"""bench run-vs (whole process) and sustained modes: report schema and mode logic, never speed."""

from __future__ import annotations

import json
import sys

import pytest

from edgeaffect.bench import fingerprint, report
from edgeaffect.errors import EdgeAffectError
from edgeaffect.jsonsafe import json_safe

WRITER = ("import json, pathlib, sys; d = pathlib.Path(sys.argv[1]); d.mkdir(parents=True, exist_ok=True); "
          "n = int(sys.argv[2]); ok = int(sys.argv[3]); f = open(d / 'results.jsonl', 'w'); "
          "[f.write(json.dumps({'frame_index': i, 'status': 'ok' if i < ok else 'no_face'}, separators=(',', ':')) + '\\n') "
          "for i in range(n)]")


def test_run_vs_alternates_pairs_and_reports_medians(tmp_path):
    from edgeaffect.bench import run_vs

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read by the fake commands")
    cmds = {"edgeaffect": [sys.executable, "-c", WRITER, str(tmp_path / "ea"), "10", "9", "--out", str(tmp_path / "ea")],
            "mediapipe": [sys.executable, "-c", WRITER, str(tmp_path / "mp"), "10", "6", "--out", str(tmp_path / "mp")]}
    msgs: list[str] = []
    res = run_vs.run_vs(str(clip), pairs=3, cpu=None, cmds=cmds, warmup=False, progress=msgs.append)
    ea, mp = res["contenders"]["edgeaffect"], res["contenders"]["mediapipe"]
    assert len(ea["runs"]) == len(mp["runs"]) == 3 and ea["failed_runs"] == mp["failed_runs"] == 0
    # alternated: E M, M E, E M
    assert [r["order"] for r in ea["runs"]] == [0, 1, 0] and [r["order"] for r in mp["runs"]] == [1, 0, 1]
    assert (ea["frames"], ea["face_frames"], mp["face_frames"]) == (10, 9, 6)
    for c in (ea, mp):
        assert c["wall_s_median"] > 0 and c["cpu_s_median"] >= 0 and c["peak_rss_mb_median"] > 0
    r = res["ratio"]
    assert len(r["pair_wall_ratios"]) == 3 and r["faces_at_least_as_many"] is True and r["goal"] == 1.5
    assert r["goal_met_wall"] == (r["wall_ratio"] >= 1.5)
    rep = report.new_report("run-vs", "t", fingerprint.collect(num_threads=1), {"pairs": 3}, "edgeaffect bench run-vs ...")
    rep["run_vs"] = res
    assert report.validate(rep) == []
    md = report.render_markdown(rep)
    assert "Whole process" in md and "CPU-time ratio" in md
    json.dumps(json_safe(rep, drop_private=True))


def test_run_vs_failed_run_is_a_clear_error(tmp_path):
    from edgeaffect.bench import run_vs

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    bad = [sys.executable, "-c", "import sys; sys.exit('boom: cannot open')", "--out", str(tmp_path / "b")]
    with pytest.raises(EdgeAffectError, match="boom"):
        run_vs.run_vs(str(clip), pairs=1, cmds={"edgeaffect": bad, "mediapipe": bad}, warmup=True)
    with pytest.raises(EdgeAffectError, match="does not exist"):
        run_vs.run_vs(str(tmp_path / "nope.mp4"), pairs=1)


def test_run_vs_commands_are_equivalent_jobs(tmp_path):
    from edgeaffect.bench import run_vs

    c = run_vs.commands("v.mp4", tmp_path, max_frames=1100, loop=True)
    ea, mp = c["edgeaffect"], c["mediapipe"]
    assert ea[1:4] == ["-m", "edgeaffect.cli", "run"] and "--no-csv" in ea and ea[ea.index("--max-faces") + 1] == "1"
    assert mp[1].endswith("benchmarks/mediapipe_run.py") and run_vs.MP_SCRIPT.exists()
    for cmd in (ea, mp):
        assert cmd[cmd.index("--max-frames") + 1] == "1100" and "--loop" in cmd and cmd[cmd.index("--source") + 1] == "v.mp4"


def test_stage_breakdown_is_frame_aligned():
    from array import array

    from edgeaffect.bench.e2e_bench import BREAKDOWN_ROWS, stage_breakdown

    n = 10
    lat = array("d", [5.0] * n)
    cols = {"prep": array("d", [0.1] * n), "detector": array("d", [2.0] + [0.0] * (n - 1)),
            "track": array("d", [3.0] + [1.0] * (n - 1)), "pose_eyes": array("d", [0.5] * n),
            "au": array("d", [1.0] * n), "affect": array("d", [0.5] * n)}
    bd = stage_breakdown(lat, cols, array("d", [2.0] * n), array("d", [0.2] * n), array("d", [0.7] * 4))
    assert [k for k, _ in BREAKDOWN_ROWS] == list(bd)
    assert bd["landmarks"]["p50"] == 0.5 and bd["landmarks"]["mean"] == 0.5  # track - detector - pose_eyes, per frame
    assert bd["detect"]["p50"] == 0.0 and bd["detect"]["mean"] == 0.2
    assert bd["python_overhead"]["p50"] == 3.0 and bd["decode"]["frames"] == 4 and bd["output"]["p90"] == 0.2


def test_int8_isa_names_the_kernel_class():
    assert fingerprint.int8_isa(["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"]) == "AVX-512 VNNI"
    assert fingerprint.int8_isa(["avx2", "fma"]) == "AVX2 only (no VNNI)"
    assert fingerprint.int8_isa(["asimd", "asimddp"]) == "NEON dotprod"
    assert fingerprint.int8_isa([]) == "unknown"
    assert fingerprint.collect()["cpu"]["int8_isa"]


# ----------------------------------------------------------------------------- sustained mode
def _fake_sys(root, temp_mc=48000, cur_khz=(1500000, 1400000), max_khz=1800000, count=3):
    z = root / "class" / "thermal" / "thermal_zone0"
    z.mkdir(parents=True, exist_ok=True)
    (z / "temp").write_text(f"{temp_mc}\n")
    (z / "type").write_text("cpu-thermal\n")
    for i, khz in enumerate(cur_khz):
        c = root / "devices" / "system" / "cpu" / f"cpu{i}"
        (c / "cpufreq").mkdir(parents=True, exist_ok=True)
        (c / "cpufreq" / "scaling_cur_freq").write_text(f"{khz}\n")
        (c / "cpufreq" / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
        (c / "thermal_throttle").mkdir(exist_ok=True)
        (c / "thermal_throttle" / "core_throttle_count").write_text(f"{count if i == 0 else 0}\n")


class _Proc:
    def __init__(self, out):
        self.stdout, self.returncode = out, 0


def test_device_reader_on_a_fake_sysfs_and_vcgencmd(tmp_path):
    from edgeaffect.bench.sustained import DeviceReader

    _fake_sys(tmp_path)
    rd = DeviceReader(tmp_path, use_vcgencmd=False)
    r = rd.read()
    assert r.temp_c == 48.0 and r.clock_mhz == 1450.0 and r.clock_max_mhz == 1800.0
    assert r.throttled is False and r.throttle_events == 0 and "cpufreq" in r.sources
    _fake_sys(tmp_path, temp_mc=81000, cur_khz=(600000, 600000), count=5)  # hot, clock dropped, 2 throttle events
    r = rd.read()
    assert r.temp_c == 81.0 and r.clock_mhz == 600.0 and r.throttle_events == 2 and r.throttled is True

    def vc(cmd, **kw):  # a Pi with under-voltage + throttling now
        return _Proc({"get_throttled": "throttled=0x50005", "measure_temp": "temp=70.1'C",
                      "measure_clock": "frequency(48)=600000000"}[cmd[1]])

    pi = DeviceReader(tmp_path / "empty", vcgencmd="/usr/bin/vcgencmd", run=vc)
    r = pi.read()
    assert r.throttled is True and r.under_voltage is True and r.throttle_raw == "0x50005"
    assert r.temp_c == 70.1 and r.clock_mhz == 600.0 and "vcgencmd" in r.sources


def test_device_reader_degrades_to_none_without_sysfs(tmp_path):
    from edgeaffect.bench.sustained import DeviceReader

    r = DeviceReader(tmp_path / "nothing", use_vcgencmd=False).read()
    assert (r.temp_c, r.clock_mhz, r.throttled, r.under_voltage, r.throttle_events) == (None, None, None, None, None)


class _FakeClip:
    fps = 30.0

    def get(self, k):
        return k


class _FakeAnalyzer:
    def __init__(self, on_frame=None):
        self.n, self.on_frame = 0, on_frame

    def process(self, img, ts):
        self.n += 1
        if self.on_frame:
            self.on_frame(self.n)
        t0 = __import__("time").perf_counter()
        while __import__("time").perf_counter() - t0 < 0.002:
            pass
        return type("R", (), {"status": "ok", "timings_ms": {}})()


def test_sustained_rows_summary_report_and_plot(tmp_path):
    from edgeaffect.bench.sustained import DeviceReader, run_sustained

    _fake_sys(tmp_path / "sys")
    heat = {"done": False}

    def heat_up(n):  # the device heats and throttles half-way
        if n > 20 and not heat["done"]:
            _fake_sys(tmp_path / "sys", temp_mc=85000, cur_khz=(700000, 700000), count=9)
            heat["done"] = True

    res = run_sustained(_FakeAnalyzer(heat_up), _FakeClip(), duration_s=0.8, interval_s=0.15, warmup_frames=2,
                        reader=DeviceReader(tmp_path / "sys", use_vcgencmd=False))
    rows, sm = res["intervals"], res["summary"]
    assert rows[0]["frames"] == 0 and rows[0]["temp_c"] == 48.0  # the reading before the first frame
    assert sm["intervals"] >= 2 and sum(r["frames"] for r in rows) == sm["frames"]
    for r in rows[1:]:
        assert {"latency_p50_ms", "latency_p90_ms", "cpu_p90_ms", "temp_c", "clock_mhz", "throttled", "loadavg_1min"} <= set(r)
    assert sm["temp_c_max"] == 85.0 and sm["clock_mhz_min"] == 700.0 and sm["throttled_any"] is True
    assert sm["p90_drift"] is not None
    rep = report.new_report("sustained", "fake", fingerprint.collect(num_threads=1), {"duration_s": 0.6}, "edgeaffect bench sustained")
    rep["sustained"] = res
    paths = report.save(rep, tmp_path / "out", "fake")
    md = (tmp_path / "out" / "fake.md").read_text()
    assert "Sustained run" in md and "YES" in md
    assert any(p.endswith("_sustained.png") for p in paths["plots"]) or paths["plot_message"]


def test_run_vs_cli_report_has_fingerprint_and_models(tmp_path, monkeypatch):
    from edgeaffect.bench import run_vs
    from edgeaffect.bench.cli import bench_main

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    seen = {}

    def fake_run_vs(source, **kw):
        seen.update(kw)
        c = {"command": "x", "runs": [], "wall_s_median": 1.0, "cpu_s_median": 1.0, "peak_rss_mb_median": 100.0,
             "frames": 10, "face_frames": 9, "failed_runs": 0}
        return {"source": {"path": source}, "pairs": 1, "pinning": "not pinned", "contenders": {"edgeaffect": c, "mediapipe": c}}

    monkeypatch.setattr(run_vs, "run_vs", fake_run_vs)
    assert bench_main(["run-vs", "--source", str(clip), "--pairs", "1", "--no-pin", "--label", "rv", "--out", str(tmp_path),
                       "--no-plots", "-q"]) == 0
    d = report.load(tmp_path / "rv.json")
    assert d["kind"] == "run-vs" and seen["cpu"] is None and seen["pairs"] == 1
    assert set(d["fingerprint"]["models"]) == {"detector", "landmarks", "eyes", "au", "temporal"}
    assert d["fingerprint"]["cpu"]["int8_isa"]


def test_mediapipe_run_script_writes_one_line_per_frame(tmp_path):
    """The MediaPipe side of run-vs, for real (skipped without mediapipe): one JSON line per frame,
    faces from landmarks, the loop + max-frames contract `edgeaffect run` has too."""
    pytest.importorskip("mediapipe")
    import subprocess

    from edgeaffect.bench.run_vs import MP_SCRIPT, count_frames
    from edgeaffect.demo import write_demo_clip

    clip = write_demo_clip(tmp_path / "a.mp4", n_frames=4)
    r = subprocess.run([sys.executable, str(MP_SCRIPT), "--source", str(clip), "--out", str(tmp_path / "mp"), "--loop",
                        "--max-frames", "6"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-500:]
    lines = [json.loads(x) for x in (tmp_path / "mp" / "results.jsonl").read_text().splitlines()]
    assert [d["frame_index"] for d in lines] == list(range(6))
    n, ok = count_frames(tmp_path / "mp" / "results.jsonl")
    assert n == 6 and ok == sum(d["status"] == "ok" for d in lines) > 0
    face = next(d for d in lines if d["status"] == "ok")["faces"][0]
    assert len(face["landmarks"]) == 468 and len(face["landmarks"][0]) == 2
    assert "mediapipe_run: 6 frames" in r.stderr


def test_json_safe_is_strict_json_for_reports_and_payloads():
    import math
    from pathlib import Path

    import numpy as np

    d = {"a": float("nan"), "b": np.float32(1.5), "c": [np.int64(3), math.inf], "p": Path("/x"), "_path": "skip", 4: (1, 2)}
    assert json.dumps(json_safe(d), allow_nan=False)
    assert json_safe(d) == {"a": None, "b": 1.5, "c": [3, None], "p": "/x", "_path": "skip", "4": [1, 2]}
    assert "_path" not in json_safe(d, drop_private=True)
