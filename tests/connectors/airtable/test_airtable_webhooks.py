"""Pings are verified locally; payloads become hints; webhooks are created and kept alive."""

from __future__ import annotations

import json

import pytest

from connectors.airtable import AirtableConnector
from syncd.clock import FakeClock, to_ms
from syncd.errors import WebhookRejected
from syncd.model import Hint, ObjectRef, WebhookRequest
from syncd_sandbox.airtable.fake import FakeAirtable

HOOK_URL = "https://syncd.example.org/webhooks/airtable"


def request(headers: dict[str, str], body: bytes, clock: FakeClock) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=HOOK_URL,
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        received_at_ms=to_ms(clock.now()),
    )


@pytest.fixture
def hooks(connector: AirtableConnector) -> dict[str, str]:
    return connector.ensure_webhooks(HOOK_URL)


def test_ensure_webhooks_creates_one_per_table_once(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str]
) -> None:
    assert set(hooks) == {"lead", "hub"}
    assert connector.ensure_webhooks(HOOK_URL) == hooks
    assert set(fake.webhooks.hooks) == set(hooks.values())
    for webhook_id in hooks.values():
        assert connector.registry.get_secret(webhook_id)


def test_a_good_ping_is_accepted_with_webhook_and_timestamp_as_delivery_id(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    headers, body = fake.signed_ping(hooks["lead"])
    delivery = connector.verify_webhook(request(headers, body, clock))
    assert delivery == f"{hooks['lead']}:{json.loads(body)['timestamp']}"


def test_bad_mac_is_rejected_with_401(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    headers, body = fake.signed_ping(hooks["lead"])
    tampered = body.replace(b'"timestamp": "', b'"timestamp": "1')
    with pytest.raises(WebhookRejected) as caught:
        connector.verify_webhook(request(headers, tampered, clock))
    assert caught.value.status == 401
    # the MAC of another webhook does not fit either
    other_headers, _ = fake.signed_ping(hooks["hub"])
    with pytest.raises(WebhookRejected) as caught:
        connector.verify_webhook(request(other_headers, body, clock))
    assert caught.value.status == 401
    with pytest.raises(WebhookRejected) as caught:
        connector.verify_webhook(request({}, body, clock))
    assert caught.value.status == 401


def test_unknown_webhook_or_base_is_rejected_with_404(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    headers, body = fake.signed_ping(hooks["lead"])
    for changed in (
        body.replace(hooks["lead"].encode(), b"ach99999999999999"),
        body.replace(fake.base_id.encode(), b"appOtherBase00001"),
    ):
        with pytest.raises(WebhookRejected) as caught:
            connector.verify_webhook(request(headers, changed, clock))
        assert caught.value.status == 404


def test_malformed_ping_is_rejected_with_400(
    connector: AirtableConnector, hooks: dict[str, str], clock: FakeClock
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        connector.verify_webhook(
            request({"X-Airtable-Content-MAC": "hmac-sha256=00"}, b"{not json", clock)
        )
    assert caught.value.status == 400


def test_record_changed_three_times_between_pings_is_one_hint_then_nothing(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    record_id = fake.user_create("Leads", {"Name": "Ocean", "Status": "Active Lead"})
    first = request(*fake.signed_ping(hooks["lead"]), clock)
    connector.verify_webhook(first)
    assert connector.parse_webhook(first) == [Hint(ObjectRef("airtable", "lead", record_id))]
    connector.acknowledge_webhook(first)  # the engine committed the hinted changes
    cursor_after_first = connector.registry.get_cursor(hooks["lead"])

    for status in ("Needs Admin", "Waiting", "Active Service"):
        clock.advance(seconds=5)
        fake.user_update("Leads", record_id, {"Status": status})
    second = request(*fake.signed_ping(hooks["lead"]), clock)
    connector.verify_webhook(second)
    hints = connector.parse_webhook(second)
    connector.acknowledge_webhook(second)

    assert hints == [Hint(ObjectRef("airtable", "lead", record_id))]
    assert connector.registry.get_cursor(hooks["lead"]) == cursor_after_first + 3
    observation = connector.fetch(hints[0].ref)
    assert observation is not None
    assert observation.fields["Status"] == "Active Service"
    assert observation.version == to_ms(clock.now())
    # listing again from the stored cursor yields nothing new
    assert connector.parse_webhook(second) == []
    assert connector.webhooks.changes_since_cursor(hooks["lead"]) == []


def test_payloads_spanning_several_pages_are_all_read(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    ids = [fake.user_create("Active Hubs", {"Community": f"c{i}"}) for i in range(120)]
    ping = request(*fake.signed_ping(hooks["hub"]), clock)
    hints = connector.parse_webhook(ping)
    assert [h.ref.id for h in hints] == ids
    assert connector.registry.get_cursor(hooks["hub"]) == 1  # not before the engine commits
    connector.acknowledge_webhook(ping)
    assert connector.registry.get_cursor(hooks["hub"]) == 121


def test_deleted_record_gives_a_hint_and_fetch_says_gone(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    record_id = fake.user_create("Leads", {"Name": "Gone"})
    fake.user_delete("Leads", record_id)
    hints = connector.parse_webhook(request(*fake.signed_ping(hooks["lead"]), clock))
    assert hints == [Hint(ObjectRef("airtable", "lead", record_id))]
    assert connector.fetch(hints[0].ref) is None


def test_refresh_extends_life_and_recreates_an_expired_webhook(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    clock.advance(days=6)
    report = connector.refresh_webhooks()
    assert sorted(report.refreshed) == sorted(hooks.values())
    clock.advance(days=6)  # 12 days after creation: alive thanks to the refresh
    assert {h.id for h in fake.webhooks.live(fake.now_ms())} == set(hooks.values())

    clock.advance(days=2)  # 8 days after the refresh: expired at Airtable
    report = connector.refresh_webhooks()
    assert set(report.recreated) == set(hooks.values())
    new_lead_hook = report.recreated[hooks["lead"]]
    assert connector.registry.get_secret(hooks["lead"]) is None
    ping = request(*fake.signed_ping(new_lead_hook), clock)
    assert connector.verify_webhook(ping).startswith(new_lead_hook)


def test_listing_payloads_extends_the_webhook_life(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str], clock: FakeClock
) -> None:
    clock.advance(days=5)
    connector.parse_webhook(request(*fake.signed_ping(hooks["lead"]), clock))
    clock.advance(days=5)
    assert hooks["lead"] in {h.id for h in fake.webhooks.live(fake.now_ms())}
    assert hooks["hub"] not in {h.id for h in fake.webhooks.live(fake.now_ms())}


def test_webhook_of_ours_without_a_known_secret_is_deleted(
    connector: AirtableConnector, fake: FakeAirtable, hooks: dict[str, str]
) -> None:
    connector.registry.remove(hooks["hub"])  # e.g. the secret store was lost
    again = connector.ensure_webhooks(HOOK_URL)
    assert again["lead"] == hooks["lead"]
    assert again["hub"] != hooks["hub"]
    assert set(fake.webhooks.hooks) == set(again.values())


def test_mac_secrets_are_redacted_and_never_printed(
    connector: AirtableConnector, hooks: dict[str, str]
) -> None:
    secrets = [connector.registry.get_secret(h) for h in hooks.values()]
    assert all(s in connector.secret_values() for s in secrets)
    assert all(s not in repr(connector.registry.all()) for s in secrets if s)
