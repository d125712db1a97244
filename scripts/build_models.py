"""Convert the project's networks to int8 TFLite and install them into the package.

    python scripts/build_models.py [--only detector,landmarks,aus,affect] [--calib VIDEO]

Needs the [convert] extra. For each network: `edgeaffect_converters.api.convert` (onnx2tf, calibration
on the pipeline's own preprocessing of a real video with an NIR-like variant, fidelity gate
against onnxruntime on held-out samples). A network that fails its gate is NOT installed.
Passing int8 files + manifests go to edgeaffect/models/assets/, reports to models/<name>/,
then scripts/write_model_cards.py writes the cards.

Float ONNX sources: models/detector/detector.onnx (scripts/build_detector_onnx.py),
models/landmarks/landmarks.onnx (training.train_landmarks), models/aus/aus.onnx
(training.train_aus), models/affect/affect.onnx (training.train_temporal), models/eyes/eyes.onnx
(training.train_eyes; calibrated on held-out real eye patches, EDGEAFFECT_WORK/eyes/calib_heldout.npy).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "edgeaffect" / "models" / "assets"
#: What ships per network, in order of preference. E.g. BlazeFace's int8 variant fails the
#: fidelity gate (output SNR < 1 dB; models/detector/fidelity_report.md).
#: The same rule applies to every network: ship full int8 when it passes the gate, else the
#: closest passing variant (dynamic-range int8 weights, then float16), and say so on the card.
SHIP_PREFERENCE = ("int8", "dynamic_range", "float16", "float32")
sys.path.insert(0, str(REPO))
from edgeaffect.registry import REGISTRY  # noqa: E402

#: asset prefix -> (manifest kind, float ONNX source); from the one module registry.
NETWORKS = {m.asset_prefix: (m.kind, REPO / "models" / m.asset_prefix / f"{m.asset_prefix}.onnx") for m in REGISTRY}
DEFAULT_CALIB = REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"
#: Networks calibrated on their own real inputs instead of the video: the eye-state net on
#: held-out identities' eye patches (python -m training.train_eyes writes them).
OWN_CALIB = {"eyes": "eyes/calib_heldout.npy"}
#: Networks whose shipped int8 file comes from their own build script (a quantisation-aware
#: fine-tuned source and a second gate against the original float model): skipped here while it
#: is installed, so this script never replaces it with a float fallback.
OWN_BUILD = {"detector": "scripts/build_detector_int8.py --range short --install"}


def main() -> int:
    from edgeaffect_converters.api import convert

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(NETWORKS))
    ap.add_argument("--calib", default=str(DEFAULT_CALIB))
    ap.add_argument("--work", default=str(REPO / "work" / "convert"))
    a = ap.parse_args()
    pipeline_models = {kind: path for kind, path in NETWORKS.values() if path.exists()}
    ok = True
    for name in a.only.split(","):
        if name in OWN_BUILD and (ASSETS / f"{name}_int8.tflite").exists():
            print(f"== {name}: full int8 built by `python {OWN_BUILD[name]}`; skipped here", flush=True)
            continue
        kind, onnx = NETWORKS[name]
        out = Path(a.work) / name
        if out.exists():
            shutil.rmtree(out)
        print(f"== {name} ({kind}) from {onnx.relative_to(REPO)}", flush=True)
        calib = a.calib
        if name in OWN_CALIB:
            from training.paths import work

            calib = str(work(*OWN_CALIB[name].split("/")))
        res = convert(
            onnx, kind, calib, out, variants=("float32", "float16", "dynamic_range", "int8"), name=name, nir_variant=True,
            pipeline_models=pipeline_models, max_samples=600 if name in OWN_CALIB else 400,
        )
        dest = REPO / "models" / name
        for f in ("fidelity_report.json", "fidelity_report.md"):
            if (out / f).exists():
                shutil.copy(out / f, dest / f)
        passing = [v for v in SHIP_PREFERENCE if v in res.files and v not in res.failed_variants]
        if not passing:
            ok = False
            print(f"!! {name}: gate failed, not installed: {res.failures}", flush=True)
            continue
        variant = passing[0]
        ASSETS.mkdir(parents=True, exist_ok=True)
        for v in SHIP_PREFERENCE:  # exact names: `detector_*` must not remove `detector_full_*`
            for ext in (".tflite", ".json"):
                (ASSETS / f"{name}_{v}{ext}").unlink(missing_ok=True)
        shutil.copy(res.files[variant], ASSETS / f"{name}_{variant}.tflite")
        shutil.copy(res.manifests[variant], ASSETS / f"{name}_{variant}.json")
        print(f"installed {name}_{variant} into {ASSETS.relative_to(REPO)}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
