"""Check equals production: a deal field a rule reads is fetched with no config change, and a
field that does not exist in the portal is named by `syncd check` (fake HubSpot, real client)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.settings import DEFAULT_DEAL_PROPERTIES
from syncd.cli import main
from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.engine import build_connectors
from syncd.mapping.loader import load_rules
from syncd.model import ObjectRef
from syncd_sandbox.hubspot.fake import FakeHubSpot
from tests.integration.connectors.support import (
    make_config,
    make_engine,
    write_rules,
    write_toml,
)

LOCATION_RULE = """
rules:
  - id: new-hub
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    if: {closed_lost_reason: {exists: false}}
    do:
      - hubspot.add_note:
          deal_id: "{{ deal.id }}"
          body: "Hosted in {{ deal.data_location }}"
"""


def test_a_field_outside_the_default_list_is_fetched_without_config(
    tmp_path: Path, store_url: str
) -> None:
    assert "data_location" not in DEFAULT_DEAL_PROPERTIES
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as server:
        settings = HubSpotSettings(access_token=fake.token, base_url=server.url, timeout_seconds=5)
        config = make_config(tmp_path, store_url, LOCATION_RULE, {"hubspot": settings})
        engine = make_engine(config, clock, {"hubspot": HubSpotConnector(settings, clock)})
        try:
            deal_id = fake.create_deal(dealname="Ocean", dealstage="lead", data_location="eu-west")
            engine.poller.poll_all()
            fake.move_deal(deal_id, "closedwon")
            engine.run_once()
            engine.run_once()
            assert [n.split("\n")[0] for n in fake.notes_of(deal_id)] == ["Hosted in eu-west"]
        finally:
            engine.close()


def test_check_reports_a_property_that_does_not_exist(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as server:
        toml = write_toml(
            tmp_path / "syncd.toml",
            {
                "syncd": {
                    "state_dir": str(tmp_path / "state"),
                    "mappings": [
                        str(
                            write_rules(
                                tmp_path / "mappings",
                                """
rules:
  - id: lost-reason
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Lost}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "{{ deal.closed_lost_reasn }}"}
""",
                            )
                        )
                    ],
                },
                "store": {"url": store_url},
                "hubspot": {"access_token": fake.token, "base_url": server.url},
            },
        )
        config = load_config(toml)
        connector = build_connectors(config, clock)["hubspot"]
        problems = connector.check_mapping(load_rules(config.mapping_paths))
        connector.close()
        assert problems == [
            "deal property 'closed_lost_reasn' does not exist in HubSpot (used by rule(s) "
            "lost-reason); fix the name, or create the property in HubSpot"
        ]
        result = CliRunner().invoke(main, ["check", "--config", str(toml)])
        assert result.exit_code == 1
        assert "[hubspot] deal property 'closed_lost_reasn' does not exist" in result.output


COMPANY_RULE = """
rules:
  - id: won-for
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "For {{ deal.company.name }}"}
"""


def test_rules_loaded_but_not_installed_change_nothing_that_is_read(
    tmp_path: Path, store_url: str
) -> None:
    """A reload refused after its files loaded (no rules left, say) keeps the old rules:
    they must keep what they read, here the deal's company."""
    clock = FakeClock()
    fake = FakeHubSpot(clock=clock)
    with fake.serve() as server:
        settings = HubSpotSettings(access_token=fake.token, base_url=server.url, timeout_seconds=5)
        config = make_config(tmp_path, store_url, COMPANY_RULE, {"hubspot": settings})
        connector = HubSpotConnector(settings, clock)
        engine = make_engine(config, clock, {"hubspot": connector})
        try:
            deal_id = fake.create_deal(dealname="Ocean", dealstage="closedwon")
            fake.add_company(deal_id, name="Ocean University")
            ref = ObjectRef("hubspot", "deal", deal_id)
            write_rules(tmp_path / "mappings", LOCATION_RULE)  # reads no company

            loaded = engine.load_rules()
            assert connector.fetch(ref).context["company"]["name"] == "Ocean University"

            engine.install_rules(loaded)
            assert "company" not in connector.fetch(ref).context
        finally:
            engine.close()
