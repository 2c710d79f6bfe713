"""Verifying and parsing HubSpot webhook deliveries (batches of events, JSON arrays).

Order of checks: signature headers and timestamp (401), body encoding (400), signature
(401), shape of every event (400: a malformed batch is refused at intake, never stored to be
retried). Without an app_secret, or without signature headers, a delivery is refused unless
`allow_unsigned`. The delivery id is a hash of the batch's sorted eventIds: HubSpot re-sends a
failed batch with the same events, so a retry dedupes against the first attempt.
"""

from __future__ import annotations

import hashlib
from typing import Any

from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.signing import (
    SIGNATURE_HEADER,
    SIGNATURE_V3_HEADER,
    TIMESTAMP_HEADER,
    VERSION_HEADER,
    sign,
)
from syncd.sdk import (
    Clock,
    Hint,
    ObjectRef,
    WebhookRejected,
    WebhookRequest,
    load_json,
    refuse_unsigned,
    signature_matches,
    to_ms,
)

DEAL_EVENTS = {
    "deal.propertyChange",
    "deal.creation",
    "deal.deletion",
    "deal.restore",
    "deal.merge",
    "deal.associationChange",
}
OBJECT_EVENTS = {
    "object.propertyChange",
    "object.creation",
    "object.deletion",
    "object.restore",
    "object.merge",
    "object.associationChange",
}
DEAL_TYPE_ID = "0-3"
WEBHOOK_HEADERS = (SIGNATURE_V3_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, VERSION_HEADER)


def verify(settings: HubSpotSettings, clock: Clock, request: WebhookRequest) -> str:
    """Check the delivery; return its delivery id. Raises WebhookRejected."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    if settings.app_secret is None:
        refuse_unsigned(
            settings.allow_unsigned, "no app_secret configured: HubSpot webhooks are refused"
        )
        text = _text(request.body)
    elif not _signature_headers_present(headers):
        refuse_unsigned(settings.allow_unsigned, "missing signature headers")
        text = _text(request.body)
    else:
        text = _check_signature(settings, clock, request, headers)
    events = _events(text)
    ids = sorted(str(e.get("eventId")) for e in events)
    return "hubspot-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]


def _signature_headers_present(headers: dict[str, str]) -> bool:
    return bool(headers.get(SIGNATURE_V3_HEADER) or headers.get(SIGNATURE_HEADER))


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None


def _check_signature(
    settings: HubSpotSettings, clock: Clock, request: WebhookRequest, headers: dict[str, str]
) -> str:
    """Check the signature; return the body's text (decoded once, for the events too)."""
    assert settings.app_secret is not None
    secret = settings.app_secret.get_secret_value()
    version = _version_to_check(settings, headers)
    if version == "v3":
        _check_timestamp(settings, clock, headers.get(TIMESTAMP_HEADER, ""))
    text = _text(request.body)
    uri = settings.public_webhook_url or request.url
    if version == "v3":
        given = headers[SIGNATURE_V3_HEADER]
        expected = sign(secret, "v3", text, uri, request.method.upper(), headers[TIMESTAMP_HEADER])
    else:
        given = headers[SIGNATURE_HEADER]
        expected = sign(secret, version, text, uri, request.method.upper())
    if not signature_matches(given, expected):
        raise WebhookRejected(401, f"bad {version} signature")
    return text


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


def _is_id(value: Any) -> bool:
    """HubSpot ids are integers; strings of them are accepted too (never bool, float, ...)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and 0 < len(value) <= 100
    )


def _events(text: str) -> list[dict[str, Any]]:
    """The batch's events, each checked for the shape `parse` relies on (400 otherwise)."""
    data = load_json(text)
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise WebhookRejected(400, "body is not a JSON array of events")
    for i, event in enumerate(data):
        problem = _event_problem(event)
        if problem:
            raise WebhookRejected(400, f"event {i}: {problem}")
    return data


def _event_problem(event: dict[str, Any]) -> str | None:
    if not _is_id(event.get("eventId")):
        return "eventId must be an integer"
    if not isinstance(event.get("subscriptionType"), str):
        return "subscriptionType must be a string"
    for key in ("objectId", "objectTypeId"):
        if key in event and not _is_id(event[key]):
            return f"{key} must be an id"
    return None


def parse(request: WebhookRequest) -> list[Hint]:
    """One hint per distinct deal named in the batch, in order of first mention."""
    seen: dict[str, Hint] = {}
    for event in _events(_text(request.body)):
        kind = event.get("subscriptionType")
        is_deal = kind in DEAL_EVENTS or (
            kind in OBJECT_EVENTS and str(event.get("objectTypeId")) == DEAL_TYPE_ID
        )
        object_id = event.get("objectId")
        if is_deal and object_id is not None and str(object_id) not in seen:
            seen[str(object_id)] = Hint(ObjectRef("hubspot", "deal", str(object_id)))
    return list(seen.values())
