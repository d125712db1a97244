"""Segmented outputs for months-long runs: rotation, retention, crash safety, restarts, wall-clock jumps."""

import csv
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgeaffect.errors import OutputError
from edgeaffect.outputs import read_jsonl
from edgeaffect.outputs.run_outputs import OutputConfig, OutputSet, output_config, parse_outputs_table
from edgeaffect.outputs.segments import INDEX_NAME, SegmentPolicy, SegmentStore, parse_duration
from edgeaffect.outputs.summary import summary_columns

from .test_outputs import sample_result

REPO = Path(__file__).resolve().parents[1]


def _segments(d: Path, stem: str, ext: str) -> list[Path]:
    """Closed segments of a stream, oldest first (by the directory-wide sequence number)."""
    fs = [p for p in d.iterdir() if p.name.startswith(stem + "-") and "-open" not in p.name
          and (p.name.endswith(ext) or p.name.endswith(ext + ".gz"))]
    return sorted(fs, key=lambda p: int(p.name.split("-")[1]))


def _lines(p: Path) -> list[bytes]:
    data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    assert data.endswith(b"\n"), f"{p.name} does not end with a whole line"
    return data.splitlines()


def _frame_range(p: Path) -> tuple[int, int]:
    a, b = p.name.split("-")[3:5]
    return int(a[1:]), int(b.split(".")[0][1:])


def _check_jsonl_segment(p: Path) -> list[int]:
    frames = []
    for raw in _lines(p):
        d = json.loads(raw)  # every kept line is valid JSON
        if "event" not in d:
            assert d["schema"] == "edgeaffect.frame/1" and d["wall_utc"].endswith("Z")
            frames.append(d["frame_index"])
    assert frames == sorted(frames) and (frames[0], frames[-1]) == _frame_range(p)  # the name tells the truth
    return frames


def test_rotation_and_retention_on_a_looped_clip(assets, tmp_path):
    """The real pipeline over a looped clip with small limits: bounded bytes, only the newest kept, all valid."""
    import cv2

    from edgeaffect.capture import open_source
    from edgeaffect.demo import DemoSource
    from edgeaffect.session import run_source

    clip = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (512, 512))
    with DemoSource(16) as src:
        for f in src:
            vw.write(cv2.resize(f.image, (512, 512)) if f.image.ndim == 3 else cv2.cvtColor(cv2.resize(f.image, (512, 512)), cv2.COLOR_GRAY2BGR))
    vw.release()
    out = tmp_path / "out"
    ns = type("A", (), {"outputs": "jsonl,csv", "rotate_mb": 0.03, "retain_mb": 0.2, "records": "both"})()
    cfg = output_config(ns)
    n = 160
    s = run_source(open_source(str(clip), loop=True), out, max_frames=n, outputs=cfg)
    assert s.frames == n and not s.error
    js, cs = _segments(out, "results", ".jsonl"), _segments(out, "results", ".csv")
    total = sum(p.stat().st_size for p in out.iterdir() if p.name != INDEX_NAME and p.name != "run.json"
                and p.name != "summary.json")
    assert total <= cfg.policy.retain_bytes  # the whole directory's result files stay within --retain-mb
    assert len(js) >= 2 and len(cs) >= 2  # rotated, and some segments survived
    assert all(p.stat().st_size >= cfg.policy.rotate_bytes for p in js[:-1])  # rotation at the size limit
    frames = [f for p in js for f in _check_jsonl_segment(p)]
    # only the newest frames survive, contiguous up to the last one; everything older was deleted
    assert frames == list(range(frames[0], n)) and frames[0] > 0
    for p in cs:
        rows = list(csv.DictReader(io.StringIO(b"\n".join(_lines(p)).decode() + "\n")))
        assert rows and all(r["frame_index"].isdigit() for r in rows)  # every segment starts with its column row
    idx = json.loads((out / INDEX_NAME).read_text())
    assert {e["name"] for e in idx["segments"]} == {p.name for p in _segments(out, "results", "") + _segments(out, "summary", "")}
    assert idx["open"] == []
    summ = [json.loads(x) for p in _segments(out, "summary", ".jsonl") for x in _lines(p)]
    assert summ and all(r["frames"] >= 1 for r in summ) and set(summary_columns()) <= set(summ[0])
    assert s.extra["writes"]["deleted_segments"] > 0


