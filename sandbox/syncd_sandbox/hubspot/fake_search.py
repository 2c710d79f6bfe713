"""CRM search semantics for the fake HubSpot: filter groups, one sort, `after` offsets, a cap.

HubSpot compares dates and numbers as numbers (a filter value may be epoch ms or ISO 8601),
strings as strings; it returns at most `limit` (<= 200) results per page and refuses to page
past 10,000 results of one query (`cap`, smaller in tests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from syncd_sandbox.hubspot.fake_data import Record

OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
MAX_LIMIT = 200


class SearchError(ValueError):
    """The request is one HubSpot answers with 400."""


def comparable(value: Any) -> tuple[int, Any]:
    """A sort/compare key: numbers (and dates, as epoch ms) before strings."""
    if value is None:
        return (2, "")
    text = str(value)
    try:
        return (0, float(text))
    except ValueError:
        pass
    try:
        return (0, datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return (1, text.lower())


def _matches(record: Record, flt: dict[str, Any]) -> bool:
    name, op = flt.get("propertyName"), flt.get("operator")
    if not name or op not in OPERATORS:
        raise SearchError(f"invalid filter {flt!r}")
    actual = record.properties.get(name)
    if op == "HAS_PROPERTY":
        return actual not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return actual in (None, "")
    if op in {"IN", "NOT_IN"}:
        inside = str(actual).lower() in {str(v).lower() for v in flt.get("values") or []}
        return inside if op == "IN" else not inside
    if op in {"CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}:
        found = str(flt.get("value", "")).lower().strip("*") in str(actual or "").lower()
        return found if op == "CONTAINS_TOKEN" else not found
    if actual is None:
        return op == "NEQ"
    left, right = comparable(actual), comparable(flt.get("value"))
    if op == "BETWEEN":
        return right <= left <= comparable(flt.get("highValue"))
    return {
        "EQ": left == right,
        "NEQ": left != right,
        "LT": left < right,
        "LTE": left <= right,
        "GT": left > right,
        "GTE": left >= right,
    }[op]


def _sort_key(sort: Any) -> tuple[str, bool]:
    """(property, descending) from `{"propertyName", "direction"}` or `"-name"`."""
    if isinstance(sort, dict):
        return sort.get("propertyName", "hs_object_id"), sort.get("direction") == "DESCENDING"
    text = str(sort)
    return text.lstrip("-"), text.startswith("-")


def search(
    records: list[Record], request: dict[str, Any], cap: int
) -> tuple[list[Record], int, str | None]:
    """Returns (page, total, next after)."""
    limit = int(request.get("limit") or 10)
    if not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}")
    offset = int(request.get("after") or 0)
    if offset >= cap:
        raise SearchError(f"paging past {cap} results is not allowed (after={offset})")
    groups = request.get("filterGroups") or []
    found = [
        r
        for r in records
        if not groups or any(all(_matches(r, f) for f in g.get("filters", [])) for g in groups)
    ]
    sorts = request.get("sorts") or []
    if len(sorts) > 1:
        raise SearchError("only one sort is supported")
    name, descending = _sort_key(sorts[0]) if sorts else ("hs_object_id", False)
    # Ties keep id order, like HubSpot's index (stable, not guaranteed by the API).
    found.sort(key=lambda r: int(r.id))
    found.sort(key=lambda r: comparable(r.properties.get(name)), reverse=descending)
    end = min(offset + limit, cap, len(found))
    page = found[offset:end]
    # Like HubSpot, a next page is announced even at the cap; asking for it is then a 400.
    more = end < len(found)
    return page, len(found), str(end) if more else None
