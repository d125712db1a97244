"""Device fingerprint: what a benchmark number depends on, in every report.

Readable on a Raspberry Pi, a Jetson and x86 Linux alike: everything comes from /proc,
/sys, `platform` and package metadata; each field is None when unreadable (never raises).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

#: ARM "CPU part" ids -> core names (the int8 speed of a Pi depends on the core, not the board name)
ARM_PARTS = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd42": "Cortex-A78AE",
    "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd4b": "Cortex-A78C",
}
#: ISA features that decide int8 kernel speed (XNNPACK picks kernels by these)
INT8_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8",
                 "asimd", "asimddp", "i8mm", "sve", "sve2")


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip().strip("\x00")
    except OSError:
        return None


def _cpuinfo(text: str | None) -> dict[str, Any]:
    """Parse /proc/cpuinfo (x86 or ARM) into model / core names / features."""
    out: dict[str, Any] = {"model": None, "cores_by_name": {}, "features": []}
    if not text:
        return out
    fields: dict[str, str] = {}
    parts: list[str] = []
    flags: set[str] = set()
    for line in text.splitlines():
        if ":" not in line:
            continue
        k, v = (s.strip() for s in line.split(":", 1))
        fields.setdefault(k, v)
        if k == "CPU part":
            parts.append(ARM_PARTS.get(v.lower(), v))
        elif k in ("flags", "Features"):
            flags |= set(v.split())
    out["model"] = fields.get("model name") or fields.get("Model") or fields.get("Hardware") or fields.get("cpu model")
    if parts:
        names: dict[str, int] = {}
        for p in parts:
            names[p] = names.get(p, 0) + 1
        out["cores_by_name"] = names
        if not fields.get("model name"):
            out["model"] = (out["model"] + " / " if out["model"] else "") + " + ".join(f"{n}x {k}" for k, n in names.items())
    out["features"] = [f for f in INT8_FEATURES if f in flags]
    out["hypervisor"] = "hypervisor" in flags
    return out


def _cpufreq(cpu: int = 0) -> dict[str, Any]:
    base = Path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq")

    def mhz(name: str) -> float | None:
        v = _read(base / name)
        try:
            return round(int(v) / 1000.0, 1) if v else None
        except ValueError:
            return None

    return {
        "governor": _read(base / "scaling_governor"),
        "min_mhz": mhz("scaling_min_freq"),
        "max_mhz": mhz("scaling_max_freq"),
        "cur_mhz": mhz("scaling_cur_freq"),
    }


def _os_release() -> str | None:
    text = _read("/etc/os-release")
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text or "", re.M)
    return m.group(1) if m else None


def _mem_total_mb() -> float | None:
    m = re.search(r"MemTotal:\s+(\d+)\s+kB", _read("/proc/meminfo") or "")
    return round(int(m.group(1)) / 1024.0, 1) if m else None


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def _git(repo: Path) -> dict[str, Any] | None:
    if not (repo / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=3)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def int8_isa(features: list[str] | None) -> str:
    """The int8 kernel class XNNPACK can use here, in words ('AVX-512 VNNI', 'AVX2 only', 'NEON dotprod' ...)."""
    f = set(features or [])
    if "amx_int8" in f:
        return "AMX-INT8 + AVX-512 VNNI" if "avx512_vnni" in f else "AMX-INT8"
    if "avx512_vnni" in f:
        return "AVX-512 VNNI"
    if "avx_vnni" in f:
        return "AVX-VNNI (256-bit)"
    if "avx512bw" in f:
        return "AVX-512 (no VNNI)"
    if "avx2" in f:
        return "AVX2 only (no VNNI)"
    if "i8mm" in f:
        return "NEON i8mm"
    if "asimddp" in f:
        return "NEON dotprod"
    if "asimd" in f:
        return "NEON (no dotprod)"
    return "unknown"


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def manifest_fingerprint(manifests: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for module, m in manifests.items():
        out[module] = {
            "file": m.file, "sha256": m.sha256, "variant": m.variant, "kind": m.kind,
            "macs": m.macs, "params": m.params,
            "stand_in": bool((m.source or {}).get("stand_in")),
        }
    return out


def collect(*, backend: Any = None, manifests: dict[str, Any] | None = None, delegates: list[str] | None = None,
            num_threads: int | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fingerprint dict (JSON-serialisable). `backend` is an InterpreterBackend (name, version)."""
    info = _cpuinfo(_read("/proc/cpuinfo"))
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    cv2_version = None
    with contextlib.suppress(Exception):
        import cv2

        cv2_version = cv2.__version__
    import numpy as np

    from .. import __version__

    fp: dict[str, Any] = {
        "machine": platform.machine(),
        "board": _read("/proc/device-tree/model") or _read("/sys/class/dmi/id/product_name"),
        "cpu": {
            "model": info["model"] or platform.processor() or None,
            "cores_by_name": info["cores_by_name"] or None,
            "logical_cores": os.cpu_count(),
            "usable_cores": usable,
            "int8_features": info["features"],
            "int8_isa": int8_isa(info["features"]),
            "virtualised": info.get("hypervisor"),
            **_cpufreq(0),
        },
        "memory_mb": _mem_total_mb(),
        "os": {"system": platform.system(), "kernel": platform.release(), "distro": _os_release(),
               "libc": "-".join(platform.libc_ver()) or None},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "packages": {
            "edgeaffect": __version__,
            "numpy": np.__version__,
            "opencv": cv2_version,
            "ai-edge-litert": _dist_version("ai-edge-litert"),
            "tflite-runtime": _dist_version("tflite-runtime"),
            "orjson": _dist_version("orjson"),  # JSONL encoding: orjson when installed, else the stdlib
            "mediapipe": _dist_version("mediapipe"),
        },
        "interpreter": {
            "backend": getattr(backend, "name", None),
            "version": getattr(backend, "version", None),
            "delegates": list(delegates) if delegates is not None else None,
            "num_threads": num_threads,
        },
        "models": manifest_fingerprint(manifests or {}),
        "git": _git(Path(__file__).resolve().parents[2]),
        "loadavg_at_collect": loadavg(),
    }
    if extra:
        fp.update(extra)
    return fp


def short_name(fp: dict[str, Any]) -> str:
    """One line for tables: 'x86_64 Intel(R) Xeon(R) ... (2 cores, performance)'."""
    cpu = fp.get("cpu") or {}
    gov = cpu.get("governor")
    bits = [fp.get("machine") or "?", (cpu.get("model") or "unknown CPU").strip()]
    tail = f"{cpu.get('usable_cores') or cpu.get('logical_cores')} cores" + (f", {gov}" if gov else "")
    return f"{' '.join(bits)} ({tail})"
