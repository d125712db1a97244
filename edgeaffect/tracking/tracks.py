"""Per-person state kept across frames, and one tracked face of one frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models.landmarks import LandmarkResult
from ..vision.alignment import FaceWindow
from ..vision.eyes import EyeStateTracker


@dataclass
class Track:
    """One person: a stable id, the last landmarks, and the per-person temporal state the
    later stages keep (eye baseline, AU hold, affect window and estimate)."""

    id: int
    landmarks: LandmarkResult | None = None
    affect_window: Any = None  # models.affect.AffectWindow, owned by the affect stage
    eyes: EyeStateTracker = field(default_factory=EyeStateTracker)
    lost: int = 0  # consecutive frames without a face (0 = seen this frame)
    turned: int = 0  # consecutive frames turned away: the face is there, beyond the network's pose range
    last_box: tuple[float, float, float, float] | None = None
    window: FaceWindow | None = None  # the (snapped) landmark window last used with a valid result
    au_matrix: np.ndarray | None = None  # the AU alignment last used (held while the face is still)
    aus: np.ndarray | None = None
    expression: np.ndarray | None = None  # expression probabilities of the last AU run (EXPRESSIONS order)
    affect: Any = None  # models.affect.AffectEstimate


@dataclass
class TrackedFace:
    """One track on one frame: found (valid, from `detector` or `tracking`), `turned_away` (not
    valid: a face the landmark net says is there but cannot fit, e.g. a full profile) or `lost`."""

    track: Track
    valid: bool
    source: str  # "detector" | "tracking" | "turned_away" | "lost"
    lm: LandmarkResult | None = None
    detector_score: float | None = None
    face: Any = None  # results.FaceResult, filled by the analyzer
    au_matrix: np.ndarray | None = None  # 112-px 5-point alignment, shared by the AU and affect stages
