"""Where the connector keeps its webhooks: MAC secrets (shown once, at creation) and payload
cursors.

Airtable pings carry no data; the connector lists payloads from a cursor, so it needs state
that outlives the process. Connectors never touch syncd's store: the engine lends them a
key-value store and a secret file (`Connector.attach`), which back `StoredWebhookRegistry`.
`InMemoryWebhookRegistry` is the default before `attach` (unit tests, one-off scripts).

Ordering: the payload cursor is only moved by `acknowledge_webhook`, which the engine calls
after the hints' changes are committed. A crash before that lists the same payloads again;
the snapshot diff absorbs the repeat, and nothing is skipped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class StoredWebhookRegistry:
    """The registry on the engine's durable state.

    - MAC secrets in the secret file (0600, never the store), key `webhook:<id>`;
    - which table a webhook watches, where it pings, when it expires: `webhooks` in the
      key-value store; payload cursors: `cursor:<id>` there too.
    A webhook whose secret is gone is not listed: its pings could never be verified, so
    `ensure` replaces it.
    """

    HOOKS_KEY = "webhooks"

    def __init__(self, state: Any, secrets: Any) -> None:
        self.state = state
        self.secrets = secrets
        self._lock = threading.Lock()  # read-modify-write of the `webhooks` entry

    @staticmethod
    def _secret_key(webhook_id: str) -> str:
        return f"webhook:{webhook_id}"

    @staticmethod
    def _cursor_key(webhook_id: str) -> str:
        return f"cursor:{webhook_id}"

    def _hooks(self) -> dict[str, dict[str, Any]]:
        return dict(self.state.get(self.HOOKS_KEY) or {})

    def add(self, registration: WebhookRegistration) -> None:
        # The secret first: a listed webhook always has its secret.
        self.secrets.set(self._secret_key(registration.webhook_id), registration.mac_secret_base64)
        with self._lock:
            hooks = self._hooks()
            hooks[registration.webhook_id] = {
                "table_id": registration.table_id,
                "notification_url": registration.notification_url,
                "expiration_ms": registration.expiration_ms,
            }
            self.state.set(self.HOOKS_KEY, hooks)

    def remove(self, webhook_id: str) -> None:
        with self._lock:
            hooks = self._hooks()
            hooks.pop(webhook_id, None)
            self.state.set(self.HOOKS_KEY, hooks)
        self.state.set(self._cursor_key(webhook_id), None)
        self.secrets.set(self._secret_key(webhook_id), None)

    def all(self) -> list[WebhookRegistration]:
        secrets = self.secrets.read()
        out = []
        for webhook_id, meta in sorted(self._hooks().items()):
            secret = secrets.get(self._secret_key(webhook_id))
            if secret:
                out.append(
                    WebhookRegistration(
                        webhook_id,
                        meta["table_id"],
                        meta["notification_url"],
                        secret,
                        meta.get("expiration_ms"),
                    )
                )
        return out

    def get_secret(self, webhook_id: str) -> str | None:
        return self.secrets.get(self._secret_key(webhook_id))

    def get_cursor(self, webhook_id: str) -> int:
        return int(self.state.get(self._cursor_key(webhook_id)) or 1)

    def set_cursor(self, webhook_id: str, cursor: int) -> None:
        with self._lock:
            # Never move back: two pings acknowledged out of order.
            current = self.get_cursor(webhook_id)
            self.state.set(self._cursor_key(webhook_id), max(cursor, current))
