"""`syncd simulate` and `syncd explain` on an event file: what fires, what not, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from syncd.cli import main

RULES = """
rules:
  - id: big-win
    when: {source: localdb, object: deal, field: stage, to: won}
    if:
      region: EU
      amount: {gte: 1000}
    do:
      - localdb.record:
          title: "Won {{ deal.name }}"
          body: "{{ event.from }} -> {{ event.to }}, {{ deal.amount }}"
          labels: [sales, "{{ deal.region }}"]
      - localdb.set_fields: {type: deal, id: "{{ deal.id }}", fields: {announced: true}}
  - id: any-win
    when: {source: localdb, object: deal, field: stage, to: won}
    do:
      - localdb.record: {title: "{{ deal.name }} won"}
  - id: lost
    when: {source: localdb, object: deal, field: stage, to: lost}
    do:
      - localdb.record: {title: x}
  - id: new-deal
    when: {source: localdb, object: deal, created: true}
    do:
      - localdb.record: {title: x}
  - id: other-object
    when: {source: localdb, object: item, field: stage}
    do:
      - localdb.record: {title: x}
"""


@pytest.fixture
def rules_config(config_file: Path, mapping_dir: Path) -> Path:
    (mapping_dir / "deals.yaml").write_text(RULES)
    return config_file


def event_file(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "event.json"
    event = {
        "source": "localdb",
        "object": "deal",
        "id": "42",
        "fields": {"stage": "won", "name": "Acme", "region": "EU", "amount": 1500},
        "previous": {"stage": "open"},
    }
    event["fields"].update(fields)
    path.write_text(json.dumps(event))
    return path


def invoke(command: str, config: Path, event: Path) -> str:
    result = CliRunner().invoke(main, [command, "--config", str(config), "--event", str(event)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_explain_says_fired_and_names_the_first_failing_condition(
    rules_config: Path, tmp_path: Path
) -> None:
    out = invoke("explain", rules_config, event_file(tmp_path, amount=500))
    lines = {line.split(":")[0].split()[-1]: line for line in out.splitlines()}
    assert lines["big-win"] == "-     big-win: condition failed: amount gte 1000"
    assert lines["any-win"] == "FIRED any-win: fired -> localdb.record"
    assert "lost: stage changed 'open' -> 'won'; trigger wants from=None to='lost'" in out
    assert "new-deal: trigger is object created" in out
    assert "other-object: trigger is for localdb.item" in out


def test_explain_names_the_first_of_several_failing_conditions(
    rules_config: Path, tmp_path: Path
) -> None:
    out = invoke("explain", rules_config, event_file(tmp_path, region="US", amount=5))
    assert "big-win: condition failed: region eq 'EU'" in out


def test_explain_fired_lists_every_planned_action(rules_config: Path, tmp_path: Path) -> None:
    out = invoke("explain", rules_config, event_file(tmp_path))
    assert "FIRED big-win: fired -> localdb.record, localdb.set_fields" in out


def test_explain_when_the_watched_field_did_not_change(rules_config: Path, tmp_path: Path) -> None:
    path = tmp_path / "same.json"
    path.write_text(
        json.dumps(
            {
                "source": "localdb",
                "object": "deal",
                "id": "1",
                "fields": {"stage": "won"},
                "previous": {"stage": "won"},
            }
        )
    )
    out = invoke("explain", rules_config, path)
    assert "-     any-win: field stage did not change" in out
    assert "FIRED" not in out


def test_simulate_prints_rendered_params_as_json_lines(rules_config: Path, tmp_path: Path) -> None:
    out = invoke("simulate", rules_config, event_file(tmp_path))
    planned = [json.loads(line) for line in out.splitlines()]
    assert [(p["rule"], p["action"]) for p in planned] == [
        ("big-win", "localdb.record"),
        ("big-win", "localdb.set_fields"),
        ("any-win", "localdb.record"),
    ]
    assert planned[0]["params"] == {
        "title": "Won Acme",
        "body": "open -> won, 1500",
        "labels": ["sales", "EU"],
    }
    assert planned[1]["params"] == {"type": "deal", "id": "42", "fields": {"announced": True}}
    assert planned[2]["params"] == {"title": "Acme won"}
    assert len({p["key"] for p in planned}) == 3  # one idempotency key per action
    assert all("error" not in p for p in planned)


def test_simulate_is_deterministic(rules_config: Path, tmp_path: Path) -> None:
    event = event_file(tmp_path)
    assert invoke("simulate", rules_config, event) == invoke("simulate", rules_config, event)


def test_simulate_shows_a_rendering_error(
    config_file: Path, mapping_dir: Path, tmp_path: Path
) -> None:
    (mapping_dir / "r.yaml").write_text("""
rules:
  - id: needs-website
    when: {source: localdb, object: deal, field: stage}
    do:
      - localdb.record: {title: "{{ deal.website }}"}
""")
    out = invoke("simulate", config_file, event_file(tmp_path))
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert line["rule"] == "needs-website"
    assert "website" in line["error"]


def test_simulate_created_object(rules_config: Path, tmp_path: Path) -> None:
    path = tmp_path / "created.json"
    path.write_text(
        json.dumps(
            {
                "source": "localdb",
                "object": "deal",
                "id": "9",
                "created": True,
                "fields": {"stage": "lost", "name": "N"},
            }
        )
    )
    rules = [json.loads(x)["rule"] for x in invoke("simulate", rules_config, path).splitlines()]
    assert rules == ["new-deal", "lost"]  # as ingest plans: the created event first


def test_event_file_without_source_is_refused(rules_config: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"object": "deal", "fields": {}}))
    result = CliRunner().invoke(
        main, ["simulate", "--config", str(rules_config), "--event", str(path)]
    )
    assert result.exit_code != 0
    assert "an event needs source" in result.output


def test_dry_run_refuses_a_broken_mapping(
    config_file: Path, mapping_dir: Path, tmp_path: Path
) -> None:
    (mapping_dir / "r.yaml").write_text(RULES.replace("localdb.set_fields", "localdb.nope"))
    result = CliRunner().invoke(
        main, ["explain", "--config", str(config_file), "--event", str(event_file(tmp_path))]
    )
    assert result.exit_code != 0
    assert "unknown action 'localdb.nope'" in result.output
