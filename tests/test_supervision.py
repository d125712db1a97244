"""Supervised by the OS: sd_notify over a real AF_UNIX socket, camera retry-forever with status lines."""

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgeaffect.capture.base import Frame, FrameSource
from edgeaffect.capture.reconnect import ReconnectingSource, capped_backoff
from edgeaffect.errors import SourceError
from edgeaffect.outputs import read_jsonl
from edgeaffect.sdnotify import SdNotifier

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0)
    yield path, s
    s.close()


def _received(s: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode())
        except BlockingIOError:
            return out


def test_watchdog_pings_reach_the_socket_rate_limited(notify_socket):
    path, s = notify_socket
    clock = {"t": 0.0}
    sd = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, clock=lambda: clock["t"])
    assert sd.enabled and sd.watchdog_s == 2.0 and sd.interval_s == 0.5
    assert sd.ready("analysing")
    for _ in range(10):  # 10 frames at 100 fps: one ping per 0.5 s
        sd.ping()
        clock["t"] += 0.01
    clock["t"] += 0.5
    sd.ping()
    sd.stopping()
    assert _received(s) == ["READY=1\nSTATUS=analysing", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]


def test_no_notify_socket_is_a_no_op_and_a_dead_socket_is_not_fatal(tmp_path):
    sd = SdNotifier({})
    assert not sd.enabled and not sd.ready() and not sd.ping()
    sd = SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "1000000"})
    assert sd.ping() is False and sd.failed == 1  # systemd went away: warn once, keep analysing
    assert SdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None


class ReturningCamera(FrameSource):
    """A USB camera that is unplugged: open() fails until `plan['fail_opens']` attempts were made."""

    is_live = True
    name = "fake-usb"

    def __init__(self, plan: dict) -> None:
        self.plan = plan
        self.i = 0

    def open(self) -> None:
        self.plan["opens"] += 1
        if self.plan["opens"] <= self.plan["fail_opens"]:
            raise SourceError("/dev/video0: no such device (unplugged)")

    def read(self):
        if self.i >= self.plan["frames"]:
            return None if self.plan.get("end") else (_ for _ in ()).throw(SourceError("unplugged again"))
        img = np.full((96, 128, 3), 40 + self.i, np.uint8)
        f = Frame(img, 1000.0 + self.i * 33.3, self.i)
        self.i += 1
        return f

    @property
    def fps(self):
        return 30.0

    def close(self) -> None:
        pass


def test_retry_forever_comes_back_after_n_attempts_with_capped_backoff():
    assert capped_backoff(60) == (0.5, 1, 2, 4, 8, 16, 32, 60)
    plan = {"opens": 0, "fail_opens": 25, "frames": 3, "end": True}
    sleeps, events, beats = [], [], []
    src = ReconnectingSource(lambda: ReturningCamera(plan), backoff=capped_backoff(4), retry_forever=True,
                             sleep=sleeps.append)
    src.set_hooks(on_event=lambda k, f: events.append((k, f)), heartbeat=lambda: beats.append(1))
    src.open()  # 25 failures: far more than the default 4 attempts
    assert plan["opens"] == 26
    assert max(sleeps) == 1.0  # sliced into <= 1 s steps so the watchdog is pinged while waiting
    assert sum(sleeps) == pytest.approx(0.5 + 1 + 2 + 4 * 22)  # capped at 4 s
    assert len(beats) >= len(sleeps)
    kinds = [k for k, _ in events]
    assert kinds[0] == "camera_lost" and kinds.count("camera_retry") == 25 and kinds[-1] == "camera_restored"
    assert events[-1][1]["attempts"] == 26 and events[1][1]["next_retry_s"] == 0.5
    frames = [src.read() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2]


def test_retry_forever_stops_on_request():
    plan = {"opens": 0, "fail_opens": 10**9, "frames": 0}
    stop = {"now": False}

    def sleep(_s):
        if plan["opens"] > 5:
            stop["now"] = True

    src = ReconnectingSource(lambda: ReturningCamera(plan), retry_forever=True, sleep=sleep)
    src.set_hooks(should_stop=lambda: stop["now"])
    with pytest.raises(SourceError, match="stopped while waiting"):
        src.open()


