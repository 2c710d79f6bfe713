"""Fixtures: a fake Airtable base on 127.0.0.1 and a connector talking to it with pyairtable,
both on one FakeClock (nothing sleeps)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.airtable import AirtableConnector, AirtableSettings
from connectors.airtable.fake import FakeAirtable
from connectors.fakeserver import FakeServer
from syncd.clock import FakeClock

TOKEN = "patTestToken.secret-value-0001"
BASE = "appTestBase000001"
LEAD_FIELDS = {
    "Name": "singleLineText",
    "Status": "singleSelect",
    "Email": "email",
    "Seats": "number",
    "Last Modified": "lastModifiedTime",
}
HUB_FIELDS = {"Community": "singleLineText", "Status": "singleSelect", "Monthly fee": "number"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeAirtable:
    airtable = FakeAirtable(token=TOKEN, base_id=BASE, clock=clock)
    airtable.create_table("Leads", LEAD_FIELDS)
    airtable.create_table("Active Hubs", HUB_FIELDS)
    return airtable


@pytest.fixture
def server(fake: FakeAirtable) -> Iterator[FakeServer]:
    with FakeServer(fake.app) as running:
        yield running


@pytest.fixture
def settings(server: FakeServer) -> AirtableSettings:
    return AirtableSettings(
        token=TOKEN,
        base_id=BASE,
        tables={"lead": "Leads", "hub": "Active Hubs"},
        base_url=server.url,
        timeout_seconds=5,
    )


@pytest.fixture
def connector(settings: AirtableSettings, clock: FakeClock) -> Iterator[AirtableConnector]:
    made = AirtableConnector(settings, clock=clock)
    yield made
    made.close()
