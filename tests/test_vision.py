import math

import numpy as np
import pytest

from edgeaffect.capture.base import Frame
from edgeaffect.constants import IBUG_FLIP_PERMUTATION
from edgeaffect.errors import FrameFormatError
from edgeaffect.vision.alignment import (
    FaceWindow,
    apply_affine,
    au_crop_matrix,
    invert_affine,
    normalise_landmarks,
    similarity_transform,
    window_from_landmarks,
)
from edgeaffect.vision.eyes import EyeStateTracker, eye_aspect_ratio
from edgeaffect.vision.frames import normalise_frame
from edgeaffect.vision.headpose import estimate_head_pose


def mean_face(scale=100.0, cx=320.0, cy=240.0, angle=0.0) -> np.ndarray:
    """A plausible frontal 68-point face built from the AU template geometry."""
    rng = np.random.default_rng(0)
    base = np.zeros((68, 2))
    t = np.linspace(-1, 1, 17)
    base[0:17] = np.c_[t * 0.9, 0.2 + 0.8 * (1 - t**2) ** 0.5]  # jaw
    base[17:22] = np.c_[np.linspace(-0.75, -0.15, 5), -0.55 + np.zeros(5)]
    base[22:27] = np.c_[np.linspace(0.15, 0.75, 5), -0.55 + np.zeros(5)]
    base[27:31] = np.c_[np.zeros(4), np.linspace(-0.35, 0.05, 4)]
    base[31:36] = np.c_[np.linspace(-0.2, 0.2, 5), 0.15 + np.zeros(5)]
    for k, cxe in ((36, -0.45), (42, 0.45)):
        a = np.linspace(0, 2 * np.pi, 7)[:-1]
        base[k : k + 6] = np.c_[cxe - 0.15 * np.cos(a), -0.3 - 0.06 * np.sin(a)]
    a = np.linspace(0, 2 * np.pi, 13)[:-1]
    base[48:60] = np.c_[-0.35 * np.cos(a), 0.5 - 0.12 * np.sin(a)]
    a = np.linspace(0, 2 * np.pi, 9)[:-1]
    base[60:68] = np.c_[-0.25 * np.cos(a), 0.5 - 0.04 * np.sin(a)]
    base += rng.normal(0, 0.002, base.shape)
    c, s = math.cos(angle), math.sin(angle)
    return base @ np.array([[c, s], [-s, c]]) * scale + np.array([cx, cy])


def test_window_roundtrip_and_rotation():
    pts = mean_face(angle=math.radians(20))
    w = window_from_landmarks(pts)
    assert abs(math.degrees(w.angle) - 20) < 2
    m = w.to_crop_matrix(96)
    crop_pts = apply_affine(m, pts)
    assert crop_pts.min() > 0 and crop_pts.max() < 96  # the whole face is inside the crop
    back = apply_affine(invert_affine(m), crop_pts)
    assert np.allclose(back, pts, atol=1e-6)


def test_similarity_transform_recovers_known_transform():
    src = np.random.default_rng(1).normal(size=(5, 2))
    ang, sc, t = 0.3, 1.7, np.array([3.0, -2.0])
    r = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]]) * sc
    m = similarity_transform(src, src @ r.T + t)
    assert np.allclose(m[:, :2], r, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_normalised_landmarks_invariant_to_similarity():
    a = normalise_landmarks(mean_face())
    b = normalise_landmarks(mean_face(scale=37.0, cx=100, cy=50, angle=0.5))
    # up to the alignment's fixed grid (2^-16 linear, 2^-8 px shift: ~1e-4 in these units)
    assert np.abs(a - b).max() < 1e-4
    assert np.abs(a).max() < 1.5
    assert au_crop_matrix(mean_face()).shape == (2, 3)


def test_flip_permutation_is_an_involution():
    p = np.array(IBUG_FLIP_PERMUTATION)
    assert sorted(p) == list(range(68)) and np.all(p[p] == np.arange(68))


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((120, 160), np.uint8),
        np.zeros((120, 160, 1), np.uint8),
        np.zeros((120, 160, 4), np.uint8),
        (np.arange(120 * 160).reshape(120, 160) % 1024).astype(np.uint16),
        np.full((120, 160, 3), 0.5, np.float32),
    ],
)
def test_odd_frame_formats_normalise(frame):
    nf = normalise_frame(frame)
    assert nf.bgr.shape == (120, 160, 3) and nf.bgr.dtype == np.uint8
    assert nf.gray.shape == (120, 160) and nf.gray.dtype == np.uint8


def test_ten_bit_mono_uses_full_range():
    f = np.full((64, 64), 1023, np.uint16)
    assert normalise_frame(f, bit_depth=10).gray.max() == 255
    assert normalise_frame(Frame(f, 0.0, 0, "R10")).gray.max() == 255
    assert normalise_frame(f).gray.max() == 3, "a bare uint16 array is 16-bit unless told otherwise"


