"""The policy layers on the real pipeline: `edgeaffect run --dms --kiosk --mqtt` on the shared
clip with a real broker, and eye closure seen on real photos. Skip cleanly without ../shared."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.mosquitto import Broker, Subscriber, mosquitto_binary

from .conftest import SHARED, VIDEO

pytestmark = pytest.mark.shared_data

OPEN_PHOTO = "Colin_Powell_0081.jpg"  # eyes open
CLOSED_PHOTO = "Colin_Powell_0224.jpg"  # eyes shut (teacher EAR 0.09: the lowest of his 233 photos)


def test_real_photos_eye_closure_seen_by_the_pipeline_and_the_driver_monitor(assets):
    import cv2

    from edgeaffect import Analyzer, AnalyzerOptions
    from edgeaffect.dms import DmsConfig, DriverMonitor, image_quality

    d = SHARED / "expressions" / "images"
    if not (d / OPEN_PHOTO).exists() or not (d / CLOSED_PHOTO).exists():
        pytest.skip(f"{OPEN_PHOTO} / {CLOSED_PHOTO} not in ../shared/data/expressions")

    def place(name: str) -> np.ndarray:  # the 192 px crop on a 640x480 dark frame, like a cabin camera
        im = cv2.resize(cv2.imread(str(d / name)), (240, 240))
        return cv2.copyMakeBorder(im, 120, 120, 200, 200, cv2.BORDER_CONSTANT, value=0)

    fps = 30.0
    shut = (2.0, 3.5)  # seconds: a 1.5 s closure between two open-eye stretches
    frames = [place(CLOSED_PHOTO if shut[0] <= i / fps < shut[1] else OPEN_PHOTO) for i in range(int(5.5 * fps))]
    frames += [np.full((480, 640, 3), 3, np.uint8)] * int(3 * fps)  # then the lens is covered for 3 s
    mon = DriverMonitor(DmsConfig(calibrate=False))
    states, events = [], []
    with Analyzer(AnalyzerOptions(max_faces=1)) as an:
        for i, img in enumerate(frames):
            s, ev = mon.update(an.process(img, i * 1000.0 / fps), image_quality(img), (img.shape[1], img.shape[0]))
            states.append(s)
            events += ev
    assert sum(s.face_detected for s in states[: int(5.5 * fps)]) >= 0.95 * 5.5 * fps
    blocked = [e for e in events if e.type == "camera_blocked"]
    assert blocked and blocked[0].phase == "start" and blocked[0].start_ms == pytest.approx(5500, abs=100)
    assert blocked[0].timestamp_ms == pytest.approx(7500, abs=100)  # 2 s of a dark, uniform, face-less image
    assert any(e.type == "face_not_seen" for e in events)
    states = states[: int(5.5 * fps)]
    closure = np.array([s.eyes.closure if s.eyes.closure is not None else np.nan for s in states])
    t = np.arange(len(states)) / fps
    inside = (t >= shut[0] + 0.2) & (t < shut[1])
    outside = (t < shut[0]) | (t >= shut[1] + 0.5)
    assert np.nanmean(closure[inside]) > np.nanmean(closure[outside]) + 0.15, (np.nanmean(closure[inside]), np.nanmean(closure[outside]))
    assert all(s.head_pose_std is not None for s in states if s.face_detected)
    if states[-1].eyes.source == "network":  # per-eye closed probabilities from the landmark model
        # the 1.5 s closure is one closure episode (a long blink, at least) that starts near the
        # cut to the closed photo; no episode starts while the open photo is shown
        starts = [e for e in events if e.phase == "start" and e.type in ("long_blink", "microsleep")]
        assert starts, "no closure episode on real closed-eye frames"
        assert all((shut[0] - 0.3) * 1000 <= e.start_ms <= (shut[0] + 0.6) * 1000 for e in starts), [e.to_dict() for e in starts]
    else:  # EAR fallback: the shipped landmark net's eyelids move, but not to the P80 threshold
        assert max(closure[outside]) < 0.5


@pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed (apt-get install -y mosquitto mosquitto-clients)")
def test_run_dms_kiosk_mqtt_end_to_end(assets, tmp_path, capsys, monkeypatch):
    pytest.importorskip("paho.mqtt.client")
    if not VIDEO.exists():
        pytest.skip(f"{VIDEO} not present")
    from edgeaffect.cli import main
    from edgeaffect.telemetry import parse

    monkeypatch.setenv("EDGEAFFECT_MQTT_PASSWORD", "not-to-be-seen-7")
    b = Broker(tmp_path / "broker").start()
    sub = Subscriber(b.port, client_id="s-e2e", persistent=False)
    sub.wait_subscribed()
    out = tmp_path / "out"
    try:
        rc = main(["run", "--source", str(VIDEO), "--out", str(out), "--max-frames", "120", "--dms", "--kiosk",
                   "--mqtt", b.url, "--mqtt-user", "car7", "--mqtt-device", "car-7", "--mqtt-frames-hz", "0",
                   "--mqtt-stats-s", "1"])
        assert rc == 0
        printed = capsys.readouterr()
        assert sub.wait_for(lambda m: sum(t == "edgeaffect/car-7/frames" for t, _, _ in m) >= 120, 10)
    finally:
        sub.close()
        b.stop()
    # files: a driver and kiosk object on every frame line, event lines after their frame
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    frames = [x for x in lines if x.get("schema") == "edgeaffect.frame/1"]
    events = [x for x in lines if "phase" in x]
    assert len(frames) == 120 and all(f["driver"] and f["kiosk"] for f in frames)
    assert all(len(f["faces"]) <= 1 for f in frames)  # --dms follows one face
    assert {e["phase"] for e in events} <= {"start", "update", "end"} and any(e["phase"] == "end" for e in events)
    opened = {e["id"] for e in events if e["phase"] == "start"}
    assert opened == {e["id"] for e in events if e["phase"] == "end"}  # every episode closed, by the run end at the latest
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert rows[0]["drv_awareness"] != "" and rows[0]["kiosk_people"] != ""
    run = (out / "run.json").read_text()
    assert json.loads(run)["mqtt"]["url"] == b.url and "dms" in json.loads(run)
    for text in (run, printed.out, printed.err, (out / "summary.json").read_text()):
        assert "not-to-be-seen-7" not in text and "car7" not in text
    # the broker saw every frame once, in order, and the run's events, stats, info and availability
    msgs = sub.messages
    seqs = [parse(p)["seq"] for t, p, _ in msgs if t == "edgeaffect/car-7/frames"]
    assert seqs == list(range(120))
    ev_mqtt = [parse(p)["data"] for t, p, _ in msgs if t == "edgeaffect/car-7/events"]
    assert [e["id"] + e["phase"] for e in ev_mqtt] == [e["id"] + e["phase"] for e in events]
    stats = [parse(p)["data"] for t, p, _ in msgs if t == "edgeaffect/car-7/stats"]
    assert stats and stats[-1]["frames"] == 120 and stats[-1]["latency_ms"]["p90"] > 0
    assert set(stats[-1]["models"]) >= {"detector", "landmarks"}
    avail = [p for t, p, _ in msgs if t == "edgeaffect/car-7/availability"]
    assert avail[0] == b"online" and avail[-1] == b"offline"
    assert any(t == "edgeaffect/car-7/driver" for t, _, _ in msgs) and any(t == "edgeaffect/car-7/info" for t, _, _ in msgs)
    assert not (out / "mqtt-spool" / "spool-00000000.log").exists() or Path(out / "mqtt-spool" / "ack").exists()


def test_run_with_an_unreachable_broker_finishes_and_keeps_everything_spooled(assets, tmp_path, capsys):
    pytest.importorskip("paho.mqtt.client")
    if not VIDEO.exists():
        pytest.skip(f"{VIDEO} not present")
    from edgeaffect.cli import main
    from edgeaffect.telemetry import Spool

    from .mosquitto import free_port

    out = tmp_path / "out"
    rc = main(["run", "--source", str(VIDEO), "--out", str(out), "--max-frames", "30", "--dms", "-q",
               "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--mqtt-frames-hz", "0"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "still spooled" in text and "30 frames" in text
    sp = Spool(out / "mqtt-spool")
    recs = []
    while (r := sp.next()) is not None:
        recs.append(r)
    frames = [r for r in recs if r.topic.endswith("/frames")]
    assert len(frames) == 30 and [json.loads(r.payload)["seq"] for r in frames] == list(range(30))
    sp.close()


PROFILE_LAYERS = """
[device]
name = "unit-kiosk"
arch = "x86_64"

