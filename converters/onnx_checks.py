"""ONNX-side checks and facts, run before any conversion is attempted.

Order matters: a user with a wrong file should learn it in a second, not after a two-minute
TensorFlow import. Every refusal is a one-line `OnnxModelError` naming the input, op or flag.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OnnxModelError, require

_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass
class OnnxInfo:
    """What the converter needs to know about a (shape-fixed) ONNX model."""

    path: Path  # the user's file
    model: Any  # onnx.ModelProto, shapes fixed, inputs renamed to safe names
    sha256: str
    input_names: list[str]  # original ONNX names
    safe_input_names: list[str]  # names used in the working copy (onnx2tf-safe)
    input_shapes: dict[str, list[int]]  # by original name
    output_names: list[str]
    output_shapes: dict[str, list[int]]
    metadata: dict[str, Any]
    op_types: dict[str, int]
    opset: int
    macs: int
    params: int
    fixed_shapes: dict[str, list[int]] = field(default_factory=dict)  # from --input-shape

    def save_working_copy(self, path: Path) -> Path:
        import onnx

        onnx.save(self.model, str(path))
        return path


def parse_metadata(props) -> dict[str, Any]:
    """metadata_props -> dict, JSON values parsed (the project stores e.g. mean_shape as JSON)."""
    out: dict[str, Any] = {}
    for p in props:
        v: Any = p.value
        with contextlib.suppress(json.JSONDecodeError, TypeError):
            v = json.loads(p.value)
        out[p.key] = v
    return out


def parse_input_shapes(specs: list[str] | None) -> dict[str, list[int]]:
    """`--input-shape image:1,1,96,96` (or `1,1,96,96` for a single-input model) -> {name: dims}."""
    out: dict[str, list[int]] = {}
    for s in specs or []:
        name, _, dims = s.rpartition(":")
        try:
            shape = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            raise OnnxModelError(f"--input-shape {s!r}: expected NAME:1,3,224,224") from None
        if not shape or any(d <= 0 for d in shape):
            raise OnnxModelError(f"--input-shape {s!r}: every dimension must be a positive integer")
        out[name] = shape
    return out


def _dims(vi) -> list[int | str | None]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _set_dims(vi, shape: list[int]) -> None:
    t = vi.type.tensor_type
    t.shape.ClearField("dim")
    for d in shape:
        t.shape.dim.add().dim_value = int(d)


def onnx2tf_supported_ops() -> set[str] | None:
    """ONNX op types onnx2tf has a converter module for (read from its package, no TF import)."""
    import importlib.util

    spec = importlib.util.find_spec("onnx2tf")
    if spec is None or not spec.submodule_search_locations:
        return None
    ops_dir = Path(list(spec.submodule_search_locations)[0]) / "ops"
    return {p.stem for p in ops_dir.glob("*.py") if p.stem[:1].isupper()}


def _numel(shape) -> int:
    return int(np.prod([int(d) for d in shape])) if shape else 1


_MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _evaluated_shapes(model) -> dict[str, list[int]]:
    """Every intermediate shape, by running the graph once on zeros (onnx's reference evaluator).

    Static inference cannot follow shapes through values computed at run time (a Pad whose
    pads come from ConstantOfShape/Concat/Slice, as PyTorch exports causal padding); running
    the small graph once can. Empty when the graph's inputs have free dimensions or it fails.
    """
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    init = {i.name for i in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        d = _dims(vi)
        if not d or not all(isinstance(x, int) and x > 0 for x in d):
            return {}
        elem = vi.type.tensor_type.elem_type
        dtype = helper.tensor_dtype_to_np_dtype(elem) if elem else np.float32
        feeds[vi.name] = np.zeros([int(x) for x in d], dtype=dtype)
    try:
        values = ReferenceEvaluator(model).run(None, feeds, intermediate=True)
    except Exception:  # noqa: BLE001 - best effort, like the static count
        return {}
    return {k: list(np.shape(v)) for k, v in values.items() if hasattr(v, "shape")}


def count_macs_params(model) -> tuple[int, int]:
    """Multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul and float parameter count."""
    import onnx

    try:  # intermediate shapes (e.g. after a computed Pad) are only known after inference
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - counting is best effort; the model itself is unchanged
        pass
    params = sum(_numel(i.dims) for i in model.graph.initializer if i.data_type in (1, 10, 11, 16))
    shapes: dict[str, list[int]] = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        d = _dims(vi)
        if d and all(isinstance(x, int) and x > 0 for x in d):
            shapes[vi.name] = [int(x) for x in d]
    for i in model.graph.initializer:
        shapes[i.name] = list(i.dims)
    if any(n.op_type in _MAC_OPS and n.output and n.output[0] not in shapes for n in model.graph.node):
        shapes.update(_evaluated_shapes(model))
    macs = 0
    for n in model.graph.node:
        out = shapes.get(n.output[0]) if n.output else None
        if out is None:
            continue
        if n.op_type == "Conv" and n.input[1] in shapes:
            w = shapes[n.input[1]]  # [Cout, Cin/g, k...]
            macs += _numel(out) * _numel(w[1:])
        elif n.op_type == "ConvTranspose" and n.input[0] in shapes and n.input[1] in shapes:
            w = shapes[n.input[1]]  # [Cin, Cout/g, k...]
            macs += _numel(shapes[n.input[0]]) * _numel(w[1:])
        elif n.op_type in ("Gemm", "MatMul") and n.input[0] in shapes:
            a = shapes[n.input[0]]
            k = a[-1]
            if n.op_type == "Gemm":
                for at in n.attribute:
                    if at.name == "transA" and onnx.helper.get_attribute_value(at):
                        k = a[0]
            macs += _numel(out) * int(k)
    return int(macs), int(params)


def load_onnx(path: str | Path, input_shapes: dict[str, list[int]] | None = None) -> OnnxInfo:
    """Load, validate and shape-fix an ONNX model; raises OnnxModelError with what to do."""
    require("onnx", "reading ONNX models")
    import onnx
    from google.protobuf.message import DecodeError

    from edgeaffect.runtime.manifest import sha256_file

    p = Path(path)
    if not p.exists():
        raise OnnxModelError(f"{p} not found: pass the path of an .onnx file")
    if p.is_dir():
        raise OnnxModelError(f"{p} is a directory: pass the path of an .onnx file")
    size = p.stat().st_size
    if size < 16:
        raise OnnxModelError(f"{p} is empty or truncated ({size} bytes): re-export the model with torch.onnx.export")
    try:
        model = onnx.load(str(p))
    except DecodeError:
        raise OnnxModelError(
            f"{p} is not a readable ONNX model (protobuf parse failed: truncated or not ONNX); re-export it with torch.onnx.export"
        ) from None
    except Exception as e:  # external data missing, etc.
        raise OnnxModelError(f"{p} cannot be loaded as ONNX ({str(e).splitlines()[0]}); re-export it") from None
    g = model.graph
    if not g.node or not g.output or model.ir_version <= 0:
        raise OnnxModelError(f"{p} is not an ONNX model (no graph nodes/outputs); pass the exported .onnx file")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise OnnxModelError(f"{p} fails the ONNX checker ({str(e).splitlines()[0][:200]}); the file may be truncated or hand-edited") from None

    init_names = {i.name for i in g.initializer}
    graph_inputs = [vi for vi in g.input if vi.name not in init_names]
    input_shapes = dict(input_shapes or {})
    if len(input_shapes) == 1 and "" in input_shapes:  # bare `--input-shape 1,1,96,96`
        if len(graph_inputs) != 1:
            raise OnnxModelError(f"{p} has {len(graph_inputs)} inputs: name them in --input-shape NAME:dims")
        input_shapes = {graph_inputs[0].name: input_shapes[""]}
    unknown = set(input_shapes) - {vi.name for vi in graph_inputs}
    if unknown:
        raise OnnxModelError(
            f"--input-shape names {sorted(unknown)} are not inputs of {p.name} (inputs: {[vi.name for vi in graph_inputs]})"
        )
    shapes: dict[str, list[int]] = {}
    for vi in graph_inputs:
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise OnnxModelError(
                f"input {vi.name!r} of {p.name} is {onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}; only float32 inputs are supported"
            )
        dims = _dims(vi)
        if vi.name in input_shapes:
            given = input_shapes[vi.name]
            if dims and len(dims) != len(given):
                raise OnnxModelError(f"--input-shape for {vi.name!r} has {len(given)} dims, the model's input has {len(dims)}")
            for a, b in zip(dims, given, strict=True):
                if isinstance(a, int) and a > 0 and a != b:
                    raise OnnxModelError(f"--input-shape for {vi.name!r}: dim {b} conflicts with the model's fixed {a}")
            _set_dims(vi, given)
            shapes[vi.name] = list(given)
            continue
        if not dims or any(not (isinstance(d, int) and d > 0) for d in dims):
            shown = [d if d else "?" for d in dims] if dims else "unknown rank"
            hint = ",".join(str(d) if isinstance(d, int) and d > 0 else ("1" if i == 0 else "?") for i, d in enumerate(dims)) or "1,..."
            raise OnnxModelError(
                f"input {vi.name!r} of {p.name} has dynamic/unknown dims {shown}: "
                f"give a fixed shape with --input-shape {vi.name}:{hint}"
            )
        shapes[vi.name] = [int(d) for d in dims]

    # op support, before anything slow
    bad_domain = sorted({f"{n.domain}::{n.op_type}" for n in g.node if n.domain not in ("", "ai.onnx")})
    if bad_domain:
        raise OnnxModelError(f"{p.name} uses custom-domain ops onnx2tf cannot convert: {', '.join(bad_domain)}; export with standard ONNX ops")
    supported = onnx2tf_supported_ops()
    op_types: dict[str, int] = {}
    for n in g.node:
        op_types[n.op_type] = op_types.get(n.op_type, 0) + 1
    if supported is not None:
        missing = sorted(set(op_types) - supported)
        if missing:
            raise OnnxModelError(
                f"{p.name} uses ops onnx2tf cannot convert: {', '.join(missing)}; replace them in the exporting code "
                "(or convert with litert-torch, see converters/README.md)"
            )

    # shape inference with the fixed inputs, then fixed output shapes
    for vi in list(g.value_info):
        g.value_info.remove(vi)
    for vo in g.output:  # drop stale (possibly dynamic) output dims; inference refills them
        vo.type.tensor_type.ClearField("shape")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:
        raise OnnxModelError(f"ONNX shape inference failed on {p.name} ({str(e).splitlines()[0][:200]})") from None
    g = model.graph
    out_shapes: dict[str, list[int]] = {}
    for vo in g.output:
        d = _dims(vo)
        out_shapes[vo.name] = [int(x) if isinstance(x, int) and x > 0 else -1 for x in d]

    # onnx2tf-safe input names in the working copy (e.g. torch's 'input.1' -> 'input_1')
    safe: list[str] = []
    taken = {vi.name for vi in g.input} | {o for n in g.node for o in n.output}
    for i, vi in enumerate(vi for vi in g.input if vi.name not in init_names):
        name = vi.name
        if not _SAFE_NAME.match(name):
            new = re.sub(r"[^A-Za-z0-9_]", "_", name)
            new = new if new[:1].isalpha() else f"input_{i}_{new}"
            while new in taken:
                new += "_"
            taken.add(new)
            for n in g.node:
                for k, x in enumerate(n.input):
                    if x == name:
                        n.input[k] = new
            vi.name = new
            name = new
        safe.append(name)

    macs, params = count_macs_params(model)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxInfo(
        path=p,
        model=model,
        sha256=sha256_file(p),
        input_names=list(shapes),
        safe_input_names=safe,
        input_shapes=shapes,
        output_names=[vo.name for vo in g.output],
        output_shapes=out_shapes,
        metadata=parse_metadata(model.metadata_props),
        op_types=op_types,
        opset=int(opset),
        macs=macs,
        params=params,
        fixed_shapes={k: list(v) for k, v in input_shapes.items()},
    )


def ort_session(model_or_path, *, threads: int = 1, optimize: bool = True):
    """An onnxruntime CPU session (the float reference)."""
    require("onnxruntime", "the float reference of the fidelity check")
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else str(model_or_path)
    try:
        return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise OnnxModelError(f"onnxruntime cannot run the model ({str(e).splitlines()[0][:200]})") from None
