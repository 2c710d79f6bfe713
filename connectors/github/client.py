"""PyGithub, configured for syncd: every request through the account's governor (the one
HTTP door, syncd.http_door), no retries of its own, failures in syncd's error classes
(syncd.http_errors).

PyGithub is imported and its client built on the first request, not at start: with
cryptography, PyNaCl and PyJWT (app auth) it is about 14 MB of an idle daemon's memory, and
a daemon whose rules act on GitHub only now and then need not hold it (issue 17).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import orjson
import requests
import urllib3

from syncd.sdk import (
    WRITE,
    ActionError,
    Clock,
    Governor,
    Limit,
    by_method,
    error_for_answer,
    error_for_transport,
    from_ms,
)

if TYPE_CHECKING:
    from github import Github, GithubException
    from github.Requester import Requester

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
T = TypeVar("T")


def github_limits(
    requests_per_hour: int,
    writes_per_minute: int,
    write_period_seconds: float = 60.0,
    writes_per_hour: int = 500,
) -> list[Limit]:
    """GitHub's documented limits: the primary budget (5,000 requests an hour per token)
    for every request, and the secondary limits on content-creating requests (80 a minute
    and 500 an hour)."""
    return [
        Limit("core", requests_per_hour, 3600.0),
        Limit("writes", writes_per_minute, write_period_seconds, frozenset({WRITE})),
        Limit("writes_hour", writes_per_hour, 3600.0, frozenset({WRITE})),
    ]


class JsonRequest(NamedTuple):
    """A request to the API under the base URL: a path, PyGithub's parameters, a JSON body."""

    verb: str
    path: str
    params: dict[str, Any] | None = None
    body: Any = None
    headers: dict[str, str] | None = None


