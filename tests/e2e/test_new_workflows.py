"""End to end, W14-W18 (issue #20): the shipped mappings against the sandbox fakes, each
workflow driven as people would drive it (HubSpot stage moves by signed webhook, Airtable
edits by ping, time by the sandbox clock). Real client libraries over HTTP to the fakes,
real SMTP to the email fake; assertions read what the fakes hold."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd_sandbox.world import SHIPPED_MAPPINGS, SandboxRun, run_sandbox
from syncd_sandbox.world.accounts import ADMIN_SPECIALIST, ENGAGEMENTS_REPO, LEADS_TABLE

pytestmark = pytest.mark.timeout(60)
PARTNERSHIPS = "partnerships@example.org"
SPONSOR = ["contracts@fiscal-sponsor.example.org", "finance@fiscal-sponsor.example.org"]
TO_CLOSED_WON = ("Qualified", "Proposal", "Negotiation", "Contract Admin", "Closed Won")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[SandboxRun]:
    """The sandbox with syncd gone live on its accounts (the story's first morning)."""
    with run_sandbox(tmp_path / "state") as run:
        run.story.connect_webhooks()
        run.story.go_live()
        yield run


def mails(run: SandboxRun, subject: str) -> list:
    return [m for m in run.box.smtp.messages if m.message["Subject"] == subject]


def at(run: SandboxRun, moment: datetime) -> None:
    run.box.clock.set(moment)
    run.story.cycle()


def test_w14_waiting_lead_is_followed_up_on_its_date(live: SandboxRun) -> None:
    box, story = live.box, live.story
    cryo = box.seeded.communities["cryoatlas"]
    ocean = box.seeded.communities["oceandata"]
    box.airtable.user_update(
        LEADS_TABLE,
        cryo.lead_id,
        {"Status": "Waiting", "Follow-up date": "2026-03-26", "Waiting on": "NSF grant"},
    )
    # Ocean Data waits too, but comes back before its date: no reminder for it.
    box.airtable.user_update(
        LEADS_TABLE, ocean.lead_id, {"Status": "Waiting", "Follow-up date": "2026-03-26"}
    )
    story.forward_webhooks()
    story.cycle()
    box.airtable.user_update(LEADS_TABLE, ocean.lead_id, {"Status": "Active Lead"})
    story.forward_webhooks()
    at(live, datetime(2026, 3, 26, 15, 0, tzinfo=UTC))  # 08:00 in Los Angeles: not yet
    assert mails(live, "Follow up with Cryo Atlas: waiting date reached") == []
    at(live, datetime(2026, 3, 26, 17, 0, tzinfo=UTC))
    (sent,) = mails(live, "Follow up with Cryo Atlas: waiting date reached")
    assert list(sent.rcpt_tos) == [PARTNERSHIPS]
    body = sent.message.get_content()
    assert "(2026-03-26)" in body and "Waiting on: NSF grant" in body
    assert mails(live, "Follow up with Ocean Data Commons: waiting date reached") == []
    at(live, datetime(2026, 3, 28, 17, 0, tzinfo=UTC))  # once, not every day
    assert len(mails(live, "Follow up with Cryo Atlas: waiting date reached")) == 1


def test_w15_end_of_engagement_sets_inactive_service_and_tells_partnerships(
    live: SandboxRun,
) -> None:
    box, story = live.box, live.story
    climate, pangeo = box.seeded.communities["climatelab"], box.seeded.communities["pangeo"]
    box.hubspot.update_deal(climate.deal_id, end_date="2026-03-26")
    box.hubspot.update_deal(pangeo.deal_id, end_date="2026-03-26", renewed="true")
    story.move("climatelab", *TO_CLOSED_WON, webhook=True)
    story.move("pangeo", *TO_CLOSED_WON, webhook=True)
    story.cycle()
    box.airtable.user_update(LEADS_TABLE, climate.lead_id, {"Status": "Active Service"})
    box.airtable.user_update(LEADS_TABLE, pangeo.lead_id, {"Status": "Active Service"})
    at(live, datetime(2026, 3, 26, 17, 0, tzinfo=UTC))  # the end date itself: still on
    assert mails(live, "Engagement ended: Climate Lab renewal") == []
    at(live, datetime(2026, 3, 27, 17, 0, tzinfo=UTC))  # the day after, 09:00 Los Angeles
    rows = {r["fields"]["community_id"]: r["fields"] for r in box.airtable.records(LEADS_TABLE)}
    assert rows["climatelab"]["Status"] == "Inactive Service"
    assert rows["pangeo"]["Status"] == "Active Service"  # renewed: stays in service
    (sent,) = mails(live, "Engagement ended: Climate Lab renewal")
    assert list(sent.rcpt_tos) == [PARTNERSHIPS]
    assert "`climatelab` is now Inactive Service" in sent.message.get_content()
    assert mails(live, "Engagement ended: Pangeo managed hub") == []


def _signed(run: SandboxRun) -> None:
    run.story.move("pangeo", *TO_CLOSED_WON, webhook=True)
    run.story.move("oceandata", "Qualified", "Closed Won", webhook=True)  # no Contract Admin
    run.story.cycle()


def test_w16_delivery_request_as_github_issues(live: SandboxRun) -> None:
    _signed(live)
    deal_id = live.box.seeded.communities["pangeo"].deal_id
    issues = {i.title: i for i in live.box.github.issues(ENGAGEMENTS_REPO)}
    assert sorted(issues) == [
        "Deliverables: Pangeo Community",
        "Engagement: Pangeo Community",
        "Project: Pangeo Community hub deployment",
    ]
    assert issues["Engagement: Pangeo Community"].labels == ["engagement", f"deal-{deal_id}"]
    body = issues["Engagement: Pangeo Community"].body or ""
    assert "2026-03-29 to 2027-03-29" in body and "Amount: 24000" in body
    assert "Deal owner (BD): Ada Lovelace" in body
    assert "cloud gcp" in (issues["Project: Pangeo Community hub deployment"].body or "")
    (sent,) = mails(live, "Delivery request: Pangeo Community")
    assert f"issues in {ENGAGEMENTS_REPO} labelled\ndeal-{deal_id}" in sent.message.get_content()
    assert not [t for t in live.box.jira.issues.values() if "Engagement" in t.summary]
    assert mails(live, "Delivery request: Ocean Data Commons") == []


@pytest.fixture(params=["config", "mapping file"])
def jira_tracked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SandboxRun]:
    """W16's switch set to Jira, either way ops can set it: `[syncd] vars` in the config,
    or the `vars:` of the shipped mapping file."""
    mappings, config_vars = SHIPPED_MAPPINGS, {"delivery_tracker": "jira"}
    if request.param == "mapping file":
        mappings, config_vars = tmp_path / "mappings", {}
        shutil.copytree(SHIPPED_MAPPINGS, mappings)
        rule_file = mappings / "delivery-request.yaml"
        text = rule_file.read_text()
        assert "delivery_tracker: github" in text
        # The file's own setting (the first one; examples pin theirs).
        rule_file.write_text(text.replace("delivery_tracker: github", "delivery_tracker: jira", 1))
    with run_sandbox(tmp_path / "state", mappings=mappings, mapping_vars=config_vars) as run:
        run.story.connect_webhooks()
        run.story.go_live()
        yield run


