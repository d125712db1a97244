"""Where RSS moves: the C allocator's view (glibc mallinfo2) and the /proc split of RSS, for the soak.

`mallinfo()` reads glibc's mallinfo2() (all arenas): bytes in the heap(s) (`arena_mb`), in
separately mmapped chunks (`mmap_mb`), in use (`in_use_mb`), free but kept (`free_mb`) and
the trimmable top (`top_mb`). `proc_rss()` splits RSS into anonymous / file / shmem pages.
Both return None where they cannot read (not glibc, not Linux): nothing here ever raises.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform
from typing import Any

_MB = float(2**20)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.lru_cache(maxsize=1)
def glibc() -> Any | None:
    """The process's glibc (ctypes.CDLL), or None elsewhere (musl, macOS, Windows)."""
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(None)
        ver = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    ver.restype = ctypes.c_char_p
    try:
        major, minor = (int(x) for x in ver().decode().split(".")[:2])
    except (ValueError, AttributeError):
        return None
    libc._edgeaffect_version = (major, minor)
    return libc


def glibc_version() -> tuple[int, int] | None:
    libc = glibc()
    return None if libc is None else libc._edgeaffect_version


def mallinfo() -> dict[str, float] | None:
    """glibc mallinfo2() in MB (glibc >= 2.33), summed over all arenas; None elsewhere."""
    libc = glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    f = libc.mallinfo2
    f.restype = _MallInfo2
    m = f()
    return {"arena_mb": round(m.arena / _MB, 3), "mmap_mb": round(m.hblkhd / _MB, 3), "mmap_chunks": int(m.hblks),
            "in_use_mb": round(m.uordblks / _MB, 3), "free_mb": round(m.fordblks / _MB, 3),
            "top_mb": round(m.keepcost / _MB, 3)}


def proc_rss() -> dict[str, float] | None:
    """RssAnon / RssFile / RssShmem (MB) and the thread count from /proc/self/status; None elsewhere."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in ("RssAnon", "RssFile", "RssShmem"):
                    out[k[3:].lower() + "_mb"] = round(int(v.split()[0]) / 1024.0, 3)
                elif k == "Threads":
                    out["threads"] = int(v)
    except (OSError, ValueError, IndexError):
        return None
    return out or None

