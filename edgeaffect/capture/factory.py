"""One entry point from a source spec (CLI string or profile CameraConfig) to a FrameSource.

Strings:
  "video.mp4"                 video file (VideoFileSource)
  "/dev/video0", "v4l2:0", "0" V4L2 camera
  "gst:<pipeline>"            GStreamer pipeline ending in appsink
  "csi:0" / "jetson-csi:0"    Jetson CSI camera (nvarguscamerasrc pipeline)
  "picamera2:0"               Raspberry Pi camera 0 through picamera2

Live sources are wrapped in ReconnectingSource (re-open with back-off) and, unless
`latest_frame=False`, LatestFrameSource (a grabber thread keeps only the newest frame).
The returned source is not opened yet: use it as a context manager or call open().
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .base import FrameSource
from .conditioning import ConditionedSource, condition_frame, wants_conditioning
from .file import VideoFileSource
from .gstreamer import GStreamerSource, jetson_csi_pipeline
from .picamera2_source import Picamera2Source
from .reconnect import LatestFrameSource, ReconnectingSource, capped_backoff
from .v4l2 import V4L2Source

__all__ = ["condition_frame", "open_source", "parse_source_spec", "with_camera"]


def parse_source_spec(spec: str) -> tuple[str, str]:
    """'v4l2:0' -> ('v4l2', '0'); a path -> ('file', path)."""
    s = spec.strip()
    low = s.lower()
    for prefix, kind in (("gst:", "gstreamer"), ("gstreamer:", "gstreamer"), ("v4l2:", "v4l2"),
                         ("picamera2:", "picamera2"), ("csi:", "csi"), ("jetson-csi:", "csi"), ("file:", "file")):
        if low.startswith(prefix):
            return kind, s[len(prefix):]
    if s.isdigit() or s.startswith("/dev/video"):
        return "v4l2", s
    return "file", s


def _csi_pipeline(cfg: Any, arg: str) -> str:
    sensor = int(arg or 0)
    return jetson_csi_pipeline(sensor, cfg.width or 1280, cfg.height or 720, cfg.fps or 30)


def _builder(cfg: Any, **kw: Any) -> Callable[[], FrameSource]:
    src = cfg.source
    dev = str(cfg.device or "")
    if src == "v4l2":
        return functools.partial(V4L2Source, dev or "/dev/video0", cfg.width, cfg.height, cfg.fps, cfg.pixel_format
                                 if cfg.pixel_format not in (None, "BGR") else None)
    if src == "gstreamer":
        kind, arg = parse_source_spec(dev) if dev.lower().startswith(("csi:", "jetson-csi:")) else ("gstreamer", dev)
        pipe = _csi_pipeline(cfg, arg) if kind == "csi" else arg
        if not pipe:
            raise SourceError("camera.source = gstreamer needs camera.device = a pipeline string or csi:<sensor-id>")
        return functools.partial(GStreamerSource, pipe)
    if src == "picamera2":
        return functools.partial(Picamera2Source, cfg, picamera2_module=kw.get("picamera2_module"),
                                 gpio=kw.get("gpio"))
    raise SourceError(f"unknown camera source {src!r}")


def open_source(
    spec: str | Path | Any,
    *,
    latest_frame: bool | None = None,
    reconnect: bool | None = None,
    realtime: bool | None = None,
    loop: bool = False,
    max_retries: int | None = 10,
    backoff: tuple[float, ...] = (0.5, 1, 2, 5),
    nir: Any = None,
    retry_forever: bool | None = None,
    **kw: Any,
) -> FrameSource:
    """Build the source for `spec` (string, path or capture.config.CameraConfig); see module docstring.

    Frames are conditioned here, once, when the camera config asks for it (`nir.gamma`,
    `nir.clahe`; `nir=` overrides the config's, e.g. the CLI's --nir-enhance). `retry_forever`
    overrides the config's (a live camera is then retried without limit, back-off capped at
    `backoff_max_s`)."""
    src = _open_source(spec, latest_frame=latest_frame, reconnect=reconnect, realtime=realtime, loop=loop,
                       max_retries=max_retries, backoff=backoff, retry_forever=retry_forever, **kw)
    if nir is None:
        cam_nir = getattr(spec, "nir", None)
        nir = cam_nir if cam_nir is not None and cam_nir.enabled else None
    return ConditionedSource(src, nir) if wants_conditioning(nir) else src


def _open_source(
    spec: str | Path | Any,
    *,
    latest_frame: bool | None,
    reconnect: bool | None,
    realtime: bool | None,
    loop: bool,
    max_retries: int | None,
    backoff: tuple[float, ...],
    retry_forever: bool | None = None,
    **kw: Any,
) -> FrameSource:
    from .config import CameraConfig

    if isinstance(spec, (str, Path)):
        kind, arg = parse_source_spec(str(spec))
        if kind == "file":
            p = Path(arg).expanduser()
            if not p.exists():
                raise SourceError(f"source {arg!r}: no such video file (for cameras use /dev/videoN, v4l2:N, "
                                  "gst:<pipeline>, csi:N or picamera2:N)")
            return VideoFileSource(p, realtime=bool(realtime), loop=loop)
        if kind == "csi":
            cfg = CameraConfig(source="gstreamer", device=f"csi:{arg or 0}")
        else:
            cfg = CameraConfig(source=kind, device=arg)
    elif isinstance(spec, CameraConfig):
        cfg = spec
        if cfg.source == "file":
            if not cfg.device:
                raise SourceError("camera.source = file needs camera.device = a video path (or pass --source)")
            return VideoFileSource(Path(cfg.device).expanduser(),
                                   realtime=cfg.realtime if realtime is None else realtime, loop=loop)
    else:
        raise TypeError(f"open_source: expected a str, Path or CameraConfig, got {type(spec).__name__}")
    build = _builder(cfg, **kw)
    src: FrameSource
    if cfg.reconnect if reconnect is None else reconnect:
        forever = bool(cfg.retry_forever if retry_forever is None else retry_forever)
        src = ReconnectingSource(build, backoff=capped_backoff(cfg.backoff_max_s) if forever else backoff,
                                 max_retries=max_retries, name=f"{cfg.source}:{cfg.device}", retry_forever=forever)
    else:
        src = build()
    if cfg.latest_frame if latest_frame is None else latest_frame:
        src = LatestFrameSource(src)
    return src


def with_camera(cfg: Any, spec: str | None) -> Any:
    """The profile's CameraConfig with the CLI's --source applied (a path/spec overrides it)."""
    if not spec:
        return cfg
    kind, arg = parse_source_spec(spec)
    if kind == "csi":
        return replace(cfg, source="gstreamer", device=f"csi:{arg or 0}")
    return replace(cfg, source=kind, device=arg, latest_frame=cfg.latest_frame and kind != "file",
                   reconnect=cfg.reconnect and kind != "file")
