"""fetch and poll against the fake HubSpot, through the real hubspot-api-client over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.hubspot.deals import HISTORY_BATCH
from syncd.mapping.loader import load_rules
from syncd.model import ObjectRef
from syncd.sdk import WHOLE_OBJECT


def deal_ref(deal_id: str) -> ObjectRef:
    return ObjectRef("hubspot", "deal", deal_id)


def search_calls(fake) -> int:
    return sum(1 for r in fake.app.log if r.path.endswith("/search"))


def test_history_gives_every_transition_between_two_fetches_in_order(fake, connector):
    deal = fake.create_deal(dealname="Ocean hub", dealstage="lead")
    before = connector.fetch(deal_ref(deal))
    fake.move_deal(deal, "qualified", "proposal", "closedwon")
    after = connector.fetch(deal_ref(deal))

    newer = [(ms, stage) for ms, stage in after.history["dealstage"] if ms > before.version]
    assert [stage for _, stage in newer] == ["qualified", "proposal", "closedwon"]
    assert [ms for ms, _ in newer] == sorted(ms for ms, _ in newer)
    assert after.fields["dealstage"] == "closedwon"
    assert after.version == newer[-1][0] > before.version


def test_fetch_carries_community_facts_and_context(fake, connector):
    owner = fake.portal.add_owner("Ada", "Lovelace", "ada@example.org")
    deal = fake.create_deal(
        dealname="Ocean hub",
        community_short_name="Ocean",
        community_long_name="Ocean Observatories",
        community_id="ocean",
        github_org="ocean-org",
        cloud_provider="gcp",
        cloud_region="us-central1",
        membership_level="Standard",
        end_date="2026-12-31",
        num_users=1200,
        hubspot_owner_id=owner,
        dealstage="contractadmin",
    )
    fake.add_company(deal, name="Ocean University", domain="ocean.example.org")
    fake.add_company(deal, primary=False, name="Fiscal Sponsor")
    fake.add_contact(deal, "Buyer", firstname="Grace", lastname="Hopper", email="g@example.org")
    fake.add_contact(
        deal, "Technical Contact", firstname="Alan", lastname="Turing", email="a@example.org"
    )

    obs = connector.fetch(deal_ref(deal))

    assert obs.fields["community_id"] == "ocean"
    assert obs.fields["num_users"] == "1200"  # strings, as HubSpot returns them
    assert obs.fields["pipeline"] == "default"
    assert "hs_lastmodifieddate" not in obs.fields
    assert obs.context["stage_label"] == "Contract Admin"
    assert obs.context["company"]["name"] == "Ocean University"
    roles = {c["email"]: c["role"] for c in obs.context["contacts"]}
    assert roles == {"g@example.org": "Buyer", "a@example.org": "Technical Contact"}
    assert obs.context["owner"] == {"id": owner, "name": "Ada Lovelace", "email": "ada@example.org"}
    assert obs.context["url"] == f"https://app.hubspot.com/contacts/62515/record/0-3/{deal}"


def test_a_batch_of_several_reads_gives_each_deal_its_own_context(fake, connector):
    # More deals than one deal batch read takes: the answers of the deal reads and of the
    # association reads (plain JSON) are matched to their deals, whatever order they arrive in.
    deals = []
    for i in range(HISTORY_BATCH + 3):
        deal = fake.create_deal(dealname=f"Deal {i}", dealstage="closedwon")
        if i % 2:
            fake.add_company(deal, primary=False, name=f"Sponsor {i}")
        fake.add_company(deal, name=f"Company {i}")
        fake.add_contact(deal, "Buyer", firstname=f"Ada{i}", email=f"a{i}@example.org")
        fake.add_contact(deal, None, firstname=f"Bob{i}")
        deals.append(deal)
    gone = deals[7]
    fake.portal.archive("deals", gone)

    found = connector.fetch_many([deal_ref(d) for d in deals])

    assert set(found) == {deal_ref(d) for d in deals if d != gone}
    for i, deal in enumerate(deals):
        if deal == gone:
            continue
        obs = found[deal_ref(deal)]
        assert obs.fields["dealname"] == f"Deal {i}"
        assert obs.context["company"]["name"] == f"Company {i}"
        primary_first = [True, False] if i % 2 else [True]
        assert [c["primary"] for c in obs.context["companies"]] == primary_first
        by_name = {c["firstname"]: c for c in obs.context["contacts"]}
        assert by_name[f"Ada{i}"]["roles"] == ["Buyer"]
        assert by_name[f"Ada{i}"]["email"] == f"a{i}@example.org"
        assert by_name[f"Bob{i}"]["role"] is None


def test_fetch_of_a_deleted_deal_is_none(fake, connector):
    deal = fake.create_deal(dealname="Gone")
    fake.portal.archive("deals", deal)
    assert connector.fetch(deal_ref(deal)) is None


def poll_all(connector, cursor=None, max_pages=200):
    seen, pages = [], 0
    while True:
        page = connector.poll("deal", cursor)
        pages += 1
        assert pages <= max_pages, "poll loop does not end"
        seen.extend(page.observations)
        cursor = page.cursor
        if not page.more:
            return seen, cursor


def test_poll_past_the_search_cap_loses_no_deal(fake, make_connector, clock):
    fake.search_cap = 50
    ids = set()
    for i in range(300):
        ids.add(fake.create_deal(dealname=f"deal {i}"))
        clock.advance(0.5 if i % 3 else 0)  # some deals share a millisecond
    connector = make_connector(search_page_size=20, search_result_cap=50, poll_context=False)

    seen, _ = poll_all(connector)

    assert {o.ref.id for o in seen} == ids
    assert [a for a in fake.answers if a[2] != 200] == []  # never asked past the cap
    first_sightings = {}
    for obs in seen:
        first_sightings.setdefault(obs.ref.id, obs)
    assert all(o.history["dealstage"] == [(o.version, "lead")] for o in first_sightings.values())


def test_poll_does_not_loop_on_more_same_millisecond_deals_than_a_page(fake, make_connector):
    fake.search_cap = 50
    ids = {fake.create_deal(dealname=f"same ms {i}") for i in range(130)}  # clock not moved
    connector = make_connector(search_page_size=20, search_result_cap=50, poll_context=False)

    seen, cursor = poll_all(connector)

    assert {o.ref.id for o in seen} == ids
    later = fake.create_deal(dealname="after the tie")
    more, _ = poll_all(connector, cursor)
    assert [o.ref.id for o in more] == [later]


def test_poll_sees_changes_after_the_cursor_and_an_idle_cycle_is_one_request(
    fake, connector, clock
):
    first = fake.create_deal(dealname="one")
    seen, cursor = poll_all(connector)
    assert [o.ref.id for o in seen] == [first]

    requests_before = len(fake.app.log)
    idle = connector.poll("deal", cursor)
    assert len(fake.app.log) - requests_before == 1
    assert idle.more is False
    assert all(o.ref.id == first for o in idle.observations)  # the boundary, same version

    clock.advance(5)
    fake.move_deal(first, "qualified", "proposal")
    changed, _ = poll_all(connector, idle.cursor)
    latest = changed[-1]
    assert latest.ref.id == first
    assert [s for _, s in latest.history["dealstage"]] == ["lead", "qualified", "proposal"]
    assert latest.context["stage_label"] == "Proposal"


def test_backfill_reads_every_deal_and_resumes_from_a_cursor(fake, make_connector, clock):
    ids = []
    for i in range(45):
        ids.append(fake.create_deal(dealname=f"d{i}"))
        clock.advance(1)
    connector = make_connector(search_page_size=10, poll_context=False)
    pages = []
    backfill = connector.backfill(None, on_page=pages.append)
    first_two = [next(backfill), next(backfill)]
    assert pages == first_two

    resumed = list(
        make_connector(search_page_size=10, poll_context=False).backfill(
            None, cursor=first_two[-1].cursor
        )
    )
    seen = {o.ref.id for p in first_two + resumed for o in p.observations}
    assert seen == set(ids)


def _reads(fake) -> list[str]:
    """The requests made, but the stage catalog's (read once, kept)."""
    return [r.path for r in fake.app.log if not r.path.startswith("/crm/v3/pipelines")]


