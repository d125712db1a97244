"""The cross-ISA checkers can fail (issue 13): fed a perturbed result, they say FAIL."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"aarch64_{name}", REPO / "scripts" / "aarch64" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


compare = _load("compare")
compare_pipeline = _load("compare_pipeline")


def _outputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "xnnpack/affect_int8/0/PartitionedCall:0": rng.normal(size=(1, 128, 8)).astype(np.float32),
        "xnnpack/detector_float16/0/Identity": (rng.normal(size=(1, 896, 16)) * 40).astype(np.float32),
        "xnnpack/landmarks_dynamic_range/0/Identity_2": rng.normal(size=(1, 1)).astype(np.float32),
        "reference/aus_int8/0/PartitionedCall:0": rng.uniform(0, 5, (1, 15)).astype(np.float32),
        "xnnpack/probe_int8/0/out": rng.integers(-128, 128, (1, 10)).astype(np.int8),
        "vision/nir/enhanced": rng.integers(0, 256, (64, 64)).astype(np.uint8),
    }


def _save(path: Path, d: dict[str, np.ndarray], machine: str) -> str:
    meta = {"machine": machine, "backend": "test", "models": [], "variants": {"affect_int8": "int8"}}
    np.savez(path, __meta__=np.array(json.dumps(meta)), **d)
    return str(path)


def test_identical_outputs_pass(tmp_path):
    x = _outputs()
    assert compare.main([_save(tmp_path / "a.npz", x, "x86_64"), _save(tmp_path / "b.npz", x, "aarch64")]) == 0


@pytest.mark.parametrize("key,delta,passes", [
    ("xnnpack/affect_int8/0/PartitionedCall:0", 0.5, False),  # the perturbation: int8 must be bit-identical
    ("xnnpack/affect_int8/0/PartitionedCall:0", 1e-7, False),  # even one last bit
    ("xnnpack/probe_int8/0/out", 1, False),  # raw integer tensors too
    ("xnnpack/detector_float16/0/Identity", 1e-3, True),  # float16: within 1e-4 x max|out| (~4e-3 here)
    ("xnnpack/detector_float16/0/Identity", 0.5, False),
    ("xnnpack/landmarks_dynamic_range/0/Identity_2", 5e-7, True),
    ("xnnpack/landmarks_dynamic_range/0/Identity_2", 0.01, False),
    ("reference/aus_int8/0/PartitionedCall:0", 0.1, True),  # reference kernels: reported, not required
    ("vision/nir/enhanced", 1, True),  # one grey level allowed
    ("vision/nir/enhanced", 3, False),
])
def test_perturbed_outputs(tmp_path, key, delta, passes):
    x = _outputs()
    y = {k: v.copy() for k, v in x.items()}
    if y[key].dtype.kind in "iu":
        y[key][0, 0] = y[key][0, 0] + delta if y[key][0, 0] < 100 else y[key][0, 0] - delta
    else:
        y[key][0, 0] += delta
    rc = compare.main([_save(tmp_path / "a.npz", x, "x86_64"), _save(tmp_path / "b.npz", y, "aarch64"),
                       "--json", str(tmp_path / "v.json")])
    v = json.loads((tmp_path / "v.json").read_text())
    assert (rc == 0) is passes and v["pass"] is passes and v["line"].endswith("PASS" if passes else "FAIL")


def test_missing_tensor_fails(tmp_path):
    x = _outputs()
    y = dict(x)
    del y["xnnpack/detector_float16/0/Identity"]
    assert compare.main([_save(tmp_path / "a.npz", x, "x86_64"), _save(tmp_path / "b.npz", y, "aarch64")]) == 1


def _frames() -> list[dict]:
    face = {"track_id": 0, "valid": True, "landmarks": [[10.0, 20.0]] * 68, "aus": {"AU01": 0.5, "AU12": 1.0},
            "valence": 0.1, "arousal": 0.2}
    return [{"frame_index": i, "faces": [json.loads(json.dumps(face))] if i % 3 else []} for i in range(9)]


@pytest.mark.parametrize("edit,passes", [
    (lambda f: None, True),
    (lambda f: f[1]["faces"][0]["landmarks"].__setitem__(5, [10.9, 20.0]), True),
    (lambda f: f[1]["faces"][0]["landmarks"].__setitem__(5, [11.2, 20.0]), False),
    (lambda f: f[2]["faces"][0]["aus"].__setitem__("AU12", 1.06), False),
    (lambda f: f[4]["faces"][0].__setitem__("valence", 0.13), False),
    (lambda f: f[3]["faces"].append(dict(f[1]["faces"][0], track_id=7)), False),  # one more face on a frame
])
def test_pipeline_comparison_fails_on_each_goal(tmp_path, edit, passes):
    a, b = _frames(), _frames()
    edit(b)
    pa, pb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    pa.write_text("\n".join(json.dumps(r) for r in a))
    pb.write_text("\n".join(json.dumps(r) for r in b))
    assert (compare_pipeline.main([str(pa), str(pb), "--label", "test"]) == 0) is passes
