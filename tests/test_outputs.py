import errno
import json
import os

import numpy as np
import pytest

from edgeaffect.constants import AU_NAMES, EXPRESSIONS
from edgeaffect.errors import OutputError
from edgeaffect.outputs import CsvWriter, JsonlWriter, OverlayRenderer, read_jsonl
from edgeaffect.outputs.csv_writer import read_csv
from edgeaffect.results import FaceResult, FrameResult


def sample_result(i: int = 0, with_face: bool = True) -> FrameResult:
    rng = np.random.default_rng(i)
    faces = []
    if with_face:
        pts = rng.uniform(100, 200, (68, 2)).astype(np.float32)
        faces.append(
            FaceResult(
                track_id=3, valid=True, validity=0.97, source="tracking", box=(100.0, 100.0, 100.0, 100.0),
                landmarks=pts, landmark_sigma=rng.uniform(0.5, 3, 68).astype(np.float32),
                aus=rng.uniform(0, 5, 15).astype(np.float32), expression=rng.dirichlet(np.ones(7)).astype(np.float32),
                valence=0.31, arousal=-0.2,
                uncertainty={"epistemic": 0.1, "aleatoric": 0.2, "cumulative": 0.25},
                head_pose={"yaw": 1.0, "pitch": -2.0, "roll": 0.5},
                eyes={"ear_left": 0.3, "ear_right": 0.29, "openness": 1.0, "blink": False, "blinks_total": 0, "perclos": 0.0},
            )
        )
        faces.append(FaceResult(track_id=4, valid=False, validity=0.0, source="lost", box=(1.0, 2.0, 3.0, 4.0)))
    return FrameResult(i, i * 33.3, faces, "ok" if with_face else "no_face", timings_ms={"track": 1.0})


def test_jsonl_and_csv_round_trip(tmp_path):
    results = [sample_result(i, with_face=i % 3 != 2) for i in range(6)]
    with JsonlWriter(tmp_path / "r.jsonl") as w:
        for r in results:
            w.write(r)
    c = CsvWriter(tmp_path / "r.csv")
    for r in results:
        c.write(r)
    c.close()
    lines = list(read_jsonl(tmp_path / "r.jsonl"))
    assert len(lines) == 6 and all(d["schema"] == "edgeaffect.frame/1" for d in lines)
    rows = read_csv(tmp_path / "r.csv")
    # one row per face, one row for a frame without faces
    assert len(rows) == sum(max(1, len(d["faces"])) for d in lines)
    r0 = [r for r in rows if r["frame_index"] == "0" and r["track_id"] == "3"][0]
    f0 = lines[0]["faces"][0]
    assert float(r0["valence"]) == pytest.approx(f0["valence"])
    assert float(r0["AU12"]) == pytest.approx(f0["aus"]["AU12"])
    assert float(r0["x30"]) == pytest.approx(f0["landmarks"][30][0])
    assert float(r0["sigma67"]) == pytest.approx(f0["landmark_sigma"][67])
    assert set(f0["aus"]) == set(AU_NAMES)
    assert list(f0["expression"]) == list(EXPRESSIONS)
    assert float(r0["expr_sadness"]) == pytest.approx(f0["expression"]["sadness"])
    lost = lines[0]["faces"][1]
    assert lost["valid"] is False and lost["landmarks"] is None


def test_disk_full_leaves_valid_file(tmp_path, monkeypatch):
    w = JsonlWriter(tmp_path / "r.jsonl")
    w.write(sample_result(0))
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:  # write half the record, then the disk is full
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OutputError, match="disk full"):
        w.write(sample_result(1))
    monkeypatch.setattr(os, "write", real_write)
    w.close()
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["frame_index"] == 0


def test_unwritable_output_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="cannot create"):
        JsonlWriter(tmp_path / "f" / "r.jsonl")


def test_nan_never_reaches_json(tmp_path):
    r = sample_result(0)
    r.faces[0].valence = float("nan")
    d = r.to_dict()
    assert d["faces"][0]["valence"] is None
    json.dumps(d, allow_nan=False)


def test_overlay_renders_panel():
    img = np.zeros((240, 320, 3), np.uint8)
    out = OverlayRenderer(panel_width=200).render(img, sample_result(0))
    assert out.shape == (240, 520, 3) and out[:, 320:].any() and out[:, :320].any()
