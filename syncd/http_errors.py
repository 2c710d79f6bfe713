"""Turning HTTP answers into syncd's error classes: the one place for all four SDK connectors.

`error_for_answer` maps a status (with the answer's headers), `error_for_transport` a failure
without an answer. Each connector only extracts its API's message (never a secret) and may
refine the result (Airtable's expired list iterator)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from syncd.errors import ActionError, PermanentError, TransientError, UncertainError

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# Statuses after which a write may have been applied (the server failed after receiving it).
MAYBE_APPLIED = frozenset({408, 500, 502, 503, 504})


class NotFoundError(PermanentError):
    """The API answered 404: the object does not exist (any more)."""


class RateLimitedError(TransientError):
    """The API said "slow down" (429, GitHub's 403 with Retry-After or an exhausted budget).
    The governor has already paused every request of the account; `retry_after` is the wait."""


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


def rate_limit_wait(
    status: int, headers: Mapping[str, str] | None, now: datetime | None = None
) -> float | None:
    """The wait a rate-limit answer asks for, or None when the answer is not one. GitHub
    answers 403 (not 429) with Retry-After or `x-ratelimit-remaining: 0`."""
    lowered = {k.lower(): str(v) for k, v in (headers or {}).items()}
    after = retry_after_seconds(lowered, now)
    if status == 429:
        return after
    if status == 403:
        if after is not None:
            return after
        if lowered.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lowered:
            try:
                moment = (now or datetime.now(UTC)).timestamp()
                return max(0.0, float(lowered["x-ratelimit-reset"]) - moment)
            except ValueError:
                return None
    return None


def error_for_answer(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    write: bool,
    now: datetime | None = None,
    rate_limit_default: float = 1.0,
    not_found: type[PermanentError] = NotFoundError,
) -> ActionError:
    """The error class of an HTTP error answer, for every connector.

    - a rate-limit answer -> RateLimitedError with the server's wait (or
      `rate_limit_default`: Airtable's 30 s lock-out, which it never states);
    - 404 -> `not_found` (permanent);
    - a write answered 408/5xx -> UncertainError: it may have been applied;
    - the rest by `error_for_status` (429/5xx/408/409 transient, other 4xx permanent).
    """
    text = f"HTTP {status}: {message}"[:500]
    is_limit = status == 429 or (
        status == 403 and rate_limit_wait(status, headers, now) is not None
    )
    if is_limit:
        wait = rate_limit_wait(status, headers, now)
        return RateLimitedError(text, retry_after=rate_limit_default if wait is None else wait)
    if status == 404:
        return not_found(text)
    if write and status in MAYBE_APPLIED:
        return UncertainError(text, retry_after=retry_after_seconds(headers, now))
    return error_for_status(status, message, headers)


def error_for_transport(
    what: str, exc: BaseException, *, write: bool, never_sent: bool = False
) -> ActionError:
    """No answer (reset, timeout, refused). A write that may have reached the server is
    uncertain; a read, or a request that never left (`never_sent`), is simply transient."""
    text = f"{what}: {type(exc).__name__}"
    if write and not never_sent:
        return UncertainError(f"{text} (the request may have been applied)")
    return TransientError(text)