def test_w16_delivery_request_as_jira_tickets(jira_tracked: SandboxRun) -> None:
    _signed(jira_tracked)
    deal_id = jira_tracked.box.seeded.communities["pangeo"].deal_id
    tickets = {t.summary: t for t in jira_tracked.box.jira.issues.values() if t.project == "OPS"}
    assert sorted(tickets) == [
        "Deliverables: Pangeo Community",
        "Engagement: Pangeo Community",
        "Project: Pangeo Community hub deployment",
    ]
    engagement = tickets["Engagement: Pangeo Community"]
    assert engagement.issuetype == "Epic"
    assert {"engagement", f"deal-{deal_id}"} <= set(engagement.labels)
    assert "Amount: 24000" in json.dumps(engagement.description)
    assert tickets["Deliverables: Pangeo Community"].issuetype == "Task"
    assert jira_tracked.box.github.issues(ENGAGEMENTS_REPO) == []
    (sent,) = mails(jira_tracked, "Delivery request: Pangeo Community")
    assert f"Jira project OPS,\nlabel deal-{deal_id}" in sent.message.get_content()


def test_w17_contract_sent_reaches_sponsor_contracting_and_finance(live: SandboxRun) -> None:
    live.story.move("pangeo", "Qualified", "Proposal", "Negotiation", webhook=True)
    live.story.cycle()
    assert mails(live, "Contract to send: Pangeo managed hub") == []  # only the quote so far
    live.story.move("pangeo", "Contract Admin", webhook=True)
    live.story.cycle()
    (sent,) = mails(live, "Contract to send: Pangeo managed hub")
    assert sorted(sent.rcpt_tos) == sorted([*SPONSOR, PARTNERSHIPS])
    body = sent.message.get_content()
    assert "Pangeo agreed to the price" in body
    assert "Buyer: Ryan Abernathey <ryan@pangeo.example>" in body
    assert "Amount: 24000" in body


def test_w18_new_client_gets_kickoff_and_onboarding_tasks(live: SandboxRun) -> None:
    live.story.move("pangeo", *TO_CLOSED_WON, webhook=True)
    live.story.move("climatelab", *TO_CLOSED_WON, webhook=True)  # a returning client
    live.story.cycle()
    jira = live.box.jira
    tickets = {t.summary: t for t in jira.issues.values() if t.reporter == jira.bot.account_id}
    kickoff, onboard = tickets["Kickoff meeting: Pangeo"], tickets["Onboard client: Pangeo"]
    assert kickoff.assignee == "712020:aaaa-1111"  # the deal owner, Ada (business development)
    assert onboard.assignee == ADMIN_SPECIALIST[0]
    assert kickoff.duedate == onboard.duedate == "2026-03-31"  # a week after the win
    assert "Ryan Abernathey <ryan@pangeo.example> (Buyer)" in json.dumps(kickoff.description)
    assert "Kickoff meeting: Climate Lab" not in tickets
    assert "Onboard client: Climate Lab" not in tickets
