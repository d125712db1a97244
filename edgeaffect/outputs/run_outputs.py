"""The outputs of one run, chosen by an `OutputConfig` (CLI flags or a profile's [outputs] table).

    outs = OutputSet(out_dir, OutputConfig(...))
    outs.write(result)                    # frame lines and/or per-second summaries
    outs.event("camera_lost", reason=...) # a status line (thread-safe: may come from a capture thread)
    outs.close()

Files: without rotation or retention, results.jsonl / results.csv / summary.jsonl /
summary.csv (one file each, as before). With any of rotate/retain, the directory is a
`SegmentStore` (outputs/segments.py): results-SEQ-...jsonl segments and index.json.

Other outputs plug in through `outs.open_stream(stem, suffix)` (a `Sink`: rotating when the
run rotates, else one file) and `outs.on_event` (callbacks that see every status line).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..events import EVENT_SCHEMA
from ..results import FrameResult
from ._safe import SafeAppender
from .csv_writer import CsvWriter, csv_columns, header_row
from .jsonl import JsonlWriter
from .segments import SegmentPolicy, SegmentStore, Sink, iso_utc, parse_duration, utc_stamp
from .summary import SecondSummary, summary_columns

FORMATS = ("jsonl", "csv")
RECORDS = ("frames", "summary", "both")


@dataclass
class OutputConfig:
    formats: tuple[str, ...] = ("jsonl", "csv")  # () = write no result files (publishing elsewhere)
    records: str = "frames"  # frames | summary (one record per second) | both
    policy: SegmentPolicy = field(default_factory=SegmentPolicy)

    @property
    def segmented(self) -> bool:
        p = self.policy
        return p.rotating or p.retain_bytes is not None or p.retain_s is not None

    def validate(self) -> OutputConfig:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad:
            raise OutputError(f"outputs: unknown format {bad[0]!r} (choose from {', '.join(FORMATS)}, or none)")
        if self.records not in RECORDS:
            raise OutputError(f"outputs: records must be one of {', '.join(RECORDS)} (got {self.records!r})")
        self.policy.validate()
        return self


# --------------------------------------------------------------------------- CLI + profile
def add_output_args(p: Any) -> None:
    """The output-policy flags of `edgeaffect run` (they override a profile's [outputs] table)."""
    g = p.add_argument_group("outputs for continuous runs")
    g.add_argument("--outputs", default=None, help="comma list of jsonl,csv, or none (default jsonl,csv)")
    g.add_argument("--records", choices=RECORDS, default=None, help="every frame, a per-second summary, or both")
    g.add_argument("--rotate-mb", type=float, default=None, help="start a new segment at this size")
    g.add_argument("--rotate-every", default=None, help="... or at this age: 90s, 30m, 1h")
    g.add_argument("--retain-mb", type=float, default=None, help="delete the oldest closed segments above this total")
    g.add_argument("--retain-days", type=float, default=None, help="delete closed segments older than this")
    g.add_argument("--gzip", action="store_true", default=None, help="compress closed segments")
    g.add_argument("--flush-every", default=None, help="batch writes for this long (default 0: every record)")
    g.add_argument("--fsync-every", default=None, help="fsync this often (default: at rotation and close only)")


def _fmt_list(v: Any, where: str) -> tuple[str, ...]:
    if isinstance(v, str):
        items = [x.strip().lower() for x in v.split(",") if x.strip()]
    elif isinstance(v, (list, tuple)):
        items = [str(x).strip().lower() for x in v]
    else:
        raise OutputError(f"{where}: expected a list of formats, got {v!r}")
    if items in (["none"], []):
        return ()
    return tuple(dict.fromkeys(items))


_TABLE_KEYS = ("dir", "formats", "records", "rotate_mb", "rotate_every", "retain_mb", "retain_days", "gzip",
               "flush_every", "fsync_every")


def parse_outputs_table(d: dict[str, Any], where: str = "outputs") -> OutputConfig:
    """A profile's [outputs] table -> OutputConfig (unknown keys and bad values are one-line errors)."""
    unknown = sorted(set(d) - set(_TABLE_KEYS))
    if unknown:
        raise OutputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(_TABLE_KEYS)})")
    return _build(d.get("formats"), d.get("records"), d.get("rotate_mb"), d.get("rotate_every"), d.get("retain_mb"),
                  d.get("retain_days"), d.get("gzip"), d.get("flush_every"), d.get("fsync_every"), where, OutputConfig())


def output_config(a: Any, base: OutputConfig | None = None) -> OutputConfig:
    """CLI namespace (+ the profile's config as `base`) -> OutputConfig; flags win."""
    base = base or OutputConfig()
    fmts = getattr(a, "outputs", None)
    if fmts is None and getattr(a, "no_csv", False):
        fmts = [f for f in base.formats if f != "csv"]
    cfg = _build(fmts, getattr(a, "records", None), getattr(a, "rotate_mb", None), getattr(a, "rotate_every", None),
                 getattr(a, "retain_mb", None), getattr(a, "retain_days", None), getattr(a, "gzip", None),
                 getattr(a, "flush_every", None), getattr(a, "fsync_every", None), "option", base)
    return cfg


