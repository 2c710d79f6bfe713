"""Verifying and parsing HubSpot webhook deliveries (batches of events, JSON arrays).

Order of checks: signature headers and timestamp (401), body encoding and shape (400),
signature (401). The delivery id is a hash of the batch's sorted eventIds: HubSpot re-sends a
failed batch with the same events, so a retry dedupes against the first attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.signing import (
    SIGNATURE_HEADER,
    SIGNATURE_V3_HEADER,
    TIMESTAMP_HEADER,
    VERSION_HEADER,
    sign,
)
from syncd.clock import Clock, to_ms
from syncd.errors import WebhookRejected
from syncd.model import Hint, ObjectRef, WebhookRequest

DEAL_EVENTS = {"deal.propertyChange", "deal.creation", "deal.deletion", "deal.restore",
               "deal.merge", "deal.associationChange"}
OBJECT_EVENTS = {"object.propertyChange", "object.creation", "object.deletion",
                 "object.restore", "object.merge", "object.associationChange"}
DEAL_TYPE_ID = "0-3"
WEBHOOK_HEADERS = (SIGNATURE_V3_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, VERSION_HEADER)


def verify(settings: HubSpotSettings, clock: Clock, request: WebhookRequest) -> str:
    """Check the delivery; return its delivery id. Raises WebhookRejected."""
    if settings.app_secret is None:
        raise WebhookRejected(401, "no app_secret configured: HubSpot webhooks are refused")
    secret = settings.app_secret.get_secret_value()
    headers = {k.lower(): v for k, v in request.headers.items()}
    version = _version_to_check(settings, headers)
    if version == "v3":
        _check_timestamp(settings, clock, headers.get(TIMESTAMP_HEADER, ""))
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None
    uri = settings.public_webhook_url or request.url
    if version == "v3":
        given = headers[SIGNATURE_V3_HEADER]
        expected = sign(secret, "v3", text, uri, request.method.upper(), headers[TIMESTAMP_HEADER])
    else:
        given = headers[SIGNATURE_HEADER]
        expected = sign(secret, version, text, uri, request.method.upper())
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRejected(401, f"bad {version} signature")
    events = _events(text)
    ids = sorted(str(e.get("eventId")) for e in events)
    return "hubspot-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]


def _version_to_check(settings: HubSpotSettings, headers: dict[str, str]) -> str:
    """The strongest signature present that the settings accept."""
    accepted = settings.accept_signature_versions
    if "v3" in accepted and headers.get(SIGNATURE_V3_HEADER) and headers.get(TIMESTAMP_HEADER):
        return "v3"
    legacy = headers.get(VERSION_HEADER, "").lower()
    if legacy in {"v1", "v2"} and legacy in accepted and headers.get(SIGNATURE_HEADER):
        return legacy
    wanted = " or ".join(accepted)
    raise WebhookRejected(401, f"missing or unaccepted signature headers (accepting {wanted})")


def _check_timestamp(settings: HubSpotSettings, clock: Clock, raw: str) -> None:
    try:
        stamp = int(raw)
    except ValueError:
        raise WebhookRejected(401, "invalid X-HubSpot-Request-Timestamp") from None
    skew_ms = to_ms(clock.now()) - stamp
    limit_ms = settings.max_webhook_age_seconds * 1000
    if skew_ms > limit_ms:
        raise WebhookRejected(401, "stale webhook timestamp")
    if skew_ms < -limit_ms:
        raise WebhookRejected(401, "webhook timestamp in the future")


def _events(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        raise WebhookRejected(400, "body is not JSON") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise WebhookRejected(400, "body is not a JSON array of events")
    return data


def parse(request: WebhookRequest) -> list[Hint]:
    """One hint per distinct deal named in the batch, in order of first mention."""
    seen: dict[str, Hint] = {}
    for event in _events(request.body.decode("utf-8")):
        kind = event.get("subscriptionType")
        is_deal = kind in DEAL_EVENTS or (
            kind in OBJECT_EVENTS and str(event.get("objectTypeId")) == DEAL_TYPE_ID)
        object_id = event.get("objectId")
        if is_deal and object_id is not None and str(object_id) not in seen:
            seen[str(object_id)] = Hint(ObjectRef("hubspot", "deal", str(object_id)))
    return list(seen.values())
