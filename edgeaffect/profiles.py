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
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .capture.config import ILLUMINATOR_MODES, PIXEL_FORMATS, SOURCES, CameraConfig, NirConfig
from .configspec import Reader, between, one_of
from .dms.config import DmsConfig
from .errors import ModelError, ProfileError
from .kiosk.config import KioskConfig
from .models import DETECTOR_RANGES, find_detector_model
from .registry import MODULES, REQUIRED_MODULES
from .runtime.delegates import (
    CPU_KINDS,
    DEFAULT_LIBRARIES,
    DELEGATE_KINDS,
    ORT_KINDS,
    UNIT_KINDS,
    DelegateSpec,
)
from .scheduler.config import RatesConfig, SchedulerConfig, ThermalConfig
from .scheduler.placement import ComputeUnit
from .telemetry.config import TelemetryConfig
from .tracking.config import DetectionConfig

__all__ = [
    "CameraConfig", "NirConfig", "SchedulerConfig", "RatesConfig", "ThermalConfig", "DeviceProfile",
    "SOURCES", "PIXEL_FORMATS", "ILLUMINATOR_MODES", "parse_profile", "load_profile", "find_profile",
    "list_profiles", "profile_dirs",
]

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "models" / "assets"


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


# --------------------------------------------------------------------------- the profile
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
    dms: Any = None  # edgeaffect.dms.DmsConfig from the [dms] table (defaults when absent)
    kiosk: Any = None  # edgeaffect.kiosk.KioskConfig from the [kiosk] table
    detection: Any = None  # edgeaffect.tracking.config.DetectionConfig from the [detection] table
    telemetry: Any = None  # edgeaffect.telemetry.config.TelemetryConfig from the [telemetry] table (MQTT)
    outputs: Any = None  # edgeaffect.outputs.run_outputs.OutputConfig from the [outputs] table (None: run defaults)
    output_dir: str | None = None  # [outputs] dir (the CLI's --out wins)

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
ARCHES = ("x86_64", "aarch64", "armv7l")


def _device(v: Reader, table: Any, path: Path | None) -> tuple[str, str, str]:
    dev = v.table(table, "device")
    v.known(dev, "device.", ("name", "description", "arch"))
    return (v.get(dev, "device.", "name", str, path.stem if path else "profile"),
            v.get(dev, "device.", "description", str, ""),
            v.get(dev, "device.", "arch", str, platform.machine(), check=one_of(ARCHES)))


def _delegates(v: Reader, table: Any) -> dict[str, DelegateSpec]:
    dels: dict[str, DelegateSpec] = {}
    kinds = DELEGATE_KINDS + ORT_KINDS
    for dname, dd in v.table(table, "delegates").items():
        p = f"delegates.{dname}."
        dd = v.table(dd, f"delegates.{dname}")
        v.known(dd, p, ("kind", "library", "options"))
        kind = v.get(dd, p, "kind", str, dname if dname in kinds else None, check=one_of(kinds))
        if kind is None:
            raise v.fail(p + "kind", f"is required when the delegate is not named after its kind ({', '.join(kinds)})")
        lib = v.get(dd, p, "library", str, DEFAULT_LIBRARIES.get(kind, ""))
        opts = v.table(dd.get("options"), p + "options")
        for k, ov in opts.items():
            if not isinstance(ov, (str, int, float, bool, list, dict)):
                raise v.fail(f"{p}options.{k}", f"must be a string, number, boolean, list or table, got {type(ov).__name__}")
        dels[dname] = DelegateSpec(dname, kind, lib, dict(opts))
    return dels


def _units(v: Reader, table: Any, dels: dict[str, DelegateSpec]) -> dict[str, ComputeUnit]:
    """Compute units; an onnxruntime unit without a [delegates] entry gets one (added to `dels`)."""
    units: dict[str, ComputeUnit] = {}
    ut = v.table(table, "units") or {"cpu": {"kind": "cpu", "threads": os.cpu_count() or 1}}
    for uname, ud in ut.items():
        p = f"units.{uname}."
        ud = v.table(ud, f"units.{uname}")
        v.known(ud, p, ("kind", "threads", "delegate"))
        kind = v.get(ud, p, "kind", str, "cpu", check=one_of(UNIT_KINDS))
        threads = v.get(ud, p, "threads", int, 1, check=between(1, 64))
        dref = v.get(ud, p, "delegate", str, None)
        if kind in DELEGATE_KINDS + ORT_KINDS and dref is None:
            dref = next((n for n, s in dels.items() if s.kind == kind), None)
            if dref is None and kind in ORT_KINDS:
                dels[kind] = DelegateSpec(kind, kind, "", {})
                dref = kind
            if dref is None:
                raise v.fail(p + "delegate", f"a {kind} unit needs a [delegates.*] entry of kind {kind}")
        spec = None
        if dref is not None:
            if dref not in dels:
                raise v.fail(p + "delegate", f"names undefined delegate {dref!r} (defined: {', '.join(dels) or 'none'})")
            spec = dels[dref]
            if spec.kind != kind:
                raise v.fail(p + "delegate", f"delegate {dref!r} is of kind {spec.kind}, unit is {kind}")
        units[uname] = ComputeUnit(uname, kind, threads, spec)
    return units


