"""Eye openness, blinks and PERCLOS from the landmarks (no extra network).

Eye aspect ratio (Soukupova & Cech 2016): EAR = (|p2-p6| + |p3-p5|) / (2 |p1-p4|).
Openness is EAR relative to the person's own open-eye baseline (a slow running upper
percentile), because absolute EAR differs between people and halves behind some glasses.
When the landmark network has an eye-state output, its per-eye closed probability
(openpilot's `eyesClosedProb`) is reported too and counts as a second, baseline-free
witness: an eye is closed for blinks/PERCLOS when the EAR says so or when the mean closed
probability exceeds CLOSED_PROB (openpilot's eye threshold, 0.65).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..constants import LEFT_EYE, RIGHT_EYE

#: Mean per-eye closed probability above which the eyes count as closed (openpilot: 0.65).
CLOSED_PROB = 0.65


#: EAR's three distances |p2-p6|, |p3-p5|, |p1-p4| as one vectorised difference (runs twice per frame)
_EAR_A, _EAR_B = np.array([1, 2, 0]), np.array([5, 4, 3])


def eye_aspect_ratio(points68: np.ndarray, eye: tuple[int, ...]) -> float:
    p = points68[eye[0] : eye[-1] + 1] if tuple(eye) == tuple(range(eye[0], eye[-1] + 1)) else points68[list(eye)]
    d = p[_EAR_A] - p[_EAR_B]
    n = np.sqrt((d * d).sum(1))  # == np.linalg.norm per row, same dtype and rounding
    if n[2] < 1e-6:
        return 0.0
    return float((n[0] + n[1]) / (2.0 * n[2]))


@dataclass
class EyeState:
    ear_left: float
    ear_right: float
    openness: float  # 0 closed .. 1 open (relative to the baseline)
    blink: bool  # a blink ended on this frame
    blinks_total: int
    perclos: float  # fraction of the recent window with closed eyes (openness < 0.2 or closed prob > CLOSED_PROB; PERCLOS P80)
    closed_prob_left: float | None = None  # subject's left eye (iBUG 42-47), from the landmark net
    closed_prob_right: float | None = None  # subject's right eye (iBUG 36-41)

    def as_dict(self) -> dict[str, float | bool | int | None]:
        return {
            "ear_left": round(self.ear_left, 4),
            "ear_right": round(self.ear_right, 4),
            "openness": round(self.openness, 3),
            "blink": self.blink,
            "blinks_total": self.blinks_total,
            "perclos": round(self.perclos, 3),
            "closed_prob_left": None if self.closed_prob_left is None else round(self.closed_prob_left, 3),
            "closed_prob_right": None if self.closed_prob_right is None else round(self.closed_prob_right, 3),
        }


class EyeStateTracker:
    """Per-face running state. `window` is the PERCLOS window in frames (~60 s at 30 fps)."""

    def __init__(self, window: int = 1800, baseline_frames: int = 150) -> None:
        self._history: deque[bool] = deque(maxlen=window)  # closed (openness < 0.2) per frame
        self._closed_count = 0
        self._ears: deque[float] = deque(maxlen=baseline_frames)
        self._closed = False
        self.blinks = 0
        self._n = 0
        self._baseline = 0.28

    def update(self, points68: np.ndarray, closed_prob: np.ndarray | None = None) -> EyeState:
        """points68: landmarks; closed_prob: [right, left] eye-closed probabilities or None."""
        er = eye_aspect_ratio(points68, RIGHT_EYE)
        el = eye_aspect_ratio(points68, LEFT_EYE)
        ear = 0.5 * (er + el)
        self._ears.append(ear)
        self._n += 1
        if len(self._ears) < 5:
            self._baseline = 0.28
        elif self._n % 10 == 0 or len(self._ears) < 30:  # a slow statistic: refresh every 10 frames
            self._baseline = max(float(np.percentile(self._ears, 90)), 0.18)
        baseline = self._baseline
        openness = float(np.clip(ear / baseline, 0.0, 1.0))
        prob = None if closed_prob is None else float(np.mean(closed_prob))
        shut = prob is not None and prob > CLOSED_PROB
        opened = prob is None or prob < 1.0 - CLOSED_PROB
        blink = False
        if (openness < 0.55 or shut) and not self._closed:
            self._closed = True
        elif openness > 0.75 and opened and self._closed:
            self._closed = False
            self.blinks += 1
            blink = True
        closed = openness < 0.2 or shut
        if len(self._history) == self._history.maxlen and self._history[0]:
            self._closed_count -= 1  # the oldest frame leaves the window
        self._history.append(closed)
        self._closed_count += int(closed)
        perclos = self._closed_count / len(self._history)
        cl, cr = (None, None) if closed_prob is None else (float(closed_prob[1]), float(closed_prob[0]))
        return EyeState(el, er, openness, blink, self.blinks, perclos, cl, cr)
