"""`build_message` and the wire form, without a server: what the alert mailer reuses."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from connectors.email import EmailSettings, SendParams, build_message
from connectors.email.transport import envelope_recipients, envelope_sender, wire_bytes
from syncd.errors import PermanentError

SETTINGS = EmailSettings(from_address="Syncd <syncd@example.org>", security="plain")


def test_message_id_is_derived_from_the_key_and_the_sender_domain() -> None:
    key = "w6:hubspot:deal:42:2026-01-05"
    msg = build_message(SendParams(to="a@example.org", subject="s", body="b"), key, SETTINGS)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    assert msg["Message-ID"] == f"<syncd.{digest}@example.org>"


def test_date_only_when_given_and_as_given() -> None:
    params = SendParams(to="a@example.org", subject="s", body="b")
    assert build_message(params, "k", SETTINGS)["Date"] is None
    moment = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
    assert build_message(params, "k", SETTINGS, date=moment)["Date"].datetime == moment


def test_bcc_goes_to_the_envelope_and_not_on_the_wire() -> None:
    params = SendParams(
        to=["a@example.org", "b@example.org"],
        cc="b@example.org, c@example.org",  # b twice: one RCPT
        bcc="hidden@example.org",
        subject="s",
        body=".starts with a dot\n",
    )
    msg = build_message(params, "k", SETTINGS)
    assert envelope_sender(msg) == "syncd@example.org"
    assert envelope_recipients(msg) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
        "hidden@example.org",
    ]
    wire = wire_bytes(msg)
    assert b"hidden@example.org" not in wire
    assert b"\r\n..starts with a dot\r\n" in wire
    assert wire.endswith(b"\r\n.\r\n")
    assert b"\n" not in wire.replace(b"\r\n", b"")  # CRLF only
    assert msg["Bcc"] == "hidden@example.org"  # the caller's message is left as it was


def test_non_text_attachment_types_are_kept() -> None:
    params = SendParams(
        to="a@example.org",
        subject="s",
        body="b",
        attachments=[
            {"filename": "d.json", "content": '{"a": 1}', "content_type": "application/json"}
        ],
    )
    [part] = list(build_message(params, "k", SETTINGS).iter_attachments())
    assert part.get_content_type() == "application/json"
    assert part.get_content() == b'{"a": 1}'


def test_an_empty_recipient_list_is_refused() -> None:
    with pytest.raises(PermanentError, match="at least one recipient"):
        build_message(SendParams(to=[], bcc="x@example.org", subject="s", body="b"), "k", SETTINGS)
