"""Where training reads data and writes its (large, regenerable) intermediates.

Shared data is read in place and never copied into the repository; intermediates go to a
work directory outside the package (default ./work, git-ignored), overridable with
EDGEAFFECT_WORK.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEAFFECT_SHARED_DATA", REPO.parent / "shared" / "data"))
WORK = Path(os.environ.get("EDGEAFFECT_WORK", REPO / "work"))
MODELS_SRC = REPO / "models"  # float ONNX exports, conversion reports (not shipped in the wheel)
ASSETS = REPO / "edgeaffect" / "models" / "assets"


def expressions_dir() -> Path:
    return SHARED_DATA / "expressions"


def work(*parts: str) -> Path:
    p = WORK.joinpath(*parts)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p
