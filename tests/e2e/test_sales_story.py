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
    statuses = {a["status"] for a in played.story.feed.all()}
    assert statuses == {"done"}


def test_new_hub_issue_carries_every_community_fact(played: SandboxRun) -> None:
    pangeo = played.box.seeded.communities["pangeo"]
    (issue,) = [i for i in played.box.github.issues(INFRA_REPO) if "Pangeo" in i.title]
    body = issue.body or ""
    for fact in ("Pangeo Community", "| Short name | Pangeo |", "`pangeo`",
                 "https://pangeo.example", "pangeo-data", "https://pangeo.example/logo.png",
                 "gcp", "us-central1", "Partner", "1500",
                 f"https://app.hubspot.com/contacts/62515/record/0-3/{pangeo.deal_id}"):
        assert fact in body, fact
    # GitHub handles are written, but never ping anyone (a zero-width joiner after the @)
    assert "- **Buyer**: Ryan Abernathey <ryan@pangeo.example> (GitHub @\u200drabernat)" in body
    assert "- **Technical Contact**: Joe Hamman <joe@pangeo.example>" in body
    assert "- **Technical Community Lead**: **MISSING in HubSpot**" in body
    assert "MISSING" not in body.split("### People")[0]  # every community fact was given
    assert issue.labels == ["new-hub", "gcp"]
    assert issue.state == "closed" and issue.closed_by == "sgibson91"


def test_emails_reach_recipients_and_cc(played: SandboxRun) -> None:
    by_subject = {m.message["Subject"]: m for m in played.box.smtp.messages}
    needs_admin = by_subject["New service confirmed: Pangeo Community"]
    assert set(needs_admin.rcpt_tos) == {"operations@example.org", "partnerships@example.org"}
    expiring = by_subject["Agreement expiring in 60 days: Climate Lab renewal"]
    climate_end = played.box.seeded.communities["climatelab"].deal["end_date"]
    assert f"ends on {climate_end}" in expiring.message.get_content()
    invoices = by_subject["Invoices for March 2026: 4 communities"].message.get_content()
    for line in ("Ice Sheets Collaborative: managed hub fee 1200", "Neuro Hub: managed hub fee 900",
                 "Pangeo Community: managed hub fee 2000", "Climate Lab: managed hub fee 1500",
                 "Total of the fees listed: 5600 USD"):
        assert line in invoices
    assert "Old Astro Hub" not in invoices


def test_airtable_rows_and_hubspot_properties(played: SandboxRun) -> None:
    rows = {r["fields"]["community_id"]: r["fields"]
            for r in played.box.airtable.records(LEADS_TABLE)}
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
