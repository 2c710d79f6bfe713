"""PyGithub, configured for syncd: no retries of its own, client-side rate limits, and every
failure turned into syncd's error classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException

from connectors.github.threads import connection_per_thread
from syncd.clock import Clock
from syncd.errors import ActionError, TransientError, UncertainError
from syncd.http_errors import error_for_status, retry_after_seconds
from syncd.ratelimit import RateLimiter

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
T = TypeVar("T")


class LimitedGithub:
    """A PyGithub client whose every request first passes the rate limiters.

    `writes` holds content-creating requests to the secondary limit (80/min); `primary`
    stops everything once the server says the hourly budget is spent, until it resets.
    """

    def __init__(self, *, token: str, base_url: str, timeout: float, clock: Clock,
                 write_limit: int, write_period: float) -> None:
        self.clock = clock
        # retry=None: one retry layer (the executor); PyGithub would re-send a POST on 5xx.
        auth = Auth.Token(token) if token else None  # no token: `syncd check` only
        self.gh = Github(auth=auth, base_url=base_url, timeout=max(1, int(timeout)),
                         retry=None, seconds_between_requests=None,
                         seconds_between_writes=None, lazy=True)
        self.writes = RateLimiter(write_limit, write_period, clock, name="github-writes")
        self.primary = RateLimiter(5000, 3600, clock, name="github-core")
        self.requester = self.gh.requester
        connection_per_thread(self.requester)  # executor workers share this client
        self._send = self.requester.requestJson
        # Every PyGithub call (objects, pagination, raw requests) goes through requestJson.
        self.requester.requestJson = self._request_json  # type: ignore[method-assign]

    def _request_json(self, verb: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.primary.acquire()
        if verb in WRITE_METHODS:
            self.writes.acquire()
        try:
            status, headers, output = self._send(verb, url, *args, **kwargs)
        except (requests.Timeout, requests.ConnectionError, OSError) as exc:
            what = f"{verb} {url.split('?')[0]}: {type(exc).__name__}"
            if verb in WRITE_METHODS:
                raise UncertainError(f"{what}: the request may have been applied") from None
            raise TransientError(what) from None
        self._observe_limits(status, headers)
        return status, headers, output

    def _observe_limits(self, status: int, headers: dict[str, Any]) -> None:
        wait = rate_limit_wait(status, headers, self.clock.now().timestamp())
        if wait is not None:
            target = self.writes if status in (403, 429) and "retry-after" in headers else None
            (target or self.primary).block_for(wait)

    def call(self, verb: str, fn: Callable[[], T]) -> T:
        """Run a PyGithub call; a GithubException becomes a syncd ActionError."""
        try:
            return fn()
        except GithubException as exc:
            raise error_for(exc, verb, self.clock.now().timestamp()) from None

    def request(self, verb: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None
                ) -> tuple[dict[str, Any], Any]:
        """A raw JSON request through PyGithub's requester (for calls it has no method for)."""
        return self.call(verb, lambda: self.requester.requestJsonAndCheck(
            verb, path, parameters=params, headers=headers, input=body))

    def close(self) -> None:
        self.gh.close()


def rate_limit_wait(status: int, headers: dict[str, Any], now: float) -> float | None:
    """Seconds the server asked us to wait (Retry-After or an exhausted budget), else None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    after = retry_after_seconds(lowered)
    if status in (403, 429) and after is not None:
        return after
    if lowered.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lowered:
        try:
            return max(0.0, float(lowered["x-ratelimit-reset"]) - now)
        except ValueError:
            return None
    return None


def error_for(exc: GithubException, verb: str, now: float) -> ActionError:
    """The syncd error class for a GitHub error answer."""
    headers = {k.lower(): str(v) for k, v in (exc.headers or {}).items()}
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")[:300]
    wait = rate_limit_wait(exc.status, headers, now)
    if exc.status in (403, 429) and wait is not None:
        return TransientError(f"HTTP {exc.status}: {message}", retry_after=wait)
    if verb in WRITE_METHODS and exc.status in (500, 502, 504):
        # The server may have applied the write before failing to answer.
        return UncertainError(
            f"HTTP {exc.status}: {message}", retry_after=retry_after_seconds(headers)
        )
    return error_for_status(exc.status, message, headers)
