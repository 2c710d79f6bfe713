"""The one HTTP door of the `requests`-based SDKs (pyairtable, jira, PyGithub): a transport
adapter that asks the account's governor before each request, tells it what the answer said
about limits, and never retries by itself (the executor is syncd's one retry layer).

    session.mount(base_url, GovernedAdapter(governor, kind_of=by_method))

HubSpot's generated client speaks urllib3 directly; `govern_urllib3` wraps its pool manager
the same way. A client that builds its own requests to one origin (PyGithub's connection)
takes the adapter's pool once (`GovernedAdapter.pool_for`) and sends through it with
`GovernedAdapter.urlopen`: the same governor steps, without requests' per-request work; or,
with no proxy between, holds a `GovernedConnection` (http.client, one per thread).
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from email.message import Message
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httptools
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPHeaderDict
from urllib3.exceptions import ConnectTimeoutError, DecodeError, NewConnectionError
from urllib3.util import Timeout
from urllib3.util.wait import wait_for_read

from syncd.governor import RATE_LIMIT_HEADERS, READ, WRITE, Governor

R = TypeVar("R")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def by_method(method: str, url: str) -> str:
    """The usual classification: a write changes something, everything else reads."""
    return WRITE if method.upper() in WRITE_METHODS else READ


def rate_limit_headers(headers: Mapping[str, str] | Message) -> Mapping[str, str]:
    """The headers the governor reads: from requests', urllib3's or http.client's
    case-insensitive headers five lookups instead of a copy of every header of every answer
    (any other mapping is passed whole)."""
    if isinstance(headers, Message):
        # One pass over the raw headers: `Message.get` scans and lower-cases them all for
        # each name (an API's answer has twenty or more). The first of a repeated name
        # counts, and its value is what `get` answers.
        found: dict[str, str] = {}
        plain = isinstance(headers, AnswerHeaders)  # its values need no policy pass
        for raw_name, raw_value in headers.raw_items():
            low = raw_name.lower()
            if low in _RATE_LIMIT_NAMES and low not in found:
                found[low] = (
                    raw_value
                    if plain
                    else str(headers.policy.header_fetch_parse(raw_name, raw_value))
                )
        return found
    if not isinstance(headers, CaseInsensitiveDict | HTTPHeaderDict):
        return headers
    return {name: value for name in RATE_LIMIT_HEADERS if (value := headers.get(name)) is not None}


_RATE_LIMIT_NAMES = frozenset(RATE_LIMIT_HEADERS)


class GovernedAdapter(HTTPAdapter):
    """A `requests` adapter whose every request passes the governor."""

    def __init__(
        self,
        governor: Governor,
        *,
        kind_of: Callable[[str, str], str] = by_method,
        max_wait: float | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        # max_retries=0: urllib3 must not re-send anything (a POST could be applied twice).
        super().__init__(max_retries=0, pool_maxsize=pool_maxsize)
        self.governor = governor
        self.kind_of = kind_of
        self.max_wait = max_wait

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        send = super().send
        return self._governed(
            request.method or "GET",
            request.url or "",
            lambda: send(request, *args, **kwargs),
            lambda response: (response.status_code, response.headers),
        )

    def pool_for(
        self, url: str, *, verify: bool | str, proxies: Mapping[str, str]
    ) -> tuple[HTTPConnectionPool, str]:
        """The urllib3 pool `send` would use for requests to `url`'s origin (TLS
        verification and CA bundle, the proxy for it), worked out once; and the prefix of
        the URL to pass `urlopen` ("" for a path, the origin for an HTTP proxy's absolute
        form), as `send` would."""
        template = requests.PreparedRequest()
        template.prepare(method="GET", url=url.rstrip("/") + "/")
        pool = self.get_connection_with_tls_context(template, verify, proxies=dict(proxies))
        self.cert_verify(pool, template.url or "", verify, None)
        return pool, self.request_url(template, dict(proxies))[:-1]

    def urlopen(
        self,
        pool: HTTPConnectionPool,
        method: str,
        url: str,
        *,
        body: bytes | str | None,
        headers: Mapping[str, str],
        timeout: Timeout,
    ) -> BaseHTTPResponse:
        """One request through `pool` (from `pool_for`), past the governor, its answer read
        whole; errors are urllib3's. `send` less requests' preparation of every request and
        its Response (what PyGithub's connection needs, issue 17)."""
        return self._governed(
            method,
            url,
            lambda: pool.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                redirect=False,
                assert_same_host=False,
                retries=False,  # never re-send (see __init__); errors come out as raised
                timeout=timeout,
                preload_content=True,  # read whole, and the connection back in the pool
                decode_content=True,
            ),
            lambda response: (response.status, response.headers),
        )

    def _governed(
        self,
        method: str,
        url: str,
        send: Callable[[], R],
        answer: Callable[[R], tuple[int, Mapping[str, str]]],
    ) -> R:
        return governed(self.governor, self.kind_of(method, url), self.max_wait, send, answer)


