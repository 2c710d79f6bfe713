"""The operator table of `if:` conditions, nesting, missing fields and value aliases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from syncd.mapping.conditions import ConditionError, ConditionValueError, compile_condition

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def holds(condition: dict[str, Any], **fields: Any) -> bool:
    return compile_condition(condition).test({"__now__": NOW, **fields})


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        ({"stage": "won"}, {"stage": "won"}, True),  # a bare value means eq
        ({"stage": "won"}, {"stage": "lost"}, False),
        ({"stage": {"eq": "won"}}, {"stage": "won"}, True),
        ({"amount": {"eq": 5}}, {"amount": 5}, True),
        ({"stage": {"ne": "won"}}, {"stage": "lost"}, True),
        ({"stage": {"ne": "won"}}, {"stage": "won"}, False),
        ({"country": {"in": ["FR", "BE"]}}, {"country": "BE"}, True),
        ({"country": {"in": ["FR", "BE"]}}, {"country": "DE"}, False),
        ({"country": {"not_in": ["FR", "BE"]}}, {"country": "DE"}, True),
        ({"country": {"not_in": ["FR", "BE"]}}, {"country": "FR"}, False),
        ({"tags": {"contains": "vip"}}, {"tags": ["a", "vip"]}, True),
        ({"tags": {"contains": "vip"}}, {"tags": ["a", "vipx"]}, False),
        ({"name": {"contains": "Uni"}}, {"name": "Big University"}, True),
        ({"name": {"contains": "uni"}}, {"name": "Big University"}, False),
        ({"tags": {"contains": "vip"}}, {"tags": 42}, False),
        ({"name": {"regex": "^Acme( Inc)?$"}}, {"name": "Acme Inc"}, True),
        ({"name": {"regex": "^Acme$"}}, {"name": "Acme Inc"}, False),
        ({"name": {"regex": "x"}}, {"name": 12}, False),  # a regex only matches text
    ],
)
def test_equality_membership_and_text_operators(
    condition: dict[str, Any], fields: dict[str, Any], expected: bool
) -> None:
    assert holds(condition, **fields) is expected


@pytest.mark.parametrize(
    ("op", "actual", "bound", "expected"),
    [
        ("gt", 1500, 1000, True),
        ("gt", 1000, 1000, False),
        ("gte", 1000, 1000, True),
        ("gte", 999.5, 1000, False),
        ("lt", 3, 10, True),
        ("lt", 10, 10, False),
        ("lte", 10, 10, True),
        ("lte", 11, 10, False),
        # numeric strings compare as numbers (CRMs send "1500"), not as text ("9" > "10")
        ("gt", "1500", 1000, True),
        ("gt", "9", "10", False),
        ("lt", "9", "10", True),
        ("gte", "1000.0", "1000", True),
        # numbers as people type them: thousands separators, a currency symbol, a sign
        ("gte", "1,500", 1000, True),
        ("lt", "1,500", 1000, False),
        ("gte", "$900", 900, True),
        ("lt", "-1,250.50", 0, True),
        ("gt", "€ 80", 79.5, True),
        ("gt", "1e3", 999, True),
        # no value: the comparison does not hold (and is no error)
        ("gt", None, 5, False),
        ("gt", "", 5, False),
        # text against text is compared as text
        ("gt", "b", "a", True),
    ],
)
def test_ordering_operators(op: str, actual: Any, bound: Any, expected: bool) -> None:
    assert holds({"amount": {op: bound}}, amount=actual) is expected


@pytest.mark.parametrize("actual", ["abc", "1.500,00", "12 users", "nan", True, [3]])
def test_a_value_that_is_not_a_number_fails_the_rule_instead_of_not_firing(actual: Any) -> None:
    with pytest.raises(ConditionValueError, match="is not a number"):
        holds({"num_users": {"gte": 500}}, num_users=actual)


@pytest.mark.parametrize(
    ("fields", "wanted", "expected"),
    [
        ({"website": "https://x.org"}, True, True),
        ({"website": ""}, True, False),
        ({"website": None}, True, False),
        ({}, True, False),
        ({}, False, True),
        ({"website": "https://x.org"}, False, False),
        ({"website": 0}, True, True),
    ],
)
def test_exists(fields: dict[str, Any], wanted: bool, expected: bool) -> None:
    assert holds({"website": {"exists": wanted}}, **fields) is expected


@pytest.mark.parametrize(
    ("op", "actual", "bound", "expected"),
    [
        ("before", "2026-01-15", "2026-02-01", True),
        ("before", "2026-02-15", "2026-02-01", False),
        ("after", "2026-02-15T10:00:00Z", "2026-02-01", True),
        ("after", "2026-01-31T23:59:59+00:00", "2026-02-01", False),
        ("before", date(2026, 1, 1), "2026-01-02", True),
        ("after", 1767225600000, "2025-12-31", True),  # epoch ms (2026-01-01)
        # relative to the rule's "now" (2026-03-01 12:00 UTC)
        ("after", "2026-02-10", "now-30d", True),
        ("after", "2026-01-20", "now-30d", False),
        ("before", "2026-03-05", "now+7d", True),
        ("before", "2026-03-09", "now+7d", False),
        ("before", "2026-02-28", "now", True),
        ("before", "not a date", "now", False),
        ("after", None, "2020-01-01", False),
    ],
)
def test_date_operators(op: str, actual: Any, bound: Any, expected: bool) -> None:
    assert holds({"end_date": {op: bound}}, end_date=actual) is expected


def test_several_operators_on_one_field_must_all_hold() -> None:
    condition = {"amount": {"gte": 100, "lt": 1000}}
    assert holds(condition, amount=500)
    assert not holds(condition, amount=1000)
    assert not holds(condition, amount=50)


def test_several_fields_must_all_hold() -> None:
    condition = {"stage": "won", "amount": {"gte": 100}}
    assert holds(condition, stage="won", amount=100)
    assert not holds(condition, stage="won", amount=99)
    assert not holds(condition, stage="lost", amount=100)


def test_all_any_not_nest() -> None:
    condition = {
        "all": [
            {"amount": {"gte": 1000}},
            {
                "any": [
                    {"company.country": {"in": ["FR", "BE"]}},
                    {"not": {"tags": {"contains": "internal"}}},
                ]
            },
        ]
    }
    fr = {"country": "FR"}
    de = {"country": "DE"}
    assert holds(condition, amount=1000, company=fr, tags=["internal"])
    assert holds(condition, amount=1000, company=de, tags=["vip"])
    assert not holds(condition, amount=1000, company=de, tags=["internal"])
    assert not holds(condition, amount=999, company=fr, tags=[])


def test_not_negates() -> None:
    assert holds({"not": {"stage": "lost"}}, stage="won")
    assert not holds({"not": {"stage": "lost"}}, stage="lost")


def test_dotted_paths_reach_nested_values() -> None:
    assert holds(
        {"company.owner.email": {"regex": "@example\\.org$"}},
        company={"owner": {"email": "a@example.org"}},
    )
    assert not holds({"company.owner.email": {"exists": True}}, company={"owner": "bob"})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"missing": "x"}, False),
        ({"missing": {"ne": "x"}}, True),
        ({"missing": {"in": ["x"]}}, False),
        ({"missing": {"not_in": ["x"]}}, True),
        ({"missing": {"contains": "x"}}, False),
        ({"missing": {"regex": "."}}, False),
        ({"missing": {"gt": 0}}, False),
        ({"missing": {"lte": 0}}, False),
        ({"missing": {"before": "now"}}, False),
        ({"missing": {"after": "2000-01-01"}}, False),
        ({"missing.deeper": {"eq": None}}, False),  # absent is not the same as null
        ({"not": {"missing": "x"}}, True),
    ],
)
def test_missing_fields(condition: dict[str, Any], expected: bool) -> None:
    assert holds(condition, present=1) is expected


STAGES = {"Closed Won": "closedwon", "Qualified": "qualifiedtobuy"}


@pytest.mark.parametrize(
    ("condition", "stage", "expected"),
    [
        ({"dealstage": "Closed Won"}, "closedwon", True),  # label matches the id
        ({"dealstage": "closedwon"}, "closedwon", True),  # the id itself still works
        ({"dealstage": {"eq": "Closed Won"}}, "qualifiedtobuy", False),
        ({"dealstage": {"ne": "Closed Won"}}, "closedwon", False),
        ({"dealstage": {"in": ["Qualified", "Closed Won"]}}, "qualifiedtobuy", True),
        ({"dealstage": {"not_in": ["Closed Won"]}}, "closedwon", False),
        ({"dealstage": {"not_in": ["Closed Won"]}}, "qualifiedtobuy", True),
    ],
)
def test_value_aliases(condition: dict[str, Any], stage: str, expected: bool) -> None:
    compiled = compile_condition(condition, {"dealstage": STAGES})
    assert compiled.test({"dealstage": stage}) is expected


def test_aliases_apply_only_to_their_field() -> None:
    compiled = compile_condition({"pipeline": "Closed Won"}, {"dealstage": STAGES})
    assert not compiled.test({"pipeline": "closedwon"})
    assert compiled.test({"pipeline": "Closed Won"})


def test_describe_names_field_operator_and_value() -> None:
    assert compile_condition({"amount": {"gte": 1000}}).describe == "amount gte 1000"
    assert compile_condition({"not": {"x": 1}}).describe == "not (x eq 1)"


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        ({"amount": {"greater": 1}}, ("if", "amount", "greater"), "unknown operator 'greater'"),
        ({"country": {"in": "FR"}}, ("if", "country", "in"), "'in' takes a list"),
        ({"country": {"not_in": "FR"}}, ("if", "country", "not_in"), "'not_in' takes a list"),
        ({"name": {"regex": "(unclosed"}}, ("if", "name", "regex"), "bad regex"),
        ({"end": {"before": "someday"}}, ("if", "end", "before"), "'before' takes a date"),
        ({"any": []}, ("if", "any"), "non-empty list"),
        ({"all": {"a": 1}}, ("if", "all"), "non-empty list"),
        ({"any": [{"a": 1}, "oops"]}, ("if", "any", 1), "a condition is a table"),
        ({"not": {"x": {"bad": 1}}}, ("if", "not", "x", "bad"), "unknown operator 'bad'"),
    ],
)
def test_condition_errors_name_their_path(
    condition: dict[str, Any], path: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(condition)
    assert caught.value.path == path
    assert message in caught.value.message


def test_numeric_regex_pattern() -> None:
    assert holds({"zip": {"regex": 75}}, zip="75001")
