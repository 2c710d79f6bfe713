"""Redelivering failed webhook deliveries through the deliveries API."""

from __future__ import annotations

from datetime import timedelta

from connectors.github import GitHubConnector
from syncd_sandbox.github.fake import FakeGitHub


def test_redeliver_failed_deliveries_newer_than_since(
    fake: FakeGitHub, connector: GitHubConnector, gh
) -> None:
    sent: list[dict[str, str]] = []

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        sent.append(headers)
        return 200

    fake.transport = transport
    hook = fake.add_hook(gh.repo, "http://syncd.test/webhooks/github", gh.secret)
    payload = {"action": "opened", "issue": {"number": 1}}
    ok = fake.record_delivery(gh.repo, hook.id, "issues", payload, 200, age=timedelta(hours=1))
    failed = fake.record_delivery(gh.repo, hook.id, "issues", payload, 502, age=timedelta(hours=2))
    too_old = fake.record_delivery(gh.repo, hook.id, "issues", payload, 0, age=timedelta(days=5))

    redelivered = connector.redeliver_failed(timedelta(days=3))

    assert redelivered == [failed.id]
    assert [h["X-GitHub-Delivery"] for h in sent] == [failed.guid]  # same GUID: dedupes
    assert ok.id not in redelivered and too_old.id not in redelivered
    # Once redelivered successfully, a second run has nothing left to do.
    assert connector.redeliver_failed(timedelta(days=3)) == []
