"""Turn one TOML table into a frozen config dataclass, with the profile's error style.

The policy layers (driver monitoring, kiosk, telemetry) own their config dataclasses; a device
profile may carry a `[dms]`, `[kiosk]` or `[telemetry]` table that overrides their defaults.
Validation is strict like the rest of the profile: an unknown key (with a did-you-mean), a
wrong type or a value a field's check rejects raises ProfileError("<file>: section.key: reason").
This module imports nothing above `errors`, so any config module may use it.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_type_hints

from .errors import ProfileError

T = TypeVar("T")

#: field metadata key: a function value -> reason string (None when the value is fine)
CHECK = "check"


def positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def in_range(lo: float, hi: float) -> Callable[[float], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"


def one_of(*options: str) -> Callable[[str], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _accepts(hint: Any, v: Any) -> tuple[bool, Any]:
    """(ok, converted value) for the simple hints config fields use: float, int, bool, str, X | None."""
    text = str(hint)
    if v is None:
        return ("None" in text), None
    if isinstance(v, bool):
        return ("bool" in text), v
    if isinstance(v, int) and ("int" in text or "float" in text):
        return True, (float(v) if "int" not in text else v)
    if isinstance(v, float) and "float" in text:
        return True, v
    if isinstance(v, str) and "str" in text:
        return True, v
    return False, v


def from_table(cls: type[T], table: Mapping[str, Any] | None, where: str, section: str) -> T:
    """cls(**table) after checking every key and value; defaults fill the rest."""
    if table is None:
        return cls()
    if not isinstance(table, Mapping):
        raise ProfileError(f"{where}: {section}: must be a table ([{section}]), got {type(table).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    kw: dict[str, Any] = {}
    for k, v in table.items():
        if k not in fields:
            near = difflib.get_close_matches(k, list(fields), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ProfileError(f"{where}: {section}.{k}: unknown key{hint}")
        ok, val = _accepts(hints[k], v)
        if not ok:
            raise ProfileError(f"{where}: {section}.{k}: must be {hints[k]}, got {type(v).__name__} {v!r}")
        check = fields[k].metadata.get(CHECK)
        why = check(val) if (check and val is not None) else None
        if why:
            raise ProfileError(f"{where}: {section}.{k}: {why} (got {v!r})")
        kw[k] = val
    try:
        return cls(**kw)
    except ValueError as e:  # cross-field checks in the dataclass's __post_init__
        raise ProfileError(f"{where}: {section}: {e}") from None


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(key, default, doc) per field, for READMEs and `--help` text."""
    return [(f.name, f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(cls)]
