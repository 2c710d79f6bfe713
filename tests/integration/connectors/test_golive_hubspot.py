"""Going live over a HubSpot portal with history: deals won before syncd's first start give
no effect; deals won after it give exactly one, whether polling or a webhook finds them.
The fake HubSpot through the real hubspot-api-client, the real engine and store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from syncd.clock import FakeClock, from_ms
from syncd.engine import Engine
from syncd_sandbox.hubspot.fake import FakeHubSpot
from tests.integration.connectors.support import action_rows, make_config, make_engine, post, serve

WON_RULE = """
rules:
  - id: deal-won
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Won: {{ deal.dealname }}"}
  - id: deal-appeared
    when: {source: hubspot, object: deal, created: true}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "New: {{ deal.dealname }}"}
"""


class Portal:
    """A portal with five deals won last year and one still open, before syncd runs."""

    def __init__(self, tmp_path: Path, store_url: str) -> None:
        self.tmp_path, self.store_url = tmp_path, store_url
        self.clock = FakeClock()
        self.fake = FakeHubSpot(clock=self.clock)
        self.old_wins = []
        for n in range(5):
            deal = self.fake.create_deal(dealname=f"Old {n}", dealstage="lead")
            self.fake.move_deal(deal, "qualified", "closedwon")
            self.old_wins.append(deal)
        self.open_deal = self.fake.create_deal(dealname="Open", dealstage="qualified")
        self.fake.portal.take_events()  # history: no webhook will ever carry it
        self.clock.advance(days=30)  # syncd is installed a month later

    def engine(self, url: str) -> Engine:
        settings = HubSpotSettings(
            access_token=self.fake.token,
            app_secret=self.fake.app_secret,
            base_url=url,
            timeout_seconds=5,
        )
        config = make_config(self.tmp_path, self.store_url, WON_RULE, {"hubspot": settings})
        return make_engine(config, self.clock, {"hubspot": HubSpotConnector(settings, self.clock)})

    def notes(self) -> dict[str, list[str]]:
        ids = [*self.old_wins, self.open_deal]
        return {d: [n.split("\n")[0] for n in self.fake.notes_of(d)] for d in ids}


@pytest.fixture
def portal(tmp_path: Path, store_url: str) -> Portal:
    return Portal(tmp_path, store_url)


@pytest.fixture
def served(portal: Portal) -> Iterator[Engine]:
    with portal.fake.serve() as api:
        engine = portal.engine(api.url)
        yield engine
        engine.close()


def _no_notes(portal: Portal, *deals: str) -> None:
    notes = portal.notes()
    assert {d: notes[d] for d in deals} == {d: [] for d in deals}


def test_first_start_baselines_history_then_a_later_win_fires_once_by_poll(
    portal: Portal, served: Engine
) -> None:
    report = served.run_once()  # the first start: reads all six deals
    assert report.polled["hubspot.deal"].observed == 6
    assert report.polled["hubspot.deal"].baselined == 6
    assert action_rows(served) == []
    _no_notes(portal, *portal.old_wins, portal.open_deal)
    went_live = served.status()["went_live"]["hubspot"]
    assert went_live == from_ms(served.ingestor.golive.instant("hubspot") or 0).isoformat()

    portal.clock.advance(3600)
    portal.fake.move_deal(portal.open_deal, "closedwon")  # no webhook: polling finds it
    fresh = portal.fake.create_deal(dealname="Fresh", dealstage="closedwon")
    portal.fake.portal.take_events()
    served.run_once()
    served.run_once()  # a second cycle changes nothing
    assert portal.notes()[portal.open_deal] == ["Won: Open"]
    assert sorted(n.split("\n")[0] for n in portal.fake.notes_of(fresh)) == [
        "New: Fresh",
        "Won: Fresh",
    ]
    _no_notes(portal, *portal.old_wins)
    assert len(action_rows(served)) == 3


def test_a_webhook_before_the_first_poll_fires_only_what_happened_after_go_live(
    portal: Portal, served: Engine
) -> None:
    with serve(served) as app:
        served.go_live()  # what the daemon does as it starts, before any poll
        portal.clock.advance(60)
        portal.fake.move_deal(portal.open_deal, "closedwon")
        # an old winner touched after go-live: news about it, but its win is history
        portal.fake.update_deal(portal.old_wins[0], amount="1000")
        url = f"{app.url}/webhooks/hubspot"
        assert post(app, "hubspot", *portal.fake.webhook(url)).status_code == 202
        served.inbox.drain()
        served.executor.drain()
        assert portal.notes()[portal.open_deal] == ["Won: Open"]
        _no_notes(portal, *portal.old_wins)
        served.run_once()  # the first poll then baselines the rest and repeats nothing
    assert portal.notes()[portal.open_deal] == ["Won: Open"]
    _no_notes(portal, *portal.old_wins)
    assert [r["object_id"] for r in action_rows(served)] == [portal.open_deal]


def test_backfill_replay_since_a_date_acts_on_history_on_purpose(
    portal: Portal, served: Engine
) -> None:
    from connectors.hubspot.cli import run_backfill

    served.run_once()
    assert action_rows(served) == []
    since = from_ms(served.ingestor.golive.instant("hubspot") or 0).replace(year=2025)
    report = run_backfill(served, served.connectors["hubspot"], since=since, replay=True)
    assert report.deals == 6
    served.executor.drain()
    notes = portal.notes()
    assert [notes[d] for d in portal.old_wins] == [
        [f"New: Old {n}", f"Won: Old {n}"] for n in range(5)
    ]
    # again: what fired is recognised, nothing is repeated
    run_backfill(served, served.connectors["hubspot"], since=since, replay=True, restart=True)
    served.executor.drain()
    assert portal.notes() == notes


DATE_RULES = """
rules:
  - id: on-close-date
    when: {source: hubspot, object: deal, date: closedate, offset: 0d}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Due: {{ deal.dealname }}"}
  - id: on-close-date-catch-up
    when: {source: hubspot, object: deal, date: closedate, offset: 0d, catch_up: true}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Catch-up: {{ deal.dealname }}"}
"""


def test_a_date_due_before_go_live_fires_only_with_catch_up(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock(datetime(2025, 12, 1, 9, 0, tzinfo=UTC))
    fake = FakeHubSpot(clock=clock)
    # set a month before go-live, due at 09:00 (the default `at`) the day before go-live:
    # 23 h before the first start, within the grace a downtime would get
    old = fake.create_deal(dealname="Old", dealstage="lead", closedate="2026-01-04")
    later = fake.create_deal(dealname="Later", dealstage="lead", closedate="2026-01-06")
    fake.portal.take_events()
    clock.set(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    with fake.serve() as api:
        settings = HubSpotSettings(
            access_token=fake.token, base_url=api.url, timeout_seconds=5, poll_context=False
        )
        config = make_config(tmp_path, store_url, DATE_RULES, {"hubspot": settings})
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        engine.run_once()  # go-live; the 24 h grace does not reach back before it
        clock.advance(days=2)
        engine.run_once()
        engine.close()
    notes = {d: sorted(n.split("\n")[0] for n in fake.notes_of(d)) for d in (old, later)}
    assert notes == {old: ["Catch-up: Old"], later: ["Catch-up: Later", "Due: Later"]}
