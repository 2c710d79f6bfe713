"""Airtable webhooks: verify pings, turn payloads into hints, create and keep webhooks alive.

- `verify`: local and cheap (no API call): the ping's shape, its base, the webhook id known
  to the registry, and its MAC.
- `hints`: list the payloads from the registry's cursor (listing also extends the webhook's
  life), one Hint per changed record (the engine fetches it). The cursor after them is kept
  aside; `acknowledge` stores it once the engine has committed the changes (a crash before
  that lists the same payloads again, which the snapshot diff absorbs).
- `ensure(notification_url, aliases)`: one webhook per table (default: every configured
  one), secrets stored in the registry; webhooks pinging our URL whose secret we do not
  hold are deleted (their pings could never be verified).
- `refresh()`: extend each webhook's life by 7 days (call it daily, well inside the 7 days);
  one that is gone (expired) is created again. Changes made while it was gone are found by
  polling.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors.airtable.client import airtable_errors
from connectors.airtable.payloads import (
    MAC_HEADER,
    RecordChange,
    check_mac,
    parse_payload_page,
    parse_ping,
    record_changes,
)
from connectors.airtable.registry import WebhookRegistration
from syncd.sdk import Hint, ObjectRef, TransientError, WebhookRejected, WebhookRequest, to_ms

if TYPE_CHECKING:
    from connectors.airtable.connector import AirtableConnector

MAX_PAYLOAD_PAGES = 1000  # a guard against a server that always says mightHaveMore
MAX_PENDING_ACKS = 1000


@dataclass
class RefreshReport:
    refreshed: list[str] = field(default_factory=list)
    recreated: dict[str, str] = field(default_factory=dict)  # old webhook id -> new one


def _expiration_ms(value: Any) -> int | None:
    if isinstance(value, datetime):
        return to_ms(value)
    if isinstance(value, str) and value:
        return to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return None


class WebhookManager:
    def __init__(self, connector: AirtableConnector) -> None:
        self.connector = connector
        # ping delivery id -> (webhook id, cursor after its payloads), until acknowledged
        self._pending: dict[str, tuple[str, int]] = {}
        self._pending_lock = threading.Lock()

    @property
    def _registry(self) -> Any:
        return self.connector.registry

    def _url(self, *parts: str) -> str:
        return "/".join([str(self.connector.base.urls.webhooks), *parts])

    # -- receiving ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> str:
        ping = parse_ping(request.body)
        if ping.base_id != self.connector.settings.base_id:
            raise WebhookRejected(404, "ping for another base")
        secret = self._registry.get_secret(ping.webhook_id)
        if secret is None:
            raise WebhookRejected(404, "unknown webhook id")
        check_mac(
            secret,
            request.body,
            request.headers.get(MAC_HEADER),
            self.connector.settings.allow_unsigned,
        )
        return ping.delivery_id

    def hints(self, request: WebhookRequest) -> list[Hint]:
        ping = parse_ping(request.body)
        aliases = self.connector.aliases_by_table_id()
        hints: dict[ObjectRef, Hint] = {}
        changes, cursor = self.read_changes(ping.webhook_id)
        with self._pending_lock:
            self._pending[ping.delivery_id] = (ping.webhook_id, cursor)
            while len(self._pending) > MAX_PENDING_ACKS:  # pings that failed for good
                self._pending.pop(next(iter(self._pending)))
        for change in changes:
            alias = aliases.get(change.table_id)
            if alias is None:
                continue  # a table syncd does not sync
            ref = ObjectRef(self.connector.name, alias, change.record_id)
            hints.setdefault(ref, Hint(ref))
        return list(hints.values())

    def acknowledge(self, request: WebhookRequest) -> None:
        """The changes hinted for this ping are committed: store the cursor past them."""
        ping = parse_ping(request.body)
        with self._pending_lock:
            pending = self._pending.pop(ping.delivery_id, None)
        if pending is not None:
            self._registry.set_cursor(*pending)

    def changes_since_cursor(self, webhook_id: str) -> list[RecordChange]:
        """Every record change from the stored cursor on (the cursor is not moved)."""
        return self.read_changes(webhook_id)[0]

    def read_changes(self, webhook_id: str) -> tuple[list[RecordChange], int]:
        """Every record change from the stored cursor on, and the cursor past them."""
        cursor = self._registry.get_cursor(webhook_id)
        schema = self.connector.schema()
        changes: list[RecordChange] = []
        for _ in range(MAX_PAYLOAD_PAGES):
            with airtable_errors(write=False):
                data = self.connector.api.request(
                    "GET", self._url(webhook_id, "payloads"), options={"cursor": cursor}
                )
            page = parse_payload_page(data)
            for payload in page.payloads:
                changes.extend(record_changes(payload, schema))
            more = page.might_have_more and bool(page.payloads) and page.cursor > cursor
            cursor = max(cursor, page.cursor)
            if not more:
                break
        else:
            raise TransientError("Airtable kept saying mightHaveMore; will list again later")
        return changes, cursor

    # -- managing -----------------------------------------------------------------------

    def _live(self) -> dict[str, dict[str, Any]]:
        with airtable_errors(write=False):
            data = self.connector.api.request("GET", self._url())
        return {hook["id"]: hook for hook in data.get("webhooks", [])}

    def _create(self, table_id: str, notification_url: str) -> WebhookRegistration:
        spec = {"options": {"filters": {"dataTypes": ["tableData"], "recordChangeScope": table_id}}}
        with airtable_errors(write=True):
            created = self.connector.base.add_webhook(notification_url, spec)
        registration = WebhookRegistration(
            webhook_id=created.id,
            table_id=table_id,
            notification_url=notification_url,
            mac_secret_base64=created.mac_secret_base64,
            expiration_ms=_expiration_ms(created.expiration_time),
        )
        self._registry.add(registration)
        return registration

    def ensure(self, notification_url: str, aliases: Iterable[str] | None = None) -> dict[str, str]:
        """One live webhook per table (`aliases`, default: every configured table) pinging
        `notification_url`: returns table alias -> webhook id."""
        live = self._live()
        result: dict[str, str] = {}
        for alias in self.connector.settings.tables if aliases is None else aliases:
            table_id = self.connector.table_info(alias).id
            mine = [
                r
                for r in self._registry.all()
                if r.table_id == table_id and r.notification_url == notification_url
            ]
            current = next((r for r in mine if r.webhook_id in live), None)
            for stale in mine:
                if stale is not current and stale.webhook_id not in live:
                    self._registry.remove(stale.webhook_id)
            if current is None:
                current = self._create(table_id, notification_url)
            result[alias] = current.webhook_id
        known = {r.webhook_id for r in self._registry.all()}
        for hook_id, hook in live.items():
            if hook.get("notificationUrl") == notification_url and hook_id not in known:
                with airtable_errors(write=True):
                    self.connector.api.request("DELETE", self._url(hook_id))
        return result

    def refresh(self) -> RefreshReport:
        """Extend every registered webhook's life; create again the ones that are gone."""
        live = self._live()
        report = RefreshReport()
        for registration in self._registry.all():
            if registration.webhook_id in live:
                with airtable_errors(write=True):
                    data = self.connector.api.request(
                        "POST", self._url(registration.webhook_id, "refresh")
                    )
                expires = _expiration_ms((data or {}).get("expirationTime"))
                self._registry.add(replace(registration, expiration_ms=expires))
                report.refreshed.append(registration.webhook_id)
            else:
                self._registry.remove(registration.webhook_id)
                new = self._create(registration.table_id, registration.notification_url)
                report.recreated[registration.webhook_id] = new.webhook_id
        return report
