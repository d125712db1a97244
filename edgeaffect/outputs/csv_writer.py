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
from .segments import Sink

_FRAME = ["frame_index", "timestamp_ms", "wall_utc", "status"]
_FACE = [
    "track_id", "valid", "validity", "source", "box_x", "box_y", "box_w", "box_h",
    "valence", "arousal", "unc_epistemic", "unc_aleatoric", "unc_cumulative",
    "yaw", "pitch", "roll", "ear_left", "ear_right", "openness", "blink", "blinks_total", "perclos",
    "closed_prob_left", "closed_prob_right", "detector_score",
]


#: driver monitoring (`run --dms`, one driver per frame: on every row of the frame) and kiosk
#: (`run --kiosk`: people counts per frame, the visit's numbers on its face's row); empty without them
_DRIVER = [
    "drv_face_detected", "drv_face_prob", "drv_closed_prob_left", "drv_closed_prob_right", "drv_eye_closure",
    "drv_eyes_closed", "drv_yaw_std", "drv_pitch_std", "drv_gaze_zone", "drv_glance_s", "drv_off_road_s",
    "drv_poor_vision", "drv_camera_blocked", "drv_blinks", "drv_blink_rate", "drv_blink_mean_ms", "drv_perclos",
    "drv_long_blinks", "drv_microsleeps", "drv_drowsiness", "drv_distracted", "drv_distracted_types",
    "drv_face_not_seen_s", "drv_awareness", "drv_alert", "drv_calibrated", "drv_yaw_offset", "drv_pitch_offset",
]
_KIOSK = [
    "kiosk_people", "kiosk_attending", "kiosk_visits_total", "kiosk_visit_id", "kiosk_attending_now",
    "kiosk_dwell_s", "kiosk_visible_s", "kiosk_attention_s", "kiosk_attention_share", "kiosk_mean_valence", "kiosk_mean_arousal",
    "kiosk_top_expression",
]


def csv_columns() -> list[str]:
    cols = _FRAME + _FACE + list(AU_NAMES) + [f"expr_{e}" for e in EXPRESSIONS]
    cols += [f"{a}{i}" for i in range(68) for a in ("x", "y")]
    cols += [f"sigma{i}" for i in range(68)]
    return cols + _DRIVER + _KIOSK


def _driver_row(d: dict[str, Any] | None) -> dict[str, Any]:
    if not d:
        return {}
    e, std, bl, cal = d.get("eyes") or {}, d.get("head_pose_std") or {}, d.get("blinks") or {}, d.get("calibration") or {}
    return {
        "drv_face_detected": d.get("face_detected"), "drv_face_prob": d.get("face_prob"),
        "drv_closed_prob_left": e.get("closed_prob_left"), "drv_closed_prob_right": e.get("closed_prob_right"),
        "drv_eye_closure": e.get("closure"), "drv_eyes_closed": e.get("closed"), "drv_yaw_std": std.get("yaw"),
        "drv_pitch_std": std.get("pitch"), "drv_gaze_zone": d.get("gaze_zone"), "drv_glance_s": d.get("glance_s"),
        "drv_off_road_s": d.get("off_road_s"), "drv_poor_vision": ";".join(d.get("poor_vision") or []),
        "drv_camera_blocked": d.get("camera_blocked"), "drv_blinks": bl.get("count"), "drv_blink_rate": bl.get("rate_per_min"),
        "drv_blink_mean_ms": bl.get("mean_duration_ms"), "drv_perclos": d.get("perclos"), "drv_long_blinks": d.get("long_blinks"),
        "drv_microsleeps": d.get("microsleeps"), "drv_drowsiness": (d.get("drowsiness") or {}).get("level"),
        "drv_distracted": d.get("distracted"), "drv_distracted_types": ";".join(d.get("distracted_types") or []),
        "drv_face_not_seen_s": d.get("face_not_seen_s"), "drv_awareness": d.get("awareness"), "drv_alert": d.get("alert"),
        "drv_calibrated": cal.get("calibrated"), "drv_yaw_offset": cal.get("yaw_offset"), "drv_pitch_offset": cal.get("pitch_offset"),
    }


def _kiosk_rows(k: dict[str, Any] | None) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    if not k:
        return {}, {}
    base = {"kiosk_people": k.get("people"), "kiosk_attending": k.get("attending"), "kiosk_visits_total": k.get("visits_total")}
    per = {t["track_id"]: {"kiosk_visit_id": t.get("visit_id"), "kiosk_attending_now": t.get("attending"),
                           "kiosk_dwell_s": t.get("dwell_s"), "kiosk_visible_s": t.get("visible_s"),
                           "kiosk_attention_s": t.get("attention_s"), "kiosk_attention_share": t.get("attention_share"),
                           "kiosk_mean_valence": t.get("mean_valence"), "kiosk_mean_arousal": t.get("mean_arousal"),
                           "kiosk_top_expression": t.get("top_expression")}
           for t in k.get("tracks") or []}
    return base, per


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


def header_row(columns: list[str]) -> bytes:
    return (",".join(columns) + "\n").encode()


class CsvWriter:
    """One row per face per frame. Given a path it writes one file (column row first); given a
    rotating `Sink` the sink starts every segment with `header_row(csv_columns())` itself."""

    def __init__(self, path: str | Path | Sink, columns: list[str] | None = None) -> None:
        self.columns = columns or csv_columns()
        # one encoder for the run: a csv writer per frame left allocations behind (tracemalloc, soak_accel)
        self._buf = io.StringIO()
        self._dw = csv.DictWriter(self._buf, fieldnames=self.columns, extrasaction="raise", lineterminator="\n")
        if isinstance(path, (str, Path)):
            self._out: Sink = SafeAppender(path)
            self._out.append(header_row(self.columns))
        else:
            self._out = path
        self.path = self._out.path

    def _emit(self, rows: list[dict[str, Any]], frame_index: int | tuple[int, int] | None = None) -> None:
        self._buf.seek(0)
        self._buf.truncate()
        for r in rows:
            self._dw.writerow({k: ("" if v is None else v) for k, v in r.items()})
        self._out.append(self._buf.getvalue().encode(), frame_index)  # all rows of a frame in one write

    def write(self, result: FrameResult | dict[str, Any]) -> None:
        d = result.to_dict() if isinstance(result, FrameResult) else result
        kbase, kper = _kiosk_rows(d.get("kiosk"))
        base = {**{k: d[k] for k in _FRAME}, **_driver_row(d.get("driver")), **kbase}
        rows = [{**base, **_face_row(f), **kper.get(f["track_id"], {})} for f in d["faces"]] or [base]
        fi = d.get("frame_index")
        self._emit(rows, fi if isinstance(fi, int) else None)

    def write_row(self, row: dict[str, Any], frame_index: int | tuple[int, int] | None = None) -> None:
        """One flat row (e.g. a per-second summary) with this writer's columns."""
        self._emit([row], frame_index)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.close()


def read_csv(path: str | Path) -> list[dict[str, str]]:
    import gzip

    p = Path(path)
    with (gzip.open(p, "rt", newline="") if p.suffix == ".gz" else open(p, newline="")) as fh:
        return list(csv.DictReader(fh))
