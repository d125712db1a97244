"""Shared fixtures. Tests that need ../shared/data skip cleanly when it is absent; tests that
need the shipped models skip only if the package was installed without them (never in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEAFFECT_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VIDEO = SHARED / "video" / "short_hamilton_clip.mp4"
FACES = SHARED / "faces"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip(f"../shared/data not present ({SHARED})")
    return SHARED


@pytest.fixture(scope="session")
def assets() -> Path:
    from edgeaffect.errors import ModelError
    from edgeaffect.models import ASSETS, DEFAULT_MODELS, find_model

    missing = []
    for m in DEFAULT_MODELS:
        try:
            find_model(ASSETS, m)
        except ModelError:
            missing.append(m)
    if missing:
        pytest.skip(f"shipped models missing from {ASSETS}: {missing}")
    return ASSETS


@pytest.fixture(scope="session")
def video_analyzer(assets):
    from edgeaffect import Analyzer, AnalyzerOptions

    return lambda **kw: Analyzer(AnalyzerOptions(**kw))
