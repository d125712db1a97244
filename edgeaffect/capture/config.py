"""The camera configuration, owned by capture: what to open and how (a profile's [camera] table).

Like picamera2's configuration objects: a plain, editable description the sources are built
from (`capture.factory.open_source(CameraConfig(...))`), including the NIR conditioning the
capture boundary applies (`capture.conditioning`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..configspec import Reader, between, one_of, read_section, setting

SOURCES = ("file", "v4l2", "gstreamer", "picamera2")
PIXEL_FORMATS = (
    "BGR", "RGB", "GREY", "MJPG", "YUYV", "NV12", "Y10", "Y16",  # V4L2 / OpenCV / GStreamer
    "XRGB8888", "XBGR8888", "RGB888", "BGR888", "YUV420",  # picamera2 main stream
    "R8", "R10", "R12", "R16",  # picamera2 raw stream of mono sensors (OV9281 ...)
)
ILLUMINATOR_MODES = ("on", "strobe", "alternate")


@dataclass(frozen=True)
class NirConfig:
    enabled: bool = setting(False, bool)  # the camera sees near-infrared (NoIR module, mono global shutter + IR LEDs)
    tuning_file: str | None = setting(None, str)  # libcamera tuning, e.g. imx708_noir.json (else ~3x darker images)
    clahe: bool = setting(False, bool)  # local contrast equalisation at capture (capture.conditioning)
    gamma: float | None = setting(None, float, between(0.1, 5.0))  # > 1 darkens (sun-saturated IR), < 1 brightens
    illuminator_gpio: int | None = setting(None, int, between(0, 53))  # BCM pin of the IR LED board (None: no GPIO)
    illuminator_mode: str = setting("on", str, one_of(ILLUMINATOR_MODES))  # on | strobe (lit while capturing) | alternate
    illuminator_active_high: bool = setting(True, bool)


@dataclass(frozen=True)
class CameraConfig:
    source: str = setting("file", str, one_of(SOURCES))  # file | v4l2 | gstreamer | picamera2
    device: str = setting("", (str, int))  # file path, /dev/videoN, pipeline string, picamera2 camera number
    mode: str | int = setting("auto", (str, int))  # sensor mode (picamera2 index into sensor_modes) or "auto"
    width: int | None = setting(None, int, between(32, 8192))
    height: int | None = setting(None, int, between(32, 8192))
    fps: float | None = setting(None, float, between(0.1, 1000))
    pixel_format: str | None = setting(None, str, one_of(PIXEL_FORMATS))  # None: the source's default
    latest_frame: bool = setting(True, bool)  # live sources: a grabber thread keeps only the newest frame
    reconnect: bool = setting(True, bool)  # live sources: re-open with back-off on failure
    retry_forever: bool = setting(False, bool)  # unattended devices: never give up on the camera (outage -> status lines)
    backoff_max_s: float = setting(30.0, float, between(0.5, 3600.0))  # with retry_forever: back-off doubles from 0.5 s to this
    realtime: bool = setting(False, bool)  # files: pace to the file's frame rate (mimic a camera)
    auto_exposure: bool = setting(True, bool)
    exposure_us: int | None = setting(None, int, between(1, 10_000_000))  # manual exposure (auto_exposure = false)
    analogue_gain: float | None = setting(None, float, between(1.0, 64.0))
    nir: NirConfig = field(default_factory=NirConfig)

    @classmethod
    def from_table(cls, r: Reader, table: Any, section: str = "camera") -> CameraConfig:
        """Validate a [camera] table (with its [camera.nir] sub-table)."""
        t = r.table(table, section)
        source = r.get(t, f"{section}.", "source", str, "file", check=one_of(SOURCES))
        live = source != "file"
        kw = read_section(r, t, section, cls, nested=("nir",), defaults={"latest_frame": live, "reconnect": live})
        nir = NirConfig(**read_section(r, t.get("nir"), f"{section}.nir", NirConfig))
        if isinstance(kw["mode"], str) and kw["mode"] != "auto":
            raise r.fail(f"{section}.mode", f"must be \"auto\" or a sensor mode index (got {kw['mode']!r})")
        if nir.tuning_file and source != "picamera2":
            raise r.fail(f"{section}.nir.tuning_file", f"only applies to source = \"picamera2\" (source is {source!r})")
        if kw["exposure_us"] is not None and kw["auto_exposure"]:
            raise r.fail(f"{section}.exposure_us", "set auto_exposure = false to use a manual exposure")
        return cls(**{**kw, "device": str(kw["device"]), "nir": nir})
