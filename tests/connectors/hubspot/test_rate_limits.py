"""429s and client-side rate limits, on a FakeClock shared by the fake and the connector."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.deals import ApiException
from urllib3.util import Retry

from syncd.errors import TransientError, UncertainError
from syncd.model import ActionContext, ObjectRef


def test_429_with_retry_after_is_transient_and_blocks_the_limiter(fake, connector, clock):
    deal = fake.create_deal(dealname="Ocean")
    fake.fail_next(1, 429, retry_after=7)
    with pytest.raises(TransientError) as failed:
        connector.fetch(ObjectRef("hubspot", "deal", deal))
    assert failed.value.retry_after == 7.0

    started = clock.now()
    assert connector.fetch(ObjectRef("hubspot", "deal", deal)) is not None
    assert (clock.now() - started).total_seconds() >= 7  # nobody called before Retry-After


def test_the_fakes_own_limit_answers_429_with_retry_after(fake, server):
    fake.limits.general_limit = 3
    deal = fake.create_deal(dealname="Ocean")
    deals = HubSpot(
        access_token=fake.token, host=server.url, retry=Retry(0, respect_retry_after_header=False)
    ).crm.deals.basic_api
    for _ in range(3):
        deals.get_by_id(deal)
    with pytest.raises(ApiException) as refused:
        deals.get_by_id(deal)
    assert refused.value.status == 429
    assert float(refused.value.headers["Retry-After"]) >= 1
    assert fake.limits.over_limit == 1


def test_remaining_zero_makes_the_connector_wait_instead_of_hitting_429(
    fake, make_connector, clock
):
    fake.limits.general_limit = 3
    deal = fake.create_deal(dealname="Ocean")
    connector = make_connector(requests_per_10s=100)  # believes it may send far more
    for _ in range(3):
        connector.fetch(ObjectRef("hubspot", "deal", deal))
    assert fake.limits.over_limit == 0
    assert clock.slept  # X-HubSpot-RateLimit-Remaining: 0 was honoured


def test_a_burst_within_the_configured_limits_never_exceeds_the_fakes(fake, make_connector, clock):
    fake.limits.general_limit = 10
    fake.limits.search_limit = 2
    deals = [fake.create_deal(dealname=f"d{i}") for i in range(5)]
    connector = make_connector(requests_per_10s=10, search_requests_per_second=2)
    started = clock.now()

    for _ in range(4):
        for deal in deals:
            assert connector.fetch(ObjectRef("hubspot", "deal", deal)) is not None
    for _ in range(6):
        connector.poll("deal", None)

    assert fake.limits.over_limit == 0
    assert len(fake.app.log) > 30  # the burst was real: several windows' worth
    assert (clock.now() - started).total_seconds() >= 20  # the limiter waited, on the clock


def test_server_errors_on_reads_are_transient_and_on_writes_uncertain(fake, connector):
    deal = fake.create_deal(dealname="Ocean")
    fake.fail_next(1, 503)
    with pytest.raises(TransientError) as read_error:
        connector.fetch(ObjectRef("hubspot", "deal", deal))
    assert not isinstance(read_error.value, UncertainError)
    fake.fail_next(1, 0, method="POST", path="/notes$", applied_first=True)  # reset after write
    spec = connector.actions["add_note"]
    params = spec.params(deal_id=deal, body="hello")
    with pytest.raises(UncertainError):
        spec.perform(connector, params, ActionContext("k1", "rule", 1))
    assert fake.notes_of(deal) and "hello" in fake.notes_of(deal)[0]
    assert "fake-hubspot-token" not in str(read_error.value)
