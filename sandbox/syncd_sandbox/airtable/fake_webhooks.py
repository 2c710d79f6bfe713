"""Webhooks of the fake Airtable: payload log, cursors, seven-day expiry, signed pings.

Shapes follow Airtable's docs and pyairtable's sample data (`Webhook.json`,
`WebhookNotification.json`, `WebhookPayload*.json`; copies in
tests/connectors/airtable/contracts):
a webhook records one payload per change of a table it watches; `GET .../payloads?cursor=n`
returns the payloads from number n on, the next cursor and `mightHaveMore`; the ping POSTed to
the notification URL carries no data, only ids, signed with the MAC secret shown once at creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from syncd.clock import from_ms

WEBHOOK_LIFETIME_MS = 7 * 24 * 3600 * 1000
MAX_PAYLOADS_PER_PAGE = 50
MAC_HEADER = "X-Airtable-Content-MAC"


def iso_ms(ms: int) -> str:
    """Airtable's timestamp format: UTC, milliseconds, `Z`."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def content_mac(mac_secret_base64: str, body: bytes) -> str:
    """The `X-Airtable-Content-MAC` value of a ping body."""
    key = base64.b64decode(mac_secret_base64)
    return "hmac-sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass
class FakeWebhook:
    id: str
    mac_secret_base64: str
    notification_url: str | None
    specification: dict[str, Any]
    expiration_ms: int
    payloads: list[dict[str, Any]] = field(default_factory=list)
    notifications_enabled: bool = True

    def watches(self, table_id: str) -> bool:
        filters = self.specification.get("options", {}).get("filters", {})
        if "tableData" not in filters.get("dataTypes", []):
            return False
        scope = filters.get("recordChangeScope")
        return scope in (None, table_id)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "areNotificationsEnabled": self.notifications_enabled,
            "cursorForNextPayload": len(self.payloads) + 1,
            "isHookEnabled": True,
            "lastNotificationResult": None,
            "lastSuccessfulNotificationTime": None,
            "notificationUrl": self.notification_url,
            "expirationTime": iso_ms(self.expiration_ms),
            "specification": self.specification,
        }

    def page(self, cursor: int, limit: int) -> dict[str, Any]:
        start = max(cursor, 1) - 1
        chosen = self.payloads[start : start + limit]
        next_cursor = start + len(chosen) + 1
        return {
            "cursor": next_cursor,
            "mightHaveMore": next_cursor <= len(self.payloads),
            "payloads": chosen,
        }


class FakeWebhooks:
    """All webhooks of one fake base. The caller holds the app lock."""

    def __init__(self, base_id: str) -> None:
        self.base_id = base_id
        self.hooks: dict[str, FakeWebhook] = {}
        self.transaction = 0
        self._next_id = 0

    def create(self, body: dict[str, Any], now_ms: int) -> FakeWebhook:
        self._next_id += 1
        hook = FakeWebhook(
            id=f"ach{self._next_id:014d}",
            mac_secret_base64=base64.b64encode(secrets.token_bytes(32)).decode(),
            notification_url=body.get("notificationUrl"),
            specification=body["specification"],
            expiration_ms=now_ms + WEBHOOK_LIFETIME_MS,
        )
        self.hooks[hook.id] = hook
        return hook

    def live(self, now_ms: int) -> list[FakeWebhook]:
        """Webhooks not yet expired; an expired one is gone, as at Airtable."""
        for hook_id in [h.id for h in self.hooks.values() if h.expiration_ms <= now_ms]:
            del self.hooks[hook_id]
        return list(self.hooks.values())

    def get(self, hook_id: str, now_ms: int) -> FakeWebhook | None:
        return next((h for h in self.live(now_ms) if h.id == hook_id), None)

    def refresh(self, hook: FakeWebhook, now_ms: int) -> None:
        hook.expiration_ms = now_ms + WEBHOOK_LIFETIME_MS

    def record_change(
        self, table_id: str, table_change: dict[str, Any], source: str, now_ms: int
    ) -> None:
        """Append one payload (one base transaction) to every webhook watching the table."""
        self.transaction += 1
        payload = {
            "timestamp": iso_ms(now_ms),
            "baseTransactionNumber": self.transaction,
            "actionMetadata": {"source": source, "sourceMetadata": {}},
            "payloadFormat": "v0",
            "changedTablesById": {table_id: table_change},
        }
        for hook in self.live(now_ms):
            if hook.watches(table_id):
                hook.payloads.append(json.loads(json.dumps(payload)))

    def ping(self, hook: FakeWebhook, now_ms: int) -> tuple[dict[str, str], bytes]:
        """The notification Airtable POSTs: headers and raw body, signed."""
        body = json.dumps(
            {
                "base": {"id": self.base_id},
                "webhook": {"id": hook.id},
                "timestamp": iso_ms(now_ms),
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            MAC_HEADER: content_mac(hook.mac_secret_base64, body),
        }
        return headers, body