def test_run_reports_the_outage_and_pings_the_watchdog(assets, tmp_path, notify_socket):
    """The whole path: camera missing at start, back after N attempts, lost again; status lines + READY/WATCHDOG."""
    from edgeaffect.session import run_source

    path, s = notify_socket
    plan = {"opens": 0, "fail_opens": 4, "frames": 5}
    src = ReconnectingSource(lambda: ReturningCamera(plan), backoff=(0.01, 0.02), retry_forever=True)
    sd = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1"})  # ping on every call
    msgs: list[str] = []
    s.settimeout(0.2)
    done = threading.Event()

    def reader():  # systemd's side: read every datagram (the kernel queues only ~10)
        while not done.is_set():
            try:
                msgs.append(s.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                pass

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    src_plan_after = {"k": 0}

    def on_result(_r):
        src_plan_after["k"] += 1
        if src_plan_after["k"] == 5:  # the second session fails twice, then the run is stopped by max_frames
            plan["fail_opens"] = plan["opens"] + 2

    summary = run_source(src, tmp_path / "out", max_frames=8, notifier=sd, on_result=on_result)
    time.sleep(0.3)
    done.set()
    t.join()
    assert summary.frames == 8 and not summary.error
    lines = list(read_jsonl(tmp_path / "out" / "results.jsonl", frames_only=False))
    ev = [d["event"] for d in lines if "event" in d]
    assert ev[:2] == ["camera_lost", "camera_retry"] and ev.count("camera_restored") == 2
    assert ev.count("camera_retry") == 4 + 2 and ev.count("camera_lost") == 2
    frames = [d for d in lines if "frame_index" in d]
    assert len(frames) == 8 and all(d["wall_utc"] and d["wall_utc"].endswith("Z") for d in frames)
    assert [d["frame_index"] for d in frames] == sorted(d["frame_index"] for d in frames)
    assert sd.failed == 0 and msgs[0].startswith("READY=1") and msgs[-1] == "STOPPING=1"
    assert msgs.count("WATCHDOG=1") >= 8 + 6  # from every frame, and from every back-off wait


# --------------------------------------------------------------------------- a restart keeps the last run's files
def test_set_aside_moves_a_previous_plain_run_and_leaves_segments_alone(tmp_path):
    import os
    import shutil

    from edgeaffect.outputs.run_outputs import set_aside_previous_run

    assert set_aside_previous_run(tmp_path) is None  # empty: nothing to move
    (tmp_path / "results-000001-20261130T100000Z-f0-f9.jsonl").write_text('{"frame_index": 0}\n')
    (tmp_path / "index.json").write_text("{}")
    (tmp_path / "run.json").write_text('{"segmented": 1}')
    (tmp_path / "summary.json").write_text('{"frames": 10}')
    seg_start = 1_790_000_000.0
    os.utime(tmp_path / "run.json", (seg_start, seg_start))
    # a segmented run's directory: its segments and index stay (the next run continues them),
    # its run.json / summary.json (setup, totals, how it ended) are kept aside, not overwritten
    seg = set_aside_previous_run(tmp_path)
    assert seg == tmp_path / "previous-20260921T141320Z"
    assert sorted(p.name for p in seg.iterdir()) == ["run.json", "summary.json"]
    assert (seg / "summary.json").read_text() == '{"frames": 10}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "previous-20260921T141320Z",
                                                        "results-000001-20261130T100000Z-f0-f9.jsonl"]
    shutil.rmtree(seg)
    (tmp_path / "run.json").write_text("{}")
    for name, text in (("results.jsonl", '{"frame_index": 0}\n'), ("results.csv", "frame_index\n0\n"),
                       ("summary.json", '{"frames": 1}')):
        (tmp_path / name).write_text(text)
    started = 1_800_000_000.0  # the previous run began when it wrote run.json
    os.utime(tmp_path / "run.json", (started, started))
    moved = set_aside_previous_run(tmp_path)
    assert moved == tmp_path / "previous-20270115T080000Z"
    assert sorted(p.name for p in moved.iterdir()) == ["results.csv", "results.jsonl", "run.json", "summary.json"]
    assert (moved / "results.jsonl").read_text() == '{"frame_index": 0}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "previous-20270115T080000Z",
                                                        "results-000001-20261130T100000Z-f0-f9.jsonl"]
    (tmp_path / "results.jsonl").write_text("x\n")  # a third run's predecessor without run.json: same start second -> -2
    os.utime(tmp_path / "results.jsonl", (started, started))
    assert set_aside_previous_run(tmp_path) == tmp_path / "previous-20270115T080000Z-2"


