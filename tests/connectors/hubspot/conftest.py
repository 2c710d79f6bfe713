"""Fixtures: a fake HubSpot on 127.0.0.1 (the sandbox's `fake_hubspot`), on a FakeClock shared
with the connector."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from syncd.clock import FakeClock
from syncd_sandbox.hubspot.fake import FakeHubSpot
from syncd_sandbox.pytest_plugin import Served

PORTAL_ID = 62515


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


@pytest.fixture
def fake(fake_hubspot: Served[FakeHubSpot]) -> FakeHubSpot:
    return fake_hubspot.fake  # on its default portal, PORTAL_ID


@pytest.fixture
def server(fake_hubspot: Served[FakeHubSpot]) -> Served[FakeHubSpot]:
    return fake_hubspot


@pytest.fixture
def make_connector(
    fake: FakeHubSpot, server: Served[FakeHubSpot], clock: FakeClock
) -> Iterator[Callable[..., HubSpotConnector]]:
    made: list[HubSpotConnector] = []

    def make(**overrides: Any) -> HubSpotConnector:
        values: dict[str, Any] = {
            "access_token": fake.token,
            "app_secret": fake.app_secret,
            "base_url": server.url,
            "portal_id": PORTAL_ID,
            "timeout_seconds": 5,
            **overrides,
        }
        connector = HubSpotConnector(HubSpotSettings(**values), clock)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def connector(make_connector: Callable[..., HubSpotConnector]) -> HubSpotConnector:
    return make_connector()
