"""Kiosk analytics: per-visit dwell, attention and mean affect, entry/exit events, people count.
Nothing that identifies a person is kept (no landmarks, no images, no embeddings). See counter.py."""

from .config import KioskConfig
from .counter import KioskCounter, KioskState, VisitState

__all__ = ["KioskConfig", "KioskCounter", "KioskState", "VisitState"]