def test_retention_deletes_only_the_oldest_closed_segments(tmp_path):
    pol = SegmentPolicy(rotate_bytes=4000, retain_bytes=20000, flush_s=0.0)
    outs = OutputSet(tmp_path, OutputConfig(formats=("jsonl",), policy=pol))
    n = 200
    for i in range(n):
        outs.write(sample_result(i, with_face=i % 4 != 0))
        total = sum(p.stat().st_size for p in tmp_path.glob("results-*"))
        assert total <= pol.retain_bytes  # at every moment, not only at the end
    outs.close()
    segs = _segments(tmp_path, "results", ".jsonl")
    seqs = [int(p.name.split("-")[1]) for p in segs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # a contiguous newest run: nothing older survives
    frames = [f for p in segs for f in _check_jsonl_segment(p)]
    assert frames[-1] == n - 1 and frames == list(range(frames[0], n))
    st = outs.stats()
    assert st["deleted_segments"] == seqs[0] - 1 and st["rotations"] == seqs[-1]


def test_gzip_time_rotation_and_a_wall_clock_jump(tmp_path):
    """Rotation follows the monotonic clock: a wall clock jumping back a day (NTP) changes nothing but names."""
    clock = {"mono": 100.0, "wall": 1.8e9}
    pol = SegmentPolicy(rotate_s=10.0, retain_s=3 * 86400.0, gzip=True)
    store = SegmentStore(tmp_path, pol, wall=lambda: clock["wall"], mono=lambda: clock["mono"], background=False)
    sink = store.open_stream("results", ".jsonl")
    for i in range(100):
        sink.append(json.dumps({"frame_index": i}).encode() + b"\n", i)
        clock["mono"] += 1.0
        clock["wall"] += 1.0 if i != 35 else -86400.0  # NTP sync sets the clock back a day
    store.close()
    segs = _segments(tmp_path, "results", ".jsonl")
    assert len(segs) == 10 and all(p.suffix == ".gz" for p in segs)  # 10 s each on the monotonic clock
    got = [json.loads(x)["frame_index"] for p in segs for x in _lines(p)]
    assert got == list(range(100))  # order by sequence number, not by the (jumped) start time in the name
    assert list(read_jsonl(segs[0]))[0]["frame_index"] == 0
    # retention by age: same boot -> monotonic age; a new boot with the wall clock behind the data deletes nothing
    clock["mono"] += 4 * 86400.0
    store2 = SegmentStore(tmp_path, pol, wall=lambda: clock["wall"], mono=lambda: clock["mono"], background=False)
    store2._apply_retention()
    assert store2.segments() == []  # all older than 3 days on the monotonic clock
    assert not list(tmp_path.glob("results-*"))


def test_unsynced_wall_clock_deletes_nothing(tmp_path):
    clock = {"mono": 0.0, "wall": 1.8e9}
    pol = SegmentPolicy(rotate_bytes=100, retain_s=3600.0)
    store = SegmentStore(tmp_path, pol, wall=lambda: clock["wall"], mono=lambda: clock["mono"], background=False)
    sink = store.open_stream("ev", ".jsonl")
    for _ in range(5):
        sink.append(b'{"x":' + b"1" * 120 + b"}\n")
    store.close()
    for s in store.segments():
        s.boot_id = "another-boot"  # as after a reboot
    store._boot = "this-boot"
    clock["wall"] = 0.0  # the RTC-less Pi booted at 1970
    store._apply_retention()
    assert len(store.segments()) == 5


def test_kill_9_mid_segment_leaves_every_closed_segment_valid(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from tests.test_outputs import sample_result
        from edgeaffect.outputs.run_outputs import OutputConfig, OutputSet
        from edgeaffect.outputs.segments import SegmentPolicy
        outs = OutputSet({str(tmp_path)!r}, OutputConfig(formats=("jsonl", "csv"), records="both",
                                                      policy=SegmentPolicy(rotate_bytes=30000)))
        i = 0
        while True:
            outs.write(sample_result(i, with_face=i % 3 != 0))
            i += 1
            if i == 40:
                print("going", flush=True)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=REPO)
    assert p.stdout.readline().strip() == b"going"
    deadline = time.monotonic() + 60
    while len(_segments(tmp_path, "results", ".jsonl")) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    closed = _segments(tmp_path, "results", ".jsonl")
    assert len(closed) >= 3
    last = -1
    for seg in closed:
        frames = _check_jsonl_segment(seg)
        assert frames[0] == last + 1  # no gap between closed segments
        last = frames[-1]
    for seg in _segments(tmp_path, "results", ".csv"):
        rows = list(csv.reader(io.StringIO(seg.read_text())))
        assert rows[0][0] == "frame_index" and all(len(r) == len(rows[0]) for r in rows)
    # the open segments (none if the kill came between a close and the next record): whole lines, at most a torn last one
    opens = list(tmp_path.glob("results-*-open.*"))
    for seg in opens:
        body = seg.read_bytes().split(b"\n")
        for raw in body[1 if seg.suffix == ".csv" else 0:-1]:
            assert json.loads(raw) if seg.suffix == ".jsonl" else raw.split(b",")[0].isdigit()
    # a restart adopts it: torn tail trimmed, closed under its real name, new segments continue the sequence
    # an open segment the kill caught before its first whole record (a CSV's column row is not one) has
    # nothing to keep: dropped, not recovered
    kept_opens = [seg for seg in opens if seg.read_bytes().count(b"\n") > (seg.suffix == ".csv")]
    store = SegmentStore(tmp_path, SegmentPolicy(rotate_bytes=30000))
    assert not list(tmp_path.glob("*-open.*"))
    rec = [s for s in store.segments("results") if s.recovered]
    assert len(rec) == len(kept_opens)  # each segment that was open with at least one line
    for seg in _segments(tmp_path, "results", ".jsonl"):
        _check_jsonl_segment(seg)
    for seg in _segments(tmp_path, "summary", ""):  # per-second records: named by the frames they cover
        rows = _lines(seg)[1 if seg.suffix == ".csv" else 0:]
        first = json.loads(rows[0])["frame_first"] if seg.suffix == ".jsonl" else int(rows[0].split(b",")[4])
        assert _frame_range(seg)[0] == first
    before = max(s.seq for s in store.segments())
    sink = store.open_stream("results", ".jsonl")
    sink.append(b'{"frame_index": 0}\n', 0)
    store.close()
    newest = _segments(tmp_path, "results", ".jsonl")[-1]
    assert int(newest.name.split("-")[1]) == before + 1
    assert json.loads((tmp_path / INDEX_NAME).read_text())["schema"] == "edgeaffect.segments/1"


def test_batched_writes_cut_write_calls(tmp_path):
    counts = {}
    for flush in (0.0, 3600.0):
        d = tmp_path / str(flush)
        outs = OutputSet(d, OutputConfig(formats=("jsonl",), policy=SegmentPolicy(rotate_bytes=10**7, flush_s=flush,
                                                                                  flush_bytes=64 * 1024)))
        for i in range(100):
            outs.write(sample_result(i))
        outs.close()
        counts[flush] = outs.stats()
        assert [json.loads(x)["frame_index"] for x in _lines(_segments(d, "results", ".jsonl")[0])] == list(range(100))
    assert counts[0.0]["write_calls"] == 100
    assert counts[3600.0]["write_calls"] < 10 and counts[3600.0]["bytes_written"] == counts[0.0]["bytes_written"]


def test_per_second_summary_csv_and_jsonl_agree(tmp_path):
    outs = OutputSet(tmp_path, OutputConfig(formats=("jsonl", "csv"), records="summary"))
    for i in range(95):  # 33.3 ms apart: seconds 0, 1, 2, 3
        outs.write(sample_result(i, with_face=i % 3 != 2))
    outs.event("camera_lost", reason="test")
    outs.close()
    assert not (tmp_path / "results.jsonl").exists()
    recs = [json.loads(x) for x in (tmp_path / "summary.jsonl").read_text().splitlines()]
    ev = [r for r in recs if "event" in r]
    recs = [r for r in recs if "event" not in r]
    assert [r["second"] for r in recs] == [0, 1, 2, 3] and sum(r["frames"] for r in recs) == 95
    assert ev[0]["event"] == "camera_lost" and ev[0]["wall_utc"].endswith("Z")
    assert recs[0]["ok"] + recs[0]["no_face"] == recs[0]["frames"] and recs[0]["valence_mean"] == pytest.approx(0.31)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "summary.csv").read_text())))
    assert [int(r["frames"]) for r in rows] == [r["frames"] for r in recs]
    assert float(rows[1]["AU12_mean"]) == pytest.approx(recs[1]["AU12_mean"])


