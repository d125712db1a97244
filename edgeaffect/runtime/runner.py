"""ModelRunner: a manifest-checked TFLite interpreter with float in, float out.

Why a wrapper: the pipeline must never run a file it was not built for. Before the first
inference the runner checks the file's sha256 against the manifest and the interpreter's
actual input/output tensors against the manifest's signature, then binds outputs by
tensor name. Quantisation is applied from the tensor's own parameters, so int8-I/O and
float-I/O variants are interchangeable for the caller.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .backends import InterpreterBackend, load_backend
from .manifest import Manifest, load_manifest

TFLITE_MAGIC = b"TFL3"


def _flatbuffer_buffers_in_bounds(blob: bytes) -> bool:
    """Walk Model.buffers (schema.fbs field 4) and check every buffer lies inside the file.

    The TFLite interpreter trusts the flatbuffer: a truncated file whose checksum was not
    verified makes it read past the end and crash the process (seen with ai-edge-litert
    2.1). Truncation always cuts the weight buffers, which sit at the end of the file, so
    this small bounds walk turns that crash into a ModelError.
    """
    n = len(blob)

    def u32(pos: int) -> int:
        if pos < 0 or pos + 4 > n:
            raise IndexError(pos)
        return int.from_bytes(blob[pos : pos + 4], "little")

    def field(table: int, index: int) -> int | None:
        vt = table - int.from_bytes(blob[table : table + 4], "little", signed=True)
        if vt < 0 or vt + 4 > n:
            raise IndexError(vt)
        vt_len = int.from_bytes(blob[vt : vt + 2], "little")
        slot = 4 + 2 * index
        if slot + 2 > vt_len:
            return None
        off = int.from_bytes(blob[vt + slot : vt + slot + 2], "little")
        return table + off if off else None

    try:
        root = u32(0)
        f = field(root, 4)
        if f is None:
            return True
        vec = f + u32(f)
        count = u32(vec)
        if vec + 4 + 4 * count > n:
            return False
        for i in range(count):
            entry = vec + 4 + 4 * i
            buf = entry + u32(entry)
            d = field(buf, 0)
            if d is not None:
                data = d + u32(d)
                if data + 4 + u32(data) > n:
                    return False
            o, sz = field(buf, 1), field(buf, 2)
            if o is not None and sz is not None:
                end = int.from_bytes(blob[o : o + 8], "little") + int.from_bytes(blob[sz : sz + 8], "little")
                if end > n:
                    return False
        return True
    except IndexError:
        return False


def check_tflite_file(path: Path) -> bytes:
    """Existence, TFLite identifier and buffer bounds; returns the file's bytes (read once)."""
    if not path.exists():
        raise ModelError(f"model file {path} not found")
    size = path.stat().st_size
    if size < 16:
        raise ModelError(f"model file {path} is truncated ({size} bytes)")
    blob = path.read_bytes()
    if blob[4:8] != TFLITE_MAGIC:
        raise ModelError(f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier); was it converted with `edgeaffect convert`?")
    if not _flatbuffer_buffers_in_bounds(blob):
        raise ModelError(f"model file {path} is truncated or corrupt (its weight buffers point past the end of the file)")
    return blob


