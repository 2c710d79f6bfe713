"""A local fake of HubSpot's CRM API for tests and the `syncd demo` sandbox.

It answers the paths and JSON shapes `hubspot-api-client` deserialises (read from the models
generated inside the package): deals with property history, search with a result cap,
batch read, pipelines, properties, v4 associations with labels, companies, contacts, owners
and notes. Misbehaviour on demand: rate limits on an injected clock, injected faults.

    fake = FakeHubSpot(clock=clock, search_cap=50)
    with fake.serve() as server:
        client = HubSpot(access_token=fake.token, host=server.url)
"""

from __future__ import annotations

import re
import time
from typing import Any

from connectors.hubspot.signing import signed_request
from connectors.hubspot.timefmt import iso
from syncd.clock import Clock, SystemClock
from syncd_sandbox.fakeserver import FakeApp, FakeRequest, FakeResponse, FakeServer
from syncd_sandbox.hubspot.fake_data import (
    DEAL_PROPERTIES,
    OBJECT_TYPE_IDS,
    TYPE_ALIASES,
    Portal,
    Record,
)
from syncd_sandbox.hubspot.fake_limits import Fault, Faults, RateLimits, error_body
from syncd_sandbox.hubspot.fake_search import SearchError, search

DEFAULT_PROPERTIES = {
    "deals": ["dealname", "amount", "closedate", "pipeline", "dealstage"],
    "companies": ["name", "domain"],
    "contacts": ["firstname", "lastname", "email"],
    "notes": ["hs_note_body", "hs_timestamp"],
}
ALWAYS = ["hs_object_id", "createdate", "hs_lastmodifieddate"]
OBJ = r"/crm/v3/objects/(?P<type>[a-z0-9_-]+)"
V4_OBJ = r"/crm/v4/objects/(?P<type>[a-z0-9_-]+)/(?P<id>[^/]+)/associations/(?P<to>[a-z0-9_-]+)"
V4_BATCH = r"/crm/v4/associations/(?P<type>[a-z0-9_-]+)/(?P<to>[a-z0-9_-]+)/batch/read"


def _list_arg(request: FakeRequest, name: str) -> list[str]:
    """A list parameter sent repeated (the client's "multi" format) or comma-separated."""
    out: list[str] = []
    for value in request.query.get(name, []):
        out.extend(v for v in value.split(",") if v)
    return out


def _not_found(what: str) -> FakeResponse:
    return FakeResponse(404, error_body(f"{what} not found", "OBJECT_NOT_FOUND"))


