"""The run loop's policy layers and sinks (`edgeaffect run --dms --kiosk --mqtt URL`).

One object the loop calls at four points, so the loop itself stays a few lines:

    obs.start(header, out_dir)               # after run.json's header is built (adds its own keys)
    events = obs.annotate(frame, result)     # before writing: sets result.driver / result.kiosk,
                                             # returns event lines (edgeaffect.event/1 dicts)
    obs.publish(frame, result, events)       # after writing: MQTT
    tail = obs.finish(); obs.close()         # end open events (write them), flush MQTT

Layers see the frames in order with their timestamps; they never touch the pixels except the
driver monitor's cheap image statistics (poor vision / camera blocked).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .results import FrameResult

log = logging.getLogger("edgeaffect")


class ResultObservers:
    def __init__(self, *, dms: Any = None, kiosk: Any = None, mqtt: Any = None, spool_dir: str | Path | None = None) -> None:
        """`dms`: a DmsConfig (or True for defaults); `kiosk`: a KioskConfig (or True);
        `mqtt`: an MqttConfig. Nothing is created until start()."""
        from .dms import DmsConfig, DriverMonitor
        from .kiosk import KioskConfig, KioskCounter

        self.monitor = DriverMonitor(dms if isinstance(dms, DmsConfig) else DmsConfig()) if dms else None
        self.kiosk = KioskCounter(kiosk if isinstance(kiosk, KioskConfig) else KioskConfig()) if kiosk else None
        self.mqtt_cfg = mqtt
        self.spool_dir = spool_dir
        self.sink: Any = None
        self.events_written = 0

    @property
    def active(self) -> bool:
        return bool(self.monitor or self.kiosk or self.mqtt_cfg)

    def header(self) -> dict[str, Any]:
        """run.json keys (never credentials)."""
        import dataclasses

        h: dict[str, Any] = {}
        if self.monitor:
            h["dms"] = dataclasses.asdict(self.monitor.cfg)
        if self.kiosk:
            h["kiosk"] = dataclasses.asdict(self.kiosk.cfg)
        if self.mqtt_cfg is not None:
            h["mqtt"] = self.mqtt_cfg.public()
        return h

    def start(self, header: dict[str, Any], out_dir: str | Path) -> None:
        if self.mqtt_cfg is None:
            return
        from .telemetry.mqtt import MqttPublisher
        from .telemetry.sink import TelemetrySink

        spool = Path(self.spool_dir or self.mqtt_cfg.spool_dir or Path(out_dir) / "mqtt-spool")
        pub = MqttPublisher(self.mqtt_cfg, spool)
        self.sink = TelemetrySink(pub, self.mqtt_cfg, header)
        print(f"MQTT: publishing to {self.mqtt_cfg.url} under {self.mqtt_cfg.topic('')} (spool {spool})")

    def annotate(self, frame: Any, result: FrameResult) -> list[dict[str, Any]]:
        events: list[Any] = []
        if self.monitor is not None:
            from .dms import image_quality

            img = getattr(frame, "image", None)
            quality = size = None
            if img is not None and getattr(img, "ndim", 0) >= 2:
                quality = image_quality(img, getattr(frame, "bit_depth", None))
                size = (int(img.shape[1]), int(img.shape[0]))
            state, ev = self.monitor.update(result, quality, size)
            result.driver = state
            events += ev
        if self.kiosk is not None:
            state, ev = self.kiosk.update(result)
            result.kiosk = state
            events += ev
        out = [e.to_dict() for e in events]
        self.events_written += len(out)
        return out

    def publish(self, frame: Any, result: FrameResult, events: list[dict[str, Any]]) -> None:
        if self.sink is None:
            return
        try:
            self.sink.on_result(frame, result, events)
        except Exception as e:  # noqa: BLE001 - telemetry never ends a run
            log.warning("MQTT sink: %s: %s", type(e).__name__, e)

    def on_status(self, d: dict[str, Any]) -> None:
        """A status line of the run (camera_lost / camera_retry / camera_restored): to MQTT `events` / `stats`."""
        if self.sink is None:
            return
        try:
            self.sink.on_status(d)
        except Exception as e:  # noqa: BLE001 - telemetry never ends a run (nor a reconnect loop)
            log.warning("MQTT sink: %s: %s", type(e).__name__, e)

    def finish(self) -> list[dict[str, Any]]:
        """End every open event (the run is over); they are also published."""
        events = []
        for layer in (self.monitor, self.kiosk):
            if layer is not None:
                events += [e.to_dict() for e in layer.finish()]
        self.events_written += len(events)
        if self.sink is not None and events:
            self.sink.on_events(events)
        return events

    def close(self) -> None:
        if self.sink is not None:
            try:
                self.sink.close()
                st = self.sink.pub.status()
                left = self.sink.pub.pending()
                print(f"MQTT: {st['acked']} messages acknowledged by {self.mqtt_cfg.url}"
                      + (f", {left} still spooled in {self.sink.pub.spool.dir} (sent by the next run with this spool)" if left else "")
                      + (f", {st['dropped']} dropped (spool full or unwritable)" if st["dropped"] else ""))
            except Exception as e:  # noqa: BLE001
                log.warning("MQTT close: %s: %s", type(e).__name__, e)
            self.sink = None


def add_observer_args(p: Any) -> None:
    """`edgeaffect run` flags of the policy layers and the MQTT publisher."""
    from .telemetry.fleet import add_broker_args

    g = p.add_argument_group("driver monitoring / kiosk")
    g.add_argument("--dms", action="store_true", help="driver-monitoring state per frame + events (implies --max-faces 1)")
    g.add_argument("--kiosk", action="store_true", help="kiosk analytics: visits, dwell, attention, people count")
    add_broker_args(p, required=False)
    m = p.add_argument_group("MQTT publishing")
    m.add_argument("--mqtt-device", default=None, help="device id in the topics (default: host name)")
    m.add_argument("--mqtt-frames-hz", type=float, default=None, help="per-frame results at most this often (default 2; 0 = every frame)")
    m.add_argument("--mqtt-stats-s", type=float, default=None, help="stats every N seconds (default 10)")
    m.add_argument("--mqtt-full-frames", action="store_true", default=None, help="include landmarks in frame messages")
    m.add_argument("--mqtt-spool", default=None, help="spool directory (default OUT/mqtt-spool)")
    m.add_argument("--mqtt-spool-mb", type=float, default=None, help="spool bound in MB (default 50)")
    m.add_argument("--mqtt-spool-policy", choices=("drop_oldest", "drop_newest"), default=None, help="when the spool is full")


def observers_from_args(a: Any, profile: Any = None) -> ResultObservers | None:
    """The observers `edgeaffect run` asked for (None when none). A profile's [dms] / [kiosk]
    tables supply the thresholds (and turn their layer on with `enabled = true`); its
    [telemetry] table the MQTT settings, each overridden by a flag given on the command line."""
    dms_cfg, kiosk_cfg = getattr(profile, "dms", None), getattr(profile, "kiosk", None)
    on_dms = getattr(a, "dms", False) or bool(getattr(dms_cfg, "enabled", False))
    on_kiosk = getattr(a, "kiosk", False) or bool(getattr(kiosk_cfg, "enabled", False))
    dms = (dms_cfg or True) if on_dms else None
    kiosk = (kiosk_cfg or True) if on_kiosk else None
    tele = getattr(profile, "telemetry", None)
    mqtt = None
    spool_dir = getattr(a, "mqtt_spool", None)
    if getattr(a, "mqtt", None) or (tele is not None and tele.mqtt):
        from .telemetry.config import TelemetryConfig
        from .telemetry.mqtt import _paho

        _paho()  # no paho-mqtt: one line naming the extra, before any model loads
        g = lambda k: getattr(a, k, None)  # noqa: E731  (flags absent from a namespace: not given)
        mqtt = (tele or TelemetryConfig()).mqtt_config(
            url=g("mqtt"), username=g("mqtt_user"), password_file=g("mqtt_password_file"), tls=g("mqtt_tls") or None,
            ca_certs=g("mqtt_ca"), certfile=g("mqtt_cert"), keyfile=g("mqtt_key"), tls_insecure=g("mqtt_insecure") or None,
            prefix=g("mqtt_prefix"), device=g("mqtt_device"), frames_hz=g("mqtt_frames_hz"), stats_every_s=g("mqtt_stats_s"),
            full_frames=g("mqtt_full_frames"), spool_max_mb=g("mqtt_spool_mb"), spool_policy=g("mqtt_spool_policy"))
        spool_dir = spool_dir or (tele.spool if tele is not None and tele.spool else None)
    obs = ResultObservers(dms=dms, kiosk=kiosk, mqtt=mqtt, spool_dir=spool_dir)
    return obs if obs.active else None
