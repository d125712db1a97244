"""Raspberry Pi cameras through picamera2 (libcamera): Camera Module 3 NoIR, mono global shutter.

- NoIR modules need their tuning file, or images come out ~3x darker:
  `Picamera2(n, tuning=Picamera2.load_tuning_file("imx708_noir.json"))`.
- Colour/ISP formats come from the "main" stream (XRGB8888 = BGRA in memory, RGB888 = BGR
  in memory, YUV420 whose Y plane is a free grey image). Mono sensors such as the OV9281 are
  read from the "raw" stream in R8 (8-bit) or R10/R12/R16 (unpacked, 16-bit little endian,
  rows padded to the stride), which is where picamera2/libcamera expose mono formats.
- Frame and metadata come from one `capture_request()` (array and metadata of the *same*
  frame; separate capture_array()/capture_metadata() calls may return different frames; used
  only if a picamera2 lacks capture_request). Timestamps are the sensor's (SensorTimestamp,
  ns); gaps larger than a frame period advance the frame index, so upstream drops show.
- Exposure/gain: AeEnable, or manual ExposureTime (us) + AnalogueGain; FrameDurationLimits
  sets the frame rate.
- An optional IR illuminator on a GPIO pin (`IlluminatorStrobe`): "on" while streaming,
  "strobe" lit from each capture request until its frame is returned (lower duty cycle and
  LED heat when the consumer is slower than the sensor), or "alternate" lit on even
  requests only (for ambient-light subtraction). Software timing is approximate by one
  frame; for exposure-exact sync wire the sensor's strobe output to the LED driver and use
  mode "on". `frame.meta["illuminator"]` records the state requested for each frame.

picamera2 and the GPIO libraries are imported lazily; tests inject fakes with the same API.
"""

from __future__ import annotations

import importlib
import time
import warnings
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from ..errors import SourceError
from .base import Frame, FrameSource

RAW_MONO_FORMATS = {"R8": 8, "R10": 10, "R12": 12, "R16": 16}
MAIN_FORMATS = ("XRGB8888", "XBGR8888", "RGB888", "BGR888", "YUV420")


# ----------------------------------------------------------------------------- GPIO
class _GpiozeroOut:
    def __init__(self, pin: int, active_high: bool) -> None:
        import gpiozero  # lazy

        self._dev = gpiozero.DigitalOutputDevice(pin, active_high=active_high, initial_value=False)

    def on(self) -> None:
        self._dev.on()

    def off(self) -> None:
        self._dev.off()

    def close(self) -> None:
        self._dev.close()


class _LgpioOut:
    def __init__(self, pin: int, active_high: bool) -> None:
        import lgpio  # lazy

        self._lg = lgpio
        self._h = None
        for chip in (0, 4):  # Pi 5 kernels before 6.6.45 expose the header on gpiochip4
            try:
                h = lgpio.gpiochip_open(chip)
                lgpio.gpio_claim_output(h, pin, 0 if active_high else 1)
                self._h = h
                break
            except Exception:  # noqa: BLE001 - lgpio raises lgpio.error
                continue
        if self._h is None:
            raise OSError(f"cannot claim GPIO {pin} on gpiochip0/4")
        self.pin, self.level_on = pin, 1 if active_high else 0

    def on(self) -> None:
        self._lg.gpio_write(self._h, self.pin, self.level_on)

    def off(self) -> None:
        self._lg.gpio_write(self._h, self.pin, 1 - self.level_on)

    def close(self) -> None:
        self.off()
        self._lg.gpiochip_close(self._h)


def open_gpio_output(pin: int, active_high: bool = True) -> Any:
    """An object with on()/off()/close() driving `pin` (gpiozero, else lgpio)."""
    errors = []
    for cls in (_GpiozeroOut, _LgpioOut):
        try:
            return cls(pin, active_high)
        except ImportError as e:
            errors.append(str(e))
        except Exception as e:  # noqa: BLE001
            errors.append(f"{cls.__name__}: {e}")
    raise SourceError(f"cannot drive the IR illuminator on GPIO {pin}: {'; '.join(errors)} "
                      "(install python3-gpiozero or python3-lgpio)")


