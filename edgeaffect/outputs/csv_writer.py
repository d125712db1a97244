"""CSV output: one row per face per frame (a frame without faces still gets one row), the
same numbers as the JSONL (flattened: AUs as AU01..AU45, expression probabilities as
expr_neutral..expr_anger, landmarks as x0,y0..x67,y67)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..constants import AU_NAMES, EXPRESSIONS
from ..results import FrameResult
from ._safe import SafeAppender

_FRAME = ["frame_index", "timestamp_ms", "status"]
_FACE = [
    "track_id", "valid", "validity", "source", "box_x", "box_y", "box_w", "box_h",
    "valence", "arousal", "unc_epistemic", "unc_aleatoric", "unc_cumulative",
    "yaw", "pitch", "roll", "ear_left", "ear_right", "openness", "blink", "blinks_total", "perclos",
    "closed_prob_left", "closed_prob_right", "detector_score",
]


def csv_columns() -> list[str]:
    cols = _FRAME + _FACE + list(AU_NAMES) + [f"expr_{e}" for e in EXPRESSIONS]
    cols += [f"{a}{i}" for i in range(68) for a in ("x", "y")]
    cols += [f"sigma{i}" for i in range(68)]
    return cols


def _face_row(f: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {k: f.get(k) for k in ("track_id", "valid", "validity", "source", "valence", "arousal", "detector_score")}
    if f.get("box"):
        row.update(zip(("box_x", "box_y", "box_w", "box_h"), f["box"]))
    if f.get("uncertainty"):
        for k, v in f["uncertainty"].items():
            row[f"unc_{k}"] = v
    if f.get("head_pose"):
        row.update(f["head_pose"])
    if f.get("eyes"):
        row.update(f["eyes"])
    if f.get("aus"):
        row.update(f["aus"])
    if f.get("expression"):
        row.update({f"expr_{k}": v for k, v in f["expression"].items()})
    if f.get("landmarks"):
        for i, (x, y) in enumerate(f["landmarks"]):
            row[f"x{i}"], row[f"y{i}"] = x, y
    if f.get("landmark_sigma"):
        for i, s in enumerate(f["landmark_sigma"]):
            row[f"sigma{i}"] = s
    return row


class CsvWriter:
    def __init__(self, path: str | Path) -> None:
        self._out = SafeAppender(path)
        self.path = self._out.path
        self.columns = csv_columns()
        self._emit([dict(zip(self.columns, self.columns))])

    def _emit(self, rows: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="raise", lineterminator="\n")
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        self._out.append(buf.getvalue().encode())  # all rows of a frame in one write

    def write(self, result: FrameResult | dict[str, Any]) -> None:
        d = result.to_dict() if isinstance(result, FrameResult) else result
        base = {k: d[k] for k in _FRAME}
        rows = [{**base, **_face_row(f)} for f in d["faces"]] or [base]
        self._emit(rows)

    def close(self) -> None:
        self._out.close()


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
