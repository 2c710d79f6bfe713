"""One door to HubSpot: client-side rate limits, server rate-limit signals, error classes.

Every call goes through `HubSpotApi.call(method, ...)` with a generated `*_with_http_info`
method, so the response headers (`X-HubSpot-RateLimit-*`) are seen. Errors become syncd's
classes: 429 -> TransientError with `retry_after` (and the limiter blocks for that long),
other statuses via `syncd.sdk.error_for_status`, a dropped connection on a write -> UncertainError.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import hubspot.crm.associations.v4.exceptions as assoc_exc
import hubspot.crm.companies.exceptions as companies_exc
import hubspot.crm.contacts.exceptions as contacts_exc
import hubspot.crm.deals.exceptions as deals_exc
import hubspot.crm.objects.notes.exceptions as notes_exc
import hubspot.crm.owners.exceptions as owners_exc
import hubspot.crm.pipelines.exceptions as pipelines_exc
import urllib3
from hubspot import HubSpot

from connectors.hubspot.settings import HubSpotSettings
from syncd.sdk import (
    ActionError,
    Clock,
    PermanentError,
    RateLimiter,
    TransientError,
    UncertainError,
    error_for_status,
    retry_after_seconds,
)

# Each generated package has its own ApiException class.
API_EXCEPTIONS = tuple(
    m.ApiException
    for m in (deals_exc, pipelines_exc, assoc_exc, notes_exc, owners_exc, companies_exc,
              contacts_exc)
)
# Errors raised before the request left this machine: never applied.
NOT_SENT = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
# With `retry` unset, urllib3's default Retry(3) re-sends GETs answered 429/503 with a
# Retry-After, sleeping on the wall clock, and re-tries connections: a second retry layer
# under the executor's. One layer only: the executor's.
NO_RETRY = urllib3.util.Retry(total=0, redirect=0, raise_on_status=False,
                              respect_retry_after_header=False)
# Statuses after which a write may have been applied.
MAYBE_APPLIED = frozenset({408, 500, 502, 503, 504})


class NotFoundError(PermanentError):
    """HubSpot answered 404."""


_LIMITERS: dict[tuple[str, str, int, int], tuple[Clock, RateLimiter, RateLimiter]] = {}
_LIMITERS_LOCK = threading.Lock()


def account_limiters(settings: HubSpotSettings, clock: Clock) -> tuple[RateLimiter, RateLimiter]:
    """The (general, search) limiters of one HubSpot account, shared by every connector
    instance in this process that uses the same token (HubSpot counts per token)."""
    token = settings.access_token.get_secret_value() if settings.access_token else ""
    token_id = hashlib.sha256(token.encode()).hexdigest()
    key = (settings.base_url or "", token_id, settings.requests_per_10s,
           settings.search_requests_per_second)
    with _LIMITERS_LOCK:
        found = _LIMITERS.get(key)
        if found is None or found[0] is not clock:
            found = (
                clock,
                RateLimiter(settings.requests_per_10s, 10.0, clock, "hubspot"),
                RateLimiter(settings.search_requests_per_second, 1.0, clock, "hubspot-search"),
            )
            _LIMITERS[key] = found
        return found[1], found[2]


class HubSpotApi:
    def __init__(self, settings: HubSpotSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        client = HubSpot(
            access_token=(settings.access_token.get_secret_value()
                          if settings.access_token else ""),
            host=(settings.base_url or "https://api.hubapi.com").rstrip("/"),
            retry=NO_RETRY,
        )
        # Each property access builds a new ApiClient and connection pool: keep one of each.
        crm = client.crm
        self.deals = crm.deals.basic_api
        self.deals_batch = crm.deals.batch_api
        self.deals_search = crm.deals.search_api
        self.pipelines = crm.pipelines.pipelines_api
        self.properties = crm.properties.core_api  # `syncd check`: do the fields exist
        self.associations = crm.associations.v4.basic_api
        self.associations_batch = crm.associations.v4.batch_api
        self.companies_batch = crm.companies.batch_api
        self.contacts_batch = crm.contacts.batch_api
        self.notes = crm.objects.notes.basic_api
        self.notes_batch = crm.objects.notes.batch_api
        self.owners = crm.owners.owners_api
        self.general_limiter, self.search_limiter = account_limiters(settings, clock)

    def close(self) -> None:
        """Drop the pooled connections of every API object."""
        for api in (self.deals, self.deals_batch, self.deals_search, self.pipelines,
                    self.associations, self.associations_batch, self.companies_batch,
                    self.contacts_batch, self.notes, self.notes_batch, self.owners):
            api.api_client.rest_client.pool_manager.clear()

    def call(self, method: Callable[..., Any], *args: Any, search: bool = False,
             write: bool = False, **kwargs: Any) -> Any:
        """Call a generated `*_with_http_info` method; return the deserialised body."""
        self.general_limiter.acquire()
        if search:
            self.search_limiter.acquire()
        kwargs.setdefault("_request_timeout", self.settings.timeout_seconds)
        name = getattr(method, "__name__", "call").removesuffix("_with_http_info")
        try:
            data, _status, headers = method(*args, **kwargs)
        except API_EXCEPTIONS as exc:
            raise self._api_error(name, exc, search=search, write=write) from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._network_error(name, exc, write=write) from None
        self._note_limits(headers or {})
        return data

    # -- rate-limit signals ------------------------------------------------------------

    def _note_limits(self, headers: Mapping[str, str]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("x-hubspot-ratelimit-remaining") == "0":
            self.general_limiter.block_for(self._interval(lowered) or 10.0)

    @staticmethod
    def _interval(lowered: Mapping[str, str]) -> float | None:
        try:
            return int(lowered["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
        except (KeyError, ValueError):
            return None

    # -- errors ------------------------------------------------------------------------

    def _api_error(self, name: str, exc: Any, *, search: bool, write: bool) -> ActionError:
        status = int(exc.status or 0)
        headers = {k.lower(): v for k, v in dict(exc.headers or {}).items()}
        message = f"HubSpot {name}: {_message(exc.body) or exc.reason or 'no answer'}"
        if status == 0:
            return TransientError(message)
        if status == 404:
            return NotFoundError(f"HTTP 404: {message}")
        if status == 429:
            wait = (retry_after_seconds(headers) or self._interval(headers)
                    or (1.0 if search else 10.0))
            (self.search_limiter if search else self.general_limiter).block_for(wait)
            return TransientError(f"HTTP 429: {message}", retry_after=wait)
        error = error_for_status(status, message, headers)
        if write and status in MAYBE_APPLIED:
            return UncertainError(str(error), retry_after=getattr(error, "retry_after", None))
        return error

    @staticmethod
    def _network_error(name: str, exc: Exception, *, write: bool) -> ActionError:
        reason = getattr(exc, "reason", None) or exc
        message = f"HubSpot {name}: {type(reason).__name__}"
        if write and not isinstance(reason, NOT_SENT):
            return UncertainError(f"{message} (the request may have been applied)")
        return TransientError(message)


def _message(body: Any) -> str:
    """HubSpot's own `message` from an error body, short."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:200]
    return str(data.get("message", ""))[:300] if isinstance(data, dict) else ""
