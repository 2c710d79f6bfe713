"""Fixtures: a fake HubSpot on 127.0.0.1, on a FakeClock shared with the connector."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.fakeserver import FakeServer
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.fake import FakeHubSpot
from syncd.clock import FakeClock

PORTAL_ID = 62515


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeHubSpot:
    return FakeHubSpot(clock=clock, portal_id=PORTAL_ID)


@pytest.fixture
def server(fake: FakeHubSpot) -> Iterator[FakeServer]:
    with fake.serve() as running:
        yield running


@pytest.fixture
def make_connector(
    fake: FakeHubSpot, server: FakeServer, clock: FakeClock
) -> Iterator[Callable[..., HubSpotConnector]]:
    made: list[HubSpotConnector] = []

    def make(**overrides: Any) -> HubSpotConnector:
        values: dict[str, Any] = {
            "access_token": fake.token, "app_secret": fake.app_secret,
            "base_url": server.url, "portal_id": PORTAL_ID, "timeout_seconds": 5,
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
