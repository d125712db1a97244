"""Fixed vocabularies shared by the runtime, the converters and the training code.

Keeping them in one place is what makes a model file, its manifest and the output schema
agree: the AU order here *is* the order of the AU network's output vector.
"""

from __future__ import annotations

import numpy as np

#: The 15 Action Units xTrace reports, in network output order.
AU_NAMES: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10",
    "AU12", "AU14", "AU15", "AU17", "AU23", "AU25", "AU45",
)
AU_INDEX = {name: i for i, name in enumerate(AU_NAMES)}
AU_MAX = 5.0

NUM_LANDMARKS = 68

# iBUG-68 index groups (0-based).
JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))  # subject's right = image left
LEFT_BROW = tuple(range(22, 27))
NOSE_BRIDGE = tuple(range(27, 31))
NOSE_BASE = tuple(range(31, 36))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
OUTER_LIPS = tuple(range(48, 60))
INNER_LIPS = tuple(range(60, 68))

#: Where each point goes under a horizontal flip (used by augmentation and by tests).
IBUG_FLIP_PERMUTATION: tuple[int, ...] = tuple(
    list(range(16, -1, -1))  # jaw 0..16 -> 16..0
    + list(range(26, 16, -1))  # brows 17..26 -> 26..17
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46]  # right eye -> left eye
    + [39, 38, 37, 36, 41, 40]  # left eye -> right eye
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


#: The expression classes the AU network's expression head reports, in output order (the
#: JSONL `expression` mapping and the CSV `expr_*` columns follow it). Contempt is not among
#: them: 9 labelled images and no teacher that knows it cannot support a class.
EXPRESSIONS: tuple[str, ...] = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")

#: Temporal model input layout: [68 x (x, y) normalised points, 68 uncertainties, 15 AUs,
#: 7 expression probabilities]. Models trained before the expression head (no last 7
#: columns) are still accepted: the window is as wide as the model's input.
TEMPORAL_FEATURES_BASE = NUM_LANDMARKS * 2 + NUM_LANDMARKS + len(AU_NAMES)
TEMPORAL_FEATURES = TEMPORAL_FEATURES_BASE + len(EXPRESSIONS)

#: Expression -> (valence, arousal) on Russell's circumplex; used to compose VA training
#: targets from expression labels (there is no VA ground truth reachable; see model cards).
EXPRESSION_CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happiness": (0.75, 0.45),
    "surprise": (0.15, 0.80),
    "sadness": (-0.65, -0.35),
    "anger": (-0.60, 0.70),
    "disgust": (-0.65, 0.30),
    "fear": (-0.55, 0.75),
    "contempt": (-0.45, 0.15),
}

#: Expression -> related AUs (Behaviour4All relatedness table, restricted to our 15 AUs;
#: AU26 "jaw drop" has no output and is represented by AU25 "lips part").
EXPRESSION_AUS: dict[str, tuple[str, ...]] = {
    "happiness": ("AU06", "AU12", "AU25"),
    "surprise": ("AU01", "AU02", "AU05", "AU25"),
    "sadness": ("AU01", "AU04", "AU15", "AU17"),
    "anger": ("AU04", "AU07", "AU23"),
    "disgust": ("AU09", "AU10", "AU17"),
    "fear": ("AU01", "AU02", "AU04", "AU05", "AU25"),
    "contempt": ("AU14",),
    "neutral": (),
}


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (right_eye_centre, left_eye_centre) in image coordinates (image-left first)."""
    return points[list(RIGHT_EYE)].mean(axis=0), points[list(LEFT_EYE)].mean(axis=0)


def interocular_distance(points: np.ndarray) -> float:
    """Outer-eye-corner distance (iBUG 36-45): the normaliser of the 300-W NME."""
    return float(np.linalg.norm(points[36] - points[45]))
