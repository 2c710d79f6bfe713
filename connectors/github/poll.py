"""Polling issues: a per-repository `since` and ETag kept in a JSON cursor.

GitHub's `since` is inclusive and second-grained, so the issues updated at the boundary
second come back on the next poll; the cursor remembers them (`seen`) and they are skipped.
With nothing new, the same URL is asked with `If-None-Match`, and the 304 costs no rate limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PAGE_SIZE = 100


@dataclass
class RepoCursor:
    since: str | None = None  # ISO-8601, GitHub's `since`
    etag: str | None = None  # of the answer to exactly this `since`
    seen: list[str] = field(default_factory=list)  # "number@updated_at" at the boundary

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "state": "all",
            "sort": "updated",
            "direction": "asc",
            "per_page": PAGE_SIZE,
        }
        if self.since:
            params["since"] = self.since
        return params


def load_cursor(cursor: str | None) -> dict[str, RepoCursor]:
    if not cursor:
        return {}
    data = json.loads(cursor)
    return {repo: RepoCursor(**value) for repo, value in data.get("repos", {}).items()}


def dump_cursor(cursors: dict[str, RepoCursor]) -> str:
    return json.dumps(
        {"repos": {repo: c.__dict__ for repo, c in sorted(cursors.items())}}, sort_keys=True
    )


def advance(
    cursor: RepoCursor, items: list[dict[str, Any]], etag: str | None
) -> tuple[RepoCursor, list[dict[str, Any]]]:
    """The new cursor after a 200 answer, and the issues not seen before (PRs dropped)."""
    fresh = [i for i in items if f"{i['number']}@{i['updated_at']}" not in cursor.seen]
    if not items:
        return RepoCursor(cursor.since, etag, cursor.seen), []
    newest = max(i["updated_at"] for i in items)
    seen = [f"{i['number']}@{i['updated_at']}" for i in items if i["updated_at"] == newest]
    if newest == cursor.since:
        seen = sorted(set(seen) | set(cursor.seen))
    # The ETag belongs to the old `since`; it is only reused while `since` does not move.
    next_etag = etag if newest == cursor.since else None
    issues = [i for i in fresh if not i.get("pull_request")]
    return RepoCursor(newest, next_etag, seen), issues
