"""Checks on everything that ends up in a mail header: addresses and one-line texts.

A value with a line break could add headers of its own (header injection: a hidden Bcc),
so such values are refused before any message is built, never "cleaned".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from email import errors as email_errors
from email import policy
from email.headerregistry import Address

from syncd.sdk import PermanentError

# Characters that end a line for some mail software, besides CR and LF.
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


class InvalidHeaderValue(PermanentError, ValueError):
    """A header value is refused. A PermanentError for the executor (retrying cannot help)
    and a ValueError for pydantic (so a bad setting is reported as a config problem)."""


def refuse_line_breaks(field: str, value: str) -> str:
    """Return `value` if it fits on one header line, else raise InvalidHeaderValue."""
    for char in value:
        if char in _LINE_BREAKS:
            raise InvalidHeaderValue(
                f"{field} contains a line break: refused (header injection), nothing sent"
            )
        if char != "\t" and unicodedata.category(char) == "Cc":
            raise InvalidHeaderValue(f"{field} contains a control character: refused")
    return value


def parse_addresses(field: str, value: str | Iterable[str]) -> list[Address]:
    """Parse one address-list string, or a list of them, into addresses.

    Each string is read like a To: header ("Ann <ann@example.org>, bob@example.org").
    Anything the parser had to guess about is refused, so a typo fails loudly instead of
    mailing a stranger.
    """
    items = [value] if isinstance(value, str) else list(value)
    found: list[Address] = []
    for item in items:
        refuse_line_breaks(field, item)
        try:
            header = policy.default.header_factory("To", item)  # any address-list header
            groups = header.groups
            defects = header.defects
        except Exception:  # the parser raises IndexError and friends on some garbage
            raise InvalidHeaderValue(f"{field}: {item!r} is not an email address") from None
        serious = [d for d in defects if not isinstance(d, email_errors.ObsoleteHeaderDefect)]
        if serious:
            raise InvalidHeaderValue(
                f"{field}: {item!r} is not a valid address list ({serious[0]})"
            )
        for group in groups:
            if group.display_name is not None:
                raise InvalidHeaderValue(f"{field}: address groups are not supported")
            for address in group.addresses:
                _check_addr_spec(field, address)
                found.append(address)
    return found


def parse_single_address(field: str, value: str) -> Address:
    found = parse_addresses(field, value)
    if len(found) != 1:
        raise InvalidHeaderValue(f"{field} must be exactly one address, got {len(found)}")
    return found[0]


def _check_addr_spec(field: str, address: Address) -> None:
    if not address.username or not address.domain:
        raise InvalidHeaderValue(f"{field}: {address.addr_spec!r} needs a local part and a domain")
    if not address.addr_spec.isascii():
        # Would need SMTPUTF8 end to end; refused rather than half-supported.
        raise InvalidHeaderValue(
            f"{field}: {address.addr_spec!r}: internationalised addresses are not supported"
        )
