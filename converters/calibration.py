"""Calibration data: load it the way the device will see it, validate it, split it.

Sources
- `X.npy`: one float array [N, *input] for a single-input model, in the TFLite layout
  (NHWC images, NTF temporal windows, as-is otherwise). An NCHW array is transposed
  automatically when its shape makes that unambiguous (and the description says so).
- `X.npz`: one array per input, keyed by the ONNX input name.
- a video file or a folder of images:
  * kinds landmarks / au / temporal / detector: `edgeaffect.calibration_inputs.collect_model_inputs`
    runs the pipeline's own preprocessing (detector -> landmark crop -> AU alignment ->
    temporal windows), so the int8 ranges are fitted to exactly what the device feeds;
  * kind generic: frames/images resized to the input size and scaled to `pixel_range`.

The set is split into disjoint calibration and held-out parts. Windows cut from one video
overlap in time, so video/temporal sources are split contiguously (held-out = the tail)
rather than at random, which keeps near-duplicate windows out of the held-out set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CalibrationError

PIPELINE_KINDS = ("landmarks", "au", "temporal", "detector")
KINDS = (*PIPELINE_KINDS, "eyes", "generic")
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".h264", ".mjpeg", ".mpg"}
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}
MIN_HOLDOUT = 8


def tflite_layout_shape(onnx_shape: list[int]) -> list[int]:
    """Shape onnx2tf gives an input: 4-D NCHW -> NHWC; other ranks are kept as-is (-kat)."""
    s = list(onnx_shape)
    if len(s) == 4:
        return [s[0], s[2], s[3], s[1]]
    return s


def layout_name(shape: list[int], kind: str, channels_last: bool) -> str:
    r = len(shape)
    if r == 4:
        return "NHWC" if channels_last else "NCHW"
    if r == 3:
        return "NTF" if kind == "temporal" else ("NWC" if channels_last else "NCW")
    if r == 2:
        return "NC"
    return ""


@dataclass
class CalibrationSet:
    arrays: dict[str, np.ndarray]  # ONNX input name -> [N, *tflite_shape[1:]] float32
    description: dict[str, Any] = field(default_factory=dict)
    contiguous: bool = False  # split the tail off instead of at random

    @property
    def n(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0]) if self.arrays else 0

    def take(self, idx: np.ndarray) -> CalibrationSet:
        return CalibrationSet({k: v[idx] for k, v in self.arrays.items()}, dict(self.description), self.contiguous)


def _fit_shape(arr: np.ndarray, name: str, onnx_shape: list[int], tfl_shape: list[int], src: str, notes: list[str]) -> np.ndarray:
    want = list(tfl_shape[1:])
    if arr.ndim == len(tfl_shape) + 1 and arr.shape[1] == 1 and tfl_shape[0] == 1:
        arr = arr[:, 0]  # [N, 1, ...] stack of batch-1 samples
    if list(arr.shape[1:]) == want and arr.ndim == len(tfl_shape):
        return arr
    if len(onnx_shape) == 4 and arr.ndim == 4 and list(arr.shape[1:]) == list(onnx_shape[1:]):
        notes.append(f"{name}: transposed NCHW -> NHWC")
        return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
    raise CalibrationError(
        f"calibration data for input {name!r} from {src} has shape {list(arr.shape)}; expected [N, {', '.join(map(str, want))}]"
        f" ({layout_name(tfl_shape, '', True) or 'as-is'} layout)"
    )


def _load_npy(path: Path, onnx_shapes: dict[str, list[int]], safe_names: dict[str, str]) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        else:
            data = {"": np.load(path, allow_pickle=False)}
    except Exception as e:
        raise CalibrationError(f"cannot read calibration file {path} ({str(e).splitlines()[0][:160]}); pass a float .npy/.npz") from None
    names = list(onnx_shapes)
    if "" in data:
        if len(names) != 1:
            raise CalibrationError(f"{path.name} holds one array but the model has inputs {names}: pass an .npz keyed by input name")
        return {names[0]: data[""]}
    out = {}
    for n in names:
        for key in (n, safe_names.get(n, n)):
            if key in data:
                out[n] = data[key]
                break
        else:
            if len(names) == 1 and len(data) == 1:
                out[n] = next(iter(data.values()))
            else:
                raise CalibrationError(f"{path.name} has no array for input {n!r} (keys: {sorted(data)})")
    return out


def _read_images(files: list[Path], shape: list[int], pixel_range: tuple[float, float], max_n: int) -> np.ndarray:
    import cv2

    _, h, w, c = shape
    out = []
    for f in files[:max_n]:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR if c == 3 else cv2.IMREAD_GRAYSCALE)
        if img is None:
            continue
        out.append(_prep_frame(img, h, w, c, pixel_range))
    return np.stack(out) if out else np.zeros((0, h, w, c), np.float32)


def _prep_frame(img: np.ndarray, h: int, w: int, c: int, pixel_range: tuple[float, float]) -> np.ndarray:
    import cv2

    if c == 3 and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif c == 1 and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    lo, hi = pixel_range
    img = img / 255.0 * (hi - lo) + lo
    return img.reshape(h, w, c)


def _read_video(path: Path, shape: list[int], pixel_range: tuple[float, float], max_n: int) -> np.ndarray:
    import cv2

    _, h, w, c = shape
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CalibrationError(f"cannot open calibration video {path}: check the file or pass a folder of images / .npy")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    step = max(1, total // max_n) if total > 0 else 1
    out, i = [], 0
    while len(out) < max_n:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            out.append(_prep_frame(frame, h, w, c, pixel_range))
        i += 1
    cap.release()
    return np.stack(out) if out else np.zeros((0, h, w, c), np.float32)


def load_calibration(
    source: str | Path | np.ndarray | dict[str, np.ndarray],
    *,
    kind: str,
    onnx_shapes: dict[str, list[int]],
    safe_names: dict[str, str] | None = None,
    max_samples: int = 500,
    nir_variant: bool = False,
    pixel_range: tuple[float, float] = (0.0, 1.0),
    pipeline_models: dict[str, str | Path] | None = None,
    models_dir: str | Path | None = None,
) -> CalibrationSet:
    """Load and validate calibration inputs (TFLite layout). Does not enforce the minimum count."""
    if kind not in KINDS:
        raise CalibrationError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    safe_names = safe_names or {}
    tfl_shapes = {n: tflite_layout_shape(s) for n, s in onnx_shapes.items()}
    notes: list[str] = []
    desc: dict[str, Any] = {"kind": kind, "nir_variant": bool(nir_variant)}
    contiguous = kind == "temporal"
    if isinstance(source, np.ndarray | dict):
        raw = source if isinstance(source, dict) else {next(iter(onnx_shapes)): source}
        desc.update(source="<in-memory arrays>", source_type="array", produced_by="passed by the caller")
        src = "the given arrays"
    else:
        path = Path(source)
        src = str(path)
        if not path.exists():
            raise CalibrationError(f"calibration source {path} not found: pass a video, a folder of images, or a .npy/.npz")
        if path.suffix in (".npy", ".npz"):
            raw = _load_npy(path, onnx_shapes, safe_names)
            desc.update(source=str(path), source_type=path.suffix[1:], produced_by="user-supplied array (assumed already in the model's input range)")
        else:
            is_video = path.is_file() and path.suffix.lower() in VIDEO_EXT
            if not (path.is_dir() or is_video):
                raise CalibrationError(f"calibration source {path} is neither a video, a folder of images nor a .npy/.npz")
            contiguous = contiguous or is_video
            if len(onnx_shapes) != 1:
                raise CalibrationError(f"the model has {len(onnx_shapes)} inputs: calibrate multi-input models with an .npz keyed by input name")
            (name, oshape), = onnx_shapes.items()
            if kind in PIPELINE_KINDS:
                raw = {name: _pipeline_inputs(path, kind, max_samples, nir_variant, pipeline_models, models_dir)}
                desc.update(
                    source=str(path), source_type="video" if is_video else "images",
                    produced_by=f"edgeaffect.calibration_inputs.collect_model_inputs (the pipeline's own {kind} preprocessing"
                    + (", NIR-like variant" if nir_variant else "") + ")",
                )
            else:
                tshape = tfl_shapes[name]
                if len(tshape) != 4 or tshape[-1] not in (1, 3):
                    raise CalibrationError(f"input {name!r} {oshape} is not an image: calibrate it with a .npy/.npz")
                if is_video:
                    arr = _read_video(path, tshape, pixel_range, max_samples)
                else:
                    files = sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_EXT)
                    arr = _read_images(files, tshape, pixel_range, max_samples)
                raw = {name: arr}
                desc.update(
                    source=str(path), source_type="video" if is_video else "images",
                    produced_by=f"frames resized to {tshape[1]}x{tshape[2]} ({'RGB' if tshape[-1] == 3 else 'grey'}), scaled to {list(pixel_range)}",
                )
    arrays: dict[str, np.ndarray] = {}
    for name, oshape in onnx_shapes.items():
        if name not in raw:
            raise CalibrationError(f"calibration data has no array for input {name!r}")
        a = np.asarray(raw[name])
        if a.size == 0 or a.ndim == 0:
            raise CalibrationError(
                f"calibration source {src} gave no samples for {name!r}"
                + (" (no faces found?): use footage with visible faces, or pass --calib X.npy" if kind in PIPELINE_KINDS else "")
            )
        if not np.issubdtype(a.dtype, np.number):
            raise CalibrationError(f"calibration data for {name!r} is {a.dtype}, expected float32")
        a = _fit_shape(a.astype(np.float32, copy=False), name, oshape, tfl_shapes[name], src, notes)
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise CalibrationError(f"calibration data for {name!r} from {src} contains {bad} NaN/inf values: clean the data and retry")
        arrays[name] = np.ascontiguousarray(a)
    ns = {a.shape[0] for a in arrays.values()}
    if len(ns) != 1:
        raise CalibrationError(f"calibration arrays have different sample counts {sorted(ns)}: give every input the same N")
    n = ns.pop()
    if n > max_samples:
        idx = np.linspace(0, n - 1, max_samples).round().astype(int)
        arrays = {k: v[idx] for k, v in arrays.items()}
        notes.append(f"subsampled {n} -> {max_samples} evenly")
    desc["layout"] = {k: layout_name(tfl_shapes[k], kind, True) or "as-is" for k in arrays}
    desc["value_range"] = {k: [round(float(v.min()), 6), round(float(v.max()), 6)] for k, v in arrays.items()}
    if notes:
        desc["notes"] = notes
    return CalibrationSet(arrays, desc, contiguous)


def _pipeline_inputs(
    path: Path, kind: str, max_samples: int, nir_variant: bool,
    pipeline_models: dict[str, str | Path] | None, models_dir: str | Path | None,
) -> np.ndarray:
    try:
        from edgeaffect.calibration_inputs import collect_model_inputs
    except ImportError:
        raise CalibrationError(
            "edgeaffect.calibration_inputs is not available in this installation, so a video/folder cannot be "
            f"turned into {kind} inputs: pass --calib X.npy"
        ) from None
    data = collect_model_inputs(
        str(path), [kind], max_per_kind=max_samples, nir_variant=nir_variant,
        onnx_models=dict(pipeline_models or {}) or None, models_dir=Path(models_dir) if models_dir else None,
    )
    arr = data.get(kind) if isinstance(data, dict) else None
    if arr is None or len(arr) == 0:
        raise CalibrationError(
            f"calibration source {path} gave no {kind} samples (no faces found?): use footage with visible faces, or pass --calib X.npy"
        )
    return np.asarray(arr, dtype=np.float32)


def split_calibration(
    cal: CalibrationSet,
    *,
    holdout: CalibrationSet | None = None,
    holdout_fraction: float = 0.2,
    min_calib: int = 32,
    max_holdout: int = 200,
    seed: int = 0,
) -> tuple[CalibrationSet, CalibrationSet]:
    """Disjoint (calibration, held-out) sets; refuses absurdly small sets with what to do."""
    n = cal.n
    if holdout is not None:
        if n < min_calib:
            raise CalibrationError(f"calibration source gives {n} samples, need at least {min_calib}: add data (or lower --min-calib)")
        if holdout.n < MIN_HOLDOUT:
            raise CalibrationError(f"held-out source gives {holdout.n} samples, need at least {MIN_HOLDOUT}")
        return cal, holdout.take(np.arange(min(holdout.n, max_holdout)))
    need = min_calib + MIN_HOLDOUT
    if n < need:
        raise CalibrationError(
            f"calibration source gives {n} samples, need at least {need} ({min_calib} to calibrate + {MIN_HOLDOUT} held out): "
            "add data (or lower --min-calib)"
        )
    n_hold = int(round(n * holdout_fraction))
    n_hold = max(MIN_HOLDOUT, min(n_hold, max_holdout, n - min_calib))
    if cal.contiguous:
        idx = np.arange(n)
    else:
        idx = np.random.default_rng(seed).permutation(n)
    hold_idx, cal_idx = np.sort(idx[n - n_hold:]), np.sort(idx[: n - n_hold])
    c, h = cal.take(cal_idx), cal.take(hold_idx)
    split = "contiguous (held-out = last part of the sequence)" if cal.contiguous else f"random, seed {seed}"
    for s in (c, h):
        s.description.update(calibration_samples=int(len(cal_idx)), held_out_samples=int(len(hold_idx)), samples_total=int(n), split=split)
    return c, h
