"""Settings of the email connector: where the SMTP server is and how mail is signed off."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import SecretStr, field_validator, model_validator

from connectors.email.addresses import parse_single_address, refuse_line_breaks
from syncd.sdk import ConnectorSettings

Security = Literal["plain", "starttls", "tls"]
# What a rule gets when the answer to DATA is lost: at_least_once sends again (the
# recipient may get two copies, with the same Message-ID), at_most_once gives up.
Guarantee = Literal["at_least_once", "at_most_once"]

DEFAULT_PORTS: dict[str, int] = {"plain": 25, "starttls": 587, "tls": 465}


class EmailSettings(ConnectorSettings):
    host: str = "localhost"
    port: int | None = None  # None: the usual port for `security` (25, 587 or 465)
    security: Security = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    default_reply_to: str | None = None
    timeout_seconds: float = 30.0
    # Right-hand side of the Message-IDs we mint; None: the domain of from_address.
    message_id_domain: str | None = None
    # Name given in EHLO; None: this machine's FQDN (smtplib's default).
    helo_name: str | None = None
    # CA bundle to verify the server's certificate with (a private CA); None: system CAs.
    tls_ca_file: str | None = None
    # Sending a password over an unencrypted connection is refused unless the server is on
    # this machine or this is set on purpose.
    allow_plaintext_auth: bool = False
    guarantee: Guarantee = "at_least_once"

    @field_validator("from_address")
    @classmethod
    def _one_sender(cls, value: str) -> str:
        parse_single_address("from_address", value)
        return value

    @field_validator("default_reply_to")
    @classmethod
    def _one_reply_to(cls, value: str | None) -> str | None:
        if value is not None:
            parse_single_address("default_reply_to", value)
        return value

    @field_validator("message_id_domain", "helo_name", "username")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None:
            refuse_line_breaks("setting", value)
        return value

    @model_validator(mode="after")
    def _credentials_make_sense(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        if (
            self.password is not None
            and self.security == "plain"
            and not self.allow_plaintext_auth
            and not _is_loopback(self.host)
        ):
            raise ValueError(
                "security = 'plain' would send the password unencrypted to a remote host: "
                "use 'starttls' or 'tls' (or set allow_plaintext_auth = true)"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @property
    def effective_message_id_domain(self) -> str:
        if self.message_id_domain:
            return self.message_id_domain
        return parse_single_address("from_address", self.from_address).domain


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
