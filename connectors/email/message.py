"""Building the message of `email.send`: a pure function of the parameters and the key."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from email import utils as email_utils
from email.headerregistry import Address
from email.message import EmailMessage

from connectors.email.addresses import (
    InvalidHeaderValue,
    parse_addresses,
    parse_single_address,
    refuse_line_breaks,
)
from connectors.email.settings import EmailSettings, Guarantee
from syncd.sdk import EMAIL_SUBJECT_MAX, ParamsModel, cap

# type/subtype as in RFC 2045 (tokens), e.g. text/csv, application/json.
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")


class Attachment(ParamsModel):
    filename: str
    content: str
    content_type: str = "text/plain"


class SendParams(ParamsModel):
    """Parameters of `email.send`. Address fields take a list, or one string read like a
    To: header ("Ann <ann@example.org>, bob@example.org")."""

    to: list[str] | str
    cc: list[str] | str = []
    bcc: list[str] | str = []
    reply_to: list[str] | str | None = None  # None: the settings' default_reply_to
    subject: str
    body: str
    html: str | None = None
    attachments: list[Attachment] = []
    guarantee: Guarantee | None = None  # None: the settings' guarantee


def message_id_for(key: str, domain: str) -> str:
    """The Message-ID of the mail sent for an action key: the same on every retry."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<syncd.{digest}@{domain}>"


def build_message(
    params: SendParams, key: str, settings: EmailSettings, *, date: datetime | None = None
) -> EmailMessage:
    """The message to send for `params`, identified by `key` (the action's idempotency key).

    Bcc recipients are kept in a Bcc header, which `send_message` turns into envelope
    recipients and strips before sending (the smtplib convention). Raises
    InvalidHeaderValue (a PermanentError) for anything that cannot go in a header.
    Same inputs, same headers (MIME boundaries are the only random part); no I/O.
    """
    to = parse_addresses("to", params.to)
    if not to:
        raise InvalidHeaderValue("to: at least one recipient is needed")
    cc = parse_addresses("cc", params.cc)
    bcc = parse_addresses("bcc", params.bcc)
    reply_to = _reply_to(params, settings)
    subject = cap(refuse_line_breaks("subject", params.subject), EMAIL_SUBJECT_MAX)
    domain = refuse_line_breaks("message_id_domain", settings.effective_message_id_domain)

    msg = EmailMessage()
    msg["From"] = parse_single_address("from_address", settings.from_address)
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if bcc:
        msg["Bcc"] = bcc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id_for(key, domain)
    if date is not None:
        msg["Date"] = email_utils.format_datetime(date)
    # RFC 3834: tells vacation responders and ticket systems not to answer a robot.
    msg["Auto-Submitted"] = "auto-generated"

    msg.set_content(params.body)
    if params.html is not None:
        msg.add_alternative(params.html, subtype="html")
    for index, attachment in enumerate(params.attachments):
        _attach(msg, attachment, f"attachments[{index}]")
    return msg


def _reply_to(params: SendParams, settings: EmailSettings) -> list[Address]:
    if params.reply_to is not None:
        return parse_addresses("reply_to", params.reply_to)
    if settings.default_reply_to:
        return parse_addresses("default_reply_to", settings.default_reply_to)
    return []


def _attach(msg: EmailMessage, attachment: Attachment, where: str) -> None:
    filename = refuse_line_breaks(f"{where}.filename", attachment.filename)
    content_type = refuse_line_breaks(f"{where}.content_type", attachment.content_type)
    if not filename.strip():
        raise InvalidHeaderValue(f"{where}.filename is empty")
    if not _CONTENT_TYPE.match(content_type):
        raise InvalidHeaderValue(f"{where}.content_type {content_type!r} is not type/subtype")
    maintype, subtype = content_type.lower().split("/", 1)
    if maintype == "multipart":
        raise InvalidHeaderValue(f"{where}.content_type cannot be multipart")
    # Sent as base64 bytes so the recipient gets the exact text, line endings included
    # (a CSV written by the csv module uses CRLF).
    params = {"charset": "utf-8"} if maintype == "text" else None
    msg.add_attachment(
        attachment.content.encode("utf-8"),
        maintype=maintype,
        subtype=subtype,
        filename=filename,
        params=params,
    )
