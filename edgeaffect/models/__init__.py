"""One module per network: detector (BlazeFace), landmarks, AUs, temporal affect.

Each wraps a manifest-checked `ModelRunner` and owns its pre/post-processing, so the
analyzer only moves images and arrays between them. Shipped int8 files live in assets/
with a manifest (.json) and a model card (.md) each.
"""

from pathlib import Path

from ..registry import ASSET_PREFIXES, lookup

ASSETS = Path(__file__).resolve().parent / "assets"

#: Model file name prefixes in assets/ per module. The file shipped for each is the most
#: compact variant that passed the fidelity gate at conversion (scripts/build_models.py):
#: `<prefix>_<variant>.tflite` + `.json`; VARIANT_PREFERENCE picks when several are present.
DEFAULT_MODELS = ASSET_PREFIXES  # module -> prefix (edgeaffect.registry)
VARIANT_PREFERENCE = ("int8", "int8_io", "dynamic_range", "float16", "float32")


def find_model(directory: Path, module: str) -> Path:
    """The manifest for `module` in `directory` (preferring int8); a clear error if none."""
    from ..errors import ModelError

    spec = lookup(module)
    module, prefix = spec.name, spec.asset_prefix
    for v in VARIANT_PREFERENCE:
        p = directory / f"{prefix}_{v}.json"
        if p.exists():
            return p
    raise ModelError(
        f"manifest {directory / (prefix + '_<variant>.json')} not found: no {module} model in {directory} "
        "(every model needs its .tflite and its manifest, written by `edgeaffect convert`)"
    )


#: Detector ranges a profile or user may choose (`[models] detector = "full_range"`): asset
#: file prefixes, first match wins. Full range (BlazeFace 192x192, 2304 anchors) finds faces
#: down to ~1/20 of the frame side (kiosks, lecterns); short range is the default.
DETECTOR_RANGES = {"short_range": ("detector",), "full_range": ("detector_full", "detector_full_range")}


def find_detector_model(directory: Path, detector_range: str) -> Path:
    """The manifest of the short- or full-range detector in `directory`; a clear error if none."""
    from ..errors import ModelError

    if detector_range not in DETECTOR_RANGES:
        raise ModelError(f"unknown detector range {detector_range!r}; choose from {', '.join(DETECTOR_RANGES)}")
    for prefix in DETECTOR_RANGES[detector_range]:
        for v in VARIANT_PREFERENCE:
            p = directory / f"{prefix}_{v}.json"
            if p.exists():
                return p
    raise ModelError(f"no {detector_range} detector in {directory} (looked for "
                     f"{' or '.join(p + '_<variant>.json' for p in DETECTOR_RANGES[detector_range])})")
