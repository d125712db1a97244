"""Benchmark reports: one JSON document (schema `edgeaffect.bench/1`), Markdown, PNG plots.

JSON layout (every report)::

    schema        "edgeaffect.bench/1"
    kind          "e2e" | "module" | "mediapipe" | "run-vs" | "sustained"   (what the command measured first)
    label         free text naming the run/device ("rpi5-8gb", "x86-dev")
    created_utc   ISO 8601
    command       the command line that produced it
    fingerprint   device fingerprint (edgeaffect.bench.fingerprint.collect)
    config        the benchmark settings
    + at least one result section:
    e2e           edgeaffect.bench.e2e_bench.run_e2e (with "series" for plots)
    modules       list of edgeaffect.bench.module_bench.bench_module entries
    vs_mediapipe  edgeaffect.bench.vs_mediapipe.run_vs_mediapipe
    run_vs        edgeaffect.bench.run_vs.run_vs (whole process, alternated pairs)
    sustained     edgeaffect.bench.sustained.run_sustained (per-interval latency + thermal)
    estimates     {"int8_rate": ..., "pi": edgeaffect.bench.estimate.pi_estimate}
    notes         list of strings (skipped parts, warnings)

Readers must ignore unknown keys; a breaking change bumps the schema number.
Plots need matplotlib (optional): without it they are skipped with a message.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from ..errors import EdgeAffectError
from ..jsonsafe import json_safe
from .fingerprint import short_name
from .stats import PERCENTILE_METHOD

SCHEMA = "edgeaffect.bench/1"
REQUIRED_KEYS = ("schema", "kind", "label", "created_utc", "command", "fingerprint", "config")
RESULT_SECTIONS = ("e2e", "modules", "vs_mediapipe", "run_vs", "sustained")
KINDS = ("e2e", "module", "mediapipe", "run-vs", "sustained")


def save_png(plt: Any, fig: Any, path: Path) -> str:
    """tight layout, 110 dpi PNG, free the figure; returns the path written."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def new_report(kind: str, label: str, fingerprint: dict[str, Any], config: dict[str, Any], command: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "kind": kind,
        "label": label,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": command,
        "percentile_method": PERCENTILE_METHOD,
        "fingerprint": fingerprint,
        "config": config,
        "notes": [],
    }


def validate(d: dict[str, Any]) -> list[str]:
    """Problems with a report dict (empty list = valid)."""
    errs = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in d]
    if d.get("schema") != SCHEMA:
        errs.append(f"schema is {d.get('schema')!r}, expected {SCHEMA!r}")
    if "kind" in d and d["kind"] not in KINDS:
        errs.append(f"kind {d['kind']!r} not one of {KINDS}")
    if not any(d.get(s) for s in RESULT_SECTIONS):
        errs.append(f"no result section (one of {', '.join(RESULT_SECTIONS)})")
    e2e = d.get("e2e")
    if e2e:
        for k in ("frames", "latency_ms", "throughput_fps", "system"):
            if k not in e2e:
                errs.append(f"e2e lacks {k!r}")
        lat = e2e.get("latency_ms") or {}
        for k in ("p50", "p90", "p99", "mean", "count"):
            if k not in lat:
                errs.append(f"e2e.latency_ms lacks {k!r}")
    return errs


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise EdgeAffectError(f"report {p} not found") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgeAffectError(f"report {p} is not readable JSON ({e})") from None
    if not isinstance(d, dict):
        raise EdgeAffectError(f"report {p} is not a JSON object")
    errs = validate(d)
    if errs:
        raise EdgeAffectError(f"{p} is not an {SCHEMA} report: {'; '.join(errs)}")
    d.setdefault("_path", str(p))
    return d


def write_json(d: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(json_safe(d, drop_private=True), indent=1, allow_nan=False))
    tmp.replace(p)
    return p


