"""SMTP failures sorted into Transient / Permanent / Uncertain, and the at-most-once rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.email import AT_MOST_ONCE_REFUSAL, EmailSettings
from syncd.errors import PermanentError, TransientError, UncertainError
from syncd_sandbox.email.fake import FakeSmtpServer

Send = Callable[..., Any]


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_451_is_transient_and_nothing_is_delivered(
    smtp: FakeSmtpServer, send: Send, stage: str
) -> None:
    smtp.fail_next("transient", at=stage)  # type: ignore[arg-type]
    with pytest.raises(TransientError, match="451") as raised:
        send()
    assert not isinstance(raised.value, UncertainError)
    assert smtp.messages == []
    send()  # the retry goes through
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_550_is_permanent(smtp: FakeSmtpServer, send: Send, stage: str) -> None:
    smtp.fail_next("permanent", at=stage)  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match="550"):
        send()
    assert smtp.messages == []


def test_one_refused_recipient_stops_the_whole_send(smtp: FakeSmtpServer, send: Send) -> None:
    # First RCPT accepted, second refused: sending to the first alone would make a retry
    # mail it twice.
    smtp.fail_next("permanent", at="rcpt", skip=1)
    with pytest.raises(PermanentError, match=r"recipient b@example\.org refused: 550"):
        send(to=["a@example.org", "b@example.org"])
    assert smtp.messages == []


def test_server_down_is_transient(smtp: FakeSmtpServer, send: Send) -> None:
    smtp.go_down()
    with pytest.raises(TransientError, match="connect") as raised:
        send()
    assert not isinstance(raised.value, UncertainError)
    smtp.come_back()
    send()
    assert len(smtp.messages) == 1


def test_answer_lost_after_data_is_uncertain_and_a_retry_keeps_the_message_id(
    smtp: FakeSmtpServer, send: Send
) -> None:
    smtp.fail_next("drop")
    with pytest.raises(UncertainError, match="may have been delivered"):
        send(key="w3:deal-9:1", attempt=1)
    retry = send(key="w3:deal-9:1", attempt=2)
    # at-least-once: the recipient may get two copies, recognisably the same mail.
    first, second = smtp.messages
    assert first.message["Message-ID"] == second.message["Message-ID"] == retry.external_id


def test_answer_lost_after_data_is_permanent_for_at_most_once(
    smtp: FakeSmtpServer, send: Send
) -> None:
    smtp.fail_next("drop")
    with pytest.raises(PermanentError) as raised:
        send(guarantee="at_most_once")
    assert str(raised.value).startswith(AT_MOST_ONCE_REFUSAL)
    assert not isinstance(raised.value, TransientError)
    assert len(smtp.messages) == 1  # it did arrive: exactly why it must not be repeated


def test_at_most_once_can_be_the_settings_default_and_a_rule_can_override_it(
    smtp: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    send = make_send(smtp.settings(guarantee="at_most_once"))
    smtp.fail_next("drop")
    with pytest.raises(PermanentError, match="at-most-once"):
        send()
    smtp.fail_next("drop")
    with pytest.raises(UncertainError):
        send(guarantee="at_least_once")


def test_at_most_once_still_retries_failures_before_data(smtp: FakeSmtpServer, send: Send) -> None:
    smtp.fail_next("transient", at="rcpt")
    with pytest.raises(TransientError) as raised:
        send(guarantee="at_most_once")
    assert not isinstance(raised.value, UncertainError | PermanentError)


def test_connection_cut_before_data_is_transient_not_uncertain(
    smtp: FakeSmtpServer, send: Send
) -> None:
    smtp.fail_next("drop", at="rcpt")
    with pytest.raises(TransientError) as raised:
        send(guarantee="at_most_once")
    assert not isinstance(raised.value, UncertainError)
    assert smtp.messages == []


def test_no_answer_before_data_times_out_as_transient(
    smtp: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    send = make_send(smtp.settings(timeout_seconds=0.2))
    smtp.fail_next("hang", at="rcpt")
    with pytest.raises(TransientError, match="envelope") as raised:
        send()
    assert not isinstance(raised.value, UncertainError)
    assert smtp.messages == []


def test_no_answer_after_data_times_out_as_uncertain(
    smtp: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    send = make_send(smtp.settings(timeout_seconds=0.2))
    smtp.fail_next("hang")
    with pytest.raises(UncertainError, match="may have been delivered"):
        send()
    assert len(smtp.messages) == 1
