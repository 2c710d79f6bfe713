"""The HTTP routes of the fake Airtable (paths and shapes of api.airtable.com/v0)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pydantic
from pyairtable.models.webhook import CreateWebhook

from syncd_sandbox.airtable.fake_webhooks import MAX_PAYLOADS_PER_PAGE, iso_ms
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from syncd_sandbox.airtable.fake import FakeAirtable

_B = r"(?P<base>app[A-Za-z0-9]+)"
_T = r"(?P<table>[^/]+)"
_H = r"(?P<hook>ach[A-Za-z0-9]+)"
_SORT_PARAM = re.compile(r"^sort\[(\d+)\]\[(field|direction)\]$")


def list_options_from_query(request: FakeRequest) -> dict[str, Any]:
    """GET list parameters (`sort[0][field]=...`, `fields[]=...`) as the POST body shape."""
    options: dict[str, Any] = {}
    sorts: dict[int, dict[str, str]] = {}
    for key, values in request.query.items():
        match = _SORT_PARAM.match(key)
        if match:
            sorts.setdefault(int(match.group(1)), {})[match.group(2)] = values[0]
        elif key in ("fields[]", "fields"):
            options["fields"] = values
        else:
            options[key] = values[0]
    if sorts:
        options["sort"] = [sorts[i] for i in sorted(sorts)]
    return options


def register(fake: FakeAirtable) -> None:
    from syncd_sandbox.airtable.fake import ApiError, error, table_path

    route = fake._route

    @route("GET", rf"/v0/meta/bases/{_B}/tables")
    def schema(request: FakeRequest) -> Any:
        return {
            "tables": [
                {
                    "id": t.id,
                    "name": t.name,
                    "primaryFieldId": t.fields[0].id if t.fields else None,
                    "fields": [f.to_api() for f in t.fields],
                    "views": [{"id": f"viw{t.id[3:]}", "name": "Grid view", "type": "grid"}],
                }
                for t in fake.tables.values()
            ]
        }

    @route("GET", rf"/v0/bases/{_B}/webhooks")
    def list_webhooks(request: FakeRequest) -> Any:
        return {"webhooks": [h.to_api() for h in fake.webhooks.live(fake.now_ms())]}

    @route("POST", rf"/v0/bases/{_B}/webhooks")
    def create_webhook(request: FakeRequest) -> Any:
        body = request.json() or {}
        try:  # what Airtable accepts, as pyairtable models it
            CreateWebhook.model_validate(body)
        except pydantic.ValidationError as exc:
            raise ApiError(
                422, "INVALID_REQUEST_UNKNOWN", f"invalid webhook: {exc.error_count()} errors"
            ) from None
        hook = fake.webhooks.create(body, fake.now_ms())
        return {
            "id": hook.id,
            "macSecretBase64": hook.mac_secret_base64,
            "expirationTime": iso_ms(hook.expiration_ms),
        }

    def existing_hook(request: FakeRequest) -> Any:
        hook = fake.webhooks.get(request.params["hook"], fake.now_ms())
        if hook is None:
            raise ApiError(404, "NOT_FOUND", "Could not find webhook")
        return hook

    @route("DELETE", rf"/v0/bases/{_B}/webhooks/{_H}")
    def delete_webhook(request: FakeRequest) -> Any:
        fake.webhooks.hooks.pop(existing_hook(request).id)
        return FakeResponse(200, b"")

    @route("POST", rf"/v0/bases/{_B}/webhooks/{_H}/refresh")
    def refresh_webhook(request: FakeRequest) -> Any:
        hook = existing_hook(request)
        fake.webhooks.refresh(hook, fake.now_ms())
        return {"expirationTime": iso_ms(hook.expiration_ms)}

    @route("POST", rf"/v0/bases/{_B}/webhooks/{_H}/enableNotifications")
    def enable_notifications(request: FakeRequest) -> Any:
        existing_hook(request).notifications_enabled = bool((request.json() or {})["enable"])
        return FakeResponse(200, b"")

    @route("GET", rf"/v0/bases/{_B}/webhooks/{_H}/payloads")
    def list_payloads(request: FakeRequest) -> Any:
        try:
            cursor = int(request.arg("cursor", "1") or 1)
            limit = int(request.arg("limit", str(MAX_PAYLOADS_PER_PAGE)) or 1)
        except ValueError:
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", "cursor must be an integer") from None
        return fake._payloads(request.params["hook"], cursor, limit)

    @route("POST", rf"/v0/{_B}/{_T}/listRecords")
    def list_records_post(request: FakeRequest) -> Any:
        return fake._list(fake.table(table_path(request)), request.json() or {})

    @route("GET", rf"/v0/{_B}/{_T}")
    def list_records(request: FakeRequest) -> Any:
        return fake._list(fake.table(table_path(request)), list_options_from_query(request))

    @route("POST", rf"/v0/{_B}/{_T}")
    def create_records(request: FakeRequest) -> Any:
        table = fake.table(table_path(request))
        body = request.json() or {}
        if "records" not in body:
            return fake._create(table, body.get("fields", {}), "publicApi")
        if len(body["records"]) > 10:
            raise ApiError(422, "INVALID_RECORDS", "at most 10 records per request")
        return {
            "records": [
                fake._create(table, r.get("fields", {}), "publicApi") for r in body["records"]
            ]
        }

    def batch_write(request: FakeRequest, replace: bool) -> Any:
        table = fake.table(table_path(request))
        body = request.json() or {}
        records = body.get("records") or []
        if not 1 <= len(records) <= 10:
            raise ApiError(422, "INVALID_RECORDS", "1 to 10 records per request")
        upsert = body.get("performUpsert")
        if upsert is not None:
            return fake._upsert(table, records, list(upsert.get("fieldsToMergeOn") or []), replace)
        return {
            "records": [
                fake._update(table, r["id"], r.get("fields", {}), replace, "publicApi")
                for r in records
            ]
        }

    @route("PATCH", rf"/v0/{_B}/{_T}")
    def patch_records(request: FakeRequest) -> Any:
        return batch_write(request, replace=False)

    @route("PUT", rf"/v0/{_B}/{_T}")
    def put_records(request: FakeRequest) -> Any:
        return batch_write(request, replace=True)

    @route("GET", rf"/v0/{_B}/{_T}/(?P<record>rec[A-Za-z0-9]+)")
    def get_record(request: FakeRequest) -> Any:
        table = fake.table(table_path(request))
        record = table.records.get(request.params["record"])
        if record is None:
            return error(404, "MODEL_ID_NOT_FOUND", "Could not find record")
        return table.render(record)

    @route("PATCH", rf"/v0/{_B}/{_T}/(?P<record>rec[A-Za-z0-9]+)")
    def patch_record(request: FakeRequest) -> Any:
        body = request.json() or {}
        return fake._update(
            fake.table(table_path(request)),
            request.params["record"],
            body.get("fields", {}),
            False,
            "publicApi",
        )

    @route("PUT", rf"/v0/{_B}/{_T}/(?P<record>rec[A-Za-z0-9]+)")
    def put_record(request: FakeRequest) -> Any:
        body = request.json() or {}
        return fake._update(
            fake.table(table_path(request)),
            request.params["record"],
            body.get("fields", {}),
            True,
            "publicApi",
        )
