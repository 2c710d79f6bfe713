"""The GitHub client's connection (connectors/github/transport.py, issue 17): requests are
prepared and sent through the governed adapter without `Session.request`, so the environment
(proxies, no_proxy, CA bundle) is read once when the client is made, not on every call, and
what a requests session would add still happens: its default headers, its cookies, and one
keep-alive connection reused by a thread's requests."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from requests.utils import get_encoding_from_headers

from connectors.github import GitHubConnector
from connectors.github.transport import ca_bundle, charset_of
from syncd.errors import TransientError, UncertainError
from syncd.model import ActionContext
from syncd_sandbox import fakeserver
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse
from syncd_sandbox.github.fake import FakeGitHub

REPO = "acme/infrastructure"
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                   "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


class ForwardProxy:
    """A plain HTTP forward proxy on 127.0.0.1 that records the URLs it forwarded."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                proxy.urls.append(self.path)  # absolute-form: http://host:port/path
                target = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                path = target.path + (f"?{target.query}" if target.query else "")
                headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
                upstream.request(self.command, path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ForwardProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


def create(connector: GitHubConnector, key: str) -> str:
    spec = connector.actions["create_issue"]
    params = spec.params.model_validate({"repo": REPO, "title": f"issue {key}"})
    result = spec.perform(connector, params, ActionContext(key=key, rule_id="r", attempt=1))
    assert result.external_id is not None
    return result.external_id


def test_a_proxy_from_the_environment_is_used(
    no_proxy_env: pytest.MonkeyPatch, proxy: ForwardProxy, make_connector: Any, fake: FakeGitHub
) -> None:
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    connector = make_connector()
    create(connector, "a")
    create(connector, "b")
    assert [urlsplit(u).path for u in proxy.urls] == [f"/repos/{REPO}/issues"] * 2
    assert sorted(i.title for i in fake.repos[REPO].issues.values()) == ["issue a", "issue b"]


def test_creates_sent_together_through_a_proxy_each_make_their_issue(
    no_proxy_env: pytest.MonkeyPatch, proxy: ForwardProxy, make_connector: Any, fake: FakeGitHub
) -> None:
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    connector = make_connector()
    spec = connector.actions["create_issue"]
    assert spec.perform_together is not None
    keys = ["a", "b", "c"]
    params = [spec.params.model_validate({"repo": REPO, "title": f"issue {k}"}) for k in keys]
    ctxs = [ActionContext(key=k, rule_id="r", attempt=1) for k in keys]
    results = spec.perform_together(connector, params, ctxs, 3)
    numbers = {i.title: i.number for i in fake.repos[REPO].issues.values()}
    assert [r.external_id for r in results] == [f"{REPO}#{numbers[f'issue {k}']}" for k in keys]
    assert [urlsplit(u).path for u in proxy.urls] == [f"/repos/{REPO}/issues"] * 3
    assert connector.governor.in_flight == 0


def test_no_proxy_from_the_environment_is_honoured(
    no_proxy_env: pytest.MonkeyPatch, proxy: ForwardProxy, make_connector: Any, fake: FakeGitHub
) -> None:
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    create(make_connector(), "a")
    assert proxy.urls == []
    assert len(fake.repos[REPO].issues) == 1


def test_the_environment_is_read_when_the_client_is_made_not_per_request(
    no_proxy_env: pytest.MonkeyPatch, proxy: ForwardProxy, make_connector: Any, fake: FakeGitHub
) -> None:
    connector = make_connector()
    create(connector, "a")  # the PyGithub client is made at the first request
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)  # too late: the client was made without it
    create(connector, "b")
    assert proxy.urls == []
    assert len(fake.repos[REPO].issues) == 2


def test_the_ca_bundle_comes_from_the_environment_as_requests_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert ca_bundle(True) is True
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/curl.pem")
    assert ca_bundle(True) == "/etc/curl.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/requests.pem")
    assert ca_bundle(True) == "/etc/requests.pem"
    assert ca_bundle(False) is False  # verification off stays off
    assert ca_bundle("/own.pem") == "/own.pem"


