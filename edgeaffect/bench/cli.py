"""`edgeaffect bench`: latency benchmarks (see benchmarks/README.md).

    edgeaffect bench [e2e] --source VIDEO [--frames 1024] [--min-seconds 60] [--pace source|FPS]
                     [--with-modules] [--vs-mediapipe] [--label NAME] [--out DIR]
    edgeaffect bench module [--models-dir DIR] [--threads 1,2,4] [--delegate xnnpack --delegate reference]
    edgeaffect bench mediapipe --source VIDEO [--rounds 3]          (alias: vs-mediapipe)
    edgeaffect bench run-vs --source VIDEO [--pairs 5] [--loop --max-frames 1100] [--cpu N]   (whole process)
    edgeaffect bench sustained --source VIDEO --duration 600 [--interval 10] [--pace source]  (devices: heat, clock, throttling)
    edgeaffect bench compare A.json B.json ... [--out DIR]

Every run writes LABEL.json (schema edgeaffect.bench/1), LABEL.md and LABEL_*.png into --out.
"""

from __future__ import annotations

import argparse
import platform
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from ..errors import EdgeAffectError

SUBCOMMANDS = ("e2e", "module", "compare", "mediapipe", "vs-mediapipe", "run-vs", "sustained")


def _say(quiet: bool):
    def say(msg: str) -> None:
        if not quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    return say


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "bench"


def _ints(s: str) -> list[int]:
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {s!r}") from None
    if not v or any(x < 1 for x in v):
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {s!r}")
    return v


def _rate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--au-every", type=int, default=1, help="run the AU net every k-th frame, hold between (default 1: every frame)")
    p.add_argument("--affect-every", type=int, default=1, help="run the VA net every k-th frame, hold between (default 1)")


