"""A real Mosquitto broker for tests: started on a free localhost port, stopped (or killed and
restarted) on request. Tests skip with a message where the `mosquitto` binary is absent
(install: apt-get install -y mosquitto mosquitto-clients; .ci/run does it)."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto with persistence (so a persistent subscriber session survives a restart)."""

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.exe = mosquitto_binary()
        assert self.exe, "mosquitto not installed"
        self.port = port or free_port()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n{'' if 'allow_anonymous' in extra_conf else 'allow_anonymous true'}\npersistence true\n"
            f"persistence_location {self.dir}/\nautosave_interval 1\nautosave_on_changes true\n"
            f"max_queued_messages 100000\nlog_dest file {self.dir}/mosquitto.log\n"
            # started as root, mosquitto switches to user `mosquitto` and could not write here
            f"user {getpass.getuser()}\n" + extra_conf
        )
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 5.0) -> Broker:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited ({self.proc.returncode}); see {self.dir}/mosquitto.log") from None
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class Subscriber:
    """A paho subscriber that records (topic, payload bytes, retain) of everything under `topic`."""

    def __init__(self, port: int, topic: str = "edgeaffect/#", client_id: str = "test-sub", persistent: bool = True) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self._subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent)
        c.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]

        def on_connect(client: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            if not getattr(rc, "is_failure", False):
                client.subscribe(topic, qos=1)

        c.on_connect = on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        c.connect_async("127.0.0.1", port, 10)
        c.loop_start()
        self.client = c

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait_subscribed(self, timeout: float = 5.0) -> None:
        assert self._subscribed.wait(timeout), "subscriber did not subscribe"

    def wait_for(self, pred: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(list(self.messages)):
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_tls_and_password(d: Path, user: str, password: str) -> str | None:
    """A throw-away CA, a server certificate for 127.0.0.1 and a mosquitto password file;
    returns the mosquitto.conf lines (None when openssl or mosquitto_passwd is missing)."""
    openssl, mpw = shutil.which("openssl"), shutil.which("mosquitto_passwd")
    if not openssl or not mpw:
        return None
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(args, cwd=d, check=True, capture_output=True)

    run(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edgeaffect-test-ca")
    run(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    run(mpw, "-c", "-b", "passwd", user, password)
    return (f"cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n"
            f"allow_anonymous false\npassword_file {d}/passwd\n")
