"""hubspot-api-client's answer parsing without its per-object costs (issue 17): timestamps
read by `datetime.fromisoformat`, one shared model Configuration; the observations read are
the same."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from dateutil.parser import parse as dateutil_parse
from hubspot.crm.associations.v4.configuration import Configuration as AssocConfiguration
from hubspot.crm.deals.api_client import ApiClient
from hubspot.crm.deals.configuration import Configuration as DealsConfiguration

from connectors.hubspot import HubSpotConnector
from connectors.hubspot.sdk_speed import MANGLED
from syncd.clock import FakeClock
from syncd.model import ObjectRef
from syncd_sandbox.hubspot.fake import FakeHubSpot


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-05T09:00:00.000Z",
        "2026-01-05T09:00:00Z",
        "2026-01-05T09:00:00.5Z",
        "2026-01-05T10:00:00.123+01:00",
        "2026-01-05T09:00:00.123456Z",
    ],
)
def test_hubspot_timestamps_read_as_the_sdks_parser_reads_them(text: str) -> None:
    parsed = getattr(ApiClient, MANGLED)(ApiClient.__new__(ApiClient), text)
    assert parsed == dateutil_parse(text)
    if text.endswith("Z"):  # read by fromisoformat (dateutil answers tzutc() or tzlocal())
        assert parsed.tzinfo is UTC


def test_a_timestamp_fromisoformat_cannot_read_goes_to_the_sdks_parser() -> None:
    parsed = getattr(ApiClient, MANGLED)(ApiClient.__new__(ApiClient), "Jan 5 2026 09:00 UTC")
    assert parsed == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_batch_read_makes_no_configuration_per_object(
    connector: HubSpotConnector,
    fake: FakeHubSpot,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = []
    for i in range(40):
        deal_id = fake.create_deal(dealname=f"Deal {i}", dealstage="lead")
        fake.add_company(deal_id, name=f"Company {i}")
        fake.move_deal(deal_id, "qualified", "proposal")
        ids.append(deal_id)
    # The API objects are built on first use (client.py), each with its client's own
    # Configuration: built before counting.
    connector.fetch_many([ObjectRef("hubspot", "deal", ids[0])])
    made = []
    for klass in (DealsConfiguration, AssocConfiguration):
        original = klass.__init__

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            made.append(type(self))
            _original(self, *args, **kwargs)

        monkeypatch.setattr(klass, "__init__", counting)
    observations = connector.fetch_many([ObjectRef("hubspot", "deal", i) for i in ids])
    assert made == []  # 40 deals, 120 history entries, 40 links: none built its own
    one = observations[ObjectRef("hubspot", "deal", ids[7])]
    assert one == connector.fetch(ObjectRef("hubspot", "deal", ids[7]))
    assert [value for _, value in one.history["dealstage"]] == ["lead", "qualified", "proposal"]
    assert one.context["company"]["name"] == "Company 7"


def test_the_batch_read_builds_no_sdk_models_and_reads_what_the_single_read_reads(
    connector: HubSpotConnector, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhooks' batch read takes the answer's JSON as is (`read_json`); every deal it
    reads equals what the single read (the SDK's models) reads."""
    from hubspot.crm.deals.models import simple_public_object, value_with_timestamp

    ids = []
    for i in range(12):
        deal_id = fake.create_deal(dealname=f"Deal {i}", dealstage="lead", amount=str(i))
        if i % 3 == 0:
            fake.move_deal(deal_id, "qualified", "proposal")
        if i % 4 == 0:
            fake.add_company(deal_id, name=f"Company {i}")
        ids.append(deal_id)
    built: list[str] = []
    for klass in (simple_public_object.SimplePublicObject, value_with_timestamp.ValueWithTimestamp):
        original = klass.__init__

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            built.append(type(self).__name__)
            _original(self, *args, **kwargs)

        monkeypatch.setattr(klass, "__init__", counting)
    batch = connector.fetch_many([ObjectRef("hubspot", "deal", i) for i in ids])
    assert built == []
    for deal_id in ids:
        assert batch[ObjectRef("hubspot", "deal", deal_id)] == connector.fetch(
            ObjectRef("hubspot", "deal", deal_id)
        )
