"""The connector contract (syncd/connector.py), checked the same way for every connector
against its fake, through its real client library: webhooks, poll cursors, fetch, actions
with their finders, and errors sorted by class. A check a connector cannot have (email has
no webhooks) is skipped with the reason its harness gives."""

from __future__ import annotations

import pytest

from syncd.errors import PermanentError, TransientError, WebhookRejected
from syncd.model import ActionResult, ObjectRef, Observation
from tests.contract.harnesses import RATE_LIMITED, REFUSED, SERVER_ERROR, Harness


def poll_all(harness: Harness, cursor: str | None) -> tuple[list[Observation], str | None]:
    """Every page from `cursor` on, as the poller reads them."""
    seen: list[Observation] = []
    for _ in range(50):
        page = harness.connector.poll(harness.object_type, cursor)
        seen.extend(page.observations)
        cursor = page.cursor
        if not page.more:
            return seen, cursor
    raise AssertionError("poll does not end")


def ids(observations: list[Observation]) -> list[str]:
    return [o.ref.id for o in observations]


# -- webhooks -----------------------------------------------------------------------------


def test_signed_delivery_is_verified_and_names_the_changed_object(harness: Harness) -> None:
    harness.require("webhooks")
    ref = harness.create()
    harness.change(ref)
    request = harness.delivery(ref)

    delivery_id = harness.connector.verify_webhook(request)
    hints = harness.connector.parse_webhook(request)

    assert isinstance(delivery_id, str) and delivery_id
    assert ref in [hint.ref for hint in hints]


def test_a_bad_signature_is_refused(harness: Harness) -> None:
    harness.require("webhooks")
    ref = harness.create()
    harness.change(ref)
    good = harness.delivery(ref)
    # Same headers, one more byte of body (still valid JSON): the signature no longer fits.
    tampered = harness.webhook_request(good.headers, good.body + b" ")

    with pytest.raises(WebhookRejected) as refused:
        harness.connector.verify_webhook(tampered)
    assert 400 <= refused.value.status < 500


@pytest.mark.parametrize("body", [b"{not json", b'{"truncated": ', b"\xff\xfe"])
def test_a_malformed_body_is_refused_even_when_signed(harness: Harness, body: bytes) -> None:
    harness.require("webhooks")
    with pytest.raises(WebhookRejected) as refused:
        harness.connector.verify_webhook(harness.signed(body))
    assert 400 <= refused.value.status < 500


@pytest.mark.parametrize("body", [b"[]", b"{}", b'"text"', b'{"unexpected": [1, 2]}'])
def test_a_signed_body_of_the_wrong_shape_never_crashes(harness: Harness, body: bytes) -> None:
    """Refused at verification, or verified and yielding no hint: never another exception."""
    harness.require("webhooks")
    request = harness.signed(body)
    try:
        harness.connector.verify_webhook(request)
    except WebhookRejected as refused:
        assert 400 <= refused.status < 500
        return
    assert all(isinstance(h.ref, ObjectRef) for h in harness.connector.parse_webhook(request))


# -- poll ---------------------------------------------------------------------------------


def test_poll_returns_an_object_once_then_again_after_a_change(harness: Harness) -> None:
    harness.require("poll")
    ref = harness.create()

    first, cursor = poll_all(harness, None)
    assert ref.id in ids(first)
    assert all(o.ref.type == harness.object_type for o in first)

    again, cursor = poll_all(harness, cursor)
    if harness.poll_overlap is None:
        assert ref.id not in ids(again)
    else:  # listed again by design: then unchanged, so the engine drops it by version
        seen = {o.ref.id: o.version for o in first}
        assert all(o.version == seen[o.ref.id] for o in again if o.ref.id == ref.id)

    harness.change(ref)
    after, _ = poll_all(harness, cursor)
    assert ref.id in ids(after)
    newest = max(o.version or 0 for o in after if o.ref.id == ref.id)
    assert newest > max(o.version or 0 for o in first if o.ref.id == ref.id)


