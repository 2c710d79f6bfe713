"""PyGithub's connection object, sending straight through the account's governed urllib3 pool.

PyGithub's requests connection sends each request with `Session.post(...)`: a `Request`
merged with the session's settings, the environment read for proxies and the CA bundle,
a `PreparedRequest` (URL parsed and re-quoted, headers copied into a case-insensitive
dict), the adapter's pool looked up and its TLS settings checked, and a `Response` built
around urllib3's answer. On a create that was most of the client's CPU (issue 17). Here
everything that is the same for every request is worked out once per connection object:
the environment (proxies for the one host, the CA bundle for https: a daemon's
environment is set before it starts), the urllib3 pool requests' adapter would pick (TLS
verification, proxy), the session's default headers and the timeout. Each request is then
handed to that pool through `GovernedAdapter.urlopen`: the governor's steps, no retries.
The connection class stays PyGithub's, one object per thread
(connectors/github/threads.py), each with its own keep-alive pool. A request is sent and
its answer read in two halves (`send_stored`, `receive_answer`), so that one thread can have
several requests in flight on objects of its own (`twin`; client.py's `request_together`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from http.client import HTTPMessage
from typing import Any

import requests
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass
from requests.cookies import MockRequest, MockResponse, get_cookie_header
from requests.utils import get_encoding_from_headers, get_environ_proxies, select_proxy
from urllib3.util import Timeout

from syncd.sdk import GovernedAdapter, GovernedConnection, Governor


def ca_bundle(verify: bool | str) -> bool | str:
    """What requests' `trust_env` makes of `verify=True`: the CA bundle named by the
    environment (REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE), if any."""
    if verify is not True:
        return verify
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class Answer:
    """What PyGithub's Requester reads of an answer (the interface of its RequestsResponse),
    over an answer read whole: its status, headers (http.client's) and body."""

    __slots__ = ("data", "headers", "status")

    def __init__(self, status: int, headers: HTTPMessage, data: bytes) -> None:
        self.status = status
        self.headers = headers  # case-insensitive
        self.data = data

    def getheaders(self) -> Iterable[tuple[str, str]]:
        """Each header once, a repeated one's values joined as requests joins them."""
        merged: dict[str, str] = {}
        for name, value in self.headers.items():
            low = name.lower()
            merged[low] = f"{merged[low]}, {value}" if low in merged else value
        return merged.items()

    def read(self) -> str:
        """The body as text, decoded as requests' `Response.text` would for GitHub's JSON
        (the charset of the content type; JSON is UTF-8)."""
        encoding = charset_of(self.headers.get("content-type")) or "utf-8"
        try:
            return str(self.data, encoding, errors="replace")
        except LookupError:  # an unknown charset
            return str(self.data, "utf-8", errors="replace")

    def iter_content(self, chunk_size: int | None = 1) -> Iterator[bytes]:
        data = self.data
        step = chunk_size or len(data) or 1
        return (data[i : i + step] for i in range(0, len(data), step))

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise requests.HTTPError(f"{self.status} answer from GitHub")


@functools.lru_cache(maxsize=32)
def charset_of(content_type: str | None) -> str | None:
    """requests' `get_encoding_from_headers` for an answer's Content-Type, worked out once
    per distinct value (an API sends the same one or two)."""
    headers = {"content-type": content_type} if content_type else {}
    return get_encoding_from_headers(headers)  # type: ignore[arg-type]  # reads .get only


def governed_connection(base_url: str, governor: Governor) -> type:
    """PyGithub's connection class for `base_url`, sending through `governor`, with the
    environment's proxies for `base_url` and CA bundle as they are now (the client is made
    when the daemon starts)."""
    https = base_url.startswith("https:")
    base = HTTPSRequestsConnectionClass if https else HTTPRequestsConnectionClass
    proxies = get_environ_proxies(base_url)  # honours no_proxy for base_url's host
    proxied = select_proxy(base_url, proxies) is not None
    bundle = ca_bundle(True) if https else True  # (a CA bundle means nothing to plain http)

    class Governed(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._made_with = (args, kwargs)  # for `twin`
            self._sent_headers: dict[str, str] = {}
            self._answered: Answer | None = None  # a proxied exchange's, until received
            verify: bool | str = kwargs.get("verify", True)  # what PyGithub's __init__ set
            self.verify = bundle if verify is True else verify
            self.origin = f"{self.protocol}://{self.host}:{self.port}"
            # The session's default headers (Accept, Connection; User-Agent is PyGithub's),
            # by lower-case name: PyGithub's own replace them.
            self.defaults = {name.lower(): (name, v) for name, v in self.session.headers.items()}
            self.direct: GovernedConnection | None = None
            if proxied:
                # Through a proxy (any kind requests knows): the urllib3 pool requests'
                # adapter would pick, mounted so that closing the session closes it.
                self.door = GovernedAdapter(governor, pool_maxsize=self.pool_size)
                self.session.mount(f"{self.protocol}://", self.door)
                self.pool, self.prefix = self.door.pool_for(
                    self.origin, verify=self.verify, proxies=proxies
                )
                self.time_limit = Timeout(connect=self.timeout, read=self.timeout)
            else:
                self.direct = GovernedConnection(
                    governor, self.origin, timeout=self.timeout, verify=self.verify
                )
                accept = ("Accept-Encoding", GovernedConnection.ACCEPT_ENCODING)
                self.defaults["accept-encoding"] = accept  # what it decodes

        def twin(self) -> Governed:
            """A connection object made as this one was: another keep-alive connection,
            for requests in flight at once from one thread (client.py)."""
            args, kwargs = self._made_with
            return Governed(*args, **kwargs)

        def getresponse(self) -> Answer:
            self.send_stored()
            return self.receive_answer()

        def send_stored(self) -> None:
            """The first half of `getresponse`: the request `request()` stored, sent. Its
            answer is read by `receive_answer`, which must follow. (Through a proxy, the
            whole exchange happens here.)"""
            given: dict[str, str] = self.headers
            mine = {name.lower() for name in given}
            headers = {n: v for low, (n, v) in self.defaults.items() if low not in mine}
            headers.update((name, v) for name, v in given.items() if v is not None)
            cookies = self.session.cookies
            if len(cookies):  # kept from an earlier answer, as a session sends them
                cookie = get_cookie_header(cookies, self._as_prepared(headers))
                if cookie:
                    headers["Cookie"] = cookie
            self._sent_headers = headers
            if self.direct is None:
                self._answered = self._exchange_proxied(headers)
                return
            body = self.input.encode("utf-8") if isinstance(self.input, str) else self.input
            self.direct.send(self.verb, self.url, body=body, headers=headers)

        def receive_answer(self) -> Answer:
            """The second half of `getresponse`: the answer to what `send_stored` sent."""
            answer = self._answered
            if answer is None:
                assert self.direct is not None
                sent = self.direct.receive()
                answer = Answer(sent.status, sent.headers, sent.data)
            self._answered = None
            if "set-cookie" in answer.headers or "set-cookie2" in answer.headers:
                # kept, as a session keeps them
                self.session.cookies.extract_cookies(
                    MockResponse(answer.headers),
                    MockRequest(self._as_prepared(self._sent_headers)),
                )
            return answer

        def _exchange_proxied(self, headers: dict[str, str]) -> Answer:
            raw = self.door.urlopen(
                self.pool,
                self.verb,
                self.prefix + self.url,
                body=self.input,
                headers=headers,
                timeout=self.time_limit,
            )
            # http.client's headers under urllib3's (the body urllib3 decoded)
            return Answer(raw.status, raw._original_response.msg, raw.data)  # type: ignore[attr-defined]

        def _as_prepared(self, headers: dict[str, str]) -> requests.PreparedRequest:
            """This request as requests' cookie functions read it (only with cookies)."""
            prepared = requests.PreparedRequest()
            prepared.prepare_url(self.origin + self.url, "")
            prepared.prepare_headers(headers)
            return prepared

        def close(self) -> None:
            if self.direct is not None:
                self.direct.close()
            super().close()

    return Governed
