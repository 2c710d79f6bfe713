"""The fields the loaded rules read (`syncd.mapping.fields`): what a connector fetches, and
when a template uses an object whole, so that nothing a rule may read is left out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from syncd import sdk
from syncd.mapping.fields import WHOLE_OBJECT, referenced_fields
from syncd.mapping.rules import RuleSet

from .conftest import SHIPPED_MAPPINGS, WriteFile

RULE = """
rules:
  - id: won
    when: {{source: localdb, object: deal, field: stage, to: won}}
    if: {{amount: {{gt: 10}}}}
    do:
      - localdb.record: {{title: "{title}"}}
"""


def deal_fields(write_mapping: WriteFile, load_ok: Callable[[], RuleSet], title: str) -> set[str]:
    write_mapping(RULE.format(title=title.replace('"', '\\"')))
    return referenced_fields(load_ok())[("localdb", "deal")]


def test_fields_read_by_name_are_fetched_and_no_more(
    write_mapping: WriteFile, load_ok: Callable[[], RuleSet]
) -> None:
    fields = deal_fields(
        write_mapping, load_ok, "{{ deal.name }} {{ deal['region'] }} {{ deal.company.name }}"
    )
    assert fields == {"stage", "amount", "name", "region", "company"}


@pytest.mark.parametrize(
    "title",
    [
        "{{ deal | tojson }}",  # a filter gets every field
        "{% set d = deal %}{{ d.company }}",  # read under another name
        "{% for key in ['name'] %}{{ deal[key] }}{% endfor %}",  # a field chosen when rendering
        "{% for k, v in deal.items() %}{{ k }}{% endfor %}",  # every field in turn
        "{{ deal.get(event.field) }}",  # a mapping's own methods
    ],
)
def test_a_deal_used_whole_may_read_any_field(
    write_mapping: WriteFile, load_ok: Callable[[], RuleSet], title: str
) -> None:
    assert WHOLE_OBJECT in deal_fields(write_mapping, load_ok, title)


def test_names_of_other_things_are_not_a_whole_deal(
    write_mapping: WriteFile, load_ok: Callable[[], RuleSet]
) -> None:
    fields = deal_fields(write_mapping, load_ok, "{{ event.new }} {{ now }} {{ vars | length }}")
    assert WHOLE_OBJECT not in fields


def test_the_sdk_names_the_same_marker() -> None:
    assert sdk.WHOLE_OBJECT == WHOLE_OBJECT


def test_shipped_mappings_read_the_deals_company() -> None:
    from syncd.mapping.loader import load_rules

    shipped = SHIPPED_MAPPINGS
    fields = referenced_fields(load_rules([shipped]))[("hubspot", "deal")]
    assert "company" in fields  # so the daemon reads associations for them


COLLECT_RULE = """
rules:
  - id: monthly
    when:
      cron: "0 9 1 * *"
      collect: {{source: localdb, object: deal, query: {{}}}}
    if: {{items: {{ne: []}}}}
    do:
      - localdb.record: {{title: "{title}"}}
"""


def test_collected_objects_used_in_a_template_are_read_whole(
    write_mapping: WriteFile, load_ok: Callable[[], RuleSet]
) -> None:
    write_mapping(COLLECT_RULE.format(title="{% for d in items %}{{ d.company }}{% endfor %}"))
    assert referenced_fields(load_ok())[("localdb", "deal")] == {WHOLE_OBJECT}


def test_collected_objects_a_template_does_not_use_are_not_read(
    write_mapping: WriteFile, load_ok: Callable[[], RuleSet]
) -> None:
    write_mapping(COLLECT_RULE.format(title="monthly digest"))
    assert referenced_fields(load_ok())[("localdb", "deal")] == set()
