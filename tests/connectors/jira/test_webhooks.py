"""Jira webhook deliveries: signature, delivery id, hints."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from connectors.jira import JiraConnector
from syncd.errors import WebhookRejected
from syncd.model import Hint, ObjectRef, WebhookRequest
from syncd_sandbox.jira.fake import FakeJira

from .conftest import SECRET


def _request(headers: dict[str, str], body: bytes) -> WebhookRequest:
    return WebhookRequest(
        "POST",
        "https://syncd.example.org/webhooks/jira",
        {k.lower(): v for k, v in headers.items()},
        body,
        0,
    )


@pytest.fixture
def signed(make_connector: Callable[..., JiraConnector]) -> JiraConnector:
    return make_connector(webhook_secret=SecretStr(SECRET))


@pytest.fixture
def issue_key(fake_jira: FakeJira) -> str:
    issue = fake_jira.user_create("OPS", "Hub down", labels=["ops"])
    fake_jira.user_update(issue.key, status="In Progress")
    return issue.key


def test_a_signed_delivery_is_accepted_and_hints_at_its_issue(
    signed: JiraConnector, fake_jira: FakeJira, issue_key: str
) -> None:
    headers, body = fake_jira.webhook_request(issue_key, secret=SECRET, identifier="wh-1")
    request = _request(headers, body)

    assert signed.verify_webhook(request) == "wh-1"
    assert signed.parse_webhook(request) == [Hint(ObjectRef("jira", "issue", issue_key))]
    assert json.loads(body)["changelog"]["items"][0]["toString"] == "In Progress"


def test_an_unsigned_delivery_is_refused_when_no_secret_is_configured(
    connector: JiraConnector, fake_jira: FakeJira, issue_key: str
) -> None:
    """Issue 14 item 3: no secret no longer means "accept anything"."""
    headers, body = fake_jira.webhook_request(
        issue_key, event="jira:issue_created", identifier="wh-2"
    )
    assert "x-hub-signature" not in headers
    with pytest.raises(WebhookRejected) as refused:
        connector.verify_webhook(_request(headers, body))
    assert refused.value.status == 401
    assert "allow_unsigned" in refused.value.reason


def test_an_unsigned_delivery_is_accepted_only_with_allow_unsigned(
    make_connector: Callable[..., JiraConnector], fake_jira: FakeJira, issue_key: str
) -> None:
    connector = make_connector(allow_unsigned=True)
    headers, body = fake_jira.webhook_request(
        issue_key, event="jira:issue_created", identifier="wh-2"
    )
    assert connector.verify_webhook(_request(headers, body)) == "wh-2"


@pytest.mark.parametrize("secret", ["another-secret", None])
def test_a_bad_or_missing_signature_is_refused_with_401(
    signed: JiraConnector, fake_jira: FakeJira, issue_key: str, secret: str | None
) -> None:
    headers, body = fake_jira.webhook_request(issue_key, secret=secret)
    with pytest.raises(WebhookRejected) as refused:
        signed.verify_webhook(_request(headers, body))
    assert refused.value.status == 401
    assert SECRET not in refused.value.reason


def test_a_body_changed_after_signing_is_refused(
    signed: JiraConnector, fake_jira: FakeJira, issue_key: str
) -> None:
    headers, body = fake_jira.webhook_request(issue_key, secret=SECRET)
    with pytest.raises(WebhookRejected) as refused:
        signed.verify_webhook(_request(headers, body.replace(b"OPS-1", b"OPS-2")))
    assert refused.value.status == 401


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"no": "event"}',
        b'{"webhookEvent": "jira:issue_updated"}',
        b'{"webhookEvent": "jira:issue_updated", "issue": {"key": ""}}',
    ],
)
def test_a_malformed_body_is_refused_with_400(signed: JiraConnector, body: bytes) -> None:
    headers = {"x-hub-signature": _sign(body), "x-atlassian-webhook-identifier": "x"}
    with pytest.raises(WebhookRejected) as refused:
        signed.verify_webhook(_request(headers, body))
    assert refused.value.status == 400


def test_a_retried_delivery_keeps_its_delivery_id(
    signed: JiraConnector, fake_jira: FakeJira, issue_key: str
) -> None:
    first = fake_jira.webhook_request(issue_key, secret=SECRET, identifier="wh-9")
    fake_jira.clock.advance(600)  # type: ignore[attr-defined]
    retry = fake_jira.webhook_request(issue_key, secret=SECRET, identifier="wh-9", retry=1)
    other = fake_jira.webhook_request(issue_key, secret=SECRET, identifier="wh-10")

    assert first[1] != retry[1]  # a later timestamp in the body...
    ids = [signed.verify_webhook(_request(h, b)) for h, b in (first, retry, other)]
    assert ids == ["wh-9", "wh-9", "wh-10"]  # ...and still the same delivery


def test_events_other_than_issue_events_give_no_hints(signed: JiraConnector) -> None:
    body = json.dumps({"webhookEvent": "comment_created", "comment": {"id": "1"}}).encode()
    request = _request({"x-hub-signature": _sign(body)}, body)
    assert signed.verify_webhook(request).startswith("sha256:")
    assert signed.parse_webhook(request) == []


def _sign(body: bytes) -> str:
    from connectors.jira.webhooks import signature

    return signature(SECRET, body)
