"""Jira issue JSON -> syncd Observation, and the time formats Jira reads and writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.jira.adf import adf_to_text
from syncd.sdk import ObjectRef, Observation

SOURCE = "jira"
# The fields syncd reads from every issue (searches return only what is asked for).
ISSUE_FIELDS = [
    "summary",
    "status",
    "labels",
    "assignee",
    "issuetype",
    "parent",
    "duedate",
    "project",
    "updated",
    "created",
    "timetracking",
    "description",
]


def parse_time(text: str) -> int:
    """Epoch ms of a Jira timestamp such as 2026-01-05T09:00:00.000+0000."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


def jql_time(ms: int, time_zone: str) -> str:
    """A JQL date literal: minutes, in the searching user's time zone (how Jira reads it)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(ZoneInfo(time_zone))
    return moment.strftime("%Y-%m-%d %H:%M")


def _name(value: Any, key: str = "name") -> Any:
    return value.get(key) if isinstance(value, dict) else None


def status_history(issue: dict[str, Any], current: str | None) -> list[tuple[int, Any]]:
    """Every status the issue had, as (epoch ms, name), oldest first, ending with `current`."""
    fields = issue.get("fields") or {}
    created = parse_time(fields["created"]) if fields.get("created") else 0
    changes = []
    for entry in (issue.get("changelog") or {}).get("histories", []):
        for item in entry.get("items", []):
            if item.get("field") == "status":
                changes.append((parse_time(entry["created"]), entry.get("id", ""), item))
    changes.sort(key=lambda change: (change[0], change[1]))
    history: list[tuple[int, Any]] = []
    if changes:
        history.append((created, changes[0][2].get("fromString")))
        history.extend((when, item.get("toString")) for when, _, item in changes)
    if not history or history[-1][1] != current:
        # no status change logged (or a truncated changelog): the current status is all we know
        updated = parse_time(fields["updated"]) if fields.get("updated") else created
        history.append((updated if history else created, current))
    return history


def issue_observation(issue: dict[str, Any], site_url: str) -> Observation:
    """An Observation of one issue as returned by GET /issue or /search/jql (with changelog)."""
    fields = issue.get("fields") or {}
    status = fields.get("status") or {}
    assignee = fields.get("assignee") or {}
    timetracking = fields.get("timetracking") or {}
    key = issue["key"]
    values = {
        "key": key,
        "summary": fields.get("summary"),
        "status": status.get("name"),
        "status_category": _name(status.get("statusCategory")),
        "labels": sorted(fields.get("labels") or []),
        "assignee": assignee.get("accountId"),
        "assignee_name": assignee.get("displayName"),
        "issuetype": _name(fields.get("issuetype")),
        "parent": _name(fields.get("parent"), "key"),
        "duedate": fields.get("duedate"),
        "project": _name(fields.get("project"), "key"),
        "original_estimate": timetracking.get("originalEstimate"),
    }
    history = {}
    if "changelog" in issue:
        history["status"] = status_history(issue, values["status"])
    return Observation(
        ref=ObjectRef(SOURCE, "issue", key),
        fields=values,
        version=parse_time(fields["updated"]) if fields.get("updated") else None,
        history=history,
        context={
            "id": issue.get("id"),
            "url": f"{site_url.rstrip('/')}/browse/{key}",
            "description": adf_to_text(fields.get("description")),
            "created": parse_time(fields["created"]) if fields.get("created") else None,
        },
        created=parse_time(fields["created"]) if fields.get("created") else None,
    )
