"""Accelerator lint for a .tflite file: Edge TPU friendliness and XNNPACK coverage.

Device-safe: imports only numpy and edgeaffect.runtime (the LiteRT interpreter), so
`edgeaffect inspect` can lint on a Pi without the [convert] extra.

Edge TPU (static check, after coral.ai "TensorFlow models on the Edge TPU"): every op must
be int8/uint8 and in the supported-op list, and activation tensors may have more than 3
dimensions only if all but the 3 innermost are 1. The compiler maps ops in order and cuts
the graph at the FIRST op it cannot map: everything after it runs on the CPU, so we report
that op and how many ops precede it. A QUANTIZE on a graph input and a DEQUANTIZE on a graph
output (float-I/O int8 files) run on the CPU at the boundary without splitting. Op-specific
limits (e.g. Mean only over x/y, FullyConnected output 1-D) are not all modelled; the real
`edgetpu_compiler` is run when it is on PATH and is authoritative.

XNNPACK (measured, not guessed): the model is loaded with the default delegate and
`experimental_preserve_all_tensors`, which makes XNNPACK claim ops one by one; an op whose
outputs no DELEGATE node produces was refused by XNNPACK and runs on the reference kernels.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgeaffect.runtime.backends import ops_details

# coral.ai supported-operations table, as TFLite builtin op names.
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EXPAND_DIMS", "FULLY_CONNECTED", "GATHER", "HARD_SWISH", "L2_NORMALIZATION",
    "LOGISTIC", "UNIDIRECTIONAL_SEQUENCE_LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL",
    "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1",
    "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX",
    "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE",
    "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
})
_INT8 = ("int8", "uint8")


def _interpreter(path: Path, *, xnnpack: bool, preserve: bool):
    from edgeaffect.runtime.backends import load_backend

    be = load_backend()
    kw: dict[str, Any] = {"model_path": str(path)}
    if preserve:
        kw["experimental_preserve_all_tensors"] = True
    if not xnnpack and be.reference_resolver is not None:
        kw["experimental_op_resolver_type"] = be.reference_resolver
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = be.Interpreter(**kw)
    it.allocate_tensors()
    return it


def graph_ops(it) -> list[dict[str, Any]]:
    """The model's own ops (DELEGATE nodes added by a delegate are dropped), execution order."""
    tdet = {d["index"]: d for d in it.get_tensor_details()}
    ops = []
    for o in ops_details(it, delegates=False):
        ins = [int(t) for t in o["inputs"] if t >= 0]
        outs = [int(t) for t in o["outputs"] if t >= 0]
        ops.append({
            "index": int(o["index"]), "op": o["op_name"], "inputs": ins, "outputs": outs,
            "in_dtypes": [np.dtype(tdet[t]["dtype"]).name for t in ins],
            "out_dtypes": [np.dtype(tdet[t]["dtype"]).name for t in outs],
            "out_shapes": [[int(x) for x in tdet[t]["shape"]] for t in outs],
        })
    return ops


def _edgetpu_dims_ok(shape: list[int]) -> bool:
    return len(shape) <= 3 or all(d == 1 for d in shape[:-3])


def edgetpu_check(it, ops: list[dict[str, Any]]) -> dict[str, Any]:
    tdet = {d["index"]: d for d in it.get_tensor_details()}
    graph_in = {d["index"] for d in it.get_input_details()}
    graph_out = {d["index"] for d in it.get_output_details()}
    produced = {t for o in ops for t in o["outputs"]}
    activations = produced | graph_in
    first = None
    issues: list[dict[str, Any]] = []
    cpu_boundary = 0
    before_split = 0
    for pos, o in enumerate(ops):
        reasons = []
        if o["op"] not in EDGETPU_OPS:
            reasons.append("op not supported by the Edge TPU")
        act_in = [t for t in o["inputs"] if t in activations]
        act_dtypes = {np.dtype(tdet[t]["dtype"]).name for t in act_in + o["outputs"]}
        boundary = (o["op"] == "QUANTIZE" and all(t in graph_in for t in act_in)) or (
            o["op"] == "DEQUANTIZE" and all(t in graph_out for t in o["outputs"])
        )
        if boundary:
            cpu_boundary += 1
            continue
        non_int8 = sorted(d for d in act_dtypes if d not in _INT8)
        if non_int8:
            reasons.append(f"{'/'.join(non_int8)} tensors (needs full int8)")
        for t in act_in + o["outputs"]:
            shp = [int(x) for x in tdet[t]["shape"]]
            if not _edgetpu_dims_ok(shp):
                reasons.append(f"tensor {shp} has >3 non-unit dims")
                break
        if reasons:
            item = {"position": pos, "op": o["op"], "reasons": reasons}
            issues.append(item)
            if first is None:
                first = item
        elif first is None:
            before_split += 1
    n = len(ops) - cpu_boundary
    return {
        "friendly": first is None,
        "ops_total": n,
        "ops_before_split": before_split,
        "cpu_boundary_ops": cpu_boundary,
        "first_unsupported": first,
        "unsupported_ops": sorted({i["op"] for i in issues}),
        "issues": issues[:20],
        "note": "static check after the coral.ai op table; edgetpu_compiler is authoritative",
    }


