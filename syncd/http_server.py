"""The uvicorn set-up of the daemon's listener, hardened against slow and numerous clients.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and can answer 503 past
`limit_concurrency`, but it has no deadline for a request's headers: a client sending one
byte every few seconds holds a connection (and a file descriptor) forever. The protocol
class built here adds:

- a header deadline: from the moment a connection opens, and again after each response,
  the next request's headers must be complete within `header_timeout_seconds`, or the
  connection is closed;
- a connection cap: a connection past `max_connections` is closed at once;
- one write per response: uvicorn writes a response's head and its body separately (two
  send() calls, two TCP segments); the head is held back until the body follows.

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


class CoalescingTransport:
    """A connection's transport as uvicorn sees it: between `hold` and `release`, writes are
    gathered and then sent as one. Everything else goes to the real transport."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: list[bytes] | None = None

    def hold(self) -> None:
        if self._held is None:
            self._held = []

    def release(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():  # closed meanwhile: nobody to send to
            self._transport.write(b"".join(held))

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._transport.write(data)
        else:
            self._held.append(data)

    def close(self) -> None:
        self.release()  # what was held is sent before the FIN
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def deadline_protocol(
    base: type[asyncio.Protocol], header_timeout: float, max_connections: int
) -> type[asyncio.Protocol]:
    """`base` (uvicorn's h11 or httptools protocol) with a header deadline and a cap."""

    class DeadlineProtocol(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._header_deadline: float | None = None  # loop time; None: not counting
            self._requests_running = 0
            inner = self.app

            # uvicorn calls the app once a request's headers are complete.
            async def app(scope: Any, receive: Any, send: Any) -> None:
                self._requests_running += 1
                self._stop_header_clock()
                transport = self.transport

                async def send_coalesced(message: Any) -> None:
                    # The head waits in the transport for the body's first chunk (or the
                    # close): the two go out in one write.
                    if message["type"] == "http.response.start":
                        transport.hold()
                    try:
                        await send(message)
                    except BaseException:
                        transport.release()
                        raise
                    if message["type"] != "http.response.start":
                        transport.release()

                try:
                    await inner(scope, receive, send_coalesced)
                finally:
                    self._requests_running -= 1
                    if not self._requests_running:
                        self._start_header_clock()

            self.app: Any = app

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.transport = CoalescingTransport(transport)
            if len(self.connections) > max_connections:
                log.warning(
                    "http.connection_refused", reason="too many connections", limit=max_connections
                )
                transport.close()
                return
            self._start_header_clock()

        def connection_lost(self, exc: Exception | None) -> None:
            self._header_deadline = None
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        # The clock is started and stopped on every request: that only sets the deadline.
        # A timer is armed when none is, and when it rings it looks at the deadline then
        # (re-armed for a later one), instead of a timer created and cancelled per request.
        def _start_header_clock(self) -> None:
            self._header_deadline = self.loop.time() + header_timeout
            if self._header_timer is None:
                self._header_timer = self.loop.call_at(
                    self._header_deadline, self._header_clock_rings
                )

        def _stop_header_clock(self) -> None:
            self._header_deadline = None

        def _header_clock_rings(self) -> None:
            self._header_timer = None
            deadline = self._header_deadline
            if deadline is None:  # a request is running: its end starts the clock again
                return
            if self.loop.time() < deadline:  # restarted since this timer was armed
                self._header_timer = self.loop.call_at(deadline, self._header_clock_rings)
                return
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
