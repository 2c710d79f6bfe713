"""HubSpot's generated client through the account's governor, errors in syncd's classes.

Every API object's urllib3 pool manager passes the account's governor (syncd.http_door.
govern_urllib3): HubSpot counts every request per token in a rolling 10 s window, and
search requests also per second. Every call goes through `HubSpotApi.call(method, ...)`
with a generated `*_with_http_info` method; errors become syncd's classes through
syncd.http_errors (429 -> RateLimitedError with `retry_after`, a dropped connection on a
write -> UncertainError).

Each API object is built on first use, and only then is its generated package imported: the
SDK has some 400 modules (notes, owners, properties, ... each with its own models), and an
idle daemon needs only what polling reads (issue 17).
"""

from __future__ import annotations

import contextvars
import importlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import orjson
import urllib3
from hubspot import HubSpot

from connectors.hubspot.settings import HubSpotSettings
from syncd.sdk import (
    READ,
    SEARCH,
    WRITE,
    ActionError,
    Clock,
    Governor,
    Limit,
    TransientError,
    account_id,
    error_for_answer,
    error_for_transport,
    govern_urllib3,
    governor_for,
)
from syncd.sdk import (
    NotFoundError as HttpNotFound,
)

# Errors raised before the request left this machine: never applied.
NOT_SENT = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
# With `retry` unset, urllib3's default Retry(3) re-sends GETs answered 429/503 with a
# Retry-After, sleeping on the wall clock, and re-tries connections: a second retry layer
# under the executor's. One layer only: the executor's.
NO_RETRY = urllib3.util.Retry(
    total=0, redirect=0, raise_on_status=False, respect_retry_after_header=False
)
# Independent reads sent at once (HubSpotApi.together): at most this many at a time. Four: a
# full inbox batch (100 deals: two deal batch reads and two association reads) in one round trip.
FAN_OUT = 4


class NotFoundError(HttpNotFound):
    """HubSpot answered 404."""


def hubspot_kind(method: str, url: str) -> str:
    """Search requests have their own per-second limit (and count in the general one)."""
    if url.split("?")[0].endswith("/search"):
        return SEARCH
    return WRITE if method.upper() in ("POST", "PUT", "PATCH", "DELETE") else READ


def hubspot_governor(settings: HubSpotSettings, clock: Clock) -> Governor:
    """The one governor of a HubSpot token (HubSpot counts per token), shared by every
    connector instance in this process that uses it."""
    token = settings.access_token.get_secret_value() if settings.access_token else ""
    account = account_id(settings.base_url or "", token)
    return governor_for(
        "hubspot",
        account,
        clock,
        lambda: Governor(
            "hubspot",
            [
                Limit("general", settings.requests_per_10s, 10.0),
                Limit("search", settings.search_requests_per_second, 1.0, frozenset({SEARCH})),
            ],
            clock=clock,
            margin=settings.rate_margin,
            default_retry_after=10.0,
            account=account,
        ),
    )


class _Api:
    """An API object of the generated client (`path` under `HubSpot().crm`), built on first
    access and kept: each access of the facade builds a new ApiClient and connection pool."""

    def __init__(self, path: str, package: str, governed: bool = True) -> None:
        self.path = path
        self.package = package  # the generated package: its ApiException is caught
        self.governed = governed

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, api: HubSpotApi | None, owner: type) -> Any:
        if api is None:
            return self
        built = api._built.get(self.name)
        return built if built is not None else api._build(self)


