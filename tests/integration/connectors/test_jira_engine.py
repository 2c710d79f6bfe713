"""Jira through the real engine: a signed webhook over HTTP, polls, and W8's quarterly cron
rule over client epics (for_each JQL), against the fake Jira with the real python-jira."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.jira import JiraConnector, JiraSettings
from syncd.clock import FakeClock
from syncd.config import Config
from syncd.engine import Engine
from syncd_sandbox.fakeserver import FakeServer
from syncd_sandbox.jira.fake import FakeJira
from tests.integration.connectors.support import (
    action_rows,
    inbox_rows,
    make_config,
    make_engine,
    post,
    serve,
)

EMAIL = "syncd@example.org"
TOKEN = "jira-api-token-not-real"
SECRET = "jira-webhook-secret"

RULES = """
rules:
  - id: note-on-done
    when: {source: jira, object: issue, field: status, to: Done}
    do:
      - jira.comment: {issue: "{{ issue.key }}", body: "Done: {{ issue.summary }}"}
  - id: quarterly-client-strategy
    when:
      cron: "0 9 1 1,4,7,10 *"
      for_each:
        source: jira
        object: issue
        query: {jql: 'labels = "client-epic" AND statusCategory != Done ORDER BY key ASC'}
    do:
      - jira.create_issue:
          project: CLI
          summary: "Client strategy review: {{ item.summary }}"
          parent: "{{ item.key }}"
          original_estimate: 3h
          labels: [client-strategy]
"""
QUARTER_START = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def _settings(server: FakeServer) -> JiraSettings:
    return JiraSettings(
        base_url=server.url,
        email=EMAIL,
        api_token=SecretStr(TOKEN),
        webhook_secret=SecretStr(SECRET),
        projects=["OPS"],
        timeout_seconds=5,
    )


class World:
    def __init__(
        self, tmp_path: Path, store_url: str, clock: FakeClock, fake: FakeJira, server: FakeServer
    ) -> None:
        self.clock, self.fake, self.server = clock, fake, server
        self.config: Config = make_config(tmp_path, store_url, RULES, {"jira": _settings(server)})
        self.engines: list[Engine] = []

    def engine(self) -> Engine:
        """A new engine (a new process, as far as the store can tell) on the same store."""
        made = make_engine(
            self.config, self.clock, {"jira": JiraConnector(_settings(self.server), self.clock)}
        )
        self.engines.append(made)
        return made

    def reviews(self) -> list[str]:
        return sorted(
            i.parent or "" for i in self.fake.issues.values() if "client-strategy" in i.labels
        )


@pytest.fixture
def world(tmp_path: Path, store_url: str) -> Iterator[World]:
    clock = FakeClock(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    fake = FakeJira(clock=clock, email=EMAIL, api_token=TOKEN)
    with FakeServer(fake.app) as server:
        made = World(tmp_path, store_url, clock, fake, server)
        yield made
        for engine in made.engines:
            engine.close()


def test_signed_webhook_is_stored_fetched_and_acted_on_once(world: World) -> None:
    engine = world.engine()
    issue = world.fake.user_create("OPS", "Renew certificate")
    engine.poller.poll_all()  # known at To Do
    world.clock.advance(120)
    world.fake.user_update(issue.key, status="Done")
    headers, body = world.fake.webhook_request(issue.key, secret=SECRET)
    with serve(engine) as app:
        answer = post(app, "jira", headers, body)
        assert answer.status_code == 202, answer.text
        assert post(app, "jira", headers, body).json()["status"] == "duplicate"  # Jira retry
        forged = dict(headers, **{"x-hub-signature": "sha256=" + "0" * 64})
        assert post(app, "jira", forged, body).status_code == 401
    assert len(inbox_rows(engine)) == 1
    assert engine.inbox.drain() == 1
    assert [o.status for o in engine.executor.drain()] == ["done"]
    engine.poller.poll_all()  # the same change through the poll
    assert engine.executor.drain() == []
    comments = world.fake.issues[issue.key].comments
    assert len(comments) == 1
    assert len(action_rows(engine)) == 1


def test_quarterly_rule_creates_one_ticket_per_open_client_epic_once(world: World) -> None:
    epics = world.fake.seed_client_epics(31)
    world.fake.user_update(epics[-1].key, status="Done")  # a finished client: no review
    engine = world.engine()
    assert engine.scheduler.tick() == 0  # first sight of the rule: nothing in the past fires
    world.clock.set(QUARTER_START)
    assert engine.scheduler.tick() == 30
    outcomes = engine.executor.drain()
    assert [o.status for o in outcomes] == ["done"] * 30
    assert world.reviews() == sorted(e.key for e in epics[:30])
    estimates = {
        i.original_estimate for i in world.fake.issues.values() if "client-strategy" in i.labels
    }
    assert estimates == {"3h"}

    # The same quarter again: a later tick, and a restarted process, create nothing.
    world.clock.advance(hours=6)
    assert engine.scheduler.tick() == 0
    again = world.engine()
    world.clock.advance(days=20)
    again.run_once()
    assert len(world.reviews()) == 30
    assert len(action_rows(again)) == 30


def test_ambiguous_create_leaves_one_ticket(world: World) -> None:
    epics = world.fake.seed_client_epics(3)
    engine = world.engine()
    engine.scheduler.tick()
    world.fake.fail_next("POST", r"/rest/api/3/issue$", "applied_then_502")
    world.clock.set(QUARTER_START)
    assert engine.scheduler.tick() == 3
    first = [o.status for o in engine.executor.drain()]
    assert sorted(first) == ["done", "done", "pending"]  # one applied, then answered 502
    assert len(world.reviews()) == 3  # ...and it was applied
    world.clock.advance(3600)
    assert [o.status for o in engine.executor.drain()] == ["done"]  # found, not created
    assert world.reviews() == sorted(e.key for e in epics)
    assert {a["status"] for a in action_rows(engine)} == {"done"}
