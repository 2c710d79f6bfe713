"""The published JSON Schema of mapping files matches the code and accepts the shipped rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from syncd.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "mapping.schema.json"
SHIPPED = sorted((ROOT / "mappings").rglob("*.yaml")) + sorted((ROOT / "mappings").rglob("*.yml"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text())


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_command_matches_the_committed_file() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout == COMMITTED.read_text(), (
        "docs/mapping.schema.json is out of date: run "
        "`syncd schema --output docs/mapping.schema.json`"
    )


def test_schema_command_writes_the_same_text_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = CliRunner().invoke(main, ["schema", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == COMMITTED.read_text()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_mapping_files_validate(schema: dict[str, Any], path: Path) -> None:
    document = YAML(typ="safe").load(path.read_text())
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(schema).iter_errors(document)
    ]
    assert errors == []


SAMPLE = """
rules:
  - id: new-hub
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    once_per_object: true
    if: {amount: {gte: 1000}}
    do:
      - github.create_issue: {repo: o/r, title: "{{ deal.name }}", body: {template: t.j2}}
    examples:
      - object: {name: A, dealstage: closedwon}
        previous: {dealstage: contractsent}
        expect: [{action: github.create_issue, title: A}]
  - id: created
    when: {source: airtable, object: lead, created: true}
    do: [{email.send: {to: a@b.org}}]
  - id: expiring
    when: {source: hubspot, object: deal, date: end_date, offset: -60d, at: "09:00",
           timezone: America/Los_Angeles}
    do: [{email.send: {to: a@b.org}}]
  - id: follow-up
    when: {source: hubspot, object: deal, entered: {field: dealstage, value: Qualified},
           offset: 7d}
    do: [{email.send: {to: a@b.org}}]
  - id: quarterly
    when: {cron: "0 9 1 */3 *", for_each: {source: jira, object: epic,
           query: {jql: "labels = client-epic"}}}
    guarantee: at_most_once
    do: [{jira.create_issue: {summary: "{{ epic.summary }}"}}]
"""


def test_schema_accepts_every_trigger_kind(schema: dict[str, Any]) -> None:
    document = YAML(typ="safe").load(SAMPLE)
    assert list(validator(schema).iter_errors(document)) == []


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda r: r.update(unknown_key=1), "rules.0"),
        (lambda r: r.update(id="Not A Slug"), "rules.0.id"),
        (lambda r: r.update(do=[]), "rules.0.do"),
        (lambda r: r.pop("when"), "rules.0"),
        (lambda r: r.update(guarantee="sometimes"), "rules.0.guarantee"),
        (lambda r: r["when"].update(history="some"), "rules.0.when"),
    ],
)
def test_schema_rejects_malformed_rules(schema: dict[str, Any], mutate, where: str) -> None:
    document = YAML(typ="safe").load(SAMPLE)
    mutate(document["rules"][0])
    errors = list(validator(schema).iter_errors(document))
    assert errors
    assert any(".".join(map(str, e.absolute_path)).startswith(where) for e in errors)
