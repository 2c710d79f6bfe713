"""upsert / update actions, their idempotence under "applied, then 502", field checks."""

from __future__ import annotations

import pytest

from connectors.airtable import AirtableConnector
from syncd.errors import PermanentError, TransientError, UncertainError
from syncd.model import ActionContext, ActionResult
from syncd_sandbox.airtable.fake import FakeAirtable

CTX = ActionContext(key="rule-1:deal-42:0", rule_id="rule-1", attempt=1)


def perform(connector: AirtableConnector, name: str, **params: object) -> ActionResult:
    spec = connector.actions[name]
    return spec.perform(connector, spec.params(**params), CTX)


def rows(fake: FakeAirtable, table: str = "Active Hubs") -> list[dict[str, object]]:
    return [r["fields"] for r in fake.records(table)]


def test_actions_are_declared_idempotent(connector: AirtableConnector) -> None:
    assert connector.actions["upsert"].idempotent
    assert connector.actions["update"].idempotent


def test_upsert_creates_then_updates_the_same_row(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    first = perform(
        connector,
        "upsert",
        table="hub",
        merge_on=["Community"],
        fields={"Community": "Ocean", "Status": "Waiting"},
    )
    second = perform(
        connector,
        "upsert",
        table="hub",
        merge_on=["Community"],
        fields={"Community": "Ocean", "Status": "Active Service"},
    )
    assert first.external_id == second.external_id
    assert rows(fake) == [{"Community": "Ocean", "Status": "Active Service"}]
    assert second.url and second.url.endswith(f"/{second.external_id}")
    patch = [r for r in fake.app.log if r.method == "PATCH"][-1].json()
    assert patch["performUpsert"] == {"fieldsToMergeOn": ["Community"]}


def test_upsert_applied_then_502_is_uncertain_and_a_retry_leaves_one_row(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    fake.fail_next("PATCH", r"/Active%20Hubs$|/tbl[0-9]+$", status=502, applied=True)
    params = {
        "table": "hub",
        "merge_on": ["Community"],
        "fields": {"Community": "Ocean", "Monthly fee": 1000},
    }
    with pytest.raises(UncertainError):
        perform(connector, "upsert", **params)
    assert rows(fake) == [{"Community": "Ocean", "Monthly fee": 1000}]  # it was applied

    result = perform(connector, "upsert", **params)  # the executor performs it again

    assert rows(fake) == [{"Community": "Ocean", "Monthly fee": 1000}]
    assert result.external_id == fake.records("Active Hubs")[0]["id"]


def test_reset_connection_during_a_write_is_uncertain(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    fake.fail_next("PATCH", r"/tbl[0-9]+$", status=None, applied=True)
    with pytest.raises(UncertainError):
        perform(
            connector, "upsert", table="hub", merge_on=["Community"], fields={"Community": "Ocean"}
        )


def test_upsert_refused_before_applying_is_transient(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    fake.fail_next("PATCH", r"/tbl[0-9]+$", status=503, applied=False)
    with pytest.raises(TransientError):
        perform(
            connector, "upsert", table="hub", merge_on=["Community"], fields={"Community": "Ocean"}
        )
    assert rows(fake) == []


def test_update_writes_only_the_given_fields(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    record_id = fake.user_create("Leads", {"Name": "Ocean", "Status": "Active Lead"})
    result = perform(
        connector, "update", table="lead", record_id=record_id, fields={"Status": "Active Service"}
    )
    assert result.external_id == record_id
    fields = fake.records("Leads")[0]["fields"]
    assert (fields["Name"], fields["Status"]) == ("Ocean", "Active Service")


def test_update_of_a_missing_record_or_field_is_permanent(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    record_id = fake.user_create("Leads", {"Name": "Ocean"})
    with pytest.raises(PermanentError):
        perform(
            connector, "update", table="lead", record_id="rec99999999999999", fields={"Status": "x"}
        )
    with pytest.raises(PermanentError) as caught:
        perform(connector, "update", table="lead", record_id=record_id, fields={"Stauts": "x"})
    assert "UNKNOWN_FIELD_NAME" in str(caught.value)


def test_upsert_without_its_merge_key_is_permanent(connector: AirtableConnector) -> None:
    with pytest.raises(PermanentError):
        perform(
            connector, "upsert", table="hub", merge_on=["Community"], fields={"Status": "Waiting"}
        )


def test_upsert_many_batches_ten_rows_per_request(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    results = connector.upsert_many(
        "hub", ["Community"], [{"Community": f"c{i}", "Monthly fee": i} for i in range(23)]
    )
    assert len({r.external_id for r in results}) == 23
    patches = [r.json() for r in fake.app.log if r.method == "PATCH"]
    assert [len(p["records"]) for p in patches] == [10, 10, 3]
    again = connector.upsert_many("hub", ["Community"], [{"Community": "c5", "Monthly fee": 50}])
    assert again[0].external_id == results[5].external_id
    assert len(fake.records("Active Hubs")) == 23


def test_check_fields_names_the_unknown_ones_with_suggestions(
    connector: AirtableConnector,
) -> None:
    assert connector.check_fields("lead", ["Name", "Status"]) == []
    [problem] = connector.check_fields("lead", ["Name", "Stauts"])
    assert "'Stauts'" in problem and "'Status'" in problem
    assert connector.check_fields("deal", ["x"]) == ["unknown Airtable table alias 'deal'"]


def test_token_never_appears_in_errors(connector: AirtableConnector, fake: FakeAirtable) -> None:
    fake.token = "another-token"  # the connector's token is now refused (401)
    with pytest.raises(PermanentError) as caught:
        perform(
            connector, "upsert", table="hub", merge_on=["Community"], fields={"Community": "Ocean"}
        )
    assert connector.settings.token.get_secret_value() not in str(caught.value)
    assert "401" in str(caught.value)
