"""The uvicorn set-up of the daemon's listener, hardened against slow and numerous clients.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and can answer 503 past
`limit_concurrency`, but it has no deadline for a request's headers: a client sending one
byte every few seconds holds a connection (and a file descriptor) forever. The protocol
class built here adds:

- a header deadline: from the moment a connection opens, and again after each response,
  the next request's headers must be complete within `header_timeout_seconds`, or the
  connection is closed;
- a connection cap: a connection past `max_connections` is closed at once.

The body deadline is the webhook endpoint's own (`syncd.webapp`, `body_timeout_seconds`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from syncd.config import HttpSection

log = structlog.get_logger("syncd.http")


def deadline_protocol(
    base: type[asyncio.Protocol], header_timeout: float, max_connections: int
) -> type[asyncio.Protocol]:
    """`base` (uvicorn's h11 or httptools protocol) with a header deadline and a cap."""

    class DeadlineProtocol(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._requests_running = 0
            inner = self.app

            # uvicorn calls the app once a request's headers are complete.
            async def app(scope: Any, receive: Any, send: Any) -> None:
                self._requests_running += 1
                self._stop_header_clock()
                try:
                    await inner(scope, receive, send)
                finally:
                    self._requests_running -= 1
                    if not self._requests_running:
                        self._start_header_clock()

            self.app: Any = app

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning(
                    "http.connection_refused", reason="too many connections", limit=max_connections
                )
                transport.close()
                return
            self._start_header_clock()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_clock()
            super().connection_lost(exc)

        def _start_header_clock(self) -> None:
            self._stop_header_clock()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _stop_header_clock(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self._requests_running and not self.transport.is_closing():
                self.transport.close()

    DeadlineProtocol.__name__ = f"Deadline{base.__name__}"
    return DeadlineProtocol


def uvicorn_config(app: Any, http: HttpSection, **extra: Any) -> uvicorn.Config:
    """The listener's uvicorn config from the `[http]` table."""
    protocol = deadline_protocol(
        AutoHTTPProtocol, http.header_timeout_seconds, http.max_connections
    )
    return uvicorn.Config(
        app,
        host=http.host,
        port=http.port,
        http=protocol,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=http.keep_alive_seconds,
        # uvicorn answers 503 once connections or tasks reach this; the cap above already
        # closes connections past max_connections, so this bounds pipelined tasks only.
        limit_concurrency=http.max_connections + 1,
        **extra,
    )