class IlluminatorStrobe:
    """Drives an IR illuminator in step with capture requests (see module docstring)."""

    def __init__(self, pin: int | None, mode: str = "on", *, active_high: bool = True, gpio: Any = None) -> None:
        if mode not in ("on", "strobe", "alternate"):
            raise ValueError(f"illuminator mode must be on, strobe or alternate (got {mode!r})")
        self.pin, self.mode, self.active_high = pin, mode, active_high
        self._gpio = gpio
        self.state = False

    def _set(self, on: bool) -> None:
        if self._gpio is None:
            assert self.pin is not None
            self._gpio = open_gpio_output(self.pin, self.active_high)
        (self._gpio.on if on else self._gpio.off)()
        self.state = on

    def start(self) -> None:
        self._set(self.mode == "on")

    def before_capture(self, index: int) -> bool:
        if self.mode == "strobe":
            self._set(True)
        elif self.mode == "alternate":
            self._set(index % 2 == 0)
        return self.state

    def after_capture(self, index: int) -> None:
        if self.mode == "strobe":
            self._set(False)

    def close(self) -> None:
        if self._gpio is not None:
            try:
                self._set(False)
                self._gpio.close()
            finally:
                self._gpio = None


# ----------------------------------------------------------------------------- source
class Picamera2Source(FrameSource):
    name = "picamera2"
    is_live = True

    def __init__(
        self,
        config: Any = None,
        *,
        picamera2_module: Any = None,
        gpio: Any = None,
        **overrides: Any,
    ) -> None:
        from .config import CameraConfig

        cfg = config if config is not None else CameraConfig(source="picamera2", device="0")
        if isinstance(cfg, dict):
            cfg = CameraConfig(**{"source": "picamera2", **cfg})
        if overrides:
            cfg = replace(cfg, **overrides)
        self.config = cfg
        self.camera_num = int(cfg.device or 0)
        self.pixel_format = (cfg.pixel_format or "XRGB8888").upper()
        if self.pixel_format not in RAW_MONO_FORMATS and self.pixel_format not in MAIN_FORMATS:
            raise SourceError(f"picamera2: unsupported pixel format {self.pixel_format!r} "
                              f"(use one of {', '.join((*MAIN_FORMATS, *RAW_MONO_FORMATS))})")
        self.stream = "raw" if self.pixel_format in RAW_MONO_FORMATS else "main"
        self._mod = picamera2_module
        self._gpio = gpio
        self._cam: Any = None
        self.illuminator: IlluminatorStrobe | None = None
        self._index = 0
        self._last_sensor_ts: float | None = None
        self._last_ts = -1.0
        self._period_ms = 1000.0 / cfg.fps if cfg.fps else None
        self.camera_config: dict[str, Any] = {}

    # -------------------------------------------------------------- open
    def _module(self) -> Any:
        if self._mod is not None:
            return self._mod
        try:
            return importlib.import_module("picamera2")
        except ImportError:
            raise SourceError(
                "picamera2 is not installed: `sudo apt install python3-picamera2` (in a venv create it with "
                "--system-site-packages so libcamera's bindings are visible)"
            ) from None

    def open(self) -> None:
        P = self._module().Picamera2  # noqa: N806 - the real class name
        cfg = self.config
        info = getattr(P, "global_camera_info", None)
        if callable(info):
            cams = info()
            if self.camera_num >= len(cams):
                found = ", ".join(f"{i}: {c.get('Model', '?')}" for i, c in enumerate(cams)) or "none"
                raise SourceError(f"picamera2 camera {self.camera_num} not found (cameras: {found}; "
                                  "check the ribbon cable and dtoverlay in /boot/firmware/config.txt)")
        tuning = None
        if cfg.nir.tuning_file:
            try:
                tuning = P.load_tuning_file(cfg.nir.tuning_file)
            except (RuntimeError, OSError) as e:
                raise SourceError(f"picamera2: tuning file {cfg.nir.tuning_file!r} not found ({e})") from None
        try:
            cam = P(self.camera_num, tuning=tuning) if tuning is not None else P(self.camera_num)
        except (RuntimeError, IndexError) as e:
            raise SourceError(f"picamera2 camera {self.camera_num} cannot be opened (busy or missing: {e})") from None
        try:
            self._configure(cam)
        except Exception:
            cam.close()
            raise
        self._cam = cam
        if cfg.nir.illuminator_gpio is not None or self._gpio is not None:
            self.illuminator = IlluminatorStrobe(cfg.nir.illuminator_gpio, cfg.nir.illuminator_mode,
                                                 active_high=cfg.nir.illuminator_active_high, gpio=self._gpio)
            try:
                self.illuminator.start()
            except SourceError as e:  # the LEDs are optional hardware: capture without them
                warnings.warn(f"{e}; capturing without illuminator control", RuntimeWarning, stacklevel=2)
                self.illuminator = None
        cam.start()

    def _configure(self, cam: Any) -> None:
        cfg = self.config
        size = (cfg.width or 640, cfg.height or 480)
        kw: dict[str, Any] = {"buffer_count": 4}
        if cfg.fps:
            period = int(round(1e6 / cfg.fps))
            kw["controls"] = {"FrameDurationLimits": (period, period)}
        if isinstance(cfg.mode, int):
            modes = cam.sensor_modes
            if not 0 <= cfg.mode < len(modes):
                raise SourceError(f"picamera2: sensor mode {cfg.mode} does not exist (camera has {len(modes)})")
            sm = modes[cfg.mode]
            kw["sensor"] = {"output_size": sm["size"], "bit_depth": sm["bit_depth"]}
        if self.stream == "raw":
            video = cam.create_video_configuration(main={"size": size, "format": "YUV420"},
                                                   raw={"size": size, "format": self.pixel_format}, **kw)
        else:
            video = cam.create_video_configuration(main={"size": size, "format": self.pixel_format}, **kw)
        try:
            cam.configure(video)
        except Exception as e:  # noqa: BLE001 - libcamera rejects unsupported formats at configure
            raise SourceError(f"picamera2 camera {self.camera_num} rejected {self.stream} format "
                              f"{self.pixel_format} {size[0]}x{size[1]} ({e})") from None
        actual = dict(getattr(cam, "camera_config", None) or video)
        self.camera_config = actual
        got = str((actual.get(self.stream) or {}).get("format", self.pixel_format))
        if got.split("_")[0].upper() != self.pixel_format:
            kind = " (a colour/Bayer sensor: mono R8/R10 need a mono sensor such as the OV9281)" \
                if self.stream == "raw" and got.upper().startswith("S") else ""
            raise SourceError(f"picamera2 camera {self.camera_num} delivers {self.stream} format {got!r}, "
                              f"not the requested {self.pixel_format!r}{kind}")
        controls: dict[str, Any] = {"AeEnable": bool(cfg.auto_exposure)}
        if not cfg.auto_exposure:
            if cfg.exposure_us:
                controls["ExposureTime"] = int(cfg.exposure_us)
            if cfg.analogue_gain:
                controls["AnalogueGain"] = float(cfg.analogue_gain)
        cam.set_controls(controls)

    def set_exposure(self, exposure_us: int | None = None, analogue_gain: float | None = None) -> None:
        """Switch to manual exposure/gain at run time (None for both: back to auto exposure)."""
        if self._cam is None:
            raise SourceError("picamera2 source is not open")
        if exposure_us is None and analogue_gain is None:
            self._cam.set_controls({"AeEnable": True})
            return
        c: dict[str, Any] = {"AeEnable": False}
        if exposure_us is not None:
            c["ExposureTime"] = int(exposure_us)
        if analogue_gain is not None:
            c["AnalogueGain"] = float(analogue_gain)
        self._cam.set_controls(c)

    # -------------------------------------------------------------- read
    def _capture(self) -> tuple[np.ndarray, dict[str, Any]]:
        cam = self._cam
        if hasattr(cam, "capture_request"):
            req = cam.capture_request()
            try:
                return req.make_array(self.stream), dict(req.get_metadata())
            finally:
                req.release()
        return cam.capture_array(self.stream), dict(cam.capture_metadata())

    def _convert(self, arr: np.ndarray) -> tuple[np.ndarray, str, dict[str, Any]]:
        w = self.config.width or arr.shape[1]
        h = self.config.height or arr.shape[0]
        fmt = self.pixel_format
        if fmt in RAW_MONO_FORMATS:
            bits = RAW_MONO_FORMATS[fmt]
            if bits > 8 and arr.dtype == np.uint8:  # unpacked 16-bit samples delivered as bytes
                arr = np.ascontiguousarray(arr).view("<u2")
            img = arr[:h, :w]
            return img, ("GREY" if bits == 8 else fmt), {"bit_depth": bits}
        if fmt == "YUV420":
            return arr[:h, :w], "GREY", {"bit_depth": 8}
        if fmt == "XRGB8888":  # B, G, R, X in memory
            return arr, "XRGB8888", {}
        if fmt == "XBGR8888":  # R, G, B, X in memory
            return cv2.cvtColor(arr, cv2.COLOR_RGBA2BGR), "BGR", {}
        if fmt == "RGB888":  # B, G, R in memory (DRM naming)
            return arr, "BGR", {}
        return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), "BGR", {}  # BGR888 = R, G, B in memory

    def read(self) -> Frame | None:
        if self._cam is None:
            self.open()
        lit = self.illuminator.before_capture(self._index) if self.illuminator else None
        try:
            arr, md = self._capture()
        except Exception as e:  # noqa: BLE001 - libcamera errors surface as many types
            raise SourceError(f"picamera2 camera {self.camera_num} capture failed ({e})") from None
        finally:
            if self.illuminator:
                self.illuminator.after_capture(self._index)
        img, fmt, extra = self._convert(arr)
        sensor_ns = md.get("SensorTimestamp")
        if sensor_ns:
            ts = float(sensor_ns) / 1e6
            period = (md.get("FrameDuration") or 0) / 1000.0 or self._period_ms
            if self._last_sensor_ts is not None and period:
                gap = int(round((ts - self._last_sensor_ts) / period)) - 1
                if gap > 0:
                    self._index += gap  # frames the sensor produced that we never got
            self._last_sensor_ts = ts
        else:
            ts = time.monotonic() * 1000.0
        ts = max(ts, self._last_ts + 1e-3)
        self._last_ts = ts
        meta: dict[str, Any] = {"source": "picamera2", "camera": self.camera_num, **extra}
        for k_md, k in (("ExposureTime", "exposure_us"), ("AnalogueGain", "analogue_gain"), ("Lux", "lux"),
                        ("SensorTimestamp", "sensor_timestamp_ns")):
            if k_md in md:
                meta[k] = md[k_md]
        if self.config.nir.enabled:
            meta["nir"] = True
        if lit is not None:
            meta["illuminator"] = lit
        f = Frame(img, ts, self._index, fmt, meta)
        self._index += 1
        return f

    def close(self) -> None:
        cam, self._cam = self._cam, None
        try:
            if cam is not None:
                try:
                    cam.stop()
                finally:
                    cam.close()
        finally:
            if self.illuminator is not None:
                self.illuminator.close()
                self.illuminator = None
