"""picamera2 code path through a fake Picamera2 with the real API shape (no camera here)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeaffect.capture.factory import condition_frame, open_source
from edgeaffect.capture.picamera2_source import IlluminatorStrobe, Picamera2Source
from edgeaffect.errors import SourceError
from edgeaffect.profiles import CameraConfig, NirConfig, load_profile
from edgeaffect.vision.frames import normalise_frame


class FakeRequest:
    def __init__(self, arrays, metadata, log):
        self._arrays, self._md, self._log = arrays, metadata, log

    def make_array(self, name):
        return self._arrays[name]

    def get_metadata(self):
        return self._md

    def release(self):
        self._log.append("release")


class FakePicamera2:
    """Method names and signatures of picamera2.Picamera2 (0.3.x) that the source uses."""

    sensor = "ov9281"  # or "imx708"
    instances: list = []
    skip_sequence: tuple = ()  # sensor frame numbers that are never delivered (drops)

    def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None):
        self.camera_num, self.tuning = camera_num, tuning
        self.log: list = []
        self.controls: dict = {}
        self.camera_config = None
        self.started = self.closed = False
        self._n = 0
        FakePicamera2.instances.append(self)

    @staticmethod
    def load_tuning_file(tuning_file, dir=None):
        if "missing" in tuning_file:
            raise RuntimeError(f"Tuning file {tuning_file} not found")
        return {"version": 2.0, "target": "bcm2835", "algorithms": [], "file": tuning_file}

    @staticmethod
    def global_camera_info():
        return [{"Model": FakePicamera2.sensor, "Location": 2, "Rotation": 0, "Id": "/base/i2c@1/x@60", "Num": 0}]

    @property
    def sensor_modes(self):
        return [{"size": (640, 400), "bit_depth": 10, "format": "R10_CSI2P", "fps": 210.0}]

    def create_video_configuration(self, main={}, lores=None, raw=None, transform=None, colour_space=None,  # noqa: B006
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True,  # noqa: B006
                                   sensor={}, use_case="video"):  # noqa: B006
        return {"use_case": use_case, "main": dict(main), "raw": dict(raw) if raw else None,
                "controls": dict(controls), "buffer_count": buffer_count, "sensor": dict(sensor)}

    def configure(self, camera_config="preview"):
        cfg = dict(camera_config)
        if cfg.get("raw") and self.sensor == "imx708":
            cfg["raw"] = {**cfg["raw"], "format": "SRGGB10_CSI2P"}  # a Bayer sensor cannot give mono raw
        if cfg["main"].get("format") not in ("XRGB8888", "XBGR8888", "RGB888", "BGR888", "YUV420"):
            raise RuntimeError(f"invalid format {cfg['main'].get('format')}")
        self.camera_config = cfg
        self.controls.update(cfg.get("controls") or {})  # picamera2 applies configuration controls on start
        self.log.append("configure")

    def set_controls(self, controls):
        self.controls.update(controls)

    def start(self, config=None, show_preview=False):
        self.started = True
        self.log.append("start")

    def _frame(self):
        while self._n in self.skip_sequence:
            self._n += 1
        n, self._n = self._n, self._n + 1
        w, h = self.camera_config["main"]["size"]
        period_ns = int(self.controls.get("FrameDurationLimits", (33333,))[0]) * 1000
        md = {"SensorTimestamp": 5_000_000_000 + n * period_ns, "ExposureTime": self.controls.get("ExposureTime", 10000),
              "AnalogueGain": self.controls.get("AnalogueGain", 1.0), "FrameDuration": period_ns // 1000}
        arrays = {}
        fmt = self.camera_config["main"]["format"]
        if fmt == "XRGB8888":
            arrays["main"] = np.full((h, w, 4), (10, 20, 30, 255), np.uint8)
        else:  # YUV420: h*3/2 rows
            arrays["main"] = np.full((h * 3 // 2, w), 77, np.uint8)
        raw = self.camera_config.get("raw")
        if raw:
            stride = w + 32
            if raw["format"] == "R8":
                arrays["raw"] = np.full((h, stride), 100 + n % 50, np.uint8)
            else:  # unpacked 16-bit little endian as bytes, like picamera2 returns for R10
                v = np.full((h, stride), 600 + n, np.uint16)
                arrays["raw"] = v.view(np.uint8)
        return arrays, md

    def capture_request(self, wait=None, flush=None):
        self.log.append("capture_request")
        arrays, md = self._frame()
        return FakeRequest(arrays, md, self.log)

    def capture_array(self, name="main", wait=None, signal_function=None):
        return self._frame()[0][name]

    def capture_metadata(self, wait=None, signal_function=None):
        return self._frame()[1]

    def stop(self):
        self.started = False
        self.log.append("stop")

    def close(self):
        self.closed = True
        self.log.append("close")


class FakeModule:
    Picamera2 = FakePicamera2


class FakeGpio:
    def __init__(self):
        self.events = []

    def on(self):
        self.events.append("on")

    def off(self):
        self.events.append("off")

    def close(self):
        self.events.append("close")


@pytest.fixture(autouse=True)
def _reset():
    FakePicamera2.sensor = "ov9281"
    FakePicamera2.instances = []
    FakePicamera2.skip_sequence = ()


def test_ov9281_r10_mono_with_strobe_and_manual_exposure():
    prof = load_profile("rpi5")  # OV9281 R8 640x400 with strobed IR
    cfg = CameraConfig(**{**prof.camera.__dict__, "pixel_format": "R10"})
    gpio = FakeGpio()
    FakePicamera2.skip_sequence = (3,)  # the sensor's frame 3 never reaches us
    with Picamera2Source(cfg, picamera2_module=FakeModule, gpio=gpio) as src:
        frames = [src.read() for _ in range(5)]
    cam = FakePicamera2.instances[0]
    assert cam.camera_config["raw"] == {"size": (640, 400), "format": "R10"}
    assert cam.controls["AeEnable"] is False and cam.controls["ExposureTime"] == 4000
    assert cam.controls["AnalogueGain"] == 4.0 and cam.controls["FrameDurationLimits"] == (16667, 16667)
    f = frames[0]
    assert f.image.shape == (400, 640) and f.image.dtype == np.uint16 and f.pixel_format == "R10"
    assert int(f.image.max()) == 600 and f.meta["bit_depth"] == 10 and f.meta["nir"] is True
    assert f.meta["exposure_us"] == 4000 and f.meta["illuminator"] is True
    assert [x.index for x in frames] == [0, 1, 2, 4, 5]  # the dropped sensor frame shows as a gap
    ts = [x.timestamp_ms for x in frames]
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False))
    assert ts[1] - ts[0] == pytest.approx(16.667, abs=1e-3)
    assert gpio.events[:2] == ["off", "on"] and gpio.events[2] == "off"  # start off, then on/off per frame
    assert gpio.events[-1] == "close" and cam.log[-2:] == ["stop", "close"]
    assert cam.log.count("release") == 5  # every request released
    cf = condition_frame(f, prof.camera.nir)  # NIR path: 10-bit mono -> 8-bit grey (+CLAHE/gamma) at capture
    assert cf.image.dtype == np.uint8 and cf.pixel_format == "GREY" and cf.bit_depth == 8
    assert cf.meta["conditioned"] == {"clahe": prof.camera.nir.clahe, "gamma": prof.camera.nir.gamma}
    nf = normalise_frame(cf)
    assert nf.gray.dtype == np.uint8 and nf.bgr.shape == (400, 640, 3) and nf.was_mono


def test_ov9281_r8():
    cfg = CameraConfig(source="picamera2", device="0", width=640, height=400, fps=120, pixel_format="R8")
    src = Picamera2Source(cfg, picamera2_module=FakeModule)
    f = src.read()
    src.close()
    assert f.image.shape == (400, 640) and f.image.dtype == np.uint8 and f.pixel_format == "GREY"
    assert FakePicamera2.instances[0].controls == {"AeEnable": True, "FrameDurationLimits": (8333, 8333)}


def test_noir_tuning_file_and_xrgb():
    prof = load_profile("rpi5-coral")
    src = Picamera2Source(prof.camera, picamera2_module=FakeModule, gpio=FakeGpio())
    f = src.read()
    src.close()
    cam = FakePicamera2.instances[0]
    c = prof.camera  # what the profile file asks for reaches picamera2 (values read from the profile, not copied)
    assert c.source == "picamera2" and c.nir.tuning_file and c.pixel_format == "XRGB8888"
    assert cam.tuning["file"] == c.nir.tuning_file
    assert cam.camera_config["main"] == {"size": (c.width, c.height), "format": c.pixel_format}
    assert f.image.shape == (c.height, c.width, 4) and f.pixel_format == c.pixel_format and f.channel_order == "bgr"
    assert condition_frame(f) is f  # nothing to condition
    assert tuple(normalise_frame(f).bgr[0, 0]) == (10, 20, 30)


def test_missing_tuning_file_wrong_format_and_missing_camera():
    cfg = CameraConfig(source="picamera2", device="0", pixel_format="XRGB8888",
                       nir=NirConfig(enabled=True, tuning_file="missing_noir.json"))
    with pytest.raises(SourceError, match="tuning file 'missing_noir.json'"):
        Picamera2Source(cfg, picamera2_module=FakeModule).open()
    FakePicamera2.sensor = "imx708"
    with pytest.raises(SourceError, match="SRGGB10_CSI2P.*mono sensor"):
        Picamera2Source(CameraConfig(source="picamera2", device="0", pixel_format="R8"), picamera2_module=FakeModule).open()
    assert FakePicamera2.instances[-1].closed  # camera released after a configuration error
    with pytest.raises(SourceError, match="camera 1 not found"):
        Picamera2Source(CameraConfig(source="picamera2", device="1"), picamera2_module=FakeModule).open()
    with pytest.raises(SourceError, match="unsupported pixel format"):
        Picamera2Source(CameraConfig(source="picamera2", device="0", pixel_format="MJPG"))


def test_picamera2_not_installed(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a machine without it
    with pytest.raises(SourceError, match="python3-picamera2"):
        Picamera2Source(CameraConfig(source="picamera2", device="0")).open()


def test_sys_modules_injection_and_factory(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "picamera2", FakeModule)
    src = open_source("picamera2:0", latest_frame=False)
    with src:
        f = src.read()
    assert f.meta["source"] == "picamera2" and f.meta["reconnects"] == 0


def test_illuminator_modes():
    g = FakeGpio()
    s = IlluminatorStrobe(None, "alternate", gpio=g)
    s.start()
    states = [s.before_capture(i) for i in range(4)]
    assert states == [True, False, True, False]
    with pytest.raises(ValueError):
        IlluminatorStrobe(1, "blink")
