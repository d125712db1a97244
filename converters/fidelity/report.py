"""Fidelity reports: the per-variant record and its JSON / Markdown renderings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .gate import Budget


@dataclass
class VariantReport:
    variant: str
    file: str
    status: str = "PENDING"
    failures: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    localisation: dict[str, Any] | None = None
    latency_ms: float | None = None
    size_bytes: int = 0
    lint: dict[str, Any] | None = None

    def summary(self, held_out: int, budget: Budget, report_file: str) -> dict[str, Any]:
        """The `fidelity` block written into the variant's manifest."""
        return {
            "status": self.status,
            "held_out_samples": held_out,
            "failures": self.failures,
            "first_large_error": (self.localisation or {}).get("message"),
            "gate": budget.to_dict(),
            "task": self.task,
            "outputs": {k: {kk: v[kk] for kk in ("max_abs", "mean_abs", "snr_db")} for k, v in self.outputs.items()},
            "latency_ms_x86_1thread": None if self.latency_ms is None else round(self.latency_ms, 3),
            "report": report_file,
        }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_reports(path_json: Path, path_md: Path, report: dict[str, Any]) -> None:
    tmp = path_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=_json_default))
    tmp.replace(path_json)
    tmp = path_md.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(report))
    tmp.replace(path_md)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def render_markdown(r: dict[str, Any]) -> str:
    L = [f"# Fidelity report: {r['model']} ({r['kind']})", ""]
    L.append(f"**Overall: {r['status']}**  ·  source `{r['source']['file']}` sha256 `{r['source']['sha256'][:16]}…`  ·  {r.get('created', '')}")
    L.append("")
    cal = r.get("calibration", {})
    L.append(
        f"Calibration: {cal.get('calibration_samples')} samples, held-out: {cal.get('held_out_samples')} "
        f"(disjoint, split {cal.get('split')}); source `{cal.get('source')}` ({cal.get('produced_by')})."
    )
    g = r["gate"]
    L.append(
        f"Gate: landmarks NME delta <= {g['nme_delta_pct']} % IOD · AU ICC(3,1) >= {g['au_icc']} (every AU) · "
        f"VA CCC >= {g['va_ccc']} · generic SNR >= {g['min_snr_db']} dB"
        + (f" · detector decoded boxes vs float: recall/precision >= {g['det_recall']}/{g['det_precision']}, "
           f"mean IoU >= {g['det_iou']}, score MAE <= {g['det_score_mae']}" if "det_recall" in g else "")
        + (f" · uncertainty Spearman >= {g['min_rank_corr']}" if g.get("min_rank_corr") is not None else "")
    )
    L.append("")
    L.append("| variant | status | size KB | x86 ms (1 thr) | task metric | worst output SNR dB |")
    L.append("|---|---|---|---|---|---|")
    for v, d in r["variants"].items():
        worst = min((o["snr_db"] for o in d["outputs"].values()), default=None)
        L.append(f"| {v} | {d['status']} | {d['size_bytes'] / 1024:.1f} | {_fmt(d.get('latency_ms'))} | {_task_line(d.get('task', {}))} | {_fmt(worst)} |")
    L.append("")
    for v, d in r["variants"].items():
        L.append(f"## {v} — {d['status']}  (`{d['file']}`)")
        L.append("")
        L.append("| output | max abs | mean abs | SNR dB |")
        L.append("|---|---|---|---|")
        for n, o in d["outputs"].items():
            L.append(f"| {n} | {_fmt(o['max_abs'])} | {_fmt(o['mean_abs'])} | {_fmt(o['snr_db'])} |")
        L.append("")
        t = d.get("task", {})
        if "au_icc" in t:
            L.append("AU ICC(3,1): " + ", ".join(f"{k} {_fmt(x['icc'])}" for k, x in t["au_icc"]["per_au"].items()))
            L.append("")
        for f in d.get("failures", []):
            L.append(f"- FAIL: {f}")
        for h in (t.get("hints") or []):
            L.append(f"- Hint: {h}")
        if "anchor_gate" in t:
            L.append("- Anchor-level gate (decoded boxes vs float): " + ", ".join(f"{k} {_fmt(x)}" for k, x in t["anchor_gate"].items()))
        if "detection_agreement" in t:
            L.append("- Detection agreement: " + ", ".join(f"{k} {_fmt(x)}" for k, x in t["detection_agreement"].items()))
        loc = d.get("localisation")
        if loc and loc.get("message"):
            L.append(f"- Localisation: {loc['message']} ({loc['matched_layers']} layers matched)")
        lint = d.get("lint")
        if lint:
            L.append(f"- Lint: {lint.get('summary', '')}")
        L.append("")
    return "\n".join(L) + "\n"


def _task_line(t: dict[str, Any]) -> str:
    if "nme_delta_pct" in t:
        s = f"NME Δ {t['nme_delta_pct']['mean']} % IOD"
        if "log_sigma_spearman" in t:
            s += f", σ ρ {t['log_sigma_spearman']['value']}"
        return s
    if "au_icc" in t:
        return f"AU ICC min {t['au_icc']['min']}"
    if "anchor_gate" in t:
        d = t["anchor_gate"]
        return f"decoded boxes recall {d['recall']} precision {d['precision']}, IoU {d['mean_iou']}, score MAE {d['score_mae']}"
    if "detection_agreement" in t:
        d = t["detection_agreement"]
        return f"anchors p>0.5 recall {d['recall']} precision {d['precision']}, top-1 {d['top1_anchor_agreement']}"
    if "va_ccc" in t:
        v = t["va_ccc"]
        return f"CCC V {v['valence_last_step']}/{v['valence_all_steps']}, A {v['arousal_last_step']}/{v['arousal_all_steps']} (last/all)"
    if "closed_decision_agreement" in t:
        s = f"closed agree {t['closed_decision_agreement']['value']}, p MAE {t['closed_prob_mae']['value']}"
        if "eyelid_point_err_px" in t:
            s += f", eyelid pts {t['eyelid_point_err_px']['mean']} px"
        return s
    if "argmax_agreement" in t:
        return "argmax agree " + ", ".join(f"{v}" for v in t["argmax_agreement"].values())
    return "SNR"