def _mp_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mp-refine", action="store_true",
                   help="MediaPipe face_mesh with refine_landmarks=True (478 points, attention model); default False (468, cheaper)")
    p.add_argument("--mp-task", default=None, metavar="FILE",
                   help="face_landmarker.task bundle for the Tasks FaceLandmarker (VIDEO) row (default: one inside the wheel, if any)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default=None, help="directory with the *.tflite + *.json manifests (default: shipped models)")
    p.add_argument("--label", default=None, help="name of this run/device in reports and file names (default: <arch>-<kind>)")
    p.add_argument("--out", default="bench-out", help="output directory (default: ./bench-out)")
    p.add_argument("--no-plots", action="store_true", help="skip PNG plots")
    p.add_argument("-q", "--quiet", action="store_true")


def _module_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}threads-list", dest="mod_threads", type=_ints, default=None,
                   help="thread counts for the per-module bench, e.g. 1,2,4 (default: --threads)")
    p.add_argument(f"--{prefix}delegate", dest="mod_delegates", action="append", default=None,
                   help="xnnpack (default) | reference | edgetpu | armnn[:LIB[:k=v,..]] | gpu[:LIB] | onnxruntime[:providers]; repeatable")
    p.add_argument(f"--{prefix}runs", dest="mod_runs", type=int, default=50, help="timed runs per cell, at least (benchmark_model: 50)")
    p.add_argument(f"--{prefix}run-seconds", dest="mod_min_s", type=float, default=1.0, help="timed seconds per cell, at least (1)")
    p.add_argument(f"--{prefix}max-seconds", dest="mod_max_s", type=float, default=150.0)
    p.add_argument(f"--{prefix}warmup-runs", dest="mod_warm_runs", type=int, default=1)
    p.add_argument(f"--{prefix}warmup-seconds", dest="mod_warm_s", type=float, default=0.5)
    p.add_argument("--benchmark-model", default=None, help="LiteRT benchmark_model binary for a per-op profile (default: PATH lookup)")
    p.add_argument("--modules", default=None, help="comma-separated subset of detector,landmarks,eyes,au,temporal")
    p.add_argument("--model", action="append", default=[], metavar="MODULE=PATH", help="override one module's manifest/tflite")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeaffect bench", description="Latency benchmarks (reports: JSON + Markdown + PNG).")
    sub = ap.add_subparsers(dest="sub", required=True, metavar="{e2e,module,mediapipe,compare}")

    e = sub.add_parser("e2e", help="end-to-end single-stream benchmark over a looping video (default)")
    e.add_argument("--source", required=True, help="video file (looped)")
    e.add_argument("--frames", type=int, default=1024, help="measure at least this many frames (MLPerf: 1024)")
    e.add_argument("--min-seconds", type=float, default=60.0, help="and at least this many seconds (MLPerf: 60)")
    e.add_argument("--max-seconds", type=float, default=None, help="hard stop")
    e.add_argument("--warmup", type=int, default=10, help="warm-up frames, not measured")
    e.add_argument("--pace", default=None, help="'source' (the video's fps) or a rate: frames arrive on that clock, late ones drop")
    e.add_argument("--threads", type=int, default=1, help="interpreter threads per model (default 1)")
    e.add_argument("--max-faces", type=int, default=1)
    e.add_argument("--no-aus", action="store_true")
    e.add_argument("--no-affect", action="store_true")
    e.add_argument("--preload-mb", type=float, default=256.0, help="decode the clip into RAM when it fits (default 256 MB)")
    e.add_argument("--with-modules", action="store_true", help="also run the per-module bench into the same report")
    e.add_argument("--vs-mediapipe", action="store_true", help="also run the side-by-side vs MediaPipe into the same report")
    e.add_argument("--mp-rounds", type=int, default=3, help="rounds over the clip for --vs-mediapipe")
    e.add_argument("--mp-frames", type=int, default=None, help="frames per round for --vs-mediapipe (default: whole clip)")
    e.add_argument("--no-pin", action="store_true", help="--vs-mediapipe: do not pin the process to one CPU")
    _mp_args(e)
    _module_args(e, "mod-")
    _rate_args(e)
    _common(e)

    m = sub.add_parser("module", help="per-module benchmark_model-style bench")
    m.add_argument("--threads", dest="mod_threads", type=_ints, default=[1], help="thread counts, e.g. 1,2,4")
    m.add_argument("--delegate", dest="mod_delegates", action="append", default=None,
                   help="xnnpack (default) | reference | edgetpu | armnn[:LIB[:k=v,..]] | gpu[:LIB] | onnxruntime[:providers]; repeatable")
    m.add_argument("--runs", dest="mod_runs", type=int, default=50)
    m.add_argument("--min-seconds", dest="mod_min_s", type=float, default=1.0)
    m.add_argument("--max-seconds", dest="mod_max_s", type=float, default=150.0)
    m.add_argument("--warmup-runs", dest="mod_warm_runs", type=int, default=1)
    m.add_argument("--warmup-seconds", dest="mod_warm_s", type=float, default=0.5)
    m.add_argument("--benchmark-model", default=None, help="LiteRT benchmark_model binary for a per-op profile (default: PATH lookup)")
    m.add_argument("--modules", default=None, help="comma-separated subset of detector,landmarks,eyes,au,temporal")
    m.add_argument("--model", action="append", default=[], metavar="MODULE=PATH", help="override one module's manifest/tflite")
    _common(m)

    # one sub-command, listed once in --help; `vs-mediapipe` is its alias
    v = sub.add_parser("mediapipe", aliases=["vs-mediapipe"],
                       help="side by side vs MediaPipe face mesh in tracking mode (the yardstick)")
    v.add_argument("--source", required=True, help="video file")
    v.add_argument("--rounds", type=int, default=3)
    v.add_argument("--frames", type=int, default=None, help="frames per round (default: whole clip)")
    v.add_argument("--warmup", type=int, default=10)
    v.add_argument("--threads", type=int, default=1, help="edgeaffect interpreter threads (default 1)")
    v.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    v.add_argument("--pin-cpu", type=int, default=None, help="pin to this CPU (default: the highest usable one)")
    v.add_argument("--mesh-only", action="store_true", help="skip the extra face_detection + face_mesh row")
    _mp_args(v)
    _rate_args(v)
    _common(v)

    w = sub.add_parser("run-vs", help="whole process: `edgeaffect run` vs a MediaPipe face-mesh script, alternated on one core")
    w.add_argument("--source", required=True, help="video file")
    w.add_argument("--pairs", type=int, default=5, help="alternated pairs of runs (median reported; default 5)")
    w.add_argument("--max-frames", type=int, default=None, help="frames per run (with --loop: loop the clip up to this)")
    w.add_argument("--loop", action="store_true", help="loop the clip (needs --max-frames)")
    w.add_argument("--cpu", type=int, default=None, help="pin both to this CPU (default: the highest usable one)")
    w.add_argument("--no-pin", action="store_true")
    w.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each")
    w.add_argument("--work-dir", default=None, help="where the runs write their outputs (default: a temp dir, removed)")
    w.add_argument("--mp-refine", action="store_true", help="MediaPipe face_mesh with refine_landmarks=True")
    _common(w)

    u = sub.add_parser("sustained", help="sustained run: per-interval latency next to temperature, clock and throttle state")
    u.add_argument("--source", required=True, help="video file (looped)")
    u.add_argument("--duration", type=float, default=600.0, help="seconds to run (default 600)")
    u.add_argument("--interval", type=float, default=10.0, help="seconds per logged interval (default 10)")
    u.add_argument("--pace", default=None, help="'source' (the video's fps) or a rate; default back to back (hottest)")
    u.add_argument("--threads", type=int, default=1)
    u.add_argument("--max-faces", type=int, default=1)
    u.add_argument("--sys-root", default="/sys", help="sysfs root for the thermal/cpufreq readers (tests: a fake tree)")
    u.add_argument("--no-vcgencmd", action="store_true", help="do not call vcgencmd (Raspberry Pi firmware tool)")
    _rate_args(u)
    _common(u)

    c = sub.add_parser("compare", help="table + plot across reports (runs or devices)")
    c.add_argument("reports", nargs="+", help="bench JSON reports; the first with an e2e section is the baseline")
    c.add_argument("--out", default=None, help="write compare.md (+ compare.png) here; default: print the table only")
    c.add_argument("--no-plots", action="store_true")
    return ap


