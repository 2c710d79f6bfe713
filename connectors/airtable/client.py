"""pyairtable, rate-limited and without its own retries, with errors in syncd's classes.

- One retry layer: pyairtable's default retry gives up on 429 after ~3 s, shorter than
  Airtable's 30 s lock-out, and the executor owns retries anyway; so the `Api` is built with
  `retry_strategy=None` and its session replaced by one that waits for the base's limiter
  before each request and, on a 429, blocks the limiter for the 30 s lock-out.
- Errors: 429 -> TransientError(retry_after=30); 5xx or a lost connection during a write ->
  UncertainError (it may have been applied); other 4xx -> PermanentError; 404 -> NotFound.
  Messages carry the status and Airtable's error type, never the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from pyairtable import Api

from syncd.sdk import (
    ActionError,
    PermanentError,
    RateLimiter,
    TransientError,
    UncertainError,
    error_for_status,
)

LOCKOUT_SECONDS = 30.0
ITERATOR_EXPIRED = "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"


class NotFound(PermanentError):
    """The record, table or webhook does not exist (404)."""


class IteratorExpired(TransientError):
    """A list offset is no longer valid (422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE): restart
    the listing. Transient, so that a caller that does not handle it simply retries."""


class RateLimitedSession(requests.Session):
    """Waits for the base's limiter before every request; a 429 blocks it for 30 s."""

    def __init__(self, limiter: RateLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def request(self, method: str, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        self.limiter.acquire()
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            self.limiter.block_for(LOCKOUT_SECONDS)
        return response


def make_api(token: str, base_url: str, limiter: RateLimiter, timeout: float) -> Api:
    api = Api(token, endpoint_url=base_url, retry_strategy=None,
              timeout=(timeout, timeout))  # type: ignore[arg-type]
    api.session = RateLimitedSession(limiter)
    api.api_key = token  # sets the Authorization header on the new session
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
    if status == 429:
        return TransientError(f"HTTP 429: {message}", retry_after=LOCKOUT_SECONDS)
    if status == 404:
        return NotFound(f"HTTP 404: {message}")
    if status == 422 and kind == ITERATOR_EXPIRED:
        return IteratorExpired(f"HTTP 422: {message}")
    if write and status >= 500:
        return UncertainError(f"HTTP {status}: {message}")
    return error_for_status(status, message, response.headers)


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
        cls = UncertainError if write else TransientError
        raise cls(f"Airtable unreachable: {type(exc).__name__}") from None
