"""The fake GitHub's REST endpoints (paths and answers as in GitHub's OpenAPI subsets)."""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from syncd_sandbox.fakeserver import FakeRequest, FakeResponse
from syncd_sandbox.github.fake_data import FakeComment, FakeIssue, FakeRepo
from syncd_sandbox.github.fake_routes_hooks import register_hooks

if TYPE_CHECKING:
    from syncd_sandbox.github.fake import FakeGitHub

NOT_FOUND = "Not Found"
SEARCH_ITEM_NULLABLE = frozenset({"assignee", "milestone", "closed_at", "user"})


def _since_filter(request: FakeRequest) -> Any:
    from syncd_sandbox.github.fake import _parse_time

    raw = request.arg("since")
    return _parse_time(raw) if raw else None


def _filter_issues(fake: FakeGitHub, repo: FakeRepo, request: FakeRequest) -> list[FakeIssue]:
    state = request.arg("state", "open")
    creator = request.arg("creator")
    since = _since_filter(request)
    labels = [x for x in (request.arg("labels") or "").split(",") if x]
    out = []
    for issue in repo.issues.values():
        if state != "all" and issue.state != state:
            continue
        if creator and issue.user.lower() != creator.lower():
            continue
        if since and issue.updated_at < since:
            continue
        lowered = {n.lower() for n in issue.labels}
        if any(lab.lower() not in lowered for lab in labels):
            continue
        out.append(issue)
    sort = request.arg("sort", "created")
    keys = {
        "created": lambda i: (i.created_at, i.number),
        "updated": lambda i: (i.updated_at, i.number),
        "comments": lambda i: (len(i.comments), i.number),
    }
    out.sort(
        key=keys.get(sort or "created", keys["created"]),
        reverse=request.arg("direction", "desc") != "asc",
    )
    return out


def _search(fake: FakeGitHub, request: FakeRequest) -> FakeResponse:
    """`GET /search/issues`: quoted phrases and bare words match title or body; qualifiers
    repo:, author:, is:, state:, in: are understood. The index lags `search_lag_seconds`."""
    try:
        terms = shlex.split(request.arg("q", "") or "")
    except ValueError:
        return fake._error(422, "Validation Failed")
    words, quals = [], {}
    for term in terms:
        match = re.fullmatch(r"(repo|author|is|state|in|type):(.+)", term)
        if match:
            quals.setdefault(match[1], []).append(match[2])
        else:
            words.append(term.lower())
    horizon = fake.now() - timedelta(seconds=fake.search_lag_seconds)
    shapes = fake._shapes(request)
    items = []
    for repo in fake.repos.values():
        if "repo" in quals and repo.full_name.lower() not in [r.lower() for r in quals["repo"]]:
            continue
        for issue in repo.issues.values():
            if issue.updated_at > horizon:
                continue  # not indexed yet
            kinds = set(quals.get("is", [])) | set(quals.get("type", []))
            if ("pr" in kinds) != issue.is_pull_request and ({"pr", "issue"} & kinds):
                continue
            if "author" in quals and issue.user not in quals["author"]:
                continue
            states = [s for s in kinds | set(quals.get("state", [])) if s in ("open", "closed")]
            if states and issue.state not in states:
                continue
            where = quals.get("in", ["title", "body"])
            title = issue.title if "title" in where else ""
            body = (issue.body or "") if "body" in where else ""
            text = f"{title} {body}".lower()
            if all(w in text for w in words):
                item = {**shapes.issue(repo, issue), "score": 1.0}
                # Search results leave out optional fields that are empty.
                items.append(
                    {k: v for k, v in item.items() if v is not None or k in SEARCH_ITEM_NULLABLE}
                )
    items.sort(key=lambda i: i["number"])
    page = fake._list(request, items)
    if page.status == 200:
        page.body = {
            "total_count": len(items),
            "incomplete_results": False,
            "items": page.body,
            "search_type": "lexical",
        }
    return page


