"""GitHub webhook deliveries: signing (for the fake and tests), verifying and parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from syncd.sdk import (
    Hint,
    ObjectRef,
    WebhookRejected,
    WebhookRequest,
    load_json,
    refuse_unsigned,
    signature_matches,
)

SIGNATURE_HEADER = "x-hub-signature-256"
DELIVERY_HEADER = "x-github-delivery"
EVENT_HEADER = "x-github-event"
HOOK_ID_HEADER = "x-github-hook-id"
KEPT_HEADERS = (DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, HOOK_ID_HEADER)
ISSUE_EVENTS = frozenset({"issues", "issue_comment"})


def sign(secret: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of the raw body, as GitHub sends it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_delivery(
    event: str, payload: Any, secret: str, delivery_id: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a delivery as GitHub would POST it (for the fake and for tests)."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
    }
    return headers, body


def verify(request: WebhookRequest, secret: str | None, allow_unsigned: bool = False) -> str:
    """Check a delivery's headers, signature and shape; return its delivery id.

    Without a secret, or without a signature header, the delivery is refused unless
    `allow_unsigned`; a signature that is present is always checked against the secret."""
    delivery = request.headers.get(DELIVERY_HEADER, "").strip()
    if not delivery:
        raise WebhookRejected(400, f"missing {DELIVERY_HEADER} header")
    if not request.headers.get(EVENT_HEADER, "").strip():
        raise WebhookRejected(400, f"missing {EVENT_HEADER} header")
    given = request.headers.get(SIGNATURE_HEADER, "")
    if secret is None:
        refuse_unsigned(allow_unsigned, "no webhook_secret configured: cannot verify deliveries")
    elif not given:
        refuse_unsigned(allow_unsigned, "missing X-Hub-Signature-256")
    elif not signature_matches(given, sign(secret, request.body)):
        raise WebhookRejected(401, "bad or missing X-Hub-Signature-256")
    payload_of(request)
    return delivery


def payload_of(request: WebhookRequest) -> dict[str, Any]:
    data = load_json(request.body)
    if not isinstance(data, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    return data


def issue_ref(source: str, repo_full_name: str, number: int) -> ObjectRef:
    return ObjectRef(source, "issue", f"{repo_full_name}#{number}")


def parse(request: WebhookRequest, source: str) -> list[Hint]:
    """`issues` and `issue_comment` name an issue that may have changed; the rest: nothing."""
    event = request.headers.get(EVENT_HEADER, "")
    if event not in ISSUE_EVENTS:
        return []
    payload = payload_of(request)
    issue = payload.get("issue")
    repo = payload.get("repository")
    if not (isinstance(issue, dict) and isinstance(repo, dict)):
        return []
    if issue.get("pull_request"):  # pull requests are issues to the API; syncd ignores them
        return []
    number, full_name = issue.get("number"), repo.get("full_name")
    if not (isinstance(number, int) and isinstance(full_name, str)):
        return []
    return [Hint(issue_ref(source, full_name, number))]
