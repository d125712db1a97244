"""Issue 9 on real frames (../shared/data; skipped cleanly when absent): eye state on closed-
and open-eye photos, and a profile that is either tracked on the face or reported invalid."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from .conftest import FIXTURES, SHARED, VIDEO

pytestmark = pytest.mark.shared_data


def _eye_frames() -> dict:
    p = FIXTURES / "eye_state_frames.json"
    if not p.exists():
        pytest.skip("tests/fixtures/eye_state_frames.json missing (python scripts/eval_eyes.py)")
    return json.loads(p.read_text())


@pytest.fixture(scope="module")
def landmark_model(assets, shared_data):
    from edgeaffect.models import find_model
    from edgeaffect.models.landmarks import LandmarkModel
    from edgeaffect.runtime.runner import ModelRunner

    return LandmarkModel(ModelRunner(find_model(assets, "landmarks"), num_threads=1))


def _run(model, item: dict):
    from edgeaffect.vision.alignment import window_from_landmarks
    from edgeaffect.vision.eyes import eye_aspect_ratio

    gray = cv2.imread(str(SHARED / "expressions" / "images" / item["image"]), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, item["image"]
    r = model.run(gray, window_from_landmarks(np.array(item["teacher_points"], np.float32)))
    ear = 0.5 * (eye_aspect_ratio(r.points, tuple(range(36, 42))) + eye_aspect_ratio(r.points, tuple(range(42, 48))))
    return r, ear


@pytest.fixture(scope="module")
def reported_on_eye_photos(assets, shared_data) -> dict[str, list]:
    """The held-out closed-/open-eye photos through the whole Analyzer (IMAGE mode): the reported
    face (landmarks with the eye net's refined 36-47 when it has the point output, AUs with AU45
    from the eye state) per photo."""
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode

    fr = _eye_frames()
    out: dict[str, list] = {}
    with Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=1)) as a:
        for label in ("closed", "open"):
            out[label] = []
            for it in fr[label]:
                img = cv2.imread(str(SHARED / "expressions" / "images" / it["image"]), cv2.IMREAD_COLOR)
                assert img is not None, it["image"]
                out[label].append(next((f for f in a.process_image(img).faces if f.valid), None))
    return out


def test_closed_eyes_bring_the_landmark_eyelids_together(reported_on_eye_photos, assets):
    """Held-out identities whose eyes the refined MediaPipe mesh sees shut (EAR < 0.10): the
    reported eyelids (iBUG 36-47, refined by the eye network) come together: EAR well below the
    open-eye photos'. The landmark network alone does not do this (models/landmarks/eval_eyes.json:
    `ear_median_closed` vs `refined.ear_median_closed`)."""
    from edgeaffect.models import find_model
    from edgeaffect.models.eyes import EyeStateModel
    from edgeaffect.runtime.runner import ModelRunner
    from edgeaffect.vision.eyes import eye_aspect_ratio

    if not EyeStateModel(ModelRunner(find_model(assets, "eyes"))).has_eyelids:
        pytest.skip("the shipped eye network has no eyelid output")

    def ears(faces: list) -> list[float]:
        assert all(f is not None for f in faces), "a face was not found"
        return [0.5 * (eye_aspect_ratio(np.asarray(f.landmarks), tuple(range(36, 42)))
                       + eye_aspect_ratio(np.asarray(f.landmarks), tuple(range(42, 48)))) for f in faces]

    closed, opened = ears(reported_on_eye_photos["closed"]), ears(reported_on_eye_photos["open"])
    assert len(closed) >= 3 and len(opened) >= 3
    assert np.median(closed) < 0.75 * np.median(opened), (closed, opened)
    assert max(closed) < min(opened), (closed, opened)


def test_au45_rises_on_closed_eyes(reported_on_eye_photos):
    """The reported AU45 (blink / eyes closed) is high on the shut-eye photos and low on the open ones."""
    from edgeaffect.constants import AU_INDEX

    def au45(faces: list) -> np.ndarray:
        assert all(f is not None and f.aus is not None for f in faces)
        return np.array([float(f.aus[AU_INDEX["AU45"]]) for f in faces])

    closed, opened = au45(reported_on_eye_photos["closed"]), au45(reported_on_eye_photos["open"])
    assert np.median(closed) > 2.0 and np.median(opened) < 0.5, (closed, opened)
    assert np.median(closed) > np.median(opened) + 2.0, (closed, opened)


def test_the_eye_net_sees_closed_eyes(landmark_model, assets):
    """The same held-out photos through the runtime path: the landmark network's points, then the
    eye-state network on the two eye patches its corners cut. Shut eyes get a high closed
    probability, open eyes a low one."""
    from edgeaffect.models import find_model
    from edgeaffect.models.eyes import EyeStateModel
    from edgeaffect.runtime.runner import ModelRunner

    eyes = EyeStateModel(ModelRunner(find_model(assets, "eyes"), num_threads=1))
    fr = _eye_frames()
    assert len(fr["closed"]) >= 3 and len(fr["open"]) >= 3

    def probs(items: list) -> np.ndarray:
        out = []
        for it in items:
            r, _ = _run(landmark_model, it)
            gray = cv2.imread(str(SHARED / "expressions" / "images" / it["image"]), cv2.IMREAD_GRAYSCALE)
            out.append(eyes.run(gray, r.points).mean())
        return np.array(out)

    p_closed, p_open = probs(fr["closed"]), probs(fr["open"])
    assert (p_closed > 0.5).mean() >= 0.7, p_closed
    assert (p_open < 0.5).mean() >= 0.8, p_open
    assert np.median(p_closed) > np.median(p_open) + 0.4, (p_closed, p_open)


def test_eye_state_reaches_the_result(assets, shared_data):
    """closed_prob_left/right are in the per-face result (JSON line) of a real photo: probabilities
    when an eye-state network is shipped (or the landmark model has the output), None otherwise."""
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode

    img = cv2.imread(str(SHARED / "faces" / "obama.jpg"), cv2.IMREAD_COLOR)
    with Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=1)) as a:
        res = a.process_image(img)
    from edgeaffect.models import find_model
    from edgeaffect.models.landmarks import LandmarkModel
    from edgeaffect.runtime.runner import ModelRunner

    face = next(f for f in res.faces if f.valid)
    eyes = face.to_dict()["eyes"]
    assert "closed_prob_left" in eyes and "closed_prob_right" in eyes
    has_eye_net = any(f.name.startswith("eyes_") and f.suffix == ".json" for f in assets.iterdir())
    if not has_eye_net and not LandmarkModel(ModelRunner(find_model(assets, "landmarks"))).has_eyes:
        assert eyes["closed_prob_left"] is None and eyes["closed_prob_right"] is None  # no output, no invented number
        return
    assert 0.0 <= eyes["closed_prob_left"] <= 1.0 and 0.0 <= eyes["closed_prob_right"] <= 1.0
    assert eyes["closed_prob_left"] < 0.5 and eyes["closed_prob_right"] < 0.5  # eyes open in this photo


def test_profile_is_on_the_face_or_invalid(assets, shared_data):
    """The clip's profile stretch: a listed valid face keeps its 68 points inside the hand-drawn
    face box (never scattered over hair/background with high validity)."""
    from edgeaffect import Analyzer, AnalyzerOptions

    spec = json.loads((FIXTURES / "profile_frames.json").read_text())
    boxes = {int(k): v for k, v in spec["frames"].items()}
    cap = cv2.VideoCapture(str(VIDEO))
    checked = 0
    with Analyzer.create(AnalyzerOptions(max_faces=1)) as a:
        for k in range(max(boxes) + 1):
            ok, frame = cap.read()
            assert ok
            res = a.process(frame, k * 1000.0 / 29.97)
            if k not in boxes:
                continue
            x, y, w, h = boxes[k]
            for f in res.faces:
                if not f.valid:
                    continue
                p = np.asarray(f.landmarks)
                inside = (p[:, 0] >= x) & (p[:, 0] <= x + w) & (p[:, 1] >= y) & (p[:, 1] <= y + h)
                assert inside.mean() >= 0.95, (k, f.validity, p.min(0), p.max(0))
                checked += 1
    cap.release()  # no valid face on these frames is an accepted answer too (`checked` may be 0)


def test_the_speakers_full_profile_is_not_listed_but_turned_faces_are(assets, shared_data):
    """The clip's close-up full profile (frames 20-44, hand-checked, tests/fixtures/profile_frames.json)
    is beyond the landmark network's pose range: its points collapse over cheek and hair with
    validity up to 0.99, so no valid face may be listed there (the fit's own uncertainty says so,
    LandmarkResult.typical_sigma). Real turned faces stay: the speaker at yaw ~45 deg (frames 0-19)
    and the audience at the end of the clip (3/4 views, frames 257-274) are listed on every frame."""
    from edgeaffect import Analyzer, AnalyzerOptions

    lo, hi = json.loads((FIXTURES / "profile_frames.json").read_text())["profile_stretch"]
    cap = cv2.VideoCapture(str(VIDEO))
    listed: dict[int, int] = {}
    with Analyzer.create(AnalyzerOptions(max_faces=1)) as a:
        k = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            listed[k] = sum(f.valid for f in a.process(frame, k * 1000.0 / 29.97).faces)
            k += 1
    cap.release()
    assert k == 275
    assert [i for i in range(lo, hi + 1) if listed[i]] == []
    assert all(listed[i] == 1 for i in range(0, lo)), [i for i in range(0, lo) if not listed[i]]
    assert all(listed[i] == 1 for i in range(257, 275)), [i for i in range(257, 275) if not listed[i]]


def test_full_range_detector_finds_a_far_face(shared_data):
    """BlazeFace full range (shipped asset) finds a 60 px face in a 1280x720 frame (a kiosk user
    2-3 m away), a size the short-range model's whole-frame pass misses (models/detector_full/
    eval_far_faces.json: 0 of 29 faces at 60-80 px)."""
    from edgeaffect_converters.detector_gate import anchor_config, decode, ssd_anchors

    from edgeaffect.models import ASSETS
    from edgeaffect.models.detector import iou
    from edgeaffect.runtime.runner import ModelRunner

    man = next((p for v in ("int8", "dynamic_range", "float16", "float32") if (p := ASSETS / f"detector_full_{v}.json").exists()), None)
    if man is None:
        pytest.skip("no detector_full asset (python scripts/build_detector_full.py)")
    runner = ModelRunner(man, num_threads=1)
    cfg = anchor_config(runner.manifest.metadata, int(runner.manifest.outputs[0].shape[1]))
    anchors = ssd_anchors(cfg["input_size"], cfg["strides"], cfg["anchors_per_stride"])
    teacher = json.loads((FIXTURES / "teacher_faces.json").read_text())
    img = cv2.imread(str(SHARED / "faces" / "obama.jpg"), cv2.IMREAD_COLOR)
    x, y, w, h = teacher["obama.jpg"][0]["box"]
    s = 60.0 / w
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), 60, np.uint8)
    ox, oy = 900, 300
    frame[oy : oy + small.shape[0], ox : ox + small.shape[1]] = small
    truth = (x * s + ox, y * s + oy, w * s, h * s)
    size = int(cfg["input_size"])
    side = 1280
    m = np.array([[size / side, 0, 0], [0, size / side, (side - 720) / 2 * size / side]], np.float32)
    inp = cv2.cvtColor(cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA), cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
    out = runner.run(inp[None])
    reg = next(v for k, v in out.items() if "regress" in k)
    cls = next(v for k, v in out.items() if "classif" in k)
    boxes, scores = decode(reg[0], cls[0, :, 0], anchors, size, float(cfg["score_threshold"]))
    found = [(b[0] * side, b[1] * side - (side - 720) / 2, (b[2] - b[0]) * side, (b[3] - b[1]) * side) for b in boxes]
    assert any(iou(f, truth) > 0.3 for f in found), (truth, found, scores)


#: Held-out LFW-style crops (192 px, face ~half the frame) on which the shipped int8 detector's
#: whole-frame pass finds nothing: its stride-16 scores for large faces sit low.
FRAME_FILLING = ("Brian_Scalabrine_0001", "Doug_Collins_0002", "Ed_Rosenthal_0003", "Franko_Simatovic_0002",
                 "George_W_Bush_0030", "George_W_Bush_0142", "George_W_Bush_0147", "Gianni_Agnelli_0001",
                 "Harrison_Ford_0003", "James_Roberts_0001")


def test_frame_filling_faces_are_found(assets, shared_data):
    """The zoomed-out search pass finds the faces the whole-frame pass misses (IMAGE mode)."""
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode

    missed = []
    with Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=1)) as a:
        for name in FRAME_FILLING:
            img = cv2.imread(str(SHARED / "expressions" / "images" / f"{name}.jpg"), cv2.IMREAD_COLOR)
            assert img is not None, name
            if not any(f.valid for f in a.process_image(img).faces):
                missed.append(name)
    assert missed == []


def _lectern_frames() -> list[tuple[str, int, np.ndarray, tuple[float, float, float, float]]]:
    """Each shared photo's first face, head and shoulders pasted at 50-120 px wide into a
    1024x817 portrait frame of a blurred scene (a speaker at a lectern, a far kiosk visitor)."""
    from skimage import data

    teacher = json.loads((FIXTURES / "teacher_faces.json").read_text())
    bg = cv2.GaussianBlur(cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (817, 1024)), (0, 0), 3)
    rng = np.random.default_rng(5)
    out = []
    for name, faces in sorted(teacher.items()):
        img = cv2.imread(str(SHARED / "faces" / name), cv2.IMREAD_COLOR)
        x, y, w, h = faces[0]["box"]
        for target in (50, 70, 90, 120):
            s = target / w
            small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            cx, cy, r = int((x + w / 2) * s), int((y + h / 2) * s), int(1.5 * target)
            x0, y0 = max(cx - r, 0), max(cy - r, 0)
            patch = small[y0 : cy + 2 * r, x0 : cx + r]
            ox, oy = int(rng.integers(0, 817 - patch.shape[1])), int(rng.integers(0, 1024 - patch.shape[0]))
            frame = bg.copy()
            frame[oy : oy + patch.shape[0], ox : ox + patch.shape[1]] = patch
            out.append((name, target, frame, (x * s - x0 + ox, y * s - y0 + oy, w * s, h * s)))
    return out


@pytest.mark.parametrize("detector", ["short_range", "full_range"])
def test_image_mode_finds_far_faces_and_nothing_else(shared_data, assets, detector):
    """Issue 9 item 4 as a photo user meets it: 52 far faces (50-120 px in 1024x817) through the
    whole pipeline in IMAGE mode (detector, wider search, landmark acquisition rule): every face
    is listed, and nothing else (the blurred scene is a coffee cup that used to pass as a face)."""
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode
    from edgeaffect.models.detector import iou

    files = {}
    if detector == "full_range":
        man = next((p for v in ("int8", "float16") if (p := assets / f"detector_full_{v}.json").exists()), None)
        if man is None:
            pytest.skip("no detector_full asset")
        files = {"detector": man}
    missed, extra = [], []
    with Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=4, model_files=files or None,
                                  enable_aus=False, enable_affect=False)) as a:
        for name, target, frame, truth in _lectern_frames():
            listed = [f for f in a.process_image(frame).faces if f.valid]
            if not any(iou(f.box, truth) > 0.3 for f in listed):
                missed.append((name, target))
            extra += [(name, target, f.box) for f in listed if iou(f.box, truth) <= 0.3]
    assert missed == [] and extra == [], (missed, extra)


def test_image_mode_keeps_a_tile_filling_face(shared_data, assets):
    """A 240-px LFW crop on a black 640x480 frame: neither the whole frame nor the zoomed-out
    pass finds it, only a short-side tile, at 0.57 (the int8 model scores tile-filling faces
    low). The stricter score of the small-face grids must not reach those tiles."""
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode

    d = SHARED / "expressions" / "images"
    names = ["Colin_Powell_0224.jpg", "Colin_Powell_0081.jpg"]
    if not all((d / n).exists() for n in names):
        pytest.skip("Colin_Powell crops not in ../shared/data/expressions")
    with Analyzer(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=1, enable_aus=False, enable_affect=False)) as a:
        for n in names:
            im = cv2.copyMakeBorder(cv2.resize(cv2.imread(str(d / n)), (240, 240)), 120, 120, 200, 200, cv2.BORDER_CONSTANT, value=0)
            assert [f.valid for f in a.process_image(im).faces] == [True], n
