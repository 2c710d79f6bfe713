"""Fixtures for the email connector: a real SMTP server (aiosmtpd) on 127.0.0.1 per test (the
sandbox's `fake_smtp`, or one with auth)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.email import EmailConnector, EmailSettings, SendParams
from syncd.clock import FakeClock
from syncd.model import ActionContext, ActionResult
from syncd_sandbox.email.fake import FakeSmtpServer

PASSWORD = "correct-horse-battery-staple"

Send = Callable[..., ActionResult]  # send(key=..., attempt=..., **params)


@pytest.fixture
def smtp(fake_smtp: FakeSmtpServer) -> FakeSmtpServer:
    return fake_smtp


@pytest.fixture
def smtp_auth() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer(username="syncd-bot", password=PASSWORD) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _sender(connector: EmailConnector) -> Send:
    """Perform `email.send` the way the executor does: through the action spec."""

    def send(key: str = "rule-1:deal-7:1", attempt: int = 1, **params: Any) -> ActionResult:
        params.setdefault("to", ["ops@example.org"])
        params.setdefault("subject", "Hello")
        params.setdefault("body", "Hi there.\n")
        spec = connector.actions["send"]
        ctx = ActionContext(key=key, rule_id="rule-1", attempt=attempt)
        return spec.perform(connector, SendParams(**params), ctx)

    return send


@pytest.fixture
def make_send(clock: FakeClock) -> Callable[[EmailSettings], Send]:
    """`make_send(settings)`: a send function for a connector with these settings."""
    return lambda settings: _sender(EmailConnector(settings, clock))


@pytest.fixture
def send(smtp: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]) -> Send:
    return make_send(smtp.settings())
