"""Turning HTTP answers into syncd's error classes, shared by every connector."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from syncd.errors import ActionError, PermanentError, TransientError

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), else None."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def error_for_status(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> ActionError:
    """The error class for an HTTP failure: transient (retry) or permanent (dead letter)."""
    text = f"HTTP {status}: {message}"[:500]
    if status in TRANSIENT_STATUSES:
        return TransientError(text, retry_after=retry_after_seconds(headers))
    return PermanentError(text)
