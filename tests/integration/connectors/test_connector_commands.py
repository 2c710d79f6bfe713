"""Operator commands of the connectors, run as `syncd <connector> <command>` on a config file:
`hubspot backfill` (resumable, rules not fired unless `--replay`), `airtable webhooks
refresh`, and the live mapping checks of `syncd check`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from connectors.hubspot.cli import RESUME_KEY, run_backfill
from syncd.cli import main
from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.engine import Engine, build_connectors
from syncd.errors import TransientError
from syncd.mapping.loader import load_rules
from syncd.store.schema import snapshots
from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.fakeserver import FakeServer
from syncd_sandbox.hubspot.fake import FakeHubSpot
from tests.integration.connectors.support import (
    TickingClock,
    action_rows,
    write_rules,
    write_toml,
)

WON_RULES = """
rules:
  - id: deal-won
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Won"}
"""


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _snapshot_count(engine: Engine) -> int:
    with engine.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(snapshots)).scalar()


@pytest.fixture
def hubspot(tmp_path: Path, store_url: str) -> Iterator[tuple[FakeHubSpot, Path, FakeClock]]:
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock, general_limit=1000, search_limit=100)
    for n, stage in enumerate(["lead", "closedwon", "proposal", "closedwon", "qualified"]):
        clock.advance(60)
        fake.create_deal(dealname=f"Deal {n}", dealstage=stage)
    with fake.serve() as server:
        toml = write_toml(
            tmp_path / "syncd.toml",
            {
                "syncd": {
                    "state_dir": str(tmp_path / "state"),
                    "mappings": [str(write_rules(tmp_path / "mappings", WON_RULES))],
                },
                "store": {"url": store_url},
                "hubspot": {
                    "access_token": fake.token,
                    "base_url": server.url,
                    "search_page_size": 2,
                    "poll_context": False,
                    "search_requests_per_second": 100,
                    "requests_per_10s": 1000,
                },
            },
        )
        yield fake, toml, clock


def test_backfill_resumes_after_a_failure_and_fires_no_rule(hubspot) -> None:
    fake, toml, clock = hubspot
    engine = Engine(load_config(toml), clock)
    connector = engine.connectors["hubspot"]

    def fail_after_first_page(report: Any) -> None:
        if report.pages == 1:
            fake.fail_next(1, 503, method="POST", path=r"/search$")

    with pytest.raises(TransientError):
        run_backfill(engine, connector, since=None, replay=False, on_page=fail_after_first_page)
    assert _snapshot_count(engine) == 2
    assert connector.state.get(RESUME_KEY)["cursor"]
    engine.close()

    result = _invoke("hubspot", "backfill", "--config", str(toml))
    assert result.exit_code == 0, result.output
    assert "backfill done (resumed)" in result.output
    assert "(snapshots only, no rule fired)" in result.output
    engine = Engine(load_config(toml), clock)
    assert engine.connectors["hubspot"].state.get(RESUME_KEY) is None  # cleared when done
    assert _snapshot_count(engine) == 5
    assert action_rows(engine) == []
    engine.run_once()  # the regular poll finds nothing new: no note for old wins
    assert action_rows(engine) == []
    assert [fake.notes_of(d) for d in ("1002", "1004")] == [[], []]
    engine.close()


def test_backfill_with_replay_fires_the_rules(hubspot) -> None:
    fake, toml, _ = hubspot
    result = _invoke("hubspot", "backfill", "--replay", "--config", str(toml))
    assert result.exit_code == 0, result.output
    assert "backfill done: 5 deals" in result.output and "(rules fired)" in result.output
    after_cli = FakeClock(datetime.now(UTC) + timedelta(minutes=1))  # the CLI ran on real time
    engine = Engine(load_config(toml), after_cli)
    assert [o.status for o in engine.executor.drain()] == ["done", "done"]
    won = [r.id for r in fake.portal.live("deals") if r.properties["dealstage"] == "closedwon"]
    assert sorted(r["object_id"] for r in action_rows(engine)) == sorted(won)
    engine.close()


def test_check_reports_unknown_stages_against_live_pipelines(hubspot, tmp_path: Path) -> None:
    _, toml, clock = hubspot
    write_rules(
        tmp_path / "mappings",
        WON_RULES
        + """
  - id: typo-in-trigger
    when: {source: hubspot, object: deal, field: dealstage, from: Qualifed, to: Proposal}
    do:
      - hubspot.update_deal: {deal_id: "{{ deal.id }}", properties: {dealstage: Contract Sent}}
  - id: typo-in-condition
    when: {source: hubspot, object: deal, field: amount}
    if: {all: [{dealstage: {in: [closedwon, Closed Lots]}}]}
    do:
      - hubspot.update_deal:
          deal_id: "{{ deal.id }}"
          properties: {dealstage: "{{ deal.next_stage }}", maintenance_tier: "1"}
