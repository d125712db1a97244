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

from ..configspec import Reader, between, one_of, read_section, setting
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


@dataclass(frozen=True)
class TelemetryConfig:
    """A profile's `[telemetry]` table: the same settings as `edgeaffect run --mqtt ...`, so a unit
    under systemd (`edgeaffect run --profile NAME`, no flags) publishes too. A flag given on the
    command line wins over its key. No password key: the password comes from `password_file` or
    the environment variable named by `password_env`, as with the flags."""

    mqtt: str = setting("", str, doc="broker URL, mqtt://HOST:PORT or mqtts://HOST:PORT (empty: no publishing)")
    device: str = setting("", str, doc="device id in the topics (empty: the host name)")
    prefix: str = setting("", str, doc="topic prefix (empty: edgeaffect)")
    username: str = setting("", str, doc="broker username (empty: none)")
    password_file: str = setting("", str, doc="file holding the password")
    password_env: str = setting("EDGEAFFECT_MQTT_PASSWORD", str, doc="environment variable holding the password")
    tls: bool = setting(False, bool, doc="TLS (implied by mqtts:// or ca)")
    ca: str = setting("", str, doc="CA bundle for TLS (empty: the system's)")
    cert: str = setting("", str, doc="client certificate (mutual TLS)")
    key: str = setting("", str, doc="client key (mutual TLS)")
    insecure: bool = setting(False, bool, doc="skip TLS hostname verification (test brokers only)")
    frames_hz: float = setting(2.0, float, between(0, 1000), doc="per-frame results at most this often (0: every frame)")
    stats_s: float = setting(10.0, float, between(0.1, 86400), doc="stats every N seconds")
    full_frames: bool = setting(False, bool, doc="include landmarks and sigmas in frame messages")
    spool: str = setting("", str, doc="spool directory (empty: OUT/mqtt-spool)")
    spool_mb: float = setting(50.0, float, between(0.1, 1_000_000), doc="spool bound in MB")
    spool_policy: str = setting("drop_oldest", str, one_of(("drop_oldest", "drop_newest")), doc="when the spool is full")

    @classmethod
    def from_table(cls, r: Reader, table: Any, section: str = "telemetry") -> TelemetryConfig:
        t = cls(**read_section(r, table, section, cls))
        if t.mqtt:
            try:
                parse_url(t.mqtt)
            except EdgeAffectError as e:
                raise r.fail(f"{section}.mqtt", str(e).removeprefix("--mqtt: ")) from None
        if t.device and _TOPIC_SAFE.search(t.device):
            raise r.fail(f"{section}.device", "use letters, digits, '-', '_' or '.' only (it is a topic level)")
        return t

    def mqtt_config(self, **overrides: Any) -> MqttConfig:
        """The broker settings (files checked, password read) with command-line `overrides`
        (None values: not given, the table's value stays)."""
        o = {k: v for k, v in overrides.items() if v is not None}
        return config_from_args(
            o.pop("url", None) or self.mqtt, device=o.pop("device", None) or self.device or None,
            prefix=o.pop("prefix", None) or self.prefix or None, username=o.pop("username", None) or self.username or None,
            password_env=self.password_env, password_file=o.pop("password_file", None) or self.password_file or None,
            tls=bool(o.pop("tls", None) or self.tls), ca_certs=o.pop("ca_certs", None) or self.ca or None,
            certfile=o.pop("certfile", None) or self.cert or None, keyfile=o.pop("keyfile", None) or self.key or None,
            tls_insecure=bool(o.pop("tls_insecure", None) or self.insecure),
            frames_hz=o.pop("frames_hz", self.frames_hz), stats_every_s=o.pop("stats_every_s", self.stats_s),
            full_frames=o.pop("full_frames", self.full_frames), spool_max_mb=o.pop("spool_max_mb", self.spool_mb),
            spool_policy=o.pop("spool_policy", self.spool_policy), **o,
        )
