"""`edgeaffect devices`: what this machine can load, and what each profile's units would run on.

The probe (interpreter backends, delegate libraries, ONNX Runtime providers, cameras,
picamera2, GStreamer, thermal zones) and its command line; the profiles themselves are
loaded by edgeaffect.profiles.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
from glob import glob
from pathlib import Path
from typing import Any

from .errors import EdgeAffectError, ProfileError
from .profiles import DeviceProfile, list_profiles, load_profile
from .runtime.delegates import (
    CPU_KINDS,
    DEFAULT_LIBRARIES,
    ORT_KINDS,
    check_delegate_library,
    find_shared_library,
)
from .scheduler.placement import ComputeUnit


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
        print(f"edgeaffect devices: error: {e}", file=sys.stderr)
        return e.exit_code
    return 0
