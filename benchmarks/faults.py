"""Fault injection: does the pipeline survive what a field deployment throws at it?

    python benchmarks/faults.py --source VIDEO [--models-dir DIR] [--only camera_drop,signals] [--repeats 2]

Faults (each prints PASS/FAIL with the reason; the exit code is 1 if any FAILs):

camera_drop      a camera that disappears mid-stream and comes back. A fake live source raises
                 SourceError on read and refuses to re-open for `--outage` seconds. Through
                 edgeaffect.capture.reconnect.ReconnectingSource (when present) the run must
                 continue: every requested frame written, >= 1 reconnect, timestamps strictly
                 increasing with the outage visible as a gap. Without the wrapper the run must
                 end with a clear error and a valid results.jsonl.
corrupt_frames   wrong shape (5 channels, 1-D), NaN / inf float frames, a truncated buffer, a too-small
                 crop, wrong dtype, None, empty: each must give status "bad_frame" with a message, the
                 good frames around them must still be analysed, results.jsonl stays valid.
model_replaced   a model file replaced (atomic rename) and overwritten in place while an Analyzer
                 runs: a new Analyzer must refuse it (ModelError, sha256); the running one keeps
                 going with unchanged outputs (compared with a reference run on a pristine copy).
signals          `edgeaffect run --source VIDEO --out DIR --loop` as a subprocess, SIGINT and SIGTERM
                 at random moments while it writes: exit code 128 + signal, every results.jsonl line parses,
                 frame_index contiguous, results.csv rows = frames, summary.json stopped_by = signal.
disk_full        (a) JsonlWriter with os.write failing ENOSPC half-way through a record: OutputError
                 "disk full", the file holds only whole lines; (b) `edgeaffect run` in a subprocess
                 with RLIMIT_FSIZE (ulimit -f) so the output hits the limit: one-line error, non-zero
                 exit, no traceback, results.jsonl holds only whole, valid lines.

Needs the models (the shipped ones, or --models-dir) and a video; runs in about a minute.
Not part of CI (spawns subprocesses, sends signals); see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeaffect.analyzer import Analyzer, AnalyzerOptions, RunningMode  # noqa: E402
from edgeaffect.capture.base import Frame, FrameSource  # noqa: E402
from edgeaffect.capture.file import VideoFileSource  # noqa: E402
from edgeaffect.errors import ModelError, OutputError, SourceError  # noqa: E402


class Fail(AssertionError):
    pass


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Fail(msg)


def read_jsonl_strict(path: Path) -> list[dict]:
    """Every line must be a complete JSON object ending in a newline."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        raise Fail(f"{path.name}: last line is torn (no trailing newline)")
    out = []
    for i, line in enumerate(data.splitlines()):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise Fail(f"{path.name}: line {i + 1} is not valid JSON ({e})") from None
    return out


def options(models_dir: str | None) -> AnalyzerOptions:
    return AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=1, models_dir=Path(models_dir) if models_dir else None)


def load_frames(video: str, n: int, start: int = 0) -> list[np.ndarray]:
    """n frames from `start` (looping); the default start skips the shared clip's far-away opening."""
    src = VideoFileSource(video, loop=True)
    src.open()
    for _ in range(start):
        src.read()
    frames = [src.read().image for _ in range(n)]  # type: ignore[union-attr]
    src.close()
    return frames


# ----------------------------------------------------------------------------- camera drop
class FlakyCamera(FrameSource):
    """A live camera over a video file that unplugs after `fail_after` frames for `outage_s` seconds."""

    is_live = True
    state: dict = {}

    def __init__(self, video: str, state: dict) -> None:
        self.inner = VideoFileSource(video, loop=True)
        self.state = state
        self.name = "flaky"

    def open(self) -> None:
        t = self.state.get("t_fail")
        if t is not None and time.monotonic() - t < self.state["outage_s"]:
            self.state["refused_opens"] = self.state.get("refused_opens", 0) + 1
            raise SourceError("/dev/video0: No such device (camera unplugged)")
        self.inner.open()

    def read(self) -> Frame | None:
        s = self.state
        s["delivered"] = s.get("delivered", 0) + 1
        if s.get("t_fail") is None and s["delivered"] > s["fail_after"]:
            s["t_fail"] = time.monotonic()
            raise SourceError("VIDIOC_DQBUF: No such device")
        return self.inner.read()

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    def close(self) -> None:
        self.inner.close()