def _model_files(a: argparse.Namespace) -> dict[str, str]:
    out = {}
    for kv in a.model or []:
        if "=" not in kv:
            raise EdgeAffectError(f"--model expects MODULE=PATH, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _module_cfg(a: argparse.Namespace, default_threads: int):
    from .module_bench import ModuleBenchConfig

    return ModuleBenchConfig(threads=a.mod_threads or [default_threads], delegates=a.mod_delegates or ["xnnpack"],
                             warmup_runs=a.mod_warm_runs, warmup_min_s=a.mod_warm_s, num_runs=a.mod_runs,
                             min_s=a.mod_min_s, max_s=a.mod_max_s, benchmark_model=a.benchmark_model)


def _run_modules(a: argparse.Namespace, say, default_threads: int) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    from ..runtime.backends import load_backend
    from ..runtime.manifest import load_manifest
    from .module_bench import model_paths, run_module_bench

    mods = [s.strip() for s in a.modules.split(",")] if a.modules else None
    paths = model_paths(a.models_dir, _model_files(a), mods)
    manifests = {}
    for k, p in paths.items():
        manifests[k] = load_manifest(p)  # ModelError with a clear message when missing
    cfg = _module_cfg(a, default_threads)
    backend = load_backend()

    def prog(e: dict[str, Any]) -> None:
        if "error" in e:
            say(f"module {e['module']} ({e['delegate']}, {e['threads']} thr): {e['error']}")
        else:
            say(f"module {e['module']} ({e['delegate_detail']}): invoke mean {e['invoke_ms']['mean'] if e.get('invoke_ms') else e['run_ms']['mean']:.3f} ms, "
                f"p90 {(e.get('invoke_ms') or e['run_ms'])['p90']:.3f} ms")

    entries = run_module_bench(paths, cfg, backend, prog)
    return entries, manifests, backend


def _estimates(macs_per_frame: float | None, frame_ms: float | None, rate: dict[str, Any] | None, threads: int = 1) -> dict[str, Any]:
    from .estimate import pi_estimate

    return {"int8_rate": rate, "pi": pi_estimate(macs_per_frame, frame_ms, (rate or {}).get("gmacs_per_s"),
                                                 (rate or {}).get("basis", ""), threads)}


def _vs_mediapipe(a: argparse.Namespace, say, frames_limit: int | None, rounds: int, warmup: int, threads: int,
                  pin: Any, mesh_only: bool = False) -> tuple[dict[str, Any], Any]:
    from .e2e_bench import InvocationCounter
    from .vs_mediapipe import edgeaffect_contender, load_frames, run_vs_mediapipe

    frames, fps = load_frames(a.source, frames_limit)
    say(f"vs MediaPipe: {len(frames)} frames x {rounds} rounds" + (", process pinned to one CPU" if pin is not None else ""))
    holder: dict[str, Any] = {}

    def make_counted():
        from ..analyzer import Analyzer, AnalyzerOptions, BaseOptions, RunningMode
        from ..runtime.wrappers import RunnerTimings

        base = BaseOptions(models_dir=Path(a.models_dir) if a.models_dir else None, num_threads=threads,
                           wrappers=[RunnerTimings().wrap])
        an = Analyzer(AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=1, base_options=base,
                                      au_every=a.au_every, affect_every=a.affect_every))
        holder["analyzer"] = an
        holder["counter"] = InvocationCounter(an)
        return edgeaffect_contender(analyzer=an, threads=threads)

    res = run_vs_mediapipe(frames, fps, edgeaffect=make_counted, rounds=rounds, warmup=warmup, pin_cpu=pin,
                           include_detection_mesh=not mesh_only, refine_landmarks=a.mp_refine, task_path=a.mp_task,
                           progress=say)
    res["source"] = {"path": str(a.source), "name": Path(a.source).name, "fps": fps,
                     "width": frames[0].shape[1], "height": frames[0].shape[0]}
    counter = holder.get("counter")
    if counter is not None:
        total = sum(counter.count.values())
        ea_frames = (res["contenders"].get("edgeaffect") or {}).get("frames") or 0
        n_all = ea_frames + warmup
        res["edgeaffect_model_invocations"] = counter.summary(n_all) if total else None
    return res, holder.get("analyzer")


