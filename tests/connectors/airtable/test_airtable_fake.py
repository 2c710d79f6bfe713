"""The fake Airtable itself: formulas, validation of what it receives, faults."""

from __future__ import annotations

import pytest
import requests

from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.airtable.fake_formula import (
    FormulaError,
    FormulaRecord,
    compile_formula,
    matches,
)
from syncd_sandbox.pytest_plugin import Served

T0 = 1_767_603_600_000  # 2026-01-05T09:00:00Z
RECORD = FormulaRecord(
    id="rec1",
    fields={"Status": "Active Service", "Fee": 1500, "Name": "O'Brien", "Tags": ["a", "b"]},
    created_ms=T0,
    modified_ms=T0 + 60_000,
)


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("{Status}='Active Service'", True),
        ('{Status}="Waiting"', False),
        ("AND({Status}='Active Service', {Fee}>1000)", True),
        ("AND({Status}='Active Service', {Fee}>=2000)", False),
        ("OR({Fee}<10, {Name}='O\\'Brien')", True),
        ("NOT({Missing}='x')", True),
        ("{Missing}=''", True),
        ("{Tags}='a, b'", True),
        ("IS_AFTER(LAST_MODIFIED_TIME(),'2026-01-05T09:00:30.000Z')", True),
        ("IS_AFTER(LAST_MODIFIED_TIME(),'2026-01-05T09:01:00.000Z')", False),
        ("IS_BEFORE(CREATED_TIME(), DATETIME_PARSE('2026-01-06'))", True),
        ("RECORD_ID()='rec1'", True),
        ("", True),
    ],
)
def test_formulas(formula: str, expected: bool) -> None:
    assert matches(compile_formula(formula), RECORD) is expected


@pytest.mark.parametrize("formula", ["{A", "FOO(1)", "AND(1,", "{A}=='x'", "IS_AFTER('x','y')"])
def test_bad_formulas_raise(formula: str) -> None:
    with pytest.raises(FormulaError):
        matches(compile_formula(formula), RECORD)


def test_bad_formula_is_a_422_over_http(fake: FakeAirtable, server: Served[FakeAirtable]) -> None:
    answer = requests.get(
        f"{server.url}/v0/{fake.base_id}/Leads",
        params={"filterByFormula": "NOPE()"},
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=5,
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["type"] == "INVALID_FILTER_BY_FORMULA"


def test_invalid_webhook_specification_is_refused(
    fake: FakeAirtable, server: Served[FakeAirtable]
) -> None:
    answer = requests.post(
        f"{server.url}/v0/bases/{fake.base_id}/webhooks",
        json={"notificationUrl": "https://x", "specification": {"options": {}}},
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=5,
    )
    assert answer.status_code == 422
    assert fake.webhooks.hooks == {}


def test_wrong_token_is_401(fake: FakeAirtable, server: Served[FakeAirtable]) -> None:
    answer = requests.get(
        f"{server.url}/v0/{fake.base_id}/Leads", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert answer.status_code == 401


def test_writing_a_computed_or_unknown_field_is_422(
    fake: FakeAirtable, server: Served[FakeAirtable]
) -> None:
    for fields in ({"Last Modified": "2026-01-01"}, {"Nmae": "x"}):
        answer = requests.post(
            f"{server.url}/v0/{fake.base_id}/Leads",
            json={"fields": fields},
            headers={"Authorization": f"Bearer {fake.token}"},
            timeout=5,
        )
        assert answer.status_code == 422
    assert fake.records("Leads") == []
