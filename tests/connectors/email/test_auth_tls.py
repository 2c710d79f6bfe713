"""AUTH and TLS against the real test server; the password never shows in an error."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.email import EmailConnector, EmailSettings
from syncd.errors import ActionError, PermanentError, TransientError, UncertainError
from syncd_sandbox.email.fake import FakeSmtpServer

Send = Callable[..., Any]
PASSWORD = "correct-horse-battery-staple"


def _everything_said_about(error: BaseException) -> str:
    """The message, the args and the whole printed traceback (with causes)."""
    return " ".join([str(error), repr(error.args), *traceback.format_exception(error)])


def test_login_with_username_and_password_delivers(
    smtp_auth: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    make_send(smtp_auth.settings())()
    [received] = smtp_auth.messages
    assert received.auth_user == "syncd-bot"


def test_without_login_the_server_refuses_permanently(
    smtp_auth: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    send = make_send(smtp_auth.settings(username=None, password=None))
    with pytest.raises(PermanentError, match="530"):
        send()
    assert smtp_auth.messages == []


def test_wrong_password_is_permanent_and_not_echoed(
    smtp_auth: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    wrong = "wrong-horse-" + PASSWORD
    send = make_send(smtp_auth.settings(password=wrong))
    with pytest.raises(PermanentError, match="535") as raised:
        send()
    assert wrong not in _everything_said_about(raised.value)
    assert smtp_auth.messages == []


@pytest.mark.parametrize(
    ("fault", "stage", "expected"),
    [
        ("permanent", "data", PermanentError),
        ("transient", "rcpt", TransientError),
        ("drop", "data", UncertainError),
    ],
)
def test_password_is_redacted_even_when_the_server_echoes_it(
    smtp_auth: FakeSmtpServer,
    make_send: Callable[[EmailSettings], Send],
    fault: Any,
    stage: Any,
    expected: type[ActionError],
) -> None:
    code = "550" if fault == "permanent" else "451"
    smtp_auth.fail_next(fault, at=stage, reply=f"{code} you said {PASSWORD}, did you not")
    with pytest.raises(expected) as raised:
        make_send(smtp_auth.settings())()
    said = _everything_said_about(raised.value)
    assert PASSWORD not in said
    if fault != "drop":
        assert "you said **********" in said


def test_password_does_not_print_with_the_settings(smtp_auth: FakeSmtpServer) -> None:
    settings = smtp_auth.settings()
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert EmailConnector(settings).secret_values() == [PASSWORD]


@pytest.fixture(params=["starttls", "tls"])
def smtp_tls(request: pytest.FixtureRequest) -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer(username="syncd-bot", password=PASSWORD, tls=request.param) as server:
        yield server


def test_tls_modes_verify_the_certificate_and_log_in(
    smtp_tls: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    make_send(smtp_tls.settings())(subject="over TLS")
    [received] = smtp_tls.messages
    assert received.auth_user == "syncd-bot"
    assert received.message["Subject"] == "over TLS"


def test_an_untrusted_certificate_is_permanent(
    smtp_tls: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    send = make_send(smtp_tls.settings(tls_ca_file=None))  # system CAs do not know it
    with pytest.raises(PermanentError, match="CERTIFICATE_VERIFY_FAILED") as raised:
        send()
    assert PASSWORD not in _everything_said_about(raised.value)
    assert smtp_tls.messages == []