def cmd_e2e(a: argparse.Namespace, argv: list[str]) -> int:
    from .e2e_bench import E2EConfig, make_analyzer, model_rate_from_e2e, run_e2e
    from .fingerprint import collect
    from .module_bench import int8_rate
    from .report import new_report

    say = _say(a.quiet)
    pace = None
    if a.pace:
        if a.pace == "source":
            import cv2

            cap = cv2.VideoCapture(a.source)
            pace = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
            cap.release()
        else:
            try:
                pace = float(a.pace)
            except ValueError:
                raise EdgeAffectError(f"--pace expects 'source' or a frame rate, got {a.pace!r}") from None
    if a.frames < 1 or a.min_seconds < 0:
        raise EdgeAffectError("--frames must be >= 1 and --min-seconds >= 0")
    cfg = E2EConfig(source=a.source, min_frames=a.frames, min_seconds=a.min_seconds, max_seconds=a.max_seconds,
                    warmup_frames=a.warmup, pace_fps=pace, preload_mb=a.preload_mb, threads=a.threads,
                    models_dir=a.models_dir, max_faces=a.max_faces, enable_aus=not a.no_aus, enable_affect=not a.no_affect,
                    extra_options={"au_every": a.au_every, "affect_every": a.affect_every})
    if not Path(a.source).exists():
        raise EdgeAffectError(f"--source {a.source} does not exist")
    import time

    t_load = time.perf_counter()
    an = make_analyzer(cfg)
    load_ms = (time.perf_counter() - t_load) * 1000.0
    manifests = dict(an.model_manifests)
    label = a.label or f"{platform.machine()}-e2e"
    import cv2

    fp = collect(backend=an.backend, manifests=manifests, delegates=[], num_threads=a.threads)
    config = {k: v for k, v in cfg.__dict__.items() if k != "extra_options"}
    config.update(cfg.extra_options)
    config["opencv_threads"] = cv2.getNumThreads()
    rep = new_report("e2e", label, fp, config, "edgeaffect bench " + " ".join(shlex.quote(x) for x in argv))
    say(f"e2e: {a.source}, threads {a.threads}, models {a.models_dir or 'shipped'}")
    from ..progress import ProgressBar

    with ProgressBar(total=None if a.min_seconds else a.frames, duration_s=a.min_seconds or None, label="bench",
                     enabled=False if a.quiet else None) as bar:
        rep["e2e"] = run_e2e(cfg, analyzer=an, progress=say, on_measured=bar.update)
    rep["e2e"]["analyzer_load_ms"] = round(load_ms, 1)
    an.close()
    e = rep["e2e"]
    say(f"e2e: {e['frames']} frames in {e['wall_s']:.1f} s: p50 {e['latency_ms']['p50']:.2f} ms, "
        f"p90 {e['latency_ms']['p90']:.2f} ms, p99 {e['latency_ms']['p99']:.2f} ms, {e['throughput_fps']:.1f} fps")
    rate = model_rate_from_e2e(e, manifests)
    if a.with_modules:
        entries, _, _ = _run_modules(a, say, a.threads)
        rep["modules"] = entries
        rate = int8_rate(entries, a.threads) or rate
    if rate is not None:
        rate.setdefault("threads", a.threads)
    rep["estimates"] = _estimates((e.get("macs") or {}).get("per_frame_measured"), (e.get("latency_ms") or {}).get("mean"), rate, a.threads)
    if a.vs_mediapipe:
        res, _ = _vs_mediapipe(a, say, a.mp_frames, a.mp_rounds, a.warmup, a.threads, None if a.no_pin else "auto")
        rep["vs_mediapipe"] = res
        if res.get("skipped"):
            rep["notes"].append(f"vs MediaPipe skipped: {res.get('reason')}")
        _print_ratios(res, say)
    if any(m.get("stand_in") for m in fp["models"].values()):
        rep["notes"].append("STAND-IN models (random weights, benchmarks/make_stand_in_models.py): not the shipped models' figures")
    return _finish(rep, a, label, say)


