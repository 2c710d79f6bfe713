"""End to end: the demo's sales story against the sandbox fakes, with the shipped mappings.

Assertions read the fakes (what GitHub, the SMTP server, Airtable, HubSpot and Jira hold),
not syncd's own records: each expected effect exactly once, with its content, nothing else;
then everything replayed against the same store changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete

from syncd.store.schema import cursors
from syncd_sandbox.world import SandboxRun, expected, observe, run_sandbox, start_engine
from syncd_sandbox.world.accounts import INFRA_REPO, LEADS_TABLE

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    """The story played once (module scope: ~2 s; every test reads the same end state)."""
    with run_sandbox(tmp_path_factory.mktemp("state")) as run:
        run.story.play()
        yield run


def test_every_expected_effect_exactly_once_and_nothing_else(played: SandboxRun) -> None:
    assert observe(played.box).differences(expected(played.box)) == []
    failed = [
        (a["rule_id"], a["object_id"]) for a in played.story.feed.all() if a["status"] != "done"
    ]
    neuro = [
        r["id"]
        for r in played.box.airtable.records(LEADS_TABLE)
        if r["fields"].get("community_id") == "neurohub"
    ]
    assert failed == [("w7-invoice-line", neuro[0])]  # the malformed fee, and nothing else


def test_new_hub_issue_carries_every_community_fact(played: SandboxRun) -> None:
    pangeo = played.box.seeded.communities["pangeo"]
    (issue,) = [
        i
        for i in played.box.github.issues(INFRA_REPO)
        if i.title == "New Hub - Request deployment: Pangeo Community"
    ]
    body = issue.body or ""
    for fact in (
        "Pangeo Community",
        "| Short name | Pangeo |",
        "`pangeo`",
        "https://pangeo.example",
        "pangeo-data",
        "https://pangeo.example/logo.png",
        "gcp",
        "us-central1",
        "Partner",
        "1500",
        f"https://app.hubspot.com/contacts/62515/record/0-3/{pangeo.deal_id}",
    ):
        assert fact in body, fact
    # GitHub handles are written, but never ping anyone (a zero-width joiner after the @)
    assert "- **Buyer**: Ryan Abernathey <ryan@pangeo.example> (GitHub @\u200drabernat)" in body
    assert "- **Technical Contact**: Joe Hamman <joe@pangeo.example>" in body
    assert "- **Technical Community Lead**: **MISSING in HubSpot**" in body
    assert "MISSING" not in body.split("### People")[0]  # every community fact was given
    assert issue.labels == ["new-hub", "engineering-backlog", "gcp"]
    assert issue.state == "closed" and issue.closed_by == "sgibson91"


def test_emails_reach_recipients_and_cc(played: SandboxRun) -> None:
    by_subject = {m.message["Subject"]: m for m in played.box.smtp.messages}
    needs_admin = by_subject["New service confirmed: Pangeo Community"]
    assert set(needs_admin.rcpt_tos) == {"operations@example.org", "partnerships@example.org"}
    expiring = by_subject["Agreement expiring in 60 days: Climate Lab renewal"]
    climate_end = played.box.seeded.communities["climatelab"].deal["end_date"]
    assert f"ends on {climate_end}" in expiring.message.get_content()
    invoices = by_subject["Invoices for March 2026: 4 communities"].message.get_content()
    for line in (
        "- Ice Sheets Collaborative\n  - managed hub fee: 1200\n  - cloud spend: 340.5",
        "- Pangeo Community\n  - managed hub fee: 2000",
        "- Climate Lab\n  - managed hub fee: 1500",
        "- Neuro Hub\n  - managed hub fee: UNREADABLE in Airtable ($900)",
        "Total of the fees listed: 4700 USD",
        "cloud spend listed: 340.5 USD",
    ):
        assert line in invoices, line
    assert "Old Astro Hub" not in invoices
    alert = by_subject["[syncd] rule w7-invoice-line failed: render error"]
    assert "not an amount: '$900'" in alert.message.get_content()
    lines = {
        r["fields"]["community_id"]: r["fields"].get("Last invoice line")
        for r in played.box.airtable.records(LEADS_TABLE)
    }
    assert lines["icesheets"] == "2026-03: managed hub fee 1200 USD, cloud spend 340.5 USD"
    assert lines["neurohub"] is None


def test_airtable_rows_and_hubspot_properties(played: SandboxRun) -> None:
    rows = {
        r["fields"]["community_id"]: r["fields"] for r in played.box.airtable.records(LEADS_TABLE)
    }
    assert rows["pangeo"]["Cloud"] == "gcp" and rows["pangeo"]["Monthly fee"] == 2000
    assert rows["openearth"]["Community"] == "Open Earth Teaching Network"
    assert "Status" not in rows["openearth"]
    pangeo = played.box.seeded.communities["pangeo"]
    deal = played.box.hubspot.portal.get("deals", pangeo.deal_id)
    assert deal is not None
    assert deal.properties["maintenance_tier"] == "Tier 2 (11 h/month)"
    assert deal.properties["delivered"] == "true"


def test_jira_tickets_under_their_epics(played: SandboxRun) -> None:
    jira = played.box.jira
    epics = played.box.seeded.epics
    reviews = [i for i in jira.issues.values() if i.summary.startswith("Client strategy")]
    assert sorted(i.parent for i in reviews) == sorted(epics[:2])  # not the Done epic
    for review in reviews:
        assert review.original_estimate == "3h"
        assert review.assignee == jira.issues[review.parent].assignee
        assert "client-strategy" in review.labels
    (briefing,) = [i for i in jira.issues.values() if i.summary == "Client Briefing: Pangeo"]
    assert briefing.assignee == "712020:aaaa-1111"  # the deal owner, Ada, found by e-mail
    assert "Ryan Abernathey" in str(briefing.description)


def test_replay_and_restart_create_nothing_new(played: SandboxRun) -> None:
    before = observe(played.box)
    planned = len(played.story.feed.all())
    played.story.replay()
    assert observe(played.box) == before
    assert len(played.story.feed.all()) == planned
    # A second engine on the same store (a restart), polling every stream from scratch.
    with played.engine.store.tx() as conn:
        conn.execute(delete(cursors))
    restarted = start_engine(played.engine.config, played.box.clock)
    try:
        report = restarted.run_once()
    finally:
        restarted.close()
    assert report.outcomes == [] and report.scheduled == 0
    assert observe(played.box) == before


def test_new_hub_in_two_steps_linked_and_mentioning_only_representatives(
    played: SandboxRun,
) -> None:
    issues = {i.title: i for i in played.box.github.issues(INFRA_REPO)}
    info = issues["New Hub - Request Information: Pangeo Community"]
    deploy = issues["New Hub - Request deployment: Pangeo Community"]
    assert info.number < deploy.number and info.closed_by == "jmunroe"
    link = f"{INFRA_REPO}/issues/{info.number}"
    assert link in (deploy.body or "").split("Follows the information step: ")[1].split()[0]
    assert "engineering-backlog" in deploy.labels
    info_body = info.body or ""
    # The Community Champion is pinged by GitHub id; a Buyer's handle alone is not listed.
    assert "- Julia Signell (no GitHub id in HubSpot)" in info_body
    earth = issues["New Hub - Request Information: Open Earth Teaching Network"].body or ""
    assert "- Ines Moreau @imoreau" in earth  # a real mention (allow_mentions: true)
    # The Active Hubs row cross-references the leads row by community_id.
    (hub,) = played.box.airtable.records("Active Hubs")
    assert hub["fields"]["community_id"] == "pangeo"
    assert hub["fields"]["Request Information issue"].endswith(link)


def test_renewal_gets_a_renewal_issue_and_no_new_hub(played: SandboxRun) -> None:
    titles = [i.title for i in played.box.github.issues(INFRA_REPO)]
    assert [t for t in titles if "Climate Lab" in t] == ["Hub renewal: Climate Lab"]
    (renewal,) = [
        i for i in played.box.github.issues(INFRA_REPO) if i.title == "Hub renewal: Climate Lab"
    ]
    assert "Customer since: 2024-05-02" in (renewal.body or "")


def test_end_date_entered_inside_the_window_alerts_at_once_naming_buyer_and_amount(
    played: SandboxRun,
) -> None:
    mails = {m.message["Subject"]: m.message.get_content() for m in played.box.smtp.messages}
    late = mails["Agreement expiring in 60 days: Open Earth teaching hub"]
    assert "This notice is late" in late and "Amount: 6000 USD" in late
    assert "Buyer: not recorded in HubSpot" in late  # Open Earth has no Buyer contact
    climate = mails["Agreement expiring in 60 days: Climate Lab renewal"]
    assert "Buyer: Maria Lopez <maria@climatelab.example>" in climate
    assert "Amount: 9000 USD" in climate and "late" not in climate


def test_needs_admin_notice_carries_the_row_links_and_names_the_thread(played: SandboxRun) -> None:
    mails = {m.message["Subject"]: m.message.get_content() for m in played.box.smtp.messages}
    climate = mails["New service confirmed: Climate Lab"]
    start = played.box.seeded.communities["climatelab"].deal["start_date"]
    deal_id = played.box.seeded.communities["climatelab"].deal_id
    assert f"Service start date: {start}" in climate  # copied from the won deal (W1)
    assert f"- HubSpot deal: https://app.hubspot.com/contacts/62515/record/0-3/{deal_id}" in climate
    assert "- Airtable row: https://airtable.com/" in climate
    assert 'Search the mailbox for "Climate Lab" from:maria@climatelab.example' in climate
    for field in (
        "- Cloud: aws",
        "- Region: us-west-2",
        "- Membership level: Member",
        "- Monthly fee: 1500",
        "- community_id: climatelab",
    ):
        assert field in climate, field
    # Pangeo confirmed before its deal was won: no date yet, and the notice says where.
    pangeo = mails["New service confirmed: Pangeo Community"]
    assert "Service start date: not set yet. It is copied from the HubSpot deal's" in pangeo
    assert "not set\n" not in pangeo
