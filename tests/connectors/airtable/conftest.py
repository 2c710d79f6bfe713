"""Fixtures: a fake Airtable base on 127.0.0.1 (the sandbox's `fake_airtable`) and a connector
talking to it with pyairtable, both on one FakeClock (nothing sleeps)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.airtable import AirtableConnector, AirtableSettings
from syncd.clock import FakeClock
from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.pytest_plugin import Served

LEAD_FIELDS = {
    "Name": "singleLineText",
    "Status": "singleSelect",
    "Email": "email",
    "Seats": "number",
    "Last Modified": "lastModifiedTime",
}
HUB_FIELDS = {"Community": "singleLineText", "Status": "singleSelect", "Monthly fee": "number"}


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


@pytest.fixture
def fake(fake_airtable: Served[FakeAirtable]) -> FakeAirtable:
    airtable = fake_airtable.fake
    airtable.create_table("Leads", LEAD_FIELDS)
    airtable.create_table("Active Hubs", HUB_FIELDS)
    return airtable


@pytest.fixture
def server(fake_airtable: Served[FakeAirtable]) -> Served[FakeAirtable]:
    return fake_airtable  # .url: where the fake answers


@pytest.fixture
def settings(fake: FakeAirtable, fake_airtable: Served[FakeAirtable]) -> AirtableSettings:
    return AirtableSettings(
        token=fake.token,
        base_id=fake.base_id,
        tables={"lead": "Leads", "hub": "Active Hubs"},
        base_url=fake_airtable.url,
        timeout_seconds=5,
    )


@pytest.fixture
def connector(settings: AirtableSettings, clock: FakeClock) -> Iterator[AirtableConnector]:
    made = AirtableConnector(settings, clock=clock)
    yield made
    made.close()
