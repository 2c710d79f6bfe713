"""A tiny sd_notify(3) client: tells systemd we are ready, reloading, stopping or alive.

Written by hand because the protocol is one datagram of `KEY=value` lines to the unix socket
named in `$NOTIFY_SOCKET`; a dependency would be larger than this file. Every call is a no-op
returning False when the daemon does not run under systemd (`NOTIFY_SOCKET` unset).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to the socket systemd named in the environment it was built from."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=value` assignments in one datagram; True when systemd got them."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self._address)
        except OSError as exc:
            # Losing a notification must not stop the daemon; systemd's own timeouts catch it.
            log.warning("sd_notify failed: %s", exc)
            return False
        return True

    def ready(self, status_text: str | None = None) -> bool:
        extra = [f"STATUS={_one_line(status_text)}"] if status_text else []
        return self.send("READY=1", *extra)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """Start of a reload; send `ready()` when done. MONOTONIC_USEC lets systemd match them."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def watchdog_interval(self) -> float | None:
        """Seconds between `watchdog()` pings (half of WatchdogSec=), or None when not asked."""
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None  # the watchdog is meant for another process (e.g. our parent)
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 2 / 1_000_000


def _socket_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        # Linux abstract namespace: a leading NUL byte instead of '@'.
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET is neither a path nor an abstract socket; ignoring it")
    return None


def _one_line(text: str) -> str:
    # A newline would start a new assignment in the datagram.
    return " ".join(text.splitlines())


_default: Notifier | None = None


def default() -> Notifier:
    """The notifier for this process's environment, built on first use."""
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def ready(status_text: str | None = None) -> bool:
    return default().ready(status_text)


def status(text: str) -> bool:
    return default().status(text)


def stopping() -> bool:
    return default().stopping()


def watchdog() -> bool:
    return default().watchdog()


def reloading() -> bool:
    return default().reloading()


def watchdog_interval() -> float | None:
    return default().watchdog_interval()
