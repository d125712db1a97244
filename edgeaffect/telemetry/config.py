"""MQTT publisher settings (`edgeaffect run --mqtt URL ...`, or a profile's `[telemetry]` table).

Credentials: the password comes from an environment variable (default
EDGEAFFECT_MQTT_PASSWORD) or a file, never from a command-line flag, so it is not in the
shell history or `ps`. It is kept out of `repr()`, out of `public()` (what run.json and the
console get) and out of every log line; a password put into the URL (`mqtt://user:pw@host`)
is accepted but stripped the same way.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import EdgeAffectError

SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}
_TOPIC_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def device_id_default() -> str:
    return _TOPIC_SAFE.sub("-", platform.node() or "device") or "device"


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int = 1883
    device: str = field(default_factory=device_id_default)  # topic level: edgeaffect/<device>/...
    prefix: str = "edgeaffect"
    client_id: str | None = None  # default edgeaffect-<device>
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_certs: str | None = None  # CA bundle (default: the system's)
    certfile: str | None = None  # client certificate (mutual TLS)
    keyfile: str | None = None
    tls_insecure: bool = False  # skip hostname verification (test brokers only)
    keepalive_s: int = 30
    frames_hz: float = 2.0  # per-frame results at most this often (0: every frame)
    stats_every_s: float = 10.0
    full_frames: bool = False  # include landmarks and sigmas in frame messages
    spool_dir: str | None = None  # default <out>/mqtt-spool
    spool_max_mb: float = 50.0
    spool_policy: str = "drop_oldest"  # drop_oldest | drop_newest (see spool.py)
    inflight: int = 50  # unacknowledged messages in flight at once
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0

    def topic(self, leaf: str) -> str:
        return f"{self.prefix}/{self.device}/{leaf}"

    @property
    def url(self) -> str:
        """The broker address without credentials (safe to print)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def public(self) -> dict[str, Any]:
        """What run.json and the console may show: no username, no password, no key paths' contents."""
        return {
            "url": self.url, "device": self.device, "prefix": self.prefix, "tls": self.tls,
            "auth": self.username is not None, "qos": 1, "frames_hz": self.frames_hz,
            "stats_every_s": self.stats_every_s, "spool_max_mb": self.spool_max_mb, "spool_policy": self.spool_policy,
            "topics": {k: self.topic(k) for k in ("availability", "frames", "events", "driver", "kiosk", "stats", "info")},
        }


def parse_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """mqtt://[user[:password]@]host[:port] -> (host, port, tls, user, password)."""
    if "://" not in url:
        url = "mqtt://" + url
    u = urlsplit(url)
    if u.scheme not in SCHEMES:
        raise EdgeAffectError(f"--mqtt: unsupported scheme {u.scheme!r} (use mqtt://HOST:PORT or mqtts://HOST:PORT)")
    default_port, tls = SCHEMES[u.scheme]
    try:
        port = u.port or default_port
    except ValueError:
        raise EdgeAffectError("--mqtt: the port must be a number (mqtt://HOST:PORT)") from None
    if not u.hostname:
        raise EdgeAffectError("--mqtt: no host given (mqtt://HOST:PORT)")
    return (u.hostname, port, tls, unquote(u.username) if u.username else None,
            unquote(u.password) if u.password else None)


def config_from_args(url: str, *, device: str | None = None, prefix: str | None = None, username: str | None = None,
                     password_env: str = "EDGEAFFECT_MQTT_PASSWORD", password_file: str | None = None,
                     tls: bool = False, ca_certs: str | None = None, certfile: str | None = None,
                     keyfile: str | None = None, tls_insecure: bool = False, **kw: Any) -> MqttConfig:
    host, port, url_tls, url_user, url_pw = parse_url(url)
    password = url_pw
    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as e:
            raise EdgeAffectError(f"--mqtt-password-file: cannot read {password_file} ({e.strerror or e})") from None
    elif password is None and os.environ.get(password_env):
        password = os.environ[password_env]
    for name, p in (("--mqtt-ca", ca_certs), ("--mqtt-cert", certfile), ("--mqtt-key", keyfile)):
        if p and not Path(p).is_file():
            raise EdgeAffectError(f"{name}: {p} is not a file")
    _check_tls_files(ca_certs, certfile, keyfile)
    cfg = MqttConfig(host=host, port=port, username=username or url_user, password=password,
                     tls=tls or url_tls or bool(ca_certs or certfile), ca_certs=ca_certs, certfile=certfile,
                     keyfile=keyfile, tls_insecure=tls_insecure)
    if device:
        if _TOPIC_SAFE.search(device):
            raise EdgeAffectError(f"--mqtt-device {device!r}: use letters, digits, '-', '_' or '.' only (it is a topic level)")
        cfg = replace(cfg, device=device)
    if prefix:
        cfg = replace(cfg, prefix=prefix.strip("/"))
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})


def _check_tls_files(ca_certs: str | None, certfile: str | None, keyfile: str | None) -> None:
    """Load the TLS files once now, so a wrong file is one line before the run, not a traceback in it."""
    import ssl

    if keyfile and not certfile:
        raise EdgeAffectError("--mqtt-key needs --mqtt-cert (the client certificate it belongs to)")
    ctx = ssl.create_default_context()
    try:
        if ca_certs:
            ctx.load_verify_locations(cafile=ca_certs)
    except (ssl.SSLError, OSError) as e:
        raise EdgeAffectError(f"--mqtt-ca: {ca_certs} is not a PEM CA certificate bundle ({e})") from None
    try:
        if certfile:
            ctx.load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as e:
        raise EdgeAffectError(f"--mqtt-cert/--mqtt-key: {certfile} with {keyfile or 'its own key'} is not a usable "
                              f"PEM certificate and key ({e})") from None
