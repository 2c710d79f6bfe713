"""The fake GitHub's records and their JSON shapes (as in GitHub's REST OpenAPI description).

Every URL is built on the fake's own base URL so that a client following links stays on it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DOCS = "https://docs.github.com/rest"


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, id_: int) -> str:
    return base64.b64encode(f"{kind}{id_}".encode()).decode()


@dataclass
class FakeLabel:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class FakeMilestone:
    id: int
    number: int
    title: str
    state: str = "open"
    created_at: datetime | None = None


@dataclass
class FakeComment:
    id: int
    issue_number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime


@dataclass
class FakeIssue:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    milestone: int | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    is_pull_request: bool = False
    comments: list[FakeComment] = field(default_factory=list)


@dataclass
class FakeDelivery:
    id: int
    guid: str
    delivered_at: datetime
    event: str
    action: str | None
    status_code: int
    headers: dict[str, str]
    body: bytes
    redelivery: bool = False


@dataclass
class FakeHook:
    id: int
    url: str
    secret: str | None
    events: list[str]
    created_at: datetime
    active: bool = True
    deliveries: list[FakeDelivery] = field(default_factory=list)


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    created_at: datetime
    labels: dict[str, FakeLabel] = field(default_factory=dict)
    milestones: dict[int, FakeMilestone] = field(default_factory=dict)
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    hooks: dict[int, FakeHook] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def label(self, name: str) -> FakeLabel | None:
        """Label names are case-insensitive on GitHub."""
        for label in self.labels.values():
            if label.name.lower() == name.lower():
                return label
        return None


class Shapes:
    """Builds API JSON for records, with links on `base` (the fake's http://host:port)."""

    def __init__(self, base: str, user_ids: dict[str, int]) -> None:
        self.base = base.rstrip("/")
        self.user_ids = user_ids

    def user(self, login: str | None) -> dict[str, Any] | None:
        if login is None:
            return None
        api = f"{self.base}/users/{login}"
        uid = self.user_ids.get(login, 0)
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("User", uid),
            "avatar_url": f"{self.base}/avatars/{login}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.base}/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "User",
            "site_admin": False,
        }

    def label(self, repo: FakeRepo, label: FakeLabel) -> dict[str, Any]:
        return {
            "id": label.id,
            "node_id": node_id("Label", label.id),
            "url": f"{self.base}/repos/{repo.full_name}/labels/{label.name}",
            "name": label.name,
            "description": label.description,
            "color": label.color,
            "default": False,
        }

    def milestone(self, repo: FakeRepo, ms: FakeMilestone) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/milestones/{ms.number}"
        open_issues = sum(
            1 for i in repo.issues.values() if i.milestone == ms.number and i.state == "open"
        )
        closed = sum(
            1 for i in repo.issues.values() if i.milestone == ms.number and i.state == "closed"
        )
        return {
            "url": api,
            "html_url": f"{self.base}/{repo.full_name}/milestone/{ms.number}",
            "labels_url": f"{api}/labels",
            "id": ms.id,
            "node_id": node_id("Milestone", ms.id),
            "number": ms.number,
            "state": ms.state,
            "title": ms.title,
            "description": None,
            "creator": None,
            "open_issues": open_issues,
            "closed_issues": closed,
            "created_at": iso(ms.created_at),
            "updated_at": iso(ms.created_at),
            "closed_at": None,
            "due_on": None,
        }

    def issue(self, repo: FakeRepo, issue: FakeIssue) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/issues/{issue.number}"
        html = f"{self.base}/{repo.full_name}/issues/{issue.number}"
        labels = [self.label(repo, lab) for n in issue.labels if (lab := repo.label(n))]
        assignees = [self.user(login) for login in issue.assignees]
        milestone = repo.milestones.get(issue.milestone) if issue.milestone else None
        out: dict[str, Any] = {
            "id": issue.id,
            "node_id": node_id("Issue", issue.id),
            "url": api,
            "repository_url": f"{self.base}/repos/{repo.full_name}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": html,
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": labels,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": self.milestone(repo, milestone) if milestone else None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(issue.comments),
            "closed_at": iso(issue.closed_at),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_by": self.user(issue.closed_by),
            "author_association": "OWNER",
            "timeline_url": f"{api}/timeline",
            "reactions": self.reactions(f"{api}/reactions"),
        }
        if issue.is_pull_request:
            pr = f"{self.base}/repos/{repo.full_name}/pulls/{issue.number}"
            out["pull_request"] = {
                "url": pr,
                "html_url": f"{self.base}/{repo.full_name}/pull/{issue.number}",
                "diff_url": f"{pr}.diff",
                "patch_url": f"{pr}.patch",
                "merged_at": None,
            }
        return out

    @staticmethod
    def reactions(url: str) -> dict[str, Any]:
        counts = dict.fromkeys(
            ["total_count", "+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"],
            0,
        )
        return {"url": url, **counts}

    def comment(self, repo: FakeRepo, comment: FakeComment) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/issues/comments/{comment.id}"
        return {
            "id": comment.id,
            "node_id": node_id("IssueComment", comment.id),
            "url": api,
            "html_url": f"{self.base}/{repo.full_name}/issues/{comment.issue_number}"
            f"#issuecomment-{comment.id}",
            "body": comment.body,
            "user": self.user(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "issue_url": f"{self.base}/repos/{repo.full_name}/issues/{comment.issue_number}",
            "author_association": "OWNER",
            "reactions": self.reactions(f"{api}/reactions"),
        }

    def repository(self, repo: FakeRepo) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": False,
            "owner": self.user(repo.owner),
            "html_url": f"{self.base}/{repo.full_name}",
            "url": api,
            "issues_url": f"{api}/issues{{/number}}",
            "labels_url": f"{api}/labels{{/name}}",
            "hooks_url": f"{api}/hooks",
            "description": None,
            "fork": False,
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
            "has_issues": True,
            "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
            "default_branch": "main",
        }

    def hook(self, repo: FakeRepo, hook: FakeHook) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/hooks/{hook.id}"
        last = hook.deliveries[-1] if hook.deliveries else None
        return {
            "type": "Repository",
            "id": hook.id,
            "name": "web",
            "active": hook.active,
            "events": hook.events,
            "config": {"content_type": "json", "insecure_ssl": "0", "url": hook.url},
            "updated_at": iso(hook.created_at),
            "created_at": iso(hook.created_at),
            "url": api,
            "test_url": f"{api}/test",
            "ping_url": f"{api}/pings",
            "deliveries_url": f"{api}/deliveries",
            "last_response": {
                "code": last.status_code if last else None,
                "status": ("active" if last and 200 <= last.status_code < 300 else "unused"),
                "message": None,
            },
        }

    def delivery_item(self, repo: FakeRepo, delivery: FakeDelivery) -> dict[str, Any]:
        ok = 200 <= delivery.status_code < 300
        return {
            "id": delivery.id,
            "guid": delivery.guid,
            "delivered_at": iso(delivery.delivered_at),
            "redelivery": delivery.redelivery,
            "duration": 0.01,
            "status": "OK" if ok else "failed",
            "status_code": delivery.status_code,
            "event": delivery.event,
            "action": delivery.action,
            "installation_id": None,
            "repository_id": repo.id,
            "throttled_at": None,
        }
