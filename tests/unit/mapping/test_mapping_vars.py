"""`vars:` in a mapping file (a switch or a name set once, read as vars.* by rules), the
config's [syncd] vars that replace them per deployment, and examples that pin a setting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.mapping.loader import MappingError, Problem, load_rules
from syncd.mapping.planner import Change, plan_event_file
from syncd.mapping.rules import RuleSet
from syncd.mapping.templates import ENV
from syncd.model import ObjectRef

from .conftest import SHIPPED_MAPPINGS, WriteFile

SWITCHED = """
vars:
  tracker: github
  repo: org/engagements
rules:
  - id: via-github
    when: {source: localdb, object: deal, field: stage, to: won}
    if: {vars.tracker: github}
    do:
      - localdb.record: {title: "{{ vars.repo }}: {{ deal.name }}"}
    examples:
      - object: {name: Acme, stage: won}
        previous: {stage: open}
        expect: [{action: localdb.record, title: "org/engagements: Acme"}]
      - name: the other setting
        vars: {tracker: jira}
        object: {name: Acme, stage: won}
        previous: {stage: open}
        expect: []
  - id: via-jira
    when: {source: localdb, object: deal, field: stage, to: won}
    if: {vars.tracker: jira}
    do:
      - localdb.record: {title: "jira: {{ deal.name }}"}
"""


def _titles(rules: RuleSet) -> list[str]:
    change = Change(
        ObjectRef("localdb", "deal", "1"),
        {"name": "Acme", "stage": "won"},
        {"stage": "open"},
        {},
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return [a.params["title"] for a in plan_event_file(rules, change).actions]


def test_file_vars_steer_conditions_and_templates(
    write_mapping: WriteFile, load_ok: Callable[[], RuleSet]
) -> None:
    write_mapping(SWITCHED)
    assert _titles(load_ok()) == ["org/engagements: Acme"]


def test_config_vars_replace_the_file_s_and_examples_keep_the_file_s(
    write_mapping: WriteFile, mapping_dir: Path
) -> None:
    write_mapping(SWITCHED)
    # The examples (written for tracker: github) still pass: they run on the file's values.
    rules = load_rules([mapping_dir], vars={"tracker": "jira"})
    assert _titles(rules) == ["jira: Acme"]
    rules = load_rules([mapping_dir], vars={"repo": "org/other"})
    assert _titles(rules) == ["org/other: Acme"]


def test_a_config_var_no_file_declares_is_a_problem(
    write_mapping: WriteFile, mapping_dir: Path
) -> None:
    write_mapping(SWITCHED)
    with pytest.raises(MappingError) as caught:
        load_rules([mapping_dir], vars={"trackr": "jira"})
    (problem,) = caught.value.problems
    assert problem.field == "trackr" and "declared: repo, tracker" in problem.message


def test_vars_must_be_a_table(
    write_mapping: WriteFile, load_problems: Callable[[], list[Problem]]
) -> None:
    write_mapping("vars: [a, b]\nrules: []\n")
    (problem,) = load_problems()
    assert "`vars:` is a table" in problem.message


def test_an_example_with_the_wrong_expectation_for_its_setting_fails(
    write_mapping: WriteFile, load_problems: Callable[[], list[Problem]]
) -> None:
    write_mapping(SWITCHED.replace("vars: {tracker: jira}", "vars: {tracker: github}"))
    (problem,) = load_problems()
    assert problem.rule_id == "via-github" and "the other setting" in problem.field


def test_add_days_gives_a_due_date() -> None:
    now = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert ENV.from_string("{{ now | add_days(7) }}").render(now=now) == "2026-04-04"
    assert ENV.from_string("{{ '2026-12-30' | add_days(3) }}").render() == "2027-01-02"


def test_vars_are_not_fields_fetched_from_the_source(
    write_mapping: WriteFile, load_ok: Callable[[], RuleSet]
) -> None:
    from syncd.mapping.fields import referenced_fields

    write_mapping(SWITCHED)
    fields = referenced_fields(load_ok())[("localdb", "deal")]
    assert "vars" not in fields and {"name", "stage"} <= fields


def test_w16_with_a_misspelt_tracker_says_so_in_the_delivery_mail() -> None:
    shipped = SHIPPED_MAPPINGS
    rules = load_rules([shipped], vars={"delivery_tracker": "jria"})
    change = Change(
        ObjectRef("hubspot", "deal", "7"),
        {
            "dealname": "Acme hub",
            "dealstage": "Closed Won",
            "community_id": "acme",
            "community_long_name": "Acme",
            "amount": None,
            "start_date": None,
            "end_date": None,
            "membership_level": None,
            "cloud_provider": None,
            "cloud_region": None,
            "num_users": None,
            "community_short_name": None,
        },
        {"dealstage": "Contract Admin"},
        {"url": None, "owner": None, "company": {"name": "Acme"}, "contacts": []},
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    planned = [a for a in plan_event_file(rules, change).actions if a.rule_id.startswith("w16")]
    assert [a.name for a in planned] == ["email.send"]
    assert 'NOT CREATED: the switch delivery_tracker is "jria"' in planned[0].params["body"]
