"""Recount MACs/params of the shipped models with the converter's counter, without reconverting.

    python scripts/recount_macs.py

For each shipped manifest (edgeaffect/models/assets/<name>_<variant>.json) whose float ONNX
source models/<name>/<source file> still has the sha256 the manifest records, writes the
converter's count (`edgeaffect_converters.onnx_checks.count_macs_params`) into the manifest
and into models/<name>/fidelity_report.json. `scripts/build_models.py` writes the same
numbers on a full rebuild; this only refreshes the count after the counter changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from edgeaffect_converters.onnx_checks import count_macs_params

from edgeaffect.runtime.manifest import sha256_file

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "edgeaffect" / "models" / "assets"


def main() -> None:
    for man_path in sorted(ASSETS.glob("*_*.json")):
        man = json.loads(man_path.read_text())
        name, src = man.get("name"), man.get("source") or {}
        onnx_path = REPO / "models" / str(name) / str(src.get("file"))
        if not onnx_path.is_file() or sha256_file(onnx_path) != src.get("sha256"):
            print(f"skip {man_path.name}: {onnx_path.relative_to(REPO)} missing or not the file it was converted from")
            continue
        macs, params = count_macs_params(onnx.load(str(onnx_path)))
        print(f"{man_path.name}: macs {man.get('macs')} -> {macs}, params {man.get('params')} -> {params}")
        man["macs"], man["params"] = macs, params
        man_path.write_text(json.dumps(man, indent=1))
        rep_path = REPO / "models" / str(name) / "fidelity_report.json"
        if rep_path.is_file():
            rep = json.loads(rep_path.read_text())
            rep["macs"], rep["params"] = macs, params
            rep_path.write_text(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
