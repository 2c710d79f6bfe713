"""pyairtable's sample payloads (copied in contracts/) parse with the connector's payload parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyairtable.models.webhook import WebhookPayload

from connectors.airtable.payloads import (
    RecordChange,
    parse_payload_page,
    parse_ping,
    record_changes,
)
from connectors.airtable.schema import BaseSchema, FieldInfo, TableInfo
from syncd.errors import WebhookRejected
from syncd_sandbox.airtable.fake_webhooks import FakeWebhook

CONTRACTS = Path(__file__).parent / "contracts"


def load(name: str) -> Any:
    return json.loads((CONTRACTS / name).read_text())


def test_sample_payload_page_parses_with_its_cursor() -> None:
    page = parse_payload_page(load("list-webhook-payloads.response.json"))
    assert page.cursor == 5
    assert page.might_have_more is False
    [payload] = page.payloads
    assert payload.base_transaction_number == 4
    assert payload.destroyed_table_ids == ["tbl20000000000000", "tbl20000000000001"]
    assert record_changes(payload, BaseSchema(())) == []


def test_sample_table_changed_yields_each_record_change_with_field_names() -> None:
    payload = WebhookPayload.model_validate(
        {
            **load("WebhookPayload.json"),
            "changedTablesById": {"tbl00000000000001": load("WebhookPayload.TableChanged.json")},
        }
    )
    schema = BaseSchema(
        (
            TableInfo(
                "tbl00000000000001",
                "Leads",
                (
                    FieldInfo("fld00000000000001", "Status", "singleSelect"),
                    FieldInfo("fld0000000000000", "Name", "singleLineText"),
                ),
            ),
        )
    )

    changes = record_changes(payload, schema)

    assert changes == [
        RecordChange("tbl00000000000001", "rec00000000000000", "created", ("Name",)),
        RecordChange("tbl00000000000001", "rec00000000000001", "changed", ("Status",)),
        RecordChange("tbl00000000000001", "rec00000000000002", "destroyed"),
    ]


def test_field_ids_missing_from_the_schema_stay_as_ids() -> None:
    payload = WebhookPayload.model_validate(
        {
            **load("WebhookPayload.json"),
            "changedTablesById": {"tblX": load("WebhookPayload.TableChanged.json")},
        }
    )
    changed = [c for c in record_changes(payload, BaseSchema(())) if c.kind == "changed"]
    assert changed[0].field_names == ("fld00000000000001",)


def test_sample_notification_parses_as_a_ping() -> None:
    body = json.dumps(load("WebhookNotification.json")).encode()
    ping = parse_ping(body)
    assert (ping.base_id, ping.webhook_id) == ("app00000000000000", "ach00000000000000")
    assert ping.delivery_id == "ach00000000000000:2022-02-01T21:25:05.663Z"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"base": {"id": "app1"}, "timestamp": "t"}',
        b'{"base": {"id": "app1"}, "webhook": {"id": 5}, "timestamp": "t"}',
        b'{"base": "app1", "webhook": {"id": "ach1"}, "timestamp": "t"}',
    ],
)
def test_malformed_pings_are_rejected_with_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_ping(body)
    assert caught.value.status == 400


def test_fake_webhook_listing_has_the_shape_of_the_sample_webhook() -> None:
    sample = load("Webhook.json")
    hook = FakeWebhook(
        "ach1",
        "c2VjcmV0",
        "https://example.com/h",
        {"options": {"filters": {"dataTypes": ["tableData"]}}},
        0,
    )
    assert set(hook.to_api()) <= set(sample)
    assert {"id", "cursorForNextPayload", "expirationTime", "specification"} <= set(hook.to_api())
