"""Scene cuts: the frame before and this one show different scenes, so no track may carry over.

Tracking follows a face by re-fitting landmarks on the window where it was; after an edit cut
in a video another person may sit in that window, and the landmark net, asked "is there a
face here?", rightly says yes: the speaker's id (and its temporal V/A window) would continue on
an audience member (the shared clip does this at frames 20, 82 and 211). A live camera has no
cuts, but a file source often does.

The test is deliberately cheap and conservative: a 9 x 16 grid of pixels (40 px apart on a
360p frame) sampled straight from the frame (no resize, no colour conversion: ~150 cache
lines, which matters because the tracker otherwise reads only the face's region of a frame
that is usually cold in cache), compared with the previous frame's samples. A cut needs

* a large mean absolute change of the samples after removing each frame's mean level
  (`min_change`, grey levels): fast motion and hands in front of the face stay below it, and a
  global exposure step (an IR illuminator switching) is removed with the mean;
* decorrelation of the two sample sets (1 - Pearson r >= `min_decorrelation`): a contrast
  change or gain step keeps the pattern and does not count;
* and no translation of the previous frame's grid by up to `max_shift` grid steps (a third of
  the short side) explains the new one (decorrelation below `motion_decorrelation` on the
  overlap): a fast pan, or the demo's picture sliding 100 px per frame, is motion, not a cut.
  Only frames that pass the first two tests pay for this search (49 shifts, well under 1 ms).

On the shared clip the three cuts score >= 28.6 / 0.80 (after the best shift: 0.62-0.76) and
every other frame at most 17.2 / 0.43; the demo's slide at most 0.38 after its best shift
(tests/test_scene_cut.py checks the clip and the demo).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


class SceneCutDetector:
    def __init__(self, min_change: float = 20.0, min_decorrelation: float = 0.6, motion_decorrelation: float = 0.5,
                 rows: int = 9, max_shift: int = 3) -> None:
        self.min_change = float(min_change)
        self.min_decorrelation = float(min_decorrelation)
        self.motion_decorrelation = float(motion_decorrelation)
        self.rows = int(rows)
        self.max_shift = int(max_shift)
        self._prev: _Grid | None = None

    def reset(self) -> None:
        self._prev = None

    def samples(self, image: np.ndarray) -> np.ndarray:
        """The fixed-grid samples of a frame (BGR or grey): a float32 [rows, cols, channels] grid."""
        h, w = image.shape[:2]
        step = max(1, min(h, w) // self.rows)
        g = image[step // 2 :: step, step // 2 :: step].astype(np.float32)
        return g if g.ndim == 3 else g[:, :, None]

    def scores(self, image: np.ndarray) -> tuple[float, float] | None:
        """(mean-removed mean abs change, 1 - correlation) against the previous frame, then
        remember this one; None on the first frame or after the frame format changed."""
        cur = _Grid(self.samples(image), tuple(image.shape))
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            return None
        return cur.compare(prev)

    def __call__(self, image: np.ndarray) -> bool:
        """True when this frame starts a new scene (see the module docstring)."""
        prev = self._prev
        sc = self.scores(image)
        if sc is None or sc[0] < self.min_change or sc[1] < self.min_decorrelation:
            return False
        assert prev is not None and self._prev is not None
        return not self._explained_by_motion(self._prev.grid, prev.grid)

    def _explained_by_motion(self, g: np.ndarray, prev: np.ndarray) -> bool:
        rows, cols = g.shape[:2]
        r = self.max_shift
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if (rows - abs(dy)) * (cols - abs(dx)) * 2 < rows * cols:
                    continue  # less than half the grid overlaps
                a = g[max(0, dy) : rows + min(0, dy), max(0, dx) : cols + min(0, dx)]
                b = prev[max(0, -dy) : rows + min(0, -dy), max(0, -dx) : cols + min(0, -dx)]
                if _Grid(np.ascontiguousarray(a), ()).compare(_Grid(np.ascontiguousarray(b), ()))[1] < self.motion_decorrelation:
                    return True
        return False


class _Grid:
    """One frame's samples, mean removed, with their sum of squares: computed once per frame, so
    a comparison is two more calls (~6 numpy/OpenCV calls per frame in all, ~8 us)."""

    __slots__ = ("grid", "shape", "m", "square")

    def __init__(self, grid: np.ndarray, shape: tuple[int, ...]) -> None:
        self.grid = grid
        self.shape = shape
        v = grid.reshape(-1)
        self.m = v - float(np.add.reduce(v)) / v.size
        self.square = float(np.dot(self.m, self.m))

    def compare(self, other: _Grid) -> tuple[float, float]:
        """(mean abs difference, 1 - Pearson r) of two equal-size grids, each with its mean removed."""
        n = self.m.size
        change = cv2.norm(self.m, other.m, cv2.NORM_L1) / n
        den = math.sqrt(self.square * other.square)
        decor = 1.0 - float(np.dot(self.m, other.m)) / den if den > 0 else (0.0 if change == 0 else 1.0)
        return change, decor