# -- fetch --------------------------------------------------------------------------------


def test_fetch_gives_a_version_that_grows_with_a_change(harness: Harness) -> None:
    harness.require("fetch")
    ref = harness.create()

    before = harness.connector.fetch(ref)
    harness.change(ref)
    after = harness.connector.fetch(ref)

    assert before is not None and after is not None
    assert before.ref == ref == after.ref
    assert before.version is not None and after.version is not None
    assert after.version > before.version
    assert after.fields != before.fields


def test_fetch_of_a_missing_object_is_none(harness: Harness) -> None:
    harness.require("fetch")
    assert harness.connector.fetch(harness.missing_ref()) is None


def test_fetch_of_a_deleted_object_is_none_or_a_tombstone(harness: Harness) -> None:
    harness.require("fetch")
    ref = harness.create()
    harness.delete(ref)
    found = harness.connector.fetch(ref)
    assert found is None or found.deleted


# -- actions ------------------------------------------------------------------------------


def test_an_action_gives_a_result_and_its_effect(harness: Harness) -> None:
    ref = harness.create()
    before = harness.effects(ref)

    result = harness.perform(ref, key="contract:1")

    assert isinstance(result, ActionResult)
    assert harness.effects(ref) == before + 1


def test_the_finder_finds_an_applied_action_so_a_retry_adds_nothing(harness: Harness) -> None:
    harness.require("finder")
    ref = harness.create()
    name, _ = harness.action(ref)
    spec = harness.connector.actions[name]
    assert spec.find_existing is not None, f"{name} is not idempotent and has no finder"

    assert harness.find(ref, key="contract:1") is None
    made = harness.perform(ref, key="contract:1")
    count = harness.effects(ref)

    found = harness.find(ref, key="contract:1")
    assert found is not None
    assert found.external_id == made.external_id
    assert harness.find(ref, key="contract:other") is None
    assert harness.effects(ref) == count


def test_an_action_without_a_finder_is_idempotent(harness: Harness) -> None:
    """The other half of the rule: no finder means performing twice is performing once."""
    ref = harness.create()
    name, _ = harness.action(ref)
    spec = harness.connector.actions[name]
    if spec.find_existing is not None:
        pytest.skip(f"{harness.name}.{name} has a finder (checked above)")
    if not spec.idempotent:
        harness.require("finder")  # email: the harness says why there is none
        raise AssertionError(f"{name} has neither a finder nor idempotent=True")

    harness.perform(ref, key="contract:1")
    count = harness.effects(ref)
    harness.perform(ref, key="contract:1", attempt=2)
    assert harness.effects(ref) == count


# -- errors by class ----------------------------------------------------------------------

EXPECTED = {
    RATE_LIMITED: (TransientError, "rate_limit"),
    SERVER_ERROR: (TransientError, None),  # UncertainError is a TransientError
    REFUSED: (PermanentError, None),
}


@pytest.mark.parametrize("kind", [RATE_LIMITED, SERVER_ERROR, REFUSED])
def test_an_action_failure_maps_to_its_error_class(harness: Harness, kind: str) -> None:
    expected, capability = EXPECTED[kind]
    if capability:
        harness.require(capability)
    ref = harness.create()
    harness.fail_next(kind, harness.action_method)
    with pytest.raises(expected) as raised:
        harness.perform(ref, key="contract:1")
    if kind == REFUSED:
        assert not isinstance(raised.value, TransientError)


@pytest.mark.parametrize("kind", [RATE_LIMITED, SERVER_ERROR, REFUSED])
def test_a_read_failure_maps_to_its_error_class(harness: Harness, kind: str) -> None:
    harness.require("fetch")
    harness.require("read_faults")
    expected, _ = EXPECTED[kind]
    ref = harness.create()
    harness.fail_next(kind, "GET")
    with pytest.raises(expected) as raised:
        harness.connector.fetch(ref)
    if kind == REFUSED:
        assert not isinstance(raised.value, TransientError)
