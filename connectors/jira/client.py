"""The python-jira client, configured for syncd: one retry layer, a rate limit, mapped errors.

- `max_retries=0` turns off ResilientSession's own retries (it re-sends a POST after a
  connection error: a duplicate ticket), and the mounted adapter uses urllib3 `Retry(0)`.
- Every HTTP request, including the ones python-jira makes on its own (serverInfo, /field),
  waits for the rate limiter; a 429 blocks the limiter for its Retry-After.
- Failures become syncd errors: `error_for_status` for HTTP answers; a write that may have
  reached Jira (5xx, reset connection, read timeout) is an `UncertainError`.
- `str(JIRAError)` contains the request headers (the Authorization header): it is never used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from jira import JIRA, JIRAError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from connectors.jira.settings import JiraSettings
from syncd.sdk import (
    ActionError,
    RateLimiter,
    TransientError,
    UncertainError,
    error_for_status,
    retry_after_seconds,
)

T = TypeVar("T")
DEFAULT_429_WAIT = 5.0  # seconds, when a 429 carries no Retry-After


class _LimitedAdapter(HTTPAdapter):
    """Waits for the limiter before each request; a 429 blocks it for the Retry-After."""

    def __init__(self, limiter: RateLimiter) -> None:
        super().__init__(max_retries=Retry(total=0, read=False, redirect=False))
        self.limiter = limiter

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.limiter.acquire()
        response = super().send(request, *args, **kwargs)
        if response.status_code == 429:
            wait = retry_after_seconds(response.headers)
            self.limiter.block_for(DEFAULT_429_WAIT if wait is None else wait)
        return response


class JiraApi:
    """A lazily built python-jira client and `call`, which maps every failure."""

    def __init__(self, settings: JiraSettings, limiter: RateLimiter) -> None:
        self.settings = settings
        self.limiter = limiter
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
        adapter = _LimitedAdapter(self.limiter)
        client._session.mount("http://", adapter)
        client._session.mount("https://", adapter)
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
        if write and status >= 500:
            return UncertainError(f"Jira HTTP {status} on a write (may be applied): {text}")
        return error_for_status(status, f"Jira: {text}", headers)

    def _transport_error(self, exc: requests.RequestException, write: bool) -> ActionError:
        kind = type(exc).__name__
        if _never_sent(exc) or not write:
            return TransientError(f"Jira unreachable ({kind})")
        return UncertainError(f"Jira connection failed during a write ({kind}); may be applied")


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