# ----------------------------------------------------------------------------- markdown
def _f(v: Any, nd: int = 2, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.{nd}f}{unit}"
    return f"{v}{unit}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def fingerprint_md(fp: dict[str, Any]) -> list[str]:
    cpu = fp.get("cpu") or {}
    pk = fp.get("packages") or {}
    it = fp.get("interpreter") or {}
    osd = fp.get("os") or {}
    lines = [
        f"- device: {short_name(fp)}" + (f"; board: {fp['board']}" if fp.get("board") else ""),
        f"- CPU: logical {cpu.get('logical_cores')}, usable {cpu.get('usable_cores')}, governor {cpu.get('governor') or '-'}, "
        f"{_f(cpu.get('min_mhz'), 0)}-{_f(cpu.get('max_mhz'), 0)} MHz, int8 ISA: {cpu.get('int8_isa') or '-'} ({', '.join(cpu.get('int8_features') or []) or '-'})"
        + (", virtualised" if cpu.get("virtualised") else ""),
        f"- memory: {_f(fp.get('memory_mb'), 0)} MB; OS: {osd.get('distro') or osd.get('system')}, kernel {osd.get('kernel')}",
        f"- Python {(fp.get('python') or {}).get('version')}; numpy {pk.get('numpy')}; OpenCV {pk.get('opencv')}; edgeaffect {pk.get('edgeaffect')}",
        f"- interpreter: {it.get('backend')} {it.get('version')}; threads {it.get('num_threads')}; delegates: {', '.join(it.get('delegates') or []) or 'none (XNNPACK)'}",
        f"- load average when collected: {fp.get('loadavg_at_collect')}",
    ]
    if fp.get("git"):
        lines.append(f"- git: {fp['git']['commit'][:12]}{' (dirty)' if fp['git'].get('dirty') else ''}")
    models = fp.get("models") or {}
    if models:
        lines += ["", *_table(["module", "file", "variant", "sha256", "MMACs", "params"],
                              [[m, v.get("file"), v.get("variant") + (" (STAND-IN)" if v.get("stand_in") else ""),
                                (v.get("sha256") or "")[:16], _f(v["macs"] / 1e6, 2) if v.get("macs") else "-",
                                v.get("params") or "-"] for m, v in models.items()])]
    return lines


def _stat_row(name: str, s: dict[str, Any] | None, nd: int = 2) -> list[Any]:
    s = s or {}
    return [name, s.get("count", "-"), _f(s.get("mean"), nd), _f(s.get("std"), nd), _f(s.get("min"), nd),
            _f(s.get("p50"), nd), _f(s.get("p90"), nd), _f(s.get("p99"), nd), _f(s.get("max"), nd)]


STAT_HEADER = ["", "n", "mean", "std", "min", "p50", "p90", "p99", "max"]


