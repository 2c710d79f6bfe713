"""A local SMTP server for tests and the `syncd demo` sandbox (aiosmtpd on 127.0.0.1).

It keeps every accepted message (envelope and parsed message) and misbehaves on request:

    with FakeSmtpServer(username="bot", password="s3cret") as smtp:
        smtp.fail_next("transient")           # next DATA answered 451
        smtp.fail_next("permanent", at="rcpt")  # next RCPT answered 550
        smtp.fail_next("drop")                # next message kept, then the line cut unanswered
        smtp.fail_next("hang", at="rcpt")     # next RCPT never answered (client timeout)
        smtp.go_down() / smtp.come_back()     # connection refused / listening again
        settings = smtp.settings(from_address="syncd@example.org")
        ... smtp.messages, smtp.wait_for(2)

`tls="starttls"` or `tls="tls"` serves a throw-away self-signed certificate, whose file the
client trusts through `settings()` (`tls_ca_file`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import tempfile
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from connectors.email.settings import EmailSettings
from syncd_sandbox.email.fake_tls import server_context, write_self_signed

Fault = Literal["transient", "permanent", "drop", "hang"]
Stage = Literal["mail", "rcpt", "data"]
FAULT_REPLIES: dict[str, str] = {
    "transient": "451 4.3.0 Temporarily unable to accept mail (fake)",
    "permanent": "550 5.7.1 Message refused (fake)",
}
HANG_SECONDS = 60.0  # "hang": no answer until the client gives up (or the server stops)
HOSTNAME = "fake-smtp.localhost"  # the name in the greeting; avoids a getfqdn() lookup


class _HideLoginDataNotice(logging.Filter):
    """aiosmtpd itself sets the deprecated Session.login_data on every AUTH and then warns
    about it; that notice says nothing about the test or the demo."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_HideLoginDataNotice())


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    auth_user: str | None  # who logged in, None without AUTH


@dataclass
class _PlannedFault:
    fault: Fault
    stage: Stage
    reply: str | None
    skip: int  # commands of this stage still to let through first


class FakeSmtpServer:
    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: Literal["starttls", "tls"] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.username = username
        self.password = password
        self.tls = tls
        self._received: list[ReceivedMessage] = []
        self._faults: list[_PlannedFault] = []
        self._changed = threading.Condition()
        self._controller: Controller | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: Path | None = None
        self._key_file: Path | None = None
        if tls is not None:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="syncd-fake-smtp-")
            self.ca_file, self._key_file = write_self_signed(Path(self._tls_dir.name), host)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSmtpServer:
        self.come_back()
        return self

    def stop(self) -> None:
        self.go_down()
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None

    def go_down(self) -> None:
        """Stop listening: clients get "connection refused" (the port stays reserved for
        `come_back`, though nothing guards it meanwhile)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def come_back(self) -> None:
        if self._controller is None:
            self._controller = Controller(
                _Handler(self), hostname=self.host, port=self.port, **self._smtp_options()
            )
            self._controller.start()

    def __enter__(self) -> FakeSmtpServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _smtp_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"server_hostname": HOSTNAME}
        if self.username is not None:
            # AUTH is enforced in handle_MAIL: aiosmtpd's own auth_required warns on every
            # connection when the plain test server allows AUTH without TLS.
            options["authenticator"] = self._authenticate
        if self.tls is not None:
            assert self.ca_file is not None and self._key_file is not None
            context = server_context(self.ca_file, self._key_file)
            if self.tls == "starttls":
                options.update(tls_context=context, require_starttls=True)
            else:
                # Implicit TLS: aiosmtpd only counts STARTTLS as "TLS" for AUTH.
                options.update(ssl_context=context, auth_require_tls=False)
        else:
            options["auth_require_tls"] = False  # plain test server: AUTH in clear is fine
        return options

    # -- what tests look at and steer -------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._changed:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until `count` messages were received (bounded), and return them all."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(f"expected {count} messages, got {len(self._received)}")
            return list(self._received)

    def fail_next(
        self,
        fault: Fault,
        *,
        at: Stage = "data",
        count: int = 1,
        skip: int = 0,
        reply: str | None = None,
    ) -> None:
        """The next `count` commands of stage `at` fail, after `skip` of them pass (e.g. the
        second RCPT of a message). "drop" at "data" keeps the message (it was delivered) and
        cuts the connection before answering; "hang" keeps it and never answers. `reply`
        replaces the standard 451/550 answer (e.g. a server that echoes what it got)."""
        with self._changed:
            for _ in range(count):
                self._faults.append(_PlannedFault(fault, at, reply, skip))

    def settings(self, **overrides: Any) -> EmailSettings:
        """Client settings pointing at this server."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.tls or "plain",
            "from_address": "syncd <syncd@example.org>",
            "helo_name": "syncd.test",
            "timeout_seconds": 5.0,
            "tls_ca_file": str(self.ca_file) if self.ca_file else None,
        }
        if self.username is not None:
            values.update(username=self.username, password=self.password)
        values.update(overrides)
        return EmailSettings(**values)

    # -- called from the server thread ------------------------------------------------------

    def _take_fault(self, stage: Stage) -> tuple[Fault, str | None] | None:
        """The fault planned for this `stage` command and the reply to give (None: cut)."""
        with self._changed:
            for planned in self._faults:
                if planned.stage != stage:
                    continue
                if planned.skip > 0:
                    planned.skip -= 1
                    return None
                self._faults.remove(planned)
                return planned.fault, (planned.reply or FAULT_REPLIES.get(planned.fault))
        return None

    def _record(self, envelope: Envelope, session: Session) -> None:
        raw = envelope.original_content or b""
        # CRLF is the wire's line end; a mail reader shows lines, so parse with plain \n.
        parsed = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        auth_user = session.auth_data if isinstance(session.auth_data, str) else None
        with self._changed:
            self._received.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    message=parsed,
                    raw=raw,
                    auth_user=auth_user,
                )
            )
            self._changed.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.username is not None
            and self.password is not None
            and hmac.compare_digest(data.login, self.username.encode())
            and hmac.compare_digest(data.password, self.password.encode())
        )
        return AuthResult(success=ok, handled=False, auth_data=self.username if ok else None)


class _Handler:
    """aiosmtpd hooks: consult the fault list, then behave like a normal server."""

    def __init__(self, owner: FakeSmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.owner.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        refusal = await self._fault(server, "mail")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = await self._fault(server, "rcpt")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        planned = self.owner._take_fault("data")
        if planned is not None and planned[0] in FAULT_REPLIES:
            return planned[1] or ""
        self.owner._record(envelope, session)
        if planned is not None:
            await _cut_or_hang(server, planned[0])
        return "250 2.0.0 Message accepted for delivery"

    async def _fault(self, server: SMTP, stage: Stage) -> str | None:
        planned = self.owner._take_fault(stage)
        if planned is None:
            return None
        if planned[0] in FAULT_REPLIES:
            return planned[1]
        await _cut_or_hang(server, planned[0])
        return "421 4.4.2 connection lost"  # never reaches the client


async def _cut_or_hang(server: SMTP, fault: Fault) -> None:
    if fault == "hang":
        await asyncio.sleep(HANG_SECONDS)  # cancelled when the server stops
    # abort(), not close(): close() would still flush the reply we are about to write.
    if server.transport is not None:
        server.transport.abort()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
