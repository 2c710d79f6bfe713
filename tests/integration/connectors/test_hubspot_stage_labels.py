"""Stage labels the rules need (`to: Closed Won`) when HubSpot's pipelines endpoint fails at
start: no change is consumed before they are read, they are kept in the store for the next
start, and a renamed stage is seen without a restart. Real hubspot-api-client over HTTP to
the fake HubSpot, with faults injected on `GET /crm/v3/pipelines/deals` (issue 21)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from syncd.clock import FakeClock
from syncd.config import AlertsSection, load_config
from syncd.daemon import Daemon
from syncd.engine import Engine
from syncd.store.schema import cursors, events, inbox
from syncd_sandbox.hubspot.fake import FakeHubSpot
from tests.integration.connectors.support import (
    action_rows,
    hubspot_settings,
    inbox_rows,
    make_config,
    make_engine,
    post,
    serve,
    write_rules,
)
from tests.integration.connectors.test_hubspot_engine import TRANSITION_RULES

PIPELINES = r"/crm/v3/pipelines/deals$"


def fail_pipelines(fake: FakeHubSpot) -> None:
    """The next three reads of the pipelines: 429, then 500, then a connection reset."""
    fake.fail_next(1, 429, method="GET", path=PIPELINES, retry_after=1)
    fake.fail_next(1, 500, method="GET", path=PIPELINES)
    fake.fail_next(1, 0, method="GET", path=PIPELINES)


def pipeline_faults_left(fake: FakeHubSpot) -> int:
    return sum(f.remaining for f in fake.faults.pending)


def notes(fake: FakeHubSpot, deal_id: str) -> list[str]:
    return [n.split("\n")[0] for n in fake.notes_of(deal_id)]


def deliver(fake: FakeHubSpot, server: Any) -> None:
    headers, body = fake.webhook(f"{server.url}/webhooks/hubspot")
    assert post(server, "hubspot", headers, body).status_code == 202


def nothing_consumed(engine: Engine) -> None:
    with engine.store.engine.connect() as conn:
        assert conn.execute(select(events)).first() is None
        assert conn.execute(select(cursors)).first() is None
        rows = conn.execute(select(inbox)).mappings().all()
    assert action_rows(engine) == []
    assert rows and all(r["status"] == "pending" and r["attempts"] == 0 for r in rows)


def test_pipelines_failing_at_start_lose_no_stage_change_before_and_after_a_restart(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as fake_server:
        settings = hubspot_settings(fake, fake_server.url)
        config = make_config(tmp_path, store_url, TRANSITION_RULES, {"hubspot": settings})
        deal_id = fake.create_deal(dealname="Ocean", dealstage="lead")

        # -- first start: the labels have never been read, and the reads fail -------------
        fail_pipelines(fake)
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        engine.go_live()  # as the daemon does at start: the moves below are news
        assert engine.lookups.problems()  # the 429 at start
        fake.move_deal(deal_id, "qualified", "proposal")
        with serve(engine) as server:
            deliver(fake, server)
            for _ in range(2):  # the 500, then the reset, each after its backoff
                report = engine.run_once()
                assert "waiting for hubspot.deal.dealstage" in str(report.polled["hubspot.deal"])
                nothing_consumed(engine)
                clock.advance(10)
            assert pipeline_faults_left(fake) == 0
            assert engine.lookups.problems()
            for _ in range(3):  # the next read succeeds; the deliveries were kept for it
                engine.run_once()
                clock.advance(10)
        assert not engine.lookups.problems()
        assert notes(fake, deal_id) == ["Qualified: Ocean", "Proposal: Ocean"]
        assert [r["status"] for r in inbox_rows(engine)] == ["done"]
        engine.close()

        # -- restart, pipelines failing again: the stored labels are used ----------------
        clock.advance(3600)  # the stored labels are stale: the start tries HubSpot first
        fail_pipelines(fake)
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        assert pipeline_faults_left(fake) == 2  # it did try (and got the 429)
        assert not engine.lookups.problems()
        fake.move_deal(deal_id, "closedwon")
        with serve(engine) as server:
            deliver(fake, server)
            for _ in range(4):
                engine.run_once()
                clock.advance(10)
        assert notes(fake, deal_id) == ["Qualified: Ocean", "Proposal: Ocean", "Closed Won: Ocean"]
        assert [a["status"] for a in action_rows(engine)] == ["done"] * 3
        assert fake.limits.over_limit == 0
        engine.close()


RENAME_RULES = """
rules:
  - id: won-old-label
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "old label"}
  - id: won-new-label
    when: {source: hubspot, object: deal, field: dealstage, to: Won and signed}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "new label"}