def xnnpack_check(path: Path) -> dict[str, Any]:
    try:
        it = _interpreter(path, xnnpack=True, preserve=True)
    except (ValueError, RuntimeError) as e:
        return {"error": str(e).splitlines()[0]}
    raw = ops_details(it)
    delegated_outs = {int(t) for o in raw if o["op_name"] == "DELEGATE" for t in o["outputs"]}
    own = [o for o in raw if o["op_name"] != "DELEGATE"]
    refused: dict[str, int] = {}
    for o in own:
        outs = [int(t) for t in o["outputs"] if t >= 0]
        if not outs or not set(outs) <= delegated_outs:
            refused[o["op_name"]] = refused.get(o["op_name"], 0) + 1
    n_del = len(own) - sum(refused.values())
    try:  # partitions as they are at run time (without preserve, XNNPACK groups ops)
        it2 = _interpreter(path, xnnpack=True, preserve=False)
        partitions = sum(1 for o in ops_details(it2) if o["op_name"] == "DELEGATE")
    except (ValueError, RuntimeError):
        partitions = None
    return {"ops_total": len(own), "ops_delegated": n_del, "not_delegated": refused, "partitions": partitions}


def run_edgetpu_compiler(path: Path, timeout: float = 180) -> dict[str, Any]:
    exe = shutil.which("edgetpu_compiler")
    if exe is None:
        return {
            "available": False,
            "message": "edgetpu_compiler is not on PATH: Edge TPU result is the static check only "
            "(install edgetpu-compiler from the Coral apt repo, x86_64 Linux, to verify)",
        }
    with tempfile.TemporaryDirectory(prefix="edgetpu-") as d:
        try:
            p = subprocess.run([exe, "-s", "-o", d, str(path)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"available": True, "ok": False, "message": f"edgetpu_compiler timed out after {timeout:.0f} s"}
        out = (p.stdout or "") + (p.stderr or "")
        mapped = [ln.strip() for ln in out.splitlines() if "Mapped to Edge TPU" in ln or "not mapped" in ln.lower() or "not supported" in ln.lower()]
        return {"available": True, "ok": p.returncode == 0, "exit_code": p.returncode, "table": mapped[:40], "log_tail": out.strip().splitlines()[-8:]}


def lint_tflite(path: str | Path, *, run_compiler: bool = True) -> dict[str, Any]:
    """Lint one .tflite file; returns a JSON-able dict with a one-line `summary`."""
    path = Path(path)
    try:
        it = _interpreter(path, xnnpack=False, preserve=False)
    except (ValueError, RuntimeError) as e:
        msg = str(e).splitlines()[0]
        return {"file": path.name, "error": msg, "summary": f"interpreter cannot load the model ({msg})"}
    ops = graph_ops(it)
    hist: dict[str, int] = {}
    for o in ops:
        hist[o["op"]] = hist.get(o["op"], 0) + 1
    custom = sorted(k for k in hist if k in ("CUSTOM", "DELEGATE") or k.startswith("Flex"))
    etpu = edgetpu_check(it, ops)
    xnn = xnnpack_check(path)
    comp = run_edgetpu_compiler(path) if run_compiler else {"available": None, "message": "not run"}
    parts = []
    if etpu["friendly"]:
        parts.append(f"Edge TPU: friendly ({etpu['ops_total']} ops, static check)")
    else:
        f = etpu["first_unsupported"]
        parts.append(
            f"Edge TPU: splits at op #{f['position']} {f['op']} ({'; '.join(f['reasons'])}); "
            f"{etpu['ops_before_split']}/{etpu['ops_total']} ops before the split"
        )
    if "error" in xnn:
        parts.append(f"XNNPACK: {xnn['error']}")
    elif xnn["not_delegated"]:
        parts.append("XNNPACK refuses " + ", ".join(f"{k} x{v}" for k, v in sorted(xnn["not_delegated"].items()))
                     + f" ({xnn['ops_delegated']}/{xnn['ops_total']} delegated)")
    else:
        parts.append(f"XNNPACK: all {xnn['ops_total']} ops delegated ({xnn['partitions']} partition(s))")
    if custom:
        parts.append(f"custom/Flex ops {custom} need a special interpreter build")
    if comp.get("available") is False:
        parts.append("edgetpu_compiler not on PATH")
    elif comp.get("available"):
        parts.append(f"edgetpu_compiler {'ok' if comp.get('ok') else 'FAILED'}")
    return {
        "file": path.name, "ops_histogram": dict(sorted(hist.items(), key=lambda kv: -kv[1])), "custom_ops": custom,
        "edgetpu": etpu, "xnnpack": xnn, "edgetpu_compiler": comp, "summary": "; ".join(parts),
    }
