"""The HTTP door: requests sessions and urllib3 pools ask the governor before every request,
report the answers' limit headers to it, and never retry by themselves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses
import urllib3

from syncd.clock import FakeClock
from syncd.governor import WRITE, Governor, Limit
from syncd.http_door import GovernedAdapter, govern_session, govern_urllib3

BASE = "https://api.example.test"


def governor(clock: FakeClock) -> Governor:
    return Governor(
        "test", [Limit("all", 100, 10), Limit("writes", 2, 60, frozenset({WRITE}))], clock=clock
    )


@responses.activate
def test_a_429_makes_the_next_request_wait_for_retry_after() -> None:
    clock = FakeClock()
    gov = governor(clock)
    session = requests.Session()
    govern_session(session, BASE, gov)
    responses.get(f"{BASE}/busy", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/next", json={"ok": True})
    start = clock.now()
    assert session.get(f"{BASE}/busy").status_code == 429
    assert session.get(f"{BASE}/next").json() == {"ok": True}
    assert (clock.now() - start).total_seconds() >= 7
    assert gov.throttled == 1 and gov.in_flight == 0


@responses.activate
def test_writes_are_counted_against_the_write_limit() -> None:
    clock = FakeClock()
    session = requests.Session()
    govern_session(session, BASE, governor(clock))
    responses.post(f"{BASE}/issues", json={}, status=201)
    start = clock.now()
    for _ in range(3):
        session.post(f"{BASE}/issues", json={})
    # 90% of 2 per minute is 1.8: 2 per 66.7 s, so the third waits for the first to
    # leave that stretched window.
    assert (clock.now() - start).total_seconds() >= 60 / 0.9 - 1e-6


@responses.activate
def test_the_adapter_never_retries() -> None:
    session = requests.Session()
    session.mount(f"{BASE}/", GovernedAdapter(governor(FakeClock())))
    responses.post(f"{BASE}/issues", status=502)
    assert session.post(f"{BASE}/issues").status_code == 502
    assert len(responses.calls) == 1


class _Busy(BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_GET(self) -> None:
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "3")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_urllib3_pool_is_governed_too(busy_server: str) -> None:
    clock = FakeClock()
    gov = governor(clock)
    pool = urllib3.PoolManager()
    govern_urllib3(pool, gov)
    _Busy.answers = [429]
    start = clock.now()
    assert pool.request("GET", f"{busy_server}/deals").status == 429
    assert pool.request("GET", f"{busy_server}/deals").status == 200
    assert (clock.now() - start).total_seconds() >= 3
    assert gov.throttled == 1 and gov.in_flight == 0
