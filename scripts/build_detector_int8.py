"""Full-int8 BlazeFace: convert the quantisation-aware fine-tuned ONNX and gate it twice.

    python scripts/build_detector_int8.py --range short [--onnx models/detector/detector_qat.onnx] [--install]
    python scripts/build_detector_int8.py --range full --onnx models/detector_full/detector_full.onnx \
        --fuse-heads --equalize pairs --tag ptq_cle        # post-training int8 after exact rewrites

The ONNX comes from `python -m training.train_detector_qat --range short` (MediaPipe's
weights, cross-layer equalised and fine-tuned with the converter's int8 arithmetic simulated;
the graph is unchanged). This script runs the project's converter on it (onnx2tf, per-channel
int8 weights, int8 activations calibrated on real frames, float I/O) and gates the int8 file
with the anchor-level detector gate (converters/detector_gate.py, Budget.det_*):

1. the converter's own gate: int8 vs the fine-tuned float ONNX on held-out frames;
2. the same gate against MediaPipe's original float model (models/<name>/<name>.onnx), so the
   shipped int8 file is measured against what the float16 asset computes, not only against the
   fine-tuned intermediate;
3. (short range) the same against MediaPipe's float model on the detector inputs the pipeline
   itself produces from the shared video (edgeaffect.calibration_inputs.collect_model_inputs, as
   tests/test_fidelity_shipped.py checks the shipped file; the whole clip, so frames 0-219 were
   also fine-tuning frames).

Frames (training.detector_qat.synth_frames, letterboxed exactly as FaceDetector.preprocess does):
calibration = 400 frames of seed 0 from the training identities (shared expression photos pasted
at many scales into scenes, zoomed shared photos, video frames 0-219, face-free scenes);
held-out = 300 frames of seed 1 from the other expression identities and video frames 220+.
Writes models/<name>/int8_gate.json (both gates) and the converter's fidelity report
(models/<name>/fidelity_report_int8.*). With --install and both gates passed, the int8 file
replaces the float16 asset (then run scripts/write_model_cards.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ASSETS = REPO / "edgeaffect" / "models" / "assets"
NAMES = {"short": ("detector", 128), "full": ("detector_full", 192)}


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def _rewrite(src: Path, cal: np.ndarray, held: np.ndarray, a: argparse.Namespace, dst: Path) -> tuple[Path, dict]:
    """The exact float rewrites asked for (converters/equalize.py), checked on held-out frames."""
    import onnx
    from edgeaffect_converters.equalize import (
        activation_ranges,
        equalize,
        equalize_streams_onnx,
        find_pairs,
        fuse_heads,
        max_output_difference,
    )

    m0 = onnx.load(str(src))
    m = m0
    info: dict = {"from": _rel(src)}
    nchw = lambda x: np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # noqa: E731
    if a.fuse_heads:
        m, rep = fuse_heads(m, bound=tuple(a.bound_heads.split(",")) if a.bound_heads else False, ones_level=64.0)
        info["fuse_heads"] = [{k: v for k, v in r.items() if k != "fused"} for r in rep]
    if a.equalize == "streams":
        m, rep = equalize_streams_onnx(m, nchw(cal), alpha=a.alpha)
        info["equalize"] = {"method": "streams", "alpha": a.alpha, "streams": len(rep)}
    elif a.equalize:
        kinds = ("relu_dw", "pw_dw", "dw_pw", "dw_relu_pw") if a.equalize == "pairs" else tuple(a.equalize.split(","))
        pairs = [p for p in find_pairs(m) if p.kind in kinds]
        m, rep = equalize(m, activation_ranges(m, nchw(cal), sorted({p.tensor for p in pairs})), kinds=kinds, alpha=a.alpha)
        info["equalize"] = {"method": "pairs", "kinds": list(kinds), "alpha": a.alpha, "pairs": len(rep)}
    diff = max_output_difference(m0, m, nchw(held[:32]))
    info["max_abs_output_difference_32_held_out_frames"] = diff
    print(f"exact rewrite: max |output difference| {diff:.2e} on 32 held-out frames", flush=True)
    if diff > 1e-3:
        raise SystemExit(f"the rewritten ONNX does not reproduce {src.name} (max |diff| {diff:.3g})")
    onnx.save(m, str(dst))
    return dst, info


def main() -> int:
    import onnxruntime as ort
    from edgeaffect_converters.api import convert
    from edgeaffect_converters.detector_gate import anchor_gate
    from edgeaffect_converters.fidelity import Budget

    from edgeaffect.runtime.runner import ModelRunner
    from training.detector_qat import synth_frames, to_input

    ap = argparse.ArgumentParser()
    ap.add_argument("--range", choices=sorted(NAMES), default="short")
    ap.add_argument("--onnx", default=None, help="default: models/<name>/<name>_qat.onnx")
    ap.add_argument("--calib", type=int, default=400)
    ap.add_argument("--held", type=int, default=300)
    ap.add_argument("--install", action="store_true", help="install the int8 file when both gates pass")
    ap.add_argument("--fuse-heads", action="store_true",
                    help="exact rewrite first: fuse each clamped 1x1->depthwise head into one conv bounded to its clamp (equalize.fuse_heads)")
    ap.add_argument("--bound-heads", default="classificators",
                    help="with --fuse-heads: the outputs whose head is bounded to its clamp by a fused ReLU6 (comma list; '' = none)")
    ap.add_argument("--equalize", default="",
                    help="exact cross-layer equalisation first (converters/equalize.py): 'pairs' (every pair kind), a comma list of "
                         "pair kinds (relu_dw,pw_dw,dw_pw,dw_relu_pw) or 'streams'; ranges from the calibration frames")
    ap.add_argument("--alpha", type=float, default=0.5, help="equalisation trade-off for pairs with a dense second conv")
    ap.add_argument("--tag", default="", help="suffix of the reports (int8_gate_<tag>.json, fidelity_report_int8_<tag>.*)")
    a = ap.parse_args()
    name, size = NAMES[a.range]
    src = Path(a.onnx).resolve() if a.onnx else REPO / "models" / name / f"{name}_qat.onnx"
    orig = REPO / "models" / name / f"{name}.onnx"
    cal = to_input(synth_frames(size, a.calib, seed=0))
    held = to_input(synth_frames(size, a.held, seed=1, heldout=True))
    suffix = f"_{a.tag}" if a.tag else ""
    rewrite: dict = {}
    if a.fuse_heads or a.equalize:
        src, rewrite = _rewrite(src, cal, held, a, REPO / "models" / name / f"{name}_rewritten{suffix}.onnx")
    out = REPO / "work" / "convert" / f"{name}_int8"
    if out.exists():
        shutil.rmtree(out)
    report_name = f"fidelity_report_int8{suffix}"
    res = convert(src, "detector", cal, out, variants=("float32", "int8"), name=name, holdout=held, max_samples=1000,
                  report_name=report_name)
    dest = REPO / "models" / name
    for f in (f"{report_name}.json", f"{report_name}.md"):
        if (out / f).exists():
            shutil.copy(out / f, dest / f)
    tfl = res.files.get("int8")
    if tfl is None:
        print(f"no int8 file: {res.failures}", flush=True)
        return 1
    import onnx

    sess = ort.InferenceSession(str(orig), providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    onames = [o.name for o in sess.get_outputs()]
    runner = ModelRunner(res.manifests["int8"], num_threads=1, allow_failed=True)  # measured either way; installed only if it passes
    meta = {p.key: p.value for p in onnx.load(str(orig)).metadata_props}

    def vs_original(frames: np.ndarray) -> tuple[dict, list[str]]:
        ref: dict[str, list[np.ndarray]] = {n: [] for n in onames}
        got: dict[str, list[np.ndarray]] = {n: [] for n in onames}
        for x in frames:
            for n, v in zip(onames, sess.run(None, {iname: x.transpose(2, 0, 1)[None]}), strict=True):
                ref[n].append(v)
            o = runner.run(x[None])
            for n in onames:
                got[n].append(np.asarray(o[n], np.float64))
        return anchor_gate({n: np.concatenate(v) for n, v in ref.items()}, {n: np.concatenate(v) for n, v in got.items()}, meta, Budget())

    m2, fails2 = vs_original(held)  # gate 2: the same held-out frames
    m3, fails3 = {}, []
    video = REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"
    if a.range == "short" and video.exists():  # gate 3: the pipeline's own detector inputs from the video
        from edgeaffect.calibration_inputs import collect_model_inputs

        vx = collect_model_inputs(video, ["detector"], max_per_kind=128, max_frames=275, temporal_stride=2)["detector"]
        m3, fails3 = vs_original(np.asarray(vx, np.float32))
    rep = json.loads((out / f"{report_name}.json").read_text())
    v8 = rep.get("variants", {}).get("int8", {})
    gate1 = v8.get("task", {}).get("anchor_gate")
    passed = "int8" not in res.failed_variants and not fails2 and not fails3
    report = {
        "source_onnx": _rel(src), "original_onnx": _rel(orig), "exact_rewrite": rewrite or None,
        "calibration_frames": int(len(cal)), "held_out_frames": int(len(held)),
        "frames": "training.detector_qat.synth_frames: calibration seed 0 (training identities, video 0-219), held-out seed 1 "
                  "(other expression identities, video 220+)",
        "vs_finetuned_float": {"anchor_gate": gate1, "status": v8.get("status"), "failures": [f for f in res.failures if f.startswith("int8")]},
        "vs_mediapipe_float": {**m2, "failures": fails2},
        "vs_mediapipe_float_video_pipeline_inputs": {**m3, "failures": fails3},
        "lint": v8.get("lint"), "size_bytes": v8.get("size_bytes"),
        "passed": passed,
    }
    (dest / f"int8_gate{suffix}.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({k: report[k] for k in ("vs_finetuned_float", "vs_mediapipe_float", "vs_mediapipe_float_video_pipeline_inputs", "passed")},
                     indent=1, default=str), flush=True)
    if passed and a.install:
        for v in ("int8", "dynamic_range", "float16", "float32"):
            for ext in (".tflite", ".json", ".md"):
                (ASSETS / f"{name}_{v}{ext}").unlink(missing_ok=True)
        shutil.copy(res.files["int8"], ASSETS / f"{name}_int8.tflite")
        shutil.copy(res.manifests["int8"], ASSETS / f"{name}_int8.json")
        for ext in (".json", ".md"):  # the shipped file's converter report is the network's fidelity report
            shutil.copy(dest / f"{report_name}{ext}", dest / f"fidelity_report{ext}")
        print(f"installed {name}_int8 (run scripts/write_model_cards.py)", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
