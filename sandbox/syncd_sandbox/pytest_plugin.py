"""pytest plugin (entry point `pytest11`): the local fakes as fixtures, each on 127.0.0.1,
started for one test and stopped after it.

    def test_something(fake_hubspot):
        connector = HubSpotConnector(HubSpotSettings(base_url=fake_hubspot.url, ...), ...)
        fake_hubspot.fake.user_update(...)

The HTTP fakes (`fake_hubspot`, `fake_github`, `fake_jira`, `fake_airtable`) come as `Served`:
the fake, its URL, and the FakeClock it runs on (`fake_clock`; override that fixture to share
another clock). `fake_smtp` is the SMTP server itself (`.settings()` points a client at it).
Fakes are imported inside the fixtures, so a test run that uses none pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import pytest

from syncd.clock import FakeClock

if TYPE_CHECKING:
    from syncd_sandbox.airtable.fake import FakeAirtable
    from syncd_sandbox.email.fake import FakeSmtpServer
    from syncd_sandbox.github.fake import FakeGitHub
    from syncd_sandbox.hubspot.fake import FakeHubSpot
    from syncd_sandbox.jira.fake import FakeJira

F = TypeVar("F")


@dataclass(frozen=True)
class Served(Generic[F]):
    """A running fake: the object to drive and inspect, and where its API answers."""

    fake: F
    url: str
    clock: FakeClock


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_hubspot(fake_clock: FakeClock) -> Iterator[Served[FakeHubSpot]]:
    from syncd_sandbox.hubspot.fake import FakeHubSpot

    hubspot = FakeHubSpot(clock=fake_clock)
    with hubspot.serve() as server:
        yield Served(hubspot, server.url, fake_clock)


@pytest.fixture
def fake_github(fake_clock: FakeClock) -> Iterator[Served[FakeGitHub]]:
    """A fake GitHub; a request its OpenAPI description refuses fails the test at teardown."""
    from syncd_sandbox.github.fake import FakeGitHub

    github = FakeGitHub(clock=fake_clock, token="ghp_test-token-not-real")
    with github:
        yield Served(github, github.base_url, fake_clock)
    assert github.validation_failures == []


@pytest.fixture
def fake_jira(fake_clock: FakeClock) -> Iterator[Served[FakeJira]]:
    from syncd_sandbox.fakeserver import FakeServer
    from syncd_sandbox.jira.fake import FakeJira

    jira = FakeJira(clock=fake_clock)
    with FakeServer(jira.app) as server:
        yield Served(jira, server.url, fake_clock)


@pytest.fixture
def fake_airtable(fake_clock: FakeClock) -> Iterator[Served[FakeAirtable]]:
    """A fake Airtable base with no table yet (`fake_airtable.fake.create_table(...)`)."""
    from syncd_sandbox.airtable.fake import FakeAirtable
    from syncd_sandbox.fakeserver import FakeServer

    airtable = FakeAirtable(clock=fake_clock)
    with FakeServer(airtable.app) as server:
        yield Served(airtable, server.url, fake_clock)


@pytest.fixture
def fake_smtp() -> Iterator[FakeSmtpServer]:
    """A real SMTP server (aiosmtpd) without auth or TLS, keeping what it receives."""
    from syncd_sandbox.email.fake import FakeSmtpServer

    with FakeSmtpServer() as server:
        yield server
