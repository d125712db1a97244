"""Running both sides on the same samples: float ONNX (onnxruntime) and a TFLite variant (ModelRunner)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def to_onnx_layout(x: np.ndarray, perm: list[int] | str | None, onnx_shape: list[int]) -> np.ndarray:
    """TFLite-layout array -> ONNX layout. perm maps ONNX->TFLite axes (tfl = onnx.transpose(perm))."""
    if perm == "reshape":
        return x.reshape([x.shape[0], *onnx_shape[1:]])
    if perm is None or list(perm) == list(range(x.ndim)):
        return x
    return np.ascontiguousarray(x.transpose(np.argsort(perm)))


def channels_last_perm(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def candidate_perms(onnx_shape: list[int], tfl_shape: list[int]) -> list[list[int] | str]:
    out: list[list[int] | str] = []
    if list(onnx_shape) == list(tfl_shape):
        out.append(list(range(len(tfl_shape))))
    if len(onnx_shape) >= 3:
        p = channels_last_perm(len(onnx_shape))
        if [onnx_shape[i] for i in p] == list(tfl_shape) and p not in out:
            out.append(p)
    if not out and int(np.prod(onnx_shape)) == int(np.prod(tfl_shape)):
        out.append("reshape")
    return out


def batches(arrays: dict[str, np.ndarray], batch: int) -> list[dict[str, np.ndarray]]:
    n = next(iter(arrays.values())).shape[0]
    return [{k: v[i : i + batch] for k, v in arrays.items()} for i in range(0, n - batch + 1, batch)]


def input_to_onnx(x: np.ndarray, onnx_shape: list[int]) -> np.ndarray:
    if len(onnx_shape) == 4 and list(x.shape[1:]) != list(onnx_shape[1:]):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def run_onnx(session, samples: dict[str, np.ndarray], info) -> dict[str, np.ndarray]:
    """Float reference outputs [N, ...] (ONNX layout) for TFLite-layout inputs."""
    b = max(1, int(next(iter(info.input_shapes.values()))[0]))
    safe = dict(zip(info.input_names, info.safe_input_names, strict=True))
    outs: dict[str, list[np.ndarray]] = {n: [] for n in info.output_names}
    for bt in batches(samples, b):
        feed = {safe[k]: input_to_onnx(v, info.input_shapes[k]) for k, v in bt.items()}
        res = session.run(info.output_names, feed)
        for n, r in zip(info.output_names, res, strict=True):
            outs[n].append(np.asarray(r, np.float32))
    return {n: np.concatenate(v, 0) for n, v in outs.items()}


def run_tflite(manifest_path: Path, samples: dict[str, np.ndarray], threads: int = 1) -> tuple[dict[str, np.ndarray], float]:
    """Raw (TFLite-layout) outputs [N, ...] through ModelRunner, and mean latency in ms."""
    from edgeaffect.runtime.runner import ModelRunner

    runner = ModelRunner(manifest_path, num_threads=threads)
    order = [s.name for s in runner.manifest.inputs]
    b = max(1, int(runner.manifest.inputs[0].shape[0]))
    outs: dict[str, list[np.ndarray]] = {}
    t_total, n = 0.0, 0
    for bt in batches(samples, b):
        t0 = time.perf_counter()
        res = runner.run(*[bt[k] for k in order])
        t_total += time.perf_counter() - t0
        n += 1
        for k, v in res.items():
            outs.setdefault(k, []).append(np.array(v, np.float32))
    return {k: np.concatenate(v, 0) for k, v in outs.items()}, (t_total / max(n, 1)) * 1000.0
