"""A local fake of Jira Cloud (REST v3) for tests and the `syncd demo` sandbox.

Usage:
    jira = FakeJira(clock=FakeClock())
    with FakeServer(jira.app) as server:
        client = JIRA(server=server.url, basic_auth=(jira.email, jira.api_token), ...)

It answers on the same paths with the same JSON shapes as Jira Cloud, validates create and
transition bodies against Atlassian's OpenAPI description plus Jira's own rules (records every
refused body in `invalid_bodies`), pages searches with `nextPageToken`, refuses the old
`/rest/api/3/search` with 410 like Cloud does, and misbehaves on request (`fail_next`).
`user_*` methods change issues as a person in the UI would (appending to the changelog);
`webhook_request` builds a signed `jira:issue_*` delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.fakeserver import FakeApp, FakeRequest, FakeResponse
from connectors.jira.adf import adf_problems
from connectors.jira.fake_jql import JqlError, parse_jql
from connectors.jira.fake_model import (
    CUSTOM_FIELDS,
    STATUSES,
    SYSTEM_FIELDS,
    TRANSITIONS,
    FakeIssue,
    FakeUser,
    estimate_seconds,
    jira_time,
    render_changelog_entry,
    render_comment,
    render_issuetype,
    render_status,
)
from connectors.jira.fake_rules import create_problems
from connectors.jira.fake_schema import SpecValidator
from connectors.jira.faults import FaultInjector
from syncd.clock import Clock, SystemClock, to_ms

API = "/rest/api/3"
KEY = r"(?P<key>[A-Za-z0-9_-]+)"


def _error(status: int, *messages: str, **errors: str) -> FakeResponse:
    return FakeResponse(status, {"errorMessages": list(messages), "errors": errors})


class FakeJira:
    def __init__(
        self,
        clock: Clock | None = None,
        *,
        email: str = "syncd@example.org",
        api_token: str = "fake-jira-token",
        time_zone: str = "America/Los_Angeles",
        projects: tuple[str, ...] = ("OPS", "CLI"),
    ) -> None:
        self.clock = clock or SystemClock()
        self.email = email
        self.api_token = api_token
        self.time_zone = time_zone
        self.projects = {key: str(10000 + n) for n, key in enumerate(projects)}
        self.bot = FakeUser("5b10ac8d82e05b22cc7d4ef5", "syncd bot", email)
        self.users = {u.account_id: u for u in (
            self.bot,
            FakeUser("712020:aaaa-1111", "Ada Lovelace", "ada@example.org"),
            FakeUser("712020:bbbb-2222", "Grace Hopper", "grace@example.org"),
        )}
        self.fields = [(fid, name, kind, False) for fid, name, kind in SYSTEM_FIELDS] + [
            (fid, name, kind, True) for fid, name, kind in CUSTOM_FIELDS
        ]
        self.issues: dict[str, FakeIssue] = {}
        self.invalid_bodies: list[dict[str, Any]] = []  # every body refused, with why
        self.spec = SpecValidator()
        self._next_id = 10000
        self._counters: dict[str, int] = {}
        self.app = FakeApp()
        self.faults = FaultInjector(self.app)
        self.app.before.append(self._authenticate)
        self._routes()

    # -- what a person does in the Jira UI -----------------------------------------------

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def user_create(
        self, project: str, summary: str, *, issuetype: str = "Task",
        labels: list[str] | None = None, status: str = "To Do", parent: str | None = None,
        assignee: str | None = None,
    ) -> FakeIssue:
        with self.app.lock:
            issue = self._new_issue(project, issuetype, summary)
            issue.labels = list(labels or [])
            issue.parent, issue.assignee = parent, assignee
            if status != "To Do":
                self._change(issue, "status", status, author=next(iter(self.users)))
            return issue

    def user_update(self, key: str, *, by: str | None = None, **changes: Any) -> FakeIssue:
        """Change fields (status, summary, labels, assignee, duedate) with a changelog entry."""
        with self.app.lock:
            issue = self.issues[key]
            author = by or list(self.users)[1]
            items = [self._change_item(issue, name, value) for name, value in changes.items()]
            self._append_changelog(issue, [i for i in items if i], author)
            return issue

    def user_delete(self, key: str) -> None:
        with self.app.lock:
            del self.issues[key]

    def seed_client_epics(self, count: int, project: str = "CLI") -> list[FakeIssue]:
        """Epics labelled `client-epic`, as W8's quarterly review iterates over."""
        return [
            self.user_create(project, f"Client {n:02d}", issuetype="Epic",
                             labels=["client-epic"], assignee=list(self.users)[1])
            for n in range(1, count + 1)
        ]

    def fail_next(self, method: str, path: str, kind: str, **options: Any) -> None:
        """See `FaultInjector.fail_next`: `path` is a regex on the URL path."""
        self.faults.fail_next(method, path, kind, **options)

    def webhook_request(
        self, key: str, *, event: str = "jira:issue_updated", secret: str | None = None,
        identifier: str | None = None, retry: int = 0,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and raw body of the delivery Jira sends for `event` on issue `key`."""
        with self.app.lock:
            issue = self.issues[key]
            base = "https://fake.atlassian.net"
            payload: dict[str, Any] = {
                "timestamp": self.now_ms(),
                "webhookEvent": event,
                "issue_event_type_name": {"jira:issue_created": "issue_created",
                                          "jira:issue_deleted": "issue_deleted"}.get(
                    event, "issue_generic"),
                "user": self.users[list(self.users)[1]].render(base),
                "issue": self._render_issue(issue, base, ["*all"], expand=()),
            }
            if event == "jira:issue_updated" and issue.changelog:
                last = issue.changelog[-1]
                payload["changelog"] = {"id": last["id"], "items": last["items"]}
        body = json.dumps(payload).encode()
        headers = {
            "content-type": "application/json",
            "x-atlassian-webhook-identifier": identifier or str(uuid.uuid4()),
            "x-atlassian-webhook-retry": str(retry),
        }
        if secret is not None:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["x-hub-signature"] = f"sha256={digest}"
        return headers, body

    # -- state changes ---------------------------------------------------------------------

    def _new_issue(self, project: str, issuetype: str, summary: str) -> FakeIssue:
        self._next_id += 1
        self._counters[project] = self._counters.get(project, 0) + 1
        now = self.now_ms()
        issue = FakeIssue(
            id=str(self._next_id), key=f"{project}-{self._counters[project]}", project=project,
            issuetype=issuetype, summary=summary, created=now, updated=now,
            reporter=self.bot.account_id,
        )
        self.issues[issue.key] = issue
        return issue

    def _change_item(self, issue: FakeIssue, name: str, value: Any) -> dict[str, Any] | None:
        old = getattr(issue, name)
        if old == value:
            return None
        setattr(issue, name, value)
        as_text = " ".join(value) if isinstance(value, list) else value
        old_text = " ".join(old) if isinstance(old, list) else old
        item = {"field": name, "fieldtype": "jira", "fieldId": name,
                "fromString": old_text, "toString": as_text}
        if name == "status":
            item.update({"from": STATUSES[old][0], "to": STATUSES[value][0]})
        return {k: v for k, v in item.items() if v is not None}

    def _change(self, issue: FakeIssue, name: str, value: Any, author: str) -> None:
        item = self._change_item(issue, name, value)
        if item:
            self._append_changelog(issue, [item], author)

    def _append_changelog(self, issue: FakeIssue, items: list[dict], author: str) -> None:
        if not items:
            return
        now = max(self.now_ms(), issue.updated)
        issue.updated = now
        entry_id = str(sum(len(i.changelog) for i in self.issues.values()) + 1000)
        issue.changelog.append({"id": entry_id, "created": now, "author": author,
                                "items": items})

    # -- rendering ---------------------------------------------------------------------

    def _field_name(self, field_id: str) -> str:
        return next(name for fid, name, _, _ in self.fields if fid == field_id)

    def _render_issue(self, issue: FakeIssue, base: str, fields: list[str],
                      expand: tuple[str, ...] | list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id, "self": f"{base}{API}/issue/{issue.id}", "key": issue.key,
        }
        if fields != ["id"]:
            everything = self._issue_fields(issue, base)
            wanted = [f for f in fields if not f.startswith("-")]
            if not wanted or any(f in ("*all", "*navigable") for f in wanted):
                wanted = list(everything)
            dropped = {f[1:] for f in fields if f.startswith("-")}
            out["fields"] = {k: everything[k] for k in wanted
                             if k in everything and k not in dropped}
        if "changelog" in expand:
            histories = [render_changelog_entry(base, e, self.users)
                         for e in reversed(issue.changelog)]
            out["changelog"] = {"startAt": 0, "maxResults": len(histories),
                                "total": len(histories), "histories": histories}
        return out

    def _issue_fields(self, issue: FakeIssue, base: str) -> dict[str, Any]:
        def user(account_id: str | None) -> dict[str, Any] | None:
            found = self.users.get(account_id or "")
            return found.render(base) if found else None

        parent = self.issues.get(issue.parent or "")
        fields: dict[str, Any] = {
            "summary": issue.summary,
            "description": issue.description,
            "labels": list(issue.labels),
            "assignee": user(issue.assignee),
            "reporter": user(issue.reporter),
            "issuetype": render_issuetype(base, issue.issuetype),
            "project": {"self": f"{base}{API}/project/{self.projects[issue.project]}",
                        "id": self.projects[issue.project], "key": issue.project,
                        "name": issue.project.title(), "projectTypeKey": "software"},
            "status": render_status(base, issue.status),
            "duedate": issue.duedate,
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "timetracking": {},
            "timeoriginalestimate": None,
        }
        if issue.original_estimate:
            seconds = estimate_seconds(issue.original_estimate)
            fields["timetracking"] = {"originalEstimate": issue.original_estimate,
                                      "originalEstimateSeconds": seconds}
            fields["timeoriginalestimate"] = seconds
        if parent is not None:
            fields["parent"] = {
                "id": parent.id, "key": parent.key, "self": f"{base}{API}/issue/{parent.id}",
                "fields": {"summary": parent.summary,
                           "status": render_status(base, parent.status),
                           "issuetype": render_issuetype(base, parent.issuetype)},
            }
        for fid, _, _, custom in self.fields:
            if custom:
                fields[fid] = issue.custom.get(fid)
        return fields

    # -- HTTP -------------------------------------------------------------------------

    def _authenticate(self, request: FakeRequest) -> FakeResponse | None:
        if request.path.endswith("/serverInfo"):
            return None  # anonymous, as on Cloud
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given, f"Basic {expected}") or hmac.compare_digest(
            given, f"Bearer {self.api_token}"
        ):
            return None
        return _error(401, "Client must be authenticated to access this resource.")

    @staticmethod
    def _base(request: FakeRequest) -> str:
        return f"http://{request.headers.get('host', '127.0.0.1')}"

    def _find(self, key: str) -> FakeIssue | None:
        if key in self.issues:
            return self.issues[key]
        return next((i for i in self.issues.values() if i.id == key or i.key == key.upper()),
                    None)

    def _routes(self) -> None:
        route = self.app.route

        @route("GET", r"/rest/api/[23]/serverInfo")
        def server_info(req: FakeRequest) -> FakeResponse:
            return FakeResponse(200, {
                "baseUrl": self._base(req), "displayUrl": self._base(req),
                "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud", "buildNumber": 100282,
                "buildDate": "2025-09-24T00:00:00.000+0000",
                "serverTime": jira_time(self.now_ms()), "scmInfo": "5330f7d9",
                "serverTitle": "Fake Jira", "serverTimeZone": "UTC",
            })

        @route("GET", API + r"/myself")
        def myself(req: FakeRequest) -> FakeResponse:
            return FakeResponse(200, {**self.bot.render(self._base(req)),
                                      "timeZone": self.time_zone, "locale": "en_US"})

        @route("GET", API + r"/field")
        def field_list(req: FakeRequest) -> FakeResponse:
            return FakeResponse(200, [
                {"id": fid, "key": fid, "name": name, "custom": custom, "orderable": True,
                 "navigable": True, "searchable": True,
                 "clauseNames": [f"cf[{fid.split('_')[1]}]", name] if custom else [fid],
                 "schema": {"type": kind, **({"custom": "textfield",
                                              "customId": int(fid.split("_")[1])}
                                             if custom else {"system": fid})}}
                for fid, name, kind, custom in self.fields
            ])

        @route("GET", API + r"/project/(?P<project>[^/]+)")
        def project(req: FakeRequest) -> FakeResponse:
            key = req.params["project"].upper()
            if key not in self.projects:
                return _error(404, f"No project could be found with key '{key}'.")
            base = self._base(req)
            return FakeResponse(200, {
                "self": f"{base}{API}/project/{self.projects[key]}",
                "id": self.projects[key], "key": key, "name": key.title(),
                "projectTypeKey": "software", "simplified": False, "style": "classic",
                "issueTypes": [render_issuetype(base, name) for name in
                               ("Epic", "Task", "Story", "Bug")],
            })

        @route("GET", API + r"/user/search")
        def user_search(req: FakeRequest) -> FakeResponse:
            query = (req.arg("query") or "").lower()
            return FakeResponse(200, [
                u.render(self._base(req)) for u in self.users.values()
                if query and (query in u.email.lower() or query in u.display_name.lower())
            ])

        @route("POST", API + r"/issue")
        def create_issue(req: FakeRequest) -> FakeResponse:
            try:
                body = req.json()
            except ValueError:
                return self._refuse(req, None, ["body is not JSON"])
            problems = self.spec.request_errors("POST", f"{API}/issue", body)
            if problems:
                return self._refuse(req, body, problems)
            with self.app.lock:
                errors, values = create_problems(body, self)
                if errors:
                    self.invalid_bodies.append({"path": req.path, "body": body,
                                                "problems": errors})
                    return _error(400, **errors)
                issue = self._new_issue(values.pop("project"), values.pop("issuetype"),
                                        values.pop("summary"))
                for name, value in values.items():
                    setattr(issue, name, value)
            base = self._base(req)
            return FakeResponse(201, {"id": issue.id, "key": issue.key,
                                      "self": f"{base}{API}/issue/{issue.id}"})

        @route("GET", API + r"/issue/" + KEY)
        def get_issue(req: FakeRequest) -> FakeResponse:
            issue = self._find(req.params["key"])
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            fields = ",".join(req.query.get("fields", ["*all"])).split(",")
            expand = (req.arg("expand") or "").split(",")
            return FakeResponse(200, self._render_issue(issue, self._base(req), fields, expand))

        @route("PUT", API + r"/issue/" + KEY)
        def edit_issue(req: FakeRequest) -> FakeResponse:
            issue = self._find(req.params["key"])
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            body = req.json()
            problems = self.spec.request_errors("PUT", f"{API}/issue/{{issueIdOrKey}}", body)
            if problems:
                return self._refuse(req, body, problems)
            fields = body.get("fields", {})
            simple = {k: v for k, v in fields.items() if k in ("summary", "labels", "duedate")}
            self.user_update(issue.key, by=self.bot.account_id, **simple)
            return FakeResponse(204, None)

        @route("GET", API + r"/issue/" + KEY + r"/transitions")
        def transitions(req: FakeRequest) -> FakeResponse:
            issue = self._find(req.params["key"])
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            base = self._base(req)
            return FakeResponse(200, {"expand": "transitions", "transitions": [
                {"id": tid, "name": name, "to": render_status(base, to), "hasScreen": False,
                 "isGlobal": True, "isInitial": False, "isAvailable": True,
                 "isConditional": False, "isLooped": False}
                for tid, name, to in TRANSITIONS if to != issue.status
            ]})

        @route("POST", API + r"/issue/" + KEY + r"/transitions")
        def do_transition(req: FakeRequest) -> FakeResponse:
            issue = self._find(req.params["key"])
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            body = req.json()
            path = f"{API}/issue/{{issueIdOrKey}}/transitions"
            problems = self.spec.request_errors("POST", path, body)
            if problems:
                return self._refuse(req, body, problems)
            wanted = str((body.get("transition") or {}).get("id"))
            target = next((to for tid, _, to in TRANSITIONS
                           if tid == wanted and to != issue.status), None)
            if target is None:
                return self._refuse(req, body, [
                    f"Transition id '{wanted}' is not valid for this issue."])
            with self.app.lock:
                self._change(issue, "status", target, author=self.bot.account_id)
            return FakeResponse(204, None)

        @route("GET", API + r"/issue/" + KEY + r"/comment")
        def comments(req: FakeRequest) -> FakeResponse:
            issue = self._find(req.params["key"])
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            start = int(req.arg("startAt", "0") or 0)
            size = min(int(req.arg("maxResults", "50") or 50), 100)
            with_props = "properties" in (req.arg("expand") or "")
            page = issue.comments[start : start + size]
            return FakeResponse(200, {
                "startAt": start, "maxResults": size, "total": len(issue.comments),
                "comments": [render_comment(self._base(req), issue, c, self.users, with_props)
                             for c in page],
            })

        @route("POST", API + r"/issue/" + KEY + r"/comment")
        def add_comment(req: FakeRequest) -> FakeResponse:
            issue = self._find(req.params["key"])
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            body = req.json()
            problems = self.spec.request_errors(
                "POST", f"{API}/issue/{{issueIdOrKey}}/comment", body)
            problems += adf_problems(body.get("body")) if isinstance(body, dict) else []
            if problems:
                return self._refuse(req, body, problems)
            with self.app.lock:
                comment = {"id": str(20000 + sum(len(i.comments) for i in self.issues.values())),
                           "body": body["body"], "created": self.now_ms(),
                           "author": self.bot.account_id,
                           "properties": body.get("properties", [])}
                issue.comments.append(comment)
                issue.updated = max(issue.updated, comment["created"])
            return FakeResponse(201, render_comment(self._base(req), issue, comment,
                                                    self.users, False))

        def search(req: FakeRequest, params: dict[str, Any]) -> FakeResponse:
            jql = params.get("jql") or ""
            try:
                parsed = parse_jql(jql, ZoneInfo(self.time_zone))
            except JqlError as exc:
                return _error(400, str(exc))
            size = max(1, min(int(params.get("maxResults") or 50), 5000))
            offset = 0
            token = params.get("nextPageToken")
            if token:
                offset = self._read_token(token, jql)
                if offset is None:
                    return _error(400, "The provided next page token is invalid or expired.")
            fields = params.get("fields") or ["id"]
            if isinstance(fields, str):
                fields = fields.split(",")
            expand = params.get("expand") or ""
            expand = expand.split(",") if isinstance(expand, str) else expand
            with self.app.lock:
                found = [i for i in self.issues.values() if parsed.predicate(i)]  # type: ignore[misc]
                for attribute, descending in reversed(parsed.order_by or [("key", True)]):
                    found.sort(key=lambda i, a=attribute: getattr(i, a), reverse=descending)
                page = found[offset : offset + size]
                base = self._base(req)
                out: dict[str, Any] = {
                    "issues": [self._render_issue(i, base, fields, expand) for i in page],
                    "isLast": offset + size >= len(found),
                }
            if not out["isLast"]:
                out["nextPageToken"] = self._make_token(offset + size, jql)
            return FakeResponse(200, out)

        @route("GET", API + r"/search/jql")
        def search_get(req: FakeRequest) -> FakeResponse:
            params: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
            if "fields" in req.query:
                params["fields"] = ",".join(req.query["fields"]).split(",")
            return search(req, params)

        @route("POST", API + r"/search/jql")
        def search_post(req: FakeRequest) -> FakeResponse:
            body = req.json()
            problems = self.spec.request_errors("POST", f"{API}/search/jql", body)
            if problems:
                return self._refuse(req, body, problems)
            return search(req, body)

        @route("GET", API + r"/search")
        def old_search_get(req: FakeRequest) -> FakeResponse:
            return _error(410, "The requested API has been removed. Please migrate to the "
                               "/rest/api/3/search/jql API.")

        @route("POST", API + r"/search")
        def old_search_post(req: FakeRequest) -> FakeResponse:
            return old_search_get(req)

    def _refuse(self, req: FakeRequest, body: Any, problems: list[str]) -> FakeResponse:
        with self.app.lock:
            self.invalid_bodies.append({"path": req.path, "body": body, "problems": problems})
        return _error(400, *problems)

    @staticmethod
    def _make_token(offset: int, jql: str) -> str:
        digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
        return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode()

    @staticmethod
    def _read_token(token: str, jql: str) -> int | None:
        try:
            offset, digest = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        except ValueError:
            return None
        if digest != hashlib.sha256(jql.encode()).hexdigest()[:16]:
            return None
        return int(offset)


def parse_jira_time(text: str) -> int:
    """Epoch ms of a Jira timestamp (used by tests to compare with the fake's clock)."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)

