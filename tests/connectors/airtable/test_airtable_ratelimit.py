"""5 requests/s per base on the client side; a 429 blocks the base for 30 s."""

from __future__ import annotations

import pytest

from connectors.airtable import AirtableConnector
from syncd.clock import FakeClock
from syncd.errors import TransientError
from syncd.model import ObjectRef
from syncd_sandbox.airtable.fake import FakeAirtable


def test_burst_of_50_requests_stays_under_the_limit(
    connector: AirtableConnector, fake: FakeAirtable, clock: FakeClock
) -> None:
    record_id = fake.user_create("Leads", {"Name": "Ocean"})
    start = clock.now()
    for _ in range(50):
        assert connector.fetch(ObjectRef("airtable", "lead", record_id)) is not None
    assert fake.over_limit_requests == 0
    assert len(fake.app.log) == 51  # the schema, then 50 reads: all served
    assert (clock.now() - start).total_seconds() >= 9.0  # 51 requests at 5/s


def test_the_fake_enforces_the_limit_when_a_client_does_not(
    fake: FakeAirtable, clock: FakeClock
) -> None:
    for _ in range(5):
        assert fake.rate_limit.check(clock.now().timestamp()) is None
    assert fake.rate_limit.check(clock.now().timestamp()) is not None
    clock.advance(seconds=29)
    assert fake.rate_limit.check(clock.now().timestamp()) is not None  # locked out
    assert fake.over_limit_requests == 2
    clock.advance(seconds=31)
    assert fake.rate_limit.check(clock.now().timestamp()) is None


def test_a_429_is_transient_with_30s_and_blocks_the_base_for_30s(
    connector: AirtableConnector, fake: FakeAirtable, clock: FakeClock
) -> None:
    record_id = fake.user_create("Leads", {"Name": "Ocean"})
    ref = ObjectRef("airtable", "lead", record_id)
    connector.fetch(ref)  # loads the schema
    fake.force_rate_limit()
    requests_before = len(fake.app.log)

    with pytest.raises(TransientError) as caught:
        connector.fetch(ref)
    assert caught.value.retry_after == 30
    assert len(fake.app.log) == requests_before + 1  # pyairtable did not retry by itself

    blocked_at = clock.now()
    assert connector.fetch(ref) is not None  # waits out the lock-out first
    assert (clock.now() - blocked_at).total_seconds() >= 30
    assert fake.over_limit_requests == 0
