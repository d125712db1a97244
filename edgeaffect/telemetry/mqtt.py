"""MQTT publisher: spool-first, QoS 1, never blocks or crashes the run.

`publish()` (run thread) only appends one line to the on-disk spool (spool.py) and returns.
A sender thread hands spooled messages to paho-mqtt in order while the broker is connected,
at most `inflight` unacknowledged at a time, and advances the spool's acknowledged position on
each PUBACK. When the connection drops, paho re-sends what was in flight on reconnect; the
sender waits until those are acknowledged before sending newer messages, so each topic stays
in order. Connection attempts, reconnects (exponential back-off from `reconnect_min_s` to
`reconnect_max_s`) and DNS all happen in paho's network thread.

Availability (Frigate's convention): `<prefix>/<device>/availability` is `online` (retained)
on every connect; the retained last will `offline` is published by the broker if the process
dies or the network goes silent for 1.5 x keepalive; a clean close publishes `offline` itself.

Delivery guarantee: at least once (see spool.py); messages carry (run, seq) to drop repeats.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import EdgeAffectError
from .config import MqttConfig
from .spool import Record, Spool

log = logging.getLogger("edgeaffect.telemetry")


def _paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise EdgeAffectError("--mqtt needs the MQTT client: pip install 'edgeaffect[mqtt]' (paho-mqtt)") from None
    return mqtt


class MqttPublisher:
    def __init__(self, cfg: MqttConfig, spool_dir: str | Path) -> None:
        mqtt = _paho()
        self.cfg = cfg
        self.spool = Spool(spool_dir, int(cfg.spool_max_mb * 1024 * 1024), cfg.spool_policy)
        self.connected = False
        self.connects = 0
        self.acked = 0
        self.last_error: str | None = None
        self._mqtt = mqtt
        self._inflight: collections.OrderedDict[int, Record] = collections.OrderedDict()
        self._acks: collections.deque[int] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._resync = False
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id or f"edgeaffect-{cfg.device}",
                        protocol=mqtt.MQTTv311, clean_session=True)
        c.max_inflight_messages_set(cfg.inflight + 5)  # + availability messages
        c.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
        if cfg.username is not None:
            c.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            import ssl

            c.tls_set(ca_certs=cfg.ca_certs, certfile=cfg.certfile, keyfile=cfg.keyfile, cert_reqs=ssl.CERT_REQUIRED)
            if cfg.tls_insecure:
                c.tls_insecure_set(True)
        c.will_set(cfg.topic("availability"), "offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_connect_fail = self._on_connect_fail
        self.client = c
        c.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        c.loop_start()
        self._thread = threading.Thread(target=self._run, name="edgeaffect-mqtt", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            self.last_error = f"connection refused: {reason}"
            log.warning("MQTT %s: %s", self.cfg.url, self.last_error)
            return
        self.connected = True
        self.connects += 1
        client.publish(self.cfg.topic("availability"), "online", qos=1, retain=True)
        log.info("MQTT connected to %s", self.cfg.url)
        self._wake.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self.connected and not self._stop.is_set():
            log.warning("MQTT connection to %s lost (%s); spooling", self.cfg.url, reason)
        self.connected = False
        self._resync = True
        self._wake.set()

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        self.last_error = "broker unreachable"
        self._wake.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        self._acks.append(mid)  # no locks here: paho holds its own while calling us
        self._wake.set()

    # ------------------------------------------------------------------ sender thread
    def _drain_acks(self) -> None:
        while self._acks:
            if self._inflight.pop(self._acks.popleft(), None) is not None:
                self.acked += 1
        upto = next(iter(self._inflight.values())).start if self._inflight else self.spool.read_pos
        self.spool.acknowledge(upto)

    def _send_some(self) -> None:
        mqtt = self._mqtt
        if not self.connected:
            return
        if self._resync:
            if self._inflight:  # paho is re-sending what was in flight: keep the order
                return
            self._resync = False
        while len(self._inflight) < self.cfg.inflight and self.connected:
            rec = self.spool.next()
            if rec is None:
                return
            info = self.client.publish(rec.topic, rec.payload, qos=1, retain=rec.retain)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: paho keeps it for the reconnect
                self.spool.rewind(rec.start)
                self.last_error = mqtt.error_string(info.rc)
                return
            self._inflight[info.mid] = rec

    def _run(self) -> None:
        last_sync = time.monotonic()
        while True:
            self._wake.wait(0.05)
            self._wake.clear()
            try:
                self._drain_acks()
                if self._stop.is_set():
                    return
                self._send_some()
                if time.monotonic() - last_sync >= 1.0:
                    self.spool.sync()
                    last_sync = time.monotonic()
            except Exception as e:  # noqa: BLE001 - the telemetry thread must never take the run down
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("MQTT sender: %s", self.last_error)
                time.sleep(0.2)

    # ------------------------------------------------------------------ public
    def publish(self, leaf: str, payload: str, retain: bool = False) -> bool:
        """Queue one message for `<prefix>/<device>/<leaf>` (never blocks on the network)."""
        ok = self.spool.append(self.cfg.topic(leaf), payload, retain)
        self._wake.set()
        return ok

    def pending(self) -> int:
        return self.spool.pending()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "connects": self.connects, "acked": self.acked,
                "spooled": self.spool.written, "dropped": self.spool.dropped, "inflight": len(self._inflight),
                "spool_bytes": self.spool.total_bytes, "last_error": self.last_error}

    def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until everything spooled is acknowledged. True if it was."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._inflight and self.spool.acked >= self.spool.end_pos:
                return True
            self._wake.set()
            time.sleep(0.02)
        return False

    def close(self, drain_s: float = 10.0) -> None:
        """Send what can be sent within `drain_s` (only while connected: a broker that is down
        costs nothing here), say `offline`, disconnect. Unsent messages stay in the spool for
        the next run with the same spool directory."""
        if self.connected:
            self.flush(drain_s)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=2.0)
        self._drain_acks()
        self.spool.acknowledge(self.spool.acked, force=True)
        try:
            if self.connected:
                info = self.client.publish(self.cfg.topic("availability"), "offline", qos=1, retain=True)
                info.wait_for_publish(timeout=3.0)
            self.client.disconnect()
        except (RuntimeError, ValueError, OSError):
            pass
        self.client.loop_stop()
        self.spool.close()
