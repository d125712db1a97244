"""Scene cuts end every track (edgeaffect.tracking.scene_cut): a cut is found on the frames where
the scene changes, not on motion, exposure or gain steps, and no id survives it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeaffect.tracking import Tracker, TrackerConfig
from edgeaffect.tracking.scene_cut import SceneCutDetector

from .conftest import VIDEO
from .test_pipeline_real import EDIT_CUTS
from .test_tracking import GRAY, Face, World


def _scene(seed: int, shape=(360, 640, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def test_a_new_scene_is_a_cut_motion_exposure_and_gain_are_not():
    d = SceneCutDetector()
    a, b = _scene(1), _scene(2)
    assert d(a) is False  # first frame: nothing to compare
    assert d(np.roll(a, 6, axis=1)) is False  # a small pan
    assert d(np.clip(a.astype(np.int16) + 40, 0, 255).astype(np.uint8)) is False  # exposure step
    assert d((a * 0.6).astype(np.uint8)) is False  # gain step
    assert d(b) is True  # another scene
    assert d(b) is False
    assert d(cv2.cvtColor(b, cv2.COLOR_BGR2GRAY)) is False  # the frame format changed: start again, no verdict
    d.reset()
    assert d(a) is False


@pytest.mark.shared_data
def test_the_shared_clips_edit_cuts_are_found_and_nothing_else(shared_data):
    """The shared clip has three edit cuts (frames 20, 82, 211: looked at one by one)."""
    d = SceneCutDetector()
    cap = cv2.VideoCapture(str(VIDEO))
    cuts, k = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if d(frame):
            cuts.append(k)
        k += 1
    cap.release()
    assert k == 275 and cuts == list(EDIT_CUTS)


def test_a_cut_ends_every_track_and_the_face_after_it_gets_a_new_id():
    w = World()
    t = Tracker(w, w, TrackerConfig())
    w.faces = [Face(300, 200)]
    a, b = _scene(1), _scene(2)
    assert [f.track.id for f in t.step(GRAY, a, 0) if f.valid] == [0]
    assert [f.track.id for f in t.step(GRAY, a, 1) if f.valid] == [0]
    faces = t.step(GRAY, b, 2)  # same place, new scene: someone else
    assert [f.track.id for f in faces if f.valid] == [1] and t.scene_cuts == 1
    assert not any(f.track.id == 0 for f in faces)  # not even listed as lost

    w2 = World()
    t2 = Tracker(w2, w2, TrackerConfig(scene_cuts=False))
    w2.faces = [Face(300, 200)]
    t2.step(GRAY, a, 0)
    assert [f.track.id for f in t2.step(GRAY, b, 1) if f.valid] == [0]  # off: the id carries over


def test_the_demos_fast_slide_is_motion_not_a_cut():
    """The demo's picture slides out of the frame and back at up to ~100 px per frame: that
    translation explains every frame, so no cut (and the demo keeps its one face's id)."""
    pytest.importorskip("skimage.data", reason="the demo needs scikit-image (the [demo] extra)")
    from edgeaffect.demo import demo_frames

    d = SceneCutDetector()
    assert [i for i, f in enumerate(demo_frames()) if d(f)] == []
