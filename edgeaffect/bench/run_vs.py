"""Whole process: `edgeaffect run` vs a MediaPipe face-mesh script, start-up to last line written.

Each contender is a fresh process doing the whole job over the same video: interpreter
start-up and imports, model loading, decoding every frame with OpenCV, inference, and writing
one JSON line per frame:

* `edgeaffect`: `python -m edgeaffect.cli run --source VIDEO --out DIR --no-csv --max-faces 1
  --threads 1` (all three networks every frame, JSONL only);
* `mediapipe`: `python benchmarks/mediapipe_run.py --source VIDEO --out DIR` (legacy Face Mesh in
  tracking mode, one JSON line per frame with its landmarks; see that script).

Both run pinned to the same single CPU (`taskset -c CPU` when available, else
`sched_setaffinity` in the child), alternated (E M, M E, E M, ...) for `pairs` pairs after one
untimed warm-up run each (page cache, .pyc). Per run: wall time, CPU time (user + system of the
child and its threads, from wait4's rusage: unaffected by other processes' load), peak RSS
(ru_maxrss), frames written and frames with a face (from the JSONL the run wrote). Reported:
medians, the wall and CPU ratios of the medians, and the median of the per-pair wall ratios.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeAffectError

#: issue 12: >= 1.5x whole process
GOAL_RATIO = 1.5
MP_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mediapipe_run.py"


def commands(source: str, out_dir: Path, *, max_frames: int | None = None, loop: bool = False,
             models_dir: str | None = None, mp_refine: bool = False, python: str | None = None,
             mp_script: Path | None = None) -> dict[str, list[str]]:
    py = python or sys.executable
    tail: list[str] = []
    if loop:
        tail.append("--loop")
    if max_frames is not None:
        tail += ["--max-frames", str(max_frames)]
    ea = [py, "-m", "edgeaffect.cli", "run", "--source", source, "--out", str(out_dir / "edgeaffect"), "--no-csv",
          "--max-faces", "1", "--threads", "1", *tail]
    if models_dir:
        ea += ["--models-dir", models_dir]
    mp = [py, str(mp_script or MP_SCRIPT), "--source", source, "--out", str(out_dir / "mediapipe"), *tail]
    if mp_refine:
        mp.append("--refine")
    return {"edgeaffect": ea, "mediapipe": mp}


def _pin_prefix(cpu: int | None) -> tuple[list[str], Callable[[], None] | None, str]:
    if cpu is None:
        return [], None, "not pinned"
    ts = shutil.which("taskset")
    if ts:
        return [ts, "-c", str(cpu)], None, f"taskset -c {cpu}"
    if hasattr(os, "sched_setaffinity"):
        return [], (lambda: os.sched_setaffinity(0, {cpu})), f"sched_setaffinity({{{cpu}}})"
    return [], None, "not pinned (no taskset, no sched_setaffinity)"


def count_frames(jsonl: Path) -> tuple[int, int]:
    """(lines, lines with status ok) of a results.jsonl; (0, 0) when missing."""
    n = ok = 0
    try:
        with open(jsonl, "rb") as fh:
            for line in fh:
                n += 1
                ok += b'"status":"ok"' in line
    except OSError:
        return 0, 0
    return n, ok


def run_once(cmd: list[str], out_dir: Path, *, pin: tuple[list[str], Callable[[], None] | None, str],
             env: dict[str, str] | None = None, timeout_s: float = 900.0) -> dict[str, Any]:
    """One timed process run: wall, CPU (user+sys incl. threads), peak RSS, frames from its JSONL."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    prefix, preexec, _ = pin
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        p = subprocess.Popen([*prefix, *cmd], stdout=subprocess.DEVNULL, stderr=errf, preexec_fn=preexec, env=env)
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.001)
        wall = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    frames, faces = count_frames(out_dir / "results.jsonl")
    rss_kb = ru.ru_maxrss * (1 / 1024 if sys.platform == "darwin" else 1)
    res = {"wall_s": round(wall, 4), "cpu_s": round(ru.ru_utime + ru.ru_stime, 4), "user_s": round(ru.ru_utime, 4),
           "sys_s": round(ru.ru_stime, 4), "peak_rss_mb": round(rss_kb / 1024.0, 1), "returncode": p.returncode,
           "frames": frames, "face_frames": faces}
    if p.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        res["error"] = " | ".join(tail) or f"exit code {p.returncode}"
    return res


def _med(rows: list[dict[str, Any]], k: str) -> float | None:
    v = [r[k] for r in rows if r.get(k) is not None]
    return round(float(np.median(v)), 4) if v else None


