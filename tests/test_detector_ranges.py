"""Short- and full-range BlazeFace at run time (issue 9 item 4): anchor layouts, decoding,
selection per profile. The tests on the full-range network itself skip until its asset
(`detector_full*_<variant>.tflite` + manifest, built by scripts/build_detector_full.py) exists."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgeaffect.errors import ModelError, ProfileError
from edgeaffect.models import ASSETS, find_detector_model
from edgeaffect.models.detector import FULL_RANGE, SHORT_RANGE, FaceDetector, anchor_layout, ssd_anchors


def test_anchor_layouts_match_mediapipe():
    short = ssd_anchors(128, SHORT_RANGE["strides"], SHORT_RANGE["anchors_per_stride"])
    full = ssd_anchors(192, FULL_RANGE["strides"], FULL_RANGE["anchors_per_stride"])
    assert short.shape == (896, 2) and full.shape == (2304, 2) and full.dtype == np.float64
    # full range: a 48x48 grid (stride 4), one anchor per cell, row-major
    assert np.allclose(full[0], (0.5 / 48, 0.5 / 48)) and np.allclose(full[1], (1.5 / 48, 0.5 / 48))
    assert np.allclose(full[48], (0.5 / 48, 1.5 / 48)) and np.allclose(full[-1], (47.5 / 48, 47.5 / 48))
    # short range: 16x16 x 2 anchors, then 8x8 x 6
    assert np.allclose(short[0], short[1]) and np.allclose(short[512], (0.5 / 8, 0.5 / 8))


def _fake_runner(size: int, n: int, metadata: dict | None = None, out: dict | None = None) -> SimpleNamespace:
    manifest = SimpleNamespace(
        file=f"fake_{size}.tflite", metadata=metadata or {},
        inputs=[SimpleNamespace(shape=[1, size, size, 3])],
        outputs=[SimpleNamespace(name="regressors", shape=[1, n, 16]), SimpleNamespace(name="classificators", shape=[1, n, 1])])
    return SimpleNamespace(manifest=manifest, run=lambda x: out)


def test_layout_from_metadata_or_recognised_by_shape():
    assert anchor_layout(_fake_runner(192, 2304).manifest, 192, 2304)["strides"] == [4]
    assert anchor_layout(_fake_runner(128, 896).manifest, 128, 896)["anchors_per_stride"] == 2
    meta = {"edgeaffect.anchors": '{"input_size": 192, "strides": [4], "anchors_per_stride": 1, "score_threshold": 0.6}'}
    assert anchor_layout(_fake_runner(192, 2304, meta).manifest, 192, 2304)["anchors_per_stride"] == 1
    with pytest.raises(ModelError, match="neither BlazeFace short"):
        FaceDetector(_fake_runner(160, 1000))


def test_full_range_decodes_a_far_face_in_frame_pixels():
    # one anchor fires: cell (30, 10) of the 48x48 grid, a box 8 px wide in the 192-px input
    n, size = 2304, 192
    reg = np.zeros((1, n, 16), np.float32)
    logits = np.full((1, n, 1), -10.0, np.float32)
    k = 10 * 48 + 30
    reg[0, k, :4] = (1.0, -2.0, 8.0, 8.0)  # dx, dy, w, h (input px)
    logits[0, k, 0] = 4.0
    det = FaceDetector(_fake_runner(size, n, out={"regressors": reg, "classificators": logits}), score_threshold=0.5)
    assert det.full_range and det.size == 192
    frame = np.zeros((720, 1280, 3), np.uint8)  # letterboxed: scale 1280/192, pad y (1280-720)/2
    (d,) = det.detect(frame)
    scale, pad_y = 1280 / 192, (1280 - 720) / 2
    cx, cy = ((30 + 0.5) * 4 + 1.0) * scale, ((10 + 0.5) * 4 - 2.0) * scale - pad_y
    assert d.box[2] == pytest.approx(8 * scale) and d.box[0] + d.box[2] / 2 == pytest.approx(cx)
    assert d.box[1] + d.box[3] / 2 == pytest.approx(cy)
    assert d.score == pytest.approx(1 / (1 + np.exp(-4.0)))


def _full_range_asset():
    try:
        return find_detector_model(ASSETS, "full_range")
    except ModelError:
        return None


def test_profile_selects_the_detector_range(tmp_path):
    from edgeaffect.profiles import load_profile

    p = tmp_path / "kiosk.toml"
    p.write_text('[device]\nname = "kiosk"\n\n[models]\ndetector = "full_range"\n')
    full = _full_range_asset()
    if full is None:
        with pytest.raises(ProfileError, match="models.detector: no full_range detector"):
            load_profile(p)
    else:
        assert load_profile(p).models["detector"] == full
    p.write_text('[device]\nname = "dms"\n\n[models]\ndetector = "short_range"\n')
    assert load_profile(p).models["detector"] == find_detector_model(ASSETS, "short_range")


def test_full_range_network_finds_a_small_face():
    full = _full_range_asset()
    if full is None:
        pytest.skip("no full-range detector asset yet (scripts/build_detector_full.py installs detector_full_<variant>)")
    cv2 = pytest.importorskip("cv2")
    skd = pytest.importorskip("skimage.data", reason="needs scikit-image (the [demo] extra)")
    from edgeaffect.runtime.runner import ModelRunner

    face = cv2.cvtColor(np.asarray(skd.astronaut()), cv2.COLOR_RGB2BGR)[0:260, 120:360]  # head and shoulders
    small = cv2.resize(face, (72, 78), interpolation=cv2.INTER_AREA)  # face ~45 px wide
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[400:478, 900:972] = small
    det = FaceDetector(ModelRunner(full))
    assert det.full_range
    found = det.detect(frame)
    assert any(900 <= d.box[0] + d.box[2] / 2 <= 972 and 400 <= d.box[1] + d.box[3] / 2 <= 478 for d in found), found


def _covered(tiles: list[tuple[int, int, int]], h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    for x0, y0, side in tiles:
        m[y0 : y0 + side, x0 : x0 + side] = True
    return m


def test_small_face_tiles_cover_the_frame_with_overlap():
    full = FaceDetector(_fake_runner(192, 2304))
    short = FaceDetector(_fake_runner(128, 896))
    assert full.small_face_px == 40.0 and short.small_face_px is None
    # short range keeps its short-side tiles (two 720-px squares along a 1280x720 frame)
    assert [t[2] for t in short.tiles(720, 1280)] == [720, 720]
    for h, w in ((720, 1280), (480, 640), (1080, 1920)):
        tiles = full.tiles(h, w)
        side = tiles[0][2]
        # a 40-px face reaches RELIABLE_FACE_PX at the model input; never larger than the short side
        assert side == min(round(192 * 40 / 18), h) and len(tiles) >= 2
        assert _covered(tiles, h, w).all()
        xs = sorted({t[0] for t in tiles})
        assert all(b - a <= side - 60 for a, b in zip(xs, xs[1:])), xs  # >= 1.5 faces of overlap
    tiny = FaceDetector(_fake_runner(192, 2304), small_face_px=20)
    assert tiny.tiles(720, 1280)[0][2] == 213 and len(tiny.tiles(720, 1280)) > len(full.tiles(720, 1280))
    with pytest.raises(ModelError, match="small_face_px"):
        FaceDetector(_fake_runner(192, 2304), small_face_px=0)


def test_small_face_tiles_leave_no_face_size_uncovered_on_a_large_photo():
    """With small_face_px set (IMAGE mode, the kiosk profile), every face from that size up to
    the size the whole-frame pass finds reliably lies whole on some tile on which it reaches the
    model's reliable width: a 280-px face in a 1434x2333 portrait fits no 284-px tile and is ~15 px on the whole
    frame (it was found by neither once IMAGE mode switched to 40-px tiles)."""
    from edgeaffect.models.detector import RELIABLE_FACE_PX

    rng = np.random.default_rng(3)
    for size, anchors in ((128, 896), (192, 2304)):
        det = FaceDetector(_fake_runner(size, anchors), small_face_px=40)
        for h, w in ((2333, 1434), (1901, 3913), (720, 1280), (1024, 817)):
            tiles = det.tiles(h, w)
            # up to the smallest face the whole-frame pass finds reliably (it sees larger ones)
            biggest = RELIABLE_FACE_PX * max(h, w) / size
            for _ in range(400):
                f = float(np.exp(rng.uniform(np.log(40), np.log(biggest))))
                x, y = rng.uniform(0, w - f), rng.uniform(0, h - f)
                ok = [t for t in tiles if t[0] <= x and t[1] <= y and x + f <= t[0] + t[2] and y + f <= t[1] + t[2]
                      and f * size / t[2] >= 0.99 * RELIABLE_FACE_PX]
                assert ok, (size, h, w, round(f), round(x), round(y))


def test_full_range_search_finds_a_40px_face():
    """The tiled small-face search of the full-range model finds a ~40-px face anywhere in a
    1280x720 frame with its real size (the whole-frame pass sees it at ~6 px and misses it or
    reports a box 1.5x too large: models/detector_full/eval_far_faces.json)."""
    full = _full_range_asset()
    if full is None:
        pytest.skip("no full-range detector asset yet (scripts/build_detector_full.py installs detector_full_<variant>)")
    cv2 = pytest.importorskip("cv2")
    skd = pytest.importorskip("skimage.data", reason="needs scikit-image (the [demo] extra)")
    from edgeaffect.runtime.runner import ModelRunner

    det = FaceDetector(ModelRunner(full), 0.5)
    face = cv2.cvtColor(np.asarray(skd.astronaut()), cv2.COLOR_RGB2BGR)[0:260, 120:360]
    small = cv2.resize(face, None, fx=40 / 110, fy=40 / 110, interpolation=cv2.INTER_AREA)  # face box ~40 px
    h, w = small.shape[:2]
    for x, y in ((300, 200), (640, 300), (1100, 600)):
        frame = np.full((720, 1280, 3), 90, np.uint8)
        frame[y : y + h, x : x + w] = small
        hits = [d for d in det.detect_tiled(frame) if x <= d.box[0] + d.box[2] / 2 <= x + w and y <= d.box[1] + d.box[3] / 2 <= y + h]
        assert hits and 28 <= hits[0].box[2] <= 52 and hits[0].score >= 0.7, ((x, y), hits)


def test_zoomed_out_pass_maps_boxes_back_to_the_frame(assets):
    """The zoomed-out pass (the frame at half size in the middle of the input, for faces that
    fill the frame) reports boxes in frame pixels: on a close-up it finds the face where the
    whole-frame pass does."""
    cv2 = pytest.importorskip("cv2")
    skd = pytest.importorskip("skimage.data", reason="needs scikit-image (the [demo] extra)")
    from edgeaffect.models import find_model
    from edgeaffect.models.detector import ZOOM_OUT, iou
    from edgeaffect.runtime.runner import ModelRunner

    det = FaceDetector(ModelRunner(find_model(assets, "detector")), score_threshold=0.4)
    head = cv2.cvtColor(np.asarray(skd.astronaut()), cv2.COLOR_RGB2BGR)[0:260, 120:360]
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 100:543] = cv2.resize(head, (443, 480), interpolation=cv2.INTER_AREA)  # a close-up: face ~170 px
    x, _, _, _ = det.preprocess(frame, ZOOM_OUT)
    img = x[0] if x.shape[-1] == 3 else x[0].transpose(1, 2, 0)
    q = det.size // 4  # the frame fills the middle half of the square (the 4:3 frame's width), the rest is black
    assert np.all(img[:, :q] == -1.0) and np.all(img[:, -q:] == -1.0)
    whole, zoomed = det.detect(frame), det.detect_zoomed_out(frame)
    assert zoomed, "the zoomed-out pass found no face on a close-up"
    assert whole, "the whole-frame pass found no face on a close-up"
    assert iou(whole[0].box, zoomed[0].box) > 0.6, (whole[0].box, zoomed[0].box)