def _print_ratios(res: dict[str, Any], say) -> None:
    for name, c in (res.get("contenders") or {}).items():
        if c.get("fps"):
            say(f"  {name}: {c['fps']:.1f} fps, p90 {c['latency_ms']['p90']:.2f} ms, face found {100 * (c.get('face_rate') or 0):.0f}%")
    for r in res.get("ratios") or []:
        ff = r.get("fps_ratio_face_frames")
        say(f"  {r['name']}: {r['fps_ratio']:.2f}x fps, CPU {r.get('cpu_ratio') or 0:.2f}x, p50 {r.get('p50_ratio') or 0:.2f}x, "
            f"median round {r.get('median_round_fps_ratio') or 0:.2f}x"
            + (f" (goal {r['goal']}x: wall {'met' if r['goal_met'] else 'NOT met'}, CPU {'met' if r.get('goal_met_cpu') else 'NOT met'})" if r.get("primary") else "")
            + (f"; on face frames {ff:.2f}x" if ff else ""))


def _finish(rep: dict[str, Any], a: argparse.Namespace, label: str, say) -> int:
    from .report import save

    paths = save(rep, a.out, _slug(label), plots=not a.no_plots)
    if paths.get("plot_message"):
        say(paths["plot_message"])
    print(paths["json"])
    print(paths["markdown"])
    for p in paths["plots"]:
        print(p)
    return 0


def cmd_module(a: argparse.Namespace, argv: list[str]) -> int:
    from .e2e_bench import macs_summary
    from .fingerprint import collect
    from .module_bench import int8_rate
    from .report import new_report

    say = _say(a.quiet)
    entries, manifests, backend = _run_modules(a, say, 1)
    label = a.label or f"{platform.machine()}-module"
    fp = collect(backend=backend, manifests=manifests, delegates=sorted(set(a.mod_delegates or ["xnnpack"])),
                 num_threads=None)
    cfg = _module_cfg(a, 1)
    rep = new_report("module", label, fp, dict(cfg.__dict__), "edgeaffect bench module " + " ".join(shlex.quote(x) for x in argv))
    rep["modules"] = entries
    rate = int8_rate(entries, min(cfg.threads))
    macs = macs_summary(manifests)
    rep["estimates"] = _estimates(macs.get("per_frame_tracking"), None, rate, min(cfg.threads))
    rep["estimates"]["macs"] = macs
    return _finish(rep, a, label, say)