def governed(
    governor: Governor,
    kind: str,
    max_wait: float | None,
    send: Callable[[], R],
    answer: Callable[[R], tuple[int, Mapping[str, str] | Message]],
) -> R:
    """Every door's steps: ask the governor, send, tell it what the answer said about
    limits; the request counts as in flight until its answer is in or it failed."""
    started = governor.acquire(kind, max_wait=max_wait)  # = governor.permit()
    try:
        response = send()
        status, headers = answer(response)
        governor.observe(status, rate_limit_headers(headers))
    finally:
        governor.release(kind, started)
    return response


class Answer:
    """An answer read whole: status, headers (http.client's, case-insensitive, repeated
    names kept apart) and the body, decoded."""

    __slots__ = ("data", "headers", "status")

    def __init__(self, status: int, headers: http.client.HTTPMessage, data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.data = data


class GovernedConnection:
    """One keep-alive connection to one origin, no proxy between, whose every request passes
    the governor: http.client connects (and wraps TLS), `request_bytes` writes each request
    and `read_answer` (httptools) reads each answer. For a client that builds its own
    requests and keeps a connection per thread (PyGithub's, connectors/github/transport.py;
    HubSpot's fetch reads, connectors/hubspot/client.py). Per request,
    requests' and urllib3's layers were most of a GitHub create's CPU (issue 17); what they
    did that matters is kept: TLS verified against the CA bundle requests would use (or
    `verify`'s), connect and read timeouts, TCP_NODELAY, a keep-alive connection the server
    closed while idle replaced before use, the body decoded (gzip, deflate: what
    `ACCEPT_ENCODING` asks for), no retries, and errors as urllib3 raises them (a connection
    that could not be made is a `NewConnectionError`: the request surely never left).
    Not thread-safe: one per thread."""

    ACCEPT_ENCODING = "gzip, deflate"

    def __init__(
        self,
        governor: Governor,
        origin: str,
        *,
        timeout: float,
        verify: bool | str = True,
        kind_of: Callable[[str, str], str] = by_method,
        max_wait: float | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        self.governor = governor
        self.kind_of = kind_of
        self.max_wait = max_wait
        self.timeout = timeout
        self.opened = 0  # connections made (keep-alive: one, unless the server closes)
        self._permit: tuple[str, float] = (READ, 0.0)  # of the request `send` sent
        self._sent_at = 0.0  # when `send` sent it (monotonic)
        self._head_only = False  # the request `send` sent was a HEAD
        default_port = 443 if parts.scheme == "https" else 80
        port = parts.port or default_port
        self._host = host if port == default_port else f"{host}:{port}"  # as http.client
        if ":" in host:  # an IPv6 literal
            self._host = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        self.conn: http.client.HTTPConnection
        if parts.scheme == "https":
            context = tls if tls is not None else tls_context(verify)
            self.conn = _OneWriteHTTPS(host, parts.port or 443, timeout=timeout, context=context)
        else:
            self.conn = _OneWrite(host, parts.port or 80, timeout=timeout)

    def request(
        self, method: str, path: str, *, body: bytes | str | None, headers: Mapping[str, str]
    ) -> Answer:
        """Send one request (`headers` as given: nothing added but Host and the length)."""
        if isinstance(body, str):
            body = body.encode("utf-8")  # as urllib3 sends a text body
        return governed(
            self.governor,
            self.kind_of(method, path),
            self.max_wait,
            lambda: self._exchange(method, path, body, headers),
            lambda answer: (answer.status, answer.headers),
        )

    def send(
        self, method: str, path: str, *, body: bytes | None, headers: Mapping[str, str]
    ) -> None:
        """The first half of `request`: past the governor, the request sent; its answer is
        read by `receive`, which must follow (until then the request counts as in flight)."""
        kind = self.kind_of(method, path)
        started = self.governor.acquire(kind, max_wait=self.max_wait)
        try:
            self._send(method, path, body, headers)
        except BaseException:
            self.governor.release(kind, started)
            raise
        self._permit = (kind, started)
        self._sent_at = time.monotonic()

    def receive(self) -> Answer:
        """The second half of `request`: the answer of the request `send` sent, due within
        the timeout of when it was sent, however long the caller took to ask for it (the
        answers to requests sent together are read one after another)."""
        kind, started = self._permit
        sock = self.conn.sock
        try:
            if sock is not None:
                left = self._sent_at + self.timeout - time.monotonic()
                sock.settimeout(max(left, 0.001))  # an answer already in is read at once
            answer = self._receive()
            self.governor.observe(answer.status, rate_limit_headers(answer.headers))
        finally:
            if self.conn.sock is not None:
                self.conn.sock.settimeout(self.timeout)
            self.governor.release(kind, started)
        return answer

    def close(self) -> None:
        self.conn.close()

    def _exchange(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> Answer:
        self._send(method, path, body, headers)
        return self._receive()

    def _send(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> None:
        conn = self.conn
        if conn.sock is not None and wait_for_read(conn.sock, timeout=0.0):
            conn.close()  # closed by the server while idle (or it sent something unasked)
        if conn.sock is None:
            self._connect()
        self._head_only = method == "HEAD"  # its answer has no body, whatever it says
        try:
            if self._head_only:  # (HEAD: none of syncd's clients sends one; http.client's way)
                conn.request(method, path, body=body, headers=dict(headers))
            else:
                assert conn.sock is not None
                conn.sock.sendall(request_bytes(method, path, self._host, body, headers))
        except BaseException:
            conn.close()  # half a request on it: never reused
            raise

    def _receive(self) -> Answer:
        conn = self.conn
        try:
            if self._head_only:
                response = conn.getresponse()
                data = response.read()
                status, msg = response.status, response.msg
            else:
                assert conn.sock is not None
                status, msg, data, keep_alive = read_answer(conn.sock)
                if not keep_alive:
                    conn.close()
        except BaseException:
            conn.close()  # half an answer on it: never reused
            raise
        coding = msg.get("content-encoding")
        return Answer(status, msg, decoded(data, coding) if coding else data)

    def _connect(self) -> None:
        """Connect (and TLS), failures raised as urllib3 raises them."""
        conn = self.conn
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except ssl.SSLError:
            conn.close()
            raise  # TLS refused (certificate, protocol): as requests' SSLError, not "refused"
        except OSError as exc:
            conn.close()
            raise NewConnectionError(
                conn,  # type: ignore[arg-type]
                f"Failed to establish a new connection: {exc}",
            ) from exc
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as urllib3
        self.opened += 1


Exchange = tuple[GovernedConnection, str, str, bytes | None, Mapping[str, str]]


def exchange_together(exchanges: list[Exchange]) -> list[Answer | Exception]:
    """Requests in flight at once from the calling thread, each on a connection of its own
    (connection, method, path, body, headers): all sent, each past the governor, then each
    answer read, in order. The same round trip as a thread per request, without handing
    the requests to other threads and their answers back (issue 17: an idle daemon's
    webhook waited for those hand-offs). Each answer, or the exception that stopped its
    request, in the order given."""
    sent: list[Exception | None] = []
    for conn, method, path, body, headers in exchanges:
        try:
            conn.send(method, path, body=body, headers=headers)
            sent.append(None)
        except Exception as exc:
            sent.append(exc)
    out: list[Answer | Exception] = []
    for (conn, *_), failed in zip(exchanges, sent, strict=True):
        if failed is not None:
            out.append(failed)
            continue
        try:
            out.append(conn.receive())
        except Exception as exc:
            out.append(exc)
    return out


# What http.client refuses in a request line or header, so that no header can be smuggled in.
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"\n(?![ \t])|\r(?![ \t\n])")
_BODY_METHODS = frozenset({"PATCH", "POST", "PUT"})


def request_bytes(
    method: str, path: str, host: str, body: bytes | None, headers: Mapping[str, str]
) -> bytes:
    """A request as http.client writes it, byte for byte, head and body in one piece: the
    request line, Host (unless given), Accept-Encoding: identity (unless given), a
    Content-Length (for a body, and 0 for a POST, PUT or PATCH without one), the headers as
    given. http.client
    builds it with a call and a buffer append per header, and that was a tenth of a GitHub
    create's CPU (issue 17). Names and values are checked as http.client checks them."""
    if _BAD_TARGET.search(method) or _BAD_TARGET.search(path):
        raise http.client.InvalidURL(f"URL can't contain control characters: {path!r}")
    lines = [f"{method} {path} HTTP/1.1"]
    given = {name.lower() for name in headers}
    if "host" not in given:
        lines.append(f"Host: {host}")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in given and "transfer-encoding" not in given:
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        elif method.upper() in _BODY_METHODS:
            lines.append("Content-Length: 0")
    for name, value in headers.items():
        text = str(value)
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"Invalid header name {name!r}")
        if _BAD_VALUE.search(text):
            raise ValueError(f"Invalid header value {text!r}")
        lines.append(f"{name}: {text}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class AnswerHeaders(http.client.HTTPMessage):
    """An answer's headers as http.client gives them, each value text decoded as latin-1.
    The email package's compat32 policy passes every value it hands out through
    `header_fetch_parse`, which returns such text unchanged (it wraps only text with
    surrogates, which latin-1 text never has): the lookups here read the list directly
    (issue 17: reading a GitHub answer took a fifth less CPU, benchmarks/answer_read.py)."""

    _headers: list[tuple[str, str]]

    def get(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        for key, value in self._headers:
            if key.lower() == name:
                return value
        return failobj

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        name = name.lower()
        return any(key.lower() == name for key, _ in self._headers)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        found = [value for key, value in self._headers if key.lower() == name]
        return found or failobj

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers)

    def values(self) -> list[str]:
        return [value for _, value in self._headers]


class _AnswerParts:
    """httptools' callbacks for one answer: its headers (as http.client's HTTPMessage, a
    repeated name kept apart) and its body. An interim answer (1xx) is dropped."""

    def __init__(self) -> None:
        self.parser: Any = None  # the parser calling back (read while it knows)
        self._clear()

    def _clear(self) -> None:
        self.headers = AnswerHeaders()
        # Its list of (name, value), filled directly: what `headers[name] = value` appends
        # (the email package's compat32 policy stores both as given), without its per-call
        # policy lookups.
        self._fields: list[tuple[str, str]] = self.headers._headers
        self.body: list[bytes] = []
        self.headers_done = False
        self.keep_alive = False
        self.done = False

    def on_message_begin(self) -> None:
        self._clear()  # a new answer after an interim one

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name.decode("latin-1"), value.decode("latin-1").strip(" \t")))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # (llhttp forgets it once done)

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.done = True


def read_answer(sock: socket.socket) -> tuple[int, http.client.HTTPMessage, bytes, bool]:
    """An answer read off `sock` and parsed by httptools (llhttp, in C): its status, headers,
    body (chunked or not) and whether the connection may be used again. http.client parses
    headers with the email package, and that was a fifth of a GitHub create's CPU (issue 17).
    Failures are http.client's: no answer at all is RemoteDisconnected, a cut answer
    IncompleteRead, an unreadable one BadStatusLine; the socket's timeout is its own."""
    parts = _AnswerParts()
    parser = parts.parser = httptools.HttpResponseParser(parts)
    received = False
    while True:
        data = sock.recv(65536)
        if not data:
            if not received:
                raise http.client.RemoteDisconnected(
                    "Remote end closed connection without response"
                )
            if parts.headers_done and _ends_at_close(parts.headers):
                return parser.get_status_code(), parts.headers, b"".join(parts.body), False
            raise http.client.IncompleteRead(b"".join(parts.body))
        received = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise http.client.BadStatusLine(f"unreadable answer: {exc}") from exc
        if parts.done and parser.get_status_code() >= 200:
            return parser.get_status_code(), parts.headers, b"".join(parts.body), parts.keep_alive


def _ends_at_close(headers: http.client.HTTPMessage) -> bool:
    """An answer with neither a length nor chunks: its body runs until the server closes."""
    return (
        "content-length" not in headers
        and "chunked" not in (headers.get("transfer-encoding") or "").lower()
    )


class _OneWrite(http.client.HTTPConnection):
    """A request's head and its body (bytes) in one write. http.client writes them apart:
    two segments (TLS: two records) per create, each waking the server, and each write here
    one more release and retake of the GIL, which executor threads contend for (issue 17).
    Other bodies (files, iterables, chunked) are written as http.client writes them."""

    _buffer: list[bytes]  # http.client's: the request line and headers, not yet sent

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if not isinstance(message_body, bytes) or encode_chunked:
            super()._send_output(message_body, encode_chunked)  # type: ignore[misc]
            return
        self._buffer.extend((b"", message_body))  # head, blank line, body
        whole = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(whole)


class _OneWriteHTTPS(_OneWrite, http.client.HTTPSConnection):
    pass


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """What requests verifies with: `verify=True` its CA bundle (certifi's), a path that
    file or directory, False nothing (no check of the certificate nor the host name)."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    where = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where)


def decoded(data: bytes, coding: str) -> bytes:
    """A body decoded from its Content-Encoding (gzip, deflate, in the order applied)."""
    try:
        for step in reversed([c.strip().lower() for c in coding.split(",")]):
            if step in ("gzip", "x-gzip"):
                data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
            elif step == "deflate":  # zlib-wrapped, or raw as some servers send it
                try:
                    data = zlib.decompress(data)
                except zlib.error:
                    data = zlib.decompress(data, -zlib.MAX_WBITS)
            elif step not in ("", "identity"):
                raise DecodeError(f"unasked-for content encoding {step!r}")
    except zlib.error as exc:
        raise DecodeError(f"body not decodable as {coding!r}: {exc}") from exc
    return data


def govern_session(
    session: requests.Session, base_url: str, governor: Governor, **options: Any
) -> GovernedAdapter:
    """Mount a governed adapter for every URL under `base_url` (and return it)."""
    adapter = GovernedAdapter(governor, **options)
    session.mount(base_url.rstrip("/") + "/", adapter)
    return adapter


def govern_urllib3(
    pool_manager: Any, governor: Governor, *, kind_of: Callable[[str, str], str] = by_method
) -> None:
    """Make a urllib3 PoolManager (HubSpot's client) ask the governor before each request."""
    send = pool_manager.request

    def governed(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("retries", False)
        with governor.permit(kind_of(method, url)):
            response = send(method, url, *args, **kwargs)
            governor.observe(response.status, rate_limit_headers(response.headers))
        return response

    pool_manager.request = governed