def e2e_md(e: dict[str, Any]) -> list[str]:
    src = e.get("source") or {}
    sysd = e.get("system") or {}
    crit = e.get("criteria") or {}
    out = [
        "## End to end (single stream)",
        "",
        f"{e['frames']} measured frames (+{e.get('warmup_frames')} warm-up) in {_f(e.get('wall_s'), 1)} s over "
        f"{src.get('name')} ({src.get('width')}x{src.get('height')}, {src.get('clip_frames')} frames, looped "
        f"{_f(e.get('loops_over_clip'), 1)}x, {'preloaded in RAM' if src.get('preloaded') else 'decoded on the fly'}); "
        f"criteria >= {crit.get('min_frames')} frames and >= {crit.get('min_seconds')} s: {'met' if crit.get('met') else 'NOT met'}"
        + (" (MLPerf single-stream minimums)" if crit.get("mlperf_single_stream") else " (smoke run: below MLPerf's minimums)"),
        "",
        f"**p90 {_f(e['latency_ms'].get('p90'))} ms**, p50 {_f(e['latency_ms'].get('p50'))} ms, p99 {_f(e['latency_ms'].get('p99'))} ms; "
        f"throughput {_f(e.get('throughput_fps'), 1)} fps (service rate {_f(e.get('service_fps'), 1)} fps)"
        + (f"; paced at {e['paced_fps']:g} fps: {e.get('dropped_frames')} dropped ({_f(100 * (e.get('drop_rate') or 0), 1)}%)"
           if e.get("paced_fps") else ""),
        "",
        *_table(STAT_HEADER, [_stat_row("frame latency (ms)", e.get("latency_ms")),
                              _stat_row("frame thread CPU (ms)", e.get("cpu_ms"))]
                + ([_stat_row("response incl. wait (ms)", e.get("response_ms"))] if e.get("response_ms") else [])
                + ([_stat_row("decode (ms, excluded)", e.get("decode_ms"))] if e.get("decode_ms") else [])
                + [_stat_row(f"stage {k} (ms)", v) for k, v in (e.get("stages_ms") or {}).items()]),
        "",
        f"Stages: `track` includes `detector` (ran on {e.get('detector_frames')} of {e['frames']} frames). "
        f"Status: {', '.join(f'{k} {v}' for k, v in (e.get('status_counts') or {}).items())}.",
        "",
    ]
    bd = e.get("stage_breakdown") or {}
    if bd:
        out += ["Where the time goes, per frame (ms; p50/p90 over all measured frames, a stage that did not run "
                "on a frame counts 0 there):", "",
                *_table(["stage", "p50", "p90", "mean", "what"],
                        [[k, _f(v.get("p50"), 3), _f(v.get("p90"), 3), _f(v.get("mean"), 3), v.get("what", "")]
                         for k, v in bd.items()]), ""]
    inv = e.get("model_invocations") or {}
    if inv:
        out += _table(["model", "calls/frame", "mean ms/call", "ms/frame"],
                      [[m, _f(v.get("per_frame"), 3), _f(v.get("mean_ms"), 3), _f(v.get("ms_per_frame"), 3)] for m, v in inv.items()])
        out += ["", f"Inside the interpreter (ModelRunner.run): {_f(e.get('model_ms_per_frame'))} ms/frame; "
                f"Python/OpenCV pre/post-processing and tracking: {_f(e.get('overhead_ms_per_frame'))} ms/frame.", ""]
    macs = e.get("macs") or {}
    if macs:
        out += [f"MACs per frame: {_f((macs.get('per_frame_measured') or 0) / 1e6, 1)} M measured mix, "
                f"{_f((macs.get('per_frame_tracking') or 0) / 1e6, 1)} M steady-state tracking, "
                f"{_f((macs.get('sum_all_models') or 0) / 1e6, 1)} M all models once"
                + (f" (no MACs in manifest: {', '.join(macs['missing'])})" if macs.get("missing") else "") + ".", ""]
    temp = sysd.get("temp_c") or {}
    mhz = sysd.get("cpu_mhz") or {}
    out += [
        "Resources: " + "; ".join([
            f"CPU {_f(sysd.get('cpu_utilisation_cores'), 2)} cores busy (process CPU / wall)",
            f"machine busy {_f(100 * sysd['system_cpu_busy'], 0) if sysd.get('system_cpu_busy') is not None else '-'}% "
            f"(other load ~{_f(sysd.get('other_load_cores'), 2)} cores)",
            f"load average {sysd.get('loadavg_start')} -> {sysd.get('loadavg_end')}",
            f"peak RSS {_f(sysd.get('peak_rss_mb'), 1)} MB (RSS {_f(sysd.get('rss_start_mb'), 1)} -> {_f(sysd.get('rss_end_mb'), 1)} MB)",
            (f"temperature {temp.get('start')} -> max {temp.get('max')} C ({sysd.get('thermal_source')})" if temp else "temperature: not readable"),
            f"throttled: {'YES' if sysd.get('throttled_any') else 'no'}",
            (f"cpu0 clock {_f(mhz.get('min'), 0)}-{_f(mhz.get('max'), 0)} MHz" if mhz else "cpu clock: not readable"),
        ]),
        "",
    ]
    return out