def test_output_options_are_validated():
    assert parse_duration("1h") == 3600 and parse_duration("90s") == 90 and parse_duration(5) == 5
    with pytest.raises(OutputError, match="duration"):
        parse_duration("soon")
    with pytest.raises(OutputError, match="at most half"):
        parse_outputs_table({"rotate_mb": 100, "retain_mb": 150})
    with pytest.raises(OutputError, match="unknown key 'rotate'"):
        parse_outputs_table({"rotate": 1})
    with pytest.raises(OutputError, match="unknown format 'xml'"):
        parse_outputs_table({"formats": ["xml"]})
    cfg = parse_outputs_table({"formats": "none", "records": "summary", "rotate_every": "1h", "retain_days": 7})
    assert cfg.formats == () and cfg.segmented and cfg.policy.rotate_s == 3600 and cfg.policy.retain_s == 7 * 86400
    ns = type("A", (), {"rotate_mb": 8, "retain_mb": 64, "no_csv": True, "gzip": True})()
    c2 = output_config(ns, cfg)
    assert c2.policy.rotate_bytes == 8 * 2**20 and c2.policy.gzip and c2.formats == ()
    ns = type("A", (), {"outputs": "jsonl", "no_csv": False})()
    assert output_config(ns).formats == ("jsonl",)


