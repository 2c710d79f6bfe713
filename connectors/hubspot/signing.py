"""HubSpot webhook signatures (v1, v2, v3), shared by the connector and the fake.

The hashing itself is `hubspot.utils.signature.Signature` (the published v1/v2 vectors
reproduce with it); what this module adds is what that class leaves to the caller: the v3
URI normalisation, and time taken from syncd's clock instead of the wall clock.
"""

from __future__ import annotations

import json
from typing import Any

from hubspot.utils.signature import Signature

SIGNATURE_HEADER = "x-hubspot-signature"
SIGNATURE_V3_HEADER = "x-hubspot-signature-v3"
VERSION_HEADER = "x-hubspot-signature-version"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"

# v3: HubSpot decodes these percent-escapes in the URI before signing (its docs' table).
_V3_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def v3_uri(uri: str) -> str:
    if "%" not in uri:  # the usual case: nothing to decode (and 24 replaces a delivery saved)
        return uri
    for escaped, plain in _V3_DECODE.items():
        uri = uri.replace(escaped, plain).replace(escaped.lower(), plain)
    return uri


def sign(
    secret: str,
    version: str,
    body: str,
    uri: str = "",
    method: str = "POST",
    timestamp_ms: int | str | None = None,
) -> str:
    """The signature HubSpot sends for this request."""
    if version == "v3":
        return Signature.get_signature(secret, body, "v3", v3_uri(uri), method, str(timestamp_ms))
    return Signature.get_signature(secret, body, version, uri, method)


def signed_request(
    secret: str, url: str, events: list[dict[str, Any]], timestamp_ms: int, method: str = "POST"
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a v3-signed delivery, as HubSpot would POST it to `url`."""
    body = json.dumps(events, separators=(",", ":"))
    headers = {
        "content-type": "application/json",
        SIGNATURE_V3_HEADER: sign(secret, "v3", body, url, method, timestamp_ms),
        TIMESTAMP_HEADER: str(timestamp_ms),
        # HubSpot also sends the v1 signature of app webhooks.
        SIGNATURE_HEADER: sign(secret, "v1", body),
        VERSION_HEADER: "v1",
    }
    return headers, body.encode()
