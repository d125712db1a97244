"""The project's temporal valence/arousal network and its sampling-free uncertainty.

The network sees a sliding window [T, 226] of per-frame features (pose-normalised landmarks,
their uncertainties, AUs, expression probabilities; invalid frames are zero rows, as in
xTrace) and returns, per time step, the parameters of a Normal-Inverse-Gamma distribution for V and for A (deep evidential
regression, Amini et al. 2020). From one forward pass:

    mean      = tanh(mu)                               in [-1, 1]
    aleatoric = beta / (alpha - 1)                     (expected data noise variance)
    epistemic = beta / (nu (alpha - 1))                (variance of the mean: model ignorance)

Variances are reported as uncertainties in [0, 1] via u = tanh(2 * std) (std on the [-1, 1]
VA scale: u = 0.76 at std = 0.5, i.e. "could be anywhere on half the circumplex"); the
cumulative uncertainty combines both: tanh(2 * sqrt(aleatoric + epistemic)).

Models with a float head (manifest `edgeaffect.float_head`, see _head.py) output the TCN's
last hidden layer from the int8 body; the final 1x1 conv runs here in float on the last
step, so V/A have no int8 output steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..constants import AU_MAX, EXPRESSIONS, NUM_LANDMARKS, TEMPORAL_FEATURES, TEMPORAL_FEATURES_BASE
from ..errors import ModelError
from ..runtime.runner import ModelRunner
from ..vision.alignment import normalise_landmarks
from ._head import float_head
from ._meta import expect_kind

#: scale applied to crop-normalised landmark sigmas before they enter the window
SIGMA_FEATURE_SCALE = 20.0


def frame_features(
    points68: np.ndarray | None,
    sigma_norm: np.ndarray | None,
    aus: np.ndarray | None,
    au_matrix: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    width: int = TEMPORAL_FEATURES,
) -> np.ndarray:
    """One row of the temporal window. None (invalid face) -> zeros. `au_matrix`: the AU
    stage's 112-px alignment of the same points, reused to save a second fit. `width`:
    TEMPORAL_FEATURES, or TEMPORAL_FEATURES_BASE for models without expression inputs."""
    row = np.zeros(width, np.float32)
    if points68 is None:
        return row
    row[: NUM_LANDMARKS * 2] = normalise_landmarks(points68, au_matrix).reshape(-1)
    if sigma_norm is not None:
        row[NUM_LANDMARKS * 2 : NUM_LANDMARKS * 3] = np.minimum(np.maximum(sigma_norm * SIGMA_FEATURE_SCALE, 0), 4)  # == np.clip
    if aus is not None:
        row[NUM_LANDMARKS * 3 : TEMPORAL_FEATURES_BASE] = aus / AU_MAX
    if expression is not None and width > TEMPORAL_FEATURES_BASE:
        row[TEMPORAL_FEATURES_BASE : TEMPORAL_FEATURES_BASE + len(EXPRESSIONS)] = expression
    return row


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


@dataclass
class AffectEstimate:
    valence: float
    arousal: float
    epistemic: float
    aleatoric: float
    cumulative: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def decode_nig(raw: np.ndarray) -> dict[str, np.ndarray]:
    """raw [..., 8] -> mean [...,2], aleatoric var [...,2], epistemic var [...,2]."""
    mu = np.tanh(raw[..., 0:2])
    nu = _softplus(raw[..., 2:4]) + 1e-3
    alpha = _softplus(raw[..., 4:6]) + 1.0 + 1e-3
    beta = _softplus(raw[..., 6:8]) + 1e-4
    ale = beta / (alpha - 1.0)
    epi = ale / nu
    return {"mean": mu, "aleatoric": ale, "epistemic": epi}


def uncertainty_from_var(var: np.ndarray) -> np.ndarray:
    return np.tanh(2.0 * np.sqrt(np.maximum(var, 0.0)))


class AffectWindow:
    """Per-face sliding window of feature rows (zero-padded at the start).

    A ring buffer stored twice over (2T rows: each row is written at i and at i + T), so the
    [T, F] model input, oldest first, is always one contiguous slice of it: no copy per frame
    (measured: the deque + np.stack version cost more than the temporal network itself, and
    even a two-slice copy of the 116 KB window was a few percent of a frame).
    """

    def __init__(self, length: int, width: int = TEMPORAL_FEATURES) -> None:
        self.length = length
        self.width = width
        self._buf = np.zeros((2 * length, width), np.float32)
        self._valid = np.zeros(length, bool)
        self._next = 0
        self._count = 0

    def push(self, row: np.ndarray) -> None:
        r = row[: self.width]
        self._buf[self._next] = r
        self._buf[self._next + self.length] = r
        self._valid[self._next] = bool(np.any(row))
        self._next = (self._next + 1) % self.length
        self._count = min(self._count + 1, self.length)

    def array(self) -> np.ndarray:
        """[T, F], oldest first, newest last: a read-only view (valid until the next push)."""
        v = self._buf[self._next : self._next + self.length]
        v.flags.writeable = False
        return v

    def __len__(self) -> int:
        """Rows pushed so far, at most T."""
        return self._count

    @property
    def valid_fraction(self) -> float:
        return float(self._valid.sum() / self._count) if self._count else 0.0


class AffectModel:
    def __init__(self, runner: ModelRunner) -> None:
        expect_kind(runner.manifest, "temporal")
        self.runner = runner
        spec = runner.manifest.inputs[0]
        if len(spec.shape) != 3 or spec.shape[2] not in (TEMPORAL_FEATURES, TEMPORAL_FEATURES_BASE):
            raise ModelError(f"{runner.manifest.file}: temporal model input must be [1,T,{TEMPORAL_FEATURES}], got {spec.shape}")
        self.window_length = int(spec.shape[1])
        self.features = int(spec.shape[2])
        try:
            self.head = float_head(runner.manifest.metadata)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{runner.manifest.file}: bad edgeaffect.float_head metadata ({e}); re-convert the model") from None

    def new_window(self) -> AffectWindow:
        return AffectWindow(self.window_length, self.features)

    def run(self, window: AffectWindow) -> AffectEstimate:
        out = self.runner.run(window.array()[None])
        if self.head is not None:
            # causal model: the last step has seen the whole window; only it goes through the head
            raw = self.head(out[self.head.input][0, -1])["va_raw"].astype(np.float64)
        else:
            raw = out["va_raw"][0, -1]
        return estimate_from_raw(raw)


def _softplus1(x: float) -> float:
    """log(1 + e^x) without overflow (numpy's logaddexp(0, x) formula)."""
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def _u(var: float) -> float:
    return math.tanh(2.0 * math.sqrt(max(var, 0.0)))


def estimate_from_raw(raw: np.ndarray) -> AffectEstimate:
    """`decode_nig` + the uncertainty mapping for one step's 8 raw values, as Python floats:
    eight numbers per frame, where numpy's per-call overhead on 2-element arrays cost more than
    the temporal network's own Python wrapper (same formulas; tested against decode_nig)."""
    mu_v, mu_a, nu_v, nu_a, al_v, al_a, be_v, be_a = np.asarray(raw, np.float64).reshape(8).tolist()
    ale_v = (_softplus1(be_v) + 1e-4) / (_softplus1(al_v) + 1.0 + 1e-3 - 1.0)
    ale_a = (_softplus1(be_a) + 1e-4) / (_softplus1(al_a) + 1.0 + 1e-3 - 1.0)
    epi_v = ale_v / (_softplus1(nu_v) + 1e-3)
    epi_a = ale_a / (_softplus1(nu_a) + 1e-3)
    return AffectEstimate(math.tanh(mu_v), math.tanh(mu_a),
                          (_u(epi_v) + _u(epi_a)) / 2, (_u(ale_v) + _u(ale_a)) / 2,
                          (_u(ale_v + epi_v) + _u(ale_a + epi_a)) / 2)
