"""Reading post-processing constants from a manifest's metadata (JSON strings or values)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ModelError
from ..runtime.manifest import Manifest


def meta(manifest: Manifest, key: str, default: Any = None) -> Any:
    v = manifest.metadata.get(key, default)
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    if v is None and default is None:
        raise ModelError(f"{manifest.file}: manifest metadata lacks {key!r}; re-convert the model from its ONNX export")
    return v


def expect_kind(manifest: Manifest, kind: str) -> None:
    k = manifest.kind
    if k != kind:
        raise ModelError(f"{manifest.file} is a {k!r} model, but was given where a {kind!r} model is needed")
