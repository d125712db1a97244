"""Segmented output: bounded disk for runs that last months.

A `SegmentStore` owns one output directory. Every writer that wants rotation opens a
*stream* in it (`store.open_stream("results", ".jsonl")`) and gets a `SegmentedSink`: a
small byte-level sink with the same three calls as the plain single-file `SafeAppender`:

    sink.append(data: bytes, frame_index: int | None = None)   # one or more whole lines
    sink.flush()                                                 # push the write buffer to the file
    sink.close()

That is the whole interface a writer needs (`outputs.Sink`). JSONL and CSV writers, the
per-second summary, and any later output (status/event lines, driver/kiosk objects) plug in
the same way; a stream's `header` bytes (the CSV column row) start every segment.

Files. A segment is written as `STEM-SEQ-STARTUTC-open.EXT` and, when closed, renamed to
`STEM-SEQ-STARTUTC-fFIRST-fLAST.EXT` (`.EXT.gz` with gzip; `-nf` instead of the frame range
when it holds no frame lines). SEQ is one counter for the whole directory (all streams),
continued across restarts: it, not the wall clock, orders segments, so an NTP jump after boot
cannot reorder or mis-rotate anything. STARTUTC is the wall-clock start (information only).
`index.json` lists every kept segment (stream, name, seq, start/end UTC, frame range, lines,
bytes) and the open ones; it is rewritten atomically (temp file + fsync + rename) at every
rotation and deletion.

Guarantees.
* A closed segment is whole: it is flushed, fsynced and only then renamed; gzip writes
  `.gz.tmp`, fsyncs and renames, then removes the plain file. A crash at any point leaves
  either the plain or the compressed file complete.
* Every record is written with one `write()` of whole lines; a failed write is truncated
  back (the `SafeAppender` rule). A crash (kill -9, power loss) can leave at most a torn
  last line in the OPEN segment: the next start (`SegmentStore(...)`) trims it, closes that
  segment under its final name and continues with a new SEQ. Lines still in the write buffer
  are lost on kill -9: at most `flush_s` seconds of them (0 = unbuffered, nothing lost);
  on power loss what was not fsynced yet (`fsync_s`, and always at rotation/close).
* Rotation: by size (`rotate_bytes`) or age on the monotonic clock (`rotate_s`).
* Retention: after every flush the oldest CLOSED segments (lowest SEQ, any stream) are
  deleted while closed + open bytes exceed `retain_bytes`, and closed segments older than
  `retain_s` are deleted (age from the monotonic clock for segments of this boot, else from
  wall time, and never while the wall clock reads earlier than the newest segment's end:
  an unsynced clock deletes nothing). The open segment is never deleted.

Counters (`store.stats()`): bytes and `write()` calls, fsyncs, rotations, deletions: the
soak reports them per hour.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import OutputError

INDEX_NAME = "index.json"
INDEX_SCHEMA = "edgeaffect.segments/1"
_NAME = re.compile(
    r"^(?P<stem>[A-Za-z0-9_.]+?)-(?P<seq>\d{6,})-(?P<start>\d{8}T\d{6}Z)-(?P<tail>open|nf|f\d+-f\d+)(?P<ext>\.[A-Za-z0-9]+)(?P<gz>\.gz)?$"
)


class Sink(Protocol):
    """What a writer needs from where its bytes go (a single file or a segmented stream)."""

    path: Path

    def append(self, data: bytes, frame_index: int | tuple[int, int] | None = None) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class SegmentPolicy:
    rotate_bytes: int | None = None  # close a segment at this size
    rotate_s: float | None = None  # ... or at this age (monotonic seconds)
    retain_bytes: int | None = None  # closed + open bytes of the directory
    retain_s: float | None = None  # delete closed segments older than this
    gzip: bool = False  # compress closed segments
    flush_s: float = 0.0  # batch writes for this long (0 = one write per record)
    flush_bytes: int = 256 * 1024  # ... or until this many bytes are buffered
    fsync_s: float | None = None  # fsync the open segment this often (None: only at rotation/close)

    def validate(self) -> SegmentPolicy:
        for k in ("rotate_bytes", "rotate_s", "retain_bytes", "retain_s", "fsync_s"):
            v = getattr(self, k)
            if v is not None and v <= 0:
                raise OutputError(f"output policy: {k} must be > 0 (got {v})")
        if self.flush_s < 0:
            raise OutputError(f"output policy: flush_s must be >= 0 (got {self.flush_s})")
        if self.retain_bytes is not None:
            if self.rotate_bytes is None:
                # an open segment must stay well inside the budget, or retention has nothing to delete
                self.rotate_bytes = max(1, self.retain_bytes // 10)
            elif self.rotate_bytes * 2 > self.retain_bytes:
                raise OutputError(
                    f"output policy: the rotation size ({_mb(self.rotate_bytes)}) must be at most half the retention "
                    f"budget ({_mb(self.retain_bytes)}): one open segment per stream has to fit beside the closed ones"
                )
        return self

    @property
    def rotating(self) -> bool:
        return self.rotate_bytes is not None or self.rotate_s is not None


def _mb(n: float) -> str:
    return f"{n / 2**20:g} MB"


def utc_stamp(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def iso_utc(t: float) -> str:
    """ISO 8601 UTC with milliseconds: 2026-11-30T10:36:36.123Z."""
    ms = int(round((t - int(t)) * 1000))
    s = int(t)
    if ms == 1000:
        s, ms = s + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{ms:03d}Z"


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class SegmentInfo:
    stream: str
    seq: int
    name: str
    start_utc: str
    end_utc: str | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    lines: int = 0
    bytes: int = 0
    gzip: bool = False
    boot_id: str | None = None
    start_mono_s: float | None = None
    end_mono_s: float | None = None
    end_wall: float | None = None
    recovered: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StoreStats:
    write_calls: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    rotations: int = 0
    deleted_segments: int = 0
    deleted_bytes: int = 0
    recovered_segments: int = 0
    torn_bytes_trimmed: int = 0
    gzip_bytes_written: int = 0  # compressed copies of closed segments (also written to the card)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class SegmentStore:
    """One output directory of rotating streams; see the module docstring."""

    def __init__(
        self,
        directory: str | Path,
        policy: SegmentPolicy | None = None,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        self.dir = Path(directory)
        self.policy = (policy or SegmentPolicy()).validate()
        self._wall, self._mono = wall, mono
        self._lock = threading.RLock()
        self._streams: dict[str, SegmentedSink] = {}
        self._closed: list[SegmentInfo] = []  # kept closed segments, oldest first (by seq)
        self._stats = StoreStats()
        self._boot = boot_id()
        self._background = background
        # one long-lived compression worker (not a thread per segment: each new thread may get a new
        # malloc arena, which shows as RSS steps in a months-long run)
        self._gzq: queue.Queue[SegmentInfo | None] = queue.Queue()
        self._gz_thread: threading.Thread | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create {self.dir}: {e.strerror or e}") from None
        self._seq = 0
        self._last_age_check = -1e18
        self._recover()

    # ---- startup: adopt what a previous run left -------------------------------------
    def _recover(self) -> None:
        old: dict[str, dict[str, Any]] = {}
        idx = self.dir / INDEX_NAME
        if idx.exists():
            try:
                for d in json.loads(idx.read_text()).get("segments", []):
                    old[d["name"]] = d
            except (OSError, ValueError, KeyError, TypeError):
                old = {}  # a torn index is rebuilt from the file names
        for p in [*self.dir.glob("*.gz.tmp"), self.dir / (INDEX_NAME + ".tmp")]:  # interrupted: the plain file is still there
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        found: list[tuple[int, Path, re.Match[str]]] = []
        for p in self.dir.iterdir():
            m = _NAME.match(p.name)
            if m and p.is_file():
                found.append((int(m["seq"]), p, m))
        found.sort(key=lambda x: x[0])
        names = {p.name for _, p, _ in found}
        for seq, p, m in found:
            self._seq = max(self._seq, seq)
            if m["gz"] is None and p.name + ".gz" in names:  # compressed copy is complete: drop the plain one
                with contextlib.suppress(OSError):
                    p.unlink()
                continue
            if m["tail"] == "open":
                info = self._finalize_torn(p, m)
            else:
                info = self._info_from(p, m, old.get(p.name))
            if info is not None:
                self._closed.append(info)
        self._closed.sort(key=lambda s: s.seq)
        if found:
            self._write_index()
        if self.policy.gzip:  # closed by a run that died before compressing them
            for info in self._closed:
                if not info.gzip:
                    self._schedule_gzip(info)

    def _info_from(self, p: Path, m: re.Match[str], known: dict[str, Any] | None) -> SegmentInfo:
        if known:
            fields = SegmentInfo.__dataclass_fields__
            info = SegmentInfo(**{k: v for k, v in known.items() if k in fields})
            info.bytes = p.stat().st_size
            return info
        first = last = None
        if m["tail"].startswith("f"):
            a, b = m["tail"].split("-")
            first, last = int(a[1:]), int(b[1:])
        st = p.stat()
        return SegmentInfo(m["stem"], int(m["seq"]), p.name, _iso_from_stamp(m["start"]), iso_utc(st.st_mtime), first, last,
                           bytes=st.st_size, gzip=m["gz"] is not None, end_wall=st.st_mtime)

    def _finalize_torn(self, p: Path, m: re.Match[str]) -> SegmentInfo | None:
        """An open segment of a run that died: trim the torn tail, name it as closed."""
        data = p.read_bytes()
        keep = data.rfind(b"\n") + 1
        self._stats.torn_bytes_trimmed += len(data) - keep
        if keep < len(data):
            with open(p, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
        data = data[:keep]
        stem, ext = m["stem"], m["ext"]
        lines = data.count(b"\n")
        first, last = _frame_range(ext, data)
        if lines - (ext == ".csv") <= 0:  # no record (a CSV's first line is its column row): nothing to keep
            p.unlink()
            return None
        st = p.stat()
        info = SegmentInfo(stem, int(m["seq"]), "", _iso_from_stamp(m["start"]), iso_utc(st.st_mtime), first, last, lines,
                           len(data), end_wall=st.st_mtime, recovered=True)
        info.name = _closed_name(stem, info.seq, m["start"], first, last, ext)
        os.replace(p, self.dir / info.name)
        _fsync_dir(self.dir)
        self._stats.recovered_segments += 1
        return info  # compressed with the other plain closed segments, when the policy says gzip

    # ---- streams -----------------------------------------------------------------------
    def open_stream(
        self,
        stem: str,
        suffix: str,
        *,
        header: bytes = b"",
    ) -> SegmentedSink:
        """A rotating sink writing STEM-*.SUFFIX segments; `header` starts every segment."""
        if not re.fullmatch(r"[A-Za-z0-9_.]+", stem) or not re.fullmatch(r"\.[A-Za-z0-9]+", suffix):
            raise OutputError(f"bad stream name {stem!r}{suffix!r}: letters, digits, _ and . only")
        with self._lock:
            if stem + suffix in self._streams:
                raise OutputError(f"stream {stem}{suffix} is already open in {self.dir}")
            s = SegmentedSink(self, stem, suffix, header)
            self._streams[stem + suffix] = s
            return s

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _on_closed(self, info: SegmentInfo) -> None:
        """Called (under the lock) when a sink closed a segment: compress, apply retention, index."""
        self._closed.append(info)
        self._stats.rotations += 1
        if self.policy.gzip:
            self._schedule_gzip(info)
        self._apply_retention()
        self._write_index()

    def _schedule_gzip(self, info: SegmentInfo) -> None:
        if not self._background:
            self._compress(info)
            return
        if self._gz_thread is None:
            self._gz_thread = threading.Thread(target=self._gzip_worker, name="edgeaffect-gzip", daemon=True)
            self._gz_thread.start()
        self._gzq.put(info)

    def _gzip_worker(self) -> None:
        while True:
            info = self._gzq.get()
            try:
                if info is None:
                    return
                try:
                    self._compress(info)
                except OSError:  # the plain segment stays: valid, just not compressed
                    continue
                with self._lock:
                    self._apply_retention()
                    self._write_index()
            finally:
                self._gzq.task_done()

    def _compress(self, info: SegmentInfo) -> None:
        src = self.dir / info.name
        if info.gzip or not src.exists():
            return
        tmp = self.dir / (info.name + ".gz.tmp")
        dst = self.dir / (info.name + ".gz")
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            with gzip.GzipFile(filename=info.name, mode="wb", fileobj=fo, compresslevel=6, mtime=0) as gz:
                shutil.copyfileobj(fi, gz, 64 * 1024)
            fo.flush()
            os.fsync(fo.fileno())
        with self._lock:
            if not src.exists():  # deleted by retention meanwhile
                tmp.unlink()
                return
            os.replace(tmp, dst)
            _fsync_dir(self.dir)
            src.unlink()
            info.name = dst.name
            info.gzip = True
            info.bytes = dst.stat().st_size
            self._stats.fsyncs += 1
            self._stats.gzip_bytes_written += info.bytes

    def _open_bytes(self) -> int:
        return sum(s._size + len(s._buf) for s in self._streams.values())

    def _apply_retention(self, force: bool = True) -> None:
        p = self.policy
        if p.retain_bytes is None and p.retain_s is None:
            return
        changed = False
        now_m = self._mono()
        if p.retain_s is not None and self._closed and (force or now_m - self._last_age_check >= 10.0):
            self._last_age_check = now_m
            now_w = self._wall()
            newest_wall = max((s.end_wall or 0.0) for s in self._closed)
            keep: list[SegmentInfo] = []
            for s in self._closed:
                if s.boot_id is not None and s.boot_id == self._boot and s.end_mono_s is not None:
                    age = now_m - s.end_mono_s
                elif s.end_wall is not None and now_w >= newest_wall:
                    age = now_w - s.end_wall
                else:
                    age = 0.0  # unknown, or the wall clock is behind the data: keep
                if age > p.retain_s:
                    self._delete(s)
                    changed = True
                else:
                    keep.append(s)
            self._closed = keep
        if p.retain_bytes is not None:
            total = sum(s.bytes for s in self._closed) + self._open_bytes()  # a few hundred segments at most
            while self._closed and total > p.retain_bytes:
                s = self._closed.pop(0)
                total -= s.bytes
                self._delete(s)
                changed = True
        if changed:
            self._write_index()

    def _delete(self, s: SegmentInfo) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / s.name).unlink()
        self._stats.deleted_segments += 1
        self._stats.deleted_bytes += s.bytes

    def _write_index(self) -> None:
        doc = {
            "schema": INDEX_SCHEMA,
            "updated_utc": iso_utc(self._wall()),
            "policy": {k: v for k, v in self.policy.__dict__.items()},
            "segments": [s.to_dict() for s in self._closed],
            "open": [s._info.to_dict() for s in self._streams.values() if s._info is not None],
        }
        tmp = self.dir / (INDEX_NAME + ".tmp")
        try:
            with open(tmp, "w") as fh:
                json.dump(doc, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.dir / INDEX_NAME)
        except OSError as e:  # the index is a convenience: the segment names carry the same facts
            with contextlib.suppress(OSError):
                tmp.unlink()
            if e.errno != errno.ENOSPC:
                raise OutputError(f"cannot write {self.dir / INDEX_NAME}: {e.strerror or e}") from None

    # ---- queries / lifecycle -----------------------------------------------------------
    def segments(self, stream: str | None = None) -> list[SegmentInfo]:
        with self._lock:
            return [s for s in self._closed if stream is None or s.stream == stream]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return self._stats.to_dict()

    def wait(self) -> None:
        """Wait for background compressions."""
        if self._gz_thread is not None:
            self._gzq.join()

    def close(self) -> None:
        for s in list(self._streams.values()):
            s.close()
        self.wait()
        if self._gz_thread is not None:
            self._gzq.put(None)
            self._gz_thread.join()
            self._gz_thread = None
        with self._lock:
            self._apply_retention()
            self._write_index()


class SegmentedSink:
    """One rotating stream of a SegmentStore (thread-safe: status lines may come from a capture thread)."""

    def __init__(self, store: SegmentStore, stem: str, suffix: str, header: bytes) -> None:
        self.store = store
        self.stem, self.suffix, self.header = stem, suffix, header
        self._fd: int | None = None
        self._info: SegmentInfo | None = None
        self._size = 0  # bytes in the file
        self._buf = bytearray()
        self._buf_first_t = 0.0
        self._buf_frames: tuple[int | None, int | None] = (None, None)
        self._pending_lines = 0
        self._last_fsync = 0.0
        self._info_stamp = ""
        self.closed = False
        self.path = store.dir / f"{stem}-open{suffix}"

    # a new segment starts lazily, with its first record
    def _start(self) -> None:
        st = self.store
        wall, mono = st._wall(), st._mono()
        seq = st._next_seq()
        stamp = utc_stamp(wall)
        name = f"{self.stem}-{seq:06d}-{stamp}-open{self.suffix}"
        self.path = st.dir / name
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except OSError as e:
            raise OutputError(f"cannot create {self.path}: {e.strerror or e}") from None
        self._info = SegmentInfo(self.stem, seq, name, iso_utc(wall), boot_id=st._boot, start_mono_s=mono)
        self._info_stamp = stamp
        self._size = 0
        self._last_fsync = mono
        if self.header:  # goes out in the same write() as the first record: no header-only segment after a crash
            self._buf += self.header
            self._pending_lines += self.header.count(b"\n")
            self._buf_first_t = mono

    def append(self, data: bytes, frame_index: int | tuple[int, int] | None = None) -> None:
        """Whole lines; `frame_index` (or a (first, last) range, e.g. a per-second summary) names the segment."""
        if not data:
            return
        with self.store._lock:
            if self.closed:
                raise OutputError(f"{self.stem}{self.suffix} stream is closed")
            if self._fd is None:
                self._start()
            if not self._buf:
                self._buf_first_t = self.store._mono()
            self._buf += data
            if frame_index is not None:
                lo, hi = frame_index if isinstance(frame_index, tuple) else (frame_index, frame_index)
                a, _ = self._buf_frames
                self._buf_frames = (lo if a is None else a, hi)
            self._pending_lines += data.count(b"\n")
            p = self.store.policy
            now = self.store._mono()
            if p.flush_s <= 0 or len(self._buf) >= p.flush_bytes or now - self._buf_first_t >= p.flush_s:
                self._flush_locked(now)

    def flush(self) -> None:
        with self.store._lock:
            if self._buf:
                self._flush_locked(self.store._mono())

    def _flush_locked(self, now: float) -> None:
        data = bytes(self._buf)
        a, b = self._buf_frames
        lines = self._pending_lines
        self._buf.clear()
        self._buf_frames = (None, None)
        self._pending_lines = 0
        self._write(data, a, b, lines)
        p = self.store.policy
        if p.fsync_s is not None and now - self._last_fsync >= p.fsync_s:
            self._fsync(now)
        info = self._info
        assert info is not None
        if (p.rotate_bytes is not None and self._size >= p.rotate_bytes) or (
            p.rotate_s is not None and info.start_mono_s is not None and now - info.start_mono_s >= p.rotate_s
        ):
            self._close_segment()
        else:
            self.store._apply_retention(force=False)

    def _write(self, data: bytes, first: int | None, last: int | None, lines: int) -> None:
        assert self._fd is not None and self._info is not None
        st = self.store._stats
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                st.write_calls += 1
                view = view[n:]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            reason = "disk full" if e.errno == errno.ENOSPC else e.strerror
            raise OutputError(f"writing {self.path} failed ({reason}); it is intact up to the previous record") from None
        st.bytes_written += len(data)
        self._size += len(data)
        info = self._info
        info.bytes = self._size
        info.lines += lines
        if first is not None:
            if info.first_frame is None:
                info.first_frame = first
            info.last_frame = last

    def _fsync(self, now: float) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
                self.store._stats.fsyncs += 1
            self._last_fsync = now

    def _close_segment(self) -> None:
        if self._fd is None or self._info is None:
            return
        now = self.store._mono()
        self._fsync(now)
        os.close(self._fd)
        self._fd = None
        info = self._info
        self._info = None
        info.end_wall = self.store._wall()
        info.end_utc = iso_utc(info.end_wall)
        info.end_mono_s = now
        info.name = _closed_name(self.stem, info.seq, self._info_stamp, info.first_frame, info.last_frame, self.suffix)
        os.replace(self.path, self.store.dir / info.name)
        _fsync_dir(self.store.dir)
        self.path = self.store.dir / info.name
        self._size = 0
        self.store._on_closed(info)

    def rotate(self) -> None:
        """Close the open segment now (the next record starts a new one)."""
        with self.store._lock:
            if self._buf:
                self._flush_locked(self.store._mono())
            self._close_segment()

    def close(self) -> None:
        with self.store._lock:
            if self.closed:
                return
            try:
                if self._buf:
                    self._flush_locked(self.store._mono())
                self._close_segment()
            finally:
                self.closed = True
                self.store._streams.pop(self.stem + self.suffix, None)


def _closed_name(stem: str, seq: int, stamp: str, first: int | None, last: int | None, ext: str) -> str:
    rng = "nf" if first is None or last is None else f"f{first}-f{last}"
    return f"{stem}-{seq:06d}-{stamp}-{rng}{ext}"


def _iso_from_stamp(s: str) -> str:
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}Z"


def _frame_range(ext: str, data: bytes) -> tuple[int | None, int | None]:
    """First and last frame of a recovered segment's lines: `frame_index`, or a summary's `frame_first`/`frame_last`
    (JSONL keys, CSV columns named by the segment's column row). Other formats: no range."""
    lo = hi = None

    def take(a: Any, b: Any) -> None:
        nonlocal lo, hi
        if isinstance(a, int) and isinstance(b, int):
            lo = a if lo is None else lo
            hi = b

    if ext == ".jsonl":
        for line in data.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict):
                fi = d.get("frame_index")
                take(*((fi, fi) if "frame_index" in d else (d.get("frame_first"), d.get("frame_last"))))
    elif ext == ".csv":
        import csv
        import io

        rows = csv.reader(io.StringIO(data.decode("utf-8", "replace")))
        hdr = next(rows, [])
        cols = ("frame_index", "frame_index") if "frame_index" in hdr else ("frame_first", "frame_last")
        if all(c in hdr for c in cols):
            i, j = hdr.index(cols[0]), hdr.index(cols[1])
            for r in rows:
                if len(r) > max(i, j) and r[i].isdigit() and r[j].isdigit():
                    take(int(r[i]), int(r[j]))
    return lo, hi


def parse_duration(text: str | float | int, what: str = "duration") -> float:
    """'90s', '30m', '1h', '7d', '1.5h' or a number of seconds -> seconds."""
    if isinstance(text, (int, float)):
        v = float(text)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*", str(text).lower())
        if not m:
            raise OutputError(f"{what}: cannot read {text!r} as a duration (e.g. 90s, 30m, 1h, 7d)")
        v = float(m[1]) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[m[2]]
    if v < 0:
        raise OutputError(f"{what}: must be >= 0 (got {text!r})")
    return v
