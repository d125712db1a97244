"""README figures and model cards come from report files, never from typed text.

`scripts/update_readme.py` and `scripts/write_model_cards.py` are run against a scratch copy
of the report files with altered values: what they print must follow the files.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_script_{name}", REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the script loads
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def readme() -> ModuleType:
    return _script("update_readme")


@pytest.fixture(scope="module")
def cards() -> ModuleType:
    return _script("write_model_cards")


def _fingerprint(cores: int, features: list[str], model: str = "Test CPU", machine: str = "x86_64") -> dict:
    return {"machine": machine, "cpu": {"model": model, "usable_cores": cores, "int8_features": features, "virtualised": False},
            "interpreter": {"backend": "ai-edge-litert", "version": "9.9"}}


def _bench(tmp: Path, label: str, fp: dict, *, threads: int = 3, ratio: float = 1.8) -> None:
    d = tmp / "benchmarks" / "results"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{label}.json").write_text(json.dumps({
        "schema": "edgeaffect.bench/1", "kind": "e2e", "label": label, "command": f"edgeaffect bench --label {label}",
        "fingerprint": fp, "config": {"threads": threads},
        "e2e": {"frames": 1234, "wall_s": 61.0, "throughput_fps": 777.7, "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0}},
        "vs_mediapipe": {"rounds": 5, "frames_per_round": 100, "contenders": {"edgeaffect": {"fps": 800.0, "face_rate": 0.5}},
                         "ratios": [{"name": "edgeaffect vs X", "vs": "x", "fps_ratio": ratio, "cpu_ratio": ratio, "goal": 1.5,
                                     "goal_met": ratio >= 1.5, "primary": True}]},
    }))


def test_speed_figures_carry_the_machine_they_came_from(readme, tmp_path):
    _bench(tmp_path, "vnni-host", _fingerprint(16, ["avx2", "fma", "avx512f", "avx512_vnni"], model="Big Xeon"), threads=3)
    text = readme.block(tmp_path)
    assert "Big Xeon" in text and "16 cores" in text and "int8 ISA AVX-512 VNNI" in text
    assert "2 cores" not in text and "AVX2 only" not in text
    assert "3 threads per model" in text and "1 thread per model" not in text
    assert "777.7 fps" in text and "**1.80x**" in text
    assert "`benchmarks/results/vnni-host.json` [M1]" in text
    assert "ratio" in text and "not the fps" in text
    # the margin is computed from the file: 1.8 / 1.5 - 1 = +20 %
    assert "+20.0 %" in text and "does not measure the run-to-run spread" in text


def test_per_round_ratios_give_the_spread(readme, tmp_path):
    _bench(tmp_path, "r", _fingerprint(2, ["avx2"]), ratio=1.52)
    p = tmp_path / "benchmarks" / "results" / "r.json"
    doc = json.loads(p.read_text())
    doc["vs_mediapipe"]["ratios"][0].update(round_fps_ratios=[1.47, 1.52, 1.58], cpu_ratio=None)
    p.write_text(json.dumps(doc))
    text = readme.block(tmp_path)
    assert "2 of 3 rounds reached the goal" in text and "1.47-1.58x" in text and "CPU-time" not in text


def test_two_machines_get_two_tags(readme, tmp_path):
    _bench(tmp_path, "a", _fingerprint(2, ["avx2", "fma"]))
    _bench(tmp_path, "b", _fingerprint(4, ["asimd", "asimddp"], model="Cortex-A76", machine="aarch64"))
    r = readme.Reports(tmp_path)
    assert r.machine_tag(r.json("benchmarks/results/a.json")) == "M1"
    assert r.machine_tag(r.json("benchmarks/results/b.json")) == "M2"
    assert "NEON + dot-product" in readme.machine_label(r.json("benchmarks/results/b.json")["fingerprint"])


def test_soak_and_aarch64_wording_follow_their_files(readme, tmp_path):
    d = tmp_path / "benchmarks" / "results"
    d.mkdir(parents=True)
    (d / "soak-x.json").write_text(json.dumps({
        "command": "benchmarks/soak.py --pace 12", "config": {"pace": 12, "threads": 2}, "wall_s": 100, "verdict": "FAIL",
        "status_counts": {"ok": 7}, "checks": [{"name": "memory growth", "ok": False, "detail": "RSS grew"}]}))
    (d / "aarch64_proof.txt").write_text(
        "[aarch64] aarch64 run (qemu -cpu cortex-a53; slow: emulated)\n"
        "aarch64 proof: x86_64 vs aarch64 (b, models m.tflite): 3/5 tensors bit-identical, 1 required (xnnpack/) integer "
        "tensors DIFFER -> FAIL\n"
        "  REQUIRED mismatch: xnnpack/m/0/out (max |diff| 2)\n"
        "  float diff: reference/m/0/y 0.5\n")
    text = readme.block(tmp_path)
    assert "paced at 12 fps, 2 threads per model" in text and "**FAIL**" in text
    line = next(x for x in text.splitlines() if x.startswith("- aarch64"))
    assert "cortex-a53" in line and "**FAIL**" in line and "DIFFER" in line
    assert "bit-identical" not in line.split("Raw line")[0]  # no claim the file does not make
    assert "reference kernels" in line and "0.5" in line


def test_a_figure_whose_value_is_missing_is_left_out(readme, tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"a": {"b": 0.25}, "l": [1, 2]}))
    r = readme.Reports(tmp_path)
    rows = readme.table(r, [readme.Figure("present", "r.json", ("a.b",), "{0:.0%}"),
                            readme.Figure("list item", "r.json", ("l.1",), "{0}"),
                            readme.Figure("absent", "r.json", ("a.c",), "{0}"),
                            readme.Figure("no file", "nope.json", ("a",), "{0}")])
    assert rows[2:4] == ["| present | 25% | `r.json` |", "| list item | 2 | same |"]
    assert len(rows) == 5


def test_readme_figures_are_up_to_date(readme):
    """The committed README block is what the committed reports give (else run scripts/update_readme.py)."""
    assert readme.main(["--check"]) == 0, "README.md is stale: run `python scripts/update_readme.py`"


def _card_repo(tmp: Path, name: str, variant: str, fidelity: dict, train: dict, extra: dict | None = None) -> Path:
    assets = tmp / "edgeaffect" / "models" / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / f"{name}_{variant}.json").write_text(json.dumps({"variant": variant, "sha256": "abc", "macs": 10, "params": 5}))
    (assets / f"{name}_{variant}.tflite").write_bytes(b"\0" * 2048)
    m = tmp / "models" / name
    m.mkdir(parents=True, exist_ok=True)
    (m / "fidelity_report.json").write_text(json.dumps({"model": name, "variants": fidelity}))
    (m / "train_metrics.json").write_text(json.dumps({"final": train}))
    for fname, doc in (extra or {}).items():
        (m / fname).write_text(json.dumps(doc))
    return tmp


def test_card_title_and_reasons_follow_the_shipped_variant(cards, tmp_path):
    fid = {"int8": {"status": "FAIL", "failures": ["output offsets: NME delta 0.812 % IOD > 0.5 %"]},
           "dynamic_range": {"status": "FAIL", "failures": ["output x: SNR 3 dB < 20 dB"]},
           "float16": {"status": "PASS", "failures": []}}
    repo = _card_repo(tmp_path, "landmarks", "float16", fid, {"train_images": 900, "heldout_images": 100},
                      {"eval_validity.json": {"threshold": 0.5, "images": {"logo": 0.93, "moon": 0.1}}})
    text, row = cards.card("landmarks", repo)
    title = text.splitlines()[0]
    assert "float16" in title and "int8" not in title
    assert "0.812 %" in text and "SNR 3 dB" in text and "0.69" not in text
    assert "1,000 images" in text and "train (900) / held-out (100, 10.0 %)" in text and "13,308" not in text
    assert "`logo` (0.93)" in text and "below 0.5 on 1" in text and "0.90" not in text
    assert row["file"] == "landmarks_float16.tflite" and row["size_kb"] == 2.0
    # a measurement of another model file is not quoted as this one's
    (repo / "models" / "landmarks" / "eval_validity.json").write_text(
        json.dumps({"sha256": "other", "threshold": 0.5, "images": {"logo": 0.93}}))
    text, _ = cards.card("landmarks", repo)
    assert "0.93" not in text.split("## Size")[0] and "another model file" in text


def test_committed_cards_are_up_to_date(cards):
    """Each committed card is what the script writes from the committed files."""
    for name in cards.CARDS:
        mpath = cards.shipped(name)
        if mpath is None:
            continue
        text, _ = cards.card(name)
        assert mpath.with_suffix(".md").read_text() == text, f"{mpath.name}: run `python scripts/write_model_cards.py`"


def test_scripts_do_not_need_the_repo_layout_beyond_reports(readme, tmp_path):
    """An empty tree gives an empty (but valid) block, not a crash."""
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    assert readme.block(tmp_path).startswith("## Results")


def test_aarch64_report_wording_follows_the_json(readme, tmp_path):
    d = tmp_path / "benchmarks" / "results"
    d.mkdir(parents=True)
    (d / "aarch64_proof.txt").write_text("aarch64 proof: old text -> PASS\n")
    (d / "aarch64_proof.json").write_text(json.dumps({
        "command": "scripts/aarch64_proof.sh all", "qemu": "qemu-aarch64 version 7.2.22", "cpus": ["cortex-a53"],
        "models": {"cortex-a53": {"pass": False, "identical": 3, "total": 9, "max_diff": {"float16": 0.5},
                                  "failures": ["aus_int8 differs"], "line": "... 4 reference-kernel tensors differ ..."}},
        "pipeline": {"cortex-a53": {"pass": True, "frames": 10, "face_pairs": 8, "max_diff": {"landmarks_px": 0.25},
                                    "tolerance": {"landmarks_px": 1.0}}}}))
    text = readme.block(tmp_path)
    assert "old text" not in text  # the JSON report wins over the text log
    models = next(x for x in text.splitlines() if "cortex-a53, shipped models" in x)
    assert "**FAIL**" in models and "3/9" in models and "NOT met" in models and "aus_int8 differs" in models
    assert "int8 networks bit-identical" not in models and "4 tensors from LiteRT's reference kernels" in models
    pipe = next(x for x in text.splitlines() if "whole pipeline" in x)
    assert "**PASS**" in pipe and "landmarks 0.25 px (tolerance 1)" in pipe


def test_external_models_table_follows_the_reports(readme, tmp_path):
    d = tmp_path / "models" / "external" / "netx"
    d.mkdir(parents=True)
    (d / "README.md").write_text("# netx\nSome net (random init) -> ONNX with tf2onnx.\n")
    (d / "fidelity_report.json").write_text(json.dumps({"variants": {
        "float32": {"status": "PASS", "latency_ms": 2.0},
        "int8": {"status": "FAIL", "latency_ms": 5.0, "failures": ["output y: SNR 3.0 dB < 20.0 dB (max abs error 9)"],
                 "lint": {"summary": "Edge TPU: friendly; XNNPACK refuses ABS x2 (8/10 delegated); edgetpu_compiler not on PATH"},
                 "task": {"hints": ["drop the Softmax"]}}}}))
    row = next(x for x in readme.external_block(tmp_path).splitlines() if x.startswith("| `netx`"))
    assert "Some net (random init)" in row and "FAIL: y: SNR 3.0 dB < 20.0 dB" in row and "max abs" not in row
    assert "| 2.5x |" in row and "XNNPACK refuses ABS x2 (8/10 delegated)" in row and "drop the Softmax" in row


def test_figures_of_replaced_models_are_marked_stale(readme, tmp_path):
    assets = tmp_path / "edgeaffect" / "models" / "assets"
    assets.mkdir(parents=True)
    (assets / "landmarks_int8.json").write_text(json.dumps({"sha256": "new"}))
    m = tmp_path / "models" / "landmarks"
    m.mkdir(parents=True)
    (m / "eval_real.json").write_text(json.dumps({"photos_nme_median": 0.04, "models_sha256": {"landmarks": "old"}}))
    text = readme.block(tmp_path)
    row = next(x for x in text.splitlines() if "NME median (shipped pipeline)" in x)
    assert "4.0 %" in row and "**stale**" in row
    (m / "eval_real.json").write_text(json.dumps({"photos_nme_median": 0.04, "models_sha256": {"landmarks": "new"}}))
    r = readme.Reports(tmp_path)
    assert "stale" not in r.source("models/landmarks/eval_real.json")


def test_card_json_blocks_stay_valid_json(cards):
    big = {"small": 1, "per_au": {f"AU{i:02d}": {"icc": 0.9, "mae": 0.01} for i in range(200)}, "other": [1, 2, 3]}
    text = cards.json_block(big, 500, "models/x/fidelity_report.json")
    d = json.loads(text)
    assert len(text) <= 500 and d["small"] == 1 and d["other"] == [1, 2, 3]
    assert d["per_au"] == "(in models/x/fidelity_report.json)"
