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
from typing import Any

from syncd.clock import Clock, SystemClock, to_ms
from syncd_sandbox.fakeserver import FakeApp, FakeRequest, FakeResponse
from syncd_sandbox.jira.fake_limits import JiraRateLimit
from syncd_sandbox.jira.fake_model import (
    CUSTOM_FIELDS,
    STATUSES,
    SYSTEM_FIELDS,
    FakeIssue,
    FakeUser,
    estimate_seconds,
    jira_time,
    render_changelog_entry,
    render_issuetype,
    render_status,
)
from syncd_sandbox.jira.fake_routes import error_response, install_routes
from syncd_sandbox.jira.fake_schema import SpecValidator
from syncd_sandbox.jira.faults import FaultInjector

API = "/rest/api/3"


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
        self.users = {
            u.account_id: u
            for u in (
                self.bot,
                FakeUser("712020:aaaa-1111", "Ada Lovelace", "ada@example.org"),
                FakeUser("712020:bbbb-2222", "Grace Hopper", "grace@example.org"),
            )
        }
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
        self.rate_limit = JiraRateLimit(self.clock)
        self.app.before.append(self._authenticate)
        self.app.before.append(self.rate_limit.check)
        install_routes(self)

    # -- what a person does in the Jira UI -----------------------------------------------

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def user_create(
        self,
        project: str,
        summary: str,
        *,
        issuetype: str = "Task",
        labels: list[str] | None = None,
        status: str = "To Do",
        parent: str | None = None,
        assignee: str | None = None,
    ) -> FakeIssue:
        with self.app.lock:
            issue = self.new_issue(project, issuetype, summary)
            issue.labels = list(labels or [])
            issue.parent, issue.assignee = parent, assignee
            if status != "To Do":
                self.change(issue, "status", status, author=next(iter(self.users)))
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
            self.user_create(
                project,
                f"Client {n:02d}",
                issuetype="Epic",
                labels=["client-epic"],
                assignee=list(self.users)[1],
            )
            for n in range(1, count + 1)
        ]

    def fail_next(self, method: str, path: str, kind: str, **options: Any) -> None:
        """See `FaultInjector.fail_next`: `path` is a regex on the URL path."""
        self.faults.fail_next(method, path, kind, **options)

    def webhook_request(
        self,
        key: str,
        *,
        event: str = "jira:issue_updated",
        secret: str | None = None,
        identifier: str | None = None,
        retry: int = 0,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and raw body of the delivery Jira sends for `event` on issue `key`."""
        with self.app.lock:
            issue = self.issues[key]
            base = "https://fake.atlassian.net"
            payload: dict[str, Any] = {
                "timestamp": self.now_ms(),
                "webhookEvent": event,
                "issue_event_type_name": {
                    "jira:issue_created": "issue_created",
                    "jira:issue_deleted": "issue_deleted",
                }.get(event, "issue_generic"),
                "user": self.users[list(self.users)[1]].render(base),
                "issue": self.render_issue(issue, base, ["*all"], expand=()),
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

    def new_issue(self, project: str, issuetype: str, summary: str) -> FakeIssue:
        self._next_id += 1
        self._counters[project] = self._counters.get(project, 0) + 1
        now = self.now_ms()
        issue = FakeIssue(
            id=str(self._next_id),
            key=f"{project}-{self._counters[project]}",
            project=project,
            issuetype=issuetype,
            summary=summary,
            created=now,
            updated=now,
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
        item = {
            "field": name,
            "fieldtype": "jira",
            "fieldId": name,
            "fromString": old_text,
            "toString": as_text,
        }
        if name == "status":
            item.update({"from": STATUSES[old][0], "to": STATUSES[value][0]})
        return {k: v for k, v in item.items() if v is not None}

    def change(self, issue: FakeIssue, name: str, value: Any, author: str) -> None:
        item = self._change_item(issue, name, value)
        if item:
            self._append_changelog(issue, [item], author)

    def _append_changelog(self, issue: FakeIssue, items: list[dict], author: str) -> None:
        if not items:
            return
        now = max(self.now_ms(), issue.updated)
        issue.updated = now
        entry_id = str(sum(len(i.changelog) for i in self.issues.values()) + 1000)
        issue.changelog.append({"id": entry_id, "created": now, "author": author, "items": items})

    # -- rendering ---------------------------------------------------------------------

    def field_name(self, field_id: str) -> str:
        return next(name for fid, name, _, _ in self.fields if fid == field_id)

    def render_issue(
        self, issue: FakeIssue, base: str, fields: list[str], expand: tuple[str, ...] | list[str]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": f"{base}{API}/issue/{issue.id}",
            "key": issue.key,
        }
        if fields != ["id"]:
            everything = self._issue_fields(issue, base)
            wanted = [f for f in fields if not f.startswith("-")]
            if not wanted or any(f in ("*all", "*navigable") for f in wanted):
                wanted = list(everything)
            dropped = {f[1:] for f in fields if f.startswith("-")}
            out["fields"] = {
                k: everything[k] for k in wanted if k in everything and k not in dropped
            }
        if "changelog" in expand:
            histories = [
                render_changelog_entry(base, e, self.users) for e in reversed(issue.changelog)
            ]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(histories),
                "histories": histories,
            }
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
            "project": {
                "self": f"{base}{API}/project/{self.projects[issue.project]}",
                "id": self.projects[issue.project],
                "key": issue.project,
                "name": issue.project.title(),
                "projectTypeKey": "software",
            },
            "status": render_status(base, issue.status),
            "duedate": issue.duedate,
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "timetracking": {},
            "timeoriginalestimate": None,
        }
        if issue.original_estimate:
            seconds = estimate_seconds(issue.original_estimate)
            fields["timetracking"] = {
                "originalEstimate": issue.original_estimate,
                "originalEstimateSeconds": seconds,
            }
            fields["timeoriginalestimate"] = seconds
        if parent is not None:
            fields["parent"] = {
                "id": parent.id,
                "key": parent.key,
                "self": f"{base}{API}/issue/{parent.id}",
                "fields": {
                    "summary": parent.summary,
                    "status": render_status(base, parent.status),
                    "issuetype": render_issuetype(base, parent.issuetype),
                },
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
        return error_response(401, "Client must be authenticated to access this resource.")

    def find(self, key: str) -> FakeIssue | None:
        if key in self.issues:
            return self.issues[key]
        return next((i for i in self.issues.values() if i.id == key or i.key == key.upper()), None)
