"""Airtable actions: `upsert` (by merge fields) and `update` (by record id).

Both are idempotent (the same call twice leaves the same row), so the executor may simply
perform them again after an uncertain failure: no finder needed. `upsert` uses
`PATCH .../{table}` with `performUpsert.fieldsToMergeOn`, Airtable's own create-or-update by
key, which is also the marker that makes W1's "add or update the community's row" safe.
"""

from __future__ import annotations

from typing import Any, Protocol

from pyairtable import Api
from pydantic import Field

from connectors.airtable.client import airtable_errors
from connectors.airtable.schema import TableInfo
from connectors.airtable.settings import AirtableSettings
from syncd.sdk import ActionContext, ActionResult, ParamsModel, PermanentError, action

MAX_RECORDS_PER_REQUEST = 10


class UpsertParams(ParamsModel):
    """Create or update the row whose `merge_on` fields equal those in `fields`."""

    table: str  # table alias from the settings
    merge_on: list[str] = Field(min_length=1, max_length=3)
    fields: dict[str, Any]
    typecast: bool = False


class UpdateParams(ParamsModel):
    """Write `fields` on one row (fields not named are left as they are)."""

    table: str
    record_id: str = Field(pattern=r"^rec[A-Za-z0-9]+$")
    fields: dict[str, Any]
    typecast: bool = False


def _check_merge_keys(merge_on: list[str], fields: dict[str, Any]) -> None:
    missing = [name for name in merge_on if name not in fields]
    if missing:
        raise PermanentError(f"upsert fields lack the merge key(s) {missing}")


class AirtableHost(Protocol):
    """What the actions use of the connector they are mixed into (no import of it: no cycle)."""

    settings: AirtableSettings
    api: Api

    def table_info(self, alias: str) -> TableInfo: ...

    def record_url(self, table_id: str, record_id: str) -> str: ...

    def upsert_many(
        self, alias: str, merge_on: list[str], rows: list[dict[str, Any]], *, typecast: bool = False
    ) -> list[ActionResult]: ...


class AirtableActions:
    """Mixed into AirtableConnector: the actions, declared with `@action`."""

    @action("upsert", UpsertParams, idempotent=True)
    def upsert(self: AirtableHost, params: UpsertParams, ctx: ActionContext) -> ActionResult:
        """Create or update a row, matched on `merge_on` (Airtable performUpsert)."""
        return self.upsert_many(
            params.table, params.merge_on, [params.fields], typecast=params.typecast
        )[0]

    @upsert.batcher(
        key=lambda p: (p.table, tuple(p.merge_on), p.typecast), size=MAX_RECORDS_PER_REQUEST
    )
    def upsert_batch(
        self: AirtableHost, batch: list[UpsertParams], ctxs: list[ActionContext]
    ) -> list[ActionResult]:
        """Several upserts of one table in one request. Rows with the same merge values go
        in separate requests, in order (Airtable refuses duplicates within one request)."""
        first = batch[0]
        results: list[ActionResult] = []
        pending: list[UpsertParams] = []
        seen: set[tuple[Any, ...]] = set()

        def flush() -> None:
            if pending:
                results.extend(
                    self.upsert_many(
                        first.table,
                        first.merge_on,
                        [p.fields for p in pending],
                        typecast=first.typecast,
                    )
                )
                pending.clear()
                seen.clear()

        for params in batch:
            values = tuple(repr(params.fields.get(name)) for name in first.merge_on)
            if values in seen:
                flush()
            seen.add(values)
            pending.append(params)
        flush()
        return results

    @action("update", UpdateParams, idempotent=True)
    def update(self: AirtableHost, params: UpdateParams, ctx: ActionContext) -> ActionResult:
        """Write fields on one row by record id."""
        info = self.table_info(params.table)
        table = self.api.table(self.settings.base_id, info.id)
        with airtable_errors(write=True):
            record = table.update(params.record_id, params.fields, typecast=params.typecast)
        return ActionResult(external_id=record["id"], url=self.record_url(info.id, record["id"]))

    def upsert_many(
        self: AirtableHost,
        alias: str,
        merge_on: list[str],
        rows: list[dict[str, Any]],
        *,
        typecast: bool = False,
    ) -> list[ActionResult]:
        """Upsert several rows of one table, 10 per request (Airtable's batch limit).

        The results are in the order of `rows`. A failure part-way leaves earlier batches
        applied; performing the whole call again is safe (upserts are idempotent).
        """
        for fields in rows:
            _check_merge_keys(merge_on, fields)
        info = self.table_info(alias)
        table = self.api.table(self.settings.base_id, info.id)
        with airtable_errors(write=True):
            result = table.batch_upsert(
                [{"fields": f} for f in rows], key_fields=merge_on, typecast=typecast
            )
        return [
            ActionResult(external_id=r["id"], url=self.record_url(info.id, r["id"]))
            for r in result["records"]
        ]