def test_kiosk_profile_carries_the_output_policy_and_retry_forever():
    from edgeaffect.capture.factory import open_source
    from edgeaffect.capture.reconnect import LatestFrameSource, ReconnectingSource
    from edgeaffect.profiles import load_profile

    p = load_profile("kiosk-usb")
    assert p.camera.retry_forever and p.camera.backoff_max_s == 60
    o = p.outputs
    assert o.formats == ("jsonl",) and o.records == "both" and o.policy.gzip and o.policy.rotate_s == 3600
    assert o.policy.retain_bytes == 8192 * 2**20 and o.policy.flush_s == 2 and o.policy.fsync_s == 60
    src = open_source(p.camera)
    assert isinstance(src, LatestFrameSource) and isinstance(src.inner, ReconnectingSource)
    assert src.inner.retry_forever and src.inner.open_retries is None and src.inner.backoff[-1] == 60


def test_run_loop_keeps_bounded_per_frame_state():
    """The leak the accelerated soak found: the executor kept every frame's latency (32 B/frame, ~3.5 MB per 30 fps hour)."""
    from edgeaffect.scheduler.executor import LATENCY_WINDOW, PipelineExecutor
    from edgeaffect.scheduler.stages import Stage, WorkItem

    ex = PipelineExecutor([Stage("track", ("landmarks",), lambda w: w)], mode="sequential", drop="block")
    items = (WorkItem(object(), {}) for _ in range(LATENCY_WINDOW + 500))
    assert sum(1 for _ in ex.run(items)) == LATENCY_WINDOW + 500
    ex.close()
    assert len(ex.stats.latencies_ms) == LATENCY_WINDOW and ex.stats.completed == LATENCY_WINDOW + 500


