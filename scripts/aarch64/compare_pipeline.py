"""Compare two `edgeaffect run` outputs (x86_64 vs emulated aarch64) frame by frame.

    compare_pipeline.py X86/results.jsonl AARCH64/results.jsonl [--label cortex-a72] [--json OUT.json]

Goals (issue 13): on every frame the same number of faces and of valid faces; for faces
listed on both sides (paired by track id), landmarks within LM_TOL px, AUs within AU_TOL,
valence/arousal within VA_TOL. Prints one summary line ending in PASS or FAIL and exits 1
on FAIL. Only the standard library and numpy: runs anywhere the runtime runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

LM_TOL = 1.0  # px
AU_TOL = 0.05  # AU intensity units (0..5)
VA_TOL = 0.02  # valence / arousal units (-1..1)


def _rows(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def _maxdiff(a: Any, b: Any) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return float("inf")
    if isinstance(a, dict):
        return max((_maxdiff(a[k], b.get(k)) for k in a), default=0.0)
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0


def compare(x86: list[dict[str, Any]], arm: list[dict[str, Any]]) -> dict[str, Any]:
    frames = min(len(x86), len(arm))
    count_bad, valid_bad, id_bad = [], [], []
    worst = {"landmarks_px": 0.0, "aus": 0.0, "va": 0.0}
    worst_frame: dict[str, int | None] = {k: None for k in worst}
    over = {k: 0 for k in worst}
    pairs = 0
    for a, b in zip(x86[:frames], arm[:frames]):
        i = a["frame_index"]
        fa, fb = a["faces"], b["faces"]
        if len(fa) != len(fb):
            count_bad.append(i)
        if sum(f["valid"] for f in fa) != sum(f["valid"] for f in fb):
            valid_bad.append(i)
        bb = {f["track_id"]: f for f in fb}
        if {f["track_id"] for f in fa} != set(bb):
            id_bad.append(i)
        for f in fa:
            g = bb.get(f["track_id"])
            if g is None:
                continue
            pairs += 1
            d = {"landmarks_px": _maxdiff(f["landmarks"], g["landmarks"]), "aus": _maxdiff(f["aus"], g["aus"]),
                 "va": max(_maxdiff(f["valence"], g["valence"]), _maxdiff(f["arousal"], g["arousal"]))}
            for k, v in d.items():
                if v > worst[k]:
                    worst[k], worst_frame[k] = v, i
                over[k] += v > {"landmarks_px": LM_TOL, "aus": AU_TOL, "va": VA_TOL}[k]
    ok = (len(x86) == len(arm) and not count_bad and not valid_bad
          and worst["landmarks_px"] <= LM_TOL and worst["aus"] <= AU_TOL and worst["va"] <= VA_TOL)
    return {"pass": ok, "frames": frames, "frames_x86": len(x86), "frames_aarch64": len(arm), "face_pairs": pairs,
            "frames_face_count_differs": count_bad, "frames_valid_count_differs": valid_bad, "frames_track_ids_differ": id_bad,
            "max_diff": {k: (None if v == float("inf") else round(v, 4)) for k, v in worst.items()}, "worst_frame": worst_frame,
            "face_pairs_over_tolerance": over, "tolerance": {"landmarks_px": LM_TOL, "aus": AU_TOL, "va": VA_TOL}}


def line(r: dict[str, Any], label: str) -> str:
    m, t = r["max_diff"], r["tolerance"]
    return (f"pipeline x86_64 vs aarch64 {label}: {r['frames']} frames, {r['face_pairs']} face pairs; "
            f"face count differs on {len(r['frames_face_count_differs'])} frames, valid count on "
            f"{len(r['frames_valid_count_differs'])}, track ids on {len(r['frames_track_ids_differ'])}; "
            f"max |diff| landmarks {m['landmarks_px']} px (<= {t['landmarks_px']}), AUs {m['aus']} (<= {t['aus']}), "
            f"V/A {m['va']} (<= {t['va']}) -> {'PASS' if r['pass'] else 'FAIL'}")


def main(argv: list[str]) -> int:
    label, out = "", None
    for flag in ("--label", "--json"):
        if flag in argv:
            i = argv.index(flag)
            if flag == "--label":
                label = argv[i + 1]
            else:
                out = argv[i + 1]
            argv = argv[:i] + argv[i + 2:]
    if len(argv) != 2:
        print("usage: compare_pipeline.py X86.jsonl AARCH64.jsonl [--label CPU] [--json OUT.json]")
        return 2
    r = compare(_rows(argv[0]), _rows(argv[1]))
    r["label"] = label
    r["line"] = line(r, label)
    print(r["line"])
    if out:
        Path(out).write_text(json.dumps(r, indent=1) + "\n")
    return 0 if r["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
