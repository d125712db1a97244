"""Entry points `edgeaffect convert` and `edgeaffect inspect` call (argv in, exit code out).

Exit codes: 0 ok, 1 fidelity gate failed (or inspect: manifest mismatch / FAIL), 2 bad input.
Importing this module is cheap: the conversion stack is imported inside `convert_main`.
"""

from __future__ import annotations

import argparse
import json
import sys

from edgeaffect.errors import EdgeAffectError

KINDS = ("landmarks", "au", "temporal", "detector", "eyes", "generic")


def _floats(s: str) -> tuple[float, float]:
    a, b = (float(x) for x in s.split(","))
    return a, b


def _kv(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or k not in KINDS:
            raise EdgeAffectError(f"--pipeline-model {it!r}: expected KIND=PATH.onnx with KIND in {', '.join(KINDS)}")
        out[k] = v
    return out


def convert_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgeaffect convert",
        description="ONNX -> float32/float16/dynamic-range/int8 TFLite with calibration, fidelity gate, manifests and lint.",
    )
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--kind", required=True, choices=KINDS, help="selects calibration preprocessing and the task metric of the gate")
    p.add_argument("--calib", required=True, help="video, folder of images, .npy or .npz (keys = input names)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--name", help="base file name (default: the ONNX file stem)")
    p.add_argument("--variants", default="float32,float16,dynamic_range,int8",
                   help="comma list of float32,float16,dynamic_range,int8,int8_io,int16x8 (default: %(default)s)")
    p.add_argument("--io", default="float", choices=("float", "int8", "both"),
                   help="I/O type of the int8 variant: float -> <name>_int8, int8 -> <name>_int8_io, both")
    p.add_argument("--input-shape", action="append", metavar="NAME:1,3,H,W", help="fix dynamic input dims (repeatable)")
    p.add_argument("--holdout", help="separate held-out source (default: split --calib)")
    p.add_argument("--holdout-fraction", type=float, default=0.2)
    p.add_argument("--min-calib", type=int, default=32, help="refuse fewer calibration samples than this (default 32)")
    p.add_argument("--max-samples", type=int, default=500, help="cap on samples drawn from the source")
    p.add_argument("--nir", action="store_true", help="NIR-like calibration variant (pipeline kinds)")
    p.add_argument("--pipeline-model", action="append", default=[], metavar="KIND=PATH.onnx",
                   help="float ONNX for another pipeline network used to produce the crops (e.g. detector=det.onnx); repeatable")
    p.add_argument("--models-dir", help="folder with the pipeline's shipped .tflite+.json (default: edgeaffect/models/assets)")
    p.add_argument("--pixel-range", type=_floats, default=(0.0, 1.0), metavar="LO,HI", help="generic image folders: input range")
    g = p.add_argument_group("gate (fidelity budget)")
    g.add_argument("--max-nme-delta", type=float, default=0.5, help="landmarks: mean NME delta, %% IOD (default 0.5)")
    g.add_argument("--min-au-icc", type=float, default=0.98, help="au: ICC(3,1) of every AU (default 0.98)")
    g.add_argument("--min-va-ccc", type=float, default=0.99, help="temporal: CCC of V and A (default 0.99)")
    g.add_argument("--min-snr", type=float, default=20.0, help="generic: SNR dB of every output (default 20; detectors use the anchor-level gate)")
    g.add_argument("--min-rank-corr", type=float, default=None, help="uncertainty Spearman gate (default: report only)")
    t = p.add_argument_group("toolchain")
    t.add_argument("--unroll-rnn", action="store_true", help="pass -eru to onnx2tf (GRU/LSTM to int8)")
    t.add_argument("--onnx2tf-arg", action="append", default=[], metavar="ARG", help="extra onnx2tf argument (repeatable)")
    t.add_argument("--timeout", type=float, default=1800)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-localise", action="store_true", help="skip per-layer localisation of failing variants")
    t.add_argument("--no-lint", action="store_true")
    t.add_argument("--report-name", default="fidelity_report", help="report file stem in --out (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """argparse without sys.exit: usage errors return 2, --help returns 0."""
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)


def convert_main(argv: list[str] | None = None) -> int:
    args = _parse(convert_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        from .api import convert
        from .fidelity import Budget
        from .onnx_checks import parse_input_shapes

        budget = Budget(nme_delta_pct=args.max_nme_delta, au_icc=args.min_au_icc, va_ccc=args.min_va_ccc,
                        min_snr_db=args.min_snr, min_rank_corr=args.min_rank_corr)
        res = convert(
            args.model, args.kind, args.calib, args.out,
            variants=[v.strip() for v in args.variants.split(",") if v.strip()], io=args.io, budget=budget,
            name=args.name, input_shapes=parse_input_shapes(args.input_shape), holdout=args.holdout,
            holdout_fraction=args.holdout_fraction, min_calib=args.min_calib, max_samples=args.max_samples,
            nir_variant=args.nir, pixel_range=args.pixel_range, pipeline_models=_kv(args.pipeline_model),
            models_dir=args.models_dir, localise_failures=not args.no_localise,
            lint=not args.no_lint, unroll_rnn=args.unroll_rnn, onnx2tf_args=args.onnx2tf_arg, timeout=args.timeout,
            threads=args.threads, seed=args.seed, report_name=args.report_name,
            log=None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True)),
        )
    except EdgeAffectError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2) or 2
    if args.json:
        print(json.dumps({"passed": res.passed, "files": {k: str(v) for k, v in res.files.items()},
                          "failures": res.failures, "report": str(res.report_json)}, indent=1))
    else:
        for v, f in res.files.items():
            st = res.report["variants"][v]["status"]
            print(f"{st:4s} {v:14s} {f}")
        print(f"report: {res.report_md}")
    if not res.passed:
        print(f"FAIL: the fidelity gate failed for {', '.join(res.failed_variants)} (moved to {res.out_dir / 'failed'}):", file=sys.stderr)
        for f in res.failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


def inspect_main(argv: list[str] | None = None) -> int:
    from .inspect_model import inspect_main as _main

    return _main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(convert_main())
