"""Kiosk / digital-signage analytics settings (device profile table `[kiosk]`).

All project defaults (no standard names these numbers); angles in degrees, durations in
seconds of timestamp time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..configspec import Reader, non_negative, positive, read_section, setting
from ..configspec import between as in_range


def _f(default: Any, doc: str, check: Any = None) -> Any:
    """A setting whose type is its default's (bool, int or float), with one line of doc."""
    return setting(default, type(default), check, doc)


@dataclass(frozen=True)
class KioskConfig:
    enabled: bool = _f(False, "the kiosk layer runs in `edgeaffect run --profile` without --kiosk (a unit under systemd has no flags)")
    cone_yaw_deg: float = _f(20.0, "attending (facing the screen) when |yaw - screen_yaw_deg| <= this", positive)
    cone_pitch_deg: float = _f(15.0, "... and |pitch - screen_pitch_deg| <= this", positive)
    screen_yaw_deg: float = _f(0.0, "head yaw of a person looking at the screen (camera beside the screen: not 0)", in_range(-90, 90))
    screen_pitch_deg: float = _f(0.0, "head pitch of a person looking at the screen (camera above it: negative)", in_range(-90, 90))
    min_visit_s: float = _f(0.5, "a track becomes a visit (entry event, counted) after this long in view", non_negative)
    exit_after_s: float = _f(2.0, "a visit ends (exit event) after this long out of view", positive)
    max_gap_s: float = _f(1.0, "a gap between frames longer than this is unobserved time", positive)
    event_update_s: float = _f(5.0, "open visits emit an `update` at most this often", positive)

    @classmethod
    def from_table(cls, r: Reader, table: Any) -> KioskConfig:
        """The profile's [kiosk] table over the defaults ("<file>: kiosk.<key>: <reason>" on a bad value)."""
        try:
            return cls(**read_section(r, table, "kiosk", cls))
        except ValueError as e:  # the cross-key rules
            raise r.fail("kiosk", str(e)) from None