[camera]
source = "file"

[units.cpu]
kind = "cpu"
threads = 1

[dms]
enabled = true

[kiosk]
enabled = true

[telemetry]
mqtt = "{url}"
device = "unit-7"
username = "unit7"
password_file = "{pw}"
frames_hz = 0
stats_s = 1
spool_mb = 5
"""


@pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed (apt-get install -y mosquitto mosquitto-clients)")
def test_a_profile_alone_turns_on_the_layers_and_publishes(assets, tmp_path, capsys):
    """`edgeaffect run --profile NAME` with no flags (how the systemd unit runs it): the profile's
    [dms]/[kiosk] enabled and [telemetry] table give the same driver/kiosk objects and MQTT
    messages as the flags, against a real broker; the password file's content is never printed."""
    pytest.importorskip("paho.mqtt.client")
    from edgeaffect.cli import main
    from edgeaffect.demo import write_demo_clip
    from edgeaffect.telemetry import parse

    clip = write_demo_clip(tmp_path / "clip.avi", 24)
    b = Broker(tmp_path / "broker").start()
    (tmp_path / "pw").write_text("pw-from-file-9\n")
    prof = tmp_path / "unit.toml"
    prof.write_text(PROFILE_LAYERS.format(url=b.url, pw=tmp_path / "pw"))
    sub = Subscriber(b.port, client_id="s-prof", persistent=False)
    sub.wait_subscribed()
    out = tmp_path / "out"
    try:
        assert main(["run", "--profile", str(prof), "--source", str(clip), "--out", str(out), "-q"]) == 0
        printed = capsys.readouterr()
        assert sub.wait_for(lambda m: sum(t == "edgeaffect/unit-7/frames" for t, _, _ in m) >= 24, 10)
    finally:
        sub.close()
        b.stop()
    frames = [x for x in (json.loads(s) for s in (out / "results.jsonl").read_text().splitlines())
              if x.get("schema") == "edgeaffect.frame/1"]
    assert len(frames) == 24 and all(f["driver"] and f["kiosk"] for f in frames)
    assert all(len(f["faces"]) <= 1 for f in frames)  # driver monitoring follows one face
    run = json.loads((out / "run.json").read_text())
    assert run["mqtt"]["device"] == "unit-7" and run["mqtt"]["frames_hz"] == 0 and run["mqtt"]["auth"]
    assert run["mqtt"]["spool_max_mb"] == 5
    for text in ((out / "run.json").read_text(), printed.out, printed.err):
        assert "pw-from-file-9" not in text and "unit7" not in text
    seqs = [parse(p)["seq"] for t, p, _ in sub.messages if t == "edgeaffect/unit-7/frames"]
    assert seqs == list(range(24))


