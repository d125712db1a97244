"""systemd readiness and watchdog notifications, without a dependency.

systemd (Type=notify, WatchdogSec=) passes $NOTIFY_SOCKET (a filesystem path, or "@name" for
the abstract namespace) and $WATCHDOG_USEC (+ $WATCHDOG_PID). The protocol is one AF_UNIX
datagram per message, "KEY=VALUE" lines: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

`SdNotifier.ping()` is called by the run loop after every frame and by the camera's
reconnect loop while it waits; it sends WATCHDOG=1 at most every WATCHDOG_USEC/4, so a
pipeline that hangs (no frame finished, no reconnect attempt) stops pinging and systemd
restarts the service. Outside systemd (no $NOTIFY_SOCKET) every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("edgeaffect")


class SdNotifier:
    def __init__(self, env: Mapping[str, str] | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if env is None else env
        self._clock = clock
        addr = env.get("NOTIFY_SOCKET") or ""
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace
        self.address = addr or None
        self.watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self.interval_s = self.watchdog_s / 4.0 if self.watchdog_s else None
        self._last_ping = -1e18
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send one datagram; False (and a single warning) when it cannot be delivered."""
        if self.address is None:
            return False
        msg = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.setblocking(False)  # never stall the run loop on a busy systemd
                self._sock.sendto(msg, self.address)
            except OSError as e:
                self.failed += 1
                if self.failed == 1:
                    log.warning("sd_notify to %r failed: %s", self.address, e)
                return False
            self.sent += 1
            return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def ping(self) -> bool:
        """WATCHDOG=1, rate-limited to every WATCHDOG_USEC/4 (no-op without a watchdog)."""
        if self.interval_s is None:
            return False
        now = self._clock()
        if now - self._last_ping < self.interval_s:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