"""


def test_a_renamed_stage_is_seen_without_a_restart(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as fake_server:
        settings = HubSpotSettings(
            access_token=fake.token, base_url=fake_server.url, timeout_seconds=5
        )
        config = make_config(tmp_path, store_url, RENAME_RULES, {"hubspot": settings})
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        first = fake.create_deal(dealname="First", dealstage="lead")
        engine.run_once()
        fake.move_deal(first, "closedwon")
        engine.run_once()
        assert notes(fake, first) == ["old label"]  # "Won and signed" is no stage yet

        (won,) = [s for p in fake.portal.pipelines for s in p["stages"] if s["id"] == "closedwon"]
        won["label"] = "Won and signed"  # renamed in HubSpot while syncd runs
        clock.advance(config.syncd.lookup_refresh_seconds + 1)
        assert engine.refresh_lookups() is True  # recompiled with the new label
        second = fake.create_deal(dealname="Second", dealstage="lead")
        engine.run_once()
        fake.move_deal(second, "closedwon")
        engine.run_once()
        engine.run_once()
        # The new label now matches, and the old one still means the same stage id.
        assert sorted(notes(fake, second)) == ["new label", "old label"]
        assert notes(fake, first) == ["old label"]
        engine.close()


def test_a_long_wait_says_so_once_in_the_alert_inbox(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as fake_server:
        settings = HubSpotSettings(
            access_token=fake.token, base_url=fake_server.url, timeout_seconds=5
        )
        config = make_config(tmp_path, store_url, TRANSITION_RULES, {"hubspot": settings})
        config.alerts = AlertsSection(to=["ops@example.org"], via="hubspot")
        fake.fail_next(50, 503, method="GET", path=PIPELINES)
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        engine.refresh_lookups()
        assert action_rows(engine) == []  # a short wait is not worth a mail
        for _ in range(40):  # ten minutes of retries with backoff
            clock.advance(15)
            engine.refresh_lookups()
        (alert,) = action_rows(engine)
        assert alert["rule_id"] == "syncd.alert:lookups"
        assert alert["params"]["to"] == ["ops@example.org"]
        assert "hubspot.deal.dealstage" in alert["params"]["body"]
        reads = 50 - pipeline_faults_left(fake)
        assert 4 <= reads <= 10  # retried with backoff (2, 4, 8 ... s), not once per tick
        engine.close()


def test_readyz_says_a_source_waits_for_its_stage_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeHubSpot()
    monkeypatch.setenv("SYNCD_HUBSPOT_ACCESS_TOKEN", fake.token)
    with fake.serve() as fake_server:
        rules = write_rules(tmp_path / "mappings", TRANSITION_RULES)
        config_path = tmp_path / "syncd.toml"
        config_path.write_text(f"""
[syncd]
state_dir = "{tmp_path / "state"}"
mappings = ["{rules}"]
[hubspot]
base_url = "{fake_server.url}"
""")
        fake.fail_next(1, 429, method="GET", path=PIPELINES, retry_after=1)
        daemon = Daemon(load_config(config_path))
        try:
            state = daemon.readiness()
            assert state["ready"] is False
            assert any("hubspot deals wait" in p for p in state["problems"]), state
            daemon.engine.lookups._next_try.clear()  # skip the backoff for the test
            assert daemon.engine.refresh_lookups() is True
            state = daemon.readiness()
            assert not any("wait" in p for p in state["problems"]), state
        finally:
            daemon.engine.close()


def pipeline_reads(fake: FakeHubSpot) -> int:
    with fake.app.lock:
        return sum(1 for r in fake.app.log if r.method == "GET" and re.search(PIPELINES, r.path))


def test_a_read_only_engine_takes_stage_labels_from_the_store_and_never_asks_hubspot(
    tmp_path: Path, store_url: str
) -> None:
    """`syncd status` and `prune` build an engine with `live_lookups=False`: an operator's
    look must not wait for HubSpot, nor spend its request budget."""
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as fake_server:
        settings = hubspot_settings(fake, fake_server.url)
        config = make_config(tmp_path, store_url, TRANSITION_RULES, {"hubspot": settings})

        def read_only() -> Engine:
            connectors = {"hubspot": HubSpotConnector(settings, clock)}
            return Engine(config, clock, connectors=connectors, live_lookups=False)

        never_read = read_only()  # nothing stored yet: the rules wait, and nobody asked
        assert pipeline_reads(fake) == 0
        assert "hubspot.deal.dealstage names never read" in never_read.lookups.problems()[0]
        assert never_read.lookups.refresh() is False and pipeline_reads(fake) == 0
        never_read.close()

        live = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        assert pipeline_reads(fake) == 1 and not live.lookups.problems()
        live.close()

        clock.advance(3600)  # stale: a live start would read them again
        stale = read_only()
        assert pipeline_reads(fake) == 1  # the stored labels, as they are
        assert not stale.lookups.problems()
        assert stale.status()["went_live"] == {"hubspot": None}
        stale.close()
