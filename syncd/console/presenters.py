"""How stored things read for a person: object names, times, values. Shared by the console's
pages (and meant for the CLI's tables)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

# Fields that name an object, in the order tried (HubSpot, Airtable, GitHub, Jira, email...).
NAME_FIELDS = (
    "dealname",
    "name",
    "Name",
    "title",
    "Title",
    "summary",
    "subject",
    "email",
    "firstname",
)
# Where connectors put an object's page in the SaaS tool (as the alert mails read it).
LINK_KEYS = ("url", "link", "html_url", "hs_url")


def object_name(fields: dict[str, Any]) -> str:
    """The object's name from its last seen fields, or "" when none is known."""
    for key in NAME_FIELDS:
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            if key == "firstname" and isinstance(fields.get("lastname"), str):
                return f"{value} {fields['lastname']}".strip()[:120]
            return value.strip()[:120]
    return ""


def object_link(fields: dict[str, Any], context: dict[str, Any]) -> str | None:
    """The object's page in its SaaS tool, when its connector gave one (http(s) only)."""
    for key in LINK_KEYS:
        value = context.get(key, fields.get(key))
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value
    return None


def iso(ms: int | None) -> str:
    """For <time datetime=...>; the page's script shows it in the viewer's time zone."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def utc_text(ms: int | None) -> str:
    """The text shown before (or without) the script: UTC, minutes."""
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ms: int | None, now_ms: int) -> str:
    """ "3 min ago", "2 h ago", "in 5 s"."""
    if ms is None:
        return "never"
    seconds = (now_ms - ms) / 1000
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            text = f"{seconds / size:.0f} {unit}"
            break
    else:
        text = f"{seconds:.0f} s"
    return f"in {text}" if future else f"{text} ago"


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def value(v: Any) -> str:
    """A field value as written in a change line ("'qualified'", "empty")."""
    if v is None:
        return "empty"
    if isinstance(v, str):
        return repr(v[:200])
    return json.dumps(v, default=str)[:200]


def pretty(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def change_text(kind: str, field: str | None, old: Any, new: Any) -> str:
    if kind == "changed" and field:
        return f"{field}: {value(old)} → {value(new)}"
    return kind


def object_label(
    source: str | None, object_type: str | None, object_id: str | None, fields: dict[str, Any]
) -> str:
    """ "Ocean (localdb:item:a)", or the reference alone when no name is known."""
    if not source:
        return "-"
    ref = f"{source}:{object_type}:{object_id}"
    name = object_name(fields)
    return f"{name} ({ref})" if name else ref


def table(headers: list[str], rows: list[list[str]], right: frozenset[int] = frozenset()) -> str:
    """Columns aligned to their widest cell; `right`: the columns aligned right (numbers)."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        out = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])
