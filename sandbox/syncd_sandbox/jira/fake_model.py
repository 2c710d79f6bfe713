"""The fake Jira's data: a simplified Cloud site (projects, users, fields, a workflow, issues)
and how each renders as Jira Cloud v3 JSON (IssueBean, UserDetails, StatusDetails...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUS_CATEGORIES = {  # key -> (id, name, colour)
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
STATUSES = {  # name -> (id, category key)
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "In Review": ("10001", "indeterminate"),
    "Done": ("10002", "done"),
}
# Global transitions (available from any other status). One is named unlike its target status,
# as real workflows often are, so callers must match on `to.name` too.
TRANSITIONS = [
    ("11", "To Do", "To Do"),
    ("21", "Start Progress", "In Progress"),
    ("31", "In Review", "In Review"),
    ("41", "Done", "Done"),
]
ISSUE_TYPES = {  # name -> (id, hierarchy level)
    "Epic": ("10000", 1),
    "Task": ("10001", 0),
    "Story": ("10002", 0),
    "Bug": ("10003", 0),
}
SYSTEM_FIELDS = [
    ("summary", "Summary", "string"),
    ("description", "Description", "string"),
    ("labels", "Labels", "array"),
    ("assignee", "Assignee", "user"),
    ("reporter", "Reporter", "user"),
    ("issuetype", "Issue Type", "issuetype"),
    ("project", "Project", "project"),
    ("parent", "Parent", "issuelink"),
    ("duedate", "Due date", "date"),
    ("status", "Status", "status"),
    ("timetracking", "Time tracking", "timetracking"),
    ("created", "Created", "datetime"),
    ("updated", "Updated", "datetime"),
    ("priority", "Priority", "priority"),
]
CUSTOM_FIELDS = [  # id, name, JSON type
    ("customfield_10010", "Account", "string"),
    ("customfield_10014", "Epic Link", "string"),
    ("customfield_10020", "Client Owner", "string"),
]


def jira_time(ms: int) -> str:
    """Jira's timestamp format: 2026-01-05T09:00:00.000+0000."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


@dataclass
class FakeUser:
    account_id: str
    display_name: str
    email: str

    def render(self, base: str) -> dict[str, Any]:
        return {
            "self": f"{base}/rest/api/3/user?accountId={self.account_id}",
            "accountId": self.account_id,
            "accountType": "atlassian",
            "displayName": self.display_name,
            "emailAddress": self.email,
            "active": True,
            "timeZone": "UTC",
            "avatarUrls": {"48x48": f"{base}/avatar/{self.account_id}.png"},
        }


@dataclass
class FakeIssue:
    id: str
    key: str
    project: str
    issuetype: str
    summary: str
    created: int
    updated: int
    status: str = "To Do"
    description: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    assignee: str | None = None
    reporter: str | None = None
    parent: str | None = None
    duedate: str | None = None
    original_estimate: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    changelog: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status_category(self) -> list[str]:
        # JQL accepts the category's name ("Done") or key ("done")
        key = STATUSES[self.status][1]
        return [STATUS_CATEGORIES[key][1], key]


def estimate_seconds(text: str) -> int:
    units = {"w": 5 * 8 * 3600, "d": 8 * 3600, "h": 3600, "m": 60}
    total, number = 0, ""
    for char in text.replace(" ", ""):
        if char.isdigit():
            number += char
        else:
            total += int(number) * units[char]
            number = ""
    return total


def render_status(base: str, name: str) -> dict[str, Any]:
    status_id, category = STATUSES[name]
    cat_id, cat_name, colour = STATUS_CATEGORIES[category]
    return {
        "self": f"{base}/rest/api/3/status/{status_id}",
        "id": status_id,
        "name": name,
        "description": "",
        "iconUrl": f"{base}/images/icons/statuses/generic.png",
        "statusCategory": {
            "self": f"{base}/rest/api/3/statuscategory/{cat_id}",
            "id": cat_id,
            "key": category,
            "colorName": colour,
            "name": cat_name,
        },
    }


def render_issuetype(base: str, name: str) -> dict[str, Any]:
    type_id, level = ISSUE_TYPES[name]
    return {
        "self": f"{base}/rest/api/3/issuetype/{type_id}",
        "id": type_id,
        "name": name,
        "subtask": False,
        "hierarchyLevel": level,
        "description": "",
        "iconUrl": f"{base}/images/icons/issuetypes/{name.lower()}.svg",
    }


def render_changelog_entry(base: str, entry: dict[str, Any], users: dict[str, FakeUser]) -> dict:
    author = users.get(entry["author"])
    out = {"id": entry["id"], "created": jira_time(entry["created"]), "items": entry["items"]}
    if author:
        out["author"] = author.render(base)
    return out


def render_comment(
    base: str,
    issue: FakeIssue,
    comment: dict[str, Any],
    users: dict[str, FakeUser],
    with_properties: bool,
) -> dict[str, Any]:
    out = {
        "self": f"{base}/rest/api/3/issue/{issue.id}/comment/{comment['id']}",
        "id": comment["id"],
        "body": comment["body"],
        "created": jira_time(comment["created"]),
        "updated": jira_time(comment["created"]),
        "jsdPublic": True,
    }
    author = users.get(comment["author"])
    if author:
        out["author"] = author.render(base)
        out["updateAuthor"] = author.render(base)
    if with_properties:
        out["properties"] = comment["properties"]
    return out
