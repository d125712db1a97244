"""Crash-safe appends: a line is either entirely in the file or not at all.

Each batch of whole records is written with one os.write() after remembering the file size;
if the write fails part-way (disk full, I/O error) the file is truncated back, so readers never
see a torn last line. Signals can't tear a line either: the write is a single syscall and the
CLI's signal handlers only set a flag checked between frames.

By default every record is written when appended. `flush_s` > 0 batches records in memory for
up to that long (or `flush_bytes`), which is what an SD card wants; a kill -9 then loses the
batch. `fsync_every` (records) or `fsync_s` (seconds) bound what a power cut can lose; the
file is always fsynced at close.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from ..errors import OutputError


class SafeAppender:
    def __init__(self, path: str | Path, fsync_every: int = 30, *, flush_s: float = 0.0, flush_bytes: int = 256 * 1024,
                 fsync_s: float | None = None) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise OutputError(f"cannot create {self.path}: {e.strerror or e}") from None
        self._n = 0
        self.write_calls = 0  # os.write() calls, bytes and fsyncs, for the soak's SD-card figures
        self.bytes_written = 0
        self.fsyncs = 0
        self.fsync_every = fsync_every
        self.fsync_s = fsync_s
        self.flush_s = flush_s
        self.flush_bytes = flush_bytes
        self._buf = bytearray()
        self._buf_t = 0.0
        self._last_fsync = time.monotonic()
        self.closed = False

    def append(self, data: bytes, frame_index: int | tuple[int, int] | None = None) -> None:
        if self.closed:
            raise OutputError(f"{self.path} is closed")
        if self.flush_s <= 0:
            self._write(data)
            return
        now = time.monotonic()
        if not self._buf:
            self._buf_t = now
        self._buf += data
        if len(self._buf) >= self.flush_bytes or now - self._buf_t >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (nothing when unbuffered)."""
        if self._buf and not self.closed:
            data = bytes(self._buf)
            self._buf.clear()
            self._write(data)

    def _write(self, data: bytes) -> None:
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                self.write_calls += 1
                view = view[n:]
        except OSError as e:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            reason = "disk full" if e.errno == errno.ENOSPC else e.strerror
            raise OutputError(f"writing {self.path} failed ({reason}); the file is intact up to the previous record") from None
        self._n += 1
        self.bytes_written += len(data)
        if (self.fsync_every and self._n % self.fsync_every == 0) or (
            self.fsync_s is not None and time.monotonic() - self._last_fsync >= self.fsync_s
        ):
            os.fsync(self._fd)
            self.fsyncs += 1
            self._last_fsync = time.monotonic()

    def close(self) -> None:
        if not self.closed:
            try:
                self.flush()
                os.fsync(self._fd)
                self.fsyncs += 1
            except OSError:
                pass
            finally:
                os.close(self._fd)
                self.closed = True
