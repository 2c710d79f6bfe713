"""HubSpot's generated client through the account's governor, errors in syncd's classes.

Every API object's urllib3 pool manager passes the account's governor (syncd.http_door.
govern_urllib3): HubSpot counts every request per token in a rolling 10 s window, and
search requests also per second. Every call goes through `HubSpotApi.call(method, ...)`
with a generated `*_with_http_info` method; errors become syncd's classes through
syncd.http_errors (429 -> RateLimitedError with `retry_after`, a dropped connection on a
write -> UncertainError). The batch reads of a fetch skip the SDK (`HubSpotApi.read_json`,
`JsonReads`): plain JSON over http.client, past the same governor, errors the same classes.

Each API object is built on first use, and only then is its generated package imported: the
SDK has some 400 modules (notes, owners, properties, ... each with its own models), and an
idle daemon needs only what polling reads (issue 17).
"""

from __future__ import annotations

import contextvars
import http
import http.client
import importlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

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
    GovernedConnection,
    Governor,
    Limit,
    TransientError,
    account_id,
    error_for_answer,
    error_for_transport,
    exchange_together,
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
# What a request sent on http.client straight raises when no answer came (JsonReads).
TRANSPORT_ERRORS = (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError)
# Independent reads sent at once (HubSpotApi.together): at most this many at a time. Four: a
# full inbox batch (100 deals: two deal batch reads and two association reads) in one round trip.
FAN_OUT = 4


class NotFoundError(HttpNotFound):
    """HubSpot answered 404."""


@dataclass(frozen=True)
class JsonRead:
    """A read HubSpot takes as a POST of JSON and answers with JSON (the batch reads of a
    fetch): sent by `HubSpotApi.read_json`, its answer taken as plain dicts and lists."""

    name: str  # what an error calls it: the SDK method's name (`read`, `get_page`)
    path: str  # under the base URL, with the query
    body: dict[str, Any]


class JsonReads:
    """The connections `HubSpotApi.read_json` sends on: http.client straight, a keep-alive
    connection per read in flight, each thread its own. Through the SDK and the read
    threads, a webhook's fetch of one deal (three reads) cost 2.1 ms of CPU, so 0.7 ms
    (the generated client's parameters, urllib3's pool, the head and the body written
    apart, the hand-offs; issue 17). What the SDK did that matters is kept: the token, TLS
    verified as urllib3 verifies it (the system's CA store), the timeout, the governor's
    permit for each request, JSON in and out, no retries."""

    def __init__(
        self, base_url: str, token: str, user_agent: str, governor: Governor, timeout: float
    ) -> None:
        parts = urlsplit(base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.governor = governor
        self.timeout = timeout
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._local = threading.local()
        self._made: list[GovernedConnection] = []  # every thread's, for close()
        self._lock = threading.Lock()

    def exchange(self, reads: Sequence[JsonRead]) -> list[Any]:
        """Each read's answer (or what stopped it), all in flight at once from this thread."""
        conns = self._connections(len(reads))
        return exchange_together(
            [
                (conn, "POST", self.prefix + read.path, orjson.dumps(read.body), self.headers)
                for conn, read in zip(conns, reads, strict=True)
            ]
        )

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for conn in made:
            conn.close()

    def _connections(self, count: int) -> list[GovernedConnection]:
        mine: list[GovernedConnection] = getattr(self._local, "conns", None) or []
        while len(mine) < count:
            conn = GovernedConnection(
                self.governor,
                self.origin,
                timeout=self.timeout,
                kind_of=hubspot_kind,
                tls=self._tls,
            )
            with self._lock:
                self._made.append(conn)
            mine.append(conn)
        self._local.conns = mine
        return mine[:count]


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
        self.reads = JsonReads(
            settings.base_url or "https://api.hubapi.com",
            settings.access_token.get_secret_value() if settings.access_token else "",
            f"hubspot-api-client-python; {metadata.version('hubspot-api-client')}",
            self.governor,
            settings.timeout_seconds,
        )

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
        self.reads.close()
        for api in list(self._built.values()):
            api.api_client.rest_client.pool_manager.clear()

    def together(self, *calls: Callable[[], Any]) -> tuple[Any, ...]:
        """Run independent calls at once (each request still asks the governor) and return
        their results in order; when some raise, all are waited for, then the first of them
        (in call order) raises.
        One at a time instead while HubSpot's last answer left less room than they and the
        requests in flight need (so that none of them gets a 429 the governor would have
        prevented), or before any answer told how much room there is."""
        with self._fanning_out(len(calls)) as fanning:
            if not fanning:
                return tuple(call() for call in calls)
            pool = self._thread_pool()
            # Each call in its own copy of this context: the executor's BEFORE_WAIT hook.
            futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
            wait(futures)
        return tuple(future.result() for future in futures)

    def read_json(self, reads: Sequence[JsonRead]) -> list[Any]:
        """The answers of independent reads as plain JSON, in order; errors are `call`'s.
        They go out at once (at most FAN_OUT at a time), from this thread, each on a
        connection of its own, under `together`'s rule: one at a time while HubSpot's last
        answer left too little room, or before any answer said how much. When some fail, all
        are answered first, then the first failure (in the order given) is raised."""
        with self._fanning_out(len(reads)) as fanning:
            wave = FAN_OUT if fanning else 1
            answers: list[Any] = []
            for start in range(0, len(reads), wave):
                part = reads[start : start + wave]
                answers += [
                    self._json_answer(read, answer)
                    for read, answer in zip(part, self.reads.exchange(part), strict=True)
                ]
                if not fanning:  # one at a time: the first failure ends it, as a call would
                    self._raise_first(answers)
        self._raise_first(answers)
        return answers

    @staticmethod
    def _raise_first(answers: list[Any]) -> None:
        failed = next((a for a in answers if isinstance(a, Exception)), None)
        if failed is not None:
            raise failed

    @contextmanager
    def _fanning_out(self, count: int) -> Iterator[bool]:
        """Whether `count` independent requests may go out at once (see `together`)."""
        with self._room_lock:
            room = self.remaining
            fanning = count >= 2 and room is not None and room >= count + self.governor.in_flight
            if fanning:
                self._fanning += 1
        try:
            yield fanning
        finally:
            if fanning:
                with self._room_lock:
                    self._fanning -= 1

    def _json_answer(self, read: JsonRead, answer: Any) -> Any:
        """A read's answer as plain JSON, or the error it is (as `call` raises it)."""
        if isinstance(answer, ActionError):  # the governor's own (a wait too long)
            return answer
        if isinstance(answer, TRANSPORT_ERRORS):
            return self._network_error(read.name, answer, write=False)
        if isinstance(answer, Exception):
            return answer
        if answer.status >= 400:
            limited = {"x-hubspot-ratelimit-remaining": "0"} if answer.status == 429 else None
            self._note_remaining(limited or answer.headers)
            return self._answer_error(read.name, answer)
        self._note_remaining(answer.headers)
        try:
            return orjson.loads(answer.data)
        except orjson.JSONDecodeError as exc:
            bad = urllib3.exceptions.ProtocolError(f"unreadable JSON in the answer: {exc}")
            return self._network_error(read.name, bad, write=False)

    def _answer_error(self, name: str, answer: Any) -> ActionError:
        status = answer.status
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        headers = {k.lower(): v for k, v in answer.headers.items()}
        body = answer.data.decode("utf-8", "replace")
        message = f"HubSpot {name}: {_message(body) or reason or 'no answer'}"
        return error_for_answer(
            status, message, headers, write=False, rate_limit_default=10.0, not_found=NotFoundError
        )

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