class ModelRunner:
    def __init__(
        self,
        model: str | Path | Manifest,
        *,
        num_threads: int = 1,
        backend: InterpreterBackend | None = None,
        delegates: list[Any] | None = None,
        verify_sha256: bool = True,
        use_xnnpack: bool = True,
        allow_failed: bool = False,
    ) -> None:
        self.manifest = model if isinstance(model, Manifest) else load_manifest(model)
        fid = self.manifest.fidelity or {}
        if fid.get("status") == "FAIL" and not allow_failed:
            first = (fid.get("failures") or ["see its fidelity_report"])[0]
            raise ModelError(
                f"{self.manifest.file} failed the fidelity gate at conversion ({first}); re-convert it, "
                "or pass allow_failed=True to debug it"
            )
        path = self.manifest.tflite_path
        blob = check_tflite_file(path)
        if verify_sha256:
            actual = hashlib.sha256(blob).hexdigest()
            if actual != self.manifest.sha256:
                raise ModelError(
                    f"{path}: sha256 {actual[:12]}... does not match its manifest ({self.manifest.sha256[:12]}...); "
                    "the file was replaced or corrupted"
                )
        self.backend = backend or load_backend()
        self.num_threads = num_threads
        self.delegates = list(delegates or [])
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": num_threads}
        if self.delegates:
            kwargs["experimental_delegates"] = self.delegates
        elif not use_xnnpack and self.backend.reference_resolver is not None:
            kwargs["experimental_op_resolver_type"] = self.backend.reference_resolver
        try:
            self.interpreter = self.backend.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: the interpreter rejected the model ({str(e).splitlines()[0]})") from None
        self.init_ms = (time.perf_counter() - t0) * 1000
        self._bind()

    def _bind(self) -> None:
        m = self.manifest
        ins = {d["name"]: d for d in self.interpreter.get_input_details()}
        outs = {d["name"]: d for d in self.interpreter.get_output_details()}
        self._in: list[tuple[dict, Any]] = []
        for spec in m.inputs:
            d = ins.get(spec.tflite_name)
            if d is None:
                raise ModelError(f"{m.file}: input {spec.tflite_name!r} from the manifest is not in the model (has {list(ins)})")
            self._check(spec, d, "input")
            self._in.append((d, spec))
        self._out: dict[str, dict] = {}
        for spec in m.outputs:
            d = outs.get(spec.tflite_name)
            if d is None:
                raise ModelError(f"{m.file}: output {spec.tflite_name!r} from the manifest is not in the model (has {list(outs)})")
            self._check(spec, d, "output")
            self._out[spec.name] = d
        self._plan()

    def _check(self, spec, d: dict, what: str) -> None:
        shape = [int(v) for v in d["shape"]]
        if shape != list(spec.shape):
            raise ModelError(f"{self.manifest.file}: {what} {spec.name} has shape {shape}, manifest says {spec.shape}")
        if np.dtype(d["dtype"]).name != spec.dtype:
            raise ModelError(f"{self.manifest.file}: {what} {spec.name} is {np.dtype(d['dtype']).name}, manifest says {spec.dtype}")

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(s.shape) for _, s in self._in]

    def _plan(self) -> None:
        """Per-tensor constants for run(), computed once (run() is on every frame's path)."""
        q = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
        self._in_plan = []
        for d, spec in self._in:
            dt = np.dtype(d["dtype"])
            scale, zp = d["quantization"]
            quant = dt in q and bool(scale)
            info = np.iinfo(dt) if quant else None
            self._in_plan.append((d["index"], tuple(spec.shape), spec.name, dt, quant, scale, zp,
                                  info.min if info else 0, info.max if info else 0))
        self._out_plan = []
        for name, d in self._out.items():
            scale, zp = d["quantization"]
            self._out_plan.append((name, d["index"], bool(scale) and np.dtype(d["dtype"]) in q, scale, zp))

    def run(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run on float inputs (already in the model's layout/normalisation); float outputs by name."""
        plan = self._in_plan
        if len(inputs) != len(plan):
            raise ModelError(f"{self.manifest.file}: expected {len(plan)} inputs, got {len(inputs)}")
        it = self.interpreter
        for x, (index, shape, name, dt, quant, scale, zp, lo, hi) in zip(inputs, plan):
            x = np.asarray(x)
            if x.shape != shape:
                raise ModelError(f"{self.manifest.file}: input {name} must have shape {list(shape)}, got {list(x.shape)}")
            if quant:
                # == np.clip(np.round(x / scale + zp), lo, hi).astype(dt), with one temporary
                t = x / scale
                t += zp
                np.rint(t, out=t)
                np.clip(t, lo, hi, out=t)
                x = t.astype(dt)
            else:
                x = x.astype(dt, copy=False)
            it.set_tensor(index, x)
        it.invoke()
        res = {}
        for name, index, deq, scale, zp in self._out_plan:
            y = it.get_tensor(index)
            if deq:
                y = y.astype(np.float32)
                y -= zp
                y *= scale
            res[name] = y.astype(np.float32, copy=False)
        return res
