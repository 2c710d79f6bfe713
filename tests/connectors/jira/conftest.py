"""Fixtures: a fake Jira Cloud on 127.0.0.1 and the connector (real python-jira) pointed at it.

The fake and the connector share one FakeClock, so issue timestamps, poll windows and rate
limit waits are all deterministic and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.jira import JiraConnector, JiraSettings
from syncd.clock import FakeClock
from syncd.errors import TransientError
from syncd.model import ActionContext, ActionResult
from syncd_sandbox.fakeserver import FakeServer
from syncd_sandbox.jira.fake import FakeJira

EMAIL = "syncd@example.org"
TOKEN = "jira-api-token-not-real"
SECRET = "jira-webhook-secret"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_jira(clock: FakeClock) -> FakeJira:
    return FakeJira(clock=clock, email=EMAIL, api_token=TOKEN)


@pytest.fixture
def server(fake_jira: FakeJira) -> Iterator[FakeServer]:
    with FakeServer(fake_jira.app) as server:
        yield server


@pytest.fixture
def make_connector(server: FakeServer, clock: FakeClock) -> Iterator[Callable[..., JiraConnector]]:
    made: list[JiraConnector] = []

    def make(**overrides: Any) -> JiraConnector:
        values: dict[str, Any] = {
            "base_url": server.url,
            "email": EMAIL,
            "api_token": SecretStr(TOKEN),
            "projects": ["OPS", "CLI"],
            "timeout_seconds": 5.0,
            "rate_limit_per_second": 1000,
            **overrides,
        }
        connector = JiraConnector(JiraSettings(**values), clock=clock)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def connector(make_connector: Callable[..., JiraConnector]) -> JiraConnector:
    return make_connector()


def run_like_executor(
    connector: JiraConnector,
    action: str,
    params: dict[str, Any],
    key: str,
    max_attempts: int = 5,
) -> tuple[ActionResult, list[Exception]]:
    """What syncd's executor does: from the second attempt on, look for an earlier effect
    before performing again. Returns the result and the errors met on the way."""
    spec = connector.actions[action]
    parsed = spec.params.model_validate(params)
    errors: list[Exception] = []
    for attempt in range(1, max_attempts + 1):
        ctx = ActionContext(key=key, rule_id="test-rule", attempt=attempt)
        if attempt > 1 and spec.find_existing is not None:
            found = spec.find_existing(connector, parsed, ctx)
            if found is not None:
                return found, errors
        try:
            return spec.perform(connector, parsed, ctx), errors
        except TransientError as exc:
            errors.append(exc)
    raise AssertionError(f"gave up after {max_attempts} attempts: {errors}")


def requests_to(fake: FakeJira, method: str, path: str) -> int:
    return sum(1 for r in fake.app.log if r.method == method and r.path == path)


def perform(
    connector: JiraConnector, action: str, params: dict[str, Any], key: str
) -> ActionResult:
    """One attempt of `action`, with params checked by its model as a mapping file's are."""
    spec = connector.actions[action]
    ctx = ActionContext(key=key, rule_id="test-rule", attempt=1)
    return spec.perform(connector, spec.params.model_validate(params), ctx)


def find(
    connector: JiraConnector, action: str, params: dict[str, Any], key: str
) -> ActionResult | None:
    spec = connector.actions[action]
    assert spec.find_existing is not None
    ctx = ActionContext(key=key, rule_id="test-rule", attempt=2)
    return spec.find_existing(connector, spec.params.model_validate(params), ctx)
