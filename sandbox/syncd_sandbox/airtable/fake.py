"""A local fake of Airtable's Web API for one base: records, schema, webhooks, rate limit.

Used by the connector's tests and by the `syncd demo` sandbox. It answers on the same paths
with the same JSON shapes as api.airtable.com (pyairtable talks to it unchanged through
`Api(token, endpoint_url=server.url)`), on an injectable clock:

- records per table with `createdTime` and a last-modified time; fields of type
  `lastModifiedTime` / `createdTime` are computed, like Airtable's;
- list with `filterByFormula` (see `fake_formula`), `sort`, `pageSize` <= 100 and `offset`
  iterators that expire (422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE);
- create, update (PATCH merges, PUT replaces) and upsert (`performUpsert.fieldsToMergeOn`),
  at most 10 records per request; unknown field names are a 422;
- the base schema (`GET /v0/meta/bases/{base}/tables`);
- webhooks (see `fake_webhooks`);
- 5 requests/s per base with a 30 s lock-out, and injected faults (see `fake_limits`).

Tests act "as a user would" through `user_create` / `user_update` / `user_delete`, which
append webhook payloads, and build the signed ping with `signed_ping`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from syncd.clock import Clock, SystemClock, to_ms
from syncd_sandbox.airtable.fake_formula import (
    FormulaError,
    FormulaRecord,
    compile_formula,
    matches,
)
from syncd_sandbox.airtable.fake_limits import BaseRateLimit, Fault, base_of
from syncd_sandbox.airtable.fake_webhooks import MAX_PAYLOADS_PER_PAGE, FakeWebhooks, iso_ms
from syncd_sandbox.fakeserver import FakeApp, FakeRequest, FakeResponse

MAX_PAGE_SIZE = 100
MAX_RECORDS_PER_WRITE = 10
COMPUTED_TYPES = {"lastModifiedTime", "createdTime", "formula", "autoNumber"}


def error(status: int, type_: str, message: str) -> FakeResponse:
    return FakeResponse(status, {"error": {"type": type_, "message": message}})


class ApiError(Exception):
    """Raised inside a handler; becomes Airtable's error JSON."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.response = error(status, type_, message)


@dataclass
class FakeField:
    id: str
    name: str
    type: str

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type}
        if self.type == "lastModifiedTime":
            out["options"] = {
                "isValid": True,
                "referencedFieldIds": [],
                "result": {"type": "dateTime"},
            }
        elif self.type == "number":
            out["options"] = {"precision": 0}
        return out


@dataclass
class FakeRecord:
    id: str
    fields: dict[str, Any]
    created_ms: int
    modified_ms: int


@dataclass
class FakeTable:
    id: str
    name: str
    fields: list[FakeField]
    records: dict[str, FakeRecord] = field(default_factory=dict)

    def field_named(self, name: str) -> FakeField | None:
        return next((f for f in self.fields if f.name == name or f.id == name), None)

    def render(self, record: FakeRecord) -> dict[str, Any]:
        """A record as the API shows it: empty values omitted, computed fields filled in."""
        fields: dict[str, Any] = {}
        for f in self.fields:
            if f.type == "lastModifiedTime":
                fields[f.name] = iso_ms(record.modified_ms)
            elif f.type == "createdTime":
                fields[f.name] = iso_ms(record.created_ms)
            elif record.fields.get(f.name) not in (None, "", [], False):
                fields[f.name] = record.fields[f.name]
        return {"id": record.id, "createdTime": iso_ms(record.created_ms), "fields": fields}


@dataclass
class _Iterator:
    ids: list[str]
    created_ms: int