def cmd_mediapipe(a: argparse.Namespace, argv: list[str]) -> int:
    from .e2e_bench import macs_summary, model_rate_from_e2e
    from .fingerprint import collect
    from .report import new_report

    say = _say(a.quiet)
    if not Path(a.source).exists():
        raise EdgeAffectError(f"--source {a.source} does not exist")
    pin = None if a.no_pin else (a.pin_cpu if a.pin_cpu is not None else "auto")
    res, an = _vs_mediapipe(a, say, a.frames, a.rounds, a.warmup, a.threads, pin, a.mesh_only)
    label = a.label or f"{platform.machine()}-vs-mediapipe"
    manifests = dict(an.model_manifests) if an is not None else {}
    fp = collect(backend=an.backend if an else None, manifests=manifests, delegates=[], num_threads=a.threads,
                 extra={"mediapipe": res.get("mediapipe_version")})
    rep = new_report("mediapipe", label, fp, {"source": a.source, "rounds": a.rounds, "frames": a.frames, "warmup": a.warmup,
                                              "threads": a.threads, "pin": pin, "au_every": a.au_every,
                                              "mp_refine_landmarks": a.mp_refine, "mp_task": a.mp_task,
                                              "affect_every": a.affect_every},
                     "edgeaffect bench mediapipe " + " ".join(shlex.quote(x) for x in argv))
    rep["vs_mediapipe"] = res
    if res.get("skipped"):
        rep["notes"].append(f"vs MediaPipe skipped: {res.get('reason')}")
    ea = (res.get("contenders") or {}).get("edgeaffect") or {}
    inv = res.get("edgeaffect_model_invocations") or {}
    rate = model_rate_from_e2e({"model_invocations": inv}, manifests)
    macs = macs_summary(manifests)
    frames_all = (ea.get("frames") or 0) + a.warmup
    measured = None
    if inv and frames_all:
        measured = sum((inv.get(m) or {}).get("count", 0) * (v or 0) for m, v in macs["per_module"].items()) / frames_all
    rep["estimates"] = _estimates(measured or macs.get("per_frame_tracking"), (ea.get("latency_ms") or {}).get("mean"), rate, a.threads)
    rep["estimates"]["macs"] = macs
    _print_ratios(res, say)
    if an is not None:
        an.close()
    return _finish(rep, a, label, say)


def cmd_run_vs(a: argparse.Namespace, argv: list[str]) -> int:
    import os

    from .fingerprint import collect
    from .report import new_report
    from .run_vs import run_vs

    say = _say(a.quiet)
    if a.loop and a.max_frames is None:
        raise EdgeAffectError("--loop needs --max-frames")
    cpu = None
    if not a.no_pin:
        cpu = a.cpu if a.cpu is not None else (max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None)
    manifests: dict[str, Any] = {}
    try:
        from ..runtime.factory import BaseOptions, RunnerFactory
        from ..runtime.manifest import load_manifest

        fac = RunnerFactory(BaseOptions(models_dir=Path(a.models_dir) if a.models_dir else None), warn=False)
        from ..errors import ModelError
        from ..registry import REGISTRY

        for spec in REGISTRY:
            try:
                manifests[spec.name] = load_manifest(fac.model_path(spec.name))
            except ModelError:
                if spec.required:
                    raise  # an optional module (eyes) an older models dir lacks is not run either
    except Exception as e:  # the fingerprint is best effort; the runs report their own errors
        say(f"model manifests not readable for the fingerprint: {e}")
    res = run_vs(a.source, pairs=a.pairs, max_frames=a.max_frames, loop=a.loop, cpu=cpu, models_dir=a.models_dir,
                 mp_refine=a.mp_refine, work_dir=a.work_dir, warmup=not a.no_warmup, progress=say)
    from ..runtime.backends import load_backend

    fp = collect(backend=load_backend(), manifests=manifests, delegates=[], num_threads=1,
                 extra={"mediapipe": _dist("mediapipe")})
    label = a.label or f"{platform.machine()}-run-vs"
    rep = new_report("run-vs", label, fp, {"source": a.source, "pairs": a.pairs, "max_frames": a.max_frames, "loop": a.loop,
                                           "cpu": cpu, "mp_refine": a.mp_refine, "threads": 1},
                     "edgeaffect bench run-vs " + " ".join(shlex.quote(x) for x in argv))
    rep["run_vs"] = res
    r = res.get("ratio") or {}
    for k, c in res["contenders"].items():
        say(f"  {k}: median {c['wall_s_median']} s wall, {c['cpu_s_median']} s CPU, peak RSS {c['peak_rss_mb_median']} MB, "
            f"{c['face_frames']}/{c['frames']} frames with a face")
    if r:
        say(f"  whole process: {r['wall_ratio']:.2f}x wall, {r['cpu_ratio'] or 0:.2f}x CPU (goal {r['goal']}x: "
            f"wall {'met' if r['goal_met_wall'] else 'NOT met'}, CPU {'met' if r['goal_met_cpu'] else 'NOT met'})")
    return _finish(rep, a, label, say)


