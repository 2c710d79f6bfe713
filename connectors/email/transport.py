"""Handing a built message to the SMTP server, with errors sorted by what happens next.

The SMTP dialogue is driven step by step (not `smtplib.sendmail`) so we know which side of
the line a failure is on: before the message body is sent, nothing was delivered (retry is
safe); once it is sent, a lost answer means the mail may or may not be on its way.
"""

from __future__ import annotations

import copy
import re
import smtplib
import ssl
from email import generator
from email.message import EmailMessage
from email.utils import getaddresses
from io import BytesIO
from typing import Any, NoReturn

from connectors.email.settings import EmailSettings
from syncd.sdk import PermanentError, TransientError, UncertainError

# Where the dialogue stands; a failure in PAYLOAD_SENT is the only uncertain one.
CONNECT, SECURE, LOGIN, ENVELOPE, DATA, PAYLOAD_SENT = (
    "connect",
    "starttls",
    "login",
    "envelope",
    "data",
    "after sending the message",
)


def envelope_recipients(msg: EmailMessage) -> list[str]:
    """To, Cc and Bcc addresses, each once, in order."""
    values = [str(v) for name in ("To", "Cc", "Bcc") for v in msg.get_all(name, [])]
    seen: dict[str, None] = {}
    for _, addr in getaddresses(values):
        if addr:
            seen.setdefault(addr, None)
    return list(seen)


def envelope_sender(msg: EmailMessage) -> str:
    found = [addr for _, addr in getaddresses([str(msg["From"] or "")]) if addr]
    if len(found) != 1:
        raise PermanentError("the message needs exactly one From address")
    return found[0]


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message as sent: Bcc removed, CRLF line ends, dot-stuffed, ending with <CRLF>.<CRLF>."""
    without_bcc = copy.copy(msg)  # shallow: `del` rebinds its header list, not msg's
    del without_bcc["Bcc"]
    out = BytesIO()
    generator.BytesGenerator(out, policy=msg.policy.clone(linesep="\r\n")).flatten(without_bcc)
    payload = re.sub(rb"(?m)^\.", b"..", out.getvalue())
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


def send_message(msg: EmailMessage, settings: EmailSettings) -> str:
    """Send `msg` (as built by `build_message`) and return its Message-ID.

    Raises TransientError (nothing was delivered; retry later), PermanentError (the server
    or the settings refuse it; retrying cannot help) or UncertainError (the message was
    sent but the server's answer was lost).
    """
    sender = envelope_sender(msg)
    recipients = envelope_recipients(msg)
    if not recipients:
        raise PermanentError("the message has no recipients")
    payload = wire_bytes(msg)
    dialogue = _Dialogue(settings)
    try:
        dialogue.run(sender, recipients, payload)
    finally:
        dialogue.close()
    return str(msg["Message-ID"] or "")


class _Dialogue:
    """One SMTP session; `step` records how far it got, for error mapping."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self.step = CONNECT
        self.client: smtplib.SMTP | None = None

    def run(self, sender: str, recipients: list[str], payload: bytes) -> None:
        try:
            client = self._connect()
            self._secure_and_login(client)
            self._envelope(client, sender, recipients)
            self._data(client, payload)
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.quit()
        except (smtplib.SMTPException, OSError):
            self.client.close()  # the mail is already accepted (or not); QUIT is a courtesy

    # -- steps -----------------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        # Host given to the constructor (which connects): SMTP_SSL and starttls take the
        # name to verify the certificate against from there. A greeting other than 220
        # raises SMTPConnectError.
        target: dict[str, Any] = {
            "host": s.host,
            "port": s.effective_port,
            "timeout": s.timeout_seconds,
            "local_hostname": s.helo_name,
        }
        if s.security == "tls":
            self.client = smtplib.SMTP_SSL(context=self._tls_context(), **target)
        else:
            self.client = smtplib.SMTP(**target)
        return self.client

    def _secure_and_login(self, client: smtplib.SMTP) -> None:
        s = self.settings
        client.ehlo_or_helo_if_needed()
        if s.security == "starttls":
            self.step = SECURE
            client.starttls(context=self._tls_context())
            client.ehlo()
        if s.username is not None and s.password is not None:
            self.step = LOGIN
            client.login(s.username, s.password.get_secret_value())

    def _envelope(self, client: smtplib.SMTP, sender: str, recipients: list[str]) -> None:
        self.step = ENVELOPE
        code, reply = client.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        for recipient in recipients:
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                # All or nothing: a retry after a partial send would mail the others twice.
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})

    def _data(self, client: smtplib.SMTP, payload: bytes) -> None:
        self.step = DATA
        code, reply = client.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        self.step = PAYLOAD_SENT
        client.send(payload)
        code, reply = client.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.tls_ca_file)

    # -- errors ----------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> NoReturn:
        where = f"SMTP {self.settings.host}:{self.settings.effective_port} ({self.step})"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            recipient, (code, reply) = next(iter(exc.recipients.items()))
            self._by_code(code, f"{where}: recipient {recipient} refused: {code} {_text(reply)}")
        if isinstance(exc, smtplib.SMTPResponseException):
            # The server answered: its code says whether it is worth trying again, even
            # after the message was sent (a refusal is not an uncertainty).
            self._by_code(exc.smtp_code, f"{where}: {exc.smtp_code} {_text(exc.smtp_error)}")
        detail = f"{where}: {type(exc).__name__}: {exc}"
        if self.step == PAYLOAD_SENT:
            raise UncertainError(
                self._redact(f"{detail}; the message may have been delivered")
            ) from None
        if isinstance(exc, ssl.SSLCertVerificationError):
            raise PermanentError(self._redact(detail)) from None  # settings, not luck
        if isinstance(exc, OSError | smtplib.SMTPServerDisconnected):
            raise TransientError(self._redact(detail)) from None  # refused, reset, timeout
        # Other SMTPException: no usable AUTH mechanism and the like (configuration).
        raise PermanentError(self._redact(detail)) from None

    def _by_code(self, code: int, message: str) -> NoReturn:
        message = self._redact(message)
        if 500 <= code < 600:
            raise PermanentError(message) from None
        raise TransientError(message) from None  # 4xx, or an unexpected code

    def _redact(self, text: str) -> str:
        password = self.settings.password
        if password is not None and password.get_secret_value():
            text = text.replace(password.get_secret_value(), "**********")
        return text


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