def _threads(v: Reader, table: Any) -> dict[str, int]:
    th = v.table(table, "threads")
    v.known(th, "threads.", MODULES)
    return {m: v.get(th, "threads.", m, int, check=between(1, 64)) for m in th}


def _placement(v: Reader, raw: Any, units: dict[str, ComputeUnit]) -> dict[str, str] | str:
    if isinstance(raw, str):
        if raw != "auto":
            raise v.fail("placement", f"must be \"auto\" or a table module -> unit (got {raw!r})")
        return "auto"
    pl = v.table(raw, "placement")
    v.known(pl, "placement.", MODULES)
    missing = [m for m in REQUIRED_MODULES if m not in pl]
    if missing:
        raise v.fail("placement", f"static placement must place every module; missing {', '.join(missing)} "
                                  f"(or use placement = \"auto\")")
    placement = {}
    for m in MODULES:
        if m not in pl:  # a module added later (eyes): runs on the landmark network's unit
            placement[m] = placement["landmarks"]
            continue
        u = v.get(pl, "placement.", m, str)
        if u not in units:
            raise v.fail(f"placement.{m}", f"names undefined unit {u!r} (units: {', '.join(units)})")
        placement[m] = u
    return placement


def _resolve_model(value: str, base: Path | None) -> Path:
    p = Path(os.path.expanduser(value))
    if p.is_absolute():
        return p
    cands = ([base / p] if base else []) + [ASSETS_DIR / p]
    return next((c for c in cands if c.exists()), cands[0])


def _models(v: Reader, table: Any, path: Path | None) -> dict[str, Path]:
    mt = v.table(table, "models")
    v.known(mt, "models.", MODULES)
    models: dict[str, Path] = {}
    for m in mt:
        value = v.get(mt, "models.", m, str)
        if m == "detector" and value in DETECTOR_RANGES:  # "short_range" | "full_range": the shipped file
            try:
                models[m] = find_detector_model(ASSETS_DIR, value)
            except ModelError as e:
                raise v.fail("models.detector", str(e)) from None
            continue
        mp = _resolve_model(value, path.parent if path else None)
        if not mp.exists():
            raise v.fail(f"models.{m}", f"model file {mp} does not exist (relative paths are looked up beside "
                                        f"the profile, then in {ASSETS_DIR})")
        if mp.suffix not in (".tflite", ".json", ".onnx"):
            raise v.fail(f"models.{m}", f"{mp.name} is not a .tflite, manifest .json or .onnx file")
        models[m] = mp
    return models


#: Every top-level table of a profile and who reads it. The camera, scheduler, rates and thermal
#: tables are declared field by field beside their owners (capture/config.py, scheduler/config.py).
_SECTIONS = ("device", "camera", "delegates", "units", "threads", "placement", "scheduler", "rates", "thermal",
             "models", "detection", "dms", "kiosk", "telemetry", "outputs")


def parse_profile(data: dict[str, Any], where: str, path: Path | None = None) -> DeviceProfile:
    """Validate a parsed TOML profile; ProfileError("<where>: <section.key>: <reason>") on the first problem."""
    v = Reader(where)
    v.known(data, "", _SECTIONS)
    name, description, arch = _device(v, data.get("device"), path)
    camera = CameraConfig.from_table(v, data.get("camera"))
    dels = _delegates(v, data.get("delegates"))
    units = _units(v, data.get("units"), dels)
    return DeviceProfile(
        name, description, arch, path, camera, dels, units,
        threads=_threads(v, data.get("threads")),
        placement=_placement(v, data.get("placement", "auto"), units),
        scheduler=SchedulerConfig.from_table(v, data.get("scheduler")),
        rates=RatesConfig.from_table(v, data.get("rates")),
        thermal=ThermalConfig.from_table(v, data.get("thermal")),
        models=_models(v, data.get("models"), path),
        detection=DetectionConfig.from_table(v, data.get("detection")),
        # the policy layers own their settings (dms/config.py, kiosk/config.py); a profile overrides them
        dms=DmsConfig.from_table(v, data.get("dms")),
        kiosk=KioskConfig.from_table(v, data.get("kiosk")),
        telemetry=TelemetryConfig.from_table(v, data.get("telemetry")),
        **_outputs(v, data.get("outputs"), where),
    )


def _outputs(v: Reader, table: Any, where: str) -> dict[str, Any]:
    """[outputs]: formats, records, rotation, retention, write policy (owned by outputs/run_outputs.py)."""
    t = v.table(table, "outputs")
    if not t:
        return {}
    from .errors import OutputError
    from .outputs.run_outputs import parse_outputs_table

    try:
        cfg = parse_outputs_table(t, f"{where}: outputs")
    except OutputError as e:
        raise ProfileError(str(e)) from None
    return {"outputs": cfg, "output_dir": v.get(t, "outputs.", "dir", str, None)}


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


def __getattr__(name: str) -> object:
    """`devices_main`, `devices_report` and `probe_machine` moved to edgeaffect.devices (older import path)."""
    if name in ("devices_main", "devices_report", "probe_machine"):
        from . import devices

        return getattr(devices, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
