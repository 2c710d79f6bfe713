"""Polling by LAST_MODIFIED_TIME() with offset paging; fetch; query for cron for-each."""

from __future__ import annotations

import json

import pytest

from connectors.airtable import AirtableConnector
from syncd.clock import FakeClock, to_ms
from syncd.errors import PermanentError
from syncd.model import ObjectRef, Observation
from syncd_sandbox.airtable.fake import FakeAirtable


def poll_all(
    connector: AirtableConnector, alias: str, cursor: str | None, on_page: object = None
) -> tuple[list[Observation], str | None, int]:
    observations: list[Observation] = []
    pages = 0
    while True:
        page = connector.poll(alias, cursor)
        pages += 1
        observations.extend(page.observations)
        cursor = page.cursor
        if callable(on_page):
            on_page(pages)
        if not page.more:
            return observations, cursor, pages


def test_first_poll_lists_every_record_in_pages_of_100(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    ids = [fake.user_create("Leads", {"Name": f"lead {i}"}) for i in range(230)]
    observations, cursor, pages = poll_all(connector, "lead", None)
    assert pages == 3
    assert sorted(o.ref.id for o in observations) == sorted(ids)
    assert json.loads(cursor or "{}")["offset"] is None


def test_poll_with_iterator_expiry_restarts_and_loses_nothing(
    connector: AirtableConnector, fake: FakeAirtable, clock: FakeClock
) -> None:
    ids = [fake.user_create("Leads", {"Name": f"lead {i}"}) for i in range(250)]

    def expire_after_first_page(pages: int) -> None:
        if pages == 1:
            fake.expire_iterators()

    observations, _, pages = poll_all(connector, "lead", None, expire_after_first_page)

    assert set(o.ref.id for o in observations) == set(ids)
    # page 2 met the 422 and the listing restarted: 100 records were seen twice
    assert (pages, len(observations)) == (4, 350)
    listings = [
        r
        for r in fake.app.log
        if r.method == "GET"
        and "/Leads" not in r.path
        and r.path.startswith(f"/v0/{fake.base_id}/")
    ]
    assert [bool(r.query.get("offset")) for r in listings] == [False, True, False, True, True]


def test_iterator_expiry_by_age_on_the_fake_clock_also_restarts(
    connector: AirtableConnector, fake: FakeAirtable, clock: FakeClock
) -> None:
    ids = [fake.user_create("Leads", {"Name": f"lead {i}"}) for i in range(150)]
    first = connector.poll("lead", None)
    clock.advance(minutes=10)  # the offset is older than the fake's iterator lifetime
    second = connector.poll("lead", first.cursor)
    rest, _, _ = poll_all(connector, "lead", second.cursor) if second.more else ([], None, 0)
    seen = {o.ref.id for o in first.observations + second.observations + rest}
    assert seen == set(ids)


def test_next_poll_returns_only_what_changed_since(
    connector: AirtableConnector, fake: FakeAirtable, clock: FakeClock
) -> None:
    ids = [fake.user_create("Leads", {"Name": f"lead {i}"}) for i in range(5)]
    clock.advance(minutes=2)  # older than the poll overlap (60 s)
    _, cursor, _ = poll_all(connector, "lead", None)
    clock.advance(minutes=5)
    fake.user_update("Leads", ids[3], {"Status": "Needs Admin"})

    observations, cursor, _ = poll_all(connector, "lead", cursor)

    assert [(o.ref.id, o.fields.get("Status")) for o in observations] == [(ids[3], "Needs Admin")]
    assert observations[0].version == to_ms(clock.now())
    # within the overlap the change may be listed once more, then never again
    clock.advance(minutes=5)
    again, cursor, _ = poll_all(connector, "lead", cursor)
    assert {o.ref.id for o in again} <= {ids[3]}
    clock.advance(minutes=5)
    assert poll_all(connector, "lead", cursor)[0] == []


def test_change_during_a_listing_is_seen_by_the_next_poll(
    connector: AirtableConnector, fake: FakeAirtable, clock: FakeClock
) -> None:
    ids = [fake.user_create("Leads", {"Name": f"lead {i}"}) for i in range(150)]
    first = connector.poll("lead", None)
    clock.advance(seconds=1)
    fake.user_update("Leads", ids[0], {"Status": "Waiting"})  # already listed on page 1
    _, cursor, _ = poll_all(connector, "lead", first.cursor)
    clock.advance(minutes=5)
    observations, _, _ = poll_all(connector, "lead", cursor)
    assert ids[0] in {o.ref.id for o in observations}


def test_fetch_gives_fields_by_name_and_the_last_modified_time_as_version(
    connector: AirtableConnector, fake: FakeAirtable, clock: FakeClock
) -> None:
    created_at = to_ms(clock.now())
    record_id = fake.user_create("Leads", {"Name": "Ocean", "Seats": 1200})
    observation = connector.fetch(ObjectRef("airtable", "lead", record_id))
    assert observation is not None
    assert observation.fields == {"Name": "Ocean", "Seats": 1200}
    assert observation.version == created_at
    clock.advance(seconds=30)
    fake.user_update("Leads", record_id, {"Seats": 900})
    later = connector.fetch(ObjectRef("airtable", "lead", record_id))
    assert later is not None and later.version == created_at + 30_000
    assert connector.fetch(ObjectRef("airtable", "lead", "rec99999999999999")) is None


def test_table_without_last_modified_field_has_no_version_and_check_says_so(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    record_id = fake.user_create("Active Hubs", {"Community": "Ocean"})
    observation = connector.fetch(ObjectRef("airtable", "hub", record_id))
    assert observation is not None and observation.version is None
    problems = connector.check_tables()
    assert len(problems) == 1 and "Active Hubs" in problems[0]


def test_query_where_and_formula(connector: AirtableConnector, fake: FakeAirtable) -> None:
    active = [
        fake.user_create(
            "Active Hubs", {"Community": c, "Status": "Active Service", "Monthly fee": fee}
        )
        for c, fee in (("Ocean", 1000), ("O'Brien Lab", 2500))
    ]
    fake.user_create("Active Hubs", {"Community": "Old", "Status": "Inactive Service"})

    found = list(connector.query("hub", {"where": {"Status": "Active Service"}}))
    assert sorted(o.ref.id for o in found) == sorted(active)
    assert [
        o.fields["Community"]
        for o in connector.query("hub", {"where": {"Community": "O'Brien Lab"}})
    ] == ["O'Brien Lab"]
    both = list(
        connector.query(
            "hub", {"formula": "{Monthly fee}>1500", "where": {"Status": "Active Service"}}
        )
    )
    assert [o.fields["Community"] for o in both] == ["O'Brien Lab"]
    with pytest.raises(PermanentError):
        list(connector.query("hub", {"sql": "select"}))


def test_query_pages_through_expiring_offsets_without_duplicates(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    ids = [
        fake.user_create("Active Hubs", {"Community": f"c{i}", "Status": "Active Service"})
        for i in range(210)
    ]
    seen = []
    for observation in connector.query("hub", {"where": {"Status": "Active Service"}}):
        seen.append(observation.ref.id)
        if len(seen) == 100:
            fake.expire_iterators()
    assert sorted(seen) == sorted(ids)


def test_unknown_alias_is_permanent(connector: AirtableConnector) -> None:
    with pytest.raises(PermanentError):
        connector.poll("deal", None)
