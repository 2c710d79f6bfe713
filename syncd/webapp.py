"""The HTTP face of the daemon: webhook inbox, health, readiness and metrics.

`POST /webhooks/<connector>`: the connector verifies the delivery (signature, timestamp,
shape) before anything is stored; a good one is stored durably (group commit) and only then
answered 2xx. A delivery id seen before is answered 200 and ignored. The whole body must
arrive within `body_timeout_seconds` (a slow sender gets 408 and the connection is closed),
and any header or body a sender makes up gets a 4xx, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.clock import Clock, to_ms
from syncd.connector import Connector
from syncd.errors import WebhookRejected
from syncd.inbox import Delivery, InboxWriter
from syncd.metrics import REGISTRY, WEBHOOKS
from syncd.model import WebhookRequest
from syncd.webhook_checks import MALFORMED_INPUT_ERRORS, unsigned_warnings

log = structlog.get_logger("syncd.webhooks")


_JSON_CONTENT = (b"content-type", b"application/json")


def _answer(status: bytes, delivery_id: str) -> bytes:
    """`json.dumps({"status": status, "delivery": delivery_id})`, without the dict's walk."""
    return b'{"status": "' + status + b'", "delivery": ' + json.dumps(delivery_id).encode() + b"}"


class WebhookEndpoint:
    """`POST /webhooks/<connector>` as a bare ASGI handler: it is the hot path (thousands of
    deliveries a second), so it skips the framework's request and response objects."""

    def __init__(
        self,
        connectors: dict[str, Connector],
        writer: InboxWriter,
        clock: Clock,
        max_body_bytes: int,
        public_url: str,
        on_stored: Callable[[], None],
        body_timeout_seconds: float = 30.0,
    ) -> None:
        self.connectors = connectors
        self.body_timeout_seconds = body_timeout_seconds
        self.writer = writer
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.public_url = public_url.rstrip("/")
        self.on_stored = on_stored
        # The counters of the common outcomes: `labels()` costs several times an `inc()`.
        self._counters: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"][len("/webhooks/") :].strip("/")
        status, payload = await self._handle(name, scope, receive)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = [_JSON_CONTENT, (b"content-length", str(len(body)).encode())]
        if status in (408, 413):  # the rest of the body is not read: the connection ends
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _count(self, name: str, outcome: str) -> None:
        """Count a stored or duplicate delivery (`name` is a configured connector, so the
        cache stays as small as the config)."""
        counter = self._counters.get((name, outcome))
        if counter is None:
            counter = self._counters[(name, outcome)] = WEBHOOKS.labels(name, outcome)
        counter.inc()

    async def _handle(
        self, name: str, scope: Scope, receive: Receive
    ) -> tuple[int, dict[str, Any] | bytes]:
        if scope["method"] != "POST":
            return 405, {"error": "use POST"}
        connector = self.connectors.get(name)
        if connector is None or not connector.can("verify_webhook"):
            WEBHOOKS.labels("unknown", "unknown_connector").inc()
            return 404, {"error": f"no webhook receiver for {name!r}"}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if body_arrived(receive):  # nothing to wait for: no timer
                body = await self._read_body(headers, receive)
            else:
                async with asyncio.timeout(self.body_timeout_seconds):
                    body = await self._read_body(headers, receive)
        except TimeoutError:
            WEBHOOKS.labels(name, "body_timeout").inc()
            log.warning("webhook.body_timeout", source=name, seconds=self.body_timeout_seconds)
            return 408, {"error": f"body not received within {self.body_timeout_seconds} s"}
        if body is None:
            WEBHOOKS.labels(name, "too_large").inc()
            return 413, {"error": f"body larger than {self.max_body_bytes} bytes"}
        hook = WebhookRequest(
            "POST", self._url(scope, headers), headers, body, to_ms(self.clock.now())
        )
        try:
            delivery_id = connector.verify_webhook(hook)
        except WebhookRejected as exc:
            WEBHOOKS.labels(name, f"rejected_{exc.status}").inc()
            log.warning("webhook.rejected", source=name, status=exc.status, reason=exc.reason)
            return exc.status, {"error": exc.reason}
        except MALFORMED_INPUT_ERRORS:  # a verifier bug on odd input: still the sender's 4xx
            WEBHOOKS.labels(name, "verify_error").inc()
            log.exception("webhook.verify_failed", source=name)
            return 400, {"error": "malformed delivery"}
        except Exception:  # a connector bug: nothing stored, the sender retries later
            WEBHOOKS.labels(name, "verify_error").inc()
            log.exception("webhook.verify_failed", source=name)
            return 500, {"error": "could not verify the delivery; retry later"}
        kept = {k: headers[k] for k in connector.webhook_headers if k in headers}
        delivery = Delivery(name, delivery_id[:200], kept, body, hook.received_at_ms)
        try:
            fresh = await self.writer.accept(delivery)
        except Exception:
            WEBHOOKS.labels(name, "store_error").inc()
            log.exception("webhook.store_failed", source=name)
            return 503, {"error": "could not store the delivery; retry"}
        if fresh:
            self._count(name, "accepted")
            self.on_stored()
            return 202, _answer(b"accepted", delivery.delivery_id)
        self._count(name, "duplicate")
        return 200, _answer(b"duplicate", delivery.delivery_id)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _url(self, scope: Scope, headers: dict[str, str]) -> str:
        """The URI as the sender called it (HubSpot signs it)."""
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        if self.public_url:
            base = self.public_url
        else:
            host = headers.get("host") or "{}:{}".format(*scope.get("server", ("localhost", 80)))
            base = f"{scope.get('scheme', 'http')}://{host}"
        return base + path + (f"?{query}" if query else "")


def body_arrived(receive: Receive) -> bool:
    """Whether the whole body is in already, as uvicorn's request cycle tells (its receive
    then answers at once): a webhook's small body nearly always comes with its headers, and
    a timer armed and cancelled per request was a share of the event loop's CPU (issue 17).
    Anything else (another server, a body still coming): False, and the body is read
    under the timeout."""
    cycle = getattr(receive, "__self__", None)
    return getattr(cycle, "more_body", True) is False


def build_app(
    *,
    connectors: dict[str, Connector],
    writer: InboxWriter,
    clock: Clock,
    max_body_bytes: int,
    public_url: str = "",
    body_timeout_seconds: float = 30.0,
    on_stored: Callable[[], None] = lambda: None,
    readiness: Callable[[], dict[str, Any]] = lambda: {"ready": True},
    refresh_metrics: Callable[[], None] = lambda: None,
) -> ASGIApp:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        state = await asyncio.to_thread(readiness)
        return JSONResponse(state, 200 if state.get("ready") else 503)

    async def metrics(_: Request) -> Response:
        await asyncio.to_thread(refresh_metrics)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    service = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )
    webhooks = WebhookEndpoint(
        connectors, writer, clock, max_body_bytes, public_url, on_stored, body_timeout_seconds
    )
    for warning in unsigned_warnings({n: c.settings for n, c in connectors.items()}):
        log.warning("webhooks.unsigned_allowed", detail=warning)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/webhooks/"):
            await webhooks(scope, receive, send)
        else:
            await service(scope, receive, send)

    return app
