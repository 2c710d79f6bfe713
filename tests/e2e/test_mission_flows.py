"""End to end, against the sandbox fakes with the shipped mappings: the processes of issue
#20 that the demo story does not show in every variant (a deal without community_id, an
engineer editing the New Hub body, ...). Each test plays its own short scenario after the
accounts went live, and reads the effects back from the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from syncd_sandbox.world import SandboxRun, run_sandbox
from syncd_sandbox.world.accounts import ENGINEER, INFRA_REPO

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def live(tmp_path) -> Iterator[SandboxRun]:
    """The sandbox after syncd went live on its accounts (no story played)."""
    with run_sandbox(tmp_path) as run:
        run.story.connect_webhooks()
        run.story.go_live()
        run.box.clock.advance(3600)
        yield run


def win(run: SandboxRun, company: dict | None = None, **deal: object) -> str:
    """A deal created and won after go-live; polling finds it (no webhook)."""
    box = run.box
    deal_id = box.hubspot.create_deal(dealstage="lead", **deal)
    box.hubspot.add_company(deal_id, **(company or {"name": str(deal["dealname"])}))
    box.hubspot.move_deal(deal_id, "contractadmin", "closedwon", step_seconds=1)
    box.hubspot.portal.take_events()
    run.story.cycle()
    return deal_id


def issue(run: SandboxRun, prefix: str) -> Any:
    (found,) = [i for i in run.box.github.issues(INFRA_REPO) if i.title.startswith(prefix)]
    return found


def subjects(run: SandboxRun) -> list[str]:
    return [" ".join(str(m.message["Subject"]).split()) for m in run.box.smtp.messages]


def test_missing_community_id_is_said_in_the_issue_and_to_the_alert_inbox(live: SandboxRun) -> None:
    deal_id = win(live, dealname="Mystery hub", community_long_name="Mystery Community")
    info = issue(live, "New Hub - Request Information: Mystery Community")
    assert "This deal has no `community_id` in HubSpot" in (info.body or "")
    assert "[syncd] needs a decision: Mystery hub has no community_id" in subjects(live)
    # Delivered all the same: the deal is marked, and the inbox hears the row was not set.
    live.box.github.close_issue(INFRA_REPO, info.number, user="jmunroe")
    live.story.cycle()
    deploy = issue(live, "New Hub - Request deployment: Mystery Community")
    assert "This deal has no `community_id` in HubSpot" in (deploy.body or "")
    live.box.github.close_issue(INFRA_REPO, deploy.number, user=ENGINEER)
    live.story.cycle()
    assert live.box.hubspot.portal.get("deals", deal_id).properties["delivered"] == "true"
    assert "[syncd] needs a decision: hub delivered for Mystery hub, no community_id" in subjects(
        live
    )
    assert {a["status"] for a in live.story.feed.all()} == {"done"}


def test_delivery_survives_an_engineer_rewriting_the_issue_body(live: SandboxRun) -> None:
    deal_id = win(
        live, dealname="Glacier hub", community_long_name="Glacier Lab", community_id="glacier"
    )
    info = issue(live, "New Hub - Request Information: Glacier Lab")
    live.box.github.touch_issue(INFRA_REPO, info.number, body="answers inline, marker gone")
    live.box.github.close_issue(INFRA_REPO, info.number, user="jmunroe")
    live.story.cycle()
    deploy = issue(live, "New Hub - Request deployment: Glacier Lab")
    live.box.github.touch_issue(INFRA_REPO, deploy.number, body="rewritten by an engineer")
    live.story.cycle()
    live.box.github.close_issue(INFRA_REPO, deploy.number, user=ENGINEER)
    live.story.cycle()
    assert live.box.hubspot.portal.get("deals", deal_id).properties["delivered"] == "true"
    rows = {
        r["fields"].get("community_id"): r["fields"] for r in live.box.airtable.records("Leads")
    }
    assert rows["glacier"]["Status"] == "Active Service"
    hubs = {
        r["fields"]["community_id"]: r["fields"] for r in live.box.airtable.records("Active Hubs")
    }
    assert hubs["glacier"]["Status"] == "Deployment requested"


def test_an_issue_a_person_opened_with_the_old_marker_delivers_nothing(live: SandboxRun) -> None:
    deal_id = win(live, dealname="Fjord hub", community_id="fjord")
    hand = live.box.github.open_issue(
        INFRA_REPO,
        "New Hub - Request deployment: Fjord",
        user=ENGINEER,
        body=f"<!-- syncd:hubspot-deal={deal_id} syncd:community-id=fjord -->",
    )
    live.box.clock.advance(timedelta(minutes=5).total_seconds())
    live.story.cycle()
    live.box.github.close_issue(INFRA_REPO, hand.number, user=ENGINEER)
    live.story.cycle()
    assert live.box.hubspot.portal.get("deals", deal_id).properties.get("delivered") is None


def test_maintenance_tier_weighs_seed_000_factors_and_asks_when_unknown(live: SandboxRun) -> None:
    def tier(deal_id: str) -> str | None:
        return live.box.hubspot.portal.get("deals", deal_id).properties.get("maintenance_tier")

    typed = win(live, dealname="Typed hub", community_id="typed", num_users="1,500")
    small_aws = win(
        live,
        dealname="Small AWS hub",
        community_id="smallaws",
        num_users="200",
        cloud_provider="aws",
    )
    decided = win(
        live,
        dealname="Decided hub",
        community_id="decided",
        num_users="5000",
        maintenance_tier_override="Tier 1",
    )
    unknown = win(live, dealname="Quiet hub", community_id="quiet")
    assert tier(typed) == "Tier 2 (11 h/month)"
    assert tier(small_aws) == "Tier 2 (11 h/month)"
    assert tier(decided) == "Tier 1 (7 h/month)"
    assert tier(unknown) == "Needs a decision: user count unknown"
    assert subjects(live).count("[syncd] needs a decision: maintenance tier of Quiet hub") == 1
    assert not any("maintenance tier" in s for s in subjects(live) if "Quiet" not in s)


def test_request_information_pings_only_representatives(live: SandboxRun) -> None:
    box = live.box
    deal_id = box.hubspot.create_deal(
        dealstage="lead",
        dealname="Reef hub",
        community_long_name="Reef @oceans-team",
        community_id="reef",
        github_org="@reef-org",
    )
    box.hubspot.add_company(deal_id, name="Reef")
    box.hubspot.add_contact(
        deal_id,
        "Community Representative",
        firstname="Ana",
        lastname="Reis",
        email="ana@reef.example",
        github_username="anareis",
    )
    box.hubspot.add_contact(
        deal_id,
        "Buyer",
        firstname="Bo",
        lastname="Lund",
        email="bo@reef.example",
        github_username="bolund",
    )
    box.hubspot.move_deal(deal_id, "contractadmin", "closedwon", step_seconds=1)
    box.hubspot.portal.take_events()
    live.story.cycle()
    info = issue(live, "New Hub - Request Information: Reef")
    body = info.body or ""
    assert "- Ana Reis @anareis" in body  # the representative is pinged
    assert "bolund" not in body  # the buyer is not listed, let alone pinged
    assert "@oceans-team" not in body and "@oceans-team" not in info.title
    assert "@\u200doceans-team" in info.title and "@\u200dreef-org" in body
