"""`convert()`: ONNX -> checked, calibrated, gated TFLite variants with manifests and reports.

Flow (each step fails fast with a one-line error that says what to do):
1. ONNX checks (edgeaffect_converters.onnx_checks): file, checker, static input shapes, op support.
2. Calibration (edgeaffect_converters.calibration): load the way the device sees it, validate, split
   into disjoint calibration / held-out sets.
3. onnx2tf in a subprocess in a temp dir (edgeaffect_converters.onnx2tf_route).
4. Each requested variant is staged with a manifest in a hidden staging dir beside --out,
   loaded through ModelRunner, compared to onnxruntime on the held-out set and gated
   (edgeaffect_converters.fidelity); failing variants are localised layer by layer and linted.
5. Files move into --out only at the end (os.replace per file, .tflite before its .json).
   Passing variants: <out>/<name>_<variant>.tflite + .json. Failing variants go to
   <out>/failed/ with `"fidelity": {"status": "FAIL"}` so a glob of <out>/*.tflite never
   picks up a model that broke the gate. A crash before step 5 leaves --out untouched.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeaffect.runtime.manifest import Manifest, load_manifest, sha256_file

from .calibration import KINDS, load_calibration, split_calibration
from .errors import ConvertError, require
from .fidelity import (
    Budget,
    VariantReport,
    output_errors,
    output_quant_steps,
    range_hints,
    snr_failures,
    task_metrics,
    to_onnx_layout,
    write_reports,
)

DEFAULT_VARIANTS = ("float32", "float16", "dynamic_range", "int8")
ALL_VARIANTS = ("float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8")

__all__ = ["convert", "Budget", "ConversionResult", "DEFAULT_VARIANTS", "ALL_VARIANTS"]


@dataclass
class ConversionResult:
    name: str
    out_dir: Path
    passed: bool
    files: dict[str, Path] = field(default_factory=dict)  # variant -> .tflite (failed ones under failed/)
    manifests: dict[str, Path] = field(default_factory=dict)
    failed_variants: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "int8: output x: ..." lines
    report_json: Path | None = None
    report_md: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def _resolve_variants(variants: Sequence[str], io: str) -> list[str]:
    if io not in ("float", "int8", "both"):
        raise ConvertError(f"--io {io!r}: choose float, int8 or both")
    out: list[str] = []
    for v in variants:
        if v not in ALL_VARIANTS:
            raise ConvertError(f"unknown variant {v!r}; choose from {', '.join(ALL_VARIANTS)}")
        if v == "int8":
            out += {"float": ["int8"], "int8": ["int8_io"], "both": ["int8", "int8_io"]}[io]
        else:
            out.append(v)
    return list(dict.fromkeys(out))


def _range(a: np.ndarray | None) -> list[float] | None:
    return None if a is None else [round(float(a.min()), 6), round(float(a.max()), 6)]


def _hint(rep: VariantReport, first: dict[str, Any], cal_desc: dict[str, Any], held) -> str | None:
    """What to try, from where and how the error appears."""
    if first.get("onnx_op") == "graph input":
        cr = cal_desc.get("value_range", {}).get(first.get("onnx_tensor"))
        hr = _range(held.arrays.get(first.get("onnx_tensor")))
        if cr and hr:
            span = max(cr[1] - cr[0], 1e-12)
            if hr[0] < cr[0] - 0.05 * span or hr[1] > cr[1] + 0.05 * span:
                return (f"the int8 input range does not cover the data (calibration range {cr}, held-out range {hr}): "
                        "calibrate on data like the device sees")
    if rep.variant in ("int8", "int8_io") and (rep.localisation or {}).get("pattern") == "gradual":
        return "try the int16x8 or dynamic_range variant, per-layer mixed precision, or quantisation-aware training"
    return None


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def convert(
    onnx_path: str | Path,
    kind: str,
    calib: str | Path | np.ndarray | dict[str, np.ndarray],
    out_dir: str | Path,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    io: str = "float",
    budget: Budget | None = None,
    *,
    name: str | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    holdout: str | Path | np.ndarray | dict[str, np.ndarray] | None = None,
    holdout_fraction: float = 0.2,
    min_calib: int = 32,
    max_samples: int = 500,
    nir_variant: bool = False,
    pixel_range: tuple[float, float] = (0.0, 1.0),
    pipeline_models: dict[str, str | Path] | None = None,
    models_dir: str | Path | None = None,
    localise_failures: bool = True,
    lint: bool = True,
    unroll_rnn: bool = False,
    onnx2tf_args: Sequence[str] = (),
    timeout: float = 1800,
    threads: int = 1,
    seed: int = 0,
    report_name: str = "fidelity_report",
    log: Callable[[str], None] | None = _stderr,
) -> ConversionResult:
    """Convert an ONNX model to gated TFLite variants in `out_dir` (see module docstring).

    `io` picks the int8 flavour: "float" -> `<name>_int8` (float I/O), "int8" -> `<name>_int8_io`
    (int8 I/O), "both". Returns a ConversionResult; `passed` is False when any variant breaks
    the gate. Raises ConvertError (or another EdgeAffectError) for bad input.
    """
    log = log or (lambda _m: None)
    budget = budget or Budget()
    if kind not in KINDS:
        raise ConvertError(f"unknown --kind {kind!r}; choose one of {', '.join(KINDS)}")
    wanted = _resolve_variants(variants, io)
    for mod, what in (("onnx", "reading ONNX"), ("onnxruntime", "the float reference"), ("onnx2tf", "conversion"), ("tensorflow", "conversion")):
        require(mod, what)

    from .fidelity import check_binding, localise, resolve_output_perms, run_onnx, run_tflite
    from .lint import lint_tflite
    from .onnx2tf_route import CALIBRATED, map_io, run_onnx2tf, tool_versions
    from .onnx_checks import load_onnx, ort_session

    onnx_path = Path(onnx_path)
    info = load_onnx(onnx_path, input_shapes)
    declared = info.metadata.get("edgeaffect.kind")
    if isinstance(declared, str) and declared in KINDS and declared != kind:
        raise ConvertError(f"{onnx_path.name} declares edgeaffect.kind={declared!r} in its metadata but --kind is {kind!r}: "
                           "pass the matching --kind (or fix the metadata)")
    name = name or onnx_path.stem
    safe = dict(zip(info.input_names, info.safe_input_names, strict=True))
    work = Path(tempfile.mkdtemp(prefix="edgeaffect-convert-"))
    try:
        # the model being converted produces its own crops while tracking (pipeline kinds), as
        # shape-fixed float ONNX; other pipeline networks come from pipeline_models / models_dir
        pipe = dict(pipeline_models or {})
        if kind in ("landmarks", "au", "temporal", "detector") and kind not in pipe:
            (work / "pipeline").mkdir()
            pipe[kind] = str(info.save_working_copy(work / "pipeline" / onnx_path.name))  # errors then name the user's file
        load = dict(kind=kind, onnx_shapes=info.input_shapes, safe_names=safe, max_samples=max_samples, nir_variant=nir_variant,
                    pixel_range=pixel_range, pipeline_models=pipe, models_dir=models_dir)
        cal_all = load_calibration(calib, **load)
        hold_set = load_calibration(holdout, **load) if holdout is not None else None
        cal, held = split_calibration(cal_all, holdout=hold_set, holdout_fraction=holdout_fraction, min_calib=min_calib, seed=seed)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    staging: Path | None = None
    try:
        cal_desc = dict(cal.description)
        if hold_set is not None:
            cal_desc.update(calibration_samples=cal.n, held_out_samples=held.n, split="separate held-out source",
                            held_out_source=hold_set.description.get("source"))
        log(f"calibration: {cal.n} samples, held out: {held.n} ({cal_desc.get('split')})")

        session = ort_session(info.model, threads=threads)
        ref = run_onnx(session, held.arrays, info)
        keep_as_is = [n for n, s in info.input_shapes.items() if len(s) != 4]

        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
        onnx_work = info.save_working_copy(work / f"{name}.onnx")
        need_calib = any(v in CALIBRATED for v in wanted)
        produced, log_file, cmd = run_onnx2tf(
            onnx_work, work, cal if need_calib else None, safe, keep_as_is,
            unroll_rnn=unroll_rnn, extra=onnx2tf_args, timeout=timeout, log=log,
        )
        missing = [v for v in wanted if v not in produced]
        if missing:
            from .onnx2tf_route import last_error

            raise ConvertError(f"onnx2tf produced no {', '.join(missing)} variant ({last_error(log_file)}); "
                               "drop it with --variants or see the onnx2tf log")
        versions = tool_versions()
        converter = {
            "route": "onnx2tf",
            **versions,
            "command": " ".join(["python", *cmd[1:]]).replace(str(work), "<tmp>"),
            "quantization": "per-channel int8 weights; int8 activations calibrated on the calibration split",
        }
        source = {
            "file": onnx_path.name, "sha256": info.sha256, "opset": info.opset,
            "input_shapes": info.input_shapes, "output_shapes": info.output_shapes,
            "fixed_input_shapes": info.fixed_shapes or None, "ops": info.op_types,
        }

        def stage(variant: str, src: Path) -> tuple[Path, Manifest]:
            tfl = staging / f"{name}_{variant}.tflite"
            shutil.copyfile(src, tfl)
            ins, outs, how = map_io(tfl, info, kind, keep_as_is)
            m = Manifest(
                name=name, kind=kind, variant=variant, file=tfl.name, sha256=sha256_file(tfl), inputs=ins, outputs=outs,
                metadata=dict(info.metadata), source=source,
                converter={**converter, "io": "int8" if variant == "int8_io" else ("int16" if variant == "int16x8" else "float"),
                           "output_binding": f"{how}; verified by value against onnxruntime"},
                calibration={**cal_desc, "used": variant in CALIBRATED},
                fidelity={"status": "PENDING"}, macs=info.macs, params=info.params,
            )
            mp = tfl.with_suffix(".json")
            m.write(mp)
            return mp, load_manifest(mp)

        # float32 reference first: it fixes each output's layout by value (shapes can be ambiguous)
        ref_mp, _ = stage("float32", produced["float32"])
        raw32, _ = run_tflite(ref_mp, held.arrays, threads)
        perms = resolve_output_perms(raw32, ref, info.output_names)
        if "float32" not in wanted:
            ref_mp.unlink()
            ref_mp.with_suffix(".tflite").unlink()

        reports: dict[str, VariantReport] = {}
        staged: dict[str, Path] = {}
        for v in wanted:
            mp, man = stage(v, produced[v]) if v != "float32" else (ref_mp, load_manifest(ref_mp))
            staged[v] = mp
            rep = VariantReport(variant=v, file=man.file, size_bytes=(staging / man.file).stat().st_size)
            raw, rep.latency_ms = run_tflite(mp, held.arrays, threads)
            check_binding(raw, ref, perms, v)
            got = {n: to_onnx_layout(raw[n], perms[n], list(ref[n].shape)) for n in info.output_names}
            rep.outputs = {n: output_errors(ref[n], got[n]) for n in info.output_names}
            rep.task, task_fails = task_metrics(kind, ref, got, info.metadata, budget)
            rep.failures = snr_failures(kind, rep.outputs, budget) + task_fails
            rep.status = "FAIL" if rep.failures else "PASS"
            bad_outputs = [n for n in info.output_names if any(f"output {n}:" in f for f in rep.failures)]
            rep.task["hints"] = []
            if rep.failures and v in ("int8", "int8_io", "int16x8"):
                by_tfl = {o.tflite_name: o.name for o in man.outputs}
                steps = {by_tfl[k]: val for k, val in output_quant_steps(staging / man.file).items() if k in by_tfl}
                rep.task["hints"] = range_hints(ref, bad_outputs, steps)
            log(f"{v}: {rep.status}" + (f" ({rep.failures[0]})" if rep.failures else ""))
            for h in rep.task["hints"]:
                log(f"{v}: hint: {h}")
            if rep.failures and localise_failures:
                try:
                    n_loc = min(held.n, 8)
                    rep.localisation = localise(info, staging / man.file, {k: a[:n_loc] for k, a in held.arrays.items()},
                                                [s.name for s in man.inputs], budget)
                    first = rep.localisation.get("first") or {}
                    hint = _hint(rep, first, cal_desc, held)
                    if hint:
                        rep.localisation["hint"] = hint
                        rep.localisation["message"] += f"; {hint}"
                    if rep.localisation.get("message"):
                        log(f"{v}: {rep.localisation['message']}")
                except Exception as e:  # localisation is a diagnosis aid; never mask the gate result
                    rep.localisation = {"message": None, "error": f"localisation failed: {str(e).splitlines()[0][:200]}"}
            if lint:
                rep.lint = lint_tflite(staging / man.file)
            reports[v] = rep

        passed = all(r.status == "PASS" for r in reports.values())
        report_file = f"{report_name}.json"
        report = {
            "schema": "edgeaffect.fidelity/1",
            "model": name, "kind": kind, "status": "PASS" if passed else "FAIL",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": source, "converter": converter, "calibration": cal_desc, "gate": budget.to_dict(),
            "output_layouts": {n: (p if isinstance(p, str) else list(map(int, p))) for n, p in perms.items()},
            "macs": info.macs, "params": info.params, "metadata_keys": sorted(info.metadata),
            "variants": {v: {k: val for k, val in r.__dict__.items()} for v, r in reports.items()},
        }
        for v, r in reports.items():
            man = load_manifest(staged[v])
            man.fidelity = r.summary(held.n, budget, report_file)
            man.write(staged[v])
        write_reports(staging / report_file, staging / f"{report_name}.md", report)

        # ---- move into place (the only step that touches out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        failed_dir = out_dir / "failed"
        for v in wanted:  # stale files of the variants being replaced
            for d in (out_dir, failed_dir):
                for ext in (".json", ".tflite"):
                    (d / f"{name}_{v}{ext}").unlink(missing_ok=True)
        res = ConversionResult(name=name, out_dir=out_dir, passed=passed, report=report)
        for v, r in reports.items():
            dest = out_dir if r.status == "PASS" else failed_dir
            dest.mkdir(exist_ok=True)
            tfl = staged[v].with_suffix(".tflite")
            os.replace(tfl, dest / tfl.name)
            os.replace(staged[v], dest / staged[v].name)
            res.files[v] = dest / tfl.name
            res.manifests[v] = dest / staged[v].name
            if r.status != "PASS":
                res.failed_variants.append(v)
                loc = (r.localisation or {}).get("message")
                res.failures += [f"{v}: {f}" for f in r.failures] + ([f"{v}: {loc}"] if loc else [])
                res.failures += [f"{v}: hint: {h}" for h in r.task.get("hints", [])]
        for f in (report_file, f"{report_name}.md"):
            os.replace(staging / f, out_dir / f)
        res.report_json, res.report_md = out_dir / report_file, out_dir / f"{report_name}.md"
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

