"""The one HTTP door of the `requests`-based SDKs (pyairtable, jira, PyGithub): a transport
adapter that asks the account's governor before each request, tells it what the answer said
about limits, and never retries by itself (the executor is syncd's one retry layer).

    session.mount(base_url, GovernedAdapter(governor, kind_of=by_method))

HubSpot's generated client speaks urllib3 directly; `govern_urllib3` wraps its pool manager
the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPHeaderDict

from syncd.governor import RATE_LIMIT_HEADERS, READ, WRITE, Governor

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def by_method(method: str, url: str) -> str:
    """The usual classification: a write changes something, everything else reads."""
    return WRITE if method.upper() in WRITE_METHODS else READ


def rate_limit_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    """The headers the governor reads: from requests' or urllib3's case-insensitive
    mappings five lookups instead of a copy of every header of every answer (any other
    mapping is passed whole)."""
    if not isinstance(headers, CaseInsensitiveDict | HTTPHeaderDict):
        return headers
    return {name: value for name in RATE_LIMIT_HEADERS if (value := headers.get(name)) is not None}


class GovernedAdapter(HTTPAdapter):
    """A `requests` adapter whose every request passes the governor."""

    def __init__(
        self,
        governor: Governor,
        *,
        kind_of: Callable[[str, str], str] = by_method,
        max_wait: float | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        # max_retries=0: urllib3 must not re-send anything (a POST could be applied twice).
        super().__init__(max_retries=0, pool_maxsize=pool_maxsize)
        self.governor = governor
        self.kind_of = kind_of
        self.max_wait = max_wait

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kind = self.kind_of(request.method or "GET", request.url or "")
        governor = self.governor
        started = governor.acquire(kind, max_wait=self.max_wait)  # = governor.permit()
        try:
            response = super().send(request, *args, **kwargs)
            governor.observe(response.status_code, rate_limit_headers(response.headers))
        finally:
            governor.release(kind, started)
        return response


def govern_session(
    session: requests.Session, base_url: str, governor: Governor, **options: Any
) -> GovernedAdapter:
    """Mount a governed adapter for every URL under `base_url` (and return it)."""
    adapter = GovernedAdapter(governor, **options)
    session.mount(base_url.rstrip("/") + "/", adapter)
    return adapter


def govern_urllib3(
    pool_manager: Any, governor: Governor, *, kind_of: Callable[[str, str], str] = by_method
) -> None:
    """Make a urllib3 PoolManager (HubSpot's client) ask the governor before each request."""
    send = pool_manager.request

    def governed(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("retries", False)
        with governor.permit(kind_of(method, url)):
            response = send(method, url, *args, **kwargs)
            governor.observe(response.status, rate_limit_headers(response.headers))
        return response

    pool_manager.request = governed
