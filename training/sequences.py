"""Per-frame feature rows and realistic affect sequences for the temporal network.

Rows are made by the runtime's own model wrappers (edgeaffect.models: the shipped
landmark network, the AU network given as float ONNX or TFLite) exactly as the analyzer
makes them (edgeaffect.models.affect.frame_features), from crops of each expression image
under three variants: clean, photometric jitter, and occluded (a hand-like blob or a box
drawn over the mouth/eyes, as with a hand over the mouth while crying).

Sequences (`SequenceComposer`) are one identity at a time: segments of that person's images
with onset / apex / offset dynamics (rows and targets blend from the previous expression
over 4-15 frames, apex held, sometimes an offset back to the person's neutral face),
transitions between expressions, tracker jitter, occluded stretches, bursts of invalid
frames (zero rows, target held: the face was lost) and zero-padded stream starts.
Per-frame targets are the circumplex coordinates (edgeaffect.constants.EXPRESSION_CIRCUMPLEX)
of a teacher's posterior; per segment the target comes from *one* teacher drawn at random
(the dataset label or the fer posterior): where they disagree the network sees both answers
for the same face, and the NIG head's aleatoric term is what absorbs that spread. The
evaluation target is the circumplex of the soft posterior (their average).
"""

from __future__ import annotations

import numpy as np

from edgeaffect.constants import EXPRESSIONS, TEMPORAL_FEATURES
from edgeaffect.models.affect import frame_features
from edgeaffect.vision.alignment import window_from_landmarks

from .augment import jitter_window, occlude, photometric
from .targets import circumplex

VARIANTS = ("clean", "jitter", "occluded")
T = 128


def occlude_lower(img: np.ndarray, pts: np.ndarray, rng: np.random.Generator) -> None:
    """A hand over the mouth (70 %) or a random occluder from training.augment."""
    if rng.random() < 0.7:
        import cv2

        c = pts[48:68].mean(0) + rng.normal(0, 3, 2)
        w = np.linalg.norm(pts[48] - pts[54])
        shade = int(rng.integers(60, 220))
        cv2.ellipse(img, (int(c[0]), int(c[1])), (int(w * rng.uniform(0.8, 1.2)), int(w * rng.uniform(0.6, 0.9))),
                    float(rng.uniform(-30, 30)), 0, 360, shade, -1)
    else:
        occlude(img, pts, rng)


