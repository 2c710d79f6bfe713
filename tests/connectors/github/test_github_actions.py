"""Issue actions through PyGithub over HTTP against the fake GitHub."""

from __future__ import annotations

import pytest
import requests

from connectors.github import GitHubConnector
from connectors.github.params import (
    AddLabelsParams,
    CloseIssueParams,
    CommentParams,
    CreateIssueParams,
)
from connectors.github.text import ZERO_WIDTH_JOINER, marker
from syncd.errors import PermanentError
from syncd.model import ActionContext
from syncd_sandbox.github import openapi as gh_openapi
from syncd_sandbox.github.fake import FakeGitHub

REPO = "acme/infrastructure"  # the repository the `fake` fixture creates
TOKEN = "ghp_test-token-not-real"


def ctx(key: str) -> ActionContext:
    return ActionContext(key=key, rule_id="test-rule", attempt=1)


def create(connector: GitHubConnector, key: str, **params: object):
    spec = connector.actions["create_issue"]
    values = {"repo": REPO, "title": "New Hub - Request deployment: Ocean", **params}
    return spec.perform(connector, CreateIssueParams(**values), ctx(key))


def test_create_issue_writes_marker_labels_assignees_and_milestone(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    fake.add_milestone(REPO, "Q3 hubs")
    result = create(
        connector,
        "rule-1:deal-42",
        body="Community: Ocean",
        labels=["hub", "new-hub"],
        assignees=["octocat"],
        milestone="Q3 hubs",
    )

    [issue] = fake.issues(REPO)
    assert result.external_id == f"{REPO}#{issue.number}"
    assert result.url == f"{fake.base_url}/{REPO}/issues/{issue.number}"
    assert issue.body.startswith("Community: Ocean")
    assert issue.body.endswith(marker("rule-1:deal-42"))
    assert issue.labels == ["hub", "new-hub"]
    assert issue.assignees == ["octocat"]
    assert issue.milestone == 1
    assert issue.user == "syncd-bot"


def test_finder_finds_the_issue_by_its_marker_and_only_that_one(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    spec = connector.actions["create_issue"]
    params = CreateIssueParams(repo=REPO, title="t")
    assert spec.find_existing(connector, params, ctx("k-1")) is None
    made = spec.perform(connector, params, ctx("k-1"))
    spec.perform(connector, params, ctx("k-2"))
    # A person's issue quoting the marker is not ours (creator filter).
    fake.open_issue(REPO, "copy", user="mallory", body=marker("k-3"))

    assert spec.find_existing(connector, params, ctx("k-1")) == made
    assert spec.find_existing(connector, params, ctx("k-3")) is None


def test_finder_falls_back_to_search_for_issues_older_than_the_window(
    fake: FakeGitHub, connector: GitHubConnector, clock
) -> None:
    spec = connector.actions["create_issue"]
    params = CreateIssueParams(repo=REPO, title="old")
    made = spec.perform(connector, params, ctx("old-key"))
    clock.advance(hours=24 * 30)

    assert spec.find_existing(connector, params, ctx("old-key")) == made
    assert any(r.path == "/search/issues" for r in fake.app.log)


def test_mentions_are_neutralised_unless_allowed(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    create(connector, "m-1", title="Ping @octocat", body="cc @octocat and @acme/ops, mail a@b.org")
    create(connector, "m-2", title="Ping @octocat", body="cc @octocat", allow_mentions=True)
    quiet, loud = fake.issues(REPO)

    assert "@octocat" not in quiet.title and "@octocat" not in quiet.body
    assert "@acme/ops" not in quiet.body
    assert f"@{ZERO_WIDTH_JOINER}octocat" in quiet.body
    assert "a@b.org" in quiet.body
    assert loud.title == "Ping @octocat" and "cc @octocat" in loud.body


def test_unknown_label_is_created_by_default(fake: FakeGitHub, connector: GitHubConnector) -> None:
    create(connector, "l-1", labels=["brand-new"])
    assert fake.repos[REPO].label("brand-new") is not None


def test_unknown_label_is_a_permanent_error_naming_it_when_creation_is_off(
    fake: FakeGitHub, make_connector
) -> None:
    fake.add_label(REPO, "hub")
    strict = make_connector(create_missing_labels=False)
    with pytest.raises(PermanentError, match="brand-new") as err:
        create(strict, "l-2", labels=["hub", "brand-new"])
    assert "hub," not in str(err.value)
    assert fake.issues(REPO) == []
    create(strict, "l-3", labels=["HUB"])  # names are case-insensitive, like GitHub's
    assert len(fake.issues(REPO)) == 1


def test_comment_with_marker_and_finder(fake: FakeGitHub, connector: GitHubConnector) -> None:
    issue = fake.open_issue(REPO, "Need a hub")
    spec = connector.actions["comment"]
    params = CommentParams(repo=REPO, issue_number=issue.number, body="Thanks @octocat!")
    assert spec.find_existing(connector, params, ctx("c-1")) is None

    made = spec.perform(connector, params, ctx("c-1"))

    [comment] = fake.repos[REPO].issues[issue.number].comments
    assert comment.body.endswith(marker("c-1"))
    assert "@octocat" not in comment.body
    assert made.url.endswith(f"#issuecomment-{comment.id}")
    assert spec.find_existing(connector, params, ctx("c-1")) == made
    assert spec.find_existing(connector, params, ctx("c-2")) is None


def test_add_labels_is_idempotent(fake: FakeGitHub, connector: GitHubConnector) -> None:
    issue = fake.open_issue(REPO, "x", labels=["hub"])
    spec = connector.actions["add_labels"]
    params = AddLabelsParams(repo=REPO, issue_number=issue.number, labels=["new-hub", "hub"])
    assert spec.idempotent
    spec.perform(connector, params, ctx("a"))
    spec.perform(connector, params, ctx("a"))
    assert issue.labels == ["hub", "new-hub"]


def test_close_issue_is_idempotent_and_keeps_the_first_reason(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    issue = fake.open_issue(REPO, "x")
    spec = connector.actions["close_issue"]
    spec.perform(
        connector,
        CloseIssueParams(repo=REPO, issue_number=issue.number, state_reason="not_planned"),
        ctx("c"),
    )
    writes = sum(1 for r in fake.app.log if r.method == "PATCH")
    spec.perform(connector, CloseIssueParams(repo=REPO, issue_number=issue.number), ctx("c"))

    assert (issue.state, issue.state_reason, issue.closed_by) == (
        "closed",
        "not_planned",
        "syncd-bot",
    )
    assert sum(1 for r in fake.app.log if r.method == "PATCH") == writes == 1


def test_missing_issue_is_a_permanent_error(connector: GitHubConnector) -> None:
    spec = connector.actions["close_issue"]
    with pytest.raises(PermanentError, match="404"):
        spec.perform(connector, CloseIssueParams(repo=REPO, issue_number=999), ctx("c"))


def test_the_token_never_appears_in_errors(fake: FakeGitHub, make_connector) -> None:
    wrong = make_connector(token="ghp_wrong-secret-value")
    with pytest.raises(PermanentError) as err:
        create(wrong, "t-1")
    assert "401" in str(err.value)
    assert "ghp_wrong-secret-value" not in str(err.value)


def test_fake_rejects_bodies_that_break_the_contract(fake: FakeGitHub) -> None:
    answer = requests.post(
        f"{fake.base_url}/repos/{REPO}/issues/1/labels",
        json=["bare", "array"],
        headers={"Authorization": f"token {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code in (404, 422)
    fake.open_issue(REPO, "x")
    answer = requests.post(
        f"{fake.base_url}/repos/{REPO}/issues",
        json={"body": "no title"},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 422
    assert len(fake.validation_failures) == 2
    fake.validation_failures.clear()  # expected here; the fixture asserts none elsewhere


def test_fake_answers_match_the_response_schemas(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    rest = gh_openapi.load("rest")
    fake.add_milestone(REPO, "M1")
    create(connector, "s-1", labels=["hub"], assignees=["octocat"], milestone=1)
    fake.open_issue(REPO, "a PR", pull_request=True)
    headers = {"Authorization": f"token {TOKEN}"}
    base = f"{fake.base_url}/repos/{REPO}"

    created = requests.post(
        f"{base}/issues", json={"title": "direct", "labels": ["x"]}, headers=headers, timeout=5
    )
    got = requests.get(f"{base}/issues/1", headers=headers, timeout=5)
    listed = requests.get(f"{base}/issues", params={"state": "all"}, headers=headers, timeout=5)
    comment = requests.post(
        f"{base}/issues/1/comments", json={"body": "hi"}, headers=headers, timeout=5
    )
    labels = requests.get(f"{base}/labels", headers=headers, timeout=5)
    search = requests.get(
        f"{fake.base_url}/search/issues", params={"q": "direct"}, headers=headers, timeout=5
    )

    checks = [
        ("POST", "/repos/{owner}/{repo}/issues", 201, created),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}", 200, got),
        ("GET", "/repos/{owner}/{repo}/issues", 200, listed),
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 201, comment),
        ("GET", "/repos/{owner}/{repo}/labels", 200, labels),
        ("GET", "/search/issues", 200, search),
    ]
    for method, path, status, answer in checks:
        assert answer.status_code == status, (method, path, answer.text)
        errors = list(rest.response_validator(method, path, status).iter_errors(answer.json()))
        assert errors == [], (method, path, [e.message for e in errors[:3]])
    assert len(listed.json()) == 3
    assert search.json()["total_count"] == 1


def test_a_title_over_githubs_limit_is_cut_to_256_characters_with_an_ellipsis(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    create(connector, "long-title", title="New Hub - Request deployment: " + "Ocean " * 100)
    [issue] = fake.issues(REPO)
    assert len(issue.title) == 256
    assert issue.title.startswith("New Hub - Request deployment: Ocean Ocean")
    assert issue.title.endswith("\u2026")
