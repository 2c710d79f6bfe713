"""Header injection and bad addresses are refused before anything reaches the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.email import EmailSettings
from syncd.errors import PermanentError
from syncd_sandbox.email.fake import FakeSmtpServer

Send = Callable[..., Any]
CSV = {"filename": "report.csv", "content": "a,b\n", "content_type": "text/csv"}


@pytest.mark.parametrize(
    "params",
    [
        {"subject": "Hello\r\nBcc: victim@evil.example"},
        {"subject": "Hello\nX-Injected: yes"},
        {"subject": "Hello\u2028Bcc: victim@evil.example"},
        {"to": ["ops@example.org\r\nBcc: victim@evil.example"]},
        {"to": "ops@example.org\nBcc: victim@evil.example"},
        {"cc": ["Ops\r\n <ops@example.org>"]},
        {"bcc": ["a@example.org\n"]},
        {"reply_to": "help@example.org\r\nX-Injected: yes"},
        {"attachments": [{**CSV, "filename": "report.csv\r\nX-Injected: yes"}]},
        {"attachments": [{**CSV, "filename": "report\n.csv"}]},
        {"attachments": [{**CSV, "content_type": "text/csv\r\nX-Injected: yes"}]},
    ],
    ids=lambda p: next(iter(p)),
)
def test_line_breaks_in_header_values_are_refused_and_nothing_is_sent(
    smtp: FakeSmtpServer, send: Send, params: dict[str, Any]
) -> None:
    with pytest.raises(PermanentError, match="line break"):
        send(**params)
    assert smtp.messages == []


@pytest.mark.parametrize(
    "params",
    [
        {"to": ["not an address"]},
        {"to": ["ops@"]},
        {"to": ["Doe, John <john@example.org>"]},  # unquoted comma: two guesses, refused
        {"to": []},
        {"cc": ["@example.org"]},
        {"reply_to": "help at example.org"},
        {"to": ["team: a@example.org;"]},
        {"attachments": [{**CSV, "content_type": "csv"}]},
    ],
    ids=repr,
)
def test_invalid_addresses_and_types_are_refused_and_nothing_is_sent(
    smtp: FakeSmtpServer, send: Send, params: dict[str, Any]
) -> None:
    with pytest.raises(PermanentError):
        send(**params)
    assert smtp.messages == []


def test_a_quoted_display_name_with_a_comma_is_fine(smtp: FakeSmtpServer, send: Send) -> None:
    send(to=['"Doe, John" <john@example.org>'])
    assert smtp.messages[0].rcpt_tos == ("john@example.org",)


@pytest.mark.parametrize(
    "overrides",
    [
        {"from_address": "syncd@example.org\r\nBcc: victim@evil.example"},
        {"from_address": "not an address"},
        {"default_reply_to": "a@example.org, b@example.org"},
        {"message_id_domain": "example.org\r\nX-Injected: yes"},
        {"password": "secret"},  # without a username
        # a password in clear to a remote host
        {"host": "smtp.example.org", "username": "u", "password": "p", "security": "plain"},
    ],
    ids=repr,
)
def test_bad_settings_are_a_config_error(overrides: dict[str, Any]) -> None:
    values = {"from_address": "syncd@example.org", **overrides}
    with pytest.raises(ValidationError):
        EmailSettings(**values)
