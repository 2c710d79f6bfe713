"""Checks every webhook receiver shares: signature comparison, the unsigned-delivery policy,
and JSON decoding that turns any malformed body into a 4xx.

A receiver must answer 4xx to any header or body a sender can make up, never 5xx: a 5xx
makes the sender retry a delivery that can never succeed, and hides a parsing bug.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from syncd.errors import WebhookRejected

# Exceptions a verifier can only raise because of what the sender sent (a verifier bug on an
# odd input): the delivery is refused with 400 and the traceback logged, never a 500.
MALFORMED_INPUT_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RecursionError,
    UnicodeError,
)


def _as_bytes(value: str | bytes) -> bytes:
    # surrogatepass: any str encodes, so an odd header is a mismatch, never an exception
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def signature_matches(given: str | bytes | None, expected: str | bytes) -> bool:
    """Constant-time comparison on bytes: `compare_digest` refuses non-ASCII str."""
    if not given:
        return False
    return hmac.compare_digest(_as_bytes(given), _as_bytes(expected))


def unsigned_allowed(settings: Any) -> bool:
    """True when the connector's table says `allow_unsigned = true`."""
    return bool(getattr(settings, "allow_unsigned", False))


def refuse_unsigned(allow_unsigned: bool, why: str) -> None:
    """A delivery that cannot be verified (no signature, or no secret to check it with) is
    refused with 401, unless the config explicitly allows unsigned deliveries."""
    if not allow_unsigned:
        raise WebhookRejected(401, f"{why} (unsigned deliveries are refused; see allow_unsigned)")


def load_json(body: bytes | str) -> Any:
    """The body's JSON, or WebhookRejected(400): deep nesting (RecursionError), bad
    encodings and oversized numbers are malformed input, not server errors."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WebhookRejected(400, "body is not JSON") from None


def unsigned_warnings(settings_by_connector: dict[str, Any]) -> list[str]:
    """One warning per enabled connector table with `allow_unsigned = true` (for the start
    log and `syncd check`)."""
    return [
        f"[{name}] allow_unsigned = true: webhook deliveries without a signature are "
        "accepted; anyone who can reach the HTTP port can store deliveries"
        for name, settings in sorted(settings_by_connector.items())
        if unsigned_allowed(settings) and getattr(settings, "enabled", True)
    ]