class HubSpotApi:
    deals = _Api("deals.basic_api", "hubspot.crm.deals")
    deals_batch = _Api("deals.batch_api", "hubspot.crm.deals")
    deals_search = _Api("deals.search_api", "hubspot.crm.deals")
    pipelines = _Api("pipelines.pipelines_api", "hubspot.crm.pipelines")
    # `syncd check`: do the fields exist (not governed, as before: one request per check)
    properties = _Api("properties.core_api", "hubspot.crm.properties", governed=False)
    associations = _Api("associations.v4.basic_api", "hubspot.crm.associations.v4")
    associations_batch = _Api("associations.v4.batch_api", "hubspot.crm.associations.v4")
    companies_batch = _Api("companies.batch_api", "hubspot.crm.companies")
    contacts_batch = _Api("contacts.batch_api", "hubspot.crm.contacts")
    notes = _Api("objects.notes.basic_api", "hubspot.crm.objects.notes")
    notes_batch = _Api("objects.notes.batch_api", "hubspot.crm.objects.notes")
    owners = _Api("owners.owners_api", "hubspot.crm.owners")

    def __init__(self, settings: HubSpotSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.client = HubSpot(
            access_token=(
                settings.access_token.get_secret_value() if settings.access_token else ""
            ),
            host=(settings.base_url or "https://api.hubapi.com").rstrip("/"),
            retry=NO_RETRY,
        )
        self.governor = hubspot_governor(settings, clock)
        # HubSpot's X-HubSpot-RateLimit-Remaining of the last answer (None: not seen yet).
        # The governor pauses everyone when it says 0, but requests already in flight
        # cannot see that: reads go out together only while it says there is room.
        self.remaining: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._fanning = 0  # fan-outs under way: their answers arrive in any order
        self._room_lock = threading.Lock()
        self._built: dict[str, Any] = {}  # _Api name -> its API object
        # Each generated package has its own ApiException class: those of the built APIs.
        self._api_exceptions: tuple[type[Exception], ...] = ()
        self._build_lock = threading.Lock()  # the inbox, pollers and executor share this

    def _build(self, spec: _Api) -> Any:
        with self._build_lock:
            built = self._built.get(spec.name)
            if built is not None:
                return built
            api: Any = self.client.crm
            for part in spec.path.split("."):
                api = getattr(api, part)
            if spec.governed:
                govern_urllib3(
                    api.api_client.rest_client.pool_manager, self.governor, kind_of=hubspot_kind
                )
            error = importlib.import_module(f"{spec.package}.exceptions").ApiException
            if error not in self._api_exceptions:
                self._api_exceptions += (error,)
            self._built[spec.name] = api  # last: other threads read it without the lock
            return api

    def close(self) -> None:
        """Drop the pooled connections of every API object."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        for api in list(self._built.values()):
            api.api_client.rest_client.pool_manager.clear()

    def together(self, *calls: Callable[[], Any]) -> tuple[Any, ...]:
        """Run independent calls at once (each request still asks the governor) and return
        their results in order; when some raise, all are waited for, then the first of them
        (in call order) raises.
        One at a time instead while HubSpot's last answer left less room than they and the
        requests in flight need (so that none of them gets a 429 the governor would have
        prevented), or before any answer told how much room there is."""
        with self._room_lock:
            room = self.remaining
            if len(calls) < 2 or room is None or room < len(calls) + self.governor.in_flight:
                room = None
            else:
                self._fanning += 1
        if room is None:
            return tuple(call() for call in calls)
        try:
            pool = self._thread_pool()
            # Each call in its own copy of this context: the executor's BEFORE_WAIT hook.
            futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
            wait(futures)
        finally:
            with self._room_lock:
                self._fanning -= 1
        return tuple(future.result() for future in futures)

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._room_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(FAN_OUT, thread_name_prefix="hubspot-read")
            return self._pool

    def call(
        self,
        method: Callable[..., Any],
        *args: Any,
        search: bool = False,
        write: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Call a generated `*_with_http_info` method; return the deserialised body."""
        kwargs.setdefault("_request_timeout", self.settings.timeout_seconds)
        name = getattr(method, "__name__", "call").removesuffix("_with_http_info")
        try:
            answer = method(*args, **kwargs)
            # a tuple (data, status, headers); the raw urllib3 answer with _preload_content off
            data, _status, headers = (
                answer if isinstance(answer, tuple) else (answer, answer.status, answer.headers)
            )
        except self._api_exceptions as exc:
            status, headers = getattr(exc, "status", None), getattr(exc, "headers", None)
            self._note_remaining(
                {"x-hubspot-ratelimit-remaining": "0"} if status == 429 else headers
            )
            raise self._api_error(name, exc, search=search, write=write) from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._network_error(name, exc, write=write) from None
        self._note_remaining(headers)
        return data

    def call_json(
        self,
        method: Callable[..., Any],
        *args: Any,
        search: bool = False,
        write: bool = False,
        **kwargs: Any,
    ) -> Any:
        """`call`, with the answer's JSON as plain dicts and lists instead of the SDK's models:
        for the batch reads of every webhook, where building a model per deal and per history
        entry cost more than the request (issue 17). Errors are `call`'s."""
        answer = self.call(method, *args, search=search, write=write, _preload_content=False)
        try:
            return orjson.loads(answer.data)
        except orjson.JSONDecodeError as exc:
            name = getattr(method, "__name__", "call").removesuffix("_with_http_info")
            bad = urllib3.exceptions.ProtocolError(f"unreadable JSON in the answer: {exc}")
            raise self._network_error(name, bad, write=write) from None
        finally:
            answer.release_conn()

    def _note_remaining(self, headers: Any) -> None:
        for key, value in dict(headers or {}).items():
            if key.lower() == "x-hubspot-ratelimit-remaining":
                try:
                    room: int | None = int(value)
                except (TypeError, ValueError):
                    room = None
                with self._room_lock:
                    if room is not None and self.remaining is not None and self._fanning:
                        room = min(room, self.remaining)  # the last to arrive is not the newest
                    self.remaining = room
                return

    # -- errors ------------------------------------------------------------------------

    def _api_error(self, name: str, exc: Any, *, search: bool, write: bool) -> ActionError:
        status = int(exc.status or 0)
        headers = {k.lower(): v for k, v in dict(exc.headers or {}).items()}
        message = f"HubSpot {name}: {_message(exc.body) or exc.reason or 'no answer'}"
        if status == 0:
            return TransientError(message)
        return error_for_answer(
            status,
            message,
            headers,
            write=write,
            rate_limit_default=1.0 if search else 10.0,
            not_found=NotFoundError,
        )

    @staticmethod
    def _network_error(name: str, exc: Exception, *, write: bool) -> ActionError:
        reason = getattr(exc, "reason", None) or exc
        return error_for_transport(
            f"HubSpot {name}", reason, write=write, never_sent=isinstance(reason, NOT_SENT)
        )


def _message(body: Any) -> str:
    """HubSpot's own `message` from an error body, short."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:200]
    return str(data.get("message", ""))[:300] if isinstance(data, dict) else ""
