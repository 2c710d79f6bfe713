"""The python-jira client, configured for syncd: one retry layer, a rate limit, mapped errors.

- `max_retries=0` turns off ResilientSession's own retries (it re-sends a POST after a
  connection error: a duplicate ticket), and the governed adapter never retries either.
- Every HTTP request, including the ones python-jira makes on its own (serverInfo, /field),
  passes the site's governor (syncd.http_door's adapter, mounted on the client's session);
  a 429 pauses every request for its Retry-After.
- Failures become syncd errors through syncd.http_errors; a write that may have reached
  Jira (5xx, reset connection, read timeout) is an `UncertainError`.
- `str(JIRAError)` contains the request headers (the Authorization header): it is never used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from jira import JIRA, JIRAError
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from connectors.jira.settings import JiraSettings
from syncd.sdk import (
    WRITE,
    ActionError,
    Governor,
    Limit,
    TransientError,
    error_for_answer,
    error_for_transport,
    govern_session,
)

T = TypeVar("T")
DEFAULT_429_WAIT = 5.0  # seconds, when a 429 carries no Retry-After


def jira_limits(settings: JiraSettings) -> list[Limit]:
    """Jira Cloud: per-second bursts, and a cost budget in which a write costs more."""
    return [
        Limit("burst", settings.rate_limit_per_second, 1.0),
        Limit(
            "cost",
            settings.cost_budget,
            settings.cost_window_seconds,
            costs=((WRITE, min(settings.write_cost, settings.cost_budget)),),
        ),
    ]


class JiraApi:
    """A lazily built python-jira client and `call`, which maps every failure."""

    def __init__(self, settings: JiraSettings, governor: Governor) -> None:
        self.settings = settings
        self.governor = governor
        self._client: JIRA | None = None
        self._lock = threading.Lock()
        self._secrets = [s for s in (_token(settings),) if s]

    def _build(self) -> JIRA:
        token = _token(self.settings)
        auth: dict[str, Any] = (
            {"basic_auth": (self.settings.email, token)}
            if self.settings.auth == "basic"
            else {"token_auth": token}
        )
        client = JIRA(
            server=self.settings.base_url,
            options={"rest_api_version": "3", "check_update": False},
            max_retries=0,
            timeout=self.settings.timeout_seconds,
            # serverInfo is read below, once the adapter (rate limit, no retries) is mounted.
            get_server_info=False,
            **auth,
        )
        # `JIRA._session` is the ResilientSession every call of the client uses; python-jira
        # has no public accessor, so it is read once, here.
        govern_session(client._session, self.settings.base_url, self.governor)
        info = client.server_info()
        # What get_server_info=True would have set: Cloud-only behaviour keys off these.
        client.deploymentType = info.get("deploymentType")
        client._version = tuple(info.get("versionNumbers") or (0, 0, 0))
        return client

    @property
    def client(self) -> JIRA:
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def call(self, fn: Callable[[JIRA], T], *, write: bool = False) -> T:
        """Run `fn(client)`; raise syncd errors. `write`: the call changes something in Jira."""
        try:
            return fn(self.client)
        except JIRAError as exc:
            raise self._http_error(exc, write) from None
        except requests.RequestException as exc:
            raise self._transport_error(exc, write) from None

    # -- thin JSON helpers (python-jira has no public raw GET/POST) ------------------------

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.call(lambda c: c._get_json(path, params=params))

    def get_json_or_none(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Like `get_json`, but None when Jira answers 404 (gone, or never existed)."""

        def get(client: JIRA) -> Any:
            try:
                return client._get_json(path, params=params)
            except JIRAError as exc:
                if exc.status_code == 404:
                    return None
                raise

        return self.call(get)

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        def post(client: JIRA) -> Any:
            response = client._session.post(client._get_url(path), json=body)
            return response.json() if response.content else None

        return self.call(post, write=True)

    # -- error mapping -------------------------------------------------------------------

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _http_error(self, exc: JIRAError, write: bool) -> ActionError:
        status = exc.status_code or 0
        text = self.redact(str(exc.text or "")).strip()[:300]
        headers = dict(exc.response.headers) if exc.response is not None else {}
        if not status:
            return TransientError(f"Jira: {text or 'no response'}")
        return error_for_answer(
            status, f"Jira: {text}", headers, write=write, rate_limit_default=DEFAULT_429_WAIT
        )

    def _transport_error(self, exc: requests.RequestException, write: bool) -> ActionError:
        return error_for_transport(
            "Jira unreachable", exc, write=write, never_sent=_never_sent(exc)
        )


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached Jira (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError) and not isinstance(
        exc, requests.ReadTimeout
    )


def _token(settings: JiraSettings) -> str:
    return settings.api_token.get_secret_value() if settings.api_token else ""
