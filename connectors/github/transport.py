"""PyGithub's connection object, sending through the account's governed adapter directly.

PyGithub's requests connection sends each request with `Session.post(...)`: a `Request`
merged with the session's settings, then `merge_environment_settings`, which reads the
proxies (every variable of the environment, and `no_proxy`) and the CA bundle from the
environment on every call, then `Session.send`. On a create that was about 40% of the
client's CPU (issue 17). Here the environment is read once, when the client is made
(proxies for its one host, the CA bundle for https: what requests would read on every
call; a daemon's environment is set before it starts), and each request is prepared and
handed to the governed adapter, with the session's headers and cookies as
`Session.request` would merge them. The connection class stays PyGithub's, one object
per thread (connectors/github/threads.py), each with its own keep-alive pool.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from github.Requester import (
    HTTPRequestsConnectionClass,
    HTTPSRequestsConnectionClass,
    RequestsResponse,
)
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies

from syncd.sdk import GovernedAdapter, Governor, by_method


def ca_bundle(verify: bool | str) -> bool | str:
    """What requests' `trust_env` makes of `verify=True`: the CA bundle named by the
    environment (REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE), if any."""
    if verify is not True:
        return verify
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def governed_connection(base_url: str, governor: Governor) -> type:
    """PyGithub's connection class for `base_url`, sending through `governor`, with the
    environment's proxies for `base_url` and CA bundle as they are now (the client is made
    when the daemon starts)."""
    https = base_url.startswith("https:")
    base = HTTPSRequestsConnectionClass if https else HTTPRequestsConnectionClass
    proxies = get_environ_proxies(base_url)  # honours no_proxy for base_url's host
    bundle = ca_bundle(True) if https else True  # (a CA bundle means nothing to plain http)

    class Governed(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # max_retries=0 (GovernedAdapter): the executor is the one retry layer.
            self.door = GovernedAdapter(governor, kind_of=by_method, pool_maxsize=self.pool_size)
            self.session.mount(f"{self.protocol}://", self.door)
            self.session.trust_env = False  # read once above, not per request
            self.proxies = dict(proxies)
            verify: bool | str = kwargs.get("verify", True)  # what PyGithub's __init__ set
            self.verify = bundle if verify is True else verify

        def getresponse(self) -> RequestsResponse:
            return RequestsResponse(self.send())

        def send(self) -> requests.Response:
            """What `Session.request(verb, url, allow_redirects=False)` does for PyGithub's
            requests (no hooks, no auth: PyGithub sets the Authorization header), with the
            settings of the environment read once."""
            session = self.session
            headers = CaseInsensitiveDict(session.headers)
            headers.update(self.headers)
            # PreparedRequest.prepare's steps, less auth (the session's is PyGithub's no-op,
            # which also keeps credentials in the URL out) and hooks (there are none).
            prepared = requests.PreparedRequest()
            prepared.prepare_method(self.verb)
            prepared.prepare_url(f"{self.protocol}://{self.host}:{self.port}{self.url}", "")
            prepared.prepare_headers({k: v for k, v in headers.items() if v is not None})
            if len(session.cookies):
                prepared.prepare_cookies(session.cookies)
            prepared.prepare_body(self.input, None)
            response = self.door.send(
                prepared,
                stream=False,
                timeout=self.timeout,
                verify=self.verify,
                cert=None,
                proxies=self.proxies,
            )
            found = response.headers  # case-insensitive
            if "set-cookie" in found or "set-cookie2" in found:  # kept, as a session does
                extract_cookies_to_jar(session.cookies, prepared, response.raw)
            response.content  # noqa: B018 - read the body now, as Session.send does
            return response

    return Governed
