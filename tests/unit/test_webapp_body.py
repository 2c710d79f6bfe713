"""The webhook endpoint reads a body that has fully arrived without arming the body timer
(syncd.webapp.body_arrived, issue 17), over a real uvicorn server: a body sent with its
headers, and one sent slowly (which still gets the timer, and its 408, as
tests/integration/test_http_limits.py checks against a daemon)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from syncd import webapp
from tests.helpers import free_port


class _Cycle:
    def __init__(self, more_body: bool) -> None:
        self.more_body = more_body

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": self.more_body}


def test_only_a_body_that_has_arrived_skips_the_timer() -> None:
    assert webapp.body_arrived(_Cycle(more_body=False).receive) is True
    assert webapp.body_arrived(_Cycle(more_body=True).receive) is False

    async def plain_receive() -> dict[str, Any]:
        return {}

    assert webapp.body_arrived(plain_receive) is False  # not uvicorn's: read under the timer


@pytest.fixture
def server() -> Iterator[tuple[int, list[bool]]]:
    """A uvicorn server whose app records what body_arrived said for each request."""
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(webapp.body_arrived(receive))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", http="httptools")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield port, seen
    running.should_exit = True
    thread.join(10)


def _post(port: int, pieces: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.2)
        return sock.recv(65536)


def test_a_body_sent_with_its_headers_has_arrived_and_a_slow_one_has_not(
    server: tuple[int, list[bool]],
) -> None:
    port, seen = server
    head = b"POST /webhooks/x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n"
    assert b"\r\nping\r\n" in _post(port, [head + b"ping"])
    assert b"\r\npong\r\n" in _post(port, [head, b"po", b"ng"])
    assert seen == [True, False]
