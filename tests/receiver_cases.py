"""Hostile-input cases for the five webhook receivers (hubspot, github, airtable, jira,
localdb), shared by the fuzz tests and `benchmarks/fuzz_receivers.py`.

- `make_receiver(name)`: the real connector, configured with a signing secret (Airtable: one
  registered webhook), no API reachable (nothing here calls one);
- `valid_delivery(name, rng)`: a signed, well-formed delivery with a fresh delivery id;
- `sign(name, headers, body)`: the same headers with a valid signature over any body;
- `invalid_delivery(name, rng)`: a delivery that is invalid by construction (bad or missing
  signature, truncated, wrongly typed, not UTF-8, too deep, random bytes...), and its kind;
- `parse(connector, request)`: the step the inbox runs on a stored delivery.

Headers are str decoded as latin-1, as `syncd.webapp` decodes them from the wire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.airtable import AirtableConnector, AirtableSettings
from connectors.airtable.payloads import MAC_HEADER, parse_ping
from connectors.airtable.registry import WebhookRegistration
from connectors.github import webhooks as github_hooks
from connectors.github.connector import GitHubConnector, GitHubSettings
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot import signing as hubspot_signing
from connectors.jira import JiraConnector
from connectors.jira import webhooks as jira_hooks
from connectors.jira.settings import JiraSettings
from syncd.clock import Clock, FakeClock, to_ms
from syncd.connector import Connector
from syncd.model import Hint, WebhookRequest
from syncd_sandbox.localdb.connector import (
    DELIVERY_HEADER as LOCALDB_DELIVERY,
)
from syncd_sandbox.localdb.connector import (
    SIGNATURE_HEADER as LOCALDB_SIGNATURE,
)
from syncd_sandbox.localdb.connector import (
    LocalDbConnector,
    LocalDbSettings,
)
from syncd_sandbox.localdb.connector import (
    sign as localdb_sign,
)

RECEIVERS = ("hubspot", "github", "airtable", "jira", "localdb")
SAAS_RECEIVERS = ("hubspot", "github", "airtable", "jira")
PUBLIC_URL = "https://hooks.example.org"
SECRET = "fuzz-signing-secret-0123456789"
AIRTABLE_BASE = "appFuzzBase000001"
AIRTABLE_HOOK = "achFuzzHook000001"
AIRTABLE_MAC = base64.b64encode(hashlib.sha256(b"fuzz-mac").digest()).decode()
NO_API = "http://127.0.0.1:9"  # the discard port: nothing here may call an API

SIGNATURE_HEADERS = {
    "hubspot": (hubspot_signing.SIGNATURE_V3_HEADER, hubspot_signing.SIGNATURE_HEADER),
    "github": (github_hooks.SIGNATURE_HEADER,),
    "airtable": (MAC_HEADER,),
    "jira": (jira_hooks.SIGNATURE_HEADER,),
    "localdb": (LOCALDB_SIGNATURE,),
}
KNOWN_HEADERS = {
    "hubspot": (
        hubspot_signing.SIGNATURE_V3_HEADER,
        hubspot_signing.TIMESTAMP_HEADER,
        hubspot_signing.SIGNATURE_HEADER,
        hubspot_signing.VERSION_HEADER,
    ),
    "github": github_hooks.KEPT_HEADERS,
    "airtable": (MAC_HEADER,),
    "jira": (jira_hooks.SIGNATURE_HEADER, jira_hooks.IDENTIFIER_HEADER, jira_hooks.RETRY_HEADER),
    "localdb": (LOCALDB_SIGNATURE, LOCALDB_DELIVERY),
}


def settings_for(
    name: str, *, secret: bool = True, allow_unsigned: bool = False, localdb_path: str | None = None
) -> Any:
    key = SecretStr(SECRET) if secret else None
    if name == "hubspot":
        return HubSpotSettings(
            access_token=SecretStr("pat-na1-fuzz"),
            app_secret=key,
            base_url=NO_API,
            allow_unsigned=allow_unsigned,
        )
    if name == "github":
        return GitHubSettings(
            token=SecretStr("ghp_fuzz"),
            webhook_secret=key,
            base_url=NO_API,
            allow_unsigned=allow_unsigned,
        )
    if name == "airtable":
        return AirtableSettings(
            token=SecretStr("patFuzz.token"),
            base_id=AIRTABLE_BASE,
            tables={"lead": "Leads"},
            base_url=NO_API,
            allow_unsigned=allow_unsigned,
        )
    if name == "jira":
        return JiraSettings(
            base_url=NO_API,
            email="fuzz@example.org",
            api_token=SecretStr("fuzz"),
            webhook_secret=key,
            allow_unsigned=allow_unsigned,
        )
    if name == "localdb":
        path = localdb_path or str(Path(tempfile.mkdtemp(prefix="syncd-fuzz-")) / "remote.db")
        return LocalDbSettings(path=path, webhook_secret=key, allow_unsigned=allow_unsigned)
    raise ValueError(name)


def make_receiver(
    name: str,
    clock: Clock | None = None,
    *,
    secret: bool = True,
    allow_unsigned: bool = False,
    localdb_path: str | None = None,
) -> Connector:
    clock = clock or FakeClock()
    settings = settings_for(
        name, secret=secret, allow_unsigned=allow_unsigned, localdb_path=localdb_path
    )
    cls: Any = {
        "hubspot": HubSpotConnector,
        "github": GitHubConnector,
        "airtable": AirtableConnector,
        "jira": JiraConnector,
        "localdb": LocalDbConnector,
    }[name]
    connector: Connector = cls(settings, clock)
    if name == "airtable" and secret:
        connector.registry.add(
            WebhookRegistration(  # type: ignore[attr-defined]
                AIRTABLE_HOOK, "tblFuzz", f"{PUBLIC_URL}/webhooks/airtable", AIRTABLE_MAC
            )
        )
    return connector


def url_of(name: str) -> str:
    return f"{PUBLIC_URL}/webhooks/{name}"


def request(name: str, headers: dict[str, str], body: bytes, clock: Clock) -> WebhookRequest:
    return WebhookRequest(
        "POST", url_of(name), {k.lower(): v for k, v in headers.items()}, body, to_ms(clock.now())
    )


def parse(connector: Connector, req: WebhookRequest) -> list[Hint] | Any:
    """The inbox's parse step. Airtable's reads payloads from the API after parsing the
    ping: the local part is `parse_ping`."""
    if connector.name == "airtable":
        return parse_ping(req.body)
    return connector.parse_webhook(req)


# -- signing -----------------------------------------------------------------------------


def sign(name: str, headers: dict[str, str], body: bytes, clock: Clock) -> dict[str, str]:
    """`headers` plus a valid signature of `body` (and what the signature needs)."""
    out = dict(headers)
    if name == "hubspot":
        stamp = to_ms(clock.now())
        text = body.decode("utf-8", "replace")  # a body that is not UTF-8 gets a 400 first
        out[hubspot_signing.TIMESTAMP_HEADER] = str(stamp)
        out[hubspot_signing.SIGNATURE_V3_HEADER] = hubspot_signing.sign(
            SECRET, "v3", text, url_of(name), "POST", stamp
        )
    elif name == "github":
        out[github_hooks.SIGNATURE_HEADER] = github_hooks.sign(SECRET, body)
    elif name == "airtable":
        key = base64.b64decode(AIRTABLE_MAC)
        out[MAC_HEADER] = "hmac-sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    elif name == "jira":
        out[jira_hooks.SIGNATURE_HEADER] = jira_hooks.signature(SECRET, body)
    else:
        out[LOCALDB_SIGNATURE] = localdb_sign(SECRET, body)
    return out


def _base_headers(name: str, n: int) -> dict[str, str]:
    if name == "github":
        return {github_hooks.EVENT_HEADER: "issues", github_hooks.DELIVERY_HEADER: f"gh-{n}"}
    if name == "jira":
        return {jira_hooks.IDENTIFIER_HEADER: f"jira-{n}"}
    if name == "localdb":
        return {LOCALDB_DELIVERY: f"local-{n}"}
    return {}


def well_formed_body(name: str, n: int) -> Any:
    """A well-formed payload whose delivery id is unique for `n`."""
    if name == "hubspot":
        return [
            {
                "eventId": n,
                "subscriptionId": 7,
                "portalId": 62515,
                "occurredAt": 1,
                "subscriptionType": "deal.propertyChange",
                "attemptNumber": 0,
                "objectId": 1000 + n % 50,
                "propertyName": "dealstage",
                "propertyValue": "closedwon",
            }
        ]
    if name == "github":
        return {
            "action": "edited",
            "issue": {"number": 1 + n % 50, "title": "t"},
            "repository": {"full_name": "2i2c-org/infrastructure"},
        }
    if name == "airtable":
        return {
            "base": {"id": AIRTABLE_BASE},
            "webhook": {"id": AIRTABLE_HOOK},
            "timestamp": f"2026-01-01T00:00:00.{n:06d}Z",
        }
    if name == "jira":
        return {
            "webhookEvent": "jira:issue_updated",
            "timestamp": 1,
            "issue": {"key": f"OPS-{1 + n % 50}", "fields": {}},
        }
    return {"type": "item", "id": str(n % 50)}


# The fields whose type the receivers rely on, as paths into well_formed_body.
TYPED_FIELDS = {
    "hubspot": [(0, "eventId"), (0, "subscriptionType"), (0, "objectId"), (0,)],
    "github": [],  # any JSON object is a valid GitHub delivery (unknown events are ignored)
    "airtable": [("base",), ("base", "id"), ("webhook",), ("webhook", "id"), ("timestamp",)],
    "jira": [("webhookEvent",), ("issue",), ("issue", "key")],
    "localdb": [("type",), ("id",)],
}
WRONG_VALUES: list[Any] = [None, True, 1.5, [], ["x"], {"a": 1}, [[{"b": None}]]]


def valid_delivery(name: str, n: int, clock: Clock) -> tuple[dict[str, str], bytes]:
    body = json.dumps(well_formed_body(name, n)).encode()
    return sign(name, _base_headers(name, n), body, clock), body


# -- invalid deliveries --------------------------------------------------------------------

NON_ASCII = "é\xff\x85\xa0ü"  # as a latin-1 decoded header shows them
LATIN1_ODD = NON_ASCII + "\x00\x7f"


def random_text(rng: random.Random, max_len: int = 80) -> str:
    """Header-like text: ASCII, latin-1 non-ASCII and control characters."""
    alphabet = "abcdefABCDEF0123456789=-_:/+ " + LATIN1_ODD
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len)))


def random_bytes(rng: random.Random, max_len: int = 300) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, max_len)))


def _set_path(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if len(path) == 1 and path == (0,):
        data[0] = value
        return data
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _random_scalars(rng: random.Random) -> Any:
    """A JSON value no receiver accepts: a scalar, or a non-empty list of scalars."""
    scalars = [None, True, 0, -7, 1e308, "x", "é" * 3, ""]
    if rng.random() < 0.5:
        return rng.choice(scalars)
    return [rng.choice(scalars) for _ in range(rng.randint(1, 5))]


INVALID_KINDS = (
    "random",
    "bad_signature",
    "no_signature",
    "non_ascii_signature",
    "truncated",
    "wrong_type",
    "not_utf8",
    "scalar_json",
    "deep",
    "stale",
)


def invalid_delivery(
    name: str, n: int, rng: random.Random, clock: Clock, kind: str | None = None
) -> tuple[dict[str, str], bytes, str]:
    """A delivery that must get a 4xx: (headers, body, kind)."""
    kinds = [k for k in INVALID_KINDS if k != "stale" or name == "hubspot"]
    if name == "github":
        kinds.remove("wrong_type")
    kind = kind or rng.choice(kinds)
    headers, body = valid_delivery(name, n, clock)
    base = _base_headers(name, n)
    if kind == "random":
        names = list(KNOWN_HEADERS[name]) + ["content-type", "x-" + random_text(rng, 10)]
        headers = {rng.choice(names).lower(): random_text(rng) for _ in range(rng.randint(0, 6))}
        return headers, random_bytes(rng), kind
    if kind == "bad_signature":
        for header in SIGNATURE_HEADERS[name]:
            if header in headers:
                headers[header] = headers[header][:-2] + random_text(rng, 2).ljust(2, "0")
                if headers[header] == sign(name, base, body, clock).get(header):
                    headers[header] += "0"
        return headers, body, kind
    if kind == "no_signature":
        return {k: v for k, v in headers.items() if k not in SIGNATURE_HEADERS[name]}, body, kind
    if kind == "non_ascii_signature":
        for header in SIGNATURE_HEADERS[name]:
            if header in headers:
                cut = rng.randint(0, len(headers[header]))
                headers[header] = (
                    headers[header][:cut] + rng.choice(NON_ASCII) + headers[header][cut + 1 :]
                )
        return headers, body, kind
    if kind == "truncated":
        body = body[: rng.randint(0, len(body) - 1)]
    elif kind == "wrong_type":
        data = well_formed_body(name, n)
        body = json.dumps(
            _set_path(data, rng.choice(TYPED_FIELDS[name]), rng.choice(WRONG_VALUES))
        ).encode()
    elif kind == "not_utf8":
        body = body[:5] + b"\xff\xfe\xc3" + body[5:]
    elif kind == "scalar_json":
        body = json.dumps(_random_scalars(rng)).encode()
    elif kind == "deep":
        depth = rng.choice([2_000, 50_000, 200_000])
        body = b"[" * depth + b"]" * depth
    elif kind == "stale":  # HubSpot: a signature made 10 minutes ago
        stale = FakeClock(clock.now())
        stale.advance(-600)
        return sign(name, base, body, stale), body, kind
    return sign(name, base, body, clock), body, kind
