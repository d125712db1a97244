"""Model manifests: the contract between a converted .tflite file and the runtime.

A manifest (`<model>.json` beside `<model>.tflite`, schema `edgeaffect.manifest/1`) records
the file's sha256, every input/output tensor (name, shape, layout, dtype, quantisation) and,
crucially, the mapping from the source ONNX output index to the TFLite output tensor:
onnx2tf reorders outputs between float and int8 variants, so outputs are matched by name
(recorded at conversion from the tensor-name suffix), never by position. Post-processing
constants (e.g. the landmark mean shape) travel in `metadata`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError

SCHEMA = "edgeaffect.manifest/1"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class TensorSpec:
    name: str  # logical name (the ONNX tensor name)
    tflite_name: str  # tensor name inside the .tflite file
    shape: list[int]
    dtype: str  # numpy dtype name: float32, int8, uint8, float16, int16
    layout: str = ""  # NHWC, NTF (batch, time, features), NC ...
    scale: float = 0.0  # quantisation (0.0 = not quantised)
    zero_point: int = 0
    onnx_index: int | None = None  # output position in the source ONNX graph

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


@dataclass
class Manifest:
    name: str
    kind: str  # landmarks | au | temporal | detector | generic
    variant: str  # float32 | float16 | dynamic_range | int8 | int8_io ...
    file: str
    sha256: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # source ONNX/tflite and its sha256
    converter: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)
    macs: int | None = None
    params: int | None = None
    schema: str = SCHEMA
    path: Path | None = None  # where it was loaded from (not serialised)

    def output(self, name: str) -> TensorSpec:
        for o in self.outputs:
            if o.name == name:
                return o
        raise ModelError(f"{self.file}: manifest has no output named {name!r} (has {[o.name for o in self.outputs]})")

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("path", None)
        return json.dumps(d, indent=1, sort_keys=False)

    def write(self, path: str | Path) -> None:
        """Atomic write: a crash never leaves a half-written manifest."""
        p = Path(path)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(p)

    @property
    def tflite_path(self) -> Path:
        base = self.path.parent if self.path else Path(".")
        return base / self.file


def _spec(d: dict[str, Any], where: str) -> TensorSpec:
    try:
        return TensorSpec(**d)
    except TypeError as e:
        raise ModelError(f"{where}: malformed tensor entry ({e})") from None


def load_manifest(path: str | Path) -> Manifest:
    """Load and structurally validate a manifest (`x.json`, or the `x.tflite` beside it)."""
    p = Path(path)
    if p.suffix == ".tflite":
        p = p.with_suffix(".json")
    if not p.exists():
        raise ModelError(f"manifest {p} not found: every model needs its manifest (written by `edgeaffect convert`)")
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"manifest {p} is not valid JSON ({e})") from None
    if d.get("schema") != SCHEMA:
        raise ModelError(f"manifest {p}: schema {d.get('schema')!r}, expected {SCHEMA!r}")
    try:
        m = Manifest(
            **{k: v for k, v in d.items() if k not in ("inputs", "outputs")},
            inputs=[_spec(t, str(p)) for t in d["inputs"]],
            outputs=[_spec(t, str(p)) for t in d["outputs"]],
        )
    except (TypeError, KeyError) as e:
        raise ModelError(f"manifest {p} is malformed ({e})") from None
    m.path = p
    return m
