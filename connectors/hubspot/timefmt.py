"""HubSpot's timestamp formats: ISO 8601 UTC with milliseconds out, ISO or epoch ms in."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.sdk import to_ms


def iso(ms: int) -> str:
    """ "2026-01-05T09:00:00.000Z", as HubSpot writes dates."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_ms(value: str | None) -> int | None:
    """Epoch ms from an ISO 8601 date or an epoch-ms string; None when neither."""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        return to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None
