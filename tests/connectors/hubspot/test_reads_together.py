"""Independent reads of a fetch go out together (issue 17: idle latency), and only while
HubSpot's rate-limit answer leaves room for all of them."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from connectors.hubspot.deals import BATCH, HISTORY_BATCH
from syncd.errors import PermanentError, TransientError, UncertainError
from syncd.http_errors import RateLimitedError
from syncd.model import ObjectRef
from syncd_sandbox.hubspot.fake import FakeHubSpot


class InFlight:
    """Counts the requests the fake is answering at once (a before and an after hook)."""

    def __init__(self, fake: FakeHubSpot, hold_seconds: float) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.hold_seconds = hold_seconds
        fake.app.before.insert(0, self.enter)
        fake.app.after.append(self.leave)

    def enter(self, request: Any) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.hold_seconds)  # real time: the others have time to arrive

    def leave(self, request: Any, response: Any) -> Any:
        with self.lock:
            self.now -= 1
        return response


def a_deal_with_context(fake: FakeHubSpot) -> str:
    deal = fake.create_deal(dealname="Ocean", dealstage="closedwon")
    fake.add_company(deal, name="Acme")
    fake.add_contact(deal, "Decision maker", firstname="Ada", lastname="L")
    return deal


def test_a_fetch_sends_the_deal_and_association_reads_together(fake, connector):
    deal = a_deal_with_context(fake)
    connector.reader.stages.stages()  # a first answer tells how much room there is
    in_flight = InFlight(fake, hold_seconds=0.2)
    before = len(fake.app.log)

    obs = connector.fetch_many([ObjectRef("hubspot", "deal", deal)])[
        ObjectRef("hubspot", "deal", deal)
    ]

    assert in_flight.most == 3  # deal batch read + company and contact associations
    assert len(fake.app.log) - before == 5  # as many requests as one at a time
    assert obs.context["company"]["name"] == "Acme"
    assert obs.context["contacts"][0]["roles"] == ["Decision maker"]


def test_a_single_fetch_reads_together_too(fake, connector):
    deal = a_deal_with_context(fake)
    connector.reader.stages.stages()
    in_flight = InFlight(fake, hold_seconds=0.2)

    obs = connector.fetch(ObjectRef("hubspot", "deal", deal))

    assert in_flight.most == 3
    assert obs is not None and obs.context["company"]["name"] == "Acme"


def test_reads_go_one_at_a_time_when_hubspot_says_little_room_is_left(fake, make_connector, clock):
    # Room for the first fan-out (3) and one more: the company and contact reads must not
    # go out together, or the second one gets a 429 that X-HubSpot-RateLimit-Remaining: 0
    # on the first one's answer would have prevented.
    fake.limits.general_limit = 5
    deal = a_deal_with_context(fake)
    connector = make_connector(requests_per_10s=100)  # believes it may send far more
    connector.reader.stages.stages()  # remaining 4
    InFlight(fake, hold_seconds=0.05)

    for _ in range(3):
        obs = connector.fetch(ObjectRef("hubspot", "deal", deal))
        assert obs is not None and obs.context["company"]["name"] == "Acme"

    assert fake.limits.over_limit == 0
    assert clock.slept  # the governor waited for the next window instead


def test_a_full_batch_sends_its_deal_and_association_reads_together(fake, connector):
    # A busy daemon's batch (issue 17): its inbox thread waits for one round trip, not for
    # two deal batch reads (50 deals each) and two association reads one after the other.
    deals = [a_deal_with_context(fake) for _ in range(BATCH)]
    connector.reader.stages.stages()
    in_flight = InFlight(fake, hold_seconds=0.2)
    before = len(fake.app.log)

    found = connector.fetch_many([ObjectRef("hubspot", "deal", d) for d in deals])

    deal_reads = BATCH // HISTORY_BATCH
    assert in_flight.most == deal_reads + 2
    # as many requests as one at a time: deals, 2 associations, companies, contacts
    assert len(fake.app.log) - before == deal_reads + 4
    assert len(found) == len(deals)
    for obs in found.values():
        assert obs.context["company"]["name"] == "Acme"
        assert obs.context["contacts"][0]["roles"] == ["Decision maker"]


def test_a_fetch_sends_its_reads_from_the_calling_thread(fake, connector):
    # Issue 17: the reads of an idle daemon's webhook waited for hand-offs to the read
    # threads and back. They are in flight together, each on a connection of its own, and
    # no thread but the caller's sends them.
    deal = a_deal_with_context(fake)
    connector.reader.stages.stages()
    in_flight = InFlight(fake, hold_seconds=0.2)
    before = set(threading.enumerate())

    connector.fetch_many([ObjectRef("hubspot", "deal", deal)])

    assert in_flight.most == 3
    assert connector.api._pool is None  # the read threads were never started
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("hubspot")]


def test_a_failed_read_among_others_fails_the_fetch_once_all_are_answered(fake, connector):
    deal = a_deal_with_context(fake)
    connector.reader.stages.stages()
    fake.fail_next(1, 429, path=r"/crm/v4/associations/deals/contacts/batch/read", retry_after=7)
    before = len(fake.app.log)

    with pytest.raises(RateLimitedError) as failed:
        connector.fetch_many([ObjectRef("hubspot", "deal", deal)])

    assert failed.value.retry_after == 7.0
    assert len(fake.app.log) - before == 3  # the deal and company reads were answered too
    assert connector.api.governor.in_flight == 0
    assert connector.api.remaining == 0  # a 429 says no room is left: no fan-out until told


@pytest.mark.parametrize(
    ("status", "error"), [(400, PermanentError), (500, TransientError), (0, TransientError)]
)
def test_a_batch_reads_errors_are_syncds(fake, connector, status, error):
    deal = a_deal_with_context(fake)
    fake.fail_next(1, status, path=r"/crm/v3/objects/deals/batch/read")

    with pytest.raises(error) as failed:
        connector.fetch_many([ObjectRef("hubspot", "deal", deal)])

    assert "HubSpot read" in str(failed.value)
    assert not isinstance(failed.value, UncertainError)  # a read: never "maybe applied"
    obs = connector.fetch_many([ObjectRef("hubspot", "deal", deal)])  # the next one works
    assert obs[ObjectRef("hubspot", "deal", deal)].context["company"]["name"] == "Acme"


def test_a_refused_connection_is_transient(fake, make_connector):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]  # nothing listens there
    connector = make_connector(base_url=f"http://127.0.0.1:{closed_port}")

    with pytest.raises(TransientError):
        connector.fetch_many([ObjectRef("hubspot", "deal", "1")])
