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

from .constants import AU_NAMES

SCHEMA_VERSION = "edgeaffect.frame/1"


def _r(x: float, nd: int = 3) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else round(x, nd)


@dataclass
class FaceResult:
    track_id: int
    valid: bool
    validity: float  # landmark net's face-validity probability
    source: str  # "detector" (found this frame) | "tracking" | "lost"
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

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "track_id": self.track_id,
            "valid": self.valid,
            "validity": _r(self.validity),
            "source": self.source,
            "box": None if self.box is None else [_r(v, 1) for v in self.box],
            "landmarks": None if self.landmarks is None else [[_r(x, 2), _r(y, 2)] for x, y in self.landmarks],
            "landmark_sigma": None if self.landmark_sigma is None else [_r(s, 3) for s in self.landmark_sigma],
            "aus": None if self.aus is None else {n: _r(v) for n, v in zip(AU_NAMES, self.aus)},
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

    def to_dict(self) -> dict[str, Any]:
        """The JSONL schema object (README "Output schema"): plain JSON types, `aus` as {AU01: ...}."""
        return {
            "schema": SCHEMA_VERSION,
            "frame_index": self.frame_index,
            "timestamp_ms": round(float(self.timestamp_ms), 3),
            "status": self.status,
            "message": self.message,
            "faces": [f.to_dict() for f in self.faces],
            "skipped": list(self.skipped),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }

    def to_json(self) -> str:
        """The line `results.jsonl` holds for this frame (no trailing newline)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)
