"""Jira Cloud webhook deliveries: authenticity, delivery id, and hints.

Admin webhooks with a secret carry `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
`X-Atlassian-Webhook-Identifier` is the same on every retry of one delivery, so it is the
dedupe key; Jira may deliver late and twice, which the engine's snapshot diff absorbs.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pydantic import SecretStr

from syncd.sdk import (
    Hint,
    ObjectRef,
    WebhookRejected,
    WebhookRequest,
    load_json,
    refuse_unsigned,
    signature_matches,
)

SIGNATURE_HEADER = "x-hub-signature"
IDENTIFIER_HEADER = "x-atlassian-webhook-identifier"
RETRY_HEADER = "x-atlassian-webhook-retry"
ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted"})


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_body(body: bytes) -> dict[str, Any]:
    """The delivery's JSON, or WebhookRejected(400) when it is not a Jira event."""
    data = load_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("webhookEvent"), str):
        raise WebhookRejected(400, "body has no 'webhookEvent'")
    if data["webhookEvent"] in ISSUE_EVENTS:
        issue = data.get("issue")
        if not (isinstance(issue, dict) and isinstance(issue.get("key"), str) and issue["key"]):
            raise WebhookRejected(400, "issue event without 'issue.key'")
    return data


def verify(request: WebhookRequest, secret: SecretStr | None, allow_unsigned: bool = False) -> str:
    """Check the signature and shape; return the delivery id. Without a secret, or without
    a signature header, the delivery is refused unless `allow_unsigned`; a signature that is
    present is always checked against the secret."""
    given = request.headers.get(SIGNATURE_HEADER, "")
    if secret is None:
        refuse_unsigned(allow_unsigned, "no webhook_secret configured: cannot verify deliveries")
    elif not given:
        refuse_unsigned(allow_unsigned, "missing X-Hub-Signature")
    elif not signature_matches(given, signature(secret.get_secret_value(), request.body)):
        raise WebhookRejected(401, "bad or missing X-Hub-Signature")
    parse_body(request.body)
    identifier = request.headers.get(IDENTIFIER_HEADER, "").strip()
    if identifier:
        return identifier
    # Deliveries without the header (automation rules, Connect apps): the body is the identity.
    return "sha256:" + hashlib.sha256(request.body).hexdigest()


def hints(request: WebhookRequest, source: str) -> list[Hint]:
    data = parse_body(request.body)
    if data["webhookEvent"] not in ISSUE_EVENTS:
        return []
    return [Hint(ObjectRef(source, "issue", data["issue"]["key"]))]
