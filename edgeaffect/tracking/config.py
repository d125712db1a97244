"""The `[detection]` table of a device profile: how hard the tracker looks for faces it has not got.

Declared here, beside the tracker that reads it (edgeaffect.tracking.tracker.TrackerConfig);
`edgeaffect.device_run` copies it into AnalyzerOptions. Which detector file runs is `[models]
detector` ("short_range" | "full_range"); this table sizes the search around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..configspec import Reader, between, read_section, setting


@dataclass(frozen=True)
class DetectionConfig:
    small_faces: bool = setting(True, bool, doc="nothing found on the whole frame: look on square tiles too "
                                                "(every 10th such frame; AnalyzerOptions.detect_small_faces)")
    small_face_px: float | None = setting(None, float, between(8, 4096),
                                          doc="smallest face (frame pixels) the tiles are sized for; absent: the "
                                              "detector's default (full range 40, short range: tiles of the short side)")

    @classmethod
    def from_table(cls, r: Reader, table: Any, section: str = "detection") -> DetectionConfig:
        return cls(**read_section(r, table, section, cls))