def run_vs(source: str, *, pairs: int = 5, max_frames: int | None = None, loop: bool = False, cpu: int | None = None,
           models_dir: str | None = None, mp_refine: bool = False, work_dir: str | Path | None = None,
           warmup: bool = True, cmds: dict[str, list[str]] | None = None,
           progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Alternated whole-process runs; returns the report section `run_vs`."""
    say = progress or (lambda s: None)
    if not Path(source).exists():
        raise EdgeAffectError(f"--source {source} does not exist")
    if pairs < 1:
        raise EdgeAffectError("--pairs must be >= 1")
    own_tmp = work_dir is None
    wd = Path(work_dir or tempfile.mkdtemp(prefix="edgeaffect-runvs-"))
    wd.mkdir(parents=True, exist_ok=True)
    cmds = cmds or commands(source, wd, max_frames=max_frames, loop=loop, models_dir=models_dir, mp_refine=mp_refine)
    outs = {k: Path(c[c.index("--out") + 1]) for k, c in cmds.items()}
    pin = _pin_prefix(cpu)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in cmds}
    names = list(cmds)
    try:
        if warmup:
            for k in names:
                r = run_once(cmds[k], outs[k], pin=pin, env=env)
                say(f"warm-up {k}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, {r['frames']} frames"
                    + (f" ERROR {r['error']}" if r.get("error") else ""))
                if r.get("error"):
                    raise EdgeAffectError(f"{k} run failed: {r['error']}")
        for i in range(pairs):
            order = names if i % 2 == 0 else names[::-1]
            for k in order:
                r = run_once(cmds[k], outs[k], pin=pin, env=env)
                r["pair"] = i
                r["order"] = order.index(k)
                r["loadavg"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
                runs[k].append(r)
                say(f"pair {i + 1}/{pairs} {k}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, "
                    f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['frames']} frames ({r['face_frames']} with a face)"
                    + (f" ERROR {r['error']}" if r.get("error") else ""))
    finally:
        if own_tmp:
            shutil.rmtree(wd, ignore_errors=True)
    contenders = {}
    for k, rs in runs.items():
        contenders[k] = {"command": " ".join(cmds[k]), "runs": rs, "wall_s_median": _med(rs, "wall_s"),
                         "cpu_s_median": _med(rs, "cpu_s"), "peak_rss_mb_median": _med(rs, "peak_rss_mb"),
                         "peak_rss_mb_max": max((r["peak_rss_mb"] for r in rs), default=None),
                         "frames": rs[-1]["frames"] if rs else None, "face_frames": rs[-1]["face_frames"] if rs else None,
                         "failed_runs": sum(1 for r in rs if r.get("error"))}
    out: dict[str, Any] = {"source": {"path": str(source), "name": Path(source).name}, "pairs": pairs,
                           "max_frames": max_frames, "loop": loop, "pinning": pin[2], "goal_ratio": GOAL_RATIO,
                           "contenders": contenders}
    ea, mp = contenders.get("edgeaffect") or {}, contenders.get("mediapipe") or {}
    if ea.get("wall_s_median") and mp.get("wall_s_median"):
        per_pair = [m["wall_s"] / e["wall_s"] for e, m in zip(ea["runs"], mp["runs"]) if e["wall_s"] and m["wall_s"]]
        wr = mp["wall_s_median"] / ea["wall_s_median"]
        cr = mp["cpu_s_median"] / ea["cpu_s_median"] if ea.get("cpu_s_median") and mp.get("cpu_s_median") else None
        more_faces = (ea.get("face_frames") or 0) >= (mp.get("face_frames") or 0)
        out["ratio"] = {"wall_ratio": round(wr, 3), "cpu_ratio": None if cr is None else round(cr, 3),
                        "pair_wall_ratios": [round(v, 3) for v in per_pair],
                        "median_pair_wall_ratio": round(float(np.median(per_pair)), 3) if per_pair else None,
                        "rss_ratio": round(mp["peak_rss_mb_median"] / ea["peak_rss_mb_median"], 3)
                        if ea.get("peak_rss_mb_median") and mp.get("peak_rss_mb_median") else None,
                        "faces_at_least_as_many": more_faces, "goal": GOAL_RATIO,
                        "goal_met_wall": wr >= GOAL_RATIO and more_faces,
                        "goal_met_cpu": cr is not None and cr >= GOAL_RATIO and more_faces}
    out["method"] = (f"fresh process per run, both pinned ({pin[2]}), {pairs} alternated pairs after one untimed warm-up "
                     "each; wall = spawn to exit; CPU = user+sys of the child incl. its threads (wait4 rusage); "
                     "peak RSS = ru_maxrss; ratios = MediaPipe median / edgeaffect median (> 1: edgeaffect faster)")
    return out
