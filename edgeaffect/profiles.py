"""Device profiles: one validated TOML file per device in firmware_configs/.

A profile says how a device captures (camera source, mode, pixel format, NIR handling),
which accelerators it has (delegate libraries and options, grouped into compute units),
how many threads each model gets, where each model runs (a static placement or "auto" =
measure and choose), the frame rate it aims for, how often the expensive models run, and
its thermal limits. See firmware_configs/README.md for every key.

Validation is strict: an unknown key (with a did-you-mean), a wrong type, an out-of-range
value, a unit naming an undefined delegate, a placement naming an undefined unit or a model
file that does not exist raises ProfileError("<file>: <section.key>: <reason>").

TOML parsing uses the standard library's tomllib (Python >= 3.11); on 3.10 the `tomli`
package (same API) is used if installed, otherwise a ProfileError says to install it.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

from .errors import EdgeAffectError, ProfileError
from .registry import MODULES
from .runtime.delegates import (
    CPU_KINDS,
    DEFAULT_LIBRARIES,
    DELEGATE_KINDS,
    ORT_KINDS,
    UNIT_KINDS,
    DelegateSpec,
    check_delegate_library,
    find_shared_library,
)
from .scheduler.placement import ComputeUnit

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "models" / "assets"
SOURCES = ("file", "v4l2", "gstreamer", "picamera2")
PIXEL_FORMATS = (
    "BGR", "RGB", "GREY", "MJPG", "YUYV", "NV12", "Y10", "Y16",  # V4L2 / OpenCV / GStreamer
    "XRGB8888", "XBGR8888", "RGB888", "BGR888", "YUV420",  # picamera2 main stream
    "R8", "R10", "R12", "R16",  # picamera2 raw stream of mono sensors (OV9281 ...)
)
ILLUMINATOR_MODES = ("on", "strobe", "alternate")


def _toml_loads(text: str, where: str) -> dict[str, Any]:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ProfileError(f"{where}: reading profiles needs Python >= 3.11 or `pip install tomli`") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{where}: not valid TOML ({e})") from None


# --------------------------------------------------------------------------- config types
@dataclass(frozen=True)
class NirConfig:
    enabled: bool = False  # the camera sees near-infrared (NoIR module, mono global shutter + IR LEDs)
    tuning_file: str | None = None  # libcamera tuning, e.g. imx708_noir.json (else ~3x darker images)
    clahe: bool = False  # local contrast equalisation for over-exposed IR (vision.frames.enhance_nir)
    gamma: float | None = None  # gamma > 1 darkens (sun-saturated IR), < 1 brightens
    illuminator_gpio: int | None = None  # BCM pin driving the IR LED board (None: no GPIO control)
    illuminator_mode: str = "on"  # on | strobe (lit only while a frame is captured) | alternate
    illuminator_active_high: bool = True


@dataclass(frozen=True)
class CameraConfig:
    source: str = "file"  # file | v4l2 | gstreamer | picamera2
    device: str = ""  # file path, /dev/videoN, pipeline string, picamera2 camera number
    mode: str | int = "auto"  # sensor mode (picamera2 index into sensor_modes) or "auto"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    pixel_format: str | None = None  # None: the source's default
    latest_frame: bool = True  # live sources: a grabber thread keeps only the newest frame
    reconnect: bool = True  # live sources: re-open with back-off on failure
    realtime: bool = False  # files: pace to the file's frame rate (mimic a camera)
    auto_exposure: bool = True
    exposure_us: int | None = None  # manual exposure (auto_exposure = false)
    analogue_gain: float | None = None
    nir: NirConfig = field(default_factory=NirConfig)


@dataclass(frozen=True)
class SchedulerConfig:
    target_fps: float = 30.0
    latency_budget_ms: float | None = None  # end-to-end; default 3 frame periods
    queue_size: int = 2
    pipelined: bool = True
    drop: str = "oldest"  # oldest (live) | block (files: analyse every frame)
    profile_runs: int = 10  # auto placement: timed runs per module and unit
    profile_warmup: int = 2

    @property
    def budget_ms(self) -> float:
        return self.latency_budget_ms if self.latency_budget_ms else 3000.0 / self.target_fps


@dataclass(frozen=True)
class RatesConfig:
    detector: str | int = "on_track_loss"  # on_track_loss | every_frame | k (also every k frames)
    au_every: int = 1
    affect_every: int = 1
    expected_redetect_ratio: float = 0.05  # how often the detector runs while tracking (placement cost)

    def module_rates(self) -> dict[str, float]:
        if self.detector == "every_frame":
            det = 1.0
        elif isinstance(self.detector, int):
            det = max(1.0 / self.detector, self.expected_redetect_ratio)
        else:
            det = self.expected_redetect_ratio
        return {"detector": det, "landmarks": 1.0, "au": 1.0 / self.au_every, "temporal": 1.0 / self.affect_every}


@dataclass(frozen=True)
class ThermalConfig:
    throttle_c: float = 80.0  # start degrading (Pi firmware soft-throttles at 80-85 C)
    critical_c: float = 85.0  # degrade to the last level
    poll_s: float = 2.0
    degrade: bool = True  # overload/thermal degradation enabled
    degraded_affect_every: int = 3
    degraded_au_every: int = 2
    zones_root: str = "/sys/class/thermal"
    use_vcgencmd: bool = True


@dataclass
class DeviceProfile:
    name: str
    description: str
    arch: str  # x86_64 | aarch64
    path: Path | None
    camera: CameraConfig
    delegates: dict[str, DelegateSpec]
    units: dict[str, ComputeUnit]
    threads: dict[str, int]  # module -> interpreter threads
    placement: dict[str, str] | str  # module -> unit name, or "auto"
    scheduler: SchedulerConfig
    rates: RatesConfig
    thermal: ThermalConfig
    models: dict[str, Path] = field(default_factory=dict)  # module -> explicit .tflite/.json

    @property
    def auto_placement(self) -> bool:
        return self.placement == "auto"

    @property
    def frame_budget_ms(self) -> float:
        return self.scheduler.budget_ms

    def units_list(self) -> list[ComputeUnit]:
        return list(self.units.values())

    def threads_for(self, module: str) -> int:
        if module in self.threads:
            return self.threads[module]
        if isinstance(self.placement, dict) and module in self.placement:
            return self.units[self.placement[module]].threads
        return 1

    def unit_for(self, module: str) -> ComputeUnit:
        """Static unit of a module (auto placement: the first CPU unit until measured)."""
        if isinstance(self.placement, dict):
            return self.units[self.placement[module]]
        return next((u for u in self.units.values() if u.kind in CPU_KINDS), next(iter(self.units.values())))

    def degrade_config(self) -> Any:
        from .scheduler.degrade import DegradeConfig

        t = self.thermal
        return DegradeConfig(
            au_every=self.rates.au_every, affect_every=self.rates.affect_every,
            degraded_affect_every=t.degraded_affect_every, degraded_au_every=t.degraded_au_every,
            throttle_c=t.throttle_c, critical_c=t.critical_c, latency_budget_ms=self.frame_budget_ms,
            enabled=t.degrade,
        )

    def summary(self) -> str:
        units = ", ".join(u.describe() for u in self.units.values())
        pl = self.placement if isinstance(self.placement, str) else ", ".join(f"{m}->{u}" for m, u in self.placement.items())
        return (f"{self.name}: {self.description} | camera {self.camera.source}:{self.camera.device or '-'} "
                f"{self.camera.width}x{self.camera.height}@{self.camera.fps} {self.camera.pixel_format or ''} | "
                f"units {units} | placement {pl} | {self.scheduler.target_fps:g} fps target")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        d["units"] = {k: {"kind": u.kind, "threads": u.threads, "delegate": u.delegate.name if u.delegate else None}
                      for k, u in self.units.items()}
        d["models"] = {k: str(v) for k, v in self.models.items()}
        return d


# --------------------------------------------------------------------------- validation
class _V:
    """Collects the location for messages: '<file>: section.key: reason'."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, reason: str) -> ProfileError:
        return ProfileError(f"{self.where}: {key}: {reason}")

    def table(self, d: Any, key: str) -> dict[str, Any]:
        if d is None:
            return {}
        if not isinstance(d, dict):
            raise self.fail(key, f"must be a table ([{key}]), got {type(d).__name__}")
        return d

    def known(self, d: dict[str, Any], prefix: str, allowed: tuple[str, ...] | list[str]) -> None:
        for k in d:
            if k not in allowed:
                near = difflib.get_close_matches(k, allowed, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f" (allowed: {', '.join(allowed)})"
                raise self.fail(f"{prefix}{k}", f"unknown key{hint}")

    def get(self, d: dict[str, Any], prefix: str, key: str, kind: type | tuple, default: Any = None,
            *, check: Callable[[Any], str | None] | None = None, required: bool = False) -> Any:
        if key not in d:
            if required:
                raise self.fail(prefix + key, "is required")
            return default
        v = d[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(prefix + key, f"must be {names}, got {type(v).__name__} {v!r}")
        if check is not None:
            why = check(v)
            if why:
                raise self.fail(prefix + key, f"{why} (got {v!r})")
        return v


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _range(lo: float, hi: float) -> Callable[[float], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"


def _one_of(options: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


_TOP = ("device", "camera", "delegates", "units", "threads", "placement", "scheduler", "rates", "thermal", "models")


def _resolve_model(value: str, base: Path | None) -> Path:
    p = Path(os.path.expanduser(value))
    if p.is_absolute():
        return p
    cands = ([base / p] if base else []) + [ASSETS_DIR / p]
    return next((c for c in cands if c.exists()), cands[0])


def parse_profile(data: dict[str, Any], where: str, path: Path | None = None) -> DeviceProfile:
    v = _V(where)
    v.known(data, "", _TOP)

    dev = v.table(data.get("device"), "device")
    v.known(dev, "device.", ("name", "description", "arch"))
    default_name = path.stem if path else "profile"
    name = v.get(dev, "device.", "name", str, default_name)
    description = v.get(dev, "device.", "description", str, "")
    arch = v.get(dev, "device.", "arch", str, platform.machine(), check=_one_of(("x86_64", "aarch64", "armv7l")))

    # camera
    cam = v.table(data.get("camera"), "camera")
    cam_keys = tuple(f for f in CameraConfig.__dataclass_fields__ if f != "nir") + ("nir",)
    v.known(cam, "camera.", cam_keys)
    nir_d = v.table(cam.get("nir"), "camera.nir")
    v.known(nir_d, "camera.nir.", tuple(NirConfig.__dataclass_fields__))
    p = "camera.nir."
    nir = NirConfig(
        enabled=v.get(nir_d, p, "enabled", bool, False),
        tuning_file=v.get(nir_d, p, "tuning_file", str, None),
        clahe=v.get(nir_d, p, "clahe", bool, False),
        gamma=v.get(nir_d, p, "gamma", float, None, check=_range(0.1, 5.0)),
        illuminator_gpio=v.get(nir_d, p, "illuminator_gpio", int, None, check=_range(0, 53)),
        illuminator_mode=v.get(nir_d, p, "illuminator_mode", str, "on", check=_one_of(ILLUMINATOR_MODES)),
        illuminator_active_high=v.get(nir_d, p, "illuminator_active_high", bool, True),
    )
    p = "camera."
    source = v.get(cam, p, "source", str, "file", check=_one_of(SOURCES))
    mode = v.get(cam, p, "mode", (str, int), "auto")
    if isinstance(mode, str) and mode != "auto":
        raise v.fail("camera.mode", f"must be \"auto\" or a sensor mode index (got {mode!r})")
    pixfmt = v.get(cam, p, "pixel_format", str, None, check=_one_of(PIXEL_FORMATS))
    if nir.tuning_file and source != "picamera2":
        raise v.fail("camera.nir.tuning_file", f"only applies to source = \"picamera2\" (source is {source!r})")
    auto_exp = v.get(cam, p, "auto_exposure", bool, True)
    exposure = v.get(cam, p, "exposure_us", int, None, check=_range(1, 10_000_000))
    if exposure is not None and auto_exp:
        raise v.fail("camera.exposure_us", "set auto_exposure = false to use a manual exposure")
    camera = CameraConfig(
        source=source, device=str(v.get(cam, p, "device", (str, int), "")), mode=mode,
        width=v.get(cam, p, "width", int, None, check=_range(32, 8192)),
        height=v.get(cam, p, "height", int, None, check=_range(32, 8192)),
        fps=v.get(cam, p, "fps", float, None, check=_range(0.1, 1000)),
        pixel_format=pixfmt,
        latest_frame=v.get(cam, p, "latest_frame", bool, source != "file"),
        reconnect=v.get(cam, p, "reconnect", bool, source != "file"),
        realtime=v.get(cam, p, "realtime", bool, False),
        auto_exposure=auto_exp, exposure_us=exposure,
        analogue_gain=v.get(cam, p, "analogue_gain", float, None, check=_range(1.0, 64.0)),
        nir=nir,
    )

    # delegates
    dels: dict[str, DelegateSpec] = {}
    for dname, dd in v.table(data.get("delegates"), "delegates").items():
        p = f"delegates.{dname}."
        dd = v.table(dd, f"delegates.{dname}")
        v.known(dd, p, ("kind", "library", "options"))
        kind = v.get(dd, p, "kind", str, dname if dname in DELEGATE_KINDS + ORT_KINDS else None,
                     check=_one_of(DELEGATE_KINDS + ORT_KINDS))
        if kind is None:
            raise v.fail(p + "kind", f"is required when the delegate is not named after its kind "
                                     f"({', '.join(DELEGATE_KINDS + ORT_KINDS)})")
        lib = v.get(dd, p, "library", str, DEFAULT_LIBRARIES.get(kind, ""))
        opts = v.table(dd.get("options"), p + "options")
        for k, ov in opts.items():
            if not isinstance(ov, (str, int, float, bool, list, dict)):
                raise v.fail(f"{p}options.{k}", f"must be a string, number, boolean, list or table, got {type(ov).__name__}")
        dels[dname] = DelegateSpec(dname, kind, lib, dict(opts))

    # units
    units: dict[str, ComputeUnit] = {}
    ut = v.table(data.get("units"), "units") or {"cpu": {"kind": "cpu", "threads": os.cpu_count() or 1}}
    for uname, ud in ut.items():
        p = f"units.{uname}."
        ud = v.table(ud, f"units.{uname}")
        v.known(ud, p, ("kind", "threads", "delegate"))
        kind = v.get(ud, p, "kind", str, "cpu", check=_one_of(UNIT_KINDS))
        threads = v.get(ud, p, "threads", int, 1, check=_range(1, 64))
        dref = v.get(ud, p, "delegate", str, None)
        spec = None
        if kind in DELEGATE_KINDS + ORT_KINDS:
            if dref is None:
                dref = next((n for n, s in dels.items() if s.kind == kind), None)
                if dref is None and kind in ORT_KINDS:
                    dels[kind] = DelegateSpec(kind, kind, "", {})
                    dref = kind
            if dref is None:
                raise v.fail(p + "delegate", f"a {kind} unit needs a [delegates.*] entry of kind {kind}")
        if dref is not None:
            if dref not in dels:
                raise v.fail(p + "delegate", f"names undefined delegate {dref!r} (defined: {', '.join(dels) or 'none'})")
            spec = dels[dref]
            if spec.kind != kind:
                raise v.fail(p + "delegate", f"delegate {dref!r} is of kind {spec.kind}, unit is {kind}")
        units[uname] = ComputeUnit(uname, kind, threads, spec)

    # threads per module
    th = v.table(data.get("threads"), "threads")
    v.known(th, "threads.", MODULES)
    threads = {m: v.get(th, "threads.", m, int, check=_range(1, 64)) for m in th}

    # placement
    pl_raw = data.get("placement", "auto")
    if isinstance(pl_raw, str):
        if pl_raw != "auto":
            raise v.fail("placement", f"must be \"auto\" or a table module -> unit (got {pl_raw!r})")
        placement: dict[str, str] | str = "auto"
    else:
        pl = v.table(pl_raw, "placement")
        v.known(pl, "placement.", MODULES)
        missing = [m for m in MODULES if m not in pl]
        if missing:
            raise v.fail("placement", f"static placement must place every module; missing {', '.join(missing)} "
                                      f"(or use placement = \"auto\")")
        placement = {}
        for m in MODULES:
            u = v.get(pl, "placement.", m, str)
            if u not in units:
                raise v.fail(f"placement.{m}", f"names undefined unit {u!r} (units: {', '.join(units)})")
            placement[m] = u

    sc = v.table(data.get("scheduler"), "scheduler")
    v.known(sc, "scheduler.", tuple(SchedulerConfig.__dataclass_fields__))
    p = "scheduler."
    scheduler = SchedulerConfig(
        target_fps=v.get(sc, p, "target_fps", float, 30.0, check=_range(0.1, 1000)),
        latency_budget_ms=v.get(sc, p, "latency_budget_ms", float, None, check=_positive),
        queue_size=v.get(sc, p, "queue_size", int, 2, check=_range(1, 4)),
        pipelined=v.get(sc, p, "pipelined", bool, True),
        drop=v.get(sc, p, "drop", str, "oldest", check=_one_of(("oldest", "block"))),
        profile_runs=v.get(sc, p, "profile_runs", int, 10, check=_range(1, 1000)),
        profile_warmup=v.get(sc, p, "profile_warmup", int, 2, check=_range(0, 100)),
    )

    rt = v.table(data.get("rates"), "rates")
    v.known(rt, "rates.", tuple(RatesConfig.__dataclass_fields__))
    p = "rates."
    det = v.get(rt, p, "detector", (str, int), "on_track_loss")
    if isinstance(det, str) and det not in ("on_track_loss", "every_frame"):
        raise v.fail("rates.detector", f"must be \"on_track_loss\", \"every_frame\" or an integer k >= 1 (got {det!r})")
    if isinstance(det, int) and det < 1:
        raise v.fail("rates.detector", f"must be >= 1 (got {det})")
    rates = RatesConfig(
        detector=det,
        au_every=v.get(rt, p, "au_every", int, 1, check=_range(1, 100)),
        affect_every=v.get(rt, p, "affect_every", int, 1, check=_range(1, 100)),
        expected_redetect_ratio=v.get(rt, p, "expected_redetect_ratio", float, 0.05, check=_range(0.0, 1.0)),
    )

    tt = v.table(data.get("thermal"), "thermal")
    v.known(tt, "thermal.", tuple(ThermalConfig.__dataclass_fields__))
    p = "thermal."
    thermal = ThermalConfig(
        throttle_c=v.get(tt, p, "throttle_c", float, 80.0, check=_range(30, 120)),
        critical_c=v.get(tt, p, "critical_c", float, 85.0, check=_range(30, 125)),
        poll_s=v.get(tt, p, "poll_s", float, 2.0, check=_range(0.05, 600)),
        degrade=v.get(tt, p, "degrade", bool, True),
        degraded_affect_every=v.get(tt, p, "degraded_affect_every", int, 3, check=_range(2, 100)),
        degraded_au_every=v.get(tt, p, "degraded_au_every", int, 2, check=_range(2, 100)),
        zones_root=v.get(tt, p, "zones_root", str, "/sys/class/thermal"),
        use_vcgencmd=v.get(tt, p, "use_vcgencmd", bool, True),
    )
    if thermal.critical_c <= thermal.throttle_c:
        raise v.fail("thermal.critical_c", f"must be above throttle_c ({thermal.throttle_c:g})")

    mt = v.table(data.get("models"), "models")
    v.known(mt, "models.", MODULES)
    models: dict[str, Path] = {}
    base = path.parent if path else None
    for m in mt:
        val = v.get(mt, "models.", m, str)
        mp = _resolve_model(val, base)
        if not mp.exists():
            raise v.fail(f"models.{m}", f"model file {mp} does not exist (relative paths are looked up beside "
                                        f"the profile, then in {ASSETS_DIR})")
        if mp.suffix not in (".tflite", ".json", ".onnx"):
            raise v.fail(f"models.{m}", f"{mp.name} is not a .tflite, manifest .json or .onnx file")
        models[m] = mp

    return DeviceProfile(name, description, arch, path, camera, dels, units, threads, placement,
                         scheduler, rates, thermal, models)


# --------------------------------------------------------------------------- discovery
def profile_dirs() -> list[Path]:
    """Where profiles are looked up: $EDGEAFFECT_PROFILES, the repo's firmware_configs/, /etc."""
    dirs = [Path(p) for p in os.environ.get("EDGEAFFECT_PROFILES", "").split(os.pathsep) if p]
    dirs += [PACKAGE_DIR / "firmware_configs", PACKAGE_DIR.parent / "firmware_configs",
             Path(sys.prefix) / "share" / "edgeaffect" / "firmware_configs",  # non-editable installs
             Path("/etc/edgeaffect/firmware_configs")]
    return [d for d in dirs if d.is_dir()]


def list_profiles() -> list[str]:
    seen: dict[str, None] = {}
    for d in profile_dirs():
        for f in sorted(d.glob("*.toml")):
            seen.setdefault(f.stem, None)
    return list(seen)


def find_profile(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    p = Path(os.path.expanduser(s))
    if p.suffix == ".toml" or "/" in s:
        if not p.exists():
            raise ProfileError(f"profile file {p} does not exist")
        return p
    for d in profile_dirs():
        c = d / f"{s}.toml"
        if c.exists():
            return c
    known = list_profiles()
    near = difflib.get_close_matches(s, known, n=1)
    raise ProfileError(f"unknown profile {s!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                       + f"; available: {', '.join(known) or 'none'} (searched {', '.join(map(str, profile_dirs()))})")


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load and validate a profile by name (firmware_configs/<name>.toml) or path."""
    path = find_profile(name_or_path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(f"{path}: cannot read ({e})") from None
    return parse_profile(_toml_loads(text, str(path)), str(path), path)


# --------------------------------------------------------------------------- devices
def _camera_nodes() -> list[tuple[str, str]]:
    out = []
    for dev in sorted(glob("/dev/video*"), key=lambda s: (len(s), s)):
        try:
            name = Path(f"/sys/class/video4linux/{Path(dev).name}/name").read_text().strip()
        except OSError:
            name = "?"
        out.append((dev, name))
    return out


def probe_machine(probe_delegates: bool = False, profiles: list[DeviceProfile] | None = None) -> dict[str, Any]:
    """What this machine can load: backends, delegate libraries, ORT providers, cameras, thermal."""
    from .capture.gstreamer import gstreamer_available
    from .thermal import read_thermal_zones, vcgencmd_path

    info: dict[str, Any] = {"machine": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()}
    backends = []
    for name, mod in (("ai-edge-litert", "ai_edge_litert"), ("tflite-runtime", "tflite_runtime"),
                      ("tensorflow", "tensorflow")):
        try:
            ok = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            ok = False
        backends.append({"name": name, "importable": ok})
    info["backends"] = backends
    try:
        from .runtime.backends import load_backend

        b = load_backend()
        info["backend"] = f"{b.name} {b.version}"
    except EdgeAffectError as e:
        info["backend"] = f"none ({e})"
    libs: dict[tuple[str, str], None] = {(k, lib): None for k, lib in DEFAULT_LIBRARIES.items()}
    for prof in profiles or []:
        for s in prof.delegates.values():
            if s.library:
                libs.setdefault((s.kind, s.library), None)
    dl = []
    for kind, lib in libs:
        path = find_shared_library(lib)
        entry = {"kind": kind, "library": lib, "path": str(path) if path else None}
        if path and probe_delegates:
            entry["problem"] = check_delegate_library(path)
        dl.append(entry)
    info["delegates"] = dl
    ort: dict[str, Any] = {"importable": importlib.util.find_spec("onnxruntime") is not None}
    if ort["importable"]:
        try:
            import onnxruntime

            ort.update(version=onnxruntime.__version__, providers=onnxruntime.get_available_providers())
        except Exception as e:  # noqa: BLE001
            ort["error"] = str(e)
    info["onnxruntime"] = ort
    info["cameras"] = [{"device": d, "name": n} for d, n in _camera_nodes()]
    info["media_nodes"] = sorted(glob("/dev/media*"))
    info["picamera2"] = importlib.util.find_spec("picamera2") is not None
    info["opencv_gstreamer"] = gstreamer_available()
    info["thermal_zones"] = [{"zone": z.name, "type": z.type, "temp_c": z.temp_c} for z in read_thermal_zones()]
    info["vcgencmd"] = vcgencmd_path()
    return info


def _unit_status(u: ComputeUnit, info: dict[str, Any]) -> str:
    if u.kind in CPU_KINDS:
        return "ok"
    if u.kind in ORT_KINDS:
        provs = info["onnxruntime"].get("providers") or []
        if not info["onnxruntime"]["importable"]:
            return "fallback to CPU (onnxruntime not installed)"
        gpu = [p for p in provs if p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")]
        return "ok" if gpu else f"CPU only (onnxruntime providers: {', '.join(provs)})"
    lib = u.delegate.library if u.delegate else DEFAULT_LIBRARIES[u.kind]
    path = find_shared_library(lib)
    return f"ok ({path})" if path else f"fallback to CPU ({lib} not found)"


def devices_report(probe_delegates: bool = False) -> str:
    profiles: list[DeviceProfile] = []
    lines = ["Profiles:"]
    for n in list_profiles():
        try:
            pr = load_profile(n)
            profiles.append(pr)
            lines.append(f"  {n:18s} {pr.description}")
        except ProfileError as e:
            lines.append(f"  {n:18s} INVALID: {e}")
    info = probe_machine(probe_delegates, profiles)
    lines += ["", f"This machine: {info['machine']}, {info['cores']} cores, Python {info['python']}",
              f"  interpreter backend: {info['backend']}",
              "  backends importable: " + ", ".join(f"{b['name']}={'yes' if b['importable'] else 'no'}"
                                                   for b in info["backends"]),
              "  delegate libraries:"]
    for d in info["delegates"]:
        state = d["path"] or "not found"
        if d.get("problem"):
            state += f" (NOT a delegate: {d['problem']})"
        lines.append(f"    {d['kind']:8s} {d['library']:38s} {state}")
    o = info["onnxruntime"]
    lines.append("  onnxruntime: " + (f"{o.get('version')} providers {', '.join(o.get('providers', []))}"
                                      if o["importable"] else "not installed"))
    cams = ", ".join(f"{c['device']} ({c['name']})" for c in info["cameras"]) or "none"
    lines += [f"  cameras (V4L2): {cams}",
              f"  picamera2: {'importable' if info['picamera2'] else 'not installed'}; media nodes: "
              f"{', '.join(info['media_nodes']) or 'none'}",
              f"  OpenCV GStreamer support: {'yes' if info['opencv_gstreamer'] else 'no'}"]
    tz = ", ".join(f"{z['zone']} {z['type']} {z['temp_c']:.1f}C" for z in info["thermal_zones"]) or "none readable"
    lines += [f"  thermal zones: {tz}", f"  vcgencmd: {info['vcgencmd'] or 'not found'}", "",
              "Profiles on this machine (what each unit would run on):"]
    for pr in profiles:
        st = "; ".join(f"{u.name}={_unit_status(u, info)}" for u in pr.units.values())
        lines.append(f"  {pr.name:18s} {st}")
    return "\n".join(lines)


def devices_main(argv: list[str] | None = None) -> int:
    """`edgeaffect devices [--json] [--probe] [--profile NAME]`."""
    import argparse

    ap = argparse.ArgumentParser(prog="edgeaffect devices",
                                 description="List device profiles and what this machine can load.")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--probe", action="store_true", help="dlopen each delegate library found to check it is a delegate")
    ap.add_argument("--profile", help="show one profile, fully resolved")
    a = ap.parse_args(argv)
    try:
        if a.profile:
            pr = load_profile(a.profile)
            print(json.dumps(pr.to_dict(), indent=1, default=str) if a.json else pr.summary())
            return 0
        if a.json:
            profs = {}
            for n in list_profiles():
                try:
                    profs[n] = load_profile(n).to_dict()
                except ProfileError as e:
                    profs[n] = {"error": str(e)}
            print(json.dumps({"profiles": profs, "machine": probe_machine(a.probe)}, indent=1, default=str))
        else:
            print(devices_report(a.probe))
    except ProfileError as e:
        print(f"error: {e}")
        return e.exit_code
    return 0
