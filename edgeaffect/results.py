"""Per-frame result types: one FrameResult per frame, serialisable to one JSON line.

The schema is documented in README.md ("Output schema") and versioned by SCHEMA_VERSION;
the CSV writer flattens the same dictionaries, so JSONL and CSV carry the same numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .constants import AU_NAMES, EXPRESSIONS

SCHEMA_VERSION = "edgeaffect.frame/1"

try:  # optional (`pip install orjson`, the [fast] extra): ~10x faster encoding of a result line
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def json_line(d: dict[str, Any]) -> bytes:
    """One compact JSON line (with the newline) for a result dict. orjson when installed, else the
    stdlib; both give the same parsed values (number spelling may differ: 1e-05 vs 1e-5)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(d, option=_orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # something orjson does not take (e.g. non-str keys): the stdlib decides
            pass
    return (json.dumps(d, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _r(x: float, nd: int = 3) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else round(x, nd)


def _rl(a: np.ndarray, nd: int) -> list[Any]:
    """An array as nested lists rounded to `nd` decimals, None where not finite. Vectorised: one
    numpy round + tolist per array instead of a Python round per number (this runs on every frame)."""
    r = np.round(np.asarray(a, dtype=np.float64), nd)
    fin = np.isfinite(r)
    if fin.all():
        return r.tolist()
    o = r.astype(object)
    o[~fin] = None
    return o.tolist()


@dataclass
class FaceResult:
    track_id: int
    valid: bool
    validity: float  # landmark net's face-validity probability
    source: str  # "detector" (found this frame) | "tracking" | "turned_away" (not valid: beyond the landmark net's pose range)
    box: tuple[float, float, float, float] | None = None  # x, y, w, h (frame px)
    landmarks: np.ndarray | None = None  # [68, 2] frame px
    landmark_sigma: np.ndarray | None = None  # [68] frame px
    aus: np.ndarray | None = None  # [15] in [0, 5]
    valence: float | None = None
    arousal: float | None = None
    uncertainty: dict[str, float] | None = None  # epistemic, aleatoric, cumulative in [0, 1]
    head_pose: dict[str, float] | None = None  # yaw, pitch, roll (deg)
    eyes: dict[str, Any] | None = None
    detector_score: float | None = None
    expression: np.ndarray | None = None  # [7] probabilities in EXPRESSIONS order (sum 1); last: positional use keeps working

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "track_id": self.track_id,
            "valid": self.valid,
            "validity": _r(self.validity),
            "source": self.source,
            "box": None if self.box is None else [_r(v, 1) for v in self.box],
            "landmarks": None if self.landmarks is None else _rl(self.landmarks, 2),
            "landmark_sigma": None if self.landmark_sigma is None else _rl(self.landmark_sigma, 3),
            "aus": None if self.aus is None else dict(zip(AU_NAMES, _rl(self.aus, 3))),
            "expression": None if self.expression is None else dict(zip(EXPRESSIONS, _rl(self.expression, 4))),
            "valence": None if self.valence is None else _r(self.valence, 4),
            "arousal": None if self.arousal is None else _r(self.arousal, 4),
            "uncertainty": self.uncertainty,
            "head_pose": self.head_pose,
            "eyes": self.eyes,
            "detector_score": None if self.detector_score is None else _r(self.detector_score),
        }
        return d


@dataclass
class FrameResult:
    frame_index: int
    timestamp_ms: float
    faces: list[FaceResult] = field(default_factory=list)
    status: str = "ok"  # ok | no_face | bad_frame
    message: str | None = None  # why, for bad_frame
    skipped: list[str] = field(default_factory=list)  # stages skipped by rate control / degradation
    timings_ms: dict[str, float] = field(default_factory=dict)
    driver: Any = None  # edgeaffect.dms.DriverState with `run --dms` (else None)
    kiosk: Any = None  # edgeaffect.kiosk.KioskState with `run --kiosk` (else None)
    wall_utc: str | None = None  # ISO 8601 UTC wall clock when the frame arrived (information; order by timestamp_ms)

    def to_dict(self) -> dict[str, Any]:
        """The JSONL schema object (README "Output schema"): plain JSON types, `aus` as {AU01: ...}."""
        return {
            "schema": SCHEMA_VERSION,
            "frame_index": self.frame_index,
            "timestamp_ms": round(float(self.timestamp_ms), 3),
            "wall_utc": self.wall_utc,
            "status": self.status,
            "message": self.message,
            "faces": [f.to_dict() for f in self.faces],
            "skipped": list(self.skipped),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "driver": None if self.driver is None else self.driver.to_dict(),
            "kiosk": None if self.kiosk is None else self.kiosk.to_dict(),
        }

    def to_json(self) -> str:
        """The line `results.jsonl` holds for this frame (no trailing newline)."""
        return json_line(self.to_dict())[:-1].decode()  # the writer's encoder (orjson when installed)
