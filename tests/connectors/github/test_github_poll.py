"""fetch and poll against the fake: observations, PRs filtered, 304s that cost nothing."""

from __future__ import annotations

from connectors.github import GitHubConnector
from syncd.clock import to_ms
from syncd.model import ObjectRef
from syncd_sandbox.github.fake import FakeGitHub


def test_fetch_returns_the_issue_state(fake: FakeGitHub, connector: GitHubConnector, gh) -> None:
    fake.add_user("octocat")
    issue = fake.open_issue(gh.repo, "New Hub", body="b", labels=["new-hub", "hub"])
    issue.assignees = ["octocat"]
    fake.close_issue(gh.repo, issue.number, user="octocat", reason="completed")

    obs = connector.fetch(ObjectRef("github", "issue", f"{gh.repo}#{issue.number}"))

    assert obs is not None
    assert obs.fields["state"] == "closed"
    assert obs.fields["state_reason"] == "completed"
    assert obs.fields["closed_by"] == "octocat"
    assert obs.fields["labels"] == ["hub", "new-hub"]
    assert obs.fields["assignees"] == ["octocat"]
    assert obs.fields["repo"] == gh.repo and obs.fields["number"] == issue.number
    assert obs.fields["html_url"] == f"{fake.base_url}/{gh.repo}/issues/{issue.number}"
    assert obs.version == to_ms(issue.updated_at)


def test_fetch_of_a_deleted_issue_is_none(fake: FakeGitHub, connector: GitHubConnector, gh) -> None:
    issue = fake.open_issue(gh.repo, "gone soon")
    fake.delete_issue(gh.repo, issue.number)
    assert connector.fetch(ObjectRef("github", "issue", f"{gh.repo}#{issue.number}")) is None


def test_poll_sees_changes_since_cursor_filters_prs_and_idles_for_free(
    fake: FakeGitHub, connector: GitHubConnector, clock, gh
) -> None:
    assert connector.poll_streams() == ["issue"]
    first = fake.open_issue(gh.repo, "one")
    fake.open_issue(gh.repo, "a pull request", pull_request=True)
    clock.advance(5)
    second = fake.open_issue(gh.repo, "two")

    page = connector.poll("issue", None)
    assert [o.fields["title"] for o in page.observations] == ["one", "two"]
    assert not page.more

    idle = connector.poll("issue", page.cursor)  # boundary issue comes back, deduped
    assert idle.observations == []
    used = fake.rate_limit_used
    again = connector.poll("issue", idle.cursor)
    assert again.observations == []
    assert fake.not_modified >= 1
    assert fake.rate_limit_used == used  # the 304 cost nothing

    clock.advance(10)
    fake.close_issue(gh.repo, first.number)
    changed = connector.poll("issue", again.cursor)
    assert [(o.fields["number"], o.fields["state"]) for o in changed.observations] == [
        (first.number, "closed")
    ]
    assert changed.observations[0].version > to_ms(second.updated_at)
