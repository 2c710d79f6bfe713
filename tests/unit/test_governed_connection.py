"""The http.client door (syncd.http_door.GovernedConnection, issue 17): against a real local
server, every request passes the governor, one keep-alive connection serves a thread's
requests and one the server closed while idle is replaced before use, bodies are decoded,
TLS is verified against the bundle given, and failures come out as urllib3's (a connection
that could not be made: surely never sent; no answer in time: not that)."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from urllib3.exceptions import NewConnectionError

from syncd.clock import FakeClock
from syncd.governor import WRITE, Governor, Limit
from syncd.http_door import GovernedConnection, exchange_together
from syncd_sandbox.email.fake_tls import server_context, write_self_signed


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.server.accepted += 1
        super().setup()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(self.rfile.read(length) if length else b"")
        body = json.dumps({"path": self.path}).encode()
        headers: dict[str, str] = {"Content-Type": "application/json; charset=utf-8"}
        status = 200
        if self.path == "/busy":
            status, headers["Retry-After"] = 429, "3"
        elif self.path == "/gzip":
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        elif self.path == "/slow":
            time.sleep(1.0)
        elif self.path == "/together":  # answered when three requests are here at once
            try:
                self.server.together.wait()
            except threading.BrokenBarrierError:
                status = 503
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/then-close":  # keep-alive said, then closed while idle
            self.close_connection = True

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.accepted = 0
        self.bodies: list[bytes] = []
        self.closed = threading.Event()
        self.together = threading.Barrier(3, timeout=5)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_side=True)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.closed.set()  # the connection is closed on the server's side


def _serve(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _serve(_Server())


def origin(server: _Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


def governor(clock: FakeClock) -> Governor:
    return Governor(
        "test", [Limit("all", 100, 10), Limit("writes", 2, 60, frozenset({WRITE}))], clock=clock
    )


def test_every_request_passes_the_governor(server: _Server) -> None:
    clock = FakeClock()
    gov = governor(clock)
    door = GovernedConnection(gov, origin(server), timeout=5)
    start = clock.now()
    for i in range(3):
        answer = door.request("POST", "/issues", body=f'{{"n": {i}}}', headers={})
        assert answer.status == 200
    # 90% of 2 writes a minute: the third waits for the first to leave the stretched window
    assert (clock.now() - start).total_seconds() >= 60 / 0.9 - 1e-6
    assert gov.sent == 3 and gov.in_flight == 0
    assert server.bodies == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']


def test_a_429_pauses_the_next_request(server: _Server) -> None:
    clock = FakeClock()
    gov = governor(clock)
    door = GovernedConnection(gov, origin(server), timeout=5)
    start = clock.now()
    assert door.request("GET", "/busy", body=None, headers={}).status == 429
    assert door.request("GET", "/next", body=None, headers={}).status == 200
    assert (clock.now() - start).total_seconds() >= 3
    assert gov.throttled == 1 and gov.in_flight == 0


def test_one_keep_alive_connection_serves_every_request(server: _Server) -> None:
    door = GovernedConnection(governor(FakeClock()), origin(server), timeout=5)
    for _ in range(5):
        assert json.loads(door.request("GET", "/a", body=None, headers={}).data) == {"path": "/a"}
    assert server.accepted == 1 and door.opened == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_before_use(
    server: _Server,
) -> None:
    door = GovernedConnection(governor(FakeClock()), origin(server), timeout=5)
    door.request("GET", "/then-close", body=None, headers={})
    assert server.closed.wait(5)
    # A write on the dead connection would fail with no answer (an uncertain create).
    assert door.request("POST", "/issues", body="{}", headers={}).status == 200
    assert server.accepted == 2 and server.bodies[-1] == b"{}"


def test_a_gzip_body_is_decoded(server: _Server) -> None:
    door = GovernedConnection(governor(FakeClock()), origin(server), timeout=5)
    answer = door.request("GET", "/gzip", body=None, headers={"Accept-Encoding": "gzip"})
    assert json.loads(answer.data) == {"path": "/gzip"}


def test_a_refused_connection_is_never_sent_a_late_answer_is_not(server: _Server) -> None:
    gov = governor(FakeClock())
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]  # nothing listens there
    refused = GovernedConnection(gov, f"http://127.0.0.1:{closed_port}", timeout=5)
    with pytest.raises(NewConnectionError):
        refused.request("POST", "/issues", body="{}", headers={})
    late = GovernedConnection(gov, origin(server), timeout=0.3)
    with pytest.raises(TimeoutError) as raised:
        late.request("POST", "/slow", body="{}", headers={})
    assert not isinstance(raised.value, NewConnectionError)
    assert gov.in_flight == 0 and gov.sent == 2
    # the connection of the late answer is not reused: the next request opens another
    assert late.request("GET", "/a", body=None, headers={}).status == 200
    assert late.opened == 2


def test_tls_is_verified_against_the_bundle_given(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    for tls_server in _serve(_Server(server_context(cert, key))):
        url = origin(tls_server, "https")
        gov = governor(FakeClock())
        trusted = GovernedConnection(gov, url, timeout=5, verify=str(cert))
        for _ in range(3):
            assert trusted.request("GET", "/a", body=None, headers={}).status == 200
        assert trusted.opened == 1  # kept alive under TLS too
        with pytest.raises(ssl.SSLCertVerificationError):  # not in requests' (certifi's) bundle
            GovernedConnection(gov, url, timeout=5).request("GET", "/a", body=None, headers={})
        unchecked = GovernedConnection(gov, url, timeout=5, verify=False)
        assert unchecked.request("GET", "/a", body=None, headers={}).status == 200


class _RecordedSocket:
    """A connected socket whose writes are recorded (everything else passes through)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_a_request_with_a_body_goes_out_in_one_write(server: _Server) -> None:
    # Head and body apart were two segments, two wake-ups of the server and one more
    # release of the GIL per create (issue 17).
    door = GovernedConnection(governor(FakeClock()), origin(server), timeout=5)
    assert door.request("GET", "/open", body=None, headers={}).status == 200
    recorded = _RecordedSocket(door.conn.sock)  # type: ignore[arg-type]
    door.conn.sock = recorded  # type: ignore[assignment]
    answer = door.request("POST", "/issues", body='{"title": "t"}', headers={"X-A": "1"})
    assert answer.status == 200 and server.bodies[-1] == b'{"title": "t"}'
    (write,) = recorded.writes
    assert write.startswith(b"POST /issues HTTP/1.1\r\n")
    assert write.endswith(b"\r\nX-A: 1\r\n\r\n" + b'{"title": "t"}')
    assert door.opened == 1