@pytest.mark.parametrize("peak", [1023, 512, 300])
def test_ten_bit_value_maps_by_declared_depth_not_by_the_brightest_pixel(peak):
    """The same 10-bit sensor value is the same 8-bit value whatever else is in the frame."""
    f = np.full((64, 64), 200, np.uint16)
    f[0, 0] = peak  # the frame's brightest pixel differs per case
    for frame in (Frame(f, 0.0, 0, "R10"), Frame(f, 0.0, 0, "GREY", {"bit_depth": 10}), Frame(f, 0.0, 0, "Y10")):
        assert frame.bit_depth == 10
        nf = normalise_frame(frame)
        assert nf.gray[5, 5] == 200 >> 2 == 50
        assert nf.gray[0, 0] == peak >> 2
    assert normalise_frame(f, bit_depth=10).gray[5, 5] == 50


def test_values_beyond_the_declared_depth_saturate():
    f = np.full((64, 64), 4095, np.uint16)  # 12-bit data in a frame declared 10-bit
    assert normalise_frame(Frame(f, 0.0, 0, "R10")).gray.max() == 255


def test_frame_declares_depth_and_channel_order():
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0] = 200  # red in R, G, B order
    assert Frame.from_array(rgb, channel_order="rgb").channel_order == "rgb"
    assert tuple(normalise_frame(Frame.from_array(rgb, channel_order="rgb")).bgr[0, 0]) == (0, 0, 200)
    assert Frame(np.zeros((40, 40), np.uint16), 0.0).bit_depth == 16
    assert Frame(np.zeros((40, 40), np.uint8), 0.0, 0, "GREY").bit_depth == 8
    with pytest.raises(FrameFormatError, match="bit depth 20"):
        normalise_frame(Frame(np.zeros((40, 40), np.uint16), 0.0, bit_depth=20))


@pytest.mark.parametrize(
    "frame,msg",
    [
        (np.zeros((10, 10, 3), np.uint8), "smaller"),
        (np.zeros((64, 64, 2), np.uint8), "shape"),
        (np.zeros((64, 64), np.int64), "dtype"),
        (np.full((64, 64), np.nan, np.float32), "NaN"),
        ("not an array", "numpy"),
    ],
)
def test_bad_frames_raise_clear_errors(frame, msg):
    with pytest.raises(FrameFormatError, match=msg):
        normalise_frame(frame)


def test_head_pose_frontal_and_turned():
    pose = estimate_head_pose(mean_face(), (640, 480))
    assert pose is not None and abs(pose.roll) < 3 and abs(pose.yaw) < 15
    turned = mean_face()
    right = turned[:, 0] > 320
    turned[right, 0] = 320 + (turned[right, 0] - 320) * 0.7  # image-right half foreshortened
    tp = estimate_head_pose(turned, (640, 480))
    assert tp is not None and tp.yaw > 10  # + = subject turned towards the image right
    rolled = estimate_head_pose(mean_face(angle=math.radians(15)), (640, 480))
    assert rolled is not None and abs(abs(rolled.roll) - 15) < 4


def test_eye_openness_and_blink():
    pts = mean_face()
    open_ear = eye_aspect_ratio(pts, tuple(range(36, 42)))
    closed = pts.copy()
    for k in (36, 42):
        centre_y = closed[k : k + 6, 1].mean()
        closed[k : k + 6, 1] = centre_y + (closed[k : k + 6, 1] - centre_y) * 0.1
    assert eye_aspect_ratio(closed, tuple(range(36, 42))) < 0.2 * open_ear
    tr = EyeStateTracker()
    states = [tr.update(pts) for _ in range(10)] + [tr.update(closed) for _ in range(3)] + [tr.update(pts) for _ in range(3)]
    assert states[0].openness > 0.9
    assert states[11].openness < 0.3
    assert sum(s.blink for s in states) == 1 and states[-1].blinks_total == 1


def test_face_window_box():
    assert FaceWindow(10, 20, 8, 0).box() == (6, 16, 8, 8)


def test_float_frames_are_zero_to_one_by_contract_never_scaled_by_their_peak():
    """A float frame is [0, 1]: the same float value is the same 8-bit value whatever the
    brightest pixel; 0-255 floats (or HDR) are refused with a clear error, not guessed."""
    from edgeaffect.errors import FrameFormatError

    dark = np.full((64, 64), 0.2, np.float32)
    bright = dark.copy()
    bright[0, 0] = 1.0
    assert normalise_frame(dark).gray[5, 5] == normalise_frame(bright).gray[5, 5] == 51
    assert normalise_frame(np.full((64, 64), 1.005, np.float32)).gray.max() == 255  # small overshoot clips
    for bad in (np.full((64, 64), 200.0, np.float32), np.full((64, 64), -0.5, np.float64)):
        with pytest.raises(FrameFormatError, match=r"\[0, 1\]"):
            normalise_frame(bad)