def fault_camera_drop(a: argparse.Namespace, tmp: Path) -> str:
    from edgeaffect.session import run_source

    try:
        from edgeaffect.capture.reconnect import ReconnectingSource
    except ImportError:
        ReconnectingSource = None  # noqa: N806
    an = Analyzer(options(a.models_dir))
    notes = []
    try:
        if ReconnectingSource is not None:
            state = {"fail_after": 15, "outage_s": a.outage}
            src = ReconnectingSource(lambda: FlakyCamera(a.source, state), backoff=(0.1, 0.2, 0.4), max_retries=50)
            out = tmp / "drop_reconnect"
            s = run_source(src, out, analyzer=an, max_frames=40, write_csv=False)
            check(s.error is None, f"run ended with an error despite reconnecting: {s.error}")
            check(s.frames == 40, f"{s.frames} frames written, expected 40")
            check(src.reconnects >= 1, "no reconnect happened")
            lines = read_jsonl_strict(out / "results.jsonl")
            rows = [r for r in lines if "frame_index" in r]  # frame results; the rest are camera status lines
            events = [r.get("event") for r in lines if "frame_index" not in r]
            check(len(rows) == 40, f"results.jsonl has {len(rows)} frame lines, expected 40")
            check("camera_lost" in events and "camera_restored" in events,
                  f"the outage is not reported in results.jsonl (status lines: {events})")
            ts = [r["timestamp_ms"] for r in rows]
            check(all(b > a_ for a_, b in zip(ts, ts[1:])), "timestamps are not strictly increasing across the reconnect")
            gap = max(b - a_ for a_, b in zip(ts, ts[1:]))
            check(gap >= a.outage * 1000 * 0.8, f"the outage is not visible in the timestamps (largest gap {gap:.0f} ms)")
            notes.append(f"reconnected {src.reconnects}x after {state.get('refused_opens', 0)} refused opens, "
                         f"{s.frames} frames, {gap:.0f} ms timestamp gap, outage reported ({', '.join(events)})")
        else:
            notes.append("edgeaffect.capture.reconnect.ReconnectingSource not present: reconnect path not tested")
        # without the wrapper: a clear error, a valid file
        state2 = {"fail_after": 10, "outage_s": 3600}
        cam = FlakyCamera(a.source, state2)
        out2 = tmp / "drop_plain"
        an.reset()
        s2 = run_source(cam, out2, analyzer=an, max_frames=40, write_csv=False)
        check(s2.error is not None and "No such device" in s2.error, f"no clear error without reconnect (error={s2.error!r})")
        rows2 = read_jsonl_strict(out2 / "results.jsonl")
        check(len(rows2) == s2.frames == 10, f"{len(rows2)} lines / {s2.frames} frames, expected 10 before the drop")
        summ = json.loads((out2 / "summary.json").read_text())
        check(summ.get("error") == s2.error, "summary.json does not carry the error")
        notes.append(f"without reconnect: stopped cleanly after {s2.frames} frames ({s2.error})")
    finally:
        an.close()
    return "; ".join(notes)


