"""Experiment: the accelerated soak with gzip as it was at commit 048a769 (reproduces its RSS steps).

    python benchmarks/soak_gzip_threads.py SOAK_ACCEL_ARGS...

Same as benchmarks/soak_accel.py, except that every closed segment is compressed by a NEW thread
with 1 MB read chunks (048a769's `SegmentStore`), instead of today's one long-lived worker with
64 KB chunks. The 1 M-frame soak of that commit moved in +-2.1 MB steps; this run shows them
again, each time two gzip threads overlap at a sample (the `threads` and `arena_mb` columns of
the samples): a second thread gets a malloc arena of its own, and glibc's dynamic mmap threshold
(raised to 1 MB by the first freed 1 MB chunk) lets that arena keep ~2 MB of freed memory.
Not part of CI; the product does not use this path.
"""

from __future__ import annotations

import shutil
import sys
import threading
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeaffect.outputs import segments  # noqa: E402


def _schedule_gzip_in_a_new_thread(self: segments.SegmentStore, info: segments.SegmentInfo) -> None:
    def job() -> None:
        try:
            self._compress(info)
        except OSError:
            return
        with self._lock:
            self._apply_retention()
            self._write_index()

    threading.Thread(target=job, name="edgeaffect-gzip", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    segments.SegmentStore._schedule_gzip = _schedule_gzip_in_a_new_thread  # type: ignore[method-assign]
    segments.shutil = types.SimpleNamespace(  # type: ignore[attr-defined]
        copyfileobj=lambda fi, fo, n=0: shutil.copyfileobj(fi, fo, 1 << 20))
    import soak_accel

    return soak_accel.main(argv)


if __name__ == "__main__":
    sys.exit(main())
