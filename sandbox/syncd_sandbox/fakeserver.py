"""A small HTTP server for the local fakes of SaaS APIs (tests and the `syncd demo` sandbox).

Built on the standard library's threading HTTP server rather than an ASGI stack because the
fakes must misbehave on purpose: answer 502 after applying a write, or reset the connection
with no answer at all, which a framework would politely refuse to do.

Usage:
    app = FakeApp()
    @app.route("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)")
    def get_repo(req: FakeRequest) -> FakeResponse: ...
    with FakeServer(app) as server:
        client = SomeClient(base_url=server.url)
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route's named groups

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class FakeResponse:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


class ResetConnection(Exception):
    """Raise from a handler or a fault hook to drop the connection with a TCP reset."""


Handler = Callable[[FakeRequest], FakeResponse]


class FakeApp:
    """Routes plus hooks. `before` hooks may answer instead of the route (rate limits,
    injected errors); `after` hooks see the route's response and may replace it (for example
    "applied, then 502") or raise ResetConnection."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.before: list[Callable[[FakeRequest], FakeResponse | None]] = []
        self.after: list[Callable[[FakeRequest, FakeResponse], FakeResponse]] = []
        self.log: list[FakeRequest] = []  # every request received, in order
        self.lock = threading.RLock()  # handlers run on many threads; state is shared

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def wrap(fn: Handler) -> Handler:
            self.routes.append((method.upper(), re.compile(f"^{pattern}$"), fn))
            return fn

        return wrap

    def handle(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            self.log.append(request)
        for hook in self.before:
            early = hook(request)
            if early is not None:
                return early
        response = self._dispatch(request)
        for hook in self.after:
            response = hook(request, response)
        return response

    def _dispatch(self, request: FakeRequest) -> FakeResponse:
        allowed = False
        for method, pattern, fn in self.routes:
            match = pattern.match(request.path)
            if not match:
                continue
            allowed = True
            if method == request.method:
                request.params = match.groupdict()
                return fn(request)
        if allowed:
            return FakeResponse(405, {"message": "Method Not Allowed"})
        return FakeResponse(404, {"message": "Not Found", "path": request.path})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request = FakeRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.app.handle(request)
        except ResetConnection:
            self._reset()
            return
        payload = response.body
        if payload is None:
            data = b""
        elif isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload).encode()
        self.send_response(response.status)
        headers = {"content-type": "application/json; charset=utf-8", **response.headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: FakeApp) -> None:
        self.app = app
        super().__init__(address, _Handler)


class FakeServer:
    """Runs a FakeApp on 127.0.0.1 (a free port unless one is given) in a thread."""

    def __init__(self, app: FakeApp, port: int = 0) -> None:
        self.app = app
        self._server = _Server(("127.0.0.1", port), app)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
