"""pyairtable through the base's governor, without its own retries, errors in syncd's classes.

- One HTTP door: the `Api`'s requests session gets the governed adapter (syncd.http_door)
  mounted for the API's URL, so every request (schema, records, webhook payloads, CLI)
  waits for the base's governor, and a 429 pauses the whole base for the 30 s lock-out.
- One retry layer: pyairtable's default retry gives up on 429 after ~3 s, shorter than
  Airtable's 30 s lock-out, and the executor owns retries anyway; so the `Api` is built with
  `retry_strategy=None` (and the adapter never retries either).
- Errors (syncd.http_errors): 429 -> RateLimitedError(retry_after=30); 5xx or a lost
  connection during a write -> UncertainError (it may have been applied); other 4xx ->
  PermanentError; 404 -> NotFound. Messages carry the status and Airtable's error type,
  never the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from pyairtable import Api

from syncd.sdk import (
    ActionError,
    Governor,
    Limit,
    NotFoundError,
    TransientError,
    error_for_answer,
    error_for_transport,
    govern_session,
)

LOCKOUT_SECONDS = 30.0
RATE_LIMIT_PER_SECOND = 5  # Airtable's documented limit, per base
ITERATOR_EXPIRED = "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"


class NotFound(NotFoundError):
    """The record, table or webhook does not exist (404)."""


class IteratorExpired(TransientError):
    """A list offset is no longer valid (422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE): restart
    the listing. Transient, so that a caller that does not handle it simply retries."""


def airtable_governor(
    api_key: str, account: str, per_second: int, margin: float, clock: object
) -> Governor:
    """Airtable's documented limit: `per_second` requests a second per base; a 429 locks
    the base out for 30 s, which the governor then waits out for every request."""
    return Governor(
        api_key,
        [Limit("base", per_second, 1.0)],
        clock=clock,  # type: ignore[arg-type]
        margin=margin,
        lockout_seconds=LOCKOUT_SECONDS,
        default_retry_after=LOCKOUT_SECONDS,
        account=account,
    )


def make_api(token: str, base_url: str, governor: Governor, timeout: float) -> Api:
    api = Api(token, endpoint_url=base_url, retry_strategy=None, timeout=(timeout, timeout))  # type: ignore[arg-type]
    govern_session(api.session, base_url, governor)
    return api


def _error_type(response: requests.Response) -> str:
    """Airtable's error type from `{"error": {"type": ...}}`, `{"error": "NOT_FOUND"}` or
    `{"errors": [{"error": ...}]}`."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("type", ""))
    if isinstance(err, str):
        return err
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("error", ""))
    return ""


def error_from_response(response: requests.Response, *, write: bool) -> ActionError:
    status = response.status_code
    kind = _error_type(response)
    message = f"Airtable {response.request.method} {_path(response)}: {kind or 'error'}"
    if status == 422 and kind == ITERATOR_EXPIRED:
        return IteratorExpired(f"HTTP 422: {message}")
    return error_for_answer(
        status,
        message,
        response.headers,
        write=write,
        rate_limit_default=LOCKOUT_SECONDS,
        not_found=NotFound,
    )


def _path(response: requests.Response) -> str:
    """The URL path only: the query may hold a formula with record values."""
    return requests.utils.urlparse(response.url or "").path


@contextmanager
def airtable_errors(*, write: bool) -> Iterator[None]:
    """Turn pyairtable's and requests' exceptions into syncd's error classes."""
    try:
        yield
    except requests.HTTPError as exc:
        if exc.response is None:
            raise TransientError("Airtable: HTTP error without a response") from None
        raise error_from_response(exc.response, write=write) from None
    except requests.RequestException as exc:  # reset, timeout, truncated or garbled answer
        raise error_for_transport("Airtable unreachable", exc, write=write) from None