def modules_md(mods: list[dict[str, Any]]) -> list[str]:
    rows = []
    errs = []
    for e in mods:
        if "error" in e:
            errs.append(f"- {e['module']} ({e['delegate']}, {e['threads']} threads): {e['error']}")
            continue
        inv = e.get("invoke_ms") or {}
        run = e.get("run_ms") or {}
        rows.append([e["module"], e["delegate"] + (" (FELL BACK)" if e.get("fallback") else ""), e["threads"],
                     _f(e.get("init_ms"), 1), _f(e.get("first_inference_ms"), 2),
                     inv.get("count", "-"), _f(inv.get("mean"), 3), _f(inv.get("std"), 3), _f(inv.get("min"), 3),
                     _f(inv.get("p50"), 3), _f(inv.get("p90"), 3), _f(inv.get("p99"), 3), _f(inv.get("max"), 3),
                     _f(run.get("mean"), 3), _f(e.get("gmacs_per_s"), 2), _f(e.get("memory_delta_mb"), 1)])
    out = ["## Per module (benchmark_model style)", "",
           *_table(["module", "delegate", "thr", "init ms", "first ms", "n", "mean", "std", "min", "p50", "p90", "p99",
                    "max", "run() mean", "GMAC/s", "dRSS MB"], rows),
           "",
           "Times in ms. `mean..max`: bare `invoke()`; `run() mean`: with the runtime's float<->int8 conversion. "
           "GMAC/s = manifest MACs / mean invoke. dRSS = RSS after the runs - before loading.", ""]
    ops = next((e.get("ops") for e in mods if e.get("ops")), None)
    if ops is not None:
        seen: dict[str, dict[str, int]] = {}
        for e in mods:
            if e.get("ops") and e["module"] not in seen:
                seen[e["module"]] = {k: v for k, v in e["ops"].items() if k != "DELEGATE"}
        out += ["Op mix (interpreter nodes): " + "; ".join(f"{m}: " + ", ".join(f"{k} {v}" for k, v in list(o.items())[:8])
                                                      for m, o in seen.items()), ""]
    note = next((e.get("op_profile") for e in mods if e.get("op_profile")), None)
    if note:
        out += [f"Per-op profile: {note}.", ""]
    bms = [e for e in mods if e.get("benchmark_model")]
    for e in bms:
        bm = e["benchmark_model"]
        out += [f"benchmark_model ({e['module']}, {e['threads']} thr): init {_f(bm.get('init_ms'))} ms, first {_f(bm.get('first_inference_ms'))} ms, "
                f"avg {_f(bm.get('inference_avg_ms'), 3)} ms", ""]
    if errs:
        out += ["Not measured:", *errs, ""]
    return out


