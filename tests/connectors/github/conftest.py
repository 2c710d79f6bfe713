"""Fixtures: a fake GitHub on 127.0.0.1 (the sandbox's `fake_github`, which also fails a test
that sent a request the OpenAPI description refuses) and a connector pointed at it, sharing a
FakeClock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.github import GitHubConnector, GitHubSettings
from syncd.clock import FakeClock
from syncd.model import ActionContext
from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.pytest_plugin import Served

TOKEN = "ghp_test-token-not-real"
REPO = "acme/infrastructure"
WEBHOOK_SECRET = "It's a Secret to Everybody"


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


@pytest.fixture
def fake(fake_github: Served[FakeGitHub]) -> FakeGitHub:
    assert (fake_github.fake.token, fake_github.fake.login) == (TOKEN, "syncd-bot")
    fake_github.fake.add_repo(REPO)
    return fake_github.fake


@pytest.fixture
def make_connector(fake: FakeGitHub, clock: FakeClock) -> Iterator[Callable[..., GitHubConnector]]:
    made: list[GitHubConnector] = []

    def make(**overrides: Any) -> GitHubConnector:
        settings = GitHubSettings(
            **{
                "token": TOKEN,
                "base_url": fake.base_url,
                "repositories": [REPO],
                "webhook_secret": WEBHOOK_SECRET,
                "timeout_seconds": 5,
                **overrides,
            }
        )
        connector = GitHubConnector(settings, clock=clock)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def connector(make_connector: Callable[..., GitHubConnector]) -> GitHubConnector:
    return make_connector()


def ctx(key: str, attempt: int = 1) -> ActionContext:
    return ActionContext(key=key, rule_id="test-rule", attempt=attempt)


@pytest.fixture
def gh() -> SimpleNamespace:
    """The constants and helpers tests share (conftest is not importable in importlib mode)."""
    return SimpleNamespace(repo=REPO, token=TOKEN, secret=WEBHOOK_SECRET, ctx=ctx)
