"""The Python result objects, their JSON form and the README agree (one source of truth: results.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from edgeaffect.constants import AU_NAMES
from edgeaffect.outputs import JsonlWriter
from edgeaffect.results import FaceResult, FrameResult

from .test_outputs import sample_result

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _table_after(heading: str) -> set[str]:
    """Backticked names in the first column of the first table after `heading`."""
    rest = README[README.index(heading):]
    rows = re.search(r"\n(\|.*\|\n)+", rest)
    assert rows, heading
    names: set[str] = set()
    for line in rows.group(0).strip().splitlines()[2:]:
        names |= set(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    return names


def test_to_dict_is_the_jsonl_line_and_plain_json():
    r = sample_result(0)
    d = r.to_dict()
    assert json.loads(r.to_json()) == d
    f = d["faces"][0]
    assert list(f["aus"]) == list(AU_NAMES)                    # a {AU01: ...} mapping, in order
    assert f["aus"]["AU12"] == round(float(r.faces[0].aus[AU_NAMES.index("AU12")]), 3)
    assert isinstance(f["landmarks"], list) and len(f["landmarks"]) == 68
    assert not isinstance(f["landmarks"][0][0], np.generic)


def test_jsonl_writer_writes_to_json(tmp_path):
    r = sample_result(1)
    with JsonlWriter(tmp_path / "r.jsonl") as w:
        w.write(r)
    assert (tmp_path / "r.jsonl").read_text() == r.to_json() + "\n"


def test_readme_documents_the_schema_and_the_objects():
    d = sample_result(2).to_dict()
    assert _table_after("## Output schema") == set(d)
    assert _table_after("Face entry:") == set(d["faces"][0])
    assert _table_after("`FrameResult`:") == {f.name for f in dataclasses.fields(FrameResult)}
    assert _table_after("`FaceResult`:") == {f.name for f in dataclasses.fields(FaceResult)}


def test_readme_library_example_runs(assets, capsys):
    """The README's Python example, run as written on a demo frame (frame_bgr, timestamp_ms given)."""
    from edgeaffect.demo import DemoSource

    code = re.search(r"### Library\n```python\n(.*?)```", README, re.S)
    assert code, "README has no Library example"
    frame = next(iter(DemoSource(5)))
    exec(compile(code.group(1), "README.md", "exec"), {"frame_bgr": frame.image, "timestamp_ms": frame.timestamp_ms})
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1])["schema"] == "edgeaffect.frame/1"


def test_readme_counts_and_lists_match_the_code_and_models(assets):
    """Sentences README states about the pipeline agree with the constants, the shipped temporal model and
    the shipped profiles (each would otherwise drift silently when one of them changes)."""
    from edgeaffect.constants import AU_NAMES, EXPRESSIONS
    from edgeaffect.models import find_model
    from edgeaffect.profiles import list_profiles
    from edgeaffect.runtime.manifest import load_manifest

    assert f"{len(AU_NAMES)} Action Unit intensities, {len(EXPRESSIONS)} expression probabilities" in README
    row = next(x for x in README.splitlines() if x.startswith("| `aus` | {AU"))  # the JSONL face-entry table
    listed = row.split("|")[3].split()
    assert ["AU" + n if not n.startswith("AU") else n for n in listed] == list(AU_NAMES)
    window = load_manifest(find_model(assets, "temporal")).inputs[0].shape[1]
    assert f"per-face sliding window ({window} frames" in README
    device = README[README.index("## On the device"):]
    assert all(f"`{name}`" in device for name in list_profiles()), list_profiles()


def test_every_csv_column_is_named_in_the_readme():
    """A results.csv column nobody documented is a drift: each is named in README, as part of a range
    (`AU01..AU45`, `x0, y0 .. x67, y67`, `sigma0 .. sigma67`, `box_x..box_h`) or of a prefix group (`drv_*`)."""
    from edgeaffect.outputs.csv_writer import csv_columns

    ranged = re.compile(r"AU\d\d|x\d+|y\d+|sigma\d+|box_[xywh]")
    missing = [c for c in csv_columns() if not ranged.fullmatch(c) and c not in README and f"`{c.split('_')[0]}_*`" not in README]
    assert not missing, f"results.csv columns not described in README.md: {missing}"
    for rng in ("AU01..AU45", "x0, y0 .. x67, y67", "sigma0 .. sigma67", "box_x..box_h"):
        assert rng in README