def test_telemetry_table_flags_win_and_bad_values_name_the_key(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from edgeaffect.errors import ProfileError
    from edgeaffect.observers import observers_from_args
    from edgeaffect.profiles import load_profile

    pytest.importorskip("paho.mqtt.client")
    monkeypatch.setenv("EDGEAFFECT_MQTT_PASSWORD", "env-pw")
    prof = tmp_path / "p.toml"
    prof.write_text(PROFILE_LAYERS.format(url="mqtt://broker.example:1884", pw=tmp_path / "missing").replace(
        'password_file = "' + str(tmp_path / "missing") + '"\n', ""))
    p = load_profile(prof)
    none = SimpleNamespace(mqtt=None, dms=False, kiosk=False)
    obs = observers_from_args(none, p)
    assert obs is not None and obs.monitor is not None and obs.kiosk is not None
    cfg = obs.mqtt_cfg
    assert (cfg.host, cfg.port, cfg.device, cfg.frames_hz, cfg.stats_every_s, cfg.password) == (
        "broker.example", 1884, "unit-7", 0.0, 1.0, "env-pw")
    flags = SimpleNamespace(mqtt="mqtt://other.example", mqtt_device="cli-dev", mqtt_frames_hz=5.0, dms=False, kiosk=False)
    cfg2 = observers_from_args(flags, p).mqtt_cfg
    assert (cfg2.host, cfg2.port, cfg2.device, cfg2.frames_hz, cfg2.stats_every_s) == ("other.example", 1883, "cli-dev", 5.0, 1.0)
    for bad, key in (('mqtt = "http://x"', "telemetry.mqtt"), ('device = "a/b"', "telemetry.device"),
                     ('spool_policy = "keep"', "telemetry.spool_policy"), ('pasword_file = "x"', "telemetry.pasword_file")):
        f = tmp_path / "bad.toml"
        f.write_text("[device]\nname = \"b\"\n[camera]\nsource = \"file\"\n[units.cpu]\nkind = \"cpu\"\n[telemetry]\n" + bad + "\n")
        with pytest.raises(ProfileError, match=f": {key}:"):
            load_profile(f)
    assert observers_from_args(none, load_profile("x86-dev")) is None  # no table, no flags: no layers
