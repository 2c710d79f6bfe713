"""HubSpot through the real engine: signed webhooks over HTTP, polls, rules, the executor,
all against the fake HubSpot with the real hubspot-api-client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.hubspot import HubSpotConnector
from syncd.clock import FakeClock, to_ms
from syncd.engine import Engine
from syncd.store.schema import events
from syncd_sandbox.hubspot.fake import FakeHubSpot
from tests.helpers import ServedApp
from tests.integration.connectors.support import (
    action_rows,
    hubspot_settings,
    inbox_rows,
    make_config,
    make_engine,
    post,
    serve,
)

TRANSITION_RULES = """
rules:
  - id: deal-qualified
    when: {source: hubspot, object: deal, field: dealstage, to: Qualified}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Qualified: {{ deal.dealname }}"}
  - id: deal-proposal
    when: {source: hubspot, object: deal, field: dealstage, from: Qualified, to: Proposal}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Proposal: {{ deal.dealname }}"}
  - id: deal-won
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Closed Won: {{ deal.dealname }}"}
"""


class World:
    def __init__(
        self, engine: Engine, fake: FakeHubSpot, server: ServedApp, clock: FakeClock
    ) -> None:
        self.engine, self.fake, self.server, self.clock = engine, fake, server, clock

    @property
    def hook_url(self) -> str:
        return f"{self.server.url}/webhooks/hubspot"

    def deliver(self) -> Any:
        """POST every change not yet delivered, signed as HubSpot signs it."""
        headers, body = self.fake.webhook(self.hook_url)
        return post(self.server, "hubspot", headers, body)

    def notes(self, deal_id: str) -> list[str]:
        return [n.split("\n")[0] for n in self.fake.notes_of(deal_id)]


@pytest.fixture
def world(tmp_path: Path, store_url: str) -> Iterator[World]:
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as fake_server:
        settings = hubspot_settings(fake, fake_server.url)
        config = make_config(tmp_path, store_url, TRANSITION_RULES, {"hubspot": settings})
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        with serve(engine) as server:
            yield World(engine, fake, server, clock)
        engine.close()


def _baseline(world: World) -> str:
    """A deal at Lead, observed once by syncd (and its creation events dropped)."""
    deal_id = world.fake.create_deal(dealname="Ocean", dealstage="lead")
    world.engine.poller.poll_all()
    world.fake.portal.take_events()
    return deal_id


def _stage_events(engine: Engine) -> list[tuple[Any, Any]]:
    with engine.store.engine.connect() as conn:
        rows = (
            conn.execute(select(events).where(events.c.field == "dealstage").order_by(events.c.id))
            .mappings()
            .all()
        )
    return [(r["old"], r["new"]) for r in rows]


WON = ["Qualified: Ocean", "Proposal: Ocean", "Closed Won: Ocean"]


def test_webhook_is_stored_fetched_and_fires_each_transition_once(world: World) -> None:
    deal_id = _baseline(world)
    world.fake.move_deal(deal_id, "qualified", "proposal", "closedwon")
    headers, body = world.fake.webhook(world.hook_url)
    answer = post(world.server, "hubspot", headers, body)
    assert answer.status_code == 202, answer.text
    assert len(inbox_rows(world.engine)) == 1  # stored before the answer
    again = post(world.server, "hubspot", headers, body)  # HubSpot's retry of the batch
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    assert world.engine.inbox.drain() == 1
    assert [o.status for o in world.engine.executor.drain()] == ["done"] * 3
    assert world.notes(deal_id) == WON
    # The same changes seen by a poll: no second action.
    world.engine.poller.poll_all()
    assert world.engine.executor.drain() == []
    assert world.notes(deal_id) == WON
    assert _stage_events(world.engine)[-3:] == [
        ("lead", "qualified"),
        ("qualified", "proposal"),
        ("proposal", "closedwon"),
    ]
    assert len(action_rows(world.engine)) == 3


@pytest.mark.parametrize("order", ["poll_then_webhook", "webhook_stored_then_poll"])
def test_transitions_fire_once_in_order_whichever_source_sees_them_first(
    world: World, order: str
) -> None:
    deal_id = _baseline(world)
    world.fake.move_deal(deal_id, "qualified", "proposal", "closedwon")
    if order == "poll_then_webhook":
        world.engine.poller.poll_all()
        assert [o.status for o in world.engine.executor.drain()] == ["done"] * 3
        assert world.deliver().status_code == 202
        assert world.engine.inbox.drain() == 1
    else:
        assert world.deliver().status_code == 202
        world.engine.poller.poll_all()
        assert world.engine.inbox.drain() == 1
    world.engine.run_once()
    world.engine.run_once()
    assert world.notes(deal_id) == WON
    assert {a["status"] for a in action_rows(world.engine)} == {"done"}
    assert len(action_rows(world.engine)) == 3


def test_429_on_an_action_waits_as_told_then_completes(world: World) -> None:
    deal_id = _baseline(world)
    world.fake.fail_next(1, 429, method="POST", path=r"/crm/v3/objects/notes$", retry_after=30)
    world.fake.move_deal(deal_id, "closedwon")
    world.engine.poller.poll_all()
    refused_at = to_ms(world.clock.now())
    assert [o.status for o in world.engine.executor.drain()] == ["pending"]
    (row,) = action_rows(world.engine)
    assert "429" in row["last_error"]
    assert row["next_attempt_at"] - refused_at >= 30_000
    world.clock.advance(29)
    assert world.engine.executor.drain() == []  # not before Retry-After
    assert world.notes(deal_id) == []
    world.clock.advance(2)
    assert [o.status for o in world.engine.executor.drain()] == ["done"]
    assert world.notes(deal_id) == ["Closed Won: Ocean"]
    assert world.fake.limits.over_limit == 0  # the client never went over the real limit