def register(fake: FakeGitHub) -> None:
    route = fake._route
    err = fake._error

    @route("GET", "/user", spec=None)
    def get_user(request: FakeRequest) -> FakeResponse:
        return FakeResponse(200, fake._shapes(request).user(fake.login))

    @route("GET", "/repos/{owner}/{repo}")
    def get_repo(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        return FakeResponse(200, fake._shapes(request).repository(repo))

    @route("GET", "/repos/{owner}/{repo}/issues")
    def list_issues(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        shapes = fake._shapes(request)
        issues = _filter_issues(fake, repo, request)
        return fake._list(request, [shapes.issue(repo, i) for i in issues])

    @route("POST", "/repos/{owner}/{repo}/issues")
    def create_issue(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        data = request.json()
        milestone = data.get("milestone")
        if milestone is not None and int(milestone) not in repo.milestones:
            return err(422, "Validation Failed")
        now = fake.now()
        issue = FakeIssue(
            fake.new_id(),
            fake._next_number(repo),
            str(data["title"]),
            data.get("body"),
            fake.login,
            now,
            now,
            labels=fake._labels_for(repo, data.get("labels") or []),
            assignees=list(data.get("assignees") or []),
            milestone=int(milestone) if milestone is not None else None,
        )
        for login in issue.assignees:
            fake.add_user(login)
        repo.issues[issue.number] = issue
        fake._emit(repo, "issues", "opened", issue)
        body = fake._shapes(request).issue(repo, issue)
        return FakeResponse(201, body, {"location": body["url"]})

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
    def get_issue(request: FakeRequest) -> FakeResponse:
        found = fake._issue(request)
        if found is None:
            return err(404, NOT_FOUND)
        return FakeResponse(200, fake._shapes(request).issue(*found))

    @route("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}")
    def update_issue(request: FakeRequest) -> FakeResponse:
        found = fake._issue(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, issue = found
        data = request.json() or {}
        before = issue.state
        for key in ("title", "body"):
            if data.get(key) is not None:
                setattr(issue, key, str(data[key]))
        if "labels" in data:
            issue.labels = fake._labels_for(repo, data["labels"])
        if "assignees" in data:
            issue.assignees = [a if isinstance(a, str) else a["login"] for a in data["assignees"]]
        if data.get("state") in ("open", "closed"):
            fake._set_state(issue, data["state"], data.get("state_reason"), fake.login)
        issue.updated_at = fake.now()
        if issue.state != before:
            fake._emit(repo, "issues", "closed" if issue.state == "closed" else "reopened", issue)
        else:
            fake._emit(repo, "issues", "edited", issue)
        return FakeResponse(200, fake._shapes(request).issue(repo, issue))

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    def list_comments(request: FakeRequest) -> FakeResponse:
        found = fake._issue(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, issue = found
        since = _since_filter(request)
        shapes = fake._shapes(request)
        items = [
            shapes.comment(repo, c)
            for c in issue.comments
            if since is None or c.updated_at >= since
        ]
        return fake._list(request, items)

    @route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    def create_comment(request: FakeRequest) -> FakeResponse:
        found = fake._issue(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, issue = found
        now = fake.now()
        comment = FakeComment(
            fake.new_id(), issue.number, request.json()["body"], fake.login, now, now
        )
        issue.comments.append(comment)
        issue.updated_at = now
        fake._emit(repo, "issue_comment", "created", issue)
        body = fake._shapes(request).comment(repo, comment)
        return FakeResponse(201, body, {"location": body["url"]})

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    def list_issue_labels(request: FakeRequest) -> FakeResponse:
        found = fake._issue(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, issue = found
        shapes = fake._shapes(request)
        return fake._list(request, [shapes.label(repo, repo.label(n)) for n in issue.labels])

    @route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    def add_labels(request: FakeRequest) -> FakeResponse:
        found = fake._issue(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, issue = found
        data = request.json()
        names = data.get("labels", []) if isinstance(data, dict) else data
        added = False
        for name in fake._labels_for(repo, names):
            if name.lower() not in {n.lower() for n in issue.labels}:
                issue.labels.append(name)
                added = True
        if added:
            issue.updated_at = fake.now()
            fake._emit(repo, "issues", "labeled", issue)
        shapes = fake._shapes(request)
        return FakeResponse(200, [shapes.label(repo, repo.label(n)) for n in issue.labels])

    @route("GET", "/repos/{owner}/{repo}/labels")
    def list_labels(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        shapes = fake._shapes(request)
        return fake._list(request, [shapes.label(repo, lab) for lab in repo.labels.values()])

    @route("POST", "/repos/{owner}/{repo}/labels")
    def create_label(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        data = request.json()
        if repo.label(data["name"]) is not None:
            return err(422, "Validation Failed")
        label = fake.add_label(repo.full_name, data["name"], data.get("color", "ededed"))
        label.description = data.get("description")
        return FakeResponse(201, fake._shapes(request).label(repo, label))

    @route("GET", "/repos/{owner}/{repo}/milestones", spec=None)
    def list_milestones(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        state = request.arg("state", "open")
        shapes = fake._shapes(request)
        items = [
            shapes.milestone(repo, m)
            for m in repo.milestones.values()
            if state == "all" or m.state == state
        ]
        return fake._list(request, items)

    @route("GET", "/search/issues")
    def search_issues(request: FakeRequest) -> FakeResponse:
        return _search(fake, request)

    register_hooks(fake)