def test_requests_exchanged_together_are_in_flight_at_once(server: _Server) -> None:
    # /together answers only once three requests wait for it at the same time.
    gov = governor(FakeClock())
    doors = [GovernedConnection(gov, origin(server), timeout=10) for _ in range(3)]
    answers = exchange_together(
        [(door, "POST", "/together", f'{{"n": {i}}}'.encode(), {}) for i, door in enumerate(doors)]
    )
    assert [getattr(a, "status", a) for a in answers] == [200, 200, 200]
    assert sorted(server.bodies) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert server.accepted == 3 and gov.sent == 3 and gov.in_flight == 0


def test_a_request_that_fails_among_others_is_its_own_answer(server: _Server) -> None:
    gov = governor(FakeClock())
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]  # nothing listens there
    good = GovernedConnection(gov, origin(server), timeout=5)
    refused = GovernedConnection(gov, f"http://127.0.0.1:{closed_port}", timeout=5)
    late = GovernedConnection(gov, origin(server), timeout=0.3)
    answers = exchange_together(
        [
            (refused, "POST", "/issues", b"{}", {}),
            (late, "POST", "/slow", b"{}", {}),
            (good, "GET", "/a", None, {}),
        ]
    )
    assert isinstance(answers[0], NewConnectionError)
    assert isinstance(answers[1], TimeoutError)
    assert not isinstance(answers[2], Exception) and json.loads(answers[2].data) == {"path": "/a"}
    assert gov.in_flight == 0  # every permit given back, whatever became of its request
    assert good.request("GET", "/b", body=None, headers={}).status == 200  # and reusable
