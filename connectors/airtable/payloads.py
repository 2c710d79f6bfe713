"""Airtable webhook pings and payloads: verify a ping, read record changes from payloads.

A ping (`WebhookNotification`) says only "webhook X of base B has news"; it is signed with
`X-Airtable-Content-MAC: hmac-sha256=<hex HMAC-SHA256(base64decode(macSecretBase64), body)>`.
The news is read from `GET /v0/bases/{base}/webhooks/{id}/payloads?cursor=n`; each payload
(`WebhookPayload`, parsed with pyairtable's model) lists changed tables and, per table
(`TableChanged`), the records created, changed or destroyed, keyed by field id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import pydantic
from pyairtable.models.webhook import WebhookPayload, WebhookPayloads

from connectors.airtable.schema import BaseSchema
from syncd.sdk import WebhookRejected, load_json, refuse_unsigned, signature_matches

MAC_HEADER = "x-airtable-content-mac"
MAC_PREFIX = "hmac-sha256="


@dataclass(frozen=True)
class Ping:
    base_id: str
    webhook_id: str
    timestamp: str

    @property
    def delivery_id(self) -> str:
        """Stable for one notification: Airtable retries a failed ping with the same body."""
        return f"{self.webhook_id}:{self.timestamp}"


def parse_ping(body: bytes) -> Ping:
    """The ids in a ping body; WebhookRejected(400) when it is not a well-formed ping."""
    data = load_json(body)
    try:
        base_id = data["base"]["id"]
        webhook_id = data["webhook"]["id"]
        timestamp = data["timestamp"]
    except (KeyError, TypeError):
        raise WebhookRejected(400, "ping needs base.id, webhook.id and timestamp") from None
    if not all(isinstance(v, str) and v for v in (base_id, webhook_id, timestamp)):
        raise WebhookRejected(400, "ping ids and timestamp must be non-empty strings")
    return Ping(base_id, webhook_id, timestamp)


def expected_mac(mac_secret_base64: str, body: bytes) -> str:
    try:
        key = base64.b64decode(mac_secret_base64, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected(500, "stored MAC secret is not base64") from None
    return MAC_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def check_mac(
    mac_secret_base64: str, body: bytes, header: str | None, allow_unsigned: bool = False
) -> None:
    """A missing MAC is refused unless `allow_unsigned`; a MAC present is always checked
    (as bytes: a non-ASCII header is a mismatch, not an error)."""
    if not header:
        refuse_unsigned(allow_unsigned, f"missing {MAC_HEADER} header")
        return
    # Only HTTP's own whitespace: str.strip() would also drop NBSP and other non-ASCII.
    if not signature_matches(header.strip(" \t"), expected_mac(mac_secret_base64, body)):
        raise WebhookRejected(401, "bad content MAC")


@dataclass(frozen=True)
class RecordChange:
    """One record touched by a payload; `field_names` are the changed fields, by name."""

    table_id: str
    record_id: str
    kind: str  # "created", "changed" or "destroyed"
    field_names: tuple[str, ...] = ()


def parse_payload_page(data: dict[str, Any]) -> WebhookPayloads:
    """A `list webhook payloads` answer, validated with pyairtable's models."""
    try:
        return WebhookPayloads.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValueError(f"unexpected webhook payload page: {exc.error_count()} errors") from None


def record_changes(payload: WebhookPayload, schema: BaseSchema) -> list[RecordChange]:
    """Every record change in one payload, with field ids turned into names."""
    out: list[RecordChange] = []
    for table_id, table in payload.changed_tables_by_id.items():
        info = schema.table(table_id)

        def names(field_ids: Any, info: Any = info) -> tuple[str, ...]:
            found = (info.field(fid) if info else None for fid in field_ids)
            return tuple(f.name if f else fid for f, fid in zip(found, field_ids, strict=True))

        for record_id, created in table.created_records_by_id.items():
            out.append(
                RecordChange(
                    table_id, record_id, "created", names(list(created.cell_values_by_field_id))
                )
            )
        for record_id, changed in table.changed_records_by_id.items():
            out.append(
                RecordChange(
                    table_id,
                    record_id,
                    "changed",
                    names(list(changed.current.cell_values_by_field_id)),
                )
            )
        for record_id in table.destroyed_record_ids:
            out.append(RecordChange(table_id, record_id, "destroyed"))
    for table_id, created_table in payload.created_tables_by_id.items():
        for record_id in created_table.records_by_id:
            out.append(RecordChange(table_id, record_id, "created"))
    return out