def _deal_with_links(fake) -> str:
    owner = fake.portal.add_owner("Ada", "Lovelace", "ada@example.org")
    deal = fake.create_deal(dealname="Ocean hub", dealstage="closedwon", hubspot_owner_id=owner)
    fake.add_company(deal, name="Ocean University")
    fake.add_contact(deal, "Buyer", firstname="Grace", email="g@example.org")
    return deal


def test_rules_that_read_no_company_contact_or_owner_cost_one_read_a_deal(fake, connector):
    deal = _deal_with_links(fake)
    connector.use_fields({"deal": {"dealname", "dealstage"}})
    fake.app.log.clear()

    one = connector.fetch(deal_ref(deal))
    (many,) = connector.fetch_many([deal_ref(deal)]).values()

    # one deal read each, no association, company, contact or owner read
    assert _reads(fake) == [f"/crm/v3/objects/deals/{deal}", "/crm/v3/objects/deals/batch/read"]
    for obs in (one, many):
        assert obs.fields["dealname"] == "Ocean hub"
        assert obs.context["stage_label"] == "Closed Won"  # costs no request: kept
        assert "company" not in obs.context and "owner" not in obs.context


@pytest.mark.parametrize(
    "read", [{"company"}, {"contacts"}, {"owner"}, {"companies"}, {WHOLE_OBJECT}]
)
def test_rules_that_read_the_links_or_a_whole_deal_get_them(fake, connector, read):
    deal = _deal_with_links(fake)
    connector.use_fields({"deal": {"dealname", *read}})

    one = connector.fetch(deal_ref(deal))
    (many,) = connector.fetch_many([deal_ref(deal)]).values()

    for obs in (one, many):
        assert obs.context["company"]["name"] == "Ocean University"
        assert [c["email"] for c in obs.context["contacts"]] == ["g@example.org"]
        assert obs.context["owner"]["name"] == "Ada Lovelace"
    assert "*" not in connector.settings.properties()  # no property of that name asked for


def test_a_reload_that_starts_reading_the_company_reads_it(fake, connector):
    deal = _deal_with_links(fake)
    connector.use_fields({"deal": {"dealname"}})
    assert "company" not in connector.fetch(deal_ref(deal)).context
    connector.use_fields({"deal": {"dealname", "company"}})
    assert connector.fetch(deal_ref(deal)).context["company"]["name"] == "Ocean University"


COMPANY_RULE = """
rules:
  - id: won-for
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - hubspot.add_note: {deal_id: "{{ deal.id }}", body: "Won for {{ deal.company.name }}"}
"""


def test_check_leaves_the_connector_reading_the_company_its_rules_read(
    fake, connector, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(COMPANY_RULE)
    assert connector.check_mapping(load_rules([tmp_path])) == []  # it sets the fields read
    deal = _deal_with_links(fake)
    assert connector.fetch(deal_ref(deal)).context["company"]["name"] == "Ocean University"
