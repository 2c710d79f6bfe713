"""The request and answer bytes of syncd.http_door's GovernedConnection (issue 17): written
as http.client writes them, byte for byte, and answers read by httptools' parser with
http.client's results and errors, over a real socket pair."""

from __future__ import annotations

import http.client
import io
import socket
import threading
from typing import Any

import pytest

from syncd.governor import RATE_LIMIT_HEADERS
from syncd.http_door import rate_limit_headers, read_answer, request_bytes


class _Captured:
    """A socket that keeps what http.client sends on it."""

    def __init__(self) -> None:
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        pass


def _http_client_bytes(
    host: str, port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> bytes:
    conn = http.client.HTTPConnection(host, port)
    captured = _Captured()
    conn.sock = captured  # type: ignore[assignment]
    conn.request(method, path, body=body, headers=headers)
    return captured.sent


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("GET", "/repos/o/r/issues?state=all&since=2026-12-01T00%3A00%3A00Z", None, {}),
        (
            "POST",
            "/repos/o/r/issues",
            b'{"title": "D\\u00e9al"}',
            {"Authorization": "token x", "Accept-Encoding": "gzip, deflate", "User-Agent": "u"},
        ),
        ("PUT", "/x", None, {"Accept": "application/json"}),
        ("PATCH", "/x", b"", {}),
        ("DELETE", "/x", None, {"Content-Type": "application/json"}),
        ("POST", "/x", b"{}", {"Content-Length": "2", "Host": "example.test"}),
    ],
)
def test_a_request_is_written_as_http_client_writes_it(
    method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    for host, port, host_header in (
        ("127.0.0.1", 80, "127.0.0.1"),
        ("api.github.test", 8443, "api.github.test:8443"),
    ):
        expected = _http_client_bytes(host, port, method, path, body, headers)
        # (http.client sends head and body in two writes; the bytes, joined, are these)
        assert request_bytes(method, path, host_header, body, headers) == expected


@pytest.mark.parametrize(
    ("path", "headers", "error"),
    [
        ("/x HTTP/1.1\r\nX-Smuggled: 1", {}, http.client.InvalidURL),
        ("/x", {"X-A": "1\r\nX-Smuggled: 1"}, ValueError),
        ("/x", {"X-A": "1\nX-Smuggled: 1"}, ValueError),
        ("/x", {"X A": "1"}, ValueError),
    ],
)
def test_nothing_can_be_smuggled_into_a_request(
    path: str, headers: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        request_bytes("GET", path, "h", None, headers)


def _answered(*pieces: bytes, close: bool = True) -> tuple[Any, ...]:
    """read_answer over a real socket pair, the other end writing `pieces` one by one."""
    ours, theirs = socket.socketpair()
    ours.settimeout(5)

    def send() -> None:
        for piece in pieces:
            theirs.sendall(piece)
        if close:
            theirs.close()

    writer = threading.Thread(target=send)
    writer.start()
    try:
        return read_answer(ours)
    finally:
        writer.join(5)
        ours.close()
        if not close:
            theirs.close()


def test_an_answer_with_a_length_keeps_the_connection() -> None:
    status, headers, body, keep = _answered(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-RateLimit-Remaining: 4",
        b'999\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 13\r\n\r\n{"number"',
        b": 7}",
        close=False,
    )
    assert (status, body, keep) == (201, b'{"number": 7}', True)
    assert headers["x-ratelimit-remaining"] == "4999"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_a_chunked_answer_after_an_interim_one() -> None:
    status, headers, body, keep = _answered(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"6\r\n world\r\n0\r\n\r\n",
        close=False,
    )
    assert (status, body, keep) == (200, b"hello world", True)
    assert "Transfer-Encoding" in headers


def test_an_answer_that_says_close_or_runs_until_close() -> None:
    said = _answered(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    assert (said[0], said[2], said[3]) == (200, b"ok", False)
    until = _answered(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ", b"it")
    assert (until[0], until[2], until[3]) == (200, b"all of it", False)


@pytest.mark.parametrize(
    ("pieces", "error"),
    [
        ((), http.client.RemoteDisconnected),
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",), http.client.IncompleteRead),
        ((b"HTTP/1.1 200 OK\r\nContent-Le",), http.client.IncompleteRead),
        ((b"SSH-2.0-OpenSSH_9.2\r\n\r\n",), http.client.BadStatusLine),
    ],
)
def test_a_broken_answer_raises_what_http_client_raises(
    pieces: tuple[bytes, ...], error: type[Exception]
) -> None:
    with pytest.raises(error):  # each an http.client.HTTPException: a transport error
        _answered(*pieces)


def test_no_answer_in_time_is_the_sockets_timeout() -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(0.2)
    try:
        with pytest.raises(TimeoutError):
            read_answer(ours)
    finally:
        ours.close()
        theirs.close()


class _Recorded:
    """A socket whose `makefile` reads the given bytes (http.client's HTTPResponse)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def _headers_both_ways(head: bytes) -> tuple[http.client.HTTPMessage, Any]:
    """The headers of `head` followed by a body "{}": as http.client's HTTPResponse parses
    them, and as read_answer does (over a socket pair)."""
    response = http.client.HTTPResponse(_Recorded(head + b"{}"))  # type: ignore[arg-type]
    response.begin()
    _, ours, body, _ = _answered(head, b"{}", close=False)
    assert body == b"{}"
    return response.msg, ours


def test_the_headers_are_http_clients_for_the_same_answer() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nServer: GitHub.com\r\nX-RateLimit-Remaining: 4999\r\n"
        b"Set-Cookie: a=1\r\nx-ratelimit-remaining: 12\r\nLink: <https://x/?page=2>; "
        b'rel="next"\r\nContent-Length: 2\r\n\r\n'
    )
    theirs, ours = _headers_both_ways(head)
    assert ours.items() == theirs.items()  # names as sent, repeats kept, in order
    assert ours.get("X-RATELIMIT-REMAINING") == theirs.get("x-ratelimit-remaining") == "4999"
    assert ours.get_all("x-ratelimit-remaining") == ["4999", "12"]


def test_every_lookup_of_the_headers_answers_as_http_clients_message() -> None:
    """AnswerHeaders reads its list without the email policy's per-value pass: the same
    answers as http.client's message for names present, repeated, missing, any case, and
    a value with bytes past ASCII (latin-1, as http.client decodes them)."""
    head = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"X-RateLimit-Remaining: 4999\r\nX-RateLimit-Reset: 1767225600\r\n"
        b"x-ratelimit-remaining: 12\r\nX-Note: caf\xe9\r\nContent-Length: 2\r\n\r\n"
    )
    theirs, ours = _headers_both_ways(head)
    assert type(ours).__name__ == "AnswerHeaders"
    for name in ["content-type", "X-RATELIMIT-REMAINING", "x-note", "Retry-After", "nope"]:
        assert ours.get(name) == theirs.get(name)
        assert ours.get(name, "absent") == theirs.get(name, "absent")
        assert ours[name] == theirs[name]
        assert (name in ours) == (name in theirs)
        assert ours.get_all(name) == theirs.get_all(name)
        assert ours.get_all(name, []) == theirs.get_all(name, [])
    assert ours.items() == theirs.items()
    assert ours.values() == theirs.values()
    assert ours.keys() == theirs.keys()
    assert ours.get("x-note") == "caf\xe9"
    assert 3 not in ours
    expected = {n: v for n in RATE_LIMIT_HEADERS if (v := theirs.get(n)) is not None}
    assert rate_limit_headers(ours) == expected == rate_limit_headers(theirs)
    assert expected["x-ratelimit-remaining"] == "4999"


def test_the_governor_reads_the_rate_limit_headers_as_message_get_finds_them() -> None:
    message = http.client.HTTPMessage()
    for name, value in [
        ("Server", "GitHub.com"),
        ("X-RateLimit-Remaining", "0"),
        ("x-ratelimit-remaining", "9"),  # a repeat: the first counts, as for `get`
        ("X-RateLimit-Reset", "1767225600"),
        ("Retry-After", "30"),
        ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"),
    ]:
        message[name] = value
    expected = {n: v for n in RATE_LIMIT_HEADERS if (v := message.get(n)) is not None}
    assert rate_limit_headers(message) == expected
    assert expected == {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1767225600",
        "retry-after": "30",
        "x-hubspot-ratelimit-interval-milliseconds": "10000",
    }
