"""`edgeaffect fleet`: many devices' health and speed in one table, from the broker.

    edgeaffect fleet --mqtt mqtt://HOST:PORT [--wait 5] [--devices a,b] [--out DIR]
    edgeaffect fleet publish-bench REPORT.json --mqtt mqtt://HOST:PORT --device NAME

It subscribes to `<prefix>/+/stats`, `/info`, `/bench` and `/availability` (stats, info and
bench reports are retained, so devices that published before the viewer started are there at
once), waits `--wait` seconds (or until every `--devices` entry has reported), and renders:
a device table (online?, run, uptime, fps, latency, drops, temperature, throttling, spool) and
then the same cross-device comparison table and plot as `edgeaffect bench compare` makes from
report files (edgeaffect/bench/compare.py): live stats become `edgeaffect.bench/1` e2e
reports (payloads.stats_as_bench_report); a bench report a device published is used as is.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import EdgeAffectError
from .config import MqttConfig, config_from_args
from .payloads import envelope, parse, stats_as_bench_report


def _client(cfg: MqttConfig, client_id: str) -> Any:
    from .mqtt import _paho

    mqtt = _paho()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True)
    if cfg.username is not None:
        c.username_pw_set(cfg.username, cfg.password)
    if cfg.tls:
        c.tls_set(ca_certs=cfg.ca_certs, certfile=cfg.certfile, keyfile=cfg.keyfile)
        if cfg.tls_insecure:
            c.tls_insecure_set(True)
    return c


def _connect(c: Any, cfg: MqttConfig) -> None:
    """Connect `c` to the broker and start its network loop; one clear error when unreachable."""
    try:
        c.connect(cfg.host, cfg.port, 10)
    except (OSError, ValueError) as e:
        raise EdgeAffectError(f"cannot reach the MQTT broker at {cfg.url} ({e})") from None
    c.loop_start()


def collect(cfg: MqttConfig, wait_s: float = 5.0, devices: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """{device: {"stats", "info", "bench", "availability"}} heard within `wait_s` seconds."""
    seen: dict[str, dict[str, Any]] = {}
    wanted = list(devices) if devices else None
    lock = threading.Lock()
    connected = threading.Event()
    errors: list[str] = []
    c = _client(cfg, f"edgeaffect-fleet-{int(time.time() * 1000) % 10**9}")

    def on_connect(client: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if getattr(rc, "is_failure", False):
            errors.append(f"broker refused the connection: {rc}")
            return
        for leaf in ("stats", "info", "bench", "availability"):
            client.subscribe(f"{cfg.prefix}/+/{leaf}", qos=1)
        connected.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) < 3:
            return
        dev, leaf = parts[-2], parts[-1]
        with lock:
            slot = seen.setdefault(dev, {})
            if leaf == "availability":
                slot["availability"] = msg.payload.decode(errors="replace")
                return
            d = parse(msg.payload)
            if d is not None:
                slot[leaf] = {**d["data"], "run": d.get("run"), "wall_utc": d.get("wall_utc")}

    c.on_connect = on_connect
    c.on_message = on_message
    _connect(c, cfg)
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not errors:
            time.sleep(0.05)
            if devices and connected.is_set():
                with lock:
                    done = all(d in seen and ("stats" in seen[d] or "bench" in seen[d]) for d in devices)
                if done:  # the other retained topics of those devices follow within moments
                    deadline = min(deadline, time.monotonic() + 0.5)
                    devices = None
        if errors:
            raise EdgeAffectError(errors[0])
        if not connected.is_set():
            raise EdgeAffectError(f"no connection to the MQTT broker at {cfg.url} within {wait_s:g} s")
    finally:
        c.disconnect()
        c.loop_stop()
    with lock:
        return {k: v for k, v in seen.items() if not wanted or k in wanted}


def _f(v: Any, nd: int = 1) -> str:
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def device_table(seen: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| device | availability | run | uptime s | fps | p50 ms | p90 ms | frames | dropped | temp C | throttled | spool pending / dropped |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for dev in sorted(seen):
        s = seen[dev].get("stats") or {}
        lat = s.get("latency_ms") or {}
        m = s.get("mqtt") or {}
        pend = None if not m else max(0, int(m.get("spooled", 0)) - int(m.get("acked", 0)))
        lines.append(f"| {dev} | {seen[dev].get('availability', '?')} | {s.get('run', '-')} | {_f(s.get('uptime_s'))} | "
                     f"{_f(s.get('fps'))} | {_f(lat.get('p50'), 2)} | {_f(lat.get('p90'), 2)} | {_f(s.get('frames'))} | "
                     f"{_f(s.get('dropped_frames'))} | {_f(s.get('temperature_c'))} | "
                     f"{'-' if s.get('throttled') is None else ('YES' if s.get('throttled') else 'no')} | "
                     f"{_f(pend)} / {_f(m.get('dropped'))} |")
    return lines


def reports_from(seen: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    reps = []
    for dev in sorted(seen):
        slot = seen[dev]
        if slot.get("bench"):
            b = {k: v for k, v in slot["bench"].items() if k not in ("run", "wall_utc")}
            b["label"] = f"{dev} (bench)"
            b["_path"] = f"mqtt:{dev}/bench"
            reps.append(b)
        if slot.get("stats") and (slot["stats"].get("latency_ms") or {}).get("p90") is not None:
            r = stats_as_bench_report(dev, slot["stats"], slot.get("info"))
            r["label"] = f"{dev} (live)"
            r["_path"] = f"mqtt:{dev}/stats"
            reps.append(r)
    return reps


def render(seen: dict[str, dict[str, Any]], out_dir: str | Path | None = None, plots: bool = True) -> str:
    from ..bench.compare import render_compare_markdown, write_compare_plot

    lines = ["# edgeaffect fleet", "", f"{len(seen)} device(s) heard.", "", *device_table(seen), ""]
    reps = reports_from(seen)
    plot = None
    if reps and out_dir is not None and plots:
        plot, _msg = write_compare_plot(reps, Path(out_dir) / "compare.png")
    if reps:
        lines.append(render_compare_markdown(reps, plot).replace("# edgeaffect bench: comparison", "## Compared (as `bench compare`)"))
    else:
        lines.append("No device has published stats with latencies or a bench report yet.")
    md = "\n".join(lines)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "fleet.md").write_text(md)
        (Path(out_dir) / "fleet.json").write_text(json.dumps(seen, indent=1, default=str))
    return md


def publish_bench(cfg: MqttConfig, report_path: str | Path) -> None:
    """Publish one bench report file (retained) to `<prefix>/<device>/bench` and wait for the PUBACK."""
    from ..bench.report import load

    rep = load(report_path)
    rep.pop("_path", None)
    c = _client(cfg, f"edgeaffect-bench-{cfg.device}")
    _connect(c, cfg)
    try:
        info = c.publish(cfg.topic("bench"), envelope("bench", cfg.device, "bench", 0, rep), qos=1, retain=True)
        info.wait_for_publish(timeout=10)
        if not info.is_published():
            raise EdgeAffectError(f"the broker at {cfg.url} did not acknowledge the report within 10 s")
    finally:
        c.disconnect()
        c.loop_stop()


def add_broker_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("MQTT broker")
    g.add_argument("--mqtt", required=required, metavar="URL", help="mqtt://HOST:PORT or mqtts://HOST:PORT (TLS)")
    g.add_argument("--mqtt-user", default=None, help="username (the password comes from $EDGEAFFECT_MQTT_PASSWORD or --mqtt-password-file)")
    g.add_argument("--mqtt-password-file", default=None, help="file holding the password (never pass it on the command line)")
    g.add_argument("--mqtt-tls", action="store_true", help="TLS (implied by mqtts:// or --mqtt-ca)")
    g.add_argument("--mqtt-ca", default=None, help="CA bundle for TLS (default: the system's)")
    g.add_argument("--mqtt-cert", default=None, help="client certificate (mutual TLS)")
    g.add_argument("--mqtt-key", default=None, help="client key (mutual TLS)")
    g.add_argument("--mqtt-insecure", action="store_true", help="skip TLS hostname verification (test brokers only)")
    g.add_argument("--mqtt-prefix", default=None, help="topic prefix (default edgeaffect)")


def broker_config(a: argparse.Namespace, **kw: Any) -> MqttConfig:
    return config_from_args(a.mqtt, username=a.mqtt_user, password_file=a.mqtt_password_file, tls=a.mqtt_tls,
                            ca_certs=a.mqtt_ca, certfile=a.mqtt_cert, keyfile=a.mqtt_key, tls_insecure=a.mqtt_insecure,
                            prefix=a.mqtt_prefix, **kw)


def fleet_main(argv: list[str]) -> int:
    if argv and argv[0] == "publish-bench":
        ap = argparse.ArgumentParser(prog="edgeaffect fleet publish-bench", description="publish a bench report (retained) for the fleet table")
        ap.add_argument("report", help="an edgeaffect.bench/1 JSON report (edgeaffect bench e2e ...)")
        ap.add_argument("--device", required=True, help="device id (topic level)")
        add_broker_args(ap)
        a = ap.parse_args(argv[1:])
        cfg = broker_config(a, device=a.device)
        publish_bench(cfg, a.report)
        print(f"published {a.report} to {cfg.topic('bench')} on {cfg.url}")
        return 0
    ap = argparse.ArgumentParser(prog="edgeaffect fleet", description="cross-device stats/bench table and plot from an MQTT broker")
    add_broker_args(ap)
    ap.add_argument("--wait", type=float, default=5.0, help="listen this long (s) for stats (default 5)")
    ap.add_argument("--devices", default=None, help="comma list: stop waiting once all of these have reported")
    ap.add_argument("--out", default=None, help="write fleet.md, fleet.json (+ compare.png) here")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    cfg = broker_config(a)
    devices = [d.strip() for d in a.devices.split(",") if d.strip()] if a.devices else None
    seen = collect(cfg, a.wait, devices)
    print(render(seen, a.out, plots=not a.no_plots))
    if devices and set(devices) - set(seen):
        print(f"not heard from: {', '.join(sorted(set(devices) - set(seen)))}")
        return 1
    return 0
