"""GitHub through the real engine: the fake's own webhook deliveries to the HTTP app, polls,
`syncd github redeliver`, and kill -9 between creating an issue and committing it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.github import GitHubConnector, GitHubSettings
from syncd.cli import main
from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.engine import Engine
from syncd_sandbox.github.fake import FakeGitHub
from tests.integration.connectors.support import (
    action_rows,
    inbox_rows,
    make_config,
    make_engine,
    run_driver,
    serve,
    write_rules,
    write_toml,
)

TOKEN = "ghp_integration-test-token"
SECRET = "It's a Secret to Everybody"
SUPPORT = "acme/support"
INFRA = "acme/infrastructure"

COMMENT_RULES = """
rules:
  - id: thank-on-close
    when: {source: github, object: issue, field: state, to: closed}
    do:
      - github.comment:
          repo: "{{ issue.repo }}"
          issue_number: "{{ issue.number }}"
          body: "Closed: {{ issue.title }}"
"""

CREATE_RULES = """
rules:
  - id: deploy-on-close
    when: {source: github, object: issue, field: state, to: closed}
    do:
      - github.create_issue:
          repo: acme/infrastructure
          title: "Deploy: {{ issue.title }}"
          body: "Requested in {{ issue.html_url }}"
"""


def _fake(clock: FakeClock) -> FakeGitHub:
    fake = FakeGitHub(clock=clock, token=TOKEN, login="syncd-bot")
    fake.add_repo(SUPPORT)
    fake.add_repo(INFRA)
    return fake


def _settings(fake: FakeGitHub) -> GitHubSettings:
    return GitHubSettings(
        token=TOKEN,
        base_url=fake.base_url,
        repositories=[SUPPORT],
        webhook_secret=SECRET,
        timeout_seconds=5,
    )


@pytest.fixture
def world(tmp_path: Path, store_url: str) -> Iterator[tuple[Engine, FakeGitHub, str]]:
    clock = FakeClock()
    fake = _fake(clock)
    with fake:
        settings = _settings(fake)
        config = make_config(tmp_path, store_url, COMMENT_RULES, {"github": settings})
        engine = make_engine(config, clock, {"github": GitHubConnector(settings, clock)})
        with serve(engine) as server:
            yield engine, fake, f"{server.url}/webhooks/github"
        engine.close()
    assert fake.validation_failures == []


def _comments(fake: FakeGitHub, number: int) -> list[str]:
    return [c.body.split("\n")[0] for c in fake.repos[SUPPORT].issues[number].comments]


def test_delivery_from_github_is_stored_fetched_and_acted_on_once(world) -> None:
    engine, fake, hook_url = world
    issue = fake.open_issue(SUPPORT, "Hub for Ocean")
    engine.poller.poll_all()  # syncd knows the issue open
    hook = fake.add_hook(SUPPORT, hook_url, SECRET)
    fake.close_issue(SUPPORT, issue.number)  # GitHub POSTs `issues.closed` to syncd
    assert [d.status_code for d in hook.deliveries] == [202]
    assert len(inbox_rows(engine)) == 1
    assert engine.inbox.drain() == 1
    assert [o.status for o in engine.executor.drain()] == ["done"]
    assert _comments(fake, issue.number) == ["Closed: Hub for Ocean"]
    engine.poller.poll_all()  # the same change seen by the poll
    assert engine.executor.drain() == []
    assert _comments(fake, issue.number) == ["Closed: Hub for Ocean"]
    assert len(action_rows(engine)) == 1


def test_redeliver_command_replays_failed_deliveries_into_the_inbox(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # the CLI runs on real time
    fake = _fake(clock)
    with fake:
        settings = _settings(fake)
        config = make_config(tmp_path, store_url, COMMENT_RULES, {"github": settings})
        engine = make_engine(config, clock, {"github": GitHubConnector(settings, clock)})
        with serve(engine) as server:
            issue = fake.open_issue(SUPPORT, "Hub for Ocean")
            engine.poller.poll_all()
            fake.close_issue(SUPPORT, issue.number, user="ada")
            # syncd was down when the issue was closed: GitHub recorded a failed delivery
            hook = fake.add_hook(SUPPORT, f"{server.url}/webhooks/github", SECRET)
            payload = fake.issue_payload(SUPPORT, issue.number, "closed")
            fake.record_delivery(SUPPORT, hook.id, "issues", payload, 502, age=timedelta(hours=5))
            fake.record_delivery(
                SUPPORT, hook.id, "issues", payload, 200, age=timedelta(days=4)
            )  # too old, and it succeeded
            toml = write_toml(
                tmp_path / "syncd.toml",
                {
                    "syncd": {"state_dir": str(tmp_path / "state"), "mappings": []},
                    "store": {"url": store_url},
                    "github": {
                        "token": TOKEN,
                        "base_url": fake.base_url,
                        "repositories": [SUPPORT],
                        "webhook_secret": SECRET,
                    },
                },
            )
            result = CliRunner().invoke(
                main, ["github", "redeliver", "--since", "3d", "--config", str(toml)]
            )
            assert result.exit_code == 0, result.output
            assert "1 failed deliveries redelivered" in result.output
            assert TOKEN not in result.output
            assert [d.status_code for d in hook.deliveries if d.redelivery] == [202]
            assert engine.inbox.drain() == 1
            assert [o.status for o in engine.executor.drain()] == ["done"]
            assert _comments(fake, issue.number) == ["Closed: Hub for Ocean"]
        engine.close()


def _create_rules_config(tmp_path: Path, store_url: str, fake: FakeGitHub) -> Path:
    """The config file of a daemon whose rule opens an issue when a support issue closes."""
    rules_dir = write_rules(tmp_path / "mappings", CREATE_RULES)
    return write_toml(
        tmp_path / "syncd.toml",
        {
            "syncd": {"state_dir": str(tmp_path / "state"), "mappings": [str(rules_dir)]},
            "store": {"url": store_url},
            "executor": {"lease_seconds": 60},
            "github": {
                "token": TOKEN,
                "base_url": fake.base_url,
                "repositories": [SUPPORT],
                "timeout_seconds": 5,
            },
        },
    )


@pytest.mark.parametrize("closed", [1, 3])
def test_kill_9_between_remote_create_and_local_commit_makes_each_issue_once(
    tmp_path: Path, store_url: str, closed: int
) -> None:
    # One close: its create goes alone. Three: one executor worker sends the three creates
    # together, then dies before recording any. The restart looks each one up: one issue
    # per close, never two.
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    clock = FakeClock(start)
    fake = _fake(clock)
    with fake:
        toml = _create_rules_config(tmp_path, store_url, fake)
        hubs = [fake.open_issue(SUPPORT, f"Hub {n}") for n in range(closed)]
        engine = Engine(load_config(toml), clock)  # what the daemon builds from the file
        engine.run_once()  # the issues are known open
        engine.close()
        clock.advance(60)
        for hub in hubs:
            fake.close_issue(SUPPORT, hub.number)

        crashed = run_driver(toml, clock.now().isoformat(), "cycle", crash_at="remote_done")
        assert crashed.returncode == -9, crashed.stderr[-2000:]
        expected = sorted(f"Deploy: Hub {n}" for n in range(closed))
        assert sorted(i.title for i in fake.issues(INFRA)) == expected  # all sent, then killed

        later = (start + timedelta(hours=1)).isoformat()
        restarted = run_driver(toml, later, "cycle")
        assert restarted.returncode == 0, restarted.stderr[-2000:]
        assert json.loads(restarted.stdout.splitlines()[-1])["outcomes"] == ["done"] * closed
        assert sorted(i.title for i in fake.issues(INFRA)) == expected  # each once
        engine = Engine(load_config(toml), clock)
        rows = action_rows(engine)
        engine.close()
        assert {(r["status"], r["attempts"]) for r in rows} == {("done", 2)}
        numbers = {f"{INFRA}#{i.number}" for i in fake.issues(INFRA)}
        assert {r["external_id"] for r in rows} == numbers
    assert fake.validation_failures == []
