"""The one HTTP door of the `requests`-based SDKs (pyairtable, jira, PyGithub): a transport
adapter that asks the account's governor before each request, tells it what the answer said
about limits, and never retries by itself (the executor is syncd's one retry layer).

    session.mount(base_url, GovernedAdapter(governor, kind_of=by_method))

HubSpot's generated client speaks urllib3 directly; `govern_urllib3` wraps its pool manager
the same way. A client that builds its own requests to one origin (PyGithub's connection)
takes the adapter's pool once (`GovernedAdapter.pool_for`) and sends through it with
`GovernedAdapter.urlopen`: the same governor steps, without requests' per-request work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPHeaderDict
from urllib3.util import Timeout

from syncd.governor import RATE_LIMIT_HEADERS, READ, WRITE, Governor

R = TypeVar("R")
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
        send = super().send
        return self._governed(
            request.method or "GET",
            request.url or "",
            lambda: send(request, *args, **kwargs),
            lambda response: (response.status_code, response.headers),
        )

    def pool_for(
        self, url: str, *, verify: bool | str, proxies: Mapping[str, str]
    ) -> tuple[HTTPConnectionPool, str]:
        """The urllib3 pool `send` would use for requests to `url`'s origin (TLS
        verification and CA bundle, the proxy for it), worked out once; and the prefix of
        the URL to pass `urlopen` ("" for a path, the origin for an HTTP proxy's absolute
        form), as `send` would."""
        template = requests.PreparedRequest()
        template.prepare(method="GET", url=url.rstrip("/") + "/")
        pool = self.get_connection_with_tls_context(template, verify, proxies=dict(proxies))
        self.cert_verify(pool, template.url or "", verify, None)
        return pool, self.request_url(template, dict(proxies))[:-1]

    def urlopen(
        self,
        pool: HTTPConnectionPool,
        method: str,
        url: str,
        *,
        body: bytes | str | None,
        headers: Mapping[str, str],
        timeout: Timeout,
    ) -> BaseHTTPResponse:
        """One request through `pool` (from `pool_for`), past the governor, its answer read
        whole; errors are urllib3's. `send` less requests' preparation of every request and
        its Response (what PyGithub's connection needs, issue 17)."""
        return self._governed(
            method,
            url,
            lambda: pool.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                redirect=False,
                assert_same_host=False,
                retries=False,  # never re-send (see __init__); errors come out as raised
                timeout=timeout,
                preload_content=True,  # read whole, and the connection back in the pool
                decode_content=True,
            ),
            lambda response: (response.status, response.headers),
        )

    def _governed(
        self,
        method: str,
        url: str,
        send: Callable[[], R],
        answer: Callable[[R], tuple[int, Mapping[str, str]]],
    ) -> R:
        """Ask the governor, send, tell it what the answer said about limits; the request
        counts as in flight until its answer is in or it failed."""
        kind = self.kind_of(method, url)
        governor = self.governor
        started = governor.acquire(kind, max_wait=self.max_wait)  # = governor.permit()
        try:
            response = send()
            status, headers = answer(response)
            governor.observe(status, rate_limit_headers(headers))
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