def vs_mediapipe_md(v: dict[str, Any]) -> list[str]:
    out = ["## Side by side: MediaPipe vs edgeaffect", ""]
    if v.get("skipped"):
        out += [f"MediaPipe part skipped: {v.get('reason')}", ""]
    rows = []
    for name, c in (v.get("contenders") or {}).items():
        if c.get("skipped"):
            rows.append([name, c.get("what", ""), "-", "-", "-", "-", "-", "-", "skipped: " + str(c.get("reason"))])
            continue
        lat = c.get("latency_ms") or {}
        rows.append([name, c.get("what", ""), c.get("frames"), _f(c.get("fps"), 1), _f(lat.get("p50")), _f(lat.get("p90")),
                     _f(c.get("process_cpu_ms_per_frame")), _f(100 * (c.get("face_rate") or 0), 0) + "%",
                     _f(c.get("fps_face_frames"), 1), ""])
    out += _table(["pipeline", "what it computes", "frames", "fps", "p50 ms", "p90 ms", "CPU ms/frame", "face found",
                   "fps on face frames", ""], rows)
    out += [""]
    for r in v.get("ratios") or []:
        out.append(f"- **{r['name']}: {_f(r.get('fps_ratio'), 2)}x** fps (edgeaffect / {r['vs']}), "
                   f"CPU-time ratio {_f(r.get('cpu_ratio'), 2)}x, median-frame ratio {_f(r.get('p50_ratio'), 2)}x, "
                   f"median of per-round fps ratios {_f(r.get('median_round_fps_ratio'), 2)}x, "
                   f"on frames where each found a face {_f(r.get('fps_ratio_face_frames'), 2)}x; "
                   f"face found on at least as many frames: {'yes' if r.get('faces_at_least_as_many') else 'NO'}"
                   + (f"; goal >= {r.get('goal')}x: wall {'MET' if r.get('goal_met') else 'not met'}, "
                      f"CPU {'MET' if r.get('goal_met_cpu') else 'not met'}" if r.get("primary")
                      else " (extra row: not the yardstick)"))
    for k, n in (v.get("mediapipe_notes") or {}).items():
        if not n.get("available"):
            out.append(f"- {k}: not measured: {n.get('reason')}")
    out += ["", f"Method: {v.get('method', '')}",
            "", "A pipeline that has lost the face runs only its detector and is cheaper per frame; compare the "
            "face-found rates, and the fps on frames where each found a face, before reading the headline ratio.", ""]
    return out


def estimates_md(est: dict[str, Any]) -> list[str]:
    out = ["## Expected frame time on a Raspberry Pi (ESTIMATE, not measured)", ""]
    rate = est.get("int8_rate") or {}
    pi = est.get("pi") or {}
    if rate:
        out.append(f"Measured here: int8 rate {_f(rate.get('gmacs_per_s'), 2)} GMAC/s on {', '.join(rate.get('models') or [])} "
                   f"({rate.get('basis')}, {rate.get('threads', 1)} thread).")
    m = pi.get("measured_here") or {}
    out.append(f"MACs per frame {_f((m.get('macs_per_frame') or 0) / 1e6, 1)} M; mean frame here {_f(m.get('frame_ms_mean'))} ms; "
               f"assumed Pi 4 rate {_f(pi.get('pi4_assumed_gmacs_per_s'))} GMAC/s for {m.get('threads', 1)} thread(s).")
    p4, p5 = pi.get("pi4") or {}, pi.get("pi5") or {}

    def rng(x: Any) -> str:
        return f"{_f(x[0])}-{_f(x[1])}" if isinstance(x, list) else _f(x)

    out += ["", *_table(["", "model time only (ms)", "whole frame, scaled (ms)", "fps (scaled)"],
                        [["Pi 4", rng(p4.get("model_only_ms")), rng(p4.get("frame_ms_scaled")), rng(p4.get("fps_scaled"))],
                         ["Pi 5", rng(p5.get("model_only_ms")), rng(p5.get("frame_ms_scaled")), rng(p5.get("fps_scaled"))]]), ""]
    out += ["Assumptions:", *[f"- {a}" for a in pi.get("assumptions") or []], ""]
    return out


