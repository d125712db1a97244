"""The pipeline on real faces (../shared/data; skipped cleanly when absent)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgeaffect import Analyzer, AnalyzerOptions, RunningMode
from edgeaffect.constants import AU_NAMES, interocular_distance
from edgeaffect.models.detector import iou

from .conftest import FACES, FIXTURES, VIDEO

pytestmark = pytest.mark.shared_data

#: Landmark NME (mean point error / outer-eye-corner distance) against the teacher
#: ensemble on full photos never used in training. The teachers disagree with each other
#: by ~4% (jaw ~7%) on the training images after offset calibration, and a 30-MMAC int8
#: network tracked from a detector box should stay within ~2-3x that; 10% is the level
#: at which points visibly leave their facial features.
NME_LIMIT = 0.10


EDIT_CUTS = (20, 82, 211)  # the clip's edit cuts, looked at one by one (tests/test_scene_cut.py finds exactly these)
_OFFSETS = np.array(json.loads((FIXTURES / "mediapipe_offsets.json").read_text())["offsets"])


def ensemble(face: dict) -> np.ndarray:
    """The training target definition: dlib averaged with offset-corrected MediaPipe."""
    from training.targets import teacher_target

    return teacher_target(np.array(face["dlib"], np.float32), None if face["mediapipe"] is None else np.array(face["mediapipe"], np.float32), _OFFSETS)


@pytest.fixture(scope="module")
def image_analyzer(assets, shared_data):
    a = Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=4))
    yield a
    a.close()


def test_landmarks_land_on_real_faces(image_analyzer):
    teacher = json.loads((FIXTURES / "teacher_faces.json").read_text())
    nmes = []
    for name, faces in teacher.items():
        img = cv2.imread(str(FACES / name), cv2.IMREAD_UNCHANGED)
        res = image_analyzer.process_image(img)
        for tf in faces:
            t = ensemble(tf)
            match = [f for f in res.faces if f.valid and iou(f.box, tuple(tf["box"])) > 0.3]
            assert match, f"{name}: no valid face found at teacher box {tf['box']}"
            f = match[0]
            # eye centres fall inside the teacher's face box
            x, y, w, h = tf["box"]
            for eye in (f.landmarks[36:42].mean(0), f.landmarks[42:48].mean(0)):
                assert x <= eye[0] <= x + w and y - 0.2 * h <= eye[1] <= y + h, name
            nmes.append(np.linalg.norm(f.landmarks - t, axis=1).mean() / interocular_distance(t))
    nmes = np.array(nmes)
    assert len(nmes) >= 14
    assert np.median(nmes) < NME_LIMIT, f"median NME {np.median(nmes):.3f}: {nmes.round(3)}"


def test_outputs_respect_their_ranges(image_analyzer):
    res = image_analyzer.process_image(cv2.imread(str(FACES / "two_people.jpg")))
    valid = [f for f in res.faces if f.valid]
    assert len(valid) == 2
    for f in valid:
        assert f.aus is not None and f.aus.shape == (15,) and f.aus.min() >= 0 and f.aus.max() <= 5
        assert -1 <= f.valence <= 1 and -1 <= f.arousal <= 1
        assert all(0 <= v <= 1 for v in f.uncertainty.values())
        assert f.landmark_sigma.min() > 0
        assert 0.5 <= f.validity <= 1
        assert set(f.head_pose) == {"yaw", "pitch", "roll"}
        assert 0 <= f.eyes["openness"] <= 1
    d = res.to_dict()
    assert list(d["faces"][0]["aus"]) == list(AU_NAMES)
    json.dumps(d, allow_nan=False)


def test_max_faces_one(assets, shared_data):
    with Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=1)) as a:
        res = a.process_image(cv2.imread(str(FACES / "two_people.jpg")))
    assert len([f for f in res.faces if f.valid]) == 1


def test_no_face_frame_gives_empty_result(image_analyzer):
    res = image_analyzer.process_image(np.full((240, 320, 3), 90, np.uint8))
    assert res.status == "no_face" and res.faces == []


def test_partial_face_is_still_tracked(image_analyzer):
    res = image_analyzer.process_image(cv2.imread(str(FACES / "obama_partial_face.jpg")))
    assert any(f.valid for f in res.faces)


@pytest.fixture(scope="module")
def video_results(assets, shared_data):
    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    with Analyzer(AnalyzerOptions(max_faces=1)) as a:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            out.append(a.process(frame, i * 1000 / 29.97))
            i += 1
    return out


def test_tracking_holds_through_the_video(video_results):
    assert len(video_results) == 275
    valid = np.array([any(f.valid for f in r.faces) for r in video_results])
    # Every frame where a teacher (dlib / MediaPipe) finds a face; not the clip's full-profile close-up
    # (frames 20-44, tests/fixtures/profile_frames.json), which is rightly not listed, nor the back of
    # the head that follows it: about 80 of the 275 frames have no face the network can fit.
    teacher = np.load(FIXTURES / "teacher_video.npz")["count"] > 0
    assert valid[teacher].mean() > 0.97, f"valid on only {valid[teacher].mean():.0%} of the teachers' face frames"
    assert valid.mean() > 0.7, f"valid on only {valid.mean():.0%} of frames"
    sources = [r.faces[0].source if r.faces else "none" for r in video_results]
    # the detector runs on the first frame, then tracking carries most frames
    assert sources[0] == "detector"
    assert sources.count("tracking") > 0.6 * len(sources)


def test_redetects_after_occlusion(video_results):
    valid = [any(f.valid for f in r.faces) for r in video_results]
    lost_then_back = [
        i for i in range(1, len(valid)) if valid[i] and not valid[i - 1] and video_results[i].faces[0].source == "detector"
    ]
    assert lost_then_back, "tracking was never lost and re-acquired (expected around the hand occlusion)"
    # a face re-acquired within a few frames, less than a face size from where it was last
    # listed, keeps its id
    for i in lost_then_back:
        if any(i - 3 < c <= i for c in EDIT_CUTS):
            continue  # a new scene: someone else, rightly a new id (tests/test_scene_cut.py)
        before = next((r.faces[0] for r in reversed(video_results[max(0, i - 3) : i]) if r.faces), None)
        cur = video_results[i].faces[0]
        if before is None or before.box is None or cur.box is None:
            continue
        (x, y, w, h), (x2, y2, w2, h2) = before.box, cur.box
        if np.hypot(x + w / 2 - x2 - w2 / 2, y + h / 2 - y2 - h2 / 2) < max(w, h):
            assert cur.track_id == before.track_id, i
    # Whether the clip's own occlusions give such a quick, near re-acquisition depends on detector
    # scores right at the threshold on hand-covered frames (the float16 detector re-acquired frame 44
    # for one frame at score 0.57; the int8 one scores 0.48 there): the id hand-off is checked on a
    # covered face in test_reacquires_the_same_id_after_a_covered_face instead of requiring one here.


@pytest.mark.parametrize("start", [100, 140])
def test_reacquires_the_same_id_after_a_covered_face(assets, shared_data, start):
    """The tracked face is covered (a grey box over its head) for two frames: the track is lost,
    then re-acquired by the detector within three frames under the same id."""
    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < start + 8:
        ok, f = cap.read()
        assert ok
        frames.append(f)
    cap.release()
    seen = []
    with Analyzer(AnalyzerOptions(max_faces=1)) as a:
        box = tid = None
        for k in range(start - 10, start + 8):
            f = frames[k].copy()
            if start <= k < start + 2:
                assert box is not None, "the face was not tracked before it was covered"
                x, y, w, h = box  # the landmarks' extent: grow it to hide forehead, hair and chin too
                f[max(0, int(y - 0.5 * h)) : int(y + 1.4 * h), max(0, int(x - 0.4 * w)) : int(x + 1.4 * w)] = 90
            r = a.process(f, k * 1000 / 29.97)
            if k == start - 1:
                assert r.faces and r.faces[0].valid
                box, tid = r.faces[0].box, r.faces[0].track_id
            seen.append((k, [(fc.track_id, fc.valid, fc.source) for fc in r.faces]))
    covered = [faces for k, faces in seen if start <= k < start + 2]
    assert all(not any(v for _, v, _ in faces) for faces in covered), seen  # no face listed while covered
    back = next((faces for k, faces in seen if start + 2 <= k <= start + 4 and any(v for _, v, _ in faces)), None)
    assert back is not None and back[0][0] == tid and back[0][2] == "detector", seen


def test_video_landmarks_vs_teacher(video_results):
    from training.targets import video_teacher_at

    z = np.load(FIXTURES / "teacher_video.npz")
    nmes, teacher_frames, valid_on_teacher_frames = [], 0, 0
    for k, r in enumerate(video_results):
        v = [f for f in r.faces if f.valid]
        n = int(z["count"][k])
        teacher_frames += n > 0
        valid_on_teacher_frames += bool(n and v)
        t = video_teacher_at(z, k, v[0].box, _OFFSETS) if v else None
        if t is not None:
            nmes.append(np.linalg.norm(v[0].landmarks - t, axis=1).mean() / interocular_distance(t))
    assert valid_on_teacher_frames > 0.85 * teacher_frames
    assert len(nmes) > 100
    assert np.median(nmes) < NME_LIMIT


def test_a_lost_face_is_not_listed(video_results):
    # lost tracks keep their id internally but are no faces: no stale box, no held valence
    assert any(r.status == "no_face" for r in video_results)
    for r in video_results:
        assert all(f.valid and f.source in ("detector", "tracking") for f in r.faces)
        assert (r.status == "ok") == bool(r.faces)


def test_nir_like_frames_still_track(assets, shared_data):
    from edgeaffect.demo import nir_like

    img = cv2.imread(str(FACES / "obama.jpg"))
    with Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE)) as a:
        rgb = a.process_image(img)
        nir = a.process_image(nir_like(img, 0.0))
    assert nir.status == "ok"
    p, q = rgb.faces[0].landmarks, nir.faces[0].landmarks
    assert np.linalg.norm(p - q, axis=1).mean() / interocular_distance(p) < 0.08