class FakeAirtable:
    """One fake base. `app` is served by `syncd_sandbox.fakeserver.FakeServer`."""

    def __init__(
        self,
        token: str = "patFakeToken.0000",
        base_id: str = "appFakeBase000001",
        clock: Clock | None = None,
        iterator_ttl_seconds: float = 300.0,
    ) -> None:
        self.token = token
        self.base_id = base_id
        self.clock = clock or SystemClock()
        self.iterator_ttl_ms = int(iterator_ttl_seconds * 1000)
        self.tables: dict[str, FakeTable] = {}
        self.webhooks = FakeWebhooks(base_id)
        self.rate_limit = BaseRateLimit()
        self.faults: list[Fault] = []
        self._iterators: dict[str, _Iterator] = {}
        self._counter = 0
        self.app = FakeApp()
        self.app.before.append(self._before)
        self.app.after.append(self._after)
        self._routes()

    # -- setting up and acting as a user -----------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter:014d}"

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def create_table(self, name: str, fields: dict[str, str]) -> str:
        """Add a table; `fields` maps field name -> Airtable field type. Returns its id."""
        with self.app.lock:
            table = FakeTable(
                self._new_id("tbl"),
                name,
                [FakeField(self._new_id("fld"), n, t) for n, t in fields.items()],
            )
            self.tables[table.id] = table
            return table.id

    def table(self, id_or_name: str) -> FakeTable:
        found = self.tables.get(id_or_name) or next(
            (t for t in self.tables.values() if t.name == id_or_name), None
        )
        if found is None:
            raise ApiError(404, "TABLE_NOT_FOUND", f"Could not find table {id_or_name}")
        return found

    def user_create(self, table: str, fields: dict[str, Any]) -> str:
        with self.app.lock:
            return self._create(self.table(table), fields, "client")["id"]

    def user_update(self, table: str, record_id: str, fields: dict[str, Any]) -> None:
        with self.app.lock:
            self._update(self.table(table), record_id, fields, False, "client")

    def user_delete(self, table: str, record_id: str) -> None:
        with self.app.lock:
            found = self.table(table)
            found.records.pop(record_id)
            self.webhooks.record_change(
                found.id, {"destroyedRecordIds": [record_id]}, "client", self.now_ms()
            )

    def records(self, table: str) -> list[dict[str, Any]]:
        """Every record of a table as the API renders it (for assertions)."""
        with self.app.lock:
            found = self.table(table)
            return [found.render(r) for r in found.records.values()]

    def signed_ping(self, webhook_id: str) -> tuple[dict[str, str], bytes]:
        """Headers and body of the notification Airtable would POST for this webhook."""
        with self.app.lock:
            hook = self.webhooks.get(webhook_id, self.now_ms())
            if hook is None:
                raise KeyError(webhook_id)
            return self.webhooks.ping(hook, self.now_ms())

    def expire_iterators(self) -> None:
        """Every open list offset becomes invalid (the next page answers 422)."""
        with self.app.lock:
            self._iterators.clear()

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int | None = 502,
        applied: bool = True,
        count: int = 1,
    ) -> None:
        """Inject a fault for the next matching requests (see `Fault`)."""
        with self.app.lock:
            self.faults.append(Fault(method, path, status, applied, count))

    def force_rate_limit(self, count: int = 1) -> None:
        """The next `count` requests get 429 (and start the 30 s lock-out)."""
        with self.app.lock:
            self.rate_limit.forced += count

    @property
    def over_limit_requests(self) -> int:
        return self.rate_limit.over_limit

    # -- hooks ---------------------------------------------------------------------------

    def _before(self, request: FakeRequest) -> FakeResponse | None:
        with self.app.lock:
            base = base_of(request.path)
            if base is not None:
                limited = self.rate_limit.check(self.clock.now().timestamp())
                if limited is not None:
                    return limited
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return error(401, "AUTHENTICATION_REQUIRED", "Authentication required")
            if base is not None and base != self.base_id:
                return error(404, "NOT_FOUND", "Could not find base")
            for fault in self.faults:
                if not fault.applied and fault.matches(request):
                    return fault.answer()
        return None

    def _after(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        with self.app.lock:
            if response.status >= 400:
                return response
            for fault in self.faults:
                if fault.applied and fault.matches(request):
                    return fault.answer()
        return response

    # -- routes --------------------------------------------------------------------------

    def _route(self, method: str, pattern: str) -> Callable[..., Any]:
        def wrap(fn: Callable[[FakeRequest], Any]) -> None:
            def handler(request: FakeRequest) -> FakeResponse:
                with self.app.lock:
                    try:
                        result = fn(request)
                    except ApiError as exc:
                        return exc.response
                return result if isinstance(result, FakeResponse) else FakeResponse(200, result)

            self.app.route(method, pattern)(handler)

        return wrap

    def _routes(self) -> None:
        from syncd_sandbox.airtable.fake_routes import register

        register(self)

    # -- record operations (the caller holds the lock) ------------------------------------

    def _check_writable(self, table: FakeTable, fields: dict[str, Any]) -> None:
        for name in fields:
            found = table.field_named(name)
            if found is None:
                raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            if found.type in COMPUTED_TYPES:
                raise ApiError(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    f'Field "{name}" cannot accept a value because the field is computed',
                )

    def _by_name(self, table: FakeTable, fields: dict[str, Any]) -> dict[str, Any]:
        """Accept field ids as well as names; store by name."""
        return {table.field_named(k).name: v for k, v in fields.items()}  # type: ignore[union-attr]

    def _field_ids(self, table: FakeTable, fields: dict[str, Any]) -> dict[str, Any]:
        return {table.field_named(k).id: v for k, v in fields.items()}  # type: ignore[union-attr]

    def _create(self, table: FakeTable, fields: dict[str, Any], source: str) -> dict[str, Any]:
        self._check_writable(table, fields)
        now = self.now_ms()
        record = FakeRecord(self._new_id("rec"), self._by_name(table, fields), now, now)
        table.records[record.id] = record
        self.webhooks.record_change(
            table.id,
            {
                "createdRecordsById": {
                    record.id: {
                        "createdTime": iso_ms(now),
                        "cellValuesByFieldId": self._field_ids(table, record.fields),
                    }
                }
            },
            source,
            now,
        )
        return table.render(record)

    def _update(
        self, table: FakeTable, record_id: str, fields: dict[str, Any], replace: bool, source: str
    ) -> dict[str, Any]:
        self._check_writable(table, fields)
        record = table.records.get(record_id)
        if record is None:
            raise ApiError(404, "MODEL_ID_NOT_FOUND", f"Could not find record {record_id}")
        new = self._by_name(table, fields)
        merged = new if replace else {**record.fields, **new}
        changed = {
            k for k in set(merged) | set(record.fields) if merged.get(k) != record.fields.get(k)
        }
        if changed:  # writing the same values is not a change (no new modified time)
            previous = {k: record.fields.get(k) for k in changed}
            record.fields = merged
            record.modified_ms = max(self.now_ms(), record.modified_ms + 1)
            self.webhooks.record_change(
                table.id,
                {
                    "changedRecordsById": {
                        record.id: {
                            "current": {
                                "cellValuesByFieldId": self._field_ids(
                                    table, {k: merged.get(k) for k in changed}
                                )
                            },
                            "previous": {"cellValuesByFieldId": self._field_ids(table, previous)},
                        }
                    }
                },
                source,
                record.modified_ms,
            )
        return table.render(record)

    def _upsert(
        self, table: FakeTable, records: list[dict[str, Any]], merge_on: list[str], replace: bool
    ) -> dict[str, Any]:
        self._check_writable(table, {name: None for name in merge_on})
        created: list[str] = []
        updated: list[str] = []
        out: list[dict[str, Any]] = []
        for item in records:
            fields = item.get("fields", {})
            if "id" in item:
                out.append(self._update(table, item["id"], fields, replace, "publicApi"))
                updated.append(item["id"])
                continue
            missing = [name for name in merge_on if name not in fields]
            if missing:
                raise ApiError(
                    422,
                    "INVALID_REQUEST_UNKNOWN",
                    f"fieldsToMergeOn missing from record: {missing}",
                )
            key = self._by_name(table, {name: fields[name] for name in merge_on})
            found = [
                r
                for r in table.records.values()
                if all(r.fields.get(k) == v for k, v in key.items())
            ]
            if len(found) > 1:
                raise ApiError(
                    422, "INVALID_VALUE_FOR_COLUMN", "more than one record matches fieldsToMergeOn"
                )
            if found:
                out.append(self._update(table, found[0].id, fields, replace, "publicApi"))
                updated.append(found[0].id)
            else:
                rendered = self._create(table, fields, "publicApi")
                out.append(rendered)
                created.append(rendered["id"])
        return {"createdRecords": created, "updatedRecords": updated, "records": out}

    def _list(self, table: FakeTable, options: dict[str, Any]) -> dict[str, Any]:
        page_size = int(options.get("pageSize") or MAX_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ApiError(422, "INVALID_PAGE_SIZE", "pageSize must be 1..100")
        offset = options.get("offset")
        now = self.now_ms()
        if offset:
            iterator_id, _, position_id = str(offset).partition("/")
            iterator = self._iterators.get(iterator_id)
            if iterator is None or iterator.created_ms + self.iterator_ttl_ms <= now:
                self._iterators.pop(iterator_id, None)
                raise ApiError(
                    422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", "Iterator is not available"
                )
            start = iterator.ids.index(position_id) if position_id in iterator.ids else 0
        else:
            iterator_id = self._new_id("itr")
            iterator = _Iterator(self._matching(table, options), now)
            start = 0
        chosen = iterator.ids[start : start + page_size]
        body: dict[str, Any] = {
            "records": [table.render(table.records[i]) for i in chosen if i in table.records]
        }
        wanted = options.get("fields")
        if wanted:
            for record in body["records"]:
                record["fields"] = {k: v for k, v in record["fields"].items() if k in wanted}
        if start + page_size < len(iterator.ids):
            self._iterators[iterator_id] = iterator
            body["offset"] = f"{iterator_id}/{iterator.ids[start + page_size]}"
        return body

    def _matching(self, table: FakeTable, options: dict[str, Any]) -> list[str]:
        try:
            formula = compile_formula(options.get("filterByFormula") or "")
            rows = [
                r
                for r in table.records.values()
                if matches(
                    formula,
                    FormulaRecord(r.id, table.render(r)["fields"], r.created_ms, r.modified_ms),
                )
            ]
        except FormulaError as exc:
            raise ApiError(422, "INVALID_FILTER_BY_FORMULA", str(exc)) from None
        for sort in reversed(options.get("sort") or []):
            found = table.field_named(sort.get("field", ""))
            if found is None:
                raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{sort}"')
            rows.sort(
                key=lambda r, f=found: _sort_key(table, r, f),
                reverse=sort.get("direction") == "desc",
            )
        max_records = options.get("maxRecords")
        ids = [r.id for r in rows]
        return ids[: int(max_records)] if max_records else ids

    def _payloads(self, hook_id: str, cursor: int, limit: int) -> dict[str, Any]:
        hook = self.webhooks.get(hook_id, self.now_ms())
        if hook is None:
            raise ApiError(404, "NOT_FOUND", f"Could not find webhook {hook_id}")
        self.webhooks.refresh(hook, self.now_ms())  # listing payloads extends the life
        return hook.page(cursor, min(limit, MAX_PAYLOADS_PER_PAGE))


def _sort_key(table: FakeTable, record: FakeRecord, f: FakeField) -> tuple[int, Any]:
    value = table.render(record)["fields"].get(f.name)
    return (0, "") if value is None else (1, value if not isinstance(value, list) else str(value))


def table_path(request: FakeRequest) -> str:
    return unquote(request.params["table"])