def run_vs_md(v: dict[str, Any]) -> list[str]:
    out = ["## Whole process: `edgeaffect run` vs a MediaPipe face-mesh script", ""]
    rows = []
    for k, c in (v.get("contenders") or {}).items():
        rows.append([k, _f(c.get("wall_s_median"), 3), _f(c.get("cpu_s_median"), 3), _f(c.get("peak_rss_mb_median"), 1),
                     f"{c.get('face_frames')}/{c.get('frames')}", len(c.get("runs") or []),
                     ", ".join(_f(r.get("wall_s"), 2) for r in c.get("runs") or []), c.get("failed_runs")])
    out += _table(["process", "median wall s", "median CPU s", "median peak RSS MB", "frames with a face", "runs",
                   "wall s per run", "failed"], rows)
    out += [""]
    r = v.get("ratio") or {}
    if r:
        out += [f"- **whole process: {_f(r.get('wall_ratio'), 2)}x wall** (MediaPipe median / edgeaffect median), "
                f"**CPU-time ratio {_f(r.get('cpu_ratio'), 2)}x**, median of per-pair wall ratios {_f(r.get('median_pair_wall_ratio'), 2)}x "
                f"({', '.join(_f(x, 2) for x in r.get('pair_wall_ratios') or [])}), peak-RSS ratio {_f(r.get('rss_ratio'), 2)}x; "
                f"face found on at least as many frames: {'yes' if r.get('faces_at_least_as_many') else 'NO'}; "
                f"goal >= {r.get('goal')}x: wall {'MET' if r.get('goal_met_wall') else 'not met'}, "
                f"CPU {'MET' if r.get('goal_met_cpu') else 'not met'}", ""]
    for k, c in (v.get("contenders") or {}).items():
        out.append(f"- `{k}`: `{c.get('command')}`")
    out += ["", f"Method: {v.get('method', '')}", ""]
    return out


