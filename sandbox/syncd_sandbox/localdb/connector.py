"""The localdb connector: the engine's test bench and the reference connector."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

from pydantic import SecretStr

from syncd.connector import Connector, ConnectorSettings, ParamsModel, action
from syncd.errors import PermanentError, TransientError, UncertainError, WebhookRejected
from syncd.model import (
    ActionContext,
    ActionResult,
    Hint,
    ObjectRef,
    Observation,
    PollPage,
    WebhookRequest,
)
from syncd.webhook_checks import load_json, refuse_unsigned, signature_matches
from syncd_sandbox.localdb.remote import LocalDbRemote

SIGNATURE_HEADER = "x-localdb-signature"
DELIVERY_HEADER = "x-localdb-delivery"


class LocalDbSettings(ConnectorSettings):
    path: str = "localdb-remote.sqlite3"
    webhook_secret: SecretStr | None = None
    allow_unsigned: bool = False  # accept deliveries without a signature (tests, never prod)
    object_types: list[str] = ["item"]
    page_size: int = 100
    # Simulated per-call latency of the "remote API" (benchmarks of the executor).
    latency_seconds: float = 0.0


class RecordParams(ParamsModel):
    """Append an effect at the remote (like opening an issue: not idempotent by itself)."""

    title: str
    body: str = ""
    labels: list[str] = []


class SetFieldsParams(ParamsModel):
    type: str
    id: str
    fields: dict[str, Any]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class LocalDbConnector(Connector):
    name = "localdb"
    Settings = LocalDbSettings
    webhook_headers = (SIGNATURE_HEADER, DELIVERY_HEADER)
    settings: LocalDbSettings
    # A local test source: versions are counters, not times, and it has no history worth
    # protecting, so it is not baselined at go-live.
    golive_baseline = False

    def __init__(self, settings: LocalDbSettings, clock: Any = None) -> None:
        super().__init__(settings, clock)
        self.remote = LocalDbRemote(settings.path)

    def _observation(self, type_: str, id_: str, row: dict[str, Any]) -> Observation:
        return Observation(
            ref=ObjectRef(self.name, type_, id_),
            fields=row["fields"],
            version=row["version"],
            history={k: [tuple(e) for e in v] for k, v in row["history"].items()},
            deleted=row["deleted"],
        )

    # -- webhooks --------------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest) -> str:
        secret = self.settings.webhook_secret
        given = request.headers.get(SIGNATURE_HEADER, "")
        if secret is None:
            refuse_unsigned(self.settings.allow_unsigned, "no webhook_secret configured")
        elif not given:
            refuse_unsigned(self.settings.allow_unsigned, "missing signature")
        elif not signature_matches(given, sign(secret.get_secret_value(), request.body)):
            raise WebhookRejected(401, "bad or missing signature")
        delivery = request.headers.get(DELIVERY_HEADER)
        if not delivery:
            raise WebhookRejected(400, f"missing {DELIVERY_HEADER} header")
        self._parse_body(request.body)
        return delivery

    @staticmethod
    def _parse_body(body: bytes) -> list[dict[str, str]]:
        data = load_json(body)
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("type"), str)
                and isinstance(item.get("id"), str)
            ):
                raise WebhookRejected(400, "each item needs string 'type' and 'id'")
        return items

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        return [
            Hint(ObjectRef(self.name, item["type"], item["id"]))
            for item in self._parse_body(request.body)
        ]

    # -- reading ---------------------------------------------------------------------------

    def fetch(self, ref: ObjectRef) -> Observation | None:
        row = self.remote.read(ref.type, ref.id)
        return None if row is None else self._observation(ref.type, ref.id, row)

    def poll(self, object_type: str, cursor: str | None) -> PollPage:
        since = int(cursor) if cursor else -1
        rows = self.remote.changed_since(object_type, since, self.settings.page_size)
        observations = [self._observation(object_type, r["id"], r) for r in rows]
        next_cursor = str(rows[-1]["version"]) if rows else cursor
        return PollPage(observations, next_cursor, more=len(rows) == self.settings.page_size)

    def poll_streams(self) -> list[str]:
        return list(self.settings.object_types)

    def query(self, object_type: str, query: dict[str, Any]) -> Iterator[Observation]:
        for row in self.remote.all_objects(object_type):
            if row["deleted"]:
                continue
            if all(row["fields"].get(k) == v for k, v in query.get("where", {}).items()):
                yield self._observation(object_type, row["id"], row)

    # -- actions ---------------------------------------------------------------------------

    def _maybe_fail(self, action_name: str, apply: Any) -> None:
        if self.settings.latency_seconds:
            self.clock.sleep(self.settings.latency_seconds)
        fault = self.remote.take_fault(action_name)
        if fault is None:
            return
        kind, retry_after, applied_first = fault
        if applied_first:
            apply()
            raise UncertainError("remote applied the call, then answered 502")
        if kind == "permanent":
            raise PermanentError("remote refused the call (400)")
        raise TransientError("remote unavailable (503)", retry_after=retry_after)

    @action("record", RecordParams)
    def record(self, params: RecordParams, ctx: ActionContext) -> ActionResult:
        """Add an effect at the remote, marked with the action's key."""
        payload = params.model_dump()

        def apply() -> None:
            self.remote.add_effect(ctx.key, "record", payload)

        self._maybe_fail("record", apply)
        return ActionResult(external_id=str(self.remote.add_effect(ctx.key, "record", payload)))

    @record.finder
    def find_record(self, params: RecordParams, ctx: ActionContext) -> ActionResult | None:
        found = self.remote.find_effect(ctx.key)
        return None if found is None else ActionResult(external_id=str(found))

    @action("set_fields", SetFieldsParams, idempotent=True)
    def set_fields(self, params: SetFieldsParams, ctx: ActionContext) -> ActionResult:
        """Write fields on a remote object (idempotent: same fields, same result)."""
        self._maybe_fail("set_fields", lambda: None)
        row = self.remote.read(params.type, params.id)
        if row is None or any(row["fields"].get(k) != v for k, v in params.fields.items()):
            self.remote.put(params.type, params.id, **params.fields)
        return ActionResult(external_id=f"{params.type}/{params.id}")
