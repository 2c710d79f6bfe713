"""The Airtable connector: one base, its tables known by aliases.

- Object types are the table aliases of `[airtable] tables` (e.g. `lead = "Leads"`); object
  ids are record ids; fields are keyed by field name.
- Version: the record's last-modified time in epoch ms, read from the table's
  `last_modified_field` (default "Last Modified": add a "Last modified time" field, or a
  formula field `LAST_MODIFIED_TIME()`, to each synced table). A record where that field is
  still empty was never modified: its version is its createdTime. A table without such a
  field gives version None (observations always applied; the snapshot diff still dedupes);
  `check_tables` reports it. The version field itself is not among the diffed fields.
- Webhooks: see `webhooks.py` (pings carry no data: hint, then fetch). Polling: see
  `poll.py`. Actions: see `actions.py`. Rate limit: 5 requests/s per base, a 30 s block
  after a 429 (see `client.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pyairtable.api.table import Table
from pyairtable.formulas import match, to_formula_str

from connectors.airtable.actions import AirtableActions
from connectors.airtable.cli import airtable_cli
from connectors.airtable.client import (
    IteratorExpired,
    NotFound,
    airtable_errors,
    airtable_governor,
    make_api,
)
from connectors.airtable.payloads import MAC_HEADER
from connectors.airtable.poll import PollCursor, list_options
from connectors.airtable.registry import (
    InMemoryWebhookRegistry,
    StoredWebhookRegistry,
    WebhookRegistry,
)
from connectors.airtable.schema import VERSION_FIELD_TYPES, BaseSchema, TableInfo
from connectors.airtable.settings import DEFAULT_BASE_URL, AirtableSettings
from connectors.airtable.webhooks import RefreshReport, WebhookManager
from syncd.sdk import (
    Clock,
    Connector,
    Governor,
    Hint,
    ObjectRef,
    Observation,
    PermanentError,
    PollPage,
    TransientError,
    WebhookRequest,
    account_id,
    governor_for,
    to_ms,
)

MAX_LISTING_RESTARTS = 5
QUERY_KEYS = {"formula", "where"}
WRITE_ACTIONS = ("upsert", "update")


def _templated(text: Any) -> bool:
    return isinstance(text, str) and ("{{" in text or "{%" in text)


def _iso_ms(value: str) -> int:
    return to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))


class AirtableConnector(AirtableActions, Connector):
    name = "airtable"
    required_secrets = ("token",)
    Settings = AirtableSettings
    webhook_headers = (MAC_HEADER,)
    cli = airtable_cli
    settings: AirtableSettings

    def __init__(
        self,
        settings: AirtableSettings,
        clock: Clock | None = None,
        *,
        registry: WebhookRegistry | None = None,
    ) -> None:
        super().__init__(settings, clock)
        # `attach` replaces it with one on the engine's durable state.
        self.registry: WebhookRegistry = registry or InMemoryWebhookRegistry()
        base_url = settings.base_url or DEFAULT_BASE_URL
        # Airtable counts per base, whatever the token: one governor per (endpoint, base).
        account = account_id(base_url, settings.base_id)
        self.governor = governor_for(
            "airtable",
            account,
            self.clock,
            lambda: airtable_governor(
                "airtable",
                account,
                settings.rate_limit_per_second,
                settings.rate_margin,
                self.clock,
            ),
        )
        self.api = make_api(
            settings.token.get_secret_value() if settings.token else "",
            base_url,
            self.governor,
            settings.timeout_seconds,
        )
        self.base = self.api.base(settings.base_id)
        self.webhooks = WebhookManager(self)
        self._schema: BaseSchema | None = None

    # -- schema and tables ---------------------------------------------------------------

    def schema(self, *, force: bool = False) -> BaseSchema:
        """The base schema (cached; `force` reads it again)."""
        if self._schema is None or force:
            with airtable_errors(write=False):
                data = self.api.request("GET", self.base.urls.tables)
            self._schema = BaseSchema.from_api(data)
        return self._schema

    def table_info(self, alias: str) -> TableInfo:
        configured = self.settings.tables.get(alias)
        if configured is None:
            raise PermanentError(f"unknown Airtable table alias {alias!r}")
        info = self.schema().table(configured) or self.schema(force=True).table(configured)
        if info is None:
            raise PermanentError(f"table {configured!r} ({alias}) is not in the base")
        return info

    def _table(self, alias: str) -> tuple[TableInfo, Table]:
        info = self.table_info(alias)
        return info, self.api.table(self.settings.base_id, info.id)

    def aliases_by_table_id(self) -> dict[str, str]:
        schema = self.schema()
        out = {}
        for alias, configured in self.settings.tables.items():
            info = schema.table(configured)
            if info is not None:
                out[info.id] = alias
        return out

    def version_field(self, alias: str, info: TableInfo) -> str | None:
        name = self.settings.last_modified_fields.get(alias, self.settings.last_modified_field)
        found = info.field(name) if name else None
        return found.name if found and found.type in VERSION_FIELD_TYPES else None

    def check_fields(self, alias: str, names: list[str]) -> list[str]:
        """Problems with field names a mapping uses (for `syncd check`); empty: all good."""
        try:
            info = self.table_info(alias)
        except PermanentError as exc:
            return [str(exc)]
        return info.unknown_fields(names)

    def check_mapping(self, rules: Any) -> list[str]:
        """Table aliases and field names the rules use, checked against the base schema.
        Raises when Airtable cannot be reached (`syncd check` makes that a warning)."""
        self.schema(force=True)
        problems: list[str] = []
        for compiled in rules.rules:
            where = f"{compiled.file}: rule {compiled.id}"
            problems += [f"{where}: {p}" for p in self._check_trigger(compiled.rule.when)]
            for act in compiled.actions:
                if act.connector == self.name and act.action in WRITE_ACTIONS:
                    problems += [f"{where}: {act.name}: {p}" for p in self._check_write(act)]
        return problems

    def _check_trigger(self, trigger: Any) -> list[str]:
        sources = [trigger, getattr(trigger, "for_each", None), getattr(trigger, "collect", None)]
        problems: list[str] = []
        for spec in sources:
            if spec is None or getattr(spec, "source", None) != self.name:
                continue
            names = [
                n
                for n in (getattr(spec, "field", None), getattr(spec, "date", None))
                if isinstance(n, str)
            ]
            entered = getattr(spec, "entered", None)
            if entered is not None:
                names.append(entered.field)
            problems += self.check_fields(spec.object, names)
        return problems

    def _check_write(self, act: Any) -> list[str]:
        alias = act.params.get("table")
        if not isinstance(alias, str) or _templated(alias):
            return []  # chosen at run time
        fields = act.params.get("fields")
        names = [k for k in fields if not _templated(k)] if isinstance(fields, dict) else []
        merge_on = act.params.get("merge_on") or []
        names += [n for n in merge_on if isinstance(n, str) and not _templated(n)]
        return self.check_fields(alias, list(dict.fromkeys(names)))

    def check_tables(self) -> list[str]:
        """Problems with the configured tables: missing tables, missing version fields."""
        problems = []
        for alias in self.settings.tables:
            try:
                info = self.table_info(alias)
            except PermanentError as exc:
                problems.append(str(exc))
                continue
            if self.version_field(alias, info) is None:
                wanted = self.settings.last_modified_fields.get(
                    alias, self.settings.last_modified_field
                )
                problems.append(
                    f"table {info.name!r} ({alias}) has no last-modified-time field "
                    f"{wanted!r}: versions are unknown"
                )
        return problems

    def record_url(self, table_id: str, record_id: str) -> str:
        return f"https://airtable.com/{self.settings.base_id}/{table_id}/{record_id}"

    def observation(self, alias: str, info: TableInfo, record: Mapping[str, Any]) -> Observation:
        fields = dict(record.get("fields", {}))
        version_field = self.version_field(alias, info)
        version = None
        if version_field is not None:
            modified = fields.pop(version_field, None) or record["createdTime"]
            version = _iso_ms(modified)
        return Observation(
            ref=ObjectRef(self.name, alias, record["id"]),
            fields=fields,
            version=version,
            context={
                "created_time": record.get("createdTime"),
                "url": self.record_url(info.id, record["id"]),
            },
            created=_iso_ms(record["createdTime"]) if record.get("createdTime") else None,
        )

    # -- webhooks ------------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest) -> str:
        return self.webhooks.verify(request)

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        return self.webhooks.hints(request)

    def acknowledge_webhook(self, request: WebhookRequest) -> None:
        self.webhooks.acknowledge(request)

    def attach(self, state: Any, secrets: Any) -> None:
        """Webhook secrets go to the secret file, payload cursors to the key-value store."""
        super().attach(state, secrets)
        self.registry = StoredWebhookRegistry(state, secrets)

    def ensure_webhooks(
        self, notification_url: str, aliases: list[str] | None = None
    ) -> dict[str, str]:
        """Create the webhooks needed (one per table of `aliases`, default all);
        returns alias -> webhook id."""
        return self.webhooks.ensure(notification_url, aliases)

    def watched_tables(self, rules: Any) -> list[str]:
        """Aliases of the tables whose changes the rules react to (what needs a webhook)."""
        found: list[str] = []
        for compiled in rules.rules:
            trigger = compiled.rule.when
            if getattr(trigger, "source", None) == self.name and trigger.object not in found:
                found.append(trigger.object)
        return found

    def refresh_webhooks(self) -> RefreshReport:
        """Extend the webhooks' 7-day life (call daily); recreate expired ones."""
        return self.webhooks.refresh()

    def housekeeping(self) -> None:
        """The daemon calls this every few hours: webhooks never reach their expiry."""
        self.refresh_webhooks()

    # -- reading -------------------------------------------------------------------------

    def fetch(self, ref: ObjectRef) -> Observation | None:
        info, table = self._table(ref.type)
        try:
            with airtable_errors(write=False):
                record = table.get(ref.id)
        except NotFound:
            return None
        return self.observation(ref.type, info, record)

    # Records per listing (Airtable's page size cap).
    fetch_batch_size = 100

    def fetch_many(self, refs: list[ObjectRef]) -> dict[ObjectRef, Observation]:
        """Records of one table by one listing, `OR(RECORD_ID()='rec..', ...)`; a record it
        does not return (deleted) is left out, for the inbox to fetch alone."""
        aliases = {ref.type for ref in refs}
        if len(aliases) != 1:
            raise PermanentError("fetch_many reads one table at a time")
        alias = aliases.pop()
        info, table = self._table(alias)
        ids = ", ".join(f"RECORD_ID()={to_formula_str(ref.id)}" for ref in refs)
        page = self._list_page(table, {"page_size": len(refs), "formula": f"OR({ids})"})
        found = [self.observation(alias, info, record) for record in page.get("records") or []]
        return {obs.ref: obs for obs in found}

    def _list_page(self, table: Table, options: dict[str, Any]) -> dict[str, Any]:
        with airtable_errors(write=False):
            page = self.api.request(
                "GET",
                table.urls.records,
                fallback=("POST", table.urls.records_post),
                options=options,
            )
        return page if isinstance(page, dict) else {}

    def poll(self, object_type: str, cursor: str | None) -> PollPage:
        state = PollCursor.decode(cursor)
        info, table = self._table(object_type)
        sort_field = self.version_field(object_type, info)
        if not state.offset or state.started is None:
            state = PollCursor(since=state.since, started=to_ms(self.clock.now()))
        try:
            page = self._list_page(table, list_options(state, self.settings.page_size, sort_field))
        except IteratorExpired:
            # Restart the listing from the same `since`, keeping `started`: nothing is lost.
            page = self._list_page(
                table, list_options(state, self.settings.page_size, sort_field, False)
            )
        observations = [self.observation(object_type, info, r) for r in page.get("records", [])]
        if page.get("offset"):
            next_cursor = PollCursor(state.since, state.started, str(page["offset"]))
            return PollPage(observations, next_cursor.encode(), more=True)
        assert state.started is not None
        overlap_ms = int(self.settings.poll_overlap_seconds * 1000)
        return PollPage(observations, PollCursor(since=state.started - overlap_ms).encode())

    def poll_streams(self) -> list[str]:
        return list(self.settings.poll_tables or self.settings.tables)

    def query(self, object_type: str, query: dict[str, Any]) -> Iterator[Observation]:
        """Rows matching `{"formula": "<Airtable formula>", "where": {field: value}}` (both
        optional, combined with AND), e.g. `{"where": {"Status": "Active Service"}}`."""
        unknown = set(query) - QUERY_KEYS
        if unknown:
            raise PermanentError(f"unknown Airtable query keys {sorted(unknown)}")
        parts = [query["formula"]] if query.get("formula") else []
        if query.get("where"):
            parts.append(to_formula_str(match(query["where"])))
        info, table = self._table(object_type)
        options: dict[str, Any] = {"page_size": self.settings.page_size}
        if parts:
            options["formula"] = parts[0] if len(parts) == 1 else f"AND({parts[0]},{parts[1]})"
        seen: set[str] = set()
        offset: str | None = None
        restarts = 0
        while True:
            try:
                page = self._list_page(table, {**options, **({"offset": offset} if offset else {})})
            except IteratorExpired:
                restarts += 1
                if restarts > MAX_LISTING_RESTARTS:
                    raise TransientError("Airtable list offsets keep expiring") from None
                offset = None  # start again; rows already yielded are skipped
                continue
            for record in page.get("records", []):
                if record["id"] not in seen:
                    seen.add(record["id"])
                    yield self.observation(object_type, info, record)
            offset = page.get("offset")
            if not offset:
                return

    # -- housekeeping ----------------------------------------------------------------------

    def secret_values(self) -> list[str]:
        return super().secret_values() + [
            r.mac_secret_base64 for r in self.registry.all() if r.mac_secret_base64
        ]

    def close(self) -> None:
        self.api.session.close()

    def governors(self) -> list[Governor]:
        return [self.governor]
