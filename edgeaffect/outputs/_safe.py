"""Crash-safe appends: a line is either entirely in the file or not at all.

Each record is written with one os.write() after remembering the file size; if the write
fails part-way (disk full, I/O error) the file is truncated back, so readers never see a
torn last line. Signals can't tear a line either: the write is a single syscall and the
CLI's signal handlers only set a flag checked between frames.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import OutputError


class SafeAppender:
    def __init__(self, path: str | Path, fsync_every: int = 30) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise OutputError(f"cannot create {self.path}: {e.strerror or e}") from None
        self._n = 0
        self.fsync_every = fsync_every
        self.closed = False

    def append(self, data: bytes) -> None:
        if self.closed:
            raise OutputError(f"{self.path} is closed")
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            reason = "disk full" if e.errno == errno.ENOSPC else e.strerror
            raise OutputError(f"writing {self.path} failed ({reason}); the file is intact up to the previous record") from None
        self._n += 1
        if self.fsync_every and self._n % self.fsync_every == 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if not self.closed:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self.closed = True
