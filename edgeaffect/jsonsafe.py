"""One conversion to strict JSON for everything the SDK serialises by hand (bench reports, MQTT
payloads): NaN/inf become null (strict JSON has no NaN, and `allow_nan=False` would raise),
numpy scalars become Python numbers, paths become strings, mapping keys become strings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def json_safe(o: Any, *, drop_private: bool = False) -> Any:
    """`o` made JSON-serialisable; with `drop_private`, mapping keys starting with `_` are left out
    (bench reports carry their own bookkeeping such as `_path` under such keys)."""
    if isinstance(o, dict):
        return {str(k): json_safe(v, drop_private=drop_private) for k, v in o.items()
                if not (drop_private and str(k).startswith("_"))}
    if isinstance(o, (list, tuple)):
        return [json_safe(v, drop_private=drop_private) for v in o]
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if hasattr(o, "item") and not isinstance(o, (str, bytes)):
        try:
            return json_safe(o.item(), drop_private=drop_private)
        except (TypeError, ValueError):
            return str(o)
    if isinstance(o, Path):
        return str(o)
    return o