class GovernedGithub:
    """A PyGithub client whose every request (objects, pagination, raw requests) passes the
    account's governor.

    PyGithub builds its requests session inside a connection object chosen per Requester
    (`Requester.injectConnectionClasses` exists but is global and turns connection reuse
    off for every client), so the Requester's own connection class is set to one that
    sends through the governed adapter (connectors.github.transport).
    """

    def __init__(
        self, *, token: str, base_url: str, timeout: float, clock: Clock, governor: Governor
    ) -> None:
        self.clock = clock
        self.governor = governor
        self._token = token
        self._base_url = base_url
        self._timeout = timeout
        self._gh: Github | None = None
        self._build_lock = threading.Lock()  # executor workers may make the first call together
        self._fixed: dict[str, str] = {}
        self._url_prefix = ""
        self._local = threading.local()  # each thread's spare connection objects
        self._spares: list[Any] = []  # every thread's, for close()

    @property
    def gh(self) -> Github:
        """The PyGithub client, built (and PyGithub imported) on first use."""
        gh = self._gh
        if gh is None:
            with self._build_lock:
                if self._gh is None:
                    self._gh = self._build()
                gh = self._gh
        return gh

    @property
    def requester(self) -> Requester:
        return self.gh.requester

    def _build(self) -> Github:
        from github import Auth, Github

        from connectors.github.threads import connection_per_thread
        from connectors.github.transport import governed_connection

        # retry=None: one retry layer (the executor); PyGithub would re-send a POST on 5xx.
        auth = Auth.Token(self._token) if self._token else None  # no token: `syncd check` only
        gh = Github(
            auth=auth,
            base_url=self._base_url,
            timeout=max(1, int(self._timeout)),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
        )
        connection_per_thread(gh.requester)  # executor workers share this client
        gh.requester._Requester__connectionClass = (  # type: ignore[attr-defined]
            governed_connection(self._base_url, self.governor)
        )
        # What `_json_request` adds to each request, as PyGithub would (token auth: fixed).
        self._fixed = self._fixed_headers(gh.requester)
        self._url_prefix = gh.requester._Requester__prefix  # type: ignore[attr-defined]
        return gh

    def call(self, verb: str, fn: Callable[[], T]) -> T:
        """Run a PyGithub call; any failure becomes a syncd ActionError."""
        try:
            return fn()
        except Exception as exc:
            error = self.error_of(verb, exc)
            if error is exc:
                raise
            raise error from None

    def error_of(self, verb: str, exc: Exception) -> Exception:
        """The syncd ActionError for a failed request (GitHub's error answer, or no answer);
        any other exception as it is (a bug, for the executor's unexpected-error path)."""
        from github import GithubException  # imported already when a request was made

        if isinstance(exc, GithubException):
            return error_for(exc, verb, self.clock.now().timestamp())
        if isinstance(
            exc,
            requests.RequestException
            | urllib3.exceptions.HTTPError
            | http.client.HTTPException
            | OSError,
        ):
            return error_for_transport(
                f"GitHub {verb}", exc, write=verb in WRITE_METHODS, never_sent=never_sent(exc)
            )
        return exc

    def request(
        self,
        verb: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """A raw JSON request (for calls PyGithub has no method for): `(headers, data)` as
        PyGithub's `requestJsonAndCheck` answers, its exceptions as syncd's errors. A path
        goes the short way (`_json_request`); a full URL (a next-page link) PyGithub's way,
        which first checks the URL's host."""
        if path.startswith("/"):
            return self.call(verb, lambda: self._json_request(verb, path, params, body, headers))
        return self.call(
            verb,
            lambda: self.requester.requestJsonAndCheck(
                verb, path, parameters=params, headers=headers, input=body
            ),
        )

    def request_together(
        self, requests_: list[JsonRequest], window: int
    ) -> list[tuple[dict[str, Any], Any] | Exception]:
        """Requests from this thread, up to `window` in flight at once, each on a
        connection object of its own (spares made like this thread's PyGithub connection):
        when `window` are out, the oldest answer is read and its connection takes the next
        request. Each `(headers, data)` as `request` answers, or the error that stopped
        that request (as `request` raises it). The same round trips as a thread per request
        in flight, without handing them to other threads and back (issue 17)."""
        out: list[tuple[dict[str, Any], Any] | Exception | None] = [None] * len(requests_)
        free = self._thread_connections(max(1, min(window, len(requests_))))
        sent: deque[tuple[int, Any]] = deque()  # (index, connection), oldest first

        def settle(at: int, conn: Any) -> None:
            try:
                out[at] = self._answered(conn, requests_[at])
            except Exception as exc:
                out[at] = self.error_of(requests_[at].verb, exc)
            free.append(conn)

        for at, one in enumerate(requests_):
            if sent and self.governor.wait_needed(by_method(one.verb, one.path)) > 0:
                while sent:  # the answers in flight are read before waiting for a turn
                    settle(*sent.popleft())
            if not free:
                settle(*sent.popleft())
            conn = free.pop()
            try:
                self._send(conn, one)
            except Exception as exc:
                out[at] = self.error_of(one.verb, exc)
                free.append(conn)
                continue
            sent.append((at, conn))
        while sent:
            settle(*sent.popleft())
        return [answer for answer in out if answer is not None]

    def _thread_connections(self, count: int) -> list[Any]:
        """`count` connection objects of this thread's, made like its PyGithub connection
        and kept for its next requests (closed by `close`). Not PyGithub's own: that one
        stays free for what PyGithub sends itself (a 301 followed) while these are busy."""
        first = self.requester._Requester__createConnection()  # type: ignore[attr-defined]
        spares: list[Any] | None = getattr(self._local, "spares", None)
        if spares is None:
            spares = self._local.spares = []
        while len(spares) < count:
            spare = first.twin()
            spares.append(spare)
            with self._build_lock:
                self._spares.append(spare)
        return spares[:count]

    def _json_request(
        self,
        verb: str,
        path: str,
        params: dict[str, Any] | None,
        body: Any,
        headers: dict[str, str] | None,
    ) -> tuple[dict[str, Any], Any]:
        """What `Requester.requestJsonAndCheck` does for a path, in one call, on the same
        connection object (this thread's, connectors/github/threads.py), so the same bytes
        go out: the headers PyGithub adds, the URL under the base URL's path with the
        parameters as PyGithub encodes them, the body as its JSON. Left out is what syncd
        does not use: its waits between requests (off), its rate-limit attributes (the
        governor reads the headers) and its debug log. Its layers were a tenth of the
        daemon's CPU per created issue (issue 17)."""
        connection = self.requester._Requester__createConnection()  # type: ignore[attr-defined]
        one = JsonRequest(verb, path, params, body, headers)
        self._send(connection, one)
        return self._answered(connection, one)

    def _send(self, connection: Any, one: JsonRequest) -> None:
        """`one` sent on `connection` (the first half of `_json_request`)."""
        sent = dict(one.headers) if one.headers else {}
        sent.update(self._fixed)
        url = self._url_prefix + one.path
        if one.params:
            url = self.requester.add_parameters_to_url(url, one.params)
        data = None
        if one.body is not None:
            sent["Content-Type"] = "application/json"
            data = json.dumps(one.body)
        connection.request(one.verb, url, data, sent)
        connection.send_stored()

    def _answered(self, connection: Any, one: JsonRequest) -> tuple[dict[str, Any], Any]:
        """The answer to `one`, sent by `_send` on `connection`, read as PyGithub reads it.
        The two answers PyGithub acts on itself (301: follow a moved repository; 202 to a
        GET: ask again) are left to it: the request is sent again PyGithub's way (neither
        changed anything)."""
        requester = self.requester
        answer = connection.receive_answer()
        status = answer.status
        if status == 301 or (status == 202 and one.verb in ("GET", "HEAD")):
            return requester.requestJsonAndCheck(
                one.verb, one.path, parameters=one.params, headers=one.headers, input=one.body
            )
        answer_headers = {name.lower(): value for name, value in answer.getheaders()}
        output = structured(answer.read())
        if status >= 400:
            raise requester.createException(status, answer_headers, output)
        if one.verb == "GET" and isinstance(output, dict) and "url" not in output:
            output["url"] = one.path  # as PyGithub's answers to a GET carry it
        return answer_headers, output

    @staticmethod
    def _fixed_headers(requester: Requester) -> dict[str, str]:
        """The headers PyGithub adds to every request: the token's, its user agent, the API
        version when one is set (a token's auth: the same on every request)."""
        fixed: dict[str, str] = {}
        if requester.auth is not None:
            requester.auth.authentication(fixed)
        fixed["User-Agent"] = requester._Requester__userAgent  # type: ignore[attr-defined]
        version = requester._Requester__apiVersion  # type: ignore[attr-defined]
        if version is not None:
            fixed["X-GitHub-Api-Version"] = version
        return fixed

    def close(self) -> None:
        with self._build_lock:
            spares, self._spares = self._spares, []
        for spare in spares:
            spare.close()
        if self._gh is not None:  # never built: nothing to close
            self._gh.close()


def structured(text: str) -> Any:
    """An answer's body as PyGithub reads it: nothing is None, JSON parsed, other text kept
    under "data" (text that starts like JSON but is not is an error). Parsed by orjson,
    which reads an integer past 64 bits as a float where json keeps it whole: GitHub's
    numbers (ids, counts) are far below that."""
    if not text:
        return None
    try:
        return orjson.loads(text)  # several times faster; what it refuses, json decides
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        if text.startswith(("{", "[")):
            raise
        return {"data": text}


def never_sent(exc: BaseException) -> bool:
    """Whether a request that failed without an answer surely never left: no connection
    could be made (refused, no such host), directly or to the proxy. Anything later (a
    reset, a timeout waiting for the answer) may have reached GitHub: a write stays
    uncertain. (urllib3's errors as the transport raises them, requests' as its adapter
    wraps them.)"""
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return True
    if isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
        return False
    wrapped = isinstance(exc, requests.ConnectionError | urllib3.exceptions.ProxyError)
    return wrapped and "NewConnectionError" in repr(exc)


def error_for(exc: GithubException, verb: str, now: float) -> ActionError:
    """The syncd error class for a GitHub error answer."""
    headers = {k.lower(): str(v) for k, v in (exc.headers or {}).items()}
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")[:300]
    return error_for_answer(
        exc.status, message, headers, write=verb in WRITE_METHODS, now=from_ms(int(now * 1000))
    )
