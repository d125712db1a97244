"""Checkpoint/resume for the training scripts: a run killed at any point restarts from the
last finished epoch with the same optimiser and scheduler state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save(path: Path, **state: Any) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: never a half-written checkpoint


def load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
