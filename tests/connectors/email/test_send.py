"""`email.send` against a real SMTP server: what arrives, and under which Message-ID."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from connectors.email import EmailConnector, EmailSettings
from syncd.clock import FakeClock
from syncd.connector import load_class
from syncd_sandbox.email.fake import FakeSmtpServer

Send = Callable[..., Any]


def _csv_report() -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # CRLF line ends, as real CSV exports have
    writer.writerows([["community", "fee"], ["Hub Ü", "1,200"], ["Lab", "900"]])
    return out.getvalue()


def test_full_message_arrives_with_headers_parts_attachment_and_envelope(
    smtp: FakeSmtpServer, send: Send, clock: FakeClock
) -> None:
    report = _csv_report()
    result = send(
        to=["Ops Team <ops@example.org>", "lead@example.org"],
        cc="partners@example.org",
        bcc=["audit@example.org"],
        reply_to="Delivery <delivery@example.org>",
        subject="Agreement expiring in 60 days: Hub Ü",
        body="The agreement ends on 2026-03-06.\n",
        html="<p>The agreement ends on <b>2026-03-06</b>.</p>",
        attachments=[{"filename": "active.csv", "content": report, "content_type": "text/csv"}],
    )

    [received] = smtp.messages
    msg = received.message
    assert received.mail_from == "syncd@example.org"
    assert set(received.rcpt_tos) == {
        "ops@example.org",
        "lead@example.org",
        "partners@example.org",
        "audit@example.org",
    }
    assert msg["From"] == "syncd <syncd@example.org>"
    assert [a.addr_spec for a in msg["To"].addresses] == ["ops@example.org", "lead@example.org"]
    assert msg["To"].addresses[0].display_name == "Ops Team"
    assert msg["Cc"] == "partners@example.org"
    assert msg["Reply-To"] == "Delivery <delivery@example.org>"
    assert msg["Subject"] == "Agreement expiring in 60 days: Hub Ü"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"].datetime == clock.now()
    # Bcc: in the envelope, nowhere in what the recipients can read.
    assert msg["Bcc"] is None
    assert b"audit@example.org" not in received.raw

    assert result.external_id == msg["Message-ID"]
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and text.get_content() == "The agreement ends on 2026-03-06.\n"
    assert html is not None and "<b>2026-03-06</b>" in html.get_content()

    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "active.csv"
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_payload(decode=True).decode("utf-8") == report  # CRLF kept


def test_a_line_starting_with_a_dot_survives_the_smtp_dot_stuffing(
    smtp: FakeSmtpServer, send: Send
) -> None:
    body = "first\n.\n.hidden\nlast\n"
    send(body=body)
    [received] = smtp.messages
    assert received.message.get_content() == body


def test_default_reply_to_comes_from_settings(
    smtp: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    make_send(smtp.settings(default_reply_to="help@example.org"))()
    assert smtp.messages[0].message["Reply-To"] == "help@example.org"


def test_message_id_is_the_same_on_a_retry_of_the_same_key(
    smtp: FakeSmtpServer, send: Send
) -> None:
    first = send(key="w6:deal-42:2026-01-05", attempt=1)
    retry = send(key="w6:deal-42:2026-01-05", attempt=2)
    other = send(key="w6:deal-43:2026-01-05", attempt=1)

    ids = [m.message["Message-ID"] for m in smtp.messages]
    assert ids[0] == ids[1] == first.external_id == retry.external_id
    assert ids[2] == other.external_id != ids[0]
    assert ids[0].startswith("<syncd.") and ids[0].endswith("@example.org>")


def test_message_id_domain_setting_is_used(
    smtp: FakeSmtpServer, make_send: Callable[[EmailSettings], Send]
) -> None:
    result = make_send(smtp.settings(message_id_domain="mail.syncd.test"))()
    assert result.external_id is not None
    assert result.external_id.endswith("@mail.syncd.test>")
    assert smtp.messages[0].message["Message-ID"] == result.external_id


def test_send_is_declared_not_idempotent_and_without_finder() -> None:
    cls = load_class("email")
    assert cls is EmailConnector
    spec = cls.actions["send"]
    assert spec.idempotent is False
    assert spec.find_existing is None


def test_wait_for_returns_received_messages_and_times_out_when_short(
    smtp: FakeSmtpServer, send: Send
) -> None:
    send(subject="one")
    assert [m.message["Subject"] for m in smtp.wait_for(1)] == ["one"]
    with pytest.raises(TimeoutError, match="expected 2 messages, got 1"):
        smtp.wait_for(2, timeout=0.05)


def test_a_long_subject_is_cut_to_255_characters_with_an_ellipsis(
    smtp: FakeSmtpServer, send: Send
) -> None:
    send(to="ops@example.org", subject="Quote sent: " + "Climate Lab " * 100, body="b\n")
    [received] = smtp.messages
    subject = received.message["Subject"]
    assert len(subject) == 255
    assert subject.startswith("Quote sent: Climate Lab") and subject.endswith("\u2026")