def test_restart_with_gzip_compresses_what_the_dead_run_left_plain(tmp_path):
    store = SegmentStore(tmp_path, SegmentPolicy(rotate_bytes=200), background=False)
    sink = store.open_stream("results", ".jsonl")
    n = 0
    while n < 30 or sink._fd is None:  # end with a segment open
        sink.append(json.dumps({"frame_index": n, "pad": "x" * 40}).encode() + b"\n", n)
        n += 1
    torn = b'{"frame_index": 99, "pa'
    os.write(sink._fd, torn)  # the run dies mid-line (no close)
    store2 = SegmentStore(tmp_path, SegmentPolicy(rotate_bytes=200, gzip=True), background=False)
    segs = _segments(tmp_path, "results", ".jsonl")
    assert segs and all(p.suffix == ".gz" for p in segs) and not list(tmp_path.glob("*-open.*"))
    got = [json.loads(x)["frame_index"] for p in segs for x in _lines(p)]
    assert got == list(range(n))  # the torn line is gone, nothing else
    assert store2.stats()["torn_bytes_trimmed"] == len(torn)
    store2.close()


def test_open_segments_must_fit_the_retention_budget(tmp_path):
    cfg = OutputConfig(formats=("jsonl", "csv"), records="both", policy=SegmentPolicy(rotate_bytes=10 << 20, retain_bytes=30 << 20))
    with pytest.raises(OutputError, match="4 streams x rotation size 10 MB exceed the retention budget 30 MB"):
        OutputSet(tmp_path, cfg)


def test_gzip_runs_in_one_long_lived_worker_across_rotations(tmp_path):
    """The RSS steps of the 1 M-frame soak came from a new gzip thread per closed segment (each can take a malloc
    arena of its own and keep ~2 MB freed in it); every segment is compressed by the same worker thread."""
    import threading

    store = SegmentStore(tmp_path, SegmentPolicy(rotate_bytes=2000, gzip=True))
    sink = store.open_stream("results", ".jsonl")
    workers: set[int] = set()
    real = store._compress

    def compress(info):
        workers.add(threading.get_ident())
        real(info)

    store._compress = compress
    line = b'{"frame_index": 0, "pad": "' + b"x" * 200 + b'"}\n'
    for i in range(120):  # ~12 rotations
        sink.append(line, i)
        if i % 10 == 9:
            store.wait()
    store.close()
    gz = sorted(tmp_path.glob("results-*.jsonl.gz"))
    assert len(gz) >= 10 and len(workers) == 1 and threading.get_ident() not in workers
    assert sum(len(gzip.decompress(p.read_bytes()).splitlines()) for p in gz) == 120


def test_recovery_drops_open_segments_without_a_record(tmp_path):
    """A kill right after a segment was opened leaves a JSONL with a torn first line or a CSV with only
    its column row: nothing to keep, so recovery removes them; one whole record is kept."""
    (tmp_path / "summary-000004-20261130T100000Z-open.csv").write_bytes(b"second_utc,frames,frame_first,frame_last\n")
    (tmp_path / "results-000005-20261130T100000Z-open.jsonl").write_bytes(b'{"frame_index": 5')
    (tmp_path / "results-000006-20261130T100000Z-open.csv").write_bytes(b"frame_index,a\n7,1\n8,")
    store = SegmentStore(tmp_path, SegmentPolicy(rotate_bytes=30000))
    kept = store.segments()
    assert [s.name for s in kept] == ["results-000006-20261130T100000Z-f7-f7.csv"] and kept[0].recovered
    assert sorted(p.name for p in tmp_path.iterdir()) == [INDEX_NAME, "results-000006-20261130T100000Z-f7-f7.csv"]
    assert (tmp_path / kept[0].name).read_bytes() == b"frame_index,a\n7,1\n"
    store.close()
