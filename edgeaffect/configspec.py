"""Declarative settings for the configuration dataclasses, and the reader that validates TOML tables.

A config dataclass (CameraConfig in capture/, SchedulerConfig in scheduler/ ...) declares
each key once, with its type, default and range::

    @dataclass(frozen=True)
    class SchedulerConfig:
        queue_size: int = setting(2, int, between(1, 4))  # frames waiting per stage

`read_section(reader, table, "scheduler", SchedulerConfig)` then rejects unknown keys (with a
did-you-mean), checks types and ranges, and builds the object; errors read
"<file>: <section.key>: <reason>". Rules that tie several keys together stay as a few lines
beside the dataclass that owns them. This module imports nothing else from edgeaffect.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ProfileError

Check = Callable[[Any], str | None]


def setting(default: Any, kind: type | tuple[type, ...], check: Check | None = None, doc: str = "") -> Any:
    """A dataclass field read from a config table: its default, accepted type(s), value check
    and (optionally) one line of documentation (see describe())."""
    return dataclasses.field(default=default, metadata={"kind": kind, "check": check, "doc": doc})


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(key, default, doc) of every setting of `cls`, for docs and their drift tests."""
    return [(name, f.default, f.metadata.get("doc", "")) for name, f in settings_of(cls).items()]


def positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def between(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"


def one_of(options: tuple[str, ...]) -> Check:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


class Reader:
    """Validates values of one file and says where: '<file>: section.key: reason'."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, reason: str) -> ProfileError:
        return ProfileError(f"{self.where}: {key}: {reason}")

    def table(self, d: Any, key: str) -> dict[str, Any]:
        if d is None:
            return {}
        if not isinstance(d, dict):
            raise self.fail(key, f"must be a table ([{key}]), got {type(d).__name__}")
        return d

    def known(self, d: Mapping[str, Any], prefix: str, allowed: tuple[str, ...] | list[str]) -> None:
        for k in d:
            if k not in allowed:
                near = difflib.get_close_matches(k, allowed, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f" (allowed: {', '.join(allowed)})"
                raise self.fail(f"{prefix}{k}", f"unknown key{hint}")

    def get(self, d: Mapping[str, Any], prefix: str, key: str, kind: type | tuple, default: Any = None,
            *, check: Check | None = None, required: bool = False) -> Any:
        if key not in d:
            if required:
                raise self.fail(prefix + key, "is required")
            return default
        v = d[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(prefix + key, f"must be {names}, got {type(v).__name__} {v!r}")
        if check is not None:
            why = check(v)
            if why:
                raise self.fail(prefix + key, f"{why} (got {v!r})")
        return v


def settings_of(cls: type) -> dict[str, dataclasses.Field]:
    """The fields of `cls` declared with setting() (in declaration order)."""
    return {f.name: f for f in dataclasses.fields(cls) if "kind" in f.metadata}


def read_section(r: Reader, table: Any, section: str, cls: type, *, nested: tuple[str, ...] = (),
                 defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate `table` against the settings of `cls`; returns the keyword arguments for `cls`.

    `nested`: keys that are sub-tables (read by the caller); `defaults`: per-file defaults
    that replace the declared ones (e.g. a default that depends on another key)."""
    d = r.table(table, section)
    specs = settings_of(cls)
    r.known(d, f"{section}.", tuple(specs) + nested)
    out: dict[str, Any] = {}
    for name, f in specs.items():
        default = (defaults or {}).get(name, f.default)
        out[name] = r.get(d, f"{section}.", name, f.metadata["kind"], default, check=f.metadata["check"])
    return out
