"""A bounded, ordered, on-disk message log: what the MQTT publisher has not yet had acknowledged.

Every message is appended here first (one `os.write` of one JSON line: never a torn record),
then sent from here in order, and only forgotten once the broker acknowledged it (QoS 1
PUBACK). So a broker that is down at start, a network that drops mid-run, or a restart of the
process itself loses nothing that reached the spool: it is sent when the broker is back, in
the order it was written. Delivery is **at least once**: a message whose PUBACK was lost (or
whose acknowledgement had not been recorded when the process died) is sent again; consumers
drop repeats by (device, run, topic, seq).

Layout: `DIR/spool-<n>.log` segment files (JSON lines `{"t": topic, "r": retain, "p": payload}`)
and `DIR/ack` = "<segment> <offset>" of the first unacknowledged record (written atomically,
at most every `ack_every_s`; a lost update only means repeats).

Bound and what happens when it is full: the segments together never exceed `max_bytes`.
`policy="drop_oldest"` (default) deletes the oldest whole segment, sent or not, to make room:
the newest data wins, like a flight recorder; `policy="drop_newest"` refuses new messages
instead. Either way the run goes on, and the number of messages lost this way is counted
(`dropped`) and reported in the `stats` payload. A write that fails (disk full, I/O error)
drops that message, counts it and logs once; it never raises into the run loop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("edgeaffect.telemetry")

POLICIES = ("drop_oldest", "drop_newest")
_SEG = re.compile(r"^spool-(\d{8})\.log$")


@dataclass(frozen=True)
class Record:
    topic: str
    payload: str
    retain: bool
    start: tuple[int, int]  # (segment, offset) of this record
    end: tuple[int, int]  # (segment, offset) just after it


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int = 50 * 1024 * 1024, policy: str = "drop_oldest",
                 segment_bytes: int | None = None, ack_every_s: float = 0.5) -> None:
        if policy not in POLICIES:
            raise ValueError(f"spool policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.segment_bytes = int(segment_bytes or max(4096, min(1024 * 1024, self.max_bytes // 8)))
        if self.max_bytes < 2 * self.segment_bytes:
            raise ValueError(f"spool max_bytes ({self.max_bytes}) must be at least twice the segment size ({self.segment_bytes})")
        self.policy = policy
        self.ack_every_s = ack_every_s
        self.dropped = 0  # messages lost to the bound or to write errors
        self.written = 0
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}
        for p in self.dir.iterdir():
            m = _SEG.match(p.name)
            if m:
                self._sizes[int(m.group(1))] = p.stat().st_size
        self._ack = self._read_ack()
        # forget segments wholly before the acknowledged position (a crash between ack and delete)
        for s in [s for s in self._sizes if s < self._ack[0]]:
            self._unlink(s)
        if not self._sizes:
            self._sizes[self._ack[0]] = 0
        self._wseg = max(self._sizes)
        self._wfd = os.open(self._path(self._wseg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self._ack[0] not in self._sizes:
            self._ack = (min(self._sizes), 0)
        self._read = self._ack  # next record to hand out
        self._rfile = None  # (segment, file object)
        self._ack_written = self._ack
        self._ack_t = 0.0
        self._warned = False
        self._dirty = False

    # ------------------------------------------------------------------ files
    def _path(self, seg: int) -> Path:
        return self.dir / f"spool-{seg:08d}.log"

    def _read_ack(self) -> tuple[int, int]:
        try:
            a, b = (self.dir / "ack").read_text().split()
            return int(a), int(b)
        except (OSError, ValueError):
            return (min(self._sizes) if self._sizes else 0, 0)

    def _unlink(self, seg: int) -> None:
        try:
            self._path(seg).unlink()
        except OSError:
            pass
        self._sizes.pop(seg, None)
        if self._rfile is not None and self._rfile[0] == seg:
            self._rfile[1].close()
            self._rfile = None

    def _count_records(self, seg: int, start: int) -> int:
        try:
            with open(self._path(seg), "rb") as fh:
                fh.seek(start)
                return fh.read().count(b"\n")
        except OSError:
            return 0

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    # ------------------------------------------------------------------ writer side (run thread)
    def append(self, topic: str, payload: str, retain: bool = False) -> bool:
        """Add one message. Returns False (and counts it dropped) when it could not be kept."""
        line = (json.dumps({"t": topic, "r": bool(retain), "p": payload}, separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                if self._sizes[self._wseg] > 0 and self._sizes[self._wseg] + len(line) > self.segment_bytes:
                    os.close(self._wfd)
                    self._wseg += 1
                    self._sizes[self._wseg] = 0
                    self._wfd = os.open(self._path(self._wseg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                while self.total_bytes + len(line) > self.max_bytes:
                    if self.policy == "drop_newest" or len(self._sizes) <= 1:
                        self.dropped += 1
                        return False
                    self._drop_oldest_segment()
                n = os.write(self._wfd, line)
                if n != len(line):  # a short write: cut it off so no torn record remains
                    os.ftruncate(self._wfd, self._sizes[self._wseg])
                    raise OSError("short write")
                self._sizes[self._wseg] += n
                self.written += 1
                self._dirty = True
                return True
            except OSError as e:
                self.dropped += 1
                if not self._warned:
                    log.warning("telemetry spool %s: cannot write (%s); messages are being dropped", self.dir, e.strerror or e)
                    self._warned = True
                return False

    def _drop_oldest_segment(self) -> None:
        old = min(self._sizes)
        start = self._ack[1] if self._ack[0] == old else 0
        lost = self._count_records(old, start) if self._ack[0] <= old else 0
        self.dropped += lost
        self._unlink(old)
        nxt = min(self._sizes)
        if self._ack[0] <= old:
            self._ack = (nxt, 0)
        if self._read[0] <= old:
            self._read = (nxt, 0)
        log.warning("telemetry spool full (%d bytes): dropped the oldest %d unsent messages", self.max_bytes, lost)

    # ------------------------------------------------------------------ reader side (sender thread)
    def next(self) -> Record | None:
        """The next record after the last one handed out, or None when none is complete yet."""
        with self._lock:
            while True:
                seg, off = self._read
                if seg not in self._sizes:
                    later = [s for s in self._sizes if s > seg]
                    if not later:
                        return None
                    self._read = (min(later), 0)
                    continue
                if off >= self._sizes[seg]:
                    if seg < self._wseg:
                        self._read = (min(s for s in self._sizes if s > seg), 0)
                        continue
                    return None
                if self._rfile is None or self._rfile[0] != seg:
                    if self._rfile is not None:
                        self._rfile[1].close()
                    self._rfile = (seg, open(self._path(seg), "rb"))  # noqa: SIM115 - kept open across calls
                fh = self._rfile[1]
                fh.seek(off)
                raw = fh.readline()
                if not raw.endswith(b"\n"):
                    return None
                end = (seg, off + len(raw))
                self._read = end
                try:
                    d = json.loads(raw)
                    return Record(d["t"], d["p"], bool(d.get("r")), (seg, off), end)
                except (ValueError, KeyError, TypeError):
                    log.warning("telemetry spool %s: skipping an unreadable record at %s:%d", self.dir, seg, off)
                    continue

    def rewind(self, to: tuple[int, int]) -> None:
        """Hand out records again from `to` (the sender lost its connection state)."""
        with self._lock:
            self._read = to

    def acknowledge(self, upto: tuple[int, int], force: bool = False) -> None:
        """Everything before `upto` was acknowledged: persist that, delete finished segments."""
        with self._lock:
            if upto < self._ack:
                return
            self._ack = upto
            for s in [s for s in self._sizes if s < upto[0]]:
                self._unlink(s)
            now = time.monotonic()
            if force or now - self._ack_t >= self.ack_every_s:
                self._write_ack()
                self._ack_t = now

    def _write_ack(self) -> None:
        if self._ack == self._ack_written:
            return
        tmp = self.dir / "ack.tmp"
        try:
            tmp.write_text(f"{self._ack[0]} {self._ack[1]}\n")
            os.replace(tmp, self.dir / "ack")
            self._ack_written = self._ack
        except OSError:
            pass

    @property
    def acked(self) -> tuple[int, int]:
        return self._ack

    @property
    def end_pos(self) -> tuple[int, int]:
        """Just after the last record written."""
        with self._lock:
            return (self._wseg, self._sizes[self._wseg])

    @property
    def read_pos(self) -> tuple[int, int]:
        return self._read

    def pending(self) -> int:
        """Messages written but not acknowledged (counts lines; for stats and tests)."""
        with self._lock:
            n = 0
            for s in sorted(self._sizes):
                if s < self._ack[0]:
                    continue
                n += self._count_records(s, self._ack[1] if s == self._ack[0] else 0)
            return n

    def sync(self) -> None:
        """fsync the write segment if anything was appended since the last call."""
        with self._lock:
            if self._dirty:
                try:
                    os.fsync(self._wfd)
                except OSError:
                    pass
                self._dirty = False

    def close(self) -> None:
        with self._lock:
            self._write_ack()
            try:
                os.fsync(self._wfd)
            except OSError:
                pass
            os.close(self._wfd)
            if self._rfile is not None:
                self._rfile[1].close()
                self._rfile = None