def image_rows(images, points, lm, au, seed: int = 0, log_every: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """rows [N, 3, F] (VARIANTS) and expression posteriors of the AU network [N, 3, 7].
    `lm`: edgeaffect LandmarkModel, `au`: edgeaffect AUModel (any runner)."""
    rng = np.random.default_rng(seed)
    n = len(images)
    rows = np.zeros((n, len(VARIANTS), TEMPORAL_FEATURES), np.float32)
    expr = np.zeros((n, len(VARIANTS), len(EXPRESSIONS)), np.float32)
    for i in range(n):
        for k, var in enumerate(VARIANTS):
            img = images[i]
            if var != "clean":
                img = img.copy()
                if var == "occluded":
                    occlude_lower(img, points[i], rng)
                img = photometric(img, rng)
            w = jitter_window(window_from_landmarks(points[i]), rng, strength=0.3)
            res = lm.run(img, w)
            if res.validity < lm.validity_threshold:
                continue  # the runtime would drop this face: an invalid (zero) row
            a, e = au.run_all(img, res.points)
            rows[i, k] = frame_features(res.points, res.sigma_norm, a, expression=e)
            expr[i, k] = e if e is not None else 0
        if log_every and (i + 1) % log_every == 0:
            print(f"rows: {i + 1}/{n}", flush=True)
    return rows, expr


class SequenceComposer:
    """Sequences of one identity's images (see module docstring)."""

    def __init__(self, rows: np.ndarray, identities: np.ndarray, soft: np.ndarray, label_post: np.ndarray, fer_post: np.ndarray,
                 idx: np.ndarray, cls: np.ndarray) -> None:
        self.rows = rows
        self.soft, self.label_post, self.fer_post = soft, label_post, fer_post
        self.cls = cls
        usable = idx[(rows[idx, 0] != 0).any(1)]
        self.by_id: dict[str, np.ndarray] = {}
        for i in usable:
            self.by_id.setdefault(identities[i], []).append(i)  # type: ignore[arg-type]
        self.by_id = {k: np.array(v) for k, v in self.by_id.items()}
        # identity weight: rare expressions make an identity interesting; class-balance by image
        freq = np.bincount(cls[usable], minlength=len(EXPRESSIONS)) / len(usable)
        self.img_w = {k: np.array([max(freq[cls[i]], 1e-3) ** -0.75 for i in v]) for k, v in self.by_id.items()}
        ids = list(self.by_id)
        w = np.array([self.img_w[k].sum() for k in ids])
        self.ids, self.id_p = ids, w / w.sum()
        self.neutral = EXPRESSIONS.index("neutral")
        #: probability that a segment's target comes from the dataset label (else the fer posterior)
        self.label_p = 0.5

    def _pick(self, rng: np.random.Generator, ident: str) -> int:
        v, w = self.by_id[ident], self.img_w[ident]
        return int(rng.choice(v, p=w / w.sum()))

    def sample(self, rng: np.random.Generator, t_len: int = T, still_p: float = 0.0) -> dict[str, np.ndarray]:
        """x [T,F], y [T,2] (training target: one teacher per segment), y_mean [T,2] (soft
        posterior's circumplex), valid [T], occluded [T], disagreement [T]. `still_p`: share of
        windows filled with one still frame (IMAGE mode)."""
        ident = self.ids[rng.choice(len(self.ids), p=self.id_p)]
        if still_p > 0 and rng.random() < still_p:  # one still frame filling the window: what IMAGE mode feeds
            i = self._pick(rng, ident)
            row = self.rows[i, int(rng.integers(0, 2))]
            row = row if row.any() else self.rows[i, 0]
            teacher = self.label_post[i] if rng.random() < self.label_p else self.fer_post[i]
            return {"x": np.tile(row, (t_len, 1)), "y": np.tile(circumplex(teacher), (t_len, 1)),
                    "y_mean": np.tile(circumplex(self.soft[i]), (t_len, 1)), "valid": np.ones(t_len, bool),
                    "occluded": np.zeros(t_len, bool),
                    "disagreement": np.full(t_len, 0.5 * np.abs(self.label_post[i] - self.fer_post[i]).sum(), np.float32)}
        x = np.zeros((t_len, self.rows.shape[-1]), np.float32)
        y = np.zeros((t_len, 2), np.float32)
        ym = np.zeros((t_len, 2), np.float32)
        valid = np.ones(t_len, bool)
        occl = np.zeros(t_len, bool)
        dis = np.zeros(t_len, np.float32)
        t = 0
        prev_row, prev_y, prev_ym = None, None, None
        neutral_imgs = [i for i in self.by_id[ident] if self.cls[i] == self.neutral]
        while t < t_len:
            i = self._pick(rng, ident)
            var = 2 if rng.random() < 0.15 else int(rng.integers(0, 2))
            if not self.rows[i, var].any():
                var = 0
            teacher = self.label_post[i] if rng.random() < self.label_p else self.fer_post[i]
            tgt, tgt_m = circumplex(teacher), circumplex(self.soft[i])
            d = float(0.5 * np.abs(self.label_post[i] - self.fer_post[i]).sum())
            n = int(rng.integers(20, 80))
            onset = int(rng.integers(4, 16))
            offset_to = int(rng.choice(neutral_imgs)) if neutral_imgs and rng.random() < 0.3 else None
            for j in range(n):
                if t >= t_len:
                    break
                row = self.rows[i, var if rng.random() < 0.85 else int(rng.integers(0, 2))].copy()
                if not row.any():
                    row = self.rows[i, 0].copy()
                a = 1.0
                if prev_row is not None and j < onset:  # onset: blend from the previous state
                    a = (j + 1) / (onset + 1)
                elif offset_to is not None and j >= n - onset:  # offset back to neutral
                    a = (n - j) / (onset + 1)
                src_row, src_y = (prev_row, prev_y) if j < onset else (self.rows[offset_to, 0], np.zeros(2, np.float32)) if offset_to is not None else (row, tgt)
                if src_row is None:
                    src_row, src_y = row, tgt
                src_ym = prev_ym if (j < onset and prev_ym is not None) else (np.zeros(2, np.float32) if offset_to is not None and j >= n - onset else tgt_m)
                x[t] = a * row + (1 - a) * src_row
                x[t, :136] += rng.normal(0, 0.008, 136).astype(np.float32)  # tracker jitter
                y[t] = a * tgt + (1 - a) * src_y
                ym[t] = a * tgt_m + (1 - a) * src_ym
                occl[t] = var == 2
                dis[t] = d
                t += 1
            prev_row, prev_y, prev_ym = x[t - 1].copy(), y[t - 1].copy(), ym[t - 1].copy()
        if rng.random() < 0.35:  # a burst of invalid frames (face lost): zeros, target held
            s = int(rng.integers(0, t_len))
            e = min(t_len, s + int(rng.integers(3, 50)))
            x[s:e] = 0.0
            valid[s:e] = False
        if rng.random() < 0.2:  # start of a stream: zero padding
            k = int(rng.integers(1, t_len - 16))
            x[:k] = 0.0
            valid[:k] = False
        return {"x": x, "y": y, "y_mean": ym, "valid": valid, "occluded": occl, "disagreement": dis}