def render_markdown(d: dict[str, Any], plots: list[str] | None = None) -> str:
    lines = [f"# edgeaffect bench: {d.get('label')} ({d.get('kind')})", "",
             f"{d.get('created_utc')} · `{d.get('command')}` · schema {d.get('schema')}", "",
             "## Device fingerprint", "", *fingerprint_md(d.get("fingerprint") or {}), ""]
    cfg = d.get("config") or {}
    keys = ("threads", "max_faces", "enable_aus", "enable_affect", "au_every", "affect_every", "pace_fps", "models_dir", "rounds", "pin")
    shown = [f"{k}={cfg[k]}" for k in keys if k in cfg and cfg[k] is not None]
    if shown:
        lines += [f"Settings: {', '.join(shown)}.", ""]
    if d.get("e2e"):
        lines += e2e_md(d["e2e"])
    if d.get("vs_mediapipe"):
        lines += vs_mediapipe_md(d["vs_mediapipe"])
    if d.get("run_vs"):
        lines += run_vs_md(d["run_vs"])
    if d.get("sustained"):
        from .sustained import sustained_md

        lines += sustained_md(d["sustained"])
    if d.get("modules"):
        lines += modules_md(d["modules"])
    if d.get("estimates") and (d["estimates"].get("pi")):
        lines += estimates_md(d["estimates"])
    if plots:
        lines += ["## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots], ""]
    if d.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in d["notes"]], ""]
    lines += [f"Percentiles: {d.get('percentile_method', PERCENTILE_METHOD)}.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def write_plots(d: dict[str, Any], out_dir: str | Path, stem: str) -> tuple[list[str], str | None]:
    """PNG plots for a report. Returns (paths, message-if-skipped)."""
    try:
        plt = _pyplot()
    except ImportError:
        return [], "matplotlib is not installed: plots skipped (pip install 'edgeaffect[bench]')"
    import numpy as np

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    e = d.get("e2e") or {}
    ser = e.get("series") or {}
    lat = np.asarray(ser.get("latency_ms") or [], float)
    if lat.size:
        s = e["latency_ms"]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.hist(lat, bins=min(80, max(10, lat.size // 20)), color="#4a7ebb")
        for q, c in (("p50", "k"), ("p90", "#d62728"), ("p99", "#9467bd")):
            if s.get(q) is not None:
                ax.axvline(s[q], color=c, ls="--", lw=1, label=f"{q} {s[q]:.2f} ms")
        ax.set_xlabel("frame latency (ms)")
        ax.set_ylabel("frames")
        ax.set_title(f"{d.get('label')}: end-to-end latency, {lat.size} frames")
        ax.legend()
        paths.append(save_png(plt, fig, out / f"{stem}_latency_hist.png"))

        t = np.asarray(ser.get("t_s") or [], float)
        sysser = ser.get("system") or {}
        fig, axes = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        ax = axes[0]
        ax.plot(t, lat, ".", ms=3, alpha=0.5, color="#4a7ebb", label="frame latency")
        w = max(5, lat.size // 50)
        if lat.size >= w:
            roll = np.array([np.percentile(lat[max(0, i - w + 1): i + 1], 90) for i in range(lat.size)])
            ax.plot(t, roll, color="#d62728", lw=1.2, label=f"rolling p90 ({w} frames)")
        ax.set_ylabel("ms")
        ax.set_title(f"{d.get('label')}: latency over time")
        ax.legend(loc="upper right")
        ax2 = axes[1]
        st = np.asarray(sysser.get("t_s") or [], float)
        rss = sysser.get("rss_mb") or []
        if st.size and any(v is not None for v in rss):
            ax2.plot(st, [np.nan if v is None else v for v in rss], color="#2ca02c", label="RSS (MB)")
            ax2.set_ylabel("RSS MB")
            ax2.ticklabel_format(axis="y", useOffset=False, style="plain")
        temps = sysser.get("temp_c") or []
        if st.size and any(v is not None for v in temps):
            ax3 = ax2.twinx()
            ax3.plot(st, [np.nan if v is None else v for v in temps], color="#ff7f0e", label="temp (C)")
            ax3.set_ylabel("C")
        ax2.set_xlabel("time (s)")
        paths.append(save_png(plt, fig, out / f"{stem}_timeseries.png"))
    mods = [m for m in d.get("modules") or [] if "error" not in m and m.get("invoke_ms")]
    if mods:
        fig, ax = plt.subplots(figsize=(7, 3.8))
        names = [f"{m['module']}\n{m['delegate']}/{m['threads']}t" for m in mods]
        x = np.arange(len(mods))
        for i, (q, c) in enumerate((("p50", "#4a7ebb"), ("p90", "#d62728"), ("p99", "#9467bd"))):
            ax.bar(x + (i - 1) * 0.27, [m["invoke_ms"][q] for m in mods], 0.27, label=q, color=c)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_ylabel("invoke ms")
        ax.set_title(f"{d.get('label')}: per-module inference")
        ax.legend()
        paths.append(save_png(plt, fig, out / f"{stem}_modules.png"))
    v = d.get("vs_mediapipe") or {}
    cs = {k: c for k, c in (v.get("contenders") or {}).items() if not c.get("skipped") and c.get("fps")}
    if cs:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh(list(cs), [c["fps"] for c in cs.values()], color=["#2ca02c" if k == "edgeaffect" else "#7f7f7f" for k in cs])
        for i, c in enumerate(cs.values()):
            ax.text(c["fps"], i, f" {c['fps']:.1f}", va="center")
        ax.set_xlabel("frames per second (one core)")
        ax.set_title(f"{d.get('label')}: edgeaffect (landmarks+AUs+VA) vs MediaPipe")
        paths.append(save_png(plt, fig, out / f"{stem}_vs_mediapipe.png"))
    if d.get("sustained"):
        from .sustained import sustained_plot

        sp = sustained_plot(d["sustained"], str(d.get("label")), out / f"{stem}_sustained.png")
        if sp:
            paths.append(sp)
    return paths, None


def save(d: dict[str, Any], out_dir: str | Path, stem: str, plots: bool = True) -> dict[str, Any]:
    """Write STEM.json, STEM.md and STEM_*.png into out_dir; returns the paths (and a plot message)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    msg = None
    if plots:
        paths, msg = write_plots(d, out, stem)
        if msg:
            d.setdefault("notes", []).append(msg)
    d["plots"] = [Path(p).name for p in paths]
    errs = validate(d)
    if errs:
        raise EdgeAffectError(f"internal: report does not validate: {'; '.join(errs)}")
    jp = write_json(d, out / f"{stem}.json")
    mp = out / f"{stem}.md"
    mp.write_text(render_markdown(d, paths))
    return {"json": str(jp), "markdown": str(mp), "plots": paths, "plot_message": msg}
