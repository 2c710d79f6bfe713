"""Where the connector keeps its webhooks: MAC secrets (shown once, at creation) and payload
cursors.

Airtable pings carry no data; the connector lists payloads from a cursor, so it needs state
that outlives the process. Connectors never touch syncd's store, so the engine hands the
connector a `WebhookRegistry` (the lead backs it by the store); `InMemoryWebhookRegistry` is
the default for tests and the sandbox.

Ordering note for a store-backed registry: `parse_webhook` calls `set_cursor` after listing
the payloads and before the engine commits the returned hints. Committing the cursor in the
same transaction as the hints (or after them) keeps a crash from skipping changes; polling
catches them anyway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class WebhookRegistration:
    """One webhook syncd created: which table it watches, where it pings, its secret."""

    webhook_id: str
    table_id: str
    notification_url: str
    mac_secret_base64: str = field(repr=False)  # a secret: never printed
    expiration_ms: int | None = None


class WebhookRegistry(Protocol):
    def add(self, registration: WebhookRegistration) -> None:
        """Insert or replace (by webhook id)."""
        ...

    def remove(self, webhook_id: str) -> None: ...

    def all(self) -> list[WebhookRegistration]: ...

    def get_secret(self, webhook_id: str) -> str | None:
        """The base64 MAC secret of a webhook, None when unknown."""
        ...

    def get_cursor(self, webhook_id: str) -> int:
        """The number of the next payload to read (1 for a new webhook)."""
        ...

    def set_cursor(self, webhook_id: str, cursor: int) -> None: ...


class InMemoryWebhookRegistry:
    def __init__(self) -> None:
        self._hooks: dict[str, WebhookRegistration] = {}
        self._cursors: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, registration: WebhookRegistration) -> None:
        with self._lock:
            self._hooks[registration.webhook_id] = registration

    def remove(self, webhook_id: str) -> None:
        with self._lock:
            self._hooks.pop(webhook_id, None)
            self._cursors.pop(webhook_id, None)

    def all(self) -> list[WebhookRegistration]:
        with self._lock:
            return list(self._hooks.values())

    def get_secret(self, webhook_id: str) -> str | None:
        with self._lock:
            found = self._hooks.get(webhook_id)
            return found.mac_secret_base64 if found else None

    def get_cursor(self, webhook_id: str) -> int:
        with self._lock:
            return self._cursors.get(webhook_id, 1)

    def set_cursor(self, webhook_id: str, cursor: int) -> None:
        with self._lock:
            # Never move back: two pings processed at once may finish out of order.
            self._cursors[webhook_id] = max(cursor, self._cursors.get(webhook_id, 1))
