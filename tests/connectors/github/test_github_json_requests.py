"""The GitHub client's raw JSON requests (connectors/github/client.py, issue 17): a path goes
the short way, `GovernedGithub._json_request`, and must send the same request and give the
same answer and errors as PyGithub's `requestJsonAndCheck`, which it replaces for paths."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from connectors.github import GitHubConnector
from connectors.github.client import structured
from syncd.errors import PermanentError
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse
from syncd_sandbox.github.fake import FakeGitHub

REPO = "acme/infrastructure"  # the repository the `fake` fixture creates

REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", f"/repos/{REPO}/issues", {"body": {"title": "Déal \u2603", "labels": []}}),
    ("GET", f"/repos/{REPO}/issues", {"params": {"state": "all", "per_page": 100}}),
    ("GET", f"/repos/{REPO}/issues", {"headers": {"If-None-Match": '"abc"'}}),
    ("GET", "/search/issues", {"params": {"q": 'repo:x "syncd:key=1"', "advanced": True}}),
    ("GET", f"/repos/{REPO}/labels", {}),
]


def _sent(fake: FakeGitHub) -> tuple[str, str, dict[str, list[str]], dict[str, str], bytes]:
    last = fake.app.log[-1]
    headers = dict(last.headers)
    return last.method, last.path, last.query, headers, last.body


@pytest.mark.parametrize(("verb", "path", "options"), REQUESTS)
def test_a_path_is_sent_and_answered_as_pygithub_does(
    fake: FakeGitHub, connector: GitHubConnector, verb: str, path: str, options: dict[str, Any]
) -> None:
    client = connector.client
    ours = client.request(verb, path, **options)
    sent_ours = _sent(fake)
    theirs = client.requester.requestJsonAndCheck(
        verb,
        path,
        parameters=options.get("params"),
        headers=options.get("headers"),
        input=options.get("body"),
    )
    sent_theirs = _sent(fake)
    assert sent_ours == sent_theirs  # method, path, query, every header, the body's bytes
    if verb == "POST":  # a second issue: its number and URL differ, the rest not
        assert ours[1]["title"] == theirs[1]["title"] == "Déal \u2603"
        assert ours[1]["number"] + 1 == theirs[1]["number"]
    else:
        assert ours[1] == theirs[1]
    assert set(ours[0]) == set(theirs[0])  # the answer's headers, by lower-case name
    varies = {"date", "etag", "last-modified", "content-length", "location", "x-ratelimit-used",
              "x-ratelimit-remaining"}  # fmt: skip
    assert {k: v for k, v in ours[0].items() if k not in varies} == {
        k: v for k, v in theirs[0].items() if k not in varies
    }


def test_an_error_answer_is_the_same_error_as_through_pygithub(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    client = connector.client
    path = "/repos/acme/missing/issues/1"
    with pytest.raises(PermanentError) as ours:
        client.request("GET", path)
    with pytest.raises(PermanentError) as theirs:  # PyGithub's exception, mapped by call()
        client.call("GET", lambda: client.requester.requestJsonAndCheck("GET", path))
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value) == "HTTP 404: Not Found"


def test_a_moved_repository_is_followed_as_pygithub_follows_it(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    moved = f"/repos/acme/old-name/issues/{_an_issue(connector)}"
    real = moved.replace("acme/old-name", REPO)

    def redirect(request: FakeRequest) -> FakeResponse | None:
        if request.path == moved:
            location = fake.base_url.rstrip("/") + real  # absolute, as GitHub sends it
            return FakeResponse(301, {"message": "Moved Permanently"}, {"Location": location})
        return None

    fake.app.before.append(redirect)
    _, data = connector.client.request("GET", moved)
    assert data["number"] == int(real.rsplit("/", 1)[1])
    assert [r.path for r in fake.app.log[-3:]] == [moved, moved, real]  # ours, PyGithub's


def _an_issue(connector: GitHubConnector) -> int:
    _, data = connector.client.request("POST", f"/repos/{REPO}/issues", body={"title": "x"})
    return int(data["number"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ('{"number": 7, "labels": []}', {"number": 7, "labels": []}),
        ("[1, 2.5]", [1, 2.5]),
        ("Not Found", {"data": "Not Found"}),
    ],
)
def test_an_answer_body_is_read_as_pygithub_reads_it(text: str, expected: Any) -> None:
    assert structured(text) == expected


def test_what_orjson_refuses_json_decides() -> None:
    assert math.isnan(structured("NaN"))  # json's extension, which orjson refuses


def test_a_body_that_starts_like_json_but_is_not_is_an_error() -> None:
    with pytest.raises(ValueError):
        structured('{"number": 7')


@pytest.fixture
def connector(make_connector: Callable[..., GitHubConnector]) -> GitHubConnector:
    return make_connector()
