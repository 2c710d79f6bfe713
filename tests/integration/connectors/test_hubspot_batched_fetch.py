"""The inbox reads hinted deals in batches (issue 17): 1,000 webhooks on distinct deals cost
a few dozen HubSpot requests, not 3,000, through the real hubspot-api-client against the
fake; and a deal a batch cannot give is still handled, alone, without stalling the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.hubspot import HubSpotConnector
from syncd.clock import FakeClock
from syncd.engine import Engine
from syncd.inbox import Delivery
from syncd.store.schema import snapshots
from syncd_sandbox.hubspot.fake import FakeHubSpot
from tests.integration.connectors.support import (
    hubspot_settings,
    inbox_rows,
    make_config,
    make_engine,
)

# The rule reads the company, as the shipped mappings do: each read brings the deals'
# associations, companies and contacts too.
RULES = """
rules:
  - id: deal-won
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note:
          deal_id: "{{ deal.id }}"
          body: "Won: {{ deal.dealname }} for {{ deal.company.name if deal.company else '-' }}"
"""
# A rule that reads the deal's own properties only: no association is read.
DEAL_ONLY_RULES = """
rules:
  - id: deal-won
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Won: {{ deal.dealname }}"}
"""
BATCH_READ = "/crm/v3/objects/deals/batch/read"


class World:
    def __init__(self, engine: Engine, fake: FakeHubSpot) -> None:
        self.engine, self.fake = engine, fake
        self.next_event = 1

    def hint(self, deal_ids: list[str]) -> None:
        """One stored webhook delivery per deal, as HubSpot sends them one by one."""
        for deal_id in deal_ids:
            event = {
                "eventId": self.next_event,
                "subscriptionId": 7,
                "portalId": 62515,
                "occurredAt": 1,
                "subscriptionType": "deal.propertyChange",
                "attemptNumber": 0,
                "objectId": int(deal_id),
                "propertyName": "dealstage",
                "propertyValue": "closedwon",
            }
            delivery = Delivery(
                "hubspot", f"d-{self.next_event}", {}, json.dumps([event]).encode(), 0
            )
            self.next_event += 1
            assert self.engine.writer.submit(delivery).result(timeout=10) is True

    def requests_during(self, work: Any) -> list[tuple[str, str, int]]:
        start = len(self.fake.answers)
        work()
        return self.fake.answers[start:]

    def observed(self) -> dict[str, bool]:
        """{deal id: deleted} of every deal syncd has a snapshot of."""
        with self.engine.store.engine.connect() as conn:
            rows = conn.execute(select(snapshots.c.object_id, snapshots.c.deleted))
            return {r[0]: bool(r[1]) for r in rows}

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in inbox_rows(self.engine):
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out


@pytest.fixture
def world(tmp_path: Path, store_url: str) -> Iterator[World]:
    yield from _world(tmp_path, store_url, RULES)


@pytest.fixture
def deal_only_world(tmp_path: Path, store_url: str) -> Iterator[World]:
    yield from _world(tmp_path, store_url, DEAL_ONLY_RULES)


def _world(tmp_path: Path, store_url: str, rules: str) -> Iterator[World]:
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as fake_server:
        settings = hubspot_settings(fake, fake_server.url, timeout_seconds=10)
        config = make_config(tmp_path, store_url, rules, {"hubspot": settings})
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        yield World(engine, fake)
        engine.close()


def _deals(fake: FakeHubSpot, count: int) -> list[str]:
    out = []
    for i in range(count):
        deal_id = fake.create_deal(dealname=f"Deal {i}", dealstage="closedwon")
        if i % 3 == 0:
            fake.add_company(deal_id, name=f"Company {i}")
        if i % 4 == 0:
            fake.add_contact(deal_id, role="Buyer", firstname=f"Ann {i}")
        out.append(deal_id)
    return out


def test_1000_webhooks_on_distinct_deals_cost_at_most_60_hubspot_requests(world: World) -> None:
    deal_ids = _deals(world.fake, 1000)
    world.hint(deal_ids)
    sent = world.requests_during(world.engine.inbox.drain)
    print(f"HubSpot requests for 1,000 webhooks on distinct deals: {len(sent)}")
    assert len(sent) <= 60, sorted({path for _, path, _ in sent})
    assert all(status < 400 for _, _, status in sent)
    assert world.statuses() == {"done": 1000}
    observed = world.observed()
    assert set(observed) == set(deal_ids) and not any(observed.values())


def test_rules_reading_no_company_or_contact_cost_only_the_deal_reads(
    deal_only_world: World,
) -> None:
    world = deal_only_world
    deal_ids = _deals(world.fake, 120)
    world.hint(deal_ids)
    sent = world.requests_during(world.engine.inbox.drain)
    assert world.statuses() == {"done": 120}
    reads = [(m, p) for m, p, _ in sent if "/notes" not in p and "/associations/notes" not in p]
    assert reads == [("POST", BATCH_READ)] * 3  # 50 deals a read, and nothing else
    assert len(world.observed()) == 120


def test_context_from_a_batch_is_each_deals_own(world: World) -> None:
    deal_ids = _deals(world.fake, 8)
    world.hint(deal_ids)
    world.engine.inbox.drain()
    with world.engine.store.engine.connect() as conn:
        rows = {r["object_id"]: r for r in conn.execute(select(snapshots)).mappings()}
    for i, deal_id in enumerate(deal_ids):
        context = rows[deal_id]["context"]
        assert rows[deal_id]["fields"]["dealname"] == f"Deal {i}"
        company = context["company"]
        assert (company["name"] if company else None) == (f"Company {i}" if i % 3 == 0 else None)
        assert [c["firstname"] for c in context["contacts"]] == ([f"Ann {i}"] if i % 4 == 0 else [])


def test_a_missing_deal_in_a_batch_is_handled_alone(world: World) -> None:
    deal_ids = _deals(world.fake, 99)
    missing = "987654"
    world.hint([*deal_ids[:50], missing, *deal_ids[50:]])
    sent = world.requests_during(world.engine.inbox.drain)
    assert world.statuses() == {"done": 100}
    observed = world.observed()
    assert set(deal_ids) <= set(observed) and not any(observed[d] for d in deal_ids)
    # The batch left it out; it alone was asked for again, and its 404 means "gone".
    alone = [(m, p, s) for m, p, s in sent if p.endswith(f"/deals/{missing}")]
    assert alone == [("GET", f"/crm/v3/objects/deals/{missing}", 404)]
    assert len(sent) <= 10


def test_a_batch_refused_for_good_falls_back_to_one_read_per_deal(world: World) -> None:
    deal_ids = _deals(world.fake, 5)
    world.fake.fail_next(1, status=400, method="POST", path=BATCH_READ)
    world.hint(deal_ids)
    sent = world.requests_during(world.engine.inbox.drain)
    assert world.statuses() == {"done": 5}
    singles = {p for m, p, s in sent if m == "GET" and "/crm/v3/objects/deals/" in p}
    assert singles == {f"/crm/v3/objects/deals/{d}" for d in deal_ids}


def test_a_transient_batch_failure_retries_the_deliveries_later_not_one_by_one(
    world: World,
) -> None:
    deal_ids = _deals(world.fake, 5)
    world.fake.fail_next(1, status=503, method="POST", path=BATCH_READ)
    world.hint(deal_ids)
    sent = world.requests_during(world.engine.inbox.process_due)
    # The batch read was refused (a fault answers before the fake records it), and no deal
    # was read alone: only the association reads sent together with it were answered.
    assert all(f.remaining == 0 for f in world.fake.faults.pending)
    assert [path for _, path, _ in sent if "/associations/" not in path] == []
    rows = inbox_rows(world.engine)
    assert {r["status"] for r in rows} == {"pending"}
    assert all("503" in (r["last_error"] or "") for r in rows)
    world.engine.clock.advance(3600)
    world.engine.inbox.drain()
    assert world.statuses() == {"done": 5}
