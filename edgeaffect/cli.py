"""Command line: a thin layer over the library.

    edgeaffect run --source VIDEO --out DIR [--overlay] [--profile rpi5]
    edgeaffect demo [--out DIR]
    edgeaffect convert MODEL.onnx --kind ... --calib ... --out DIR     ([convert] extra)
    edgeaffect inspect MODEL.tflite
    edgeaffect devices
    edgeaffect bench ...

Errors the user can fix are printed as one line ("edgeaffect: error: ...") with a non-zero
exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import EdgeAffectError

RUN_OUT, DEMO_OUT = "edgeaffect-out", "edgeaffect-demo"


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (0 threads, -5 frames... are one-line usage errors, not odd runs)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _add_run_args(p: argparse.ArgumentParser, *, out_default: str, overlay_default: bool) -> None:
    p.add_argument("--out", default=None, help=f"output directory (default: ./{out_default})")
    p.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=overlay_default,
                   help="write overlay.mp4: landmarks, AU bars and the V/A dial drawn on the video "
                   f"(default: {'on' if overlay_default else 'off'})")
    p.add_argument("--no-csv", action="store_true", help="skip results.csv")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous run's results.* in --out (default: they are moved to previous-STARTUTC/)")
    p.add_argument("--max-faces", type=positive_int, default=None, help="faces to track (driver monitor: 1)")
    p.add_argument("--threads", type=positive_int, default=None, help="interpreter threads per model (default 1)")
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many frames")
    p.add_argument("--models-dir", default=None, help="directory with model .tflite + .json manifests")
    p.add_argument("--nir-enhance", action="store_true", help="CLAHE at capture for over-exposed IR (with --profile: added to its camera.nir)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (it is shown only on a terminal anyway)")
    from .outputs.run_outputs import add_output_args

    add_output_args(p)


def progress_bar(a: argparse.Namespace, source: object, label: str):  # noqa: ANN201 - ProgressBar
    """A progress bar on stderr for a terminal: frames done / total (None for cameras and --loop), fps, ETA."""
    from .progress import ProgressBar

    def total() -> int | None:
        if getattr(a, "loop", False):
            return a.max_frames
        n = getattr(source, "frame_count", None)
        return min(x for x in (n, a.max_frames) if x) if (n or a.max_frames) else None

    return ProgressBar(total=total, label=label, enabled=False if a.quiet else None)


def _options(a: argparse.Namespace):
    from .analyzer import AnalyzerOptions

    o = AnalyzerOptions()
    if a.max_faces is not None:
        o.max_faces = a.max_faces
    elif getattr(a, "dms", False):
        o.max_faces = 1  # the driver monitor follows one tracked face
    if a.threads is not None:
        o.num_threads = a.threads
    if a.models_dir:
        o.models_dir = Path(a.models_dir)
    return o


def _nir(a: argparse.Namespace):
    """--nir-enhance: CLAHE at the capture boundary (the camera config's NIR conditioning)."""
    from .capture.config import NirConfig

    return NirConfig(enabled=True, clahe=True) if a.nir_enhance else None


def output_dir(path: str | None, default: str) -> Path:
    """Create the output directory now, before any model loads; a place that cannot hold it is one line."""
    out = Path(path or default)
    flag = f"--out {out}" if path else f"output directory {out}"
    if out.exists() and not out.is_dir():
        raise EdgeAffectError(f"{flag} is a file, not a directory: pass a directory (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".edgeaffect-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise EdgeAffectError(f"{flag}: cannot create or write there ({e.strerror or e}); pass a writable directory") from None
    return out


def _print_outputs(summary) -> None:  # noqa: ANN001 - RunSummary, imported lazily
    print(summary.line())
    for k, v in summary.outputs.items():
        note = ""
        if k == "overlay" and summary.extra.get("overlay_codec") not in (None, "avc1"):
            note = f" ({summary.extra['overlay_codec']}: this OpenCV has no H.264 encoder; VLC plays it, most browsers don't)"
        print(f"  {k}: {v}{note}")


def cmd_run(a: argparse.Namespace) -> int:
    from .capture import open_source
    from .outputs.run_outputs import output_config
    from .session import exit_code, run_source

    prof = None
    if a.profile:
        from .profiles import load_profile

        prof = load_profile(a.profile)
    elif not a.source:
        raise EdgeAffectError("run: --source is required without --profile")
    out = output_dir(a.out or (prof.output_dir if prof else None), RUN_OUT)
    from .observers import observers_from_args

    common = {"overlay": a.overlay, "max_frames": a.max_frames, "outputs": output_config(a, prof.outputs if prof else None),
              "overwrite": a.overwrite}
    forever = {"retry_forever": True} if a.retry_forever else {}
    if a.profile:
        from .device_run import prepare

        dms_on = a.dms or bool(prof is not None and prof.dms is not None and prof.dms.enabled)
        max_faces = a.max_faces if a.max_faces is not None else (1 if dms_on else None)  # driver monitoring: one driver
        setup = prepare(a.profile, source=a.source, models_dir=a.models_dir, max_faces=max_faces,
                        threads=a.threads, nir_enhance=a.nir_enhance)
        print(setup.plan.describe())
        src = open_source(setup.camera, realtime=a.realtime or None, loop=a.loop, **forever)
        with progress_bar(a, src, "run") as bar:
            summary = run_source(src, out, setup.options, runner_factory=setup.plan.factory, executor=setup.executor,
                                 header_extra=setup.header(), on_progress=bar.on_progress,
                                 observers=observers_from_args(a, setup.profile), **common)
        print(summary.extra["executor_report"])
    else:
        src = open_source(a.source, realtime=a.realtime, loop=a.loop, nir=_nir(a), **forever)
        with progress_bar(a, src, "run") as bar:
            summary = run_source(src, out, _options(a), on_progress=bar.on_progress, observers=observers_from_args(a), **common)
    _print_outputs(summary)
    return exit_code(summary)


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import DemoSource
    from .session import run_source

    out = output_dir(a.out, DEMO_OUT)
    print(f"edgeaffect demo: analysing a {a.frames}-frame synthetic clip of scikit-image's astronaut (RGB, face leaving frame, NIR-like mono)")
    from .capture.conditioning import ConditionedSource
    from .outputs.run_outputs import output_config
    from .session import exit_code

    src = DemoSource(a.frames)
    nir = _nir(a)
    with progress_bar(a, src, "demo") as bar:
        summary = run_source(ConditionedSource(src, nir) if nir else src, out, _options(a), overlay=a.overlay,
                             max_frames=a.max_frames, on_progress=bar.on_progress, outputs=output_config(a),
                             overwrite=a.overwrite)
    _print_outputs(summary)
    return exit_code(summary)


def cmd_convert(argv: list[str]) -> int:
    try:
        from edgeaffect_converters.cli import convert_main
    except ImportError as e:
        raise EdgeAffectError(f"`edgeaffect convert` needs the conversion toolchain: pip install 'edgeaffect[convert]' ({e})") from None
    return convert_main(argv)


def cmd_inspect(argv: list[str]) -> int:
    from edgeaffect_converters.inspect_model import inspect_main

    return inspect_main(argv)


def cmd_devices(argv: list[str]) -> int:
    from .devices import devices_main

    return devices_main(argv)


def cmd_bench(argv: list[str]) -> int:
    from .bench.cli import bench_main

    return bench_main(argv)


def cmd_fleet(argv: list[str]) -> int:
    from .telemetry.fleet import fleet_main

    return fleet_main(argv)


PASSTHROUGH = {"convert": cmd_convert, "inspect": cmd_inspect, "devices": cmd_devices, "bench": cmd_bench, "fleet": cmd_fleet}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeaffect", description="Facial affect analysis on edge devices (int8 TFLite).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="analyse a video file or camera")
    r.add_argument("--source", default=None,
                   help="video file, /dev/videoN, v4l2:N, gst:<pipeline>, picamera2:N (with --profile: default its camera)")
    r.add_argument("--profile", default=None, help="device profile from firmware_configs/ (name or path)")
    r.add_argument("--realtime", action="store_true", help="pace a video file at its frame rate")
    r.add_argument("--loop", action="store_true", help="loop a video file")
    r.add_argument("--retry-forever", action="store_true",
                   help="never give up on a camera: retry with capped back-off, outages written as status lines")
    _add_run_args(r, out_default=RUN_OUT, overlay_default=False)
    from .observers import add_observer_args

    add_observer_args(r)
    d = sub.add_parser("demo", help="self-contained demo on a bundled face image")
    d.add_argument("--frames", type=positive_int, default=150, help="length of the synthetic clip (default 150)")
    _add_run_args(d, out_default=DEMO_OUT, overlay_default=True)
    for name, helptext in (("convert", "ONNX -> TFLite with calibration and fidelity gate"), ("inspect", "inspect a .tflite and its manifest"),
                           ("devices", "list device profiles and what this machine can load"), ("bench", "latency benchmarks"),
                           ("fleet", "many devices' stats over MQTT: the bench compare table and plot")):
        sub.add_parser(name, help=helptext, add_help=False)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in PASSTHROUGH:
            return PASSTHROUGH[argv[0]](argv[1:])
        a = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if getattr(a, "verbose", False) else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return {"run": cmd_run, "demo": cmd_demo}[a.cmd](a)
    except EdgeAffectError as e:
        print(f"edgeaffect: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgeaffect: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the file system or a device refused: the user can fix that, it is not a bug
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"edgeaffect: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
