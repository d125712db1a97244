"""`edgeaffect inspect MODEL.tflite`: ops histogram, tensors, quantisation, manifest check, lint.

Device-safe: imports only numpy and edgeaffect.runtime (plus edgeaffect_converters.lint, same rule),
so it works on a Pi with just the runtime installed. The CLI calls `inspect_main(argv)`.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgeaffect.errors import EdgeAffectError, ModelError
from edgeaffect.runtime.backends import load_backend, ops_details
from edgeaffect.runtime.manifest import load_manifest, sha256_file
from edgeaffect.runtime.runner import check_tflite_file


def _quant(d: dict[str, Any]) -> dict[str, Any] | None:
    qp = d.get("quantization_parameters") or {}
    scales = np.asarray(qp.get("scales", []))
    zps = np.asarray(qp.get("zero_points", []))
    if scales.size == 0:
        return None
    if scales.size == 1:
        return {"scale": float(scales[0]), "zero_point": int(zps[0]) if zps.size else 0}
    return {"per_channel": int(scales.size), "axis": int(qp.get("quantized_dimension", 0)),
            "scale_range": [float(scales.min()), float(scales.max())]}


def inspect_tflite(path: str | Path, *, lint: bool = True, run_compiler: bool = True) -> dict[str, Any]:
    """Everything `inspect` reports, as a JSON-able dict. Raises ModelError for a non-TFLite file."""
    path = Path(path)
    check_tflite_file(path)
    be = load_backend()
    kw: dict[str, Any] = {"model_path": str(path)}
    if be.reference_resolver is not None:
        kw["experimental_op_resolver_type"] = be.reference_resolver
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = be.Interpreter(**kw)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"{path}: the interpreter rejected the model ({str(e).splitlines()[0]})") from None
    ops = ops_details(it, delegates=False)
    hist: dict[str, int] = {}
    for o in ops:
        hist[o["op_name"]] = hist.get(o["op_name"], 0) + 1

    def tinfo(d: dict[str, Any]) -> dict[str, Any]:
        return {"index": int(d["index"]), "name": d["name"], "shape": [int(x) for x in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name, "quant": _quant(d)}

    tensors = [tinfo(d) for d in it.get_tensor_details()]
    res: dict[str, Any] = {
        "file": str(path), "size_bytes": path.stat().st_size, "sha256": sha256_file(path),
        "backend": f"{be.name} {be.version}",
        "inputs": [tinfo(d) for d in it.get_input_details()],
        "outputs": [tinfo(d) for d in it.get_output_details()],
        "ops_total": len(ops), "ops_histogram": dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "tensors": tensors,
        "weights_dtypes": _weight_dtypes(tensors, ops),
    }
    res["manifest"] = check_manifest(path)
    if lint:
        from .lint import lint_tflite

        res["lint"] = lint_tflite(path, run_compiler=run_compiler)
    return res


def _weight_dtypes(tensors: list[dict[str, Any]], ops: list[dict[str, Any]]) -> dict[str, int]:
    produced = {int(t) for o in ops for t in o["outputs"]}
    out: dict[str, int] = {}
    for t in tensors:
        if t["index"] not in produced and len(t["shape"]) >= 1 and int(np.prod(t["shape"] or [1])) > 8:
            out[t["dtype"]] = out.get(t["dtype"], 0) + 1
    return out


def check_manifest(path: Path) -> dict[str, Any]:
    """Manifest beside the file: present? sha256 and I/O signature match? fidelity status."""
    mp = path.with_suffix(".json")
    if not mp.exists():
        return {"status": "MISSING", "message": f"no manifest {mp.name}: the runtime will refuse this file (convert it with `edgeaffect convert`)"}
    try:
        m = load_manifest(mp)
    except ModelError as e:
        return {"status": "INVALID", "message": str(e)}
    out: dict[str, Any] = {"file": mp.name, "name": m.name, "kind": m.kind, "variant": m.variant,
                           "fidelity": (m.fidelity or {}).get("status", "unknown"),
                           "first_large_error": (m.fidelity or {}).get("first_large_error"),
                           "calibration_samples": (m.calibration or {}).get("calibration_samples"),
                           "source": m.source, "macs": m.macs, "params": m.params}
    if Path(m.file).name != path.name:
        out.update(status="MISMATCH", message=f"manifest describes {m.file}, not {path.name}")
        return out
    try:
        from edgeaffect.runtime.runner import ModelRunner

        ModelRunner(m, allow_failed=True)  # checks sha256 and the I/O signature exactly as the runtime does
    except EdgeAffectError as e:
        out.update(status="MISMATCH", message=str(e))
        return out
    out.update(status="OK", message="sha256 and I/O signature match")
    out["io_names"] = {t.tflite_name: (t.name, t.onnx_index) for t in [*m.inputs, *m.outputs]}
    if out["fidelity"] == "FAIL":
        out["message"] += "; but the fidelity gate FAILED for this variant"
    return out


def format_inspection(r: dict[str, Any], all_tensors: bool = False) -> str:
    L = [f"{r['file']}  ({r['size_bytes'] / 1024:.1f} KB, sha256 {r['sha256'][:16]}…, {r['backend']})"]
    m = r["manifest"]
    L.append(f"manifest: {m['status']}: {m['message']}")
    if m.get("variant"):
        L.append(f"  {m['name']} kind={m['kind']} variant={m['variant']} fidelity={m['fidelity']}"
                 f" calib_samples={m.get('calibration_samples')} macs={m.get('macs')} params={m.get('params')}")
        if m.get("first_large_error"):
            L.append(f"  {m['first_large_error']}")

    def q(t: dict[str, Any]) -> str:
        qq = t["quant"]
        if not qq:
            return ""
        if "per_channel" in qq:
            return f" per-channel x{qq['per_channel']} (axis {qq['axis']})"
        return f" scale={qq['scale']:.6g} zp={qq['zero_point']}"

    for what in ("inputs", "outputs"):
        L.append(f"{what}:")
        for t in r[what]:
            onnx = m.get("io_names", {}).get(t["name"])
            tail = "" if onnx is None else f"  -> {onnx[0]}" + ("" if onnx[1] is None else f" (ONNX output {onnx[1]})")
            L.append(f"  {t['name']:32s} {str(t['shape']):18s} {t['dtype']}{q(t)}{tail}")
    L.append(f"ops ({r['ops_total']}): " + ", ".join(f"{k} x{v}" for k, v in r["ops_histogram"].items()))
    L.append("constant tensor dtypes: " + ", ".join(f"{k} x{v}" for k, v in r["weights_dtypes"].items()))
    if all_tensors:
        L.append(f"tensors ({len(r['tensors'])}):")
        for t in r["tensors"]:
            L.append(f"  {t['index']:4d} {t['name'][:60]:60s} {str(t['shape']):18s} {t['dtype']}{q(t)}")
    else:
        L.append(f"tensors: {len(r['tensors'])} (list them with --tensors)")
    if "lint" in r:
        L.append(f"lint: {r['lint']['summary']}")
        comp = r["lint"].get("edgetpu_compiler", {})
        if comp.get("message"):
            L.append(f"  {comp['message']}")
    return "\n".join(L)


def inspect_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edgeaffect inspect", description="Ops, tensors, quantisation, manifest check and accelerator lint of a .tflite file.")
    p.add_argument("model", nargs="+", help=".tflite file(s)")
    p.add_argument("--tensors", action="store_true", help="list every tensor")
    p.add_argument("--no-lint", action="store_true")
    p.add_argument("--no-compiler", action="store_true", help="do not run edgetpu_compiler even if on PATH")
    p.add_argument("--json", action="store_true")
    try:
        a = p.parse_args(argv)
    except SystemExit as e:  # usage error -> 2, --help -> 0, never sys.exit from a library call
        return int(e.code or 0)
    code = 0
    results = []
    for f in a.model:
        try:
            r = inspect_tflite(f, lint=not a.no_lint, run_compiler=not a.no_compiler)
        except EdgeAffectError as e:
            print(f"error: {e}", file=sys.stderr)
            code = 2
            continue
        if r["manifest"]["status"] in ("MISMATCH", "INVALID") or r["manifest"].get("fidelity") == "FAIL":
            code = max(code, 1)
        if a.json:
            if not a.tensors:
                r = {k: v for k, v in r.items() if k != "tensors"}
            results.append(r)
        else:
            print(format_inspection(r, all_tensors=a.tensors))
    if a.json:
        print(json.dumps(results if len(results) != 1 else results[0], indent=1, default=str))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(inspect_main())
