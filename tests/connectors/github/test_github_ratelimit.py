"""Draining a backlog at GitHub's secondary limit (80 writes/min) without ever hitting it."""

from __future__ import annotations

import pytest

from connectors.github import GitHubConnector
from connectors.github.params import CreateIssueParams
from syncd.errors import TransientError
from syncd.model import ObjectRef
from syncd_sandbox.github.fake import FakeGitHub


def test_thousand_creates_drain_at_the_limit_and_not_above(
    fake: FakeGitHub, connector: GitHubConnector, clock, gh, report_figure
) -> None:
    start = clock.now()
    spec = connector.actions["create_issue"]
    for n in range(1000):
        spec.perform(connector, CreateIssueParams(repo=gh.repo, title=f"t{n}"), gh.ctx(f"k{n}"))

    elapsed = (clock.now() - start).total_seconds()
    assert len(fake.issues(gh.repo)) == 1000
    assert fake.secondary_limited == 0 and fake.primary_limited == 0  # no 403/429 at all
    assert fake.early_requests == 0
    # GitHub allows 500 content-creating requests an hour: 90% of it, 450, per hour.
    per_hour = 1000 / elapsed * 3600
    report_figure(
        f"GitHub: 1,000 creates in {elapsed / 3600:.2f} h = {per_hour:.0f}/h "
        f"against 500/h; 0 limit answers, 0 early requests"
    )
    assert 2 * 3600 <= elapsed < 2 * 3600 + 600
    assert per_hour >= 0.9 * 500


def test_a_secondary_limit_answer_is_transient_with_retry_after_and_blocks_writes(
    fake: FakeGitHub, make_connector, clock, gh
) -> None:
    fake.write_limit = 2
    greedy = make_connector(write_limit=100)
    spec = greedy.actions["create_issue"]
    for n in range(2):
        spec.perform(greedy, CreateIssueParams(repo=gh.repo, title=f"t{n}"), gh.ctx(f"k{n}"))
    with pytest.raises(TransientError) as err:
        spec.perform(greedy, CreateIssueParams(repo=gh.repo, title="t2"), gh.ctx("k2"))
    assert fake.secondary_limited == 1
    assert err.value.retry_after is not None and 0 < err.value.retry_after <= 60

    before = clock.now()
    spec.perform(greedy, CreateIssueParams(repo=gh.repo, title="t3"), gh.ctx("k3"))
    assert (clock.now() - before).total_seconds() >= err.value.retry_after
    assert fake.secondary_limited == 1


def test_an_exhausted_primary_budget_waits_for_the_reset(
    fake: FakeGitHub, connector: GitHubConnector, clock, gh
) -> None:
    fake.primary_limit = 3
    fake.open_issue(gh.repo, "x")
    ref_id = f"{gh.repo}#1"
    for _ in range(3):
        connector.fetch(ObjectRef("github", "issue", ref_id))
    before = clock.now()
    assert connector.fetch(ObjectRef("github", "issue", ref_id)) is not None
    assert (clock.now() - before).total_seconds() >= 3000  # blocked until the hourly reset
    assert fake.primary_limited == 0
