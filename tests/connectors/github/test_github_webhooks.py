"""Webhook verification and parsing with octokit's example payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.github import GitHubConnector
from connectors.github.webhooks import sign, signed_delivery
from syncd.errors import WebhookRejected
from syncd.model import ObjectRef, WebhookRequest

EXAMPLES = Path(__file__).parent / "contracts" / "webhook-examples"  # octokit/webhooks
PAYLOADS = sorted(
    p for event in ("issues", "issue_comment", "ping") for p in (EXAMPLES / event).glob("*.json")
)
assert len(PAYLOADS) >= 35, f"octokit's example payloads missing from {EXAMPLES}"
SECRET = "It's a Secret to Everybody"


def request(headers: dict[str, str], body: bytes) -> WebhookRequest:
    return WebhookRequest(
        "POST",
        "http://syncd.test/webhooks/github",
        {k.lower(): v for k, v in headers.items()},
        body,
        0,
    )


def delivery(path: Path) -> tuple[dict[str, str], bytes]:
    event = path.parent.name
    return signed_delivery(event, json.loads(path.read_text()), SECRET, f"guid-{path.stem}")


def test_known_answer_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, b"Hello, World!") == expected


def test_known_answer_delivery_verifies(connector: GitHubConnector) -> None:
    headers = {
        "X-GitHub-Delivery": "d-1",
        "X-GitHub-Event": "ping",
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",  # noqa: E501
    }
    # The vector's body is not a JSON object: the signature passes, the shape does not.
    with pytest.raises(WebhookRejected) as err:
        connector.verify_webhook(request(headers, b"Hello, World!"))
    assert err.value.status == 400


def test_examples_are_present() -> None:
    assert len(PAYLOADS) >= 30


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_signed_example_is_accepted_and_parsed(connector: GitHubConnector, path: Path) -> None:
    headers, body = delivery(path)
    req = request(headers, body)
    assert connector.verify_webhook(req) == f"guid-{path.stem}"

    payload = json.loads(body)
    hints = connector.parse_webhook(req)
    if path.parent.name == "ping" or payload["issue"].get("pull_request"):
        assert hints == []
    else:
        full_name, number = payload["repository"]["full_name"], payload["issue"]["number"]
        assert [h.ref for h in hints] == [ObjectRef("github", "issue", f"{full_name}#{number}")]


@pytest.mark.parametrize("path", PAYLOADS[::4], ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_tampered_example_is_rejected(connector: GitHubConnector, path: Path) -> None:
    headers, body = delivery(path)
    cases = {
        "wrong signature": ({**headers, "X-Hub-Signature-256": sign("other", body)}, body, 401),
        "no signature": (
            {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"},
            body,
            401,
        ),
        "body changed": (headers, body.replace(b"}", b" }", 1), 401),
        "no delivery id": (
            {k: v for k, v in headers.items() if k != "X-GitHub-Delivery"},
            body,
            400,
        ),
        "no event": ({k: v for k, v in headers.items() if k != "X-GitHub-Event"}, body, 400),
    }
    for name, (bad_headers, bad_body, status) in cases.items():
        with pytest.raises(WebhookRejected) as err:
            connector.verify_webhook(request(bad_headers, bad_body))
        assert err.value.status == status, name


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"'])
def test_non_object_bodies_are_rejected_with_400(connector: GitHubConnector, body: bytes) -> None:
    headers = {
        "X-GitHub-Delivery": "d",
        "X-GitHub-Event": "issues",
        "X-Hub-Signature-256": sign(SECRET, body),
    }
    with pytest.raises(WebhookRejected) as err:
        connector.verify_webhook(request(headers, body))
    assert err.value.status == 400


def test_without_a_configured_secret_nothing_is_accepted(make_connector) -> None:
    headers, body = delivery(PAYLOADS[0])
    with pytest.raises(WebhookRejected) as err:
        make_connector(webhook_secret=None).verify_webhook(request(headers, body))
    assert err.value.status == 401


def test_other_events_give_no_hints(connector: GitHubConnector) -> None:
    headers, body = signed_delivery("pull_request", {"action": "opened", "number": 1}, SECRET)
    req = request(headers, body)
    connector.verify_webhook(req)
    assert connector.parse_webhook(req) == []


def test_kept_headers_include_what_verification_needs(connector: GitHubConnector) -> None:
    assert {"x-github-delivery", "x-github-event", "x-hub-signature-256"} <= set(
        connector.webhook_headers
    )


def test_fake_sends_signed_issue_events_the_connector_accepts(
    fake, connector: GitHubConnector, gh
) -> None:
    received: list[WebhookRequest] = []

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        received.append(request(headers, body))
        return 200

    fake.transport = transport
    fake.add_hook(gh.repo, "http://syncd.test/webhooks/github", SECRET)
    issue = fake.open_issue(gh.repo, "Hello")
    fake.close_issue(gh.repo, issue.number)

    assert [r.headers["x-github-event"] for r in received] == ["issues", "issues"]
    for req in received:
        connector.verify_webhook(req)
        assert [h.ref.id for h in connector.parse_webhook(req)] == [f"{gh.repo}#{issue.number}"]
