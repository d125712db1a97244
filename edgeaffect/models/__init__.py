"""One module per network: detector (BlazeFace), landmarks, AUs, temporal affect.

Each wraps a manifest-checked `ModelRunner` and owns its pre/post-processing, so the
analyzer only moves images and arrays between them. Shipped int8 files live in assets/
with a manifest (.json) and a model card (.md) each.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"

#: Default model file stems in assets/ (the int8 variants the project ships).
DEFAULT_MODELS = {
    "detector": "detector_int8",
    "landmarks": "landmarks_int8",
    "au": "aus_int8",
    "temporal": "affect_int8",
}
