"""The tracker: landmark-window tracking, detection only when needed, ids kept through losses.

Per frame: every active track re-runs the landmark net on the window its last landmarks
define; the validity head says whether the face is still there. The detector runs only
when needed (nothing tracked, a track just lost, a lost track waiting to be re-acquired, or
every `redetect_every` frames to find new faces), and a detection either belongs to a face
already tracked, re-acquires a lost track, or opens a new track.

One person, one track:
* hysteresis instead of single thresholds: opening a new track needs a detector score of at
  least `detector_acquire` and a landmark validity of at least `validity_acquire`; keeping a
  track, or re-acquiring a lost one nearby, needs only `validity_threshold` and the
  detector's own (lower) score threshold. A value that wobbles around one threshold no longer makes a face appear,
  vanish and come back under a new id (on a camera, or across ISAs in the last bit).
* a lost track keeps its id for `max_lost_frames`; a detection re-acquires it when its centre
  is within a radius that grows with the time lost (`reacquire_radius` face sizes at once,
  plus `reacquire_growth` per lost frame, capped at `reacquire_max`) and its size is within
  a factor `reacquire_size_ratio`; the nearest such track wins. This also covers the
  detector/tracker hand-off: a face that moves too fast for the landmark window is found by
  the detector a face width further on and keeps its id. Only within `reacquire_near` face
  sizes and `reacquire_soft_frames` frames do the keep thresholds apply; further away or
  later the detection must pass the acquire thresholds as if it were new (a weak hit on the
  background never inherits an id).
* the fit must also trust itself: a landmark result whose typical per-point uncertainty
  (`LandmarkResult.typical_sigma`) is above `sigma_keep` is no face either, whatever its
  validity. The validity head was trained on faces within about +-60 deg of yaw and says
  "face" on a full profile too, where the points collapse over cheek and hair; the uncertainty
  head does not (profiles 0.06-0.10, held-out photos < 0.03, real turned faces up to 0.05).
  A new track needs its refined fit (on the window it will be tracked with) below
  `sigma_acquire`: on a profile that refinement diverges (0.065 and up), on a real turned
  face it converges (0.04 and below).
* an edit cut in a video ends every track (`scene_cuts`, edgeaffect.tracking.scene_cut): the
  window a track follows may hold another person in the new scene, and the landmark net would
  rightly call that a face.
* a tracked face that turns beyond that range (validity still high, uncertainty above
  `sigma_keep`) is `turned_away`: not valid, no landmarks, but its id is kept (not counted as
  lost, for up to `max_turned_frames`) and the same window is checked every frame, so it is
  valid again, same id, as soon as it turns back. A driver monitor reads it as "looking away".
* a lost track is not a face: the tracker reports it (state `lost`, so the temporal window
  can record the gap) but the analyzer does not list it in the frame's result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..models.detector import Detection, iou, strongest_of_overlaps
from ..models.landmarks import LandmarkResult
from ..vision.alignment import FaceWindow, au_crop_matrix, window_from_landmarks
from ..vision.grey import GreySource
from .scene_cut import SceneCutDetector
from .tracks import Track, TrackedFace
from .windows import detection_inside, window_from_detection

#: While nothing is in view, the whole-frame detector still runs every frame, but the wider
#: search runs only every SMALL_FACE_EVERY-th such frame: the tiled small-face search
#: (FaceDetector.tiles: 2 extra short-range runs, or 4-10 full-range runs sized for 40-px faces on
#: a 640x480-1280x720 frame) and the zoomed-out pass for large faces (FaceDetector.detect_zoomed_out:
#: one extra run; a face that the whole-frame pass misses because it fills the frame is picked up
#: within 10 frames, 0.33 s at 30 fps). It also runs when the whole frame gave strong hits of which
#: none became a face. IMAGE mode (`always_detect`) searches fully on every image, for every face
#: up to max_faces.
SMALL_FACE_EVERY = 10

#: Detector score a hit of the wider search needs (a whole-frame hit: `detector_acquire`, 0.4, lowered
#: because the int8 short-range model scores large, frame-filling faces low). Zoomed out and on the
#: short-side tiles: BlazeFace's usual 0.5. Zoomed out, faces score 0.6-0.9, and a coffee cup scored
#: 0.43 and passed the landmark fit; a face filling a short-side tile scores as low as 0.57
#: (Colin_Powell_0224 on a 640x480 frame). The small-face grids (IMAGE mode, `small_face_px`): 0.6,
#: MediaPipe's own full-range threshold. A photo has hundreds of such tiles; hits there that passed
#: the landmark fit without being a face scored 0.50-0.59 (a palm on emma.jpg, 6 of 200 face-free
#: 1280x720 scenes), while real faces pasted at 50-120 px into a 1024x817 frame score 0.75-0.98 on
#: them with either model. Whole pipeline, IMAGE mode, 200 face-free scenes: 1 listed face with the
#: short-range default (4 before these bounds), 0 with full range.
SEARCH_ACQUIRE = 0.5
TILE_ACQUIRE = 0.6

#: A detection whose window fit fails gets one more try on a window this much smaller, when the
#: first fit saw something face-like (validity >= RETRY_VALIDITY): the shipped int8 detector's box
#: scale varies by about +-10 % per face (scripts/fit_detector_window.py), and a turned or
#: hand-covered face often fits only on the tighter window (the shared clip's audience after the
#: cut at frame 211: found 28 frames earlier). Background hits score ~0 and are not retried.
RETRY_SCALE = 0.9
RETRY_VALIDITY = 0.05
#: A strong detection (score >= detector_acquire) that did not become a track (its landmark fit
#: failed) while there is room for more faces: the detector runs again on each of the next
#: LOOK_AGAIN_FRAMES frames instead of waiting `redetect_every` (after a cut to an audience the
#: second face was otherwise missed for ~27 frames because the first one was found).
LOOK_AGAIN_FRAMES = 5


class _Detector(Protocol):
    def detect(self, image: np.ndarray, max_faces: int = ...) -> list[Detection]: ...  # BGR, or HxW grey (mono sensor)
    def detect_tiled(self, image: np.ndarray, max_faces: int = ..., small_tile_score: float | None = ...) -> list[Detection]: ...
    def detect_zoomed_out(self, image: np.ndarray, max_faces: int = ...) -> list[Detection]: ...


class _Landmarks(Protocol):
    def run(self, gray: GreySource, window: FaceWindow) -> LandmarkResult: ...


@dataclass
class TrackerConfig:
    max_faces: int = 4  # faces tracked at once (lost ones count until dropped)
    validity_threshold: float = 0.5  # landmark validity that keeps a track (or re-acquires a lost one)
    validity_acquire: float = 0.8  # landmark validity that opens a new track (hysteresis: >= validity_threshold)
    detector_acquire: float = 0.4  # detector score that opens a new track (near a lost track: any score the detector returns)
    redetect_every: int = 30  # frames between looks for new faces while < max_faces are tracked (0: never)
    detect_small_faces: bool = True  # nothing on the whole frame -> detector on square tiles too
    max_lost_frames: int = 45  # frames a lost track keeps its id and state
    max_turned_frames: int = 900  # frames a turned-away face keeps its id without a valid fit (30 s at 30 fps)
    always_detect: bool = False  # IMAGE mode: run the detector on every call
    reacquire_radius: float = 2.0  # face sizes between a lost track's last centre and a detection, at once
    reacquire_growth: float = 0.5  # face sizes added to that radius per frame lost
    reacquire_max: float = 4.0  # cap on the radius (face sizes)
    reacquire_near: float = 1.0  # within this (face sizes) and ...
    reacquire_soft_frames: int = 3  # ... this many frames lost, the keep thresholds apply; else the acquire ones
    reacquire_size_ratio: float = 1.6  # detection side vs the track's last side, either way
    sigma_keep: float = 0.06  # typical landmark sigma (crop-normalised) above which a fit is not a face
    sigma_acquire: float = 0.05  # ... and the bound a new track's refined fit must meet (hysteresis)
    scene_cuts: bool = True  # an edit cut (a new scene in a video) ends every track: new ids after it
    window_deadzone: float = 0.05  # the landmark window moves only when centre/side change by more than this x side (or angle, rad)
    au_deadzone_px: float = 0.25  # the AU alignment changes only when it moves a face point by more than this (112-px crop)


class Tracker:
    """Owns the tracks. `step()` turns one frame into one `TrackedFace` per track."""

    def __init__(self, detector: _Detector, landmarks: _Landmarks, config: TrackerConfig | None = None) -> None:
        self.detector = detector
        self.landmarks = landmarks
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 0
        self._empty_frames = 0  # consecutive frames where nothing was found (tiled search back-off)
        self._cuts = SceneCutDetector()
        self._look_again = 0  # frames left on which to run the detector again (LOOK_AGAIN_FRAMES)
        self.scene_cuts = 0  # cuts that ended tracks so far

    def reset(self) -> None:
        """Forget all tracks (ids keep increasing, so an id is never reused for another person)."""
        self.tracks.clear()
        self._empty_frames = 0
        self._look_again = 0
        self._cuts.reset()

    def step(self, gray: GreySource, image: np.ndarray, index: int, timings_ms: dict[str, float] | None = None) -> list[TrackedFace]:
        """Track one frame. Found faces come back valid with their landmarks; tracks kept
        through a short loss come back `lost`. Sorted by track id."""
        cfg = self.config
        if cfg.scene_cuts and self._cuts(image) and self.tracks:
            self.tracks.clear()  # a new scene: nobody carries over (ids keep increasing)
            self._empty_frames = 0
            self.scene_cuts += 1
        active = [t for t in self.tracks if (t.lost == 0 or t.turned > 0) and t.landmarks is not None]
        faces: list[TrackedFace] = []
        lost_now: list[Track] = []
        turned_now: list[tuple[Track, LandmarkResult]] = []
        for t in active:
            assert t.landmarks is not None
            # a turned-away track keeps its last good landmarks, so this is its last good window
            lm = self.landmarks.run(gray, _hold_window(t.window, window_from_landmarks(t.landmarks.points), cfg.window_deadzone))
            if lm.validity >= cfg.validity_threshold and lm.typical_sigma <= cfg.sigma_keep:
                faces.append(TrackedFace(t, True, "tracking", lm))
            elif lm.validity >= cfg.validity_threshold and t.turned < cfg.max_turned_frames:
                turned_now.append((t, lm))  # a face is there, but its fit is not to be trusted
            else:
                lost_now.append(t)
        need_detect = (
            cfg.always_detect
            or not faces
            or bool(lost_now)
            or any(t.lost > 0 for t in self.tracks)
            or (cfg.redetect_every > 0 and index % cfg.redetect_every == 0 and len(faces) < cfg.max_faces)
            or (self._look_again > 0 and len(faces) < cfg.max_faces)
        )
        looking_again = self._look_again > 0
        self._look_again = max(self._look_again - 1, 0)
        if need_detect:
            td = time.perf_counter()
            dets = self.detector.detect(image, max_faces=cfg.max_faces + 2)
            strong = any(d.score >= cfg.detector_acquire for d in dets)
            # the wider search (zoomed out for large faces, tiles for small ones): on every image in
            # IMAGE mode, else on every SMALL_FACE_EVERY-th frame with nothing in view
            search = cfg.always_detect or (not faces and self._empty_frames % SMALL_FACE_EVERY == 0)
            if search and not strong:
                # only weak hits on the whole frame (below the acquire score): the stronger of
                # overlapping hits wins (a tile sees a small face larger)
                dets = strongest_of_overlaps(dets + self._search(image), 0.3)
                search = False
            detector_ms = (time.perf_counter() - td) * 1000
            self._acquire(gray, dets, faces, lost_now, turned_now, looking_again)
            if search and len(faces) < cfg.max_faces and (cfg.always_detect or not faces):
                # strong whole-frame hits, but room for more faces (a photo: the near face was found,
                # the far ones are smaller) or none of them a face (a far speaker's box too loose
                # for the landmark fit, a poster): the search still runs, on what the first pass missed
                td = time.perf_counter()
                extra = [d for d in self._search(image) if all(iou(d.box, t.box) <= 0.3 for t in dets)]
                detector_ms += (time.perf_counter() - td) * 1000
                self._acquire(gray, extra, faces, lost_now, turned_now, looking_again)
            self._empty_frames = 0 if faces else self._empty_frames + 1
            if timings_ms is not None:
                timings_ms["detector"] = detector_ms
        tracked_ids = {f.track.id for f in faces}
        for t, lm in turned_now:
            if t.id not in tracked_ids:  # (not re-acquired by a detection meanwhile)
                t.turned += 1
                faces.append(TrackedFace(t, False, "turned_away", lm))
        present = {f.track.id for f in faces}
        # Lost faces keep their id and window for a while, but never beyond max_faces: a
        # newly acquired face replaces the longest-lost ones (a driver monitor has one face).
        room = cfg.max_faces - len(faces)
        lost = sorted((t for t in self.tracks if t.id not in present), key=lambda t: t.lost)
        keep_lost = lost[: max(room, 0)]
        for t in keep_lost:
            t.lost += 1
            t.turned = 0
            faces.append(TrackedFace(t, False, "lost"))
        keep_ids = present | {t.id for t in keep_lost}
        self.tracks = [t for t in self.tracks if t.id in keep_ids and t.lost <= cfg.max_lost_frames]
        faces = [f for f in faces if f.track in self.tracks]
        for f in faces:
            if f.valid:
                assert f.lm is not None
                f.track.lost = 0
                f.track.turned = 0
                f.track.landmarks = f.lm
                f.track.window = f.lm.window.snapped()
                f.track.au_matrix = f.au_matrix = _hold_affine(f.track.au_matrix, au_crop_matrix(f.lm.points, 112), cfg.au_deadzone_px)
                pts = f.lm.points
                x0, y0 = pts.min(0)
                x1, y1 = pts.max(0)
                f.track.last_box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        faces.sort(key=lambda f: f.track.id)
        return faces

    # ------------------------------------------------------------------ helpers
    def _search(self, image: np.ndarray) -> list[Detection]:
        """The wider search: the frame zoomed out (large faces) and, unless switched off, square
        tiles (small ones); hits >= SEARCH_ACQUIRE, on the small-face grids >= TILE_ACQUIRE."""
        n = self.config.max_faces + 2
        extra = self.detector.detect_zoomed_out(image, max_faces=n)
        if self.config.detect_small_faces:
            extra += self.detector.detect_tiled(image, max_faces=n, small_tile_score=TILE_ACQUIRE)
        return [d for d in extra if d.score >= SEARCH_ACQUIRE]

    def _acquire(self, gray: GreySource, dets: list[Detection], faces: list[TrackedFace], lost_now: list[Track],
                 turned_now: list[tuple[Track, LandmarkResult]], looking_again: bool) -> None:
        """Detections -> new or re-acquired faces (appended to `faces`), each only if its landmark fit is a face."""
        cfg = self.config
        for det in dets:
            if len(faces) >= cfg.max_faces:
                break
            if any(iou(det.box, f.lm.window.box() if f.lm else (0, 0, 0, 0)) > 0.25 or detection_inside(det, f.lm) for f in faces):
                continue  # already tracked
            # (a turned-away track is in turned_now on every frame it is turned away)
            track, dist = self._match_lost(det, lost_now + [t for t, _ in turned_now], {f.track.id for f in faces})
            near = track is not None and dist <= cfg.reacquire_near and track.lost <= cfg.reacquire_soft_frames
            if not near and det.score < cfg.detector_acquire:
                continue
            lm = self._landmarks_from_detection(gray, det, near)
            if lm is None:
                if det.score >= cfg.detector_acquire and not looking_again:
                    self._look_again = LOOK_AGAIN_FRAMES  # (not re-armed by its own runs: bounded)
                continue
            faces.append(TrackedFace(track or self._new_track(), True, "detector", lm, det.score))

    def _landmarks_from_detection(self, gray: GreySource, det: Detection, near: bool) -> LandmarkResult | None:
        """The landmarks a detection starts (or re-acquires) a track with, or None if they are no
        face. `near`: it re-acquires a track lost a moment ago close by (keep thresholds)."""
        return fit_for_track(self.landmarks, gray, window_from_detection(det), self.config, near,
                             on_face=lambda lm: _on_detection(lm, det))

    def _new_track(self) -> Track:
        t = Track(self._next_id)
        self._next_id += 1
        self.tracks.append(t)
        return t

    def _match_lost(self, det: Detection, lost_now: list[Track], taken: set[int]) -> tuple[Track | None, float]:
        """The lost track this detection re-acquires and its distance: the nearest one (in its
        own face sizes) whose last box is within the time-growing radius and of a similar size;
        never one already given a face this frame."""
        cfg = self.config
        dx, dy, dw, dh = det.box
        dcx, dcy, dside = dx + dw / 2, dy + dh / 2, max(dw, dh)
        best, best_d = None, math.inf
        for t in self.tracks:
            if not (t.lost > 0 or t in lost_now) or t.last_box is None or t.id in taken:
                continue
            x, y, w, h = t.last_box
            side = max(w, h, 1.0)
            if not (1.0 / cfg.reacquire_size_ratio <= dside / side <= cfg.reacquire_size_ratio):
                continue
            d = math.hypot(dcx - (x + w / 2), dcy - (y + h / 2)) / side
            radius = min(cfg.reacquire_radius + cfg.reacquire_growth * t.lost, cfg.reacquire_max)
            if d <= radius and d < best_d:
                best, best_d = t, d
        return best, best_d


def fit_for_track(landmarks: _Landmarks, gray: GreySource, window: FaceWindow, cfg: TrackerConfig, near: bool = False,
                  on_face: Callable[[LandmarkResult], bool] | None = None) -> LandmarkResult | None:
    """The tracker's acquisition rule: the landmark fit a new track (or, `near`, a re-acquired
    lost one) starts from, given the window a detection suggests, or None if it is no face.
    `on_face`: an extra check of each fit (the tracker: its points stayed on the detection).
    scripts/eval_validity.py applies the same rule to non-face pictures."""
    thr = cfg.validity_threshold if near else cfg.validity_acquire

    def ok(lm: LandmarkResult) -> bool:
        return lm.validity >= thr and (on_face is None or on_face(lm))

    lm = landmarks.run(gray, window)
    if not ok(lm):
        retries = [FaceWindow(window.cx, window.cy, window.size * RETRY_SCALE, window.angle)] if lm.validity >= RETRY_VALIDITY else []
        # the window the first fit's own points give: a detector box off-centre by ~20 % of the face
        # (a turned face; the full-range model's boxes) fails the first fit with validity ~0, yet its
        # points land on the face (Einstein at a lectern, scripts/eval_human68.py)
        retries.append(window_from_landmarks(lm.points))
        for w in retries:
            lm = landmarks.run(gray, w)
            if ok(lm):
                break
        else:
            return None
    # One refinement pass from the landmark-defined window: the network was trained on
    # (jittered) landmark windows, so this removes the detector box bias. The fit's own
    # uncertainty is judged here, on the window the track will be followed with, not on the
    # detector's (a loose detector box alone can raise it): on a view the network cannot
    # fit (a profile) the refinement diverges and its uncertainty rises; on a face it falls.
    lm2 = landmarks.run(gray, window_from_landmarks(lm.points))
    if lm2.typical_sigma > (cfg.sigma_keep if near else cfg.sigma_acquire):
        return None
    if ok(lm2):
        return lm2
    return lm if lm.typical_sigma <= cfg.sigma_keep else None


def _on_detection(lm: LandmarkResult, det: Detection, tol: float = 0.5) -> bool:
    """The landmarks stayed on the detected face: their centre within `tol` box sides of the
    box centre (a landmark fit that slid onto the background is no face, whatever its validity)."""
    x, y, w, h = det.box
    c = lm.points.mean(0)
    return bool(math.hypot(float(c[0]) - (x + w / 2), float(c[1]) - (y + h / 2)) <= tol * max(w, h))


def _hold_window(old: FaceWindow | None, new: FaceWindow, deadzone: float) -> FaceWindow:
    """Hysteresis on the landmark window: keep the previous window while the new one is within
    `deadzone` of it (a still face gets the same crop every frame: no jitter from re-cropping,
    and last-bit differences between machines do not move the crop)."""
    if old is None or deadzone <= 0:
        return new
    new = new.snapped()
    tol = deadzone * old.size
    d_angle = abs((new.angle - old.angle + math.pi) % (2 * math.pi) - math.pi)
    if abs(new.cx - old.cx) <= tol and abs(new.cy - old.cy) <= tol and abs(new.size - old.size) <= tol and d_angle <= deadzone:
        return old
    return new


def _hold_affine(old: np.ndarray | None, new: np.ndarray, deadzone_px: float) -> np.ndarray:
    """Hysteresis on the AU alignment: keep the previous matrix while no corner of the 112-px
    crop moves by more than `deadzone_px` (crop pixels) between the two."""
    if old is None or deadzone_px <= 0:
        return new
    # Python floats, one operation at a time: cv2.invertAffineTransform's formula for `new`'s
    # inverse, then each crop corner to the frame and back through `old` (twelve numbers: numpy's
    # per-call overhead and a BLAS call for 4x2 matrices cost more than the arithmetic; never
    # np.linalg.inv, whose multi-threaded LAPACK cost ~1 ms of CPU per frame on a loaded machine)
    (a, b, c), (d, e, f) = np.asarray(new, np.float64).tolist()
    det = a * e - b * d
    det = 1.0 / det if det != 0 else 0.0
    i11, i22, i12, i21 = e * det, a * det, -b * det, -d * det
    j1, j2 = -i11 * c - i12 * f, -i21 * c - i22 * f
    (oa, ob, oc), (od, oe, of) = np.asarray(old, np.float64).tolist()
    for u, v in _AU_CROP_CORNERS:
        x, y = u * i11 + v * i12 + j1, u * i21 + v * i22 + j2
        if abs(x * oa + y * ob + oc - u) > deadzone_px or abs(x * od + y * oe + of - v) > deadzone_px:
            return new
    return old


_AU_CROP_CORNERS = ((0.0, 0.0), (112.0, 0.0), (0.0, 112.0), (112.0, 112.0))