""",
    )
    config = load_config(toml)
    connector = build_connectors(config, clock)["hubspot"]
    rules = load_rules(config.mapping_paths, run_examples=False)
    problems = connector.check_mapping(rules)
    connector.close()
    assert len(problems) == 4, problems
    # `deal.next_stage` is read by a template but is no property of the portal
    assert problems[0].startswith("deal property 'next_stage' does not exist in HubSpot")
    problems = problems[1:]
    assert "rule typo-in-trigger: unknown deal stage 'Qualifed'" in problems[0]
    assert "'Contract Sent'" in problems[1]
    assert "rule typo-in-condition: unknown deal stage 'Closed Lots'" in problems[2]
    assert "Closed Won" in problems[0]  # the stages that do exist are listed

    result = CliRunner().invoke(main, ["check", "--config", str(toml)])
    assert result.exit_code == 1
    assert "[hubspot]" in result.output and "'Contract Sent'" in result.output


def test_check_warns_when_hubspot_is_unreachable(tmp_path: Path, store_url: str) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    toml = write_toml(
        tmp_path / "syncd.toml",
        {
            "syncd": {
                "state_dir": str(tmp_path / "state"),
                "mappings": [str(write_rules(tmp_path / "mappings", WON_RULES))],
            },
            "store": {"url": store_url},
            "hubspot": {"access_token": "pat-not-real", "base_url": dead, "timeout_seconds": 2},
        },
    )
    result = CliRunner().invoke(main, ["check", "--config", str(toml)])
    assert "warning: hubspot: live checks skipped" in result.output
    assert "pat-not-real" not in result.output


AIRTABLE_RULES = """
rules:
  - id: needs-admin
    when: {source: airtable, object: lead, field: Status, to: Needs Admin}
    do:
      - airtable.upsert:
          table: hub
          merge_on: [Community, Regoin]
          fields: {Community: "{{ lead.Name }}", Staus: Active Service, "{{ lead.Extra }}": 1}
  - id: wrong-alias
    when: {source: airtable, object: leads, field: Stage}
    do:
      - airtable.update: {table: hubs, record_id: rec1, fields: {Status: x}}
"""


@pytest.fixture
def airtable(tmp_path: Path, store_url: str) -> Iterator[tuple[FakeAirtable, Path, FakeClock]]:
    clock = TickingClock()
    fake = FakeAirtable(token="patCommandTest.0001", base_id="appCommands00001", clock=clock)
    fake.create_table(
        "Leads",
        {"Name": "singleLineText", "Status": "singleSelect", "Last Modified": "lastModifiedTime"},
    )
    fake.create_table("Active Hubs", {"Community": "singleLineText", "Status": "singleSelect"})
    with FakeServer(fake.app) as server:
        toml = write_toml(
            tmp_path / "syncd.toml",
            {
                "syncd": {
                    "state_dir": str(tmp_path / "state"),
                    "mappings": [str(write_rules(tmp_path / "mappings", AIRTABLE_RULES))],
                },
                "store": {"url": store_url},
                "http": {"public_url": "https://syncd.example.org/"},
                "airtable": {
                    "token": fake.token,
                    "base_id": fake.base_id,
                    "base_url": server.url,
                    "tables": {"lead": "Leads", "hub": "Active Hubs"},
                },
            },
        )
        yield fake, toml, clock


def test_airtable_check_names_unknown_fields_and_aliases(airtable) -> None:
    _, toml, clock = airtable
    config = load_config(toml)
    connector = build_connectors(config, clock)["airtable"]
    problems = connector.check_mapping(load_rules(config.mapping_paths, run_examples=False))
    connector.close()
    text = "\n".join(problems)
    assert len(problems) == 4, problems
    assert "rule needs-admin: airtable.upsert: table 'Active Hubs' has no field 'Staus'" in text
    assert "did you mean 'Status'" in text
    assert "no field 'Regoin'" in text
    assert "rule wrong-alias: unknown Airtable table alias 'leads'" in text
    assert "rule wrong-alias: airtable.update: unknown Airtable table alias 'hubs'" in text
    assert "Extra" not in text  # a templated field name is only known at run time


def test_airtable_webhooks_ensure_then_refresh(airtable) -> None:
    fake, toml, clock = airtable
    # The wrong alias in the rules would stop the engine: keep only the valid rule.
    write_rules(
        toml.parent / "mappings",
        AIRTABLE_RULES.split("  - id: wrong-alias")[0]
        .replace("Regoin", "Status")
        .replace("Staus", "Status"),
    )
    ensured = _invoke("airtable", "webhooks", "ensure", "--config", str(toml))
    assert ensured.exit_code == 0, ensured.output
    (hook,) = fake.webhooks.hooks.values()
    assert hook.to_api()["notificationUrl"] == "https://syncd.example.org/webhooks/airtable"
    assert _invoke("airtable", "webhooks", "ensure", "--config", str(toml)).exit_code == 0
    assert len(fake.webhooks.hooks) == 1  # ensuring again creates nothing

    refreshed = _invoke("airtable", "webhooks", "refresh", "--config", str(toml))
    assert refreshed.exit_code == 0, refreshed.output
    assert f"refreshed {hook.id}" in refreshed.output
    clock.advance(days=8)  # not refreshed in time: Airtable drops it
    recreated = _invoke("airtable", "webhooks", "refresh", "--config", str(toml))
    assert recreated.exit_code == 0, recreated.output
    assert f"recreated {hook.id} (expired)" in recreated.output
    assert fake.token not in recreated.output
