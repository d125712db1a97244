"""Compare several bench reports (runs or devices): a Markdown table and a PNG plot.

The first report is the baseline: `p90 / base` = this p90 / baseline p90 (lower is faster),
`fps / base` = this throughput / baseline throughput (higher is faster). Reports are matched
only by what they contain: an e2e row needs an `e2e` section, the module table lists every
(module, delegate, threads) cell present in any report. Rows whose models (sha256) differ
from the baseline's are flagged: comparing devices is only fair on the same model files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fingerprint import short_name
from .report import _f, _pyplot, _table, load, save_png


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def _models_key(r: dict[str, Any]) -> tuple:
    ms = (r.get("fingerprint") or {}).get("models") or {}
    return tuple(sorted((k, (v or {}).get("sha256")) for k, v in ms.items()))


def compare_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = next((r for r in reports if r.get("e2e")), reports[0])
    be = base.get("e2e") or {}
    b90 = (be.get("latency_ms") or {}).get("p90")
    bfps = be.get("throughput_fps")
    rows = []
    for r in reports:
        e = r.get("e2e") or {}
        lat = e.get("latency_ms") or {}
        sysd = e.get("system") or {}
        vm = r.get("vs_mediapipe") or {}
        ratio = next((x.get("fps_ratio") for x in vm.get("ratios") or [] if x.get("primary")), None)
        if ratio is None and vm.get("ratios"):
            ratio = vm["ratios"][0].get("fps_ratio")
        rows.append({
            "label": r.get("label"), "device": short_name(r.get("fingerprint") or {}), "path": r.get("_path"),
            "frames": e.get("frames"), "p50": lat.get("p50"), "p90": lat.get("p90"), "p99": lat.get("p99"),
            "fps": e.get("throughput_fps"), "paced": e.get("paced_fps"), "cpu_cores": sysd.get("cpu_utilisation_cores"),
            "peak_rss_mb": sysd.get("peak_rss_mb"), "temp_max": (sysd.get("temp_c") or {}).get("max"),
            "throttled": sysd.get("throttled_any"), "load": sysd.get("loadavg_start"),
            "p90_vs_base": _ratio(lat.get("p90"), b90), "fps_vs_base": _ratio(e.get("throughput_fps"), bfps),
            "vs_mediapipe": ratio, "same_models": _models_key(r) == _models_key(base), "is_base": r is base,
        })
    return rows


def render_compare_markdown(reports: list[dict[str, Any]], plot: str | None = None) -> str:
    rows = compare_rows(reports)
    base = next(r for r in rows if r["is_base"])
    lines = ["# edgeaffect bench: comparison", "", f"Baseline: **{base['label']}** ({base['device']}).", "",
             *_table(["label", "device", "frames", "p50 ms", "p90 ms", "p99 ms", "fps", "p90 / base", "fps / base",
                      "CPU cores", "peak RSS MB", "max temp C", "throttled", "load avg", "vs MediaPipe", "models"],
                     [[r["label"] + (" (base)" if r["is_base"] else ""), r["device"], r["frames"] or "-", _f(r["p50"]), _f(r["p90"]),
                       _f(r["p99"]), _f(r["fps"], 1) + (f" (paced {r['paced']:g})" if r["paced"] else ""), _f(r["p90_vs_base"], 2, "x"), _f(r["fps_vs_base"], 2, "x"),
                       _f(r["cpu_cores"]), _f(r["peak_rss_mb"], 1), _f(r["temp_max"], 1),
                       "-" if r["throttled"] is None else ("YES" if r["throttled"] else "no"),
                       "-" if not r["load"] else _f(r["load"][0], 2), _f(r["vs_mediapipe"], 2, "x"),
                       "same" if r["same_models"] else "DIFFERENT"] for r in rows]), ""]
    cells: dict[tuple, dict[str, Any]] = {}
    for i, rep in enumerate(reports):
        for m in rep.get("modules") or []:
            if "error" in m or not m.get("invoke_ms"):
                continue
            cells.setdefault((m["module"], m["delegate"], m["threads"]), {})[i] = m["invoke_ms"]
    if cells:
        labels = [str(r.get("label")) for r in reports]
        lines += ["## Per module: mean (p90) invoke ms", "",
                  *_table(["module", "delegate", "threads", *labels],
                          [[k[0], k[1], k[2], *[f"{_f(v[i]['mean'], 3)} ({_f(v[i]['p90'], 3)})" if i in v else "-" for i in range(len(reports))]]
                           for k, v in sorted(cells.items())]), ""]
    if any(not r["same_models"] for r in rows):
        lines += ["Rows marked DIFFERENT ran other model files (sha256) than the baseline: their latencies are not comparable.", ""]
    if any(r["paced"] for r in rows):
        lines += ["Paced runs: throughput is capped by the arrival rate; compare their latency and drops, not fps.", ""]
    lines += ["Sources: " + ", ".join(f"`{r['path']}`" for r in rows if r.get("path")), ""]
    if plot:
        lines += [f"![comparison]({Path(plot).name})", ""]
    return "\n".join(lines)


def write_compare_plot(reports: list[dict[str, Any]], path: str | Path) -> tuple[str | None, str | None]:
    try:
        plt = _pyplot()
    except ImportError:
        return None, "matplotlib is not installed: comparison plot skipped"
    import numpy as np

    rows = [r for r in compare_rows(reports) if r["p90"] is not None]
    if not rows:
        return None, "no e2e sections to plot"
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 0.6 * len(rows) + 2.5))
    y = np.arange(len(rows))
    for i, (q, c) in enumerate((("p50", "#4a7ebb"), ("p90", "#d62728"), ("p99", "#9467bd"))):
        a1.barh(y + (i - 1) * 0.27, [r[q] or 0 for r in rows], 0.27, label=q, color=c)
    a1.set_yticks(y, [r["label"] for r in rows])
    a1.set_xlabel("frame latency (ms)")
    a1.legend()
    a1.invert_yaxis()
    a2.barh(y, [r["fps"] or 0 for r in rows], color="#2ca02c")
    a2.set_yticks(y, [""] * len(rows))
    a2.set_xlabel("throughput (fps)")
    a2.invert_yaxis()
    fig.suptitle("edgeaffect bench comparison")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return save_png(plt, fig, p), None


def compare_files(paths: list[str | Path], out_dir: str | Path | None = None, plots: bool = True) -> dict[str, Any]:
    reports = [load(p) for p in paths]
    res: dict[str, Any] = {"reports": [str(p) for p in paths]}
    plot = None
    if out_dir is not None and plots:
        plot, msg = write_compare_plot(reports, Path(out_dir) / "compare.png")
        res["plot_message"] = msg
    md = render_compare_markdown(reports, plot)
    res["markdown"] = md
    if out_dir is not None:
        mp = Path(out_dir) / "compare.md"
        mp.parent.mkdir(parents=True, exist_ok=True)
        mp.write_text(md)
        res["markdown_path"] = str(mp)
        res["plot"] = plot
    return res