def test_set_aside_that_cannot_move_is_one_clear_error_and_overwrites_nothing(tmp_path, monkeypatch):
    from edgeaffect.errors import OutputError
    from edgeaffect.outputs import run_outputs

    (tmp_path / "results.jsonl").write_text("kept\n")
    (tmp_path / "results.csv").write_text("kept too\n")
    real, calls = os.replace, []

    def replace(a, b):  # the second file cannot be moved (e.g. a read-only mount half-way through)
        calls.append(a)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied")
        real(a, b)

    monkeypatch.setattr(run_outputs.os, "replace", replace)
    with pytest.raises(OutputError, match="could not be moved.*Permission denied.*nothing was overwritten.*--overwrite"):
        run_outputs.set_aside_previous_run(tmp_path)
    assert (tmp_path / "results.csv").read_text() == "kept too\n"  # not moved: still in place, whole
    assert [p.read_text() for p in tmp_path.glob("previous-*/results.jsonl")] == ["kept\n"]  # moved before the failure


def test_a_restarted_plain_run_keeps_the_previous_runs_results(assets, tmp_path):
    """systemd's Restart=on-failure (or a second `edgeaffect run --out DIR`): the first run's lines survive."""
    from edgeaffect.session import run_source

    def cam(first: int):
        return [Frame(np.full((96, 128, 3), 40 + i, np.uint8), (first + i) * 33.3, first + i) for i in range(3)]

    def stamps(p):
        return [round(d["timestamp_ms"]) for d in read_jsonl(p)]

    out = tmp_path / "out"
    s1 = run_source(cam(0), out, write_csv=True)
    first = (out / "results.jsonl").read_bytes()
    s2 = run_source(cam(100), out, write_csv=True)
    assert s1.frames == s2.frames == 3 and "previous_run" not in s1.outputs
    prev = Path(s2.outputs["previous_run"])
    assert prev.parent == out and prev.name.startswith("previous-")
    assert (prev / "results.jsonl").read_bytes() == first and stamps(prev / "results.jsonl") == [0, 33, 67]
    assert len((prev / "results.csv").read_text().splitlines()) == 1 + 3
    assert (prev / "run.json").is_file() and (prev / "summary.json").is_file()
    assert stamps(out / "results.jsonl") == [3330, 3363, 3397]
    s3 = run_source(cam(200), out, write_csv=False, overwrite=True)  # asked for: replaced, nothing new set aside
    assert "previous_run" not in s3.outputs
    assert stamps(out / "results.jsonl") == [6660, 6693, 6727]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [prev.name]


