"""PyGithub, configured for syncd: every request through the account's governor (the one
HTTP door, syncd.http_door), no retries of its own, failures in syncd's error classes
(syncd.http_errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException

from connectors.github.threads import connection_per_thread
from connectors.github.transport import governed_connection
from syncd.sdk import (
    WRITE,
    ActionError,
    Clock,
    Governor,
    Limit,
    error_for_answer,
    error_for_transport,
    from_ms,
)

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
        # retry=None: one retry layer (the executor); PyGithub would re-send a POST on 5xx.
        auth = Auth.Token(token) if token else None  # no token: `syncd check` only
        self.gh = Github(
            auth=auth,
            base_url=base_url,
            timeout=max(1, int(timeout)),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
        )
        self.requester = self.gh.requester
        connection_per_thread(self.requester)  # executor workers share this client
        self.requester._Requester__connectionClass = (  # type: ignore[attr-defined]
            governed_connection(base_url, governor)
        )

    def call(self, verb: str, fn: Callable[[], T]) -> T:
        """Run a PyGithub call; any failure becomes a syncd ActionError."""
        try:
            return fn()
        except GithubException as exc:
            raise error_for(exc, verb, self.clock.now().timestamp()) from None
        except (requests.RequestException, OSError) as exc:
            never_sent = (
                isinstance(exc, requests.ConnectionError)
                and not isinstance(exc, requests.ReadTimeout)
                and "NewConnectionError" in repr(exc)
            )
            raise error_for_transport(
                f"GitHub {verb}", exc, write=verb in WRITE_METHODS, never_sent=never_sent
            ) from None

    def request(
        self,
        verb: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """A raw JSON request through PyGithub's requester (for calls it has no method for)."""
        return self.call(
            verb,
            lambda: self.requester.requestJsonAndCheck(
                verb, path, parameters=params, headers=headers, input=body
            ),
        )

    def close(self) -> None:
        self.gh.close()


def error_for(exc: GithubException, verb: str, now: float) -> ActionError:
    """The syncd error class for a GitHub error answer."""
    headers = {k.lower(): str(v) for k, v in (exc.headers or {}).items()}
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")[:300]
    return error_for_answer(
        exc.status, message, headers, write=verb in WRITE_METHODS, now=from_ms(int(now * 1000))
    )