def _build(fmts: Any, records: Any, rotate_mb: Any, rotate_every: Any, retain_mb: Any, retain_days: Any, gz: Any,
           flush_every: Any, fsync_every: Any, where: str, base: OutputConfig) -> OutputConfig:
    p = replace(base.policy)

    def num(v: Any, name: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise OutputError(f"{where} {name}: must be a number > 0 (got {v!r})")
        return float(v)

    if rotate_mb is not None:
        p.rotate_bytes = int(num(rotate_mb, "rotate_mb") * 2**20)
    if rotate_every is not None:
        p.rotate_s = parse_duration(rotate_every, f"{where} rotate_every") or None
    if retain_mb is not None:
        p.retain_bytes = int(num(retain_mb, "retain_mb") * 2**20)
    if retain_days is not None:
        p.retain_s = num(retain_days, "retain_days") * 86400.0
    if gz is not None:
        if not isinstance(gz, bool):
            raise OutputError(f"{where} gzip: must be true or false (got {gz!r})")
        p.gzip = gz
    if flush_every is not None:
        p.flush_s = parse_duration(flush_every, f"{where} flush_every")
    if fsync_every is not None:
        v = parse_duration(fsync_every, f"{where} fsync_every")
        p.fsync_s = v or None
    cfg = OutputConfig(
        formats=_fmt_list(fmts, f"{where} formats") if fmts is not None else base.formats,
        records=str(records) if records is not None else base.records,
        policy=p,
    )
    return cfg.validate()


# --------------------------------------------------------------------------- a previous run in the directory
#: What a plain (non-segmented) run writes under fixed names: a new run in the same directory would replace them.
PLAIN_RESULTS = ("results.jsonl", "results.csv", "summary.jsonl", "summary.csv", "overlay.mp4")
RUN_FILES = ("run.json", "summary.json")


def set_aside_previous_run(out_dir: str | Path) -> Path | None:
    """Move a previous plain run's files out of the way before a new run writes the same names.

    A restart (systemd `Restart=on-failure`, a second `edgeaffect run --out DIR`) must not destroy
    what the last run wrote. When DIR holds any of PLAIN_RESULTS, they and that run's run.json /
    summary.json move to DIR/previous-STARTUTC/ (STARTUTC: when that run began, from its run.json,
    else the oldest of its files; -2, -3 ... if the name is taken). Segments, index.json and the
    MQTT spool stay where they are (a segmented run continues in new segments by itself), but a
    segmented run's run.json / summary.json (its setup, its totals and how it ended) move too:
    the new run writes the same two names. Returns the folder, or None when there was nothing
    to move. A move that fails is one clear OutputError before anything new is written (what
    was moved already is in the folder)."""
    d = Path(out_dir)
    files = [d / n for n in PLAIN_RESULTS + RUN_FILES if (d / n).is_file()]
    if not files:
        return None
    run_json = d / "run.json"
    started = (run_json if run_json.is_file() else min(files, key=lambda p: p.stat().st_mtime)).stat().st_mtime
    base = f"previous-{utc_stamp(started)}"
    dest, k = d / base, 1
    while dest.exists():
        k += 1
        dest = d / f"{base}-{k}"
    try:
        dest.mkdir()
        for f in files:
            os.replace(f, dest / f.name)
    except OSError as e:
        raise OutputError(f"{d} holds a previous run's files and they could not be moved to {dest} ({e.strerror or e}); "
                          "nothing was overwritten: free the directory or pass --overwrite") from None
    return dest


# --------------------------------------------------------------------------- the run's outputs
class OutputSet:
    def __init__(self, out_dir: str | Path, config: OutputConfig | None = None, *, wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.dir = Path(out_dir)
        self.config = (config or OutputConfig()).validate()
        self._wall, self._mono = wall, mono
        self._lock = threading.RLock()
        self.store: SegmentStore | None = SegmentStore(self.dir, self.config.policy, wall=wall, mono=mono) \
            if self.config.segmented else None
        self._plain: list[SafeAppender] = []
        self.on_event: list[Callable[[dict[str, Any]], None]] = []
        fm = self.config.formats
        frames = self.config.records in ("frames", "both")
        summ = self.config.records in ("summary", "both")
        self.jsonl = JsonlWriter(self.open_stream("results", ".jsonl")) if frames and "jsonl" in fm else None
        self.csv = CsvWriter(self.open_stream("results", ".csv", header=header_row(csv_columns()))) \
            if frames and "csv" in fm else None
        self._summary = SecondSummary() if summ and fm else None
        self.summary_jsonl = JsonlWriter(self.open_stream("summary", ".jsonl")) if summ and "jsonl" in fm else None
        scols = summary_columns()
        self.summary_csv = CsvWriter(self.open_stream("summary", ".csv", header=header_row(scols)), columns=scols) \
            if summ and "csv" in fm else None
        self.closed = False
        pol = self.config.policy
        n = sum(w is not None for w in (self.jsonl, self.csv, self.summary_jsonl, self.summary_csv))
        if self.store is not None and pol.retain_bytes and pol.rotate_bytes and n * pol.rotate_bytes > pol.retain_bytes:
            self.close()
            raise OutputError(f"output policy: {n} streams x rotation size {pol.rotate_bytes / 2**20:g} MB exceed the retention "
                              f"budget {pol.retain_bytes / 2**20:g} MB (open segments are never deleted): raise --retain-mb or "
                              "lower --rotate-mb")

    def open_stream(self, stem: str, suffix: str, *, header: bytes = b"") -> Sink:
        """A sink for STEM+SUFFIX: rotating segments when the run rotates, else one file in the directory."""
        if self.store is not None:
            return self.store.open_stream(stem, suffix, header=header)
        pol = self.config.policy
        s = SafeAppender(self.dir / f"{stem}{suffix}", fsync_every=0, flush_s=pol.flush_s, flush_bytes=pol.flush_bytes,
                         fsync_s=pol.fsync_s)
        if header:
            s.append(header)
        self._plain.append(s)
        return s

    def outputs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, w in (("jsonl", self.jsonl), ("csv", self.csv), ("summary_jsonl", self.summary_jsonl),
                     ("summary_csv", self.summary_csv)):
            if w is not None:
                sink = w._out
                out[k] = str(w.path) if self.store is None else str(self.dir / f"{sink.stem}-*{sink.suffix}")  # type: ignore[attr-defined]
        if self.store is not None:
            out["index"] = str(self.dir / "index.json")
        return out

    def write(self, result: FrameResult) -> None:
        if result.wall_utc is None:
            result.wall_utc = iso_utc(self._wall())
        with self._lock:
            d: dict[str, Any] | None = None
            if self.jsonl is not None or self.csv is not None or self._summary is not None:
                d = result.to_dict()
            if self.jsonl is not None:
                self.jsonl.write(d)  # type: ignore[arg-type]
            if self.csv is not None:
                self.csv.write(d)  # type: ignore[arg-type]
            if self._summary is not None and d is not None:
                rec = self._summary.add(d)
                if rec is not None:
                    self._write_summary(rec)

    def _write_summary(self, rec: dict[str, Any]) -> None:
        a, b = rec.get("frame_first"), rec.get("frame_last")
        fi = (a, b) if isinstance(a, int) and isinstance(b, int) else None  # the segment name gives the frames covered
        if self.summary_jsonl is not None:
            self.summary_jsonl.write(rec, fi)
        if self.summary_csv is not None:
            self.summary_csv.write_row({k: v for k, v in rec.items() if k != "schema"}, fi)

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A status line ({"event": kind, "wall_utc", "mono_ms", ...}) in every JSONL stream, on disk at
        once (an outage must be visible while it lasts), and to the `on_event` callbacks."""
        d = {"schema": EVENT_SCHEMA, "event": kind, "wall_utc": iso_utc(self._wall()),
             "mono_ms": round(self._mono() * 1000.0, 3), **fields}
        self.write_event(d, flush=True)
        for cb in list(self.on_event):
            cb(d)
        return d

    def write_event(self, d: dict[str, Any], *, flush: bool = False) -> None:
        """An event line (edgeaffect.event/1, e.g. the driver/kiosk layers') in every JSONL stream."""
        with self._lock:
            if self.closed:
                return
            for w in (self.jsonl, self.summary_jsonl):
                if w is not None:
                    w.write_event(d)
                    if flush:
                        w.flush()

    def flush(self) -> None:
        with self._lock:
            for w in (self.jsonl, self.csv, self.summary_jsonl, self.summary_csv):
                if w is not None:
                    w.flush()

    def stats(self) -> dict[str, int]:
        """write() calls and bytes so far (all files of this run)."""
        if self.store is not None:
            return self.store.stats()
        return {"write_calls": sum(s.write_calls for s in self._plain), "bytes_written": sum(s.bytes_written for s in self._plain),
                "fsyncs": sum(s.fsyncs for s in self._plain)}

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                if self._summary is not None:
                    rec = self._summary.finish()
                    if rec is not None:
                        self._write_summary(rec)
            finally:
                self.closed = True
                for w in (self.jsonl, self.csv, self.summary_jsonl, self.summary_csv):
                    if w is not None:
                        w.close()
                for s in self._plain:
                    s.close()
                if self.store is not None:
                    self.store.close()

