"""Webhook authenticity and parsing: published v1/v2 vectors, v3 computed here by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import pytest

from connectors.hubspot import HubSpotConnector
from syncd.clock import FakeClock, to_ms
from syncd.errors import WebhookRejected
from syncd.model import ObjectRef, WebhookRequest

# HubSpot's published examples (developer docs, "Validating requests"; the same values are
# in the official clients' signature tests).
DOC_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOC_V1_BODY = (
    '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
    '"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)
DOC_V1_SIGNATURE = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
DOC_V2_URI = "https://www.example.com/webhook_uri"
DOC_V2_GET_SIGNATURE = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"

SECRET = "app-secret-for-tests"
URL = "https://syncd.example.org/webhooks/hubspot"


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot v3, written out independently of the connector and the client library."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def deal_events(*deal_ids: int, first_event: int = 100) -> list[dict[str, object]]:
    return [
        {
            "eventId": first_event + i,
            "subscriptionId": 7,
            "portalId": 62515,
            "occurredAt": 1767603600000,
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": deal_id,
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
            "changeSource": "CRM_UI",
        }
        for i, deal_id in enumerate(deal_ids)
    ]


def v3_request(
    clock: FakeClock,
    body: bytes,
    *,
    secret: str = SECRET,
    url: str = URL,
    signed_url: str | None = None,
    age_seconds: float = 0,
) -> WebhookRequest:
    stamp = str(to_ms(clock.now()) - int(age_seconds * 1000))
    signature = v3_signature(secret, "POST", signed_url or url, body, stamp)
    return WebhookRequest(
        method="POST",
        url=url,
        body=body,
        received_at_ms=to_ms(clock.now()),
        headers={
            "x-hubspot-signature-v3": signature,
            "x-hubspot-request-timestamp": stamp,
            "content-type": "application/json",
        },
    )


@pytest.fixture
def hub(make_connector: Callable[..., HubSpotConnector]) -> HubSpotConnector:
    return make_connector(app_secret=SECRET)


def test_v3_signature_computed_independently_is_accepted(hub, clock):
    body = json.dumps(deal_events(11, 12)).encode()
    delivery = hub.verify_webhook(v3_request(clock, body))
    assert delivery.startswith("hubspot-")


def test_v3_uri_is_the_public_url_when_behind_a_proxy(make_connector, clock):
    public = "https://hooks.example.org/hubspot?portal=62515"
    hub = make_connector(app_secret=SECRET, public_webhook_url=public)
    body = json.dumps(deal_events(11)).encode()
    # The proxy handed syncd a different URL; HubSpot signed the public one.
    hub.verify_webhook(
        v3_request(clock, body, url="http://127.0.0.1:8080/webhooks/hubspot", signed_url=public)
    )


def test_v3_uri_escapes_are_decoded_as_hubspot_does_before_signing(hub, clock):
    body = json.dumps(deal_events(11)).encode()
    called = "https://syncd.example.org/webhooks/hubspot?portal=a%3Ab%2Fc%40d%2a%2C"
    signed = "https://syncd.example.org/webhooks/hubspot?portal=a:b/c@d*,"
    assert hub.verify_webhook(v3_request(clock, body, url=called, signed_url=signed))
    with pytest.raises(WebhookRejected):  # signed over the URI as called: not HubSpot's
        hub.verify_webhook(v3_request(clock, body, url=called, signed_url=called))


def test_published_v1_vector_is_accepted_when_v1_is_configured(make_connector, clock):
    hub = make_connector(app_secret=DOC_SECRET, accept_signature_versions=["v1"])
    request = WebhookRequest(
        "POST",
        URL,
        {"x-hubspot-signature": DOC_V1_SIGNATURE, "x-hubspot-signature-version": "v1"},
        DOC_V1_BODY.encode(),
        to_ms(clock.now()),
    )
    hub.verify_webhook(request)
    tampered = WebhookRequest(
        "POST", URL, request.headers, DOC_V1_BODY.replace("123", "124").encode(), 0
    )
    with pytest.raises(WebhookRejected) as rejected:
        hub.verify_webhook(tampered)
    assert rejected.value.status == 401


def test_published_v2_vector_is_accepted_when_v2_is_configured(make_connector, clock):
    hub = make_connector(app_secret=DOC_SECRET, accept_signature_versions=["v2"])
    # The published v2 example signs a GET with an empty body: signature checks pass, then
    # the empty body is refused as not being an event array.
    request = WebhookRequest(
        "GET",
        DOC_V2_URI,
        {"x-hubspot-signature": DOC_V2_GET_SIGNATURE, "x-hubspot-signature-version": "v2"},
        b"",
        0,
    )
    with pytest.raises(WebhookRejected) as rejected:
        hub.verify_webhook(request)
    assert (rejected.value.status, rejected.value.reason) == (400, "body is not JSON")
    forged = WebhookRequest(
        "GET",
        DOC_V2_URI,
        {**request.headers, "x-hubspot-signature": DOC_V2_GET_SIGNATURE[::-1]},
        b"",
        0,
    )
    with pytest.raises(WebhookRejected) as bad:
        hub.verify_webhook(forged)
    assert bad.value.status == 401


def test_v1_is_refused_unless_configured(hub):
    request = WebhookRequest(
        "POST",
        URL,
        {"x-hubspot-signature": DOC_V1_SIGNATURE, "x-hubspot-signature-version": "v1"},
        DOC_V1_BODY.encode(),
        0,
    )
    with pytest.raises(WebhookRejected) as rejected:
        hub.verify_webhook(request)
    assert rejected.value.status == 401


@pytest.mark.parametrize(
    "change",
    [
        "wrong_secret",
        "changed_body",
        "changed_uri",
        "stale",
        "future",
        "no_signature",
        "no_timestamp",
    ],
)
def test_v3_rejections(hub, clock, change):
    body = json.dumps(deal_events(11)).encode()
    request = {
        "wrong_secret": lambda: v3_request(clock, body, secret="not-the-secret"),
        "changed_body": lambda: _with_body(v3_request(clock, body), body.replace(b"11", b"12")),
        "changed_uri": lambda: v3_request(clock, body, signed_url=URL + "/other"),
        "stale": lambda: v3_request(clock, body, age_seconds=301),
        "future": lambda: v3_request(clock, body, age_seconds=-301),
        "no_signature": lambda: _without(v3_request(clock, body), "x-hubspot-signature-v3"),
        "no_timestamp": lambda: _without(v3_request(clock, body), "x-hubspot-request-timestamp"),
    }[change]()
    with pytest.raises(WebhookRejected) as rejected:
        hub.verify_webhook(request)
    assert rejected.value.status == 401


def test_timestamps_within_five_minutes_either_way_pass(hub, clock):
    body = json.dumps(deal_events(11)).encode()
    hub.verify_webhook(v3_request(clock, body, age_seconds=299))
    hub.verify_webhook(v3_request(clock, body, age_seconds=-299))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe[]", "body is not UTF-8"),
        (b'{"eventId": 1}', "body is not a JSON array of events"),
    ],
)
def test_malformed_bodies_are_400_even_when_signed(hub, clock, body, reason):
    with pytest.raises(WebhookRejected) as rejected:
        hub.verify_webhook(v3_request(clock, body))
    assert (rejected.value.status, rejected.value.reason) == (400, reason)


def test_delivery_id_is_stable_across_retries_and_order(hub, clock):
    events = deal_events(11, 12, 13)
    first = hub.verify_webhook(v3_request(clock, json.dumps(events).encode()))
    retried = [dict(e, attemptNumber=1) for e in reversed(events)]
    clock.advance(60)
    again = hub.verify_webhook(v3_request(clock, json.dumps(retried).encode()))
    different = json.dumps(deal_events(11, first_event=500)).encode()
    other = hub.verify_webhook(v3_request(clock, different))
    assert first == again
    assert other != first


def test_parse_gives_one_hint_per_distinct_deal(hub, clock):
    events = [
        *deal_events(11, 12),
        {"eventId": 9, "subscriptionType": "deal.creation", "objectId": 13},
        {
            "eventId": 10,
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-3",
            "objectId": 11,
            "propertyName": "amount",
            "propertyValue": "5",
        },
        {
            "eventId": 11,
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-1",
            "objectId": 99,
            "propertyName": "email",
            "propertyValue": "x@example.org",
        },
        {"eventId": 12, "subscriptionType": "contact.propertyChange", "objectId": 98},
        {"eventId": 13, "subscriptionType": "deal.deletion", "objectId": 14},
    ]
    hints = hub.parse_webhook(v3_request(clock, json.dumps(events).encode()))
    expected = [ObjectRef("hubspot", "deal", i) for i in ("11", "12", "13", "14")]
    assert [h.ref for h in hints] == expected


def test_fake_builds_deliveries_the_connector_accepts(fake, make_connector, clock):
    hub = make_connector(public_webhook_url=URL)
    deal = fake.create_deal(dealname="Ocean")
    fake.move_deal(deal, "qualified")
    headers, body = fake.webhook(URL)
    request = WebhookRequest("POST", "http://127.0.0.1/webhooks/hubspot", headers, body, 0)
    hub.verify_webhook(request)
    assert [h.ref.id for h in hub.parse_webhook(request)] == [deal]


def _with_body(request: WebhookRequest, body: bytes) -> WebhookRequest:
    return WebhookRequest(
        request.method, request.url, request.headers, body, request.received_at_ms
    )


def _without(request: WebhookRequest, header: str) -> WebhookRequest:
    headers = {k: v for k, v in request.headers.items() if k != header}
    return WebhookRequest(
        request.method, request.url, headers, request.body, request.received_at_ms
    )
