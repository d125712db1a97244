"""Every shipped profile loads; bad profiles are rejected naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeaffect.devices import devices_main, devices_report
from edgeaffect.errors import ProfileError
from edgeaffect.profiles import list_profiles, load_profile

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("rpi4", "rpi5", "rpi5-coral", "jetson-orin-nano", "x86-dev", "kiosk-usb")

MINIMAL = """
[device]
name = "t"
description = "test"
arch = "x86_64"

[camera]
source = "v4l2"
device = "/dev/video0"
width = 640
height = 480

[units.cpu]
kind = "cpu"
threads = 2

[placement]
detector = "cpu"
landmarks = "cpu"
au = "cpu"
temporal = "cpu"
"""


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_shipped_profiles_all_load():
    names = list_profiles()
    assert set(SHIPPED) <= set(names)
    for n in SHIPPED:
        p = load_profile(n)
        assert p.name == n and p.description and p.path == REPO / "firmware_configs" / f"{n}.toml"
        assert p.units and p.scheduler.target_fps > 0 and p.thermal.critical_c > p.thermal.throttle_c
        if isinstance(p.placement, dict):
            assert set(p.placement) == {"detector", "landmarks", "eyes", "au", "temporal"}
            assert p.placement["eyes"] == p.placement["landmarks"]  # not listed: on the landmark net's unit


def _toml_leaves(d: dict, path: tuple[str, ...] = ()):
    for k, v in d.items():
        if isinstance(v, dict) and k != "options":
            yield from _toml_leaves(v, (*path, k))
        else:
            yield (*path, k), v


def _attr(obj, path: tuple[str, ...]):
    for k in path:
        obj = obj[k] if isinstance(obj, dict) else getattr(obj, k)
    return obj


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_values_reach_the_profile(name):
    """Every value written in a shipped TOML file is the value the loaded profile carries (read from the
    file itself, so an edit to a profile is checked without copying its values into this test)."""
    import tomllib

    path = REPO / "firmware_configs" / f"{name}.toml"
    prof = load_profile(path)
    leaves = [(k, v) for k, v in _toml_leaves(tomllib.loads(path.read_text())) if k[0] != "device"]
    assert leaves
    for key, value in leaves:
        if key[0] == "outputs":
            continue  # parsed into OutputConfig (sizes, durations): tests/test_outputs.py and test_segments.py
        got = _attr(prof, key)
        if key == ("models", "detector") and value in ("short_range", "full_range"):
            from edgeaffect.models import find_detector_model
            from edgeaffect.profiles import ASSETS_DIR

            value = find_detector_model(ASSETS_DIR, value)  # a range name resolves to the shipped file
        elif isinstance(value, str) and not isinstance(got, str) and hasattr(got, "name"):
            got = got.name  # a reference (delegate, unit) resolved to its object
        assert got == value, (name, ".".join(key), value, got)
    d = prof.degrade_config()
    assert d.throttle_c == prof.thermal.throttle_c and d.latency_budget_ms == prof.frame_budget_ms


def test_minimal_profile_and_defaults(tmp_path):
    p = load_profile(write(tmp_path, MINIMAL, "t.toml"))
    assert p.camera.latest_frame and p.camera.reconnect and p.scheduler.queue_size == 2
    assert p.threads_for("au") == 2 and p.unit_for("au").name == "cpu"
    assert p.rates.module_rates()["detector"] == pytest.approx(0.05)


@pytest.mark.parametrize("patch,key,reason", [
    (("width = 640", "widht = 640"), "camera.widht", "did you mean 'width'"),
    (("[units.cpu]", "[units.cpu]\ncores = 3"), "units.cpu.cores", "unknown key"),
    (("width = 640", "width = \"640\""), "camera.width", "must be int"),
    (("width = 640", "width = 10"), "camera.width", "between 32 and 8192"),
    (("source = \"v4l2\"", "source = \"usb\""), "camera.source", "must be one of"),
    (("kind = \"cpu\"", "kind = \"npu\""), "units.cpu.kind", "must be one of"),
    (("threads = 2", "threads = true"), "units.cpu.threads", "must be int"),
    (("au = \"cpu\"", "au = \"gpu\""), "placement.au", "undefined unit 'gpu'"),
    (("temporal = \"cpu\"\n", ""), "placement", "missing temporal"),
    (("[device]", "[scheduler]\nqueue_size = 9\n[device]"), "scheduler.queue_size", "between 1 and 4"),
    (("[device]", "[thermal]\nthrottle_c = 90\ncritical_c = 85\n[device]"), "thermal.critical_c", "above throttle_c"),
    (("[device]", "[rates]\ndetector = \"sometimes\"\n[device]"), "rates.detector", "on_track_loss"),
    (("[device]", "[models]\nlandmarks = \"no_such_model.tflite\"\n[device]"), "models.landmarks", "does not exist"),
    (("[units.cpu]", "[units.tpu]\nkind = \"edgetpu\"\ndelegate = \"coral\"\n[units.cpu]"), "units.tpu.delegate",
     "undefined delegate 'coral'"),
    (("[device]", "[camera.nir]\ntuning_file = \"imx708_noir.json\"\n[device]"), "camera.nir.tuning_file",
     "only applies to source"),
    (("[device]", "[gpu]\nx = 1\n[device]"), "gpu", "unknown key"),
    (("[device]", "[detection]\nsmall_face_px = 2\n[device]"), "detection.small_face_px", "between 8 and 4096"),
    (("[device]", "[detection]\nsmall_faces = 1\n[device]"), "detection.small_faces", "must be bool"),
])
def test_bad_profiles_name_file_key_and_reason(tmp_path, patch, key, reason):
    old, new = patch
    assert old in MINIMAL
    f = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ProfileError) as e:
        load_profile(f)
    msg = str(e.value)
    assert str(f) in msg and f": {key}:" in msg and reason in msg, msg


def test_model_paths_resolve_beside_the_profile(tmp_path):
    (tmp_path / "lm.tflite").write_bytes(b"x")
    p = load_profile(write(tmp_path, MINIMAL + '\n[models]\nlandmarks = "lm.tflite"\n', "m.toml"))
    assert p.models["landmarks"] == tmp_path / "lm.tflite"


def test_invalid_toml_and_unknown_profile(tmp_path):
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(write(tmp_path, "[camera\nx=1"))
    with pytest.raises(ProfileError, match="did you mean 'rpi5'"):
        load_profile("rpi55")
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.toml")


def test_devices_report_and_main(capsys):
    txt = devices_report()
    for n in SHIPPED:
        assert n in txt
    assert "libedgetpu.so.1" in txt and "thermal zones" in txt and "OpenCV GStreamer support" in txt
    assert devices_main([]) == 0
    assert devices_main(["--json"]) == 0 and '"profiles"' in capsys.readouterr().out
    assert devices_main(["--profile", "rpi5-coral"]) == 0 and "tpu" in capsys.readouterr().out
    assert devices_main(["--profile", "nope"]) != 0
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("edgeaffect devices: error: unknown profile 'nope'")  # errors go to stderr


def test_config_keys_are_declared_once_beside_their_owner_and_documented():
    """Each table's keys come from its dataclass (capture/config.py, scheduler/config.py): an empty table
    gives the declared defaults, an unknown key is refused, and every key is in firmware_configs/README.md."""
    from edgeaffect.capture.config import CameraConfig, NirConfig
    from edgeaffect.configspec import Reader, settings_of
    from edgeaffect.scheduler.config import RatesConfig, SchedulerConfig, ThermalConfig

    doc = (REPO / "firmware_configs" / "README.md").read_text()
    r = Reader("t.toml")
    from edgeaffect.tracking.config import DetectionConfig

    for cls in (CameraConfig, NirConfig, SchedulerConfig, RatesConfig, ThermalConfig, DetectionConfig):
        keys = settings_of(cls)
        assert keys and all(f"`{k}`" in doc or k in doc for k in keys), cls
    assert SchedulerConfig.from_table(r, {}) == SchedulerConfig() and DetectionConfig.from_table(r, {}) == DetectionConfig()
    assert ThermalConfig.from_table(r, {}) == ThermalConfig() and RatesConfig.from_table(r, {}) == RatesConfig()
    cam = CameraConfig.from_table(r, {"source": "file", "device": "x.mp4"})
    assert not cam.latest_frame and not cam.reconnect  # files: no grabber thread, no reconnect
    assert CameraConfig.from_table(r, {"source": "v4l2", "device": 0}).device == "0"
    with pytest.raises(ProfileError, match=r"t.toml: scheduler.queue: unknown key \(did you mean 'queue_size'\?\)"):
        SchedulerConfig.from_table(r, {"queue": 2})
