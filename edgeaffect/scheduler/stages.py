"""The stage protocol between the analyzer and the scheduler.

The analyzer exposes its per-frame work as an ordered list of `Stage`s; the scheduler only
decides *where* (placement) and *when* (pipelining, rates, degradation) each stage runs,
never *what* it computes. Every stage is stateful and sees frames strictly in order
(tracking uses the previous frame's landmarks, the temporal net a sliding window), so the
only concurrency is different stages working on different frames at the same time.

Skipping: the scheduler marks optional stages it wants skipped for a frame in
`WorkItem.skipped` (rate control and overload/thermal degradation). The stage function is
still called, in order, and must respect the mark: e.g. the "affect" stage still appends
the frame's features to its temporal window but does not run the VA net, and reports the
previous estimate as stale; the "au" stage carries the previous AUs forward. This keeps
every stateful stage's view of the stream complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..capture.base import Frame
from ..registry import MODULES, STAGE_MODULES, STAGE_NAMES

__all__ = ["MODULES", "STAGE_MODULES", "STAGE_NAMES", "Stage", "WorkItem", "validate_stages"]


@dataclass
class WorkItem:
    frame: Frame
    payload: Any = None  # the analyzer's per-frame state, opaque to the scheduler
    skipped: set[str] = field(default_factory=set)  # stage names skipped for this frame (stage fn must respect)
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Stage:
    name: str  # "track" | "au" | "affect"
    modules: tuple[str, ...]  # model kinds it runs: ("detector","landmarks"), ("au",), ("temporal",)
    fn: Callable[[WorkItem], WorkItem]
    optional: bool = False  # may be skipped under overload/thermal degradation (au, affect)


def validate_stages(stages: Sequence[Stage]) -> None:
    """Raise ValueError if the list cannot be scheduled (duplicate names, module run twice...)."""
    if not stages:
        raise ValueError("no stages to schedule")
    seen: set[str] = set()
    mods: set[str] = set()
    for s in stages:
        if not isinstance(s, Stage):
            raise ValueError(f"stage {s!r} is not an edgeaffect.scheduler.Stage")
        if s.name in seen:
            raise ValueError(f"stage name {s.name!r} appears twice")
        seen.add(s.name)
        if not callable(s.fn):
            raise ValueError(f"stage {s.name!r}: fn is not callable")
        for m in s.modules:
            if m in mods:
                raise ValueError(f"module {m!r} is run by two stages")
            mods.add(m)
    if stages[0].optional:
        raise ValueError(f"the first stage ({stages[0].name!r}) cannot be optional: it carries the tracking state")
