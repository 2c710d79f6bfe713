"""Slow and numerous clients against a real `syncd run` ([http] header/body timeouts and
connection cap), over real sockets: slow-loris connections are closed within the timeout
while normal deliveries still get their answers."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.integration.daemon_helpers import Daemon, free_port, post_webhook, write_daemon_config

SECRET = "whsec_limits_0123456789"
HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
MAX_CONNECTIONS = 400
SLOW_CLIENTS = 300  # as in the issue: 300 slow connections
MARGIN = 2.5  # scheduling slack on a shared 2-core machine


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp_path = tmp_path_factory.mktemp("limits")
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    text = config.read_text()
    text = re.sub(
        r"(?m)^port = \d+$",
        f"port = {port}\n"
        f"header_timeout_seconds = {HEADER_TIMEOUT}\n"
        f"body_timeout_seconds = {BODY_TIMEOUT}\n"
        f"max_connections = {MAX_CONNECTIONS}",
        text,
        count=1,
    )
    config.write_text(text)
    with Daemon(config, port) as running:
        running.wait_ready()
        yield running


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(0.05)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF, reset, or a final answer)."""
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def _drip(
    socks: list[socket.socket],
    payload: bytes,
    stop: threading.Event,
    closed_at: dict[int, float],
    every: float = 0.3,
) -> None:
    """Send one byte of `payload` per connection every `every` seconds (a slow loris), and
    note when the server closed each connection."""
    position = 0
    while not stop.is_set() and len(closed_at) < len(socks):
        for i, sock in enumerate(socks):
            if i in closed_at:
                continue
            if _closed_by_server(sock):
                closed_at[i] = time.monotonic()
                continue
            try:
                sock.sendall(payload[position % len(payload) :][:1])
            except OSError:
                closed_at[i] = time.monotonic()
        position += 1
        stop.wait(every)


def test_slow_headers_are_cut_within_the_timeout_while_deliveries_flow(daemon: Daemon) -> None:
    socks = [_connect(daemon.port) for _ in range(SLOW_CLIENTS)]
    started = time.monotonic()
    stop, closed_at = threading.Event(), {}
    request_line = b"POST /webhooks/localdb HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 500
    dripper = threading.Thread(target=_drip, args=(socks, request_line, stop, closed_at))
    dripper.start()
    try:
        # Normal traffic gets through while the slow clients hold their connections.
        for i in range(20):
            answer = post_webhook(daemon.url, SECRET, {"type": "item", "id": str(i)}, f"n-{i}")
            assert answer.status_code == 202, answer.text
        dripper.join(timeout=HEADER_TIMEOUT + MARGIN + 5)
    finally:
        stop.set()
        dripper.join(timeout=5)
        for sock in socks:
            sock.close()
    assert len(closed_at) == SLOW_CLIENTS, f"only {len(closed_at)} slow connections closed"
    slowest = max(closed_at.values()) - started
    assert slowest < HEADER_TIMEOUT + MARGIN, f"last slow connection closed after {slowest:.1f} s"


def test_an_idle_connection_is_closed_within_the_header_timeout(daemon: Daemon) -> None:
    sock = _connect(daemon.port)
    started = time.monotonic()
    try:
        while not _closed_by_server(sock):
            assert time.monotonic() - started < HEADER_TIMEOUT + MARGIN, "idle connection kept"
    finally:
        sock.close()


def test_a_slow_body_gets_408_within_the_body_timeout(daemon: Daemon) -> None:
    sock = _connect(daemon.port)
    head = (
        b"POST /webhooks/localdb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    sock.sendall(head)
    started = time.monotonic()
    answer = b""
    try:
        while time.monotonic() - started < BODY_TIMEOUT + MARGIN:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"{")  # one byte at a time, never the whole body
                time.sleep(0.2)
                continue
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    # Normal traffic is unaffected.
    ok = post_webhook(daemon.url, SECRET, {"type": "item", "id": "after"}, "after-body")
    assert ok.status_code == 202


def test_connections_past_the_cap_are_closed_and_service_resumes(daemon: Daemon) -> None:
    socks = [_connect(daemon.port) for _ in range(MAX_CONNECTIONS + 20)]
    try:
        time.sleep(0.5)
        closed = sum(_closed_by_server(s) for s in socks)
        assert closed >= 20, f"{closed} of {len(socks)} connections closed at once"
    finally:
        for sock in socks:
            sock.close()
    # Once they are gone, requests are served again.
    deadline = time.monotonic() + HEADER_TIMEOUT + MARGIN
    while True:
        try:
            if requests.get(f"{daemon.url}/healthz", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the daemon did not serve again"
        time.sleep(0.1)