def test_session_headers_and_cookies_are_sent_as_a_requests_session_would(
    make_connector: Any, fake: FakeGitHub
) -> None:
    def set_cookie(request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if not any(r.path.endswith("/issues") for r in fake.app.log[:-1]):
            response.headers["Set-Cookie"] = "seen=1; Path=/"
        return response

    fake.app.after.append(set_cookie)
    connector = make_connector()
    create(connector, "a")
    create(connector, "b")
    first, second = [r for r in fake.app.log if r.method == "POST"]
    assert "cookie" not in first.headers
    assert second.headers.get("cookie") == "seen=1"
    for sent in (first, second):
        assert "gzip" in sent.headers["accept-encoding"]  # the session's default headers
        assert sent.headers["authorization"].endswith(fake.token)  # PyGithub's own
        assert sent.headers["content-type"] == "application/json"


def test_a_thread_reuses_one_keep_alive_connection(
    monkeypatch: pytest.MonkeyPatch, make_connector: Any, fake: FakeGitHub
) -> None:
    accepted: list[tuple[str, int]] = []  # connections the fake accepted, by client address
    setup = fakeserver._Handler.setup

    def counted(self: Any) -> None:
        accepted.append(self.client_address)
        setup(self)

    monkeypatch.setattr(fakeserver._Handler, "setup", counted)
    connector = make_connector()
    for i in range(20):
        create(connector, str(i))
    others = threading.Thread(target=lambda: [create(connector, f"t{i}") for i in range(5)])
    others.start()
    others.join()
    assert len(fake.repos[REPO].issues) == 25
    assert len(accepted) == 2 and accepted[0] != accepted[1]  # one connection per thread


def test_every_request_passes_the_accounts_governor(
    no_proxy_env: pytest.MonkeyPatch, make_connector: Any, fake: FakeGitHub
) -> None:
    fake.add_label(REPO, "sales")
    connector = make_connector(create_missing_labels=False)  # a label list, then a create
    spec = connector.actions["create_issue"]
    for i in range(3):
        params = spec.params.model_validate({"repo": REPO, "title": f"{i}", "labels": ["sales"]})
        spec.perform(connector, params, ActionContext(key=f"k{i}", rule_id="r", attempt=1))
    assert [r.method for r in fake.app.log] == ["GET", "POST"] * 3
    assert connector.governor.sent == 6 and connector.governor.in_flight == 0


def test_a_create_whose_answer_comes_too_late_is_uncertain(
    no_proxy_env: pytest.MonkeyPatch, make_connector: Any, fake: FakeGitHub
) -> None:
    def late(request: FakeRequest, response: FakeResponse) -> FakeResponse:
        time.sleep(1.5)  # the connector's timeout is 1 s: the issue is made, no answer seen
        return response

    fake.app.after.append(late)
    connector = make_connector(timeout_seconds=1)
    with pytest.raises(UncertainError):
        create(connector, "a")
    assert len(fake.repos[REPO].issues) == 1
    assert connector.governor.in_flight == 0


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


def test_a_create_that_could_not_connect_was_never_sent(
    no_proxy_env: pytest.MonkeyPatch, make_connector: Any, fake: FakeGitHub
) -> None:
    closed_port = _closed_port()
    connector = make_connector(base_url=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(TransientError) as raised:
        create(connector, "a")
    assert not isinstance(raised.value, UncertainError)
    assert connector.governor.in_flight == 0


def test_a_create_that_could_not_reach_its_proxy_was_never_sent(
    no_proxy_env: pytest.MonkeyPatch, make_connector: Any, fake: FakeGitHub
) -> None:
    closed_port = _closed_port()
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port}")
    connector = make_connector()
    with pytest.raises(TransientError) as raised:
        create(connector, "a")
    assert not isinstance(raised.value, UncertainError)
    assert fake.repos[REPO].issues == {} and connector.governor.in_flight == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json",
        "text/plain",
        'text/html; charset="ISO-8859-2"',
        "application/octet-stream",
        "",
        None,
    ],
)
def test_an_answers_charset_is_what_requests_finds_in_its_content_type(
    content_type: str | None,
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    assert charset_of(content_type) == get_encoding_from_headers(headers)