# ----------------------------------------------------------------------------- corrupt frames
def fault_corrupt_frames(a: argparse.Namespace, tmp: Path) -> str:
    from edgeaffect.session import run_source

    good = load_frames(a.source, 40, a.start)
    g = good[0]
    corrupt: list[tuple[str, object]] = [
        ("5 channels", np.zeros((g.shape[0], g.shape[1], 5), np.uint8)),
        ("1-D", np.zeros(1000, np.uint8)),
        ("NaN float", np.full(g.shape, np.nan, np.float32)),
        ("inf float", np.where(np.arange(g.size).reshape(g.shape) % 7 == 0, np.inf, 0.5).astype(np.float32)),
        ("truncated buffer", g.ravel()[: g.size // 2 + 17]),
        ("too small (truncated rows)", g[:10]),
        ("int64 dtype", g.astype(np.int64)),
        ("None", None),
        ("empty", np.zeros((0, 0, 3), np.uint8)),
    ]
    an = Analyzer(options(a.models_dir))
    ts = 0.0
    seq: list[tuple[str, object]] = []
    gi = 0
    for name, bad in corrupt:  # 3 good frames, then a corrupt one, ...
        for _ in range(3):
            seq.append(("good", good[gi]))
            gi += 1
        seq.append((name, bad))
    seq += [("good", f) for f in good[gi:gi + 8]]
    statuses = []
    try:
        for name, img in seq:
            ts += 33.3
            r = an.process(img, ts)  # must not raise
            statuses.append((name, r.status, r.message))
        for name, st, msg in statuses:
            if name != "good":
                check(st == "bad_frame" and bool(msg), f"{name}: status {st!r} (message {msg!r}), expected bad_frame with a reason")
            else:
                check(st in ("ok", "no_face"), f"a good frame got status {st!r}")
        tail = [st for name, st, _ in statuses[-8:]]
        check("ok" in tail, f"no face found in the good frames after the corrupt ones: {tail}")
        # through the session writer: bad frames are lines too, and the file stays valid
        an.reset()
        frames = [Frame(img if img is not None else np.zeros(0), (i + 1) * 33.3, i) for i, (_, img) in enumerate(seq)]  # type: ignore[arg-type]
        out = tmp / "corrupt"
        s = run_source(frames, out, analyzer=an, write_csv=True)
        rows = read_jsonl_strict(out / "results.jsonl")
        check(len(rows) == len(seq) == s.frames, f"{len(rows)} lines for {len(seq)} frames")
        check(s.bad_frames == len(corrupt), f"{s.bad_frames} bad frames counted, expected {len(corrupt)}")
    finally:
        an.close()
    kinds = ", ".join(n for n, _ in corrupt)
    return f"{len(corrupt)} corrupt frames ({kinds}) -> bad_frame with a message; good frames analysed before and after"


# ----------------------------------------------------------------------------- model replaced
def fault_model_replaced(a: argparse.Namespace, tmp: Path) -> str:
    from edgeaffect.models import ASSETS, find_model

    src_dir = Path(a.models_dir) if a.models_dir else ASSETS
    frames = load_frames(a.source, 40, a.start)
    notes = []
    for mode in ("atomic", "in_place"):
        live = tmp / f"models_{mode}"
        pristine = tmp / f"models_{mode}_ref"
        for d in (live, pristine):
            shutil.copytree(src_dir, d, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
        ref = Analyzer(options(str(pristine)))
        run = Analyzer(options(str(live)))
        try:
            ref_res = [ref.process(f, (i + 1) * 33.3) for i, f in enumerate(frames)]
            out = [run.process(f, (i + 1) * 33.3) for i, f in enumerate(frames[:15])]
            target = find_model(live, "landmarks").with_suffix(".tflite")
            blob = bytearray(target.read_bytes())
            mid = len(blob) // 2
            blob[mid:mid + 64] = bytes(64)  # corrupt weights, keep the size
            if mode == "atomic":
                tmpf = target.with_suffix(".new")
                tmpf.write_bytes(bytes(blob))
                os.replace(tmpf, target)
            else:
                with open(target, "r+b") as fh:
                    fh.write(bytes(blob))
                    fh.truncate(len(blob) // 2)  # and cut it short: the worst an in-place copy can do
            try:
                Analyzer(options(str(live))).close()
                raise Fail(f"{mode}: a new Analyzer accepted the changed {target.name}")
            except ModelError as e:
                check("sha256" in str(e) or "truncated" in str(e), f"{mode}: refused, but the reason does not name the check: {e}")
            out += [run.process(f, (i + 16) * 33.3) for i, f in enumerate(frames[15:])]
            for i, (r, rr) in enumerate(zip(out, ref_res)):
                check(r.status == rr.status, f"{mode}: frame {i}: status {r.status} vs reference {rr.status}")
                if r.faces and rr.faces and r.faces[0].landmarks is not None and rr.faces[0].landmarks is not None:
                    d = float(np.abs(r.faces[0].landmarks - rr.faces[0].landmarks).max())
                    check(d < 1e-3, f"{mode}: frame {i}: the running analyzer's landmarks changed by {d:.3f} px after the file changed")
            notes.append(f"{mode}: new Analyzer refused (ModelError), running one unchanged over {len(out)} frames")
        finally:
            ref.close()
            run.close()
    return "; ".join(notes)


# ----------------------------------------------------------------------------- signals
def _cli(a: argparse.Namespace, out: Path, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "edgeaffect.cli", "run", "--source", a.source, "--out", str(out), "--max-faces", "1", *extra]
    if a.models_dir:
        cmd += ["--models-dir", a.models_dir]
    return cmd


def _count_lines(p: Path) -> int:
    try:
        with open(p, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def fault_signals(a: argparse.Namespace, tmp: Path) -> str:
    import csv

    rng = random.Random(a.seed)
    notes = []
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for sig in (signal.SIGINT, signal.SIGTERM):
        for rep in range(a.repeats):
            out = tmp / f"sig_{sig.name}_{rep}"
            p = subprocess.Popen(_cli(a, out, ["--loop"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
            jl = out / "results.jsonl"
            want = rng.randint(10, 60)
            t0 = time.monotonic()
            while _count_lines(jl) < want:
                if p.poll() is not None:
                    raise Fail(f"{sig.name}: `edgeaffect run` exited early ({p.returncode}): {p.stderr.read()[-400:]}")
                if time.monotonic() - t0 > 120:
                    p.kill()
                    raise Fail(f"{sig.name}: no {want} frames after 120 s")
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.05))  # land at a random point of the write cycle
            p.send_signal(sig)
            try:
                _, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Fail(f"{sig.name}: did not stop within 60 s") from None
            # the run loop's policy: a signal-stopped run exits 128 + the signal number (130 / 143),
            # after writing everything it has (checked below)
            check(p.returncode == 128 + int(sig), f"{sig.name}: exit code {p.returncode}, expected {128 + int(sig)}: {err[-300:]}")
            check("Traceback" not in err, f"{sig.name}: traceback on stderr: {err[-300:]}")
            rows = read_jsonl_strict(jl)
            idx = [r.get("frame_index") for r in rows]
            check(idx == list(range(len(rows))), f"{sig.name}: frame_index not contiguous 0..{len(rows) - 1}")
            summ = json.loads((out / "summary.json").read_text())
            check(summ.get("stopped_by") == sig.name, f"{sig.name}: summary.json stopped_by={summ.get('stopped_by')!r}")
            check(summ.get("frames") == len(rows), f"{sig.name}: summary says {summ.get('frames')} frames, results.jsonl has {len(rows)}")
            with open(out / "results.csv", newline="") as fh:
                n_csv = sum(1 for _ in csv.DictReader(fh))
            check(n_csv == len(rows), f"{sig.name}: results.csv has {n_csv} rows for {len(rows)} frames")
            notes.append(f"{sig.name}#{rep + 1}: {len(rows)} frames, valid")
    return "; ".join(notes)


# ----------------------------------------------------------------------------- disk full
def fault_disk_full(a: argparse.Namespace, tmp: Path) -> str:
    from edgeaffect.outputs import JsonlWriter
    from edgeaffect.results import FrameResult

    notes = []
    # (a) ENOSPC half-way through the 6th record
    p = tmp / "enospc.jsonl"
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 6:
            real_write(fd, bytes(data)[: len(data) // 2])  # a torn record reaches the disk ...
            raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full
        return real_write(fd, data)

    w = JsonlWriter(p)
    os.write = failing_write  # type: ignore[assignment]
    err = None
    try:
        for i in range(10):
            w.write(FrameResult(i, i * 33.3, status="no_face", timings_ms={"track": 1.0}))
    except OutputError as e:
        err = str(e)
    finally:
        os.write = real_write  # type: ignore[assignment]
        w.close()
    check(err is not None and "disk full" in err, f"no clear OutputError on ENOSPC (got {err!r})")
    rows = read_jsonl_strict(p)
    check(len(rows) == 5, f"{len(rows)} whole lines after ENOSPC on the 6th record, expected 5")
    notes.append(f"ENOSPC: {err}")

    # (b) a real limit: RLIMIT_FSIZE on the CLI (writes past it fail with EFBIG)
    import resource

    limit = 48 * 1024
    out = tmp / "fsize"

    def lim() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(_cli(a, out, ["--max-frames", "400", "--no-csv"]), capture_output=True, text=True, timeout=300,
                       preexec_fn=lim, env=env)
    check(r.returncode != 0, f"`edgeaffect run` exited 0 although its output hit the {limit // 1024} KiB file-size limit")
    check("Traceback" not in r.stderr, f"traceback instead of a one-line error: {r.stderr[-500:]}")
    check("edgeaffect: error:" in r.stderr and "results.jsonl" in r.stderr,
          f"no clear one-line error naming the file: {r.stderr.strip()[-300:]!r}")
    rows = read_jsonl_strict(out / "results.jsonl")
    check(0 < len(rows) < 400, f"{len(rows)} lines written under a {limit // 1024} KiB limit")
    notes.append(f"RLIMIT_FSIZE {limit // 1024} KiB: exit {r.returncode}, {len(rows)} whole lines, "
                 f"stderr: {r.stderr.strip().splitlines()[-1][:160]}")
    return "; ".join(notes)


FAULTS: dict[str, Callable[[argparse.Namespace, Path], str]] = {
    "camera_drop": fault_camera_drop,
    "corrupt_frames": fault_corrupt_frames,
    "model_replaced": fault_model_replaced,
    "signals": fault_signals,
    "disk_full": fault_disk_full,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="a video file with a face")
    ap.add_argument("--models-dir", default=None, help="models (default: the shipped ones)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(FAULTS)}")
    ap.add_argument("--repeats", type=int, default=2, help="signal runs per signal (random timing)")
    ap.add_argument("--outage", type=float, default=0.5, help="camera outage seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=100, help="first video frame used by corrupt_frames/model_replaced (a clear face)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary output directory")
    a = ap.parse_args(argv)
    if not Path(a.source).exists():
        print(f"faults: error: --source {a.source} does not exist", file=sys.stderr)
        return 2
    names = [n.strip() for n in a.only.split(",")] if a.only else list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        print(f"faults: error: unknown fault(s) {unknown}; choose from {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    from edgeaffect.bench.fingerprint import collect
    from edgeaffect.runtime.backends import load_backend

    cmd = "python benchmarks/faults.py " + " ".join(argv if argv is not None else sys.argv[1:])
    # first line: what machine, interpreter and code these results belong to (the README's generator reads it)
    print("# fingerprint: " + json.dumps({"command": cmd, "fingerprint": collect(backend=load_backend())}), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="edgeaffect-faults-"))
    failed = 0
    try:
        for n in names:
            t0 = time.perf_counter()
            try:
                msg = FAULTS[n](a, tmp)
                print(f"PASS {n}: {msg} ({time.perf_counter() - t0:.1f} s)", flush=True)
            except Fail as e:
                failed += 1
                print(f"FAIL {n}: {e}", flush=True)
            except Exception as e:  # an unexpected exception is a failure of the pipeline, with its trace
                failed += 1
                print(f"FAIL {n}: unexpected {type(e).__name__}: {e}", flush=True)
                traceback.print_exc()
    finally:
        if a.keep:
            print(f"outputs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(names) - failed}/{len(names)} faults passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
