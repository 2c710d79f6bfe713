"""Malformed input is permanent (issue 14 item 5): a signed but malformed HubSpot batch gets
a 400 at intake; a malformed delivery already stored is marked failed with its reason at
once, not retried; one delivery that breaks the ingest never holds up the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr
from sqlalchemy import func, select

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.signing import SIGNATURE_V3_HEADER, signed_request
from connectors.hubspot.signing import sign as hs_sign
from syncd.clock import FakeClock, to_ms
from syncd.inbox import Delivery
from syncd.model import Hint, Observation, WebhookRequest
from syncd.store.schema import inbox
from syncd.webapp import build_app
from syncd_sandbox.localdb.connector import LocalDbConnector, sign
from tests.helpers import ServedApp, make_engine

SECRET = "whsec_failures_0123456789"
APP_SECRET = "hubspot-app-secret-for-tests"

GOOD_EVENT = {
    "eventId": 1,
    "subscriptionId": 7,
    "portalId": 62515,
    "occurredAt": 1,
    "subscriptionType": "deal.propertyChange",
    "attemptNumber": 0,
    "objectId": 42,
    "propertyName": "dealstage",
    "propertyValue": "closedwon",
}
MALFORMED_BATCHES = {
    "list as subscriptionType": [{**GOOD_EVENT, "subscriptionType": ["deal.creation"]}],
    "object as objectId": [{**GOOD_EVENT, "objectId": {"id": 42}}],
    "no eventId": [{k: v for k, v in GOOD_EVENT.items() if k != "eventId"}],
    "object where the list is expected": {"events": [GOOD_EVENT]},
    "nested too deep": "deep",
}


def _hubspot(clock: FakeClock) -> HubSpotConnector:
    settings = HubSpotSettings(
        access_token=SecretStr("pat-na1-test"),
        app_secret=SecretStr(APP_SECRET),
        base_url="http://127.0.0.1:9",
    )
    return HubSpotConnector(settings, clock)


def _body(batch: Any) -> bytes:
    if batch == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    return json.dumps(batch).encode()


@pytest.fixture
def engine(tmp_path: Path, store_url: str):
    clock = FakeClock()
    made = make_engine(tmp_path, store_url, clock, secret=SECRET)
    made.connectors["hubspot"] = _hubspot(clock)  # the inbox processor shares this dict
    yield made
    made.close()


def _rows(engine) -> dict[str, dict[str, Any]]:
    with engine.store.engine.connect() as conn:
        return {r["delivery_id"]: dict(r) for r in conn.execute(select(inbox)).mappings()}


@pytest.mark.parametrize("name", sorted(MALFORMED_BATCHES))
def test_a_signed_malformed_hubspot_batch_gets_400_and_stores_nothing(engine, name) -> None:
    app = build_app(
        connectors=engine.connectors,
        writer=engine.writer,
        clock=engine.clock,
        max_body_bytes=1_048_576,
    )
    with ServedApp(app) as server:
        url = f"{server.url}/webhooks/hubspot"
        body = _body(MALFORMED_BATCHES[name])
        headers, _ = signed_request(APP_SECRET, url, [], to_ms(engine.clock.now()))
        # Sign the malformed body itself: the signature is valid, only the shape is wrong.
        headers[SIGNATURE_V3_HEADER] = hs_sign(
            APP_SECRET, "v3", body.decode(), url, "POST", to_ms(engine.clock.now())
        )
        answer = requests.post(url, data=body, headers=headers, timeout=30)
        good_headers, good_body = signed_request(
            APP_SECRET, url, [GOOD_EVENT], to_ms(engine.clock.now())
        )
        good = requests.post(url, data=good_body, headers=good_headers, timeout=10)
    assert 400 <= answer.status_code < 500, answer.text
    assert good.status_code == 202, good.text  # the same signing, well-formed: accepted
    with engine.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbox)).scalar() == 1


def test_a_stored_malformed_delivery_fails_at_once_with_its_reason(engine) -> None:
    """Rows stored before intake validated the shape: failed on the first try, not retried
    as transient; the good delivery next to it is processed."""
    engine.connectors["localdb"].remote.put("item", "7", name="Ocean", stage="done")
    bad = json.dumps(MALFORMED_BATCHES["list as subscriptionType"]).encode()
    good = json.dumps({"type": "item", "id": "7"}).encode()
    for delivery in (
        Delivery("hubspot", "bad-1", {}, bad, 0),
        Delivery("localdb", "good-1", {}, good, 0),
    ):
        assert engine.writer.submit(delivery).result(timeout=10) is True
    assert engine.inbox.process_due() == 2
    rows = _rows(engine)
    assert rows["bad-1"]["status"] == "failed"
    assert rows["bad-1"]["attempts"] == 1
    assert "subscriptionType" in rows["bad-1"]["last_error"]
    assert rows["good-1"]["status"] == "done"
    assert engine.inbox.process_due() == 0  # nothing left to retry


class _PoisonConnector(LocalDbConnector):
    """Hints for item "poison" carry an observation the store cannot hold."""

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        hints = super().parse_webhook(request)
        return [
            Hint(h.ref, Observation(h.ref, {"x": object()}, 1)) if h.ref.id == "poison" else h
            for h in hints
        ]


def test_a_delivery_that_breaks_the_ingest_does_not_hold_up_the_others(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock, secret=SECRET)
    try:
        settings = engine.connectors["localdb"].settings
        engine.connectors["localdb"] = _PoisonConnector(settings, clock)
        engine.connectors["localdb"].remote.put("item", "7", name="Ocean", stage="done")
        for i, item in enumerate(["7", "poison", "8"]):
            body = json.dumps({"type": "item", "id": item}).encode()
            headers = {"x-localdb-signature": sign(SECRET, body)}
            engine.writer.submit(Delivery("localdb", f"d-{i}", headers, body, 0)).result(10)
        assert engine.inbox.process_due() == 3
        rows = _rows(engine)
        assert {k: v["status"] for k, v in rows.items()} == {
            "d-0": "done",
            "d-1": "pending",
            "d-2": "done",
        }
        assert rows["d-1"]["last_error"]  # retried later, with its reason
        assert [o.status for o in engine.executor.drain()] == ["done"]
        assert [e["params"]["title"] for e in engine.connectors["localdb"].remote.effects()] == [
            "Done: Ocean"
        ]
    finally:
        engine.close()
