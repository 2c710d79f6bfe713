"""The HTTP face of the daemon: webhook inbox, health, readiness and metrics.

`POST /webhooks/<connector>`: the connector verifies the delivery (signature, timestamp,
shape) before anything is stored; a good one is stored durably (group commit) and only then
answered 2xx. A delivery id seen before is answered 200 and ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.clock import Clock, to_ms
from syncd.connector import Connector
from syncd.errors import WebhookRejected
from syncd.inbox import Delivery, InboxWriter
from syncd.metrics import REGISTRY, WEBHOOKS
from syncd.model import WebhookRequest

log = structlog.get_logger("syncd.webhooks")


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(
    *,
    connectors: dict[str, Connector],
    writer: InboxWriter,
    clock: Clock,
    max_body_bytes: int,
    public_url: str = "",
    on_stored: Callable[[], None] = lambda: None,
    readiness: Callable[[], dict[str, Any]] = lambda: {"ready": True},
    refresh_metrics: Callable[[], None] = lambda: None,
) -> Starlette:
    async def webhook(request: Request) -> Response:
        name = request.path_params["connector"]
        connector = connectors.get(name)
        if connector is None or not connector.can("verify_webhook"):
            WEBHOOKS.labels(name if connector else "unknown", "unknown_connector").inc()
            return JSONResponse({"error": f"no webhook receiver for {name!r}"}, 404)
        try:
            body = await _read_body(request, max_body_bytes)
        except BodyTooLarge:
            WEBHOOKS.labels(name, "too_large").inc()
            return JSONResponse({"error": f"body larger than {max_body_bytes} bytes"}, 413)
        url = str(request.url)
        if public_url:
            url = public_url.rstrip("/") + request.url.path
            if request.url.query:
                url += "?" + request.url.query
        headers = {k.lower(): v for k, v in request.headers.items()}
        hook = WebhookRequest(request.method, url, headers, body, to_ms(clock.now()))
        try:
            delivery_id = connector.verify_webhook(hook)
        except WebhookRejected as exc:
            WEBHOOKS.labels(name, f"rejected_{exc.status}").inc()
            log.warning("webhook.rejected", source=name, status=exc.status, reason=exc.reason)
            return JSONResponse({"error": exc.reason}, exc.status)
        kept = {k: v for k, v in headers.items() if k in connector.webhook_headers}
        delivery = Delivery(name, delivery_id[:200], kept, body, hook.received_at_ms)
        try:
            fresh = await asyncio.wrap_future(writer.submit(delivery))
        except Exception:
            WEBHOOKS.labels(name, "store_error").inc()
            log.exception("webhook.store_failed", source=name)
            return JSONResponse({"error": "could not store the delivery; retry"}, 503)
        if fresh:
            WEBHOOKS.labels(name, "accepted").inc()
            on_stored()
            return JSONResponse({"status": "accepted", "delivery": delivery.delivery_id}, 202)
        WEBHOOKS.labels(name, "duplicate").inc()
        return JSONResponse({"status": "duplicate", "delivery": delivery.delivery_id}, 200)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        state = await asyncio.to_thread(readiness)
        return JSONResponse(state, 200 if state.get("ready") else 503)

    async def metrics(_: Request) -> Response:
        await asyncio.to_thread(refresh_metrics)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[
        Route("/webhooks/{connector}", webhook, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ])
