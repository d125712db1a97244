"""edgeaffect.bench smoke runs: seconds, not minutes. Skipped cleanly without models / shared data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeaffect.bench import report
from edgeaffect.bench.e2e_bench import BREAKDOWN_ROWS

from .conftest import VIDEO


def _generic_manifest(tflite: Path, out_dir: Path) -> Path:
    """A hand-made manifest for any .tflite (kind 'generic'), as the module bench needs."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeaffect.runtime.manifest import Manifest, TensorSpec, sha256_file

    dst = out_dir / tflite.name
    dst.write_bytes(tflite.read_bytes())
    it = Interpreter(model_path=str(dst))

    def spec(d, name):
        s, z = d["quantization"]
        return TensorSpec(name, d["name"], [int(v) for v in d["shape"]], np.dtype(d["dtype"]).name, "", float(s), int(z))

    m = Manifest("probe", "generic", "float32", dst.name, sha256_file(dst),
                 [spec(d, f"in{i}") for i, d in enumerate(it.get_input_details())],
                 [spec(d, f"out{i}") for i, d in enumerate(it.get_output_details())], macs=31_000_000)
    p = out_dir / "probe.json"
    m.write(p)
    return p


def test_module_bench_on_any_tflite(tmp_path):
    """benchmark_model-style cell on MediaPipe's BlazeFace file (no shipped models needed)."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")  # locate the file without importing mediapipe (slow)
    if spec is None or not spec.origin:
        pytest.skip("mediapipe not installed")
    src = Path(spec.origin).parent / "modules" / "face_detection" / "face_detection_short_range.tflite"
    if not src.exists():
        pytest.skip("mediapipe's face_detection_short_range.tflite not found")
    from edgeaffect.bench.module_bench import ModuleBenchConfig, bench_module, parse_delegate

    manifest = _generic_manifest(src, tmp_path)
    cfg = ModuleBenchConfig(num_runs=5, min_s=0.0, warmup_runs=1, warmup_min_s=0.0, benchmark_model="")
    e = bench_module("detector", manifest, 1, "xnnpack", cfg)
    assert "error" not in e, e.get("error")
    for k in ("load_ms", "init_ms", "first_inference_ms", "warmup", "invoke_ms", "run_ms", "memory_delta_mb", "ops", "gmacs_per_s"):
        assert k in e, k
    assert e["invoke_ms"]["count"] >= 5 and e["invoke_ms"]["p50"] > 0
    assert e["ops"] and "CONV_2D" in e["ops"]
    assert "op_profile" in e  # per-op timing: documented as unavailable without benchmark_model
    ref = bench_module("detector", manifest, 1, "reference", cfg)
    assert "error" not in ref and "no XNNPACK" in ref["delegate_detail"]
    assert parse_delegate("armnn:/x/libarmnnDelegate.so:backends=CpuAcc,level=1") == {
        "kind": "armnn", "library": "/x/libarmnnDelegate.so", "options": {"backends": "CpuAcc", "level": "1"}}


@pytest.fixture
def bench_models(request) -> list[str]:
    """--models-dir args: $EDGEAFFECT_BENCH_MODELS_DIR (e.g. stand-in models) or the shipped assets (else skip)."""
    d = os.environ.get("EDGEAFFECT_BENCH_MODELS_DIR")
    if d:
        return ["--models-dir", d]
    request.getfixturevalue("assets")
    return []


@pytest.mark.shared_data
def test_e2e_smoke_bench_cli(bench_models, shared_data, tmp_path, monkeypatch):
    """~20 frames, min_seconds 0: the CI smoke bench."""
    if not VIDEO.exists():
        pytest.skip(f"{VIDEO} not present")
    from edgeaffect.bench.cli import bench_main
    from edgeaffect.progress import ProgressBar

    seen: list[int] = []  # the progress bar (drawn only on a terminal) hears every measured frame
    monkeypatch.setattr(ProgressBar, "update", lambda self, done, total=None: seen.append(done))

    rc = bench_main(["e2e", "--source", str(VIDEO), "--frames", "20", "--min-seconds", "0", "--warmup", "3",
                     "--label", "smoke", "--out", str(tmp_path), "-q", "--no-plots", *bench_models])
    assert rc == 0
    d = report.load(tmp_path / "smoke.json")
    e = d["e2e"]
    assert e["frames"] == 20 and e["warmup_frames"] == 3
    assert seen == list(range(1, 21))
    assert not e["criteria"]["mlperf_single_stream"]
    assert e["latency_ms"]["p90"] >= e["latency_ms"]["p50"] > 0
    assert set(e["stages_ms"]) >= {"track", "prep", "pose_eyes"}
    bd = e["stage_breakdown"]
    assert list(bd) == [k for k, _ in BREAKDOWN_ROWS]
    for k in ("prep", "detect", "landmarks", "pose_eyes", "au", "va", "output", "model", "python_overhead", "frame"):
        assert bd[k]["frames"] == 20 and bd[k]["p90"] >= bd[k]["p50"] >= 0, k
    assert bd["decode"]["frames"] > 0  # measured while preloading
    assert "Where the time goes" in (tmp_path / "smoke.md").read_text()
    assert e["macs"]["sum_all_models"] is None or e["macs"]["sum_all_models"] > 0
    assert set(d["fingerprint"]["models"]) >= {"detector", "landmarks"}
    assert all(len(m["sha256"]) == 64 for m in d["fingerprint"]["models"].values())
    assert d["estimates"]["pi"]["label"].startswith("ESTIMATE")
    assert (tmp_path / "smoke.md").exists()
    json.dumps(d)


@pytest.mark.shared_data
def test_mediapipe_cli_without_mediapipe_still_reports_edgeaffect(bench_models, shared_data, tmp_path, monkeypatch, capsys):
    """`edgeaffect bench mediapipe` with mediapipe not importable: message, exit 0, edgeaffect numbers."""
    if not VIDEO.exists():
        pytest.skip(f"{VIDEO} not present")
    import sys

    from edgeaffect.bench.cli import bench_main

    monkeypatch.setitem(sys.modules, "mediapipe", None)
    rc = bench_main(["mediapipe", "--source", str(VIDEO), "--frames", "15", "--rounds", "1", "--warmup", "2",
                     "--label", "nomp", "--out", str(tmp_path), "--no-plots", "--no-pin", *bench_models])
    assert rc == 0
    assert "skipped" in capsys.readouterr().err
    d = report.load(tmp_path / "nomp.json")
    v = d["vs_mediapipe"]
    assert v["skipped"] and "mediapipe" in v["reason"]
    assert v["contenders"]["edgeaffect"]["frames"] == 13 and v["contenders"]["edgeaffect"]["fps"] > 0
    assert any("skipped" in n for n in d["notes"])
    assert "MediaPipe part skipped" in (tmp_path / "nomp.md").read_text()
