"""Writes the fake applies and then answers 502 or resets: no duplicate issue, ever."""

from __future__ import annotations

from connectors.github import GitHubConnector
from connectors.github.params import CreateIssueParams
from syncd.errors import TransientError, UncertainError
from syncd.model import ActionResult
from syncd_sandbox.github.fake import FakeGitHub


def perform_like_the_executor(
    connector: GitHubConnector, params, ctx, max_attempts: int = 20
) -> tuple[ActionResult, int]:
    """Retry on transient errors; after the first failure, look before acting again."""
    spec = connector.actions["create_issue"]
    uncertain = 0
    for attempt in range(1, max_attempts + 1):
        try:
            if attempt > 1:
                found = spec.find_existing(connector, params, ctx(ctx_key(params), attempt))
                if found is not None:
                    return found, uncertain
            return spec.perform(connector, params, ctx(ctx_key(params), attempt)), uncertain
        except UncertainError:
            uncertain += 1
        except TransientError:
            pass
    raise AssertionError(f"gave up after {max_attempts} attempts")


def ctx_key(params: CreateIssueParams) -> str:
    return f"w1:{params.title}"


def test_fifty_creates_with_thirty_percent_ambiguous_answers(
    fake: FakeGitHub, connector: GitHubConnector, gh
) -> None:
    fake.inject_ambiguous_writes(0.3, seed=1234, kinds=("502", "reset"))
    results = {}
    uncertain_total = 0
    for n in range(50):
        params = CreateIssueParams(repo=gh.repo, title=f"New hub {n}")
        results[n], uncertain = perform_like_the_executor(connector, params, gh.ctx)
        uncertain_total += uncertain

    titles = sorted(i.title for i in fake.issues(gh.repo))
    assert titles == sorted(f"New hub {n}" for n in range(50))  # each exactly once
    assert fake.ambiguous_answers >= 8  # the faults really happened...
    assert uncertain_total == fake.ambiguous_answers  # ...and each was seen as uncertain
    numbers = {i.title: i.number for i in fake.issues(gh.repo)}
    assert {r.external_id for r in results.values()} == {
        f"{gh.repo}#{numbers[f'New hub {n}']}" for n in range(50)
    }
