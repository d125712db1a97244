"""Run every model with fixed, seeded inputs and save all outputs to an .npz (x86 or aarch64).

    python scripts/aarch64/run_models.py --out out.npz [--models A.tflite B.tflite ...]

Models: edgeaffect/models/assets/*.tflite by default (through ModelRunner when the manifest
is beside the file, which also checks sha256 and signature), else the raw interpreter.
Each model runs twice: with LiteRT's default kernels (XNNPACK) and with the reference
kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES). Raw output tensors are stored (int8 stays int8)
under "<mode>/<model>/<input set>/<output>". A "vision" group runs the NIR frame path
(normalise_frame + enhance_nir + resize) on a synthetic 16-bit mono frame.
Only numpy, cv2 and the LiteRT interpreter are used, so it runs in the emulated aarch64
Python (scripts/aarch64_proof.sh).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _inputs(details: list[dict], rng: np.random.Generator) -> list[np.ndarray]:
    xs = []
    for d in details:
        shape = tuple(int(s) for s in d["shape"])
        dt = np.dtype(d["dtype"])
        if dt.kind in "iu":
            info = np.iinfo(dt)
            xs.append(rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64).astype(dt))
        else:
            xs.append(rng.uniform(0.0, 1.0, size=shape).astype(dt))
    return xs


def _module_of(path: Path) -> str | None:
    """The pipeline module a model file is for (from its manifest's kind), if it has a manifest."""
    j = path.with_suffix(".json")
    if not j.exists():
        return None
    kind = str(json.loads(j.read_text()).get("kind", ""))
    return {"au": "au", "temporal": "temporal", "detector": "detector", "landmarks": "landmarks", "eyes": "eyes"}.get(kind)


def run_model(path: Path, mode: str, n_sets: int, seed: int, real: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    from edgeaffect.runtime.backends import load_backend

    b = load_backend()
    kw: dict = {"model_path": str(path), "num_threads": 1}
    if mode == "reference" and b.reference_resolver is not None:
        kw["experimental_op_resolver_type"] = b.reference_resolver
    manifest = path.with_suffix(".json")
    out: dict[str, np.ndarray] = {}
    if manifest.exists():
        from edgeaffect.runtime.runner import ModelRunner

        runner = ModelRunner(manifest, num_threads=1, use_xnnpack=(mode == "xnnpack"))
        interp = runner.interpreter
    else:
        interp = b.Interpreter(**kw)
        interp.allocate_tensors()
    ins = interp.get_input_details()
    outs = interp.get_output_details()
    rng = np.random.default_rng(seed)
    for k in range(n_sets):
        for d, x in zip(ins, _inputs(ins, rng), strict=True):
            interp.set_tensor(d["index"], x)
        interp.invoke()
        for d in outs:
            out[f"{mode}/{path.stem}/{k}/{d['name']}"] = np.array(interp.get_tensor(d["index"]))
    module = _module_of(path)
    if real is not None and module in real and len(ins) == 1:
        # the recorded inputs are float (what the analyzer passes to ModelRunner.run); float models take them as is.
        # They were recorded for the module's active model: another file of the same kind with another input
        # size (e.g. the full-range detector, 192x192, beside the short-range 128x128 one) is checked on the
        # seeded inputs only.
        for k, x in enumerate(real[module]):
            if ins[0]["dtype"] != np.float32 or x.size != int(np.prod(ins[0]["shape"])):
                break  # an integer-input model is fed through ModelRunner's quantisation: not recorded here
            interp.set_tensor(ins[0]["index"], x.reshape(ins[0]["shape"]).astype(np.float32))
            interp.invoke()
            for d in outs:
                out[f"{mode}/{path.stem}/real{k}/{d['name']}"] = np.array(interp.get_tensor(d["index"]))
    return out


def run_vision(seed: int) -> dict[str, np.ndarray]:
    import cv2

    from edgeaffect.vision.frames import enhance_nir, normalise_frame

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:400, 0:640]
    frame = ((np.sin(xx / 23.0) * np.cos(yy / 17.0) + 1.0) * 400 + rng.integers(0, 100, (400, 640))).astype(np.uint16)
    nf = normalise_frame(frame, bit_depth=10)
    g = enhance_nir(nf.gray, clahe=True, gamma=1.3)
    crop = cv2.resize(g, (128, 128), interpolation=cv2.INTER_AREA)
    m = cv2.getRotationMatrix2D((320.0, 200.0), 12.5, 0.9)
    warped = cv2.warpAffine(nf.gray, m, (256, 256), flags=cv2.INTER_LINEAR)
    return {"vision/nir/gray": nf.gray, "vision/nir/enhanced": g, "vision/nir/crop": crop, "vision/nir/warp": warped}


def _variants(models: list[Path]) -> dict[str, str]:
    """model stem -> variant (int8 | float16 | dynamic_range | ...) from its manifest, when it has one."""
    out = {}
    for m in models:
        j = m.with_suffix(".json")
        if j.exists():
            out[m.stem] = str(json.loads(j.read_text()).get("variant", ""))
    return {k: v for k, v in out.items() if v}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", nargs="*", help="model files (default: edgeaffect/models/assets/*.tflite)")
    ap.add_argument("--sets", type=int, default=2, help="seeded input sets per model")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--modes", default="xnnpack,reference")
    ap.add_argument("--real-inputs", default=None, help="npz of recorded real inputs per module (record_inputs.py)")
    a = ap.parse_args(argv)
    models = [Path(m) for m in a.models] if a.models else sorted((REPO / "edgeaffect/models/assets").glob("*.tflite"))
    models = [m for m in models if not m.stem.endswith("_edgetpu")]  # Edge TPU binaries need the TPU
    from edgeaffect.runtime.backends import load_backend

    b = load_backend()
    res: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    real = dict(np.load(a.real_inputs)) if a.real_inputs else None
    for m in models:
        for mode in a.modes.split(","):
            res.update(run_model(m, mode, a.sets, a.seed, real))
    res.update(run_vision(a.seed))
    meta = {"machine": platform.machine(), "python": platform.python_version(), "backend": f"{b.name} {b.version}",
            "numpy": np.__version__, "models": [m.name for m in models], "variants": _variants(models),
            "seconds": round(time.perf_counter() - t0, 2)}
    try:
        import cv2

        meta["opencv"] = cv2.__version__
    except ImportError:
        pass
    res["__meta__"] = np.array(json.dumps(meta))
    np.savez(a.out, **res)
    print(f"[{meta['machine']}] {len(models)} model(s), {len(res) - 1} tensors -> {a.out} ({meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
