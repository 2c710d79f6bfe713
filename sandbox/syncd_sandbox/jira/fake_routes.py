"""The fake Jira's endpoints: one small handler per Jira Cloud v3 operation."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from connectors.jira.adf import adf_problems
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse
from syncd_sandbox.jira.fake_jql import JqlError, parse_jql
from syncd_sandbox.jira.fake_model import (
    TRANSITIONS,
    jira_time,
    render_comment,
    render_issuetype,
    render_status,
)
from syncd_sandbox.jira.fake_rules import create_problems

if TYPE_CHECKING:
    from syncd_sandbox.jira.fake import FakeJira

API = "/rest/api/3"
KEY = r"(?P<key>[A-Za-z0-9_-]+)"
NOT_FOUND = "Issue does not exist or you do not have permission to see it."


def error_response(status: int, *messages: str, **errors: str) -> FakeResponse:
    return FakeResponse(status, {"errorMessages": list(messages), "errors": errors})


def _base(request: FakeRequest) -> str:
    """URLs in answers use the host and port the client called."""
    return f"http://{request.headers.get('host', '127.0.0.1')}"


def install_routes(jira: FakeJira) -> None:
    """Register every endpoint of the fake on `jira.app`."""
    route = jira.app.route

    @route("GET", r"/rest/api/[23]/serverInfo")
    def server_info(req: FakeRequest) -> FakeResponse:
        return FakeResponse(
            200,
            {
                "baseUrl": _base(req),
                "displayUrl": _base(req),
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100282,
                "buildDate": "2025-09-24T00:00:00.000+0000",
                "serverTime": jira_time(jira.now_ms()),
                "scmInfo": "5330f7d9",
                "serverTitle": "Fake Jira",
                "serverTimeZone": "UTC",
            },
        )

    @route("GET", API + r"/myself")
    def myself(req: FakeRequest) -> FakeResponse:
        return FakeResponse(
            200, {**jira.bot.render(_base(req)), "timeZone": jira.time_zone, "locale": "en_US"}
        )

    @route("GET", API + r"/field")
    def field_list(req: FakeRequest) -> FakeResponse:
        return FakeResponse(
            200,
            [
                {
                    "id": fid,
                    "key": fid,
                    "name": name,
                    "custom": custom,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{fid.split('_')[1]}]", name] if custom else [fid],
                    "schema": {
                        "type": kind,
                        **(
                            {"custom": "textfield", "customId": int(fid.split("_")[1])}
                            if custom
                            else {"system": fid}
                        ),
                    },
                }
                for fid, name, kind, custom in jira.fields
            ],
        )

    @route("GET", API + r"/project/(?P<project>[^/]+)")
    def project(req: FakeRequest) -> FakeResponse:
        key = req.params["project"].upper()
        if key not in jira.projects:
            return error_response(404, f"No project could be found with key '{key}'.")
        base = _base(req)
        return FakeResponse(
            200,
            {
                "self": f"{base}{API}/project/{jira.projects[key]}",
                "id": jira.projects[key],
                "key": key,
                "name": key.title(),
                "projectTypeKey": "software",
                "simplified": False,
                "style": "classic",
                "issueTypes": [
                    render_issuetype(base, name) for name in ("Epic", "Task", "Story", "Bug")
                ],
            },
        )

    @route("GET", API + r"/user/search")
    def user_search(req: FakeRequest) -> FakeResponse:
        query = (req.arg("query") or "").lower()
        return FakeResponse(
            200,
            [
                u.render(_base(req))
                for u in jira.users.values()
                if query and (query in u.email.lower() or query in u.display_name.lower())
            ],
        )

    @route("POST", API + r"/issue")
    def create_issue(req: FakeRequest) -> FakeResponse:
        try:
            body = req.json()
        except ValueError:
            return _refuse(jira, req, None, ["body is not JSON"])
        problems = jira.spec.request_errors("POST", f"{API}/issue", body)
        if problems:
            return _refuse(jira, req, body, problems)
        with jira.app.lock:
            errors, values = create_problems(body, jira)
            if errors:
                jira.invalid_bodies.append({"path": req.path, "body": body, "problems": errors})
                return error_response(400, **errors)
            issue = jira.new_issue(
                values.pop("project"), values.pop("issuetype"), values.pop("summary")
            )
            for name, value in values.items():
                setattr(issue, name, value)
        base = _base(req)
        return FakeResponse(
            201, {"id": issue.id, "key": issue.key, "self": f"{base}{API}/issue/{issue.id}"}
        )

    @route("GET", API + r"/issue/" + KEY)
    def get_issue(req: FakeRequest) -> FakeResponse:
        issue = jira.find(req.params["key"])
        if issue is None:
            return error_response(404, NOT_FOUND)
        fields = ",".join(req.query.get("fields", ["*all"])).split(",")
        expand = (req.arg("expand") or "").split(",")
        return FakeResponse(200, jira.render_issue(issue, _base(req), fields, expand))

    @route("PUT", API + r"/issue/" + KEY)
    def edit_issue(req: FakeRequest) -> FakeResponse:
        issue = jira.find(req.params["key"])
        if issue is None:
            return error_response(404, NOT_FOUND)
        body = req.json()
        problems = jira.spec.request_errors("PUT", f"{API}/issue/{{issueIdOrKey}}", body)
        if problems:
            return _refuse(jira, req, body, problems)
        fields = body.get("fields", {})
        simple = {k: v for k, v in fields.items() if k in ("summary", "labels", "duedate")}
        jira.user_update(issue.key, by=jira.bot.account_id, **simple)
        return FakeResponse(204, None)

    @route("GET", API + r"/issue/" + KEY + r"/transitions")
    def transitions(req: FakeRequest) -> FakeResponse:
        issue = jira.find(req.params["key"])
        if issue is None:
            return error_response(404, NOT_FOUND)
        base = _base(req)
        return FakeResponse(
            200,
            {
                "expand": "transitions",
                "transitions": [
                    {
                        "id": tid,
                        "name": name,
                        "to": render_status(base, to),
                        "hasScreen": False,
                        "isGlobal": True,
                        "isInitial": False,
                        "isAvailable": True,
                        "isConditional": False,
                        "isLooped": False,
                    }
                    for tid, name, to in TRANSITIONS
                    if to != issue.status
                ],
            },
        )

    @route("POST", API + r"/issue/" + KEY + r"/transitions")
    def do_transition(req: FakeRequest) -> FakeResponse:
        issue = jira.find(req.params["key"])
        if issue is None:
            return error_response(404, NOT_FOUND)
        body = req.json()
        path = f"{API}/issue/{{issueIdOrKey}}/transitions"
        problems = jira.spec.request_errors("POST", path, body)
        if problems:
            return _refuse(jira, req, body, problems)
        wanted = str((body.get("transition") or {}).get("id"))
        target = next(
            (to for tid, _, to in TRANSITIONS if tid == wanted and to != issue.status), None
        )
        if target is None:
            return _refuse(
                jira, req, body, [f"Transition id '{wanted}' is not valid for this issue."]
            )
        with jira.app.lock:
            jira.change(issue, "status", target, author=jira.bot.account_id)
        return FakeResponse(204, None)

    @route("GET", API + r"/issue/" + KEY + r"/comment")
    def comments(req: FakeRequest) -> FakeResponse:
        issue = jira.find(req.params["key"])
        if issue is None:
            return error_response(404, NOT_FOUND)
        start = int(req.arg("startAt", "0") or 0)
        size = min(int(req.arg("maxResults", "50") or 50), 100)
        with_props = "properties" in (req.arg("expand") or "")
        page = issue.comments[start : start + size]
        return FakeResponse(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(issue.comments),
                "comments": [
                    render_comment(_base(req), issue, c, jira.users, with_props) for c in page
                ],
            },
        )

    @route("POST", API + r"/issue/" + KEY + r"/comment")
    def add_comment(req: FakeRequest) -> FakeResponse:
        issue = jira.find(req.params["key"])
        if issue is None:
            return error_response(404, NOT_FOUND)
        body = req.json()
        problems = jira.spec.request_errors("POST", f"{API}/issue/{{issueIdOrKey}}/comment", body)
        problems += adf_problems(body.get("body")) if isinstance(body, dict) else []
        if problems:
            return _refuse(jira, req, body, problems)
        with jira.app.lock:
            comment = {
                "id": str(20000 + sum(len(i.comments) for i in jira.issues.values())),
                "body": body["body"],
                "created": jira.now_ms(),
                "author": jira.bot.account_id,
                "properties": body.get("properties", []),
            }
            issue.comments.append(comment)
            issue.updated = max(issue.updated, comment["created"])
        return FakeResponse(201, render_comment(_base(req), issue, comment, jira.users, False))

    def search(req: FakeRequest, params: dict[str, Any]) -> FakeResponse:
        jql = params.get("jql") or ""
        try:
            parsed = parse_jql(jql, ZoneInfo(jira.time_zone))
        except JqlError as exc:
            return error_response(400, str(exc))
        missing = [k for k in parsed.keys if jira.find(k) is None]
        if missing:
            return error_response(
                400, f"An issue with key '{missing[0]}' does not exist for field 'key'."
            )
        size = max(1, min(int(params.get("maxResults") or 50), 5000))
        offset = 0
        token = params.get("nextPageToken")
        if token:
            offset = _read_token(token, jql)
            if offset is None:
                return error_response(400, "The provided next page token is invalid or expired.")
        fields = params.get("fields") or ["id"]
        if isinstance(fields, str):
            fields = fields.split(",")
        expand = params.get("expand") or ""
        expand = expand.split(",") if isinstance(expand, str) else expand
        with jira.app.lock:
            found = [i for i in jira.issues.values() if parsed.predicate(i)]  # type: ignore[misc]
            for attribute, descending in reversed(parsed.order_by or [("key", True)]):
                found.sort(key=lambda i, a=attribute: getattr(i, a), reverse=descending)
            page = found[offset : offset + size]
            base = _base(req)
            out: dict[str, Any] = {
                "issues": [jira.render_issue(i, base, fields, expand) for i in page],
                "isLast": offset + size >= len(found),
            }
        if not out["isLast"]:
            out["nextPageToken"] = _make_token(offset + size, jql)
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
        problems = jira.spec.request_errors("POST", f"{API}/search/jql", body)
        if problems:
            return _refuse(jira, req, body, problems)
        return search(req, body)

    @route("GET", API + r"/search")
    def old_search_get(req: FakeRequest) -> FakeResponse:
        return error_response(
            410,
            "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API.",
        )

    @route("POST", API + r"/search")
    def old_search_post(req: FakeRequest) -> FakeResponse:
        return old_search_get(req)


def _refuse(jira: FakeJira, req: FakeRequest, body: Any, problems: list[str]) -> FakeResponse:
    with jira.app.lock:
        jira.invalid_bodies.append({"path": req.path, "body": body, "problems": problems})
    return error_response(400, *problems)


def _make_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode()


def _read_token(token: str, jql: str) -> int | None:
    try:
        offset, digest = base64.urlsafe_b64decode(token.encode()).decode().split(":")
    except ValueError:
        return None
    if digest != hashlib.sha256(jql.encode()).hexdigest()[:16]:
        return None
    return int(offset)