def _dist(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def cmd_sustained(a: argparse.Namespace, argv: list[str]) -> int:
    from .e2e_bench import ClipFrames, E2EConfig, make_analyzer
    from .fingerprint import collect
    from .report import new_report
    from .sustained import DeviceReader, run_sustained

    say = _say(a.quiet)
    if not Path(a.source).exists():
        raise EdgeAffectError(f"--source {a.source} does not exist")
    if a.duration <= 0 or a.interval <= 0:
        raise EdgeAffectError("--duration and --interval must be > 0")
    clip = ClipFrames(a.source)
    pace = None
    if a.pace:
        try:
            pace = clip.fps if a.pace == "source" else float(a.pace)
        except ValueError:
            raise EdgeAffectError(f"--pace expects 'source' or a frame rate, got {a.pace!r}") from None
    cfg = E2EConfig(source=a.source, threads=a.threads, models_dir=a.models_dir, max_faces=a.max_faces,
                    extra_options={"au_every": a.au_every, "affect_every": a.affect_every})
    an = make_analyzer(cfg)
    label = a.label or f"{platform.machine()}-sustained"
    fp = collect(backend=an.backend, manifests=dict(an.model_manifests), delegates=[], num_threads=a.threads)
    rep = new_report("sustained", label, fp, {"source": a.source, "duration_s": a.duration, "interval_s": a.interval,
                                              "pace_fps": pace, "threads": a.threads, "max_faces": a.max_faces,
                                              "au_every": a.au_every, "affect_every": a.affect_every},
                     "edgeaffect bench sustained " + " ".join(shlex.quote(x) for x in argv))
    say(f"sustained: {a.duration:g} s, one row every {a.interval:g} s")
    reader = DeviceReader(a.sys_root, use_vcgencmd=not a.no_vcgencmd)
    try:
        rep["sustained"] = run_sustained(an, clip, duration_s=a.duration, interval_s=a.interval, pace_fps=pace,
                                         reader=reader, progress=say)
    finally:
        an.close()
        clip.close()
    for k in ("note_temp", "note_clock"):
        if rep["sustained"]["summary"].get(k):
            rep["notes"].append(rep["sustained"]["summary"][k])
    return _finish(rep, a, label, say)


def cmd_compare(a: argparse.Namespace) -> int:
    from .compare import compare_files

    res = compare_files(a.reports, a.out, plots=not a.no_plots)
    print(res["markdown"])
    if res.get("plot_message"):
        print(f"[bench] {res['plot_message']}", file=sys.stderr)
    if res.get("markdown_path"):
        print(res["markdown_path"], file=sys.stderr)
    return 0


def bench_main(argv: list[str]) -> int:
    argv = list(argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["e2e", *argv]  # `edgeaffect bench --source X` = `edgeaffect bench e2e --source X`
    a = build_parser().parse_args(argv)
    if a.sub == "e2e":
        return cmd_e2e(a, argv[1:])
    if a.sub == "module":
        return cmd_module(a, argv[1:])
    if a.sub in ("mediapipe", "vs-mediapipe"):
        return cmd_mediapipe(a, argv[1:])
    if a.sub == "run-vs":
        return cmd_run_vs(a, argv[1:])
    if a.sub == "sustained":
        return cmd_sustained(a, argv[1:])
    return cmd_compare(a)