class FakeHubSpot:
    def __init__(
        self,
        clock: Clock | None = None,
        *,
        token: str = "fake-hubspot-token",
        app_secret: str = "fake-hubspot-app-secret",
        search_cap: int = 10_000,
        general_limit: int = 100,
        search_limit: int = 4,
        portal_id: int = 62515,
        latency_seconds: float = 0.0,
    ) -> None:
        self.clock = clock or SystemClock()
        # A fixed real-time delay before every answer (benchmarks: makes round trips cost).
        self.latency_seconds = latency_seconds
        self.token = token
        self.app_secret = app_secret
        self.search_cap = search_cap
        self.portal = Portal(self.clock, portal_id)
        self.limits = RateLimits(self.clock, general_limit, search_limit)
        self.faults = Faults()
        self.app = FakeApp()
        self.app.before += [self._delay, self._fault_before, self._check_auth, self.limits.check]
        self.app.after += [self._fault_after, self._rate_headers, self._record_answer]
        self.answers: list[tuple[str, str, int]] = []  # (method, path, status) of each reply
        self._routes()

    def serve(self, port: int = 0) -> FakeServer:
        return FakeServer(self.app, port)

    # -- driving it like a user --------------------------------------------------------

    def create_deal(self, **properties: Any) -> str:
        return self.portal.create("deals", properties).id

    def update_deal(self, deal_id: str, **properties: Any) -> None:
        self.portal.update("deals", deal_id, properties)

    def move_deal(self, deal_id: str, *stages: str, step_seconds: float = 60) -> None:
        """Move a deal through stages one at a time, a little time apart, as a user would."""
        for stage in stages:
            advance = getattr(self.clock, "advance", None)
            if advance is not None:
                advance(step_seconds)
            self.portal.update("deals", deal_id, {"dealstage": stage})

    def add_contact(self, deal_id: str, role: str | None = None, **properties: Any) -> str:
        contact = self.portal.create("contacts", properties)
        self.portal.associate("deals", deal_id, "contacts", contact.id, role)
        return contact.id

    def add_company(self, deal_id: str, *, primary: bool = True, **properties: Any) -> str:
        company = self.portal.create("companies", properties)
        self.portal.associate("deals", deal_id, "companies", company.id, primary=primary)
        return company.id

    def notes_of(self, deal_id: str) -> list[str]:
        """Bodies of the notes attached to a deal, oldest first."""
        ids = sorted(self.portal.associated("deals", deal_id, "notes"), key=int)
        notes = [self.portal.get("notes", i) for i in ids]
        return [n.properties.get("hs_note_body") or "" for n in notes if n is not None]

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
        applied_first: bool = False,
    ) -> None:
        """The next `count` matching calls fail (status 0: connection reset)."""
        self.faults.add(
            Fault(
                status,
                count,
                method,
                re.compile(path) if path else None,
                retry_after,
                applied_first,
            )
        )

    def webhook(
        self, url: str, events: list[dict[str, Any]] | None = None, timestamp_ms: int | None = None
    ) -> tuple[dict[str, str], bytes]:
        """A v3-signed delivery of `events` (default: every change not yet delivered)."""
        batch = self.portal.take_events() if events is None else events
        stamp = self.portal.now_ms() if timestamp_ms is None else timestamp_ms
        return signed_request(self.app_secret, url, batch, stamp)

    # -- hooks -------------------------------------------------------------------------

    def _delay(self, request: FakeRequest) -> None:
        if self.latency_seconds > 0:
            time.sleep(self.latency_seconds)

    def _fault_before(self, request: FakeRequest) -> FakeResponse | None:
        fault = self.faults.take(request, applied_first=False)
        return None if fault is None else fault.response()

    def _fault_after(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if response.status >= 400:
            return response
        fault = self.faults.take(request, applied_first=True)
        return response if fault is None else fault.response()

    def _check_auth(self, request: FakeRequest) -> FakeResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return FakeResponse(
                401, error_body("Authentication credentials not found.", "INVALID_AUTHENTICATION")
            )
        return None

    def _rate_headers(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if response.status != 429:
            response.headers = {**self.limits.headers(request), **response.headers}
        return response

    def _record_answer(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        with self.app.lock:
            self.answers.append((request.method, request.path, response.status))
        return response

    # -- serialisation -----------------------------------------------------------------

    def _object_json(self, record: Record, props: list[str], history: list[str]) -> dict[str, Any]:
        wanted = (props or DEFAULT_PROPERTIES.get(record.object_type, [])) + ALWAYS
        out: dict[str, Any] = {
            "id": record.id,
            "properties": {p: record.properties.get(p) for p in dict.fromkeys(wanted)},
            "createdAt": iso(record.created_ms),
            "updatedAt": iso(record.updated_ms),
            "archived": False,
        }
        if history:
            out["propertiesWithHistory"] = {
                p: [
                    {
                        "value": value,
                        "timestamp": iso(ms),
                        "sourceType": source,
                        "sourceId": "userId:1",
                    }
                    for ms, value, source in reversed(record.history.get(p, []))
                ]
                for p in history
            }
        return out

    def _batch_json(self, results: list[dict[str, Any]], missing: list[str]) -> FakeResponse:
        stamp = iso(self.portal.now_ms())
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if not missing:
            return FakeResponse(200, body)
        body["numErrors"] = len(missing)
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some records",
                "context": {"ids": missing},
                "links": {},
                "errors": [],
            }
        ]
        return FakeResponse(207, body)

    # -- routes ------------------------------------------------------------------------

    def _type(self, request: FakeRequest, key: str = "type") -> str | None:
        return TYPE_ALIASES.get(request.params[key])

    def _routes(self) -> None:
        app = self.app

        @app.route("GET", OBJ + r"/(?P<id>[^/]+)")
        def get_object(req: FakeRequest) -> FakeResponse:
            kind = self._type(req)
            record = self.portal.get(kind, req.params["id"]) if kind else None
            if record is None:
                return _not_found("Object")
            return FakeResponse(
                200,
                self._object_json(
                    record, _list_arg(req, "properties"), _list_arg(req, "propertiesWithHistory")
                ),
            )

        @app.route("GET", OBJ)
        def list_objects(req: FakeRequest) -> FakeResponse:
            kind = self._type(req)
            if kind is None:
                return _not_found("Object type")
            limit = int(req.arg("limit", "10") or 10)
            history = _list_arg(req, "propertiesWithHistory")
            records = sorted(self.portal.live(kind), key=lambda r: int(r.id))
            after = int(req.arg("after", "0") or 0)
            page = [r for r in records if int(r.id) > after][:limit]
            body: dict[str, Any] = {
                "results": [
                    self._object_json(r, _list_arg(req, "properties"), history) for r in page
                ]
            }
            if page and int(page[-1].id) < int(records[-1].id):
                body["paging"] = {"next": {"after": page[-1].id, "link": ""}}
            return FakeResponse(200, body)

        @app.route("POST", OBJ)
        def create_object(req: FakeRequest) -> FakeResponse:
            kind = self._type(req)
            data = req.json() or {}
            if kind is None or not isinstance(data.get("properties"), dict):
                return FakeResponse(400, error_body("properties are required"))
            targets = []
            for assoc in data.get("associations") or []:
                to_id = str(assoc["to"]["id"])
                type_id = assoc["types"][0]["associationTypeId"]
                to_kind = "deals" if type_id == 214 else None
                if to_kind is None or self.portal.get(to_kind, to_id) is None:
                    return FakeResponse(400, error_body(f"cannot associate with {to_id}"))
                targets.append((to_kind, to_id, type_id))
            record = self.portal.create(kind, data["properties"], source="INTEGRATION")
            for to_kind, to_id, type_id in targets:
                self.portal.associate(kind, record.id, to_kind, to_id, type_id=type_id)
            return FakeResponse(201, self._object_json(record, list(data["properties"]), []))

        @app.route("PATCH", OBJ + r"/(?P<id>[^/]+)")
        def update_object(req: FakeRequest) -> FakeResponse:
            kind = self._type(req)
            data = req.json() or {}
            if kind is None or self.portal.get(kind, req.params["id"]) is None:
                return _not_found("Object")
            props = data.get("properties")
            if not isinstance(props, dict):
                return FakeResponse(400, error_body("properties are required"))
            if kind == "deals":
                unknown = set(props) - {name for name, _, _ in DEAL_PROPERTIES}
                if unknown:
                    return FakeResponse(
                        400,
                        error_body(
                            f"Property values were not valid: {sorted(unknown)} do not exist",
                            "VALIDATION_ERROR",
                        ),
                    )
            record = self.portal.update(kind, req.params["id"], props, source="INTEGRATION")
            return FakeResponse(200, self._object_json(record, list(props), []))

        @app.route("DELETE", OBJ + r"/(?P<id>[^/]+)")
        def archive_object(req: FakeRequest) -> FakeResponse:
            kind = self._type(req)
            if kind:
                self.portal.archive(kind, req.params["id"])
            return FakeResponse(204, None)

        @app.route("POST", OBJ + r"/search")
        def search_objects(req: FakeRequest) -> FakeResponse:
            kind = self._type(req)
            if kind is None:
                return _not_found("Object type")
            data = req.json() or {}
            try:
                page, total, after = search(self.portal.live(kind), data, self.search_cap)
            except SearchError as exc:
                return FakeResponse(400, error_body(str(exc)))
            body: dict[str, Any] = {
                "total": total,
                "results": [self._object_json(r, data.get("properties") or [], []) for r in page],
            }
            if after is not None:
                body["paging"] = {"next": {"after": after, "link": ""}}
            return FakeResponse(200, body)

        @app.route("POST", OBJ + r"/batch/read")
        def batch_read(req: FakeRequest) -> FakeResponse:
            kind = self._type(req)
            data = req.json() or {}
            inputs = data.get("inputs")
            if kind is None or not isinstance(inputs, list) or len(inputs) > 100:
                return FakeResponse(400, error_body("inputs: 1 to 100 ids"))
            history = data.get("propertiesWithHistory") or []
            if history and len(inputs) > 50:
                return FakeResponse(400, error_body("at most 50 ids with propertiesWithHistory"))
            results, missing = [], []
            for item in inputs:
                record = self.portal.get(kind, str(item.get("id")))
                if record is None:
                    missing.append(str(item.get("id")))
                else:
                    results.append(self._object_json(record, data.get("properties") or [], history))
            return self._batch_json(results, missing)

        @app.route("GET", r"/crm/v3/pipelines/(?P<type>[a-z0-9_-]+)")
        def pipelines(req: FakeRequest) -> FakeResponse:
            if self._type(req) != "deals":
                return FakeResponse(200, {"results": []})
            return FakeResponse(200, {"results": self.portal.pipelines})

        @app.route("GET", r"/crm/v3/pipelines/(?P<type>[a-z0-9_-]+)/(?P<pipeline>[^/]+)")
        def pipeline(req: FakeRequest) -> FakeResponse:
            for item in self.portal.pipelines:
                if item["id"] == req.params["pipeline"] and self._type(req) == "deals":
                    return FakeResponse(200, item)
            return _not_found("Pipeline")

        @app.route("GET", r"/crm/v3/properties/(?P<type>[a-z0-9_-]+)")
        def properties(req: FakeRequest) -> FakeResponse:
            if self._type(req) != "deals":
                return FakeResponse(200, {"results": []})
            stages = self.portal.pipelines[0]["stages"]
            return FakeResponse(
                200,
                {
                    "results": [
                        {
                            "name": name,
                            "label": label,
                            "type": kind,
                            "fieldType": "select" if kind == "enumeration" else "text",
                            "groupName": "dealinformation",
                            "description": "",
                            "hidden": False,
                            "options": [
                                {
                                    "label": s["label"],
                                    "value": s["id"],
                                    "hidden": False,
                                    "displayOrder": s["displayOrder"],
                                }
                                for s in stages
                            ]
                            if name == "dealstage"
                            else [],
                        }
                        for name, label, kind in DEAL_PROPERTIES
                    ]
                },
            )

        @app.route("GET", V4_OBJ)
        def associations(req: FakeRequest) -> FakeResponse:
            kind, to = self._type(req), self._type(req, "to")
            if kind is None or to is None:
                return _not_found("Object type")
            links = self.portal.associated(kind, req.params["id"], to)
            results = [self._assoc_json(k, v) for k, v in links.items()]
            return FakeResponse(200, {"results": results})

        @app.route("POST", V4_BATCH)
        def associations_batch(req: FakeRequest) -> FakeResponse:
            kind, to = self._type(req), self._type(req, "to")
            inputs = (req.json() or {}).get("inputs")
            if kind is None or to is None or not isinstance(inputs, list):
                return FakeResponse(400, error_body("inputs are required"))
            results = []
            for item in inputs:
                links = self.portal.associated(kind, str(item["id"]), to)
                if links:
                    results.append(
                        {
                            "from": {"id": str(item["id"])},
                            "to": [self._assoc_json(k, v) for k, v in links.items()],
                        }
                    )
            return self._batch_json(results, [])

        @app.route("GET", r"/crm/v3/owners/(?P<id>[0-9]+)")
        def owner(req: FakeRequest) -> FakeResponse:
            found = self.portal.owners.get(req.params["id"])
            return FakeResponse(200, found) if found else _not_found("Owner")

        @app.route("GET", r"/crm/v3/owners/?")
        def owners(req: FakeRequest) -> FakeResponse:
            return FakeResponse(200, {"results": list(self.portal.owners.values())})

    @staticmethod
    def _assoc_json(to_id: str, links: list[Any]) -> dict[str, Any]:
        return {
            "toObjectId": int(to_id),
            "associationTypes": [
                {"category": link.category, "typeId": link.type_id, "label": link.label}
                for link in links
            ],
        }


__all__ = ["OBJECT_TYPE_IDS", "FakeHubSpot"]
