"""The onnx2tf route: ONNX -> TF SavedModel -> TFLite variants, in an isolated subprocess.

Why a subprocess: onnx2tf imports TensorFlow (seconds, GBs), writes into its working
directory (the offline-trap sample file, SavedModel, .h5 weights) and calls sys.exit on
errors. Running it as `python -m onnx2tf` inside a throw-away directory keeps all of that
away from the caller and from the output directory.

What onnx2tf gives (1.29.24, `-oiqt -qt per-channel`) and how we name it:

    <stem>_float32.tflite                 -> float32
    <stem>_float16.tflite                 -> float16        (fp16 weights, fp32 compute)
    <stem>_dynamic_range_quant.tflite     -> dynamic_range  (int8 weights, float activations)
    <stem>_integer_quant.tflite           -> int8           (int8 weights+activations, float I/O)
    <stem>_full_integer_quant.tflite      -> int8_io        (int8 weights+activations, int8 I/O)
    <stem>_integer_quant_with_int16_act.tflite -> int16x8   (int8 weights, int16 activations)

Output tensors are named `PartitionedCall:N` (float32, float16, int8) or `Identity_N`
(dynamic range) and their ORDER differs between files, so outputs are never bound by
position. Measured on 1.29.24 with outputs named `logits, embedding, score` (unsorted):
- float32/float16: the signature_def keys are the ONNX output names and N follows the
  SORTED key order (embedding = :0, logits = :1): N is not the ONNX index here;
- int8 / int8_io / int16x8: signature keys `output_K` and N = K = the ONNX output index;
- dynamic range: no signature_def; `Identity`, `Identity_N`: N = the ONNX output index.
`output_binding` applies these rules per file (signature names first, then `output_K`,
then the suffix) and the converter verifies every binding by value against onnxruntime
(`fidelity.check_binding`), so a future onnx2tf that changes the rule fails loudly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeaffect.runtime.manifest import TensorSpec

from .calibration import CalibrationSet, layout_name
from .errors import ToolchainError

VARIANT_FILES = {
    "float32": "{stem}_float32.tflite",
    "float16": "{stem}_float16.tflite",
    "dynamic_range": "{stem}_dynamic_range_quant.tflite",
    "int8": "{stem}_integer_quant.tflite",
    "int8_io": "{stem}_full_integer_quant.tflite",
    "int16x8": "{stem}_integer_quant_with_int16_act.tflite",
}
QUANTISED = ("int8", "int8_io", "int16x8")
CALIBRATED = ("int8", "int8_io", "int16x8")
TRAP_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"

_OUT_SUFFIX = re.compile(r"(?:Stateful)?PartitionedCall(?:_\d+)?:(\d+)$")
_IDENTITY = re.compile(r"^Identity(?:_(\d+))?(?::0)?$")


def _zeros_literal(rank: int, channels: int, value: float) -> str:
    inner = "[" + ",".join([repr(float(value))] * channels) + "]"
    for _ in range(max(rank, 1) - 1):
        inner = "[" + inner + "]"
    return inner


def onnx2tf_command(
    onnx_file: Path,
    out_dir: Path,
    calib: CalibrationSet | None,
    safe_names: dict[str, str],
    keep_as_is: list[str],
    *,
    unroll_rnn: bool = False,
    extra: list[str] | tuple[str, ...] = (),
) -> tuple[list[str], dict[str, Path]]:
    """The onnx2tf command line and the calibration .npy files it needs (written by run_onnx2tf)."""
    cmd = [sys.executable, "-m", "onnx2tf", "-i", str(onnx_file), "-o", str(out_dir), "-odrqt"]
    files: dict[str, Path] = {}
    if calib is not None:
        cmd += ["-oiqt", "-qt", "per-channel"]
        for name, arr in calib.arrays.items():
            safe = safe_names[name]
            f = out_dir.parent / f"calib_{safe}.npy"
            files[name] = f
            rank, ch = arr.ndim, int(arr.shape[-1])
            cmd += ["-cind", safe, str(f), _zeros_literal(rank, ch, 0.0), _zeros_literal(rank, ch, 1.0)]
    for name in keep_as_is:
        cmd += ["-kat", safe_names[name]]
    if unroll_rnn:
        cmd += ["-eru"]
    cmd += list(extra)
    return cmd, files


def run_onnx2tf(
    onnx_file: Path,
    work: Path,
    calib: CalibrationSet | None,
    safe_names: dict[str, str],
    keep_as_is: list[str],
    *,
    unroll_rnn: bool = False,
    extra: list[str] | tuple[str, ...] = (),
    timeout: float = 1800,
    log=None,
) -> tuple[dict[str, Path], Path, list[str]]:
    """Run onnx2tf in `work`; returns ({variant: produced file}, log file, command)."""
    out_dir = work / "tf"
    cmd, files = onnx2tf_command(onnx_file, out_dir, calib, safe_names, keep_as_is, unroll_rnn=unroll_rnn, extra=extra)
    for name, f in files.items():
        np.save(f, calib.arrays[name].astype(np.float32))
    # Offline trap: onnx2tf downloads this sample for any 4-D 3-channel input unless it exists.
    np.save(work / TRAP_FILE, np.random.default_rng(0).uniform(0, 1, (20, 128, 128, 3)).astype(np.float32))
    env = dict(os.environ)
    # onnx2tf shells out to `onnxsim`: make the interpreter's own bin dir (venv) visible
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"})
    log_file = work / "onnx2tf.log"
    if log:
        log(f"onnx2tf: converting {onnx_file.name} (this imports TensorFlow; ~15 s for a tiny model)")
    try:
        with open(log_file, "w") as fh:
            proc = subprocess.run(cmd, cwd=work, stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"onnx2tf did not finish within {timeout:.0f} s: raise --timeout or simplify the model") from None
    stem = onnx_file.stem
    produced = {v: out_dir / pat.format(stem=stem) for v, pat in VARIANT_FILES.items()}
    produced = {v: p for v, p in produced.items() if p.exists() and p.stat().st_size > 0}
    if proc.returncode != 0 or "float32" not in produced:
        keep = Path(tempfile.gettempdir()) / f"edgeaffect-onnx2tf-{stem}.log"
        shutil.copyfile(log_file, keep)
        raise ToolchainError(f"onnx2tf failed (exit {proc.returncode}): {last_error(log_file)} (full log: {keep})")
    return produced, log_file, cmd


def last_error(log_file: Path) -> str:
    """The most telling line of an onnx2tf log, for a one-line error."""
    try:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in log_file.read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    for pat in ("ERROR:", "Error:", "error:", "Exception", "failed"):
        hits = [ln for ln in lines if pat in ln]
        if hits:
            return hits[-1][:300]
    tail = [ln for ln in lines if ln]
    return tail[-1][:300] if tail else "no output"


def output_index(tflite_name: str) -> int | None:
    m = _OUT_SUFFIX.search(tflite_name)
    if m:
        return int(m.group(1))
    m = _IDENTITY.match(tflite_name)
    if m:
        return int(m.group(1) or 0)
    return None


def _clean_input_name(n: str) -> str:
    n = n.split(":")[0]
    return n[len("serving_default_") :] if n.startswith("serving_default_") else n


def read_signature(tflite_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from edgeaffect.runtime.backends import load_backend

    it = load_backend().Interpreter(model_path=str(tflite_path))
    it.allocate_tensors()
    return it.get_input_details(), it.get_output_details()


def _spec(d: dict[str, Any], name: str, layout: str, onnx_index: int | None = None) -> TensorSpec:
    scale, zp = d["quantization"]
    return TensorSpec(
        name=name, tflite_name=d["name"], shape=[int(x) for x in d["shape"]], dtype=np.dtype(d["dtype"]).name,
        layout=layout, scale=float(scale), zero_point=int(zp), onnx_index=onnx_index,
    )


def _sanitise(n: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", n)


def output_binding(tflite_path: Path, output_names: list[str]) -> tuple[dict[str, str], str]:
    """{TFLite output tensor name: ONNX output name} for one file, and the rule used."""
    from edgeaffect.runtime.backends import load_backend

    it = load_backend().Interpreter(model_path=str(tflite_path))
    tname = {d["index"]: d["name"] for d in it.get_tensor_details()}
    out_names = [d["name"] for d in it.get_output_details()]
    try:
        sig = it._get_full_signature_list() or {}
    except Exception:
        sig = {}
    keys = next(iter(sig.values()), {}).get("outputs", {}) if sig else {}
    if keys and len(keys) == len(output_names):
        by_name: dict[str, str] = {}
        for key, tidx in keys.items():
            cands = [n for n in output_names if n == key] or [n for n in output_names if _sanitise(n) == _sanitise(key)]
            if len(cands) == 1:
                by_name[tname[int(tidx)]] = cands[0]
        if len(by_name) == len(output_names) and set(by_name.values()) == set(output_names):
            return by_name, "signature_def output names"
        by_k: dict[str, str] = {}
        for key, tidx in keys.items():
            m = re.fullmatch(r"output_(\d+)", key)
            if m and int(m.group(1)) < len(output_names):
                by_k[tname[int(tidx)]] = output_names[int(m.group(1))]
        if len(by_k) == len(output_names) and set(by_k.values()) == set(output_names):
            return by_k, "signature_def output_K = ONNX output K"
    by_suffix: dict[str, str] = {}
    for t in out_names:
        n = output_index(t)
        if n is None and len(out_names) == 1:
            n = 0
        if n is None or n >= len(output_names):
            raise ToolchainError(
                f"{tflite_path.name}: cannot bind TFLite output {t!r} to an ONNX output (no signature_def, no "
                "PartitionedCall:N / Identity_N name); refusing to guess by position"
            )
        by_suffix[t] = output_names[n]
    if set(by_suffix.values()) != set(output_names):
        raise ToolchainError(f"{tflite_path.name}: output names {out_names} do not bind one-to-one to ONNX outputs {output_names}")
    return by_suffix, "tensor-name suffix N = ONNX output N"


def map_io(tflite_path: Path, info, kind: str, keep_as_is: list[str]) -> tuple[list[TensorSpec], list[TensorSpec], str]:
    """Bind TFLite inputs/outputs to ONNX names (inputs by sanitised name, outputs by `output_binding`)."""
    ins, outs = read_signature(tflite_path)
    safe_to_onnx = dict(zip(info.safe_input_names, info.input_names, strict=True))
    in_specs: list[TensorSpec] = []
    if len(ins) != len(info.input_names):
        raise ToolchainError(f"{tflite_path.name} has {len(ins)} inputs, the ONNX model {len(info.input_names)}")
    for d in ins:
        clean = _clean_input_name(d["name"])
        onnx_name = safe_to_onnx.get(clean)
        if onnx_name is None and len(ins) == 1:
            onnx_name = info.input_names[0]
        if onnx_name is None:
            raise ToolchainError(f"{tflite_path.name}: cannot match TFLite input {d['name']!r} to an ONNX input {info.input_names}")
        channels_last = len(d["shape"]) == 4 and onnx_name not in keep_as_is
        in_specs.append(_spec(d, onnx_name, layout_name(list(d["shape"]), kind, channels_last)))
    order = {n: i for i, n in enumerate(info.input_names)}
    in_specs.sort(key=lambda s: order[s.name])
    binding, how = output_binding(tflite_path, info.output_names)
    out_specs: list[TensorSpec] = []
    for d in outs:
        onnx_name = binding[d["name"]]
        oshape = info.output_shapes.get(onnx_name, [])
        tshape = [int(x) for x in d["shape"]]
        cl = len(tshape) >= 3 and len(oshape) == len(tshape) and oshape != tshape and [oshape[0], *oshape[2:], oshape[1]] == tshape
        out_specs.append(_spec(d, onnx_name, layout_name(tshape, kind, cl), onnx_index=info.output_names.index(onnx_name)))
    out_specs.sort(key=lambda s: s.onnx_index)
    return in_specs, out_specs, how


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("onnx2tf", "tensorflow", "onnx", "onnxruntime", "ai-edge-litert", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out
