"""Regenerate the figures block of README.md from the files the measurement commands wrote.

    python scripts/update_readme.py

Replaces the text between `<!-- figures:begin -->` and `<!-- figures:end -->`. Sources (and
the commands that write them): models/SUMMARY.md (scripts/write_model_cards.py),
models/*/train_metrics.json (training scripts), models/*/eval_real.json
(scripts/eval_models.py), models/*/fidelity_report.json (scripts/build_models.py),
benchmarks/results/*.json (benchmarks/snapshot.sh, benchmarks/pipeline_gain.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def load(rel: str) -> dict[str, Any]:
    p = REPO / rel
    return json.loads(p.read_text()) if p.exists() else {}


def f(x: Any, nd: int = 3, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f} %" if pct else f"{x:.{nd}f}"


def block() -> str:
    L: list[str] = ["## Results on this machine", ""]
    L.append("Every figure below is read from a file written by the command named beside it "
             "(`python scripts/update_readme.py` regenerates this block).")
    L.append("")
    summary = REPO / "models" / "SUMMARY.md"
    if summary.exists():
        L += ["### Shipped models (`python scripts/write_model_cards.py`; cards beside each file in `edgeaffect/models/assets/`)", "",
              summary.read_text().strip(), ""]
    lm_t = load("models/landmarks/train_metrics.json").get("final", {})
    lm_r = load("models/landmarks/eval_real.json")
    det_r = load("models/detector/eval_real.json")
    if lm_t or lm_r:
        L += ["### Landmarks (reference: teacher ensemble of dlib + MediaPipe; NME = mean point error / outer-eye-corner distance)", ""]
        L += ["| measure | value | command |", "|---|---|---|"]
        if lm_r:
            L.append(f"| real photos `../shared/data/faces`: faces found / teacher faces | {det_r.get('found_valid_at_teacher_box')} / {det_r.get('photos_teacher_faces')} | `python scripts/eval_models.py` |")
            L.append(f"| real photos: NME median (shipped pipeline) | {f(lm_r.get('photos_nme_median'), pct=True)} | same |")
            L.append(f"| real photos, NIR-like rendering: NME median | {f(lm_r.get('photos_nir_like_nme_median'), pct=True)} | same |")
            L.append(f"| real photos: Spearman(sigma, error) per point | {f(lm_r.get('photos_sigma_vs_error_spearman'))} | same |")
            L.append(f"| shared video: frames with a valid face | {f(lm_r.get('video_valid_fraction'), pct=True)} of {lm_r.get('video_frames')} | same |")
            L.append(f"| shared video: NME median on frames the teacher labelled | {f(lm_r.get('video_nme_median'), pct=True)} | same |")
            L.append(f"| shared video: re-detections after tracking loss | {lm_r.get('video_redetections_after_loss')} | same |")
        if lm_t:
            L.append(f"| held-out identities (augmented crops, float): NME mean | {f(lm_t.get('nme_vs_teacher_ensemble_mean'), pct=True)} | `python -m training.train_landmarks` |")
            L.append(f"| held-out: Spearman(sigma, error) | {f(lm_t.get('sigma_error_spearman'))} | same |")
            L.append(f"| held-out: mean sigma occluded / visible points | {f(lm_t.get('sigma_occluded_over_visible'))} (error ratio {f(lm_t.get('error_occluded_over_visible'))}) | same |")
            L.append(f"| held-out: validity true-positive / true-negative rate | {f(lm_t.get('validity_true_positive_rate'), pct=True)} / {f(lm_t.get('validity_true_negative_rate'), pct=True)} | same |")
        L.append("")
    au = load("models/aus/train_metrics.json").get("final", {})
    if au.get("auc_vs_neutral"):
        L += ["### Action Units (no AU ground truth exists here: AUC of one AU output separating an expression from neutral, held-out identities; `python -m training.train_aus`)", ""]
        L += ["Targets partly derive from these labels, so this shows the intended association was learned, not agreement "
              "with human FACS coding. Rows with few positives (AU09/AU10: one disgust image held out) carry no weight.", "",
              "| AU : expression | AUC (network) | AUC (geometry alone) | positives |", "|---|---|---|---|"]
        for k, v in au["auc_vs_neutral"].items():
            L.append(f"| {k} | {f(v.get('net'))} | {f(v.get('geometry_only'))} | {v.get('n_pos')} |")
        L.append("")
    va = load("models/affect/train_metrics.json").get("final", {})
    if va:
        L += ["### Valence / arousal (sequences composed from held-out labelled images; `python -m training.train_temporal`)", ""]
        L.append(f"CCC last step: valence {f(va.get('ccc_valence_last_step'))}, arousal {f(va.get('ccc_arousal_last_step'))}; "
                 f"Spearman(cumulative uncertainty, error) {f(va.get('cumulative_uncertainty_vs_error_spearman'))}; mean cumulative "
                 f"uncertainty on valid frames {f(va.get('mean_cumulative_uncertainty_valid'))} vs invalid (face lost) frames "
                 f"{f(va.get('mean_cumulative_uncertainty_invalid'))}.")
        lni = va.get("rmse_leave_n_in", {})
        if lni:
            L += ["", "Leave-N-in (keep the N % lowest-uncertainty frames; RMSE must fall as N falls):", "",
                  "| N | " + " | ".join(lni) + " |", "|---|" + "---|" * len(lni), "| RMSE | " + " | ".join(f(v) for v in lni.values()) + " |"]
        L.append("")
    reports = [json.loads(p.read_text()) for p in sorted((REPO / "benchmarks" / "results").glob("*.json"))]
    reports = [r for r in reports if r.get("schema") == "edgeaffect.bench/1" and r.get("e2e")]
    gain = load("benchmarks/results/pipeline_gain.json")
    if reports or gain:
        L += ["### Speed (this x86_64 dev box, 2 cores; `benchmarks/snapshot.sh`, reports in `benchmarks/results/`)", ""]
        for r in reports[:1]:
            e = r["e2e"]
            lat = e.get("latency_ms", {})
            L.append(f"- end to end (detector when needed + landmarks + AUs + VA, 1 thread per model), {e.get('frames')} frames over "
                     f"{f(e.get('wall_s'), 1)} s: p50 {f(lat.get('p50'), 2)} ms, p90 {f(lat.get('p90'), 2)} ms, p99 {f(lat.get('p99'), 2)} ms, "
                     f"{f(e.get('throughput_fps'), 1)} fps")
            vm = r.get("vs_mediapipe") or {}
            for c_name, c in (vm.get("contenders") or {}).items():
                if c.get("fps"):
                    L.append(f"  - {c_name}: {f(c['fps'], 1)} fps, face found on {f(c.get('face_rate'), pct=True)} of frames")
            for q in vm.get("ratios") or []:
                L.append(f"  - ratio {q['name']} vs {q['vs']}: **{f(q['fps_ratio'], 2)}x** fps (goal {q.get('goal')}x: "
                         f"{'met' if q.get('goal_met') else 'NOT met'}), CPU-time ratio {f(q.get('cpu_ratio'), 2)}x")
            if vm.get("ratios"):
                L.append("  - margin: this is one snapshot on a shared 2-core VM, and repeated runs move by a few percent either way: "
                         "treat 1.5x as just reached on this box, not reached with room to spare")
            if vm.get("skipped"):
                L.append(f"  - vs MediaPipe skipped: {vm.get('reason')}")
            pi = (r.get("estimates") or {}).get("pi") or {}
            if pi.get("pi4"):
                p5 = pi.get("pi5", {}).get("frame_ms_scaled") or [None, None]
                L.append(f"  - **estimate, not a measurement**: Pi 4 ~{f(pi['pi4'].get('frame_ms_scaled'), 1)} ms/frame, Pi 5 ~{f(p5[0], 1)}-{f(p5[1], 1)} ms/frame "
                         f"at 1 thread, from the measured mix of {f(pi.get('measured_here', {}).get('macs_per_frame') / 1e6 if pi.get('measured_here', {}).get('macs_per_frame') else None, 1)} MMACs/frame (detector runs amortised) "
                         f"and an assumed Pi 4 int8 rate of {pi.get('pi4_assumed_gmacs_per_s')} GMAC/s per thread (assumptions listed in the report)")
        for r2 in [json.loads(p.read_text()) for p in sorted((REPO / "benchmarks" / "results").glob("*.json"))]:
            if r2.get("kind") == "mediapipe" and (r2.get("config") or {}).get("au_every", 1) > 1:
                c = r2["config"]
                for q in (r2.get("vs_mediapipe") or {}).get("ratios") or []:
                    if "detection" in q["vs"]:
                        L.append(f"- rate-controlled variant (AUs every {c.get('au_every')}, VA every {c.get('affect_every')} frames; label "
                                 f"`{r2.get('label')}`): **{f(q['fps_ratio'], 2)}x** vs MediaPipe detection + mesh. This is NOT the full-rate "
                                 "pipeline the goal names; it shows what the device profiles' rate control buys.")
        if gain:
            L.append(f"- pipelined vs sequential stages (`python benchmarks/pipeline_gain.py --out benchmarks/results/pipeline_gain.json`): "
                     f"{gain.get('sequential_fps')} -> {gain.get('pipelined_fps')} fps = **{gain.get('gain')}x** on {gain.get('cores')} cores "
                     f"(1-min load average {gain.get('load_avg_1min')})")
        L.append("")
    faults = REPO / "benchmarks" / "results" / "faults.txt"
    soak = load("benchmarks/results/soak-30min-x86_64.json")
    aarch = REPO / "benchmarks" / "results" / "aarch64_proof.txt"
    if faults.exists() or soak or aarch.exists():
        L += ["### Robustness and portability", ""]
    if faults.exists():
        lines = faults.read_text().strip().splitlines()
        L.append(f"- fault injection (`python benchmarks/faults.py --source VIDEO > benchmarks/results/faults.txt`): {lines[-1] if lines else ''}: "
                 + "; ".join(x.split(":")[0].replace("PASS ", "").replace("FAIL ", "FAIL:") for x in lines[:-1]))
    if soak:
        chk = soak.get("checks") or []
        frames = sum((soak.get("status_counts") or {}).values())
        L.append(f"- soak, {f(soak.get('wall_s'), 0)} s / {frames} frames paced at 30 fps (`python benchmarks/soak.py --source VIDEO --duration 1800 "
                 f"--pace 30 --drift-metric cpu --label soak-30min-x86_64 --out benchmarks/results`): **{soak.get('verdict')}**: "
                 + "; ".join(f"{c.get('name')}: {c.get('detail', 'ok' if c.get('ok') else 'FAIL')}" for c in chk))
    if aarch.exists():
        line = next((x for x in aarch.read_text().splitlines() if x.startswith("aarch64 proof:")), "")
        L.append(f"- aarch64 (`scripts/aarch64_proof.sh proof`, qemu cortex-a72): {line.replace('aarch64 proof: ', '')}. "
                 "The default runtime path (XNNPACK) gives bit-identical outputs for the int8 networks; the float16/dynamic-range "
                 "networks differ by <= 1e-4; the largest float differences come from LiteRT's non-XNNPACK reference kernels "
                 "(`use_xnnpack=False`), which round 1-2 LSB differently on the two ISAs (details in `benchmarks/results/aarch64_proof.txt`).")
    L.append("")
    return "\n".join(L)


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    new = re.sub(r"<!-- figures:begin -->.*<!-- figures:end -->", lambda _m: "<!-- figures:begin -->\n" + block() + "\n<!-- figures:end -->",
                 text, flags=re.S)
    readme.write_text(new)
    print(block())


if __name__ == "__main__":
    main()