# --------------------------------------------------------------------------- camera outages over MQTT
def test_camera_outages_reach_mqtt_stats_and_events(assets, tmp_path):
    """retry_forever with --mqtt: `availability` stays the connection's; `stats` carries the source state and
    `events` the camera_lost / camera_restored lines, against a real Mosquitto."""
    pytest.importorskip("paho.mqtt.client")
    from edgeaffect.observers import ResultObservers
    from edgeaffect.session import run_source
    from edgeaffect.telemetry import MqttConfig, parse
    from tests.mosquitto import Broker, Subscriber, mosquitto_binary

    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto mosquitto-clients)")
    b = Broker(tmp_path / "broker").start()
    sub = Subscriber(b.port, client_id="s-outage", persistent=False)
    try:
        sub.wait_subscribed()
        plan = {"opens": 0, "fail_opens": 3, "frames": 5}  # missing at start (3 attempts), lost after 5 frames
        src = ReconnectingSource(lambda: ReturningCamera(plan), backoff=(0.01, 0.02), retry_forever=True)
        seen = {"k": 0}

        def on_result(_r):
            seen["k"] += 1
            if seen["k"] == 5:  # the re-open fails twice more
                plan["fail_opens"] = plan["opens"] + 2

        cfg = MqttConfig(host="127.0.0.1", port=b.port, device="kiosk-1", frames_hz=0.0, stats_every_s=3600.0,
                         reconnect_min_s=0.1, reconnect_max_s=0.5)
        summary = run_source(src, tmp_path / "out", max_frames=8, on_result=on_result,
                             observers=ResultObservers(mqtt=cfg, spool_dir=tmp_path / "spool"))
        assert summary.frames == 8 and not summary.error
        top = "edgeaffect/kiosk-1/"

        def done(msgs):
            return any(t == top + "availability" and p == b"offline" for t, p, _ in msgs)

        assert sub.wait_for(done), "the clean close publishes offline"
        msgs = list(sub.messages)
    finally:
        sub.close()
        b.stop()
    events = [parse(p)["data"] for t, p, _ in msgs if t == top + "events"]
    assert [e["event"] for e in events] == ["camera_lost", "camera_restored", "camera_lost", "camera_restored"]
    assert events[0]["phase"] == "open" and events[2]["phase"] == "read" and events[3]["attempts"] == 3
    stats = sorted((parse(p) for t, p, _ in msgs if t == top + "stats"), key=lambda d: d["seq"])
    states = [(s["data"]["source"], s["data"]["source_outages"]) for s in stats]
    # one stats message as each outage starts and ends (retained), and the last one at the close
    assert states == [("outage", 1), ("ok", 1), ("outage", 2), ("ok", 2), ("ok", 2)]
    during = stats[2]["data"]
    assert during["source_outage_current_s"] is not None and during["source_retry_attempts"] == 0
    assert during["source_last_error"] == "unplugged again"
    last = stats[-1]["data"]
    assert last["source_outage_current_s"] is None and last["source_outage_s"] > 0 and last["frames"] == 8
    assert last["source_outage_s"] >= stats[1]["data"]["source_outage_s"] > 0  # seconds lost add up across outages
    assert [p for t, p, _ in msgs if t == top + "availability"] == [b"online", b"offline"]  # connection-level only


def test_stats_keep_coming_during_an_outage_from_the_retries():
    """No frames arrive while the camera is away: the reconnect loop's retries send `stats` every stats_every_s
    (a recording publisher stands in for the broker; the broker path is the test above)."""
    from edgeaffect.telemetry import MqttConfig, parse
    from edgeaffect.telemetry.sink import TelemetrySink

    class Recorder:
        def __init__(self):
            self.sent = []

        def publish(self, leaf, payload, retain=False):
            self.sent.append((leaf, parse(payload)))

        def status(self):
            return {"connected": True}

        def close(self, drain_s):
            pass

    t = {"now": 0.0}
    pub = Recorder()
    sink = TelemetrySink(pub, MqttConfig(host="x", device="d", stats_every_s=10.0), {}, clock=lambda: t["now"])

    def stats():
        return [d["data"] for leaf, d in pub.sent if leaf == "stats"]

    sink.on_status({"event": "camera_lost", "reason": "unplugged", "phase": "read"})
    for now, attempt in ((5.0, 1), (12.0, 2), (17.0, 3), (23.0, 4)):
        t["now"] = now
        sink.on_status({"event": "camera_retry", "attempt": attempt, "error": "no such device"})
    assert [(s["source"], s["source_retry_attempts"], s["source_outage_current_s"]) for s in stats()] == [
        ("outage", 0, 0.0), ("outage", 2, 12.0), ("outage", 4, 23.0)]
    t["now"] = 30.0
    sink.on_status({"event": "camera_restored", "attempts": 5, "outage_s": 30.0})
    last = stats()[-1]
    assert (last["source"], last["source_outages"], last["source_outage_s"], last["source_outage_current_s"]) == ("ok", 1, 30.0, None)
    assert [d["data"]["event"] for leaf, d in pub.sent if leaf == "events"] == ["camera_lost", "camera_restored"]
    sink.on_status({"event": "something_else"})  # other status lines: ignored
    assert len(stats()) == 4
