"""`syncd check`: exit 0 for good mapping files, non-zero with every problem for bad ones."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from syncd.cli import main

GOOD = """
rules:
  - id: item-done
    when: {source: localdb, object: item, field: status, to: done}
    do:
      - localdb.record: {title: "Done {{ item.name }}", labels: [ops]}
    examples:
      - object: {name: A, status: done}
        previous: {status: open}
        expect: [{action: localdb.record, title: "Done A"}]
"""

BAD = """
rules:
  - id: r1
    when: {source: nosuch, object: item, field: status}
    do:
      - localdb.record: {title: x}
  - id: r2
    when: {source: localdb, object: item, field: status}
    do:
      - localdb.record: {title: x, labels: 5}
  - id: r3
    when: {source: localdb, object: item, field: status, to: done}
    do:
      - localdb.record: {title: "Done {{ item.name }}"}
    examples:
      - object: {name: A, status: done}
        previous: {status: open}
        expect: [{action: localdb.record, title: "Done B"}]
"""


def run_check(config_file: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", "--config", str(config_file)])
    return result.exit_code, result.stdout, result.stderr


def test_check_accepts_good_files(config_file: Path, mapping_dir: Path) -> None:
    (mapping_dir / "good.yaml").write_text(GOOD)
    code, out, err = run_check(config_file)
    assert code == 0, err
    assert "ok: 1 rules in 1 files, 1 examples passed" in out
    assert "localdb" in out


def test_check_lists_every_problem(config_file: Path, mapping_dir: Path) -> None:
    (mapping_dir / "good.yaml").write_text(GOOD)
    bad = mapping_dir / "bad.yaml"
    bad.write_text(BAD)
    code, _out, err = run_check(config_file)
    assert code != 0
    assert f"{bad}:4: rule r1: when.source: unknown connector 'nosuch'" in err
    assert f"{bad}:10: rule r2: do.0.localdb.record.labels:" in err
    assert f"{bad}:11: rule r3: examples.0: example failed:" in err
    assert "3 problem(s) found" in err


def test_check_rejects_rules_for_an_unconfigured_connector(
    tmp_path: Path, mapping_dir: Path
) -> None:
    (mapping_dir / "good.yaml").write_text(GOOD)
    config = tmp_path / "no-localdb.toml"
    config.write_text(f'[syncd]\nmappings = ["{mapping_dir}"]\n')
    code, _out, err = run_check(config)
    assert code != 0
    assert "'localdb'" in err and "not configured" in err


def test_check_reports_a_bad_config(tmp_path: Path, mapping_dir: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[http]\nport = 'eighty'\n[nosuch]\nx = 1\n")
    code, _out, err = run_check(config)
    assert code != 0
    assert "[http] port" in err
    assert "[nosuch]" in err


def test_check_refuses_a_template_outside_the_mapping_folder_and_an_endless_example(
    config_file: Path, mapping_dir: Path, tmp_path: Path
) -> None:
    import time

    (tmp_path / "shadow").write_text("root:$6$SECRET:19000:0:99999:7:::\n")
    (mapping_dir / "bad.yaml").write_text("""
rules:
  - id: mail-shadow
    when: {source: localdb, object: item, field: status, to: done}
    do:
      - localdb.record: {title: x, body: {template: ../shadow}}
  - id: big-title
    when: {source: localdb, object: item, field: status, to: done}
    do:
      - localdb.record: {title: "{{ 'a' * 10**9 }}"}
    examples:
      - object: {status: done}
        previous: {status: open}
        expect: [{action: localdb.record}]
""")
    started = time.monotonic()
    code, out, err = run_check(config_file)
    assert time.monotonic() - started < 10
    assert code != 0
    text = out + err
    assert "rule mail-shadow" in text and "outside the mapping folder" in text
    assert "rule big-title" in text and "limit" in text
    assert "SECRET" not in text


STAGE_IDS_IN_EXAMPLES = """
rules:
  - id: won
    when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
    do:
      - github.create_issue: {repo: acme/infra, title: "Won: {{ deal.dealname }}"}
    examples:
      - object: {id: "42", dealname: Ocean, dealstage: closedwon}
        previous: {dealstage: contractadmin}
        expect: [{action: github.create_issue, title: "Won: Ocean"}]
      - object: {id: "42", dealname: Ocean, dealstage: Closed Won}
        previous: {dealstage: Contract Admin}
        expect: [{action: github.create_issue, title: "Won: Ocean"}]
"""


def test_check_without_credentials_knows_the_default_stage_ids(
    tmp_path: Path, mapping_dir: Path
) -> None:
    """Offline, a rule naming a stage by label matches an example giving HubSpot's id, as
    `explain` matches an event file (both use the ids of HubSpot's default pipelines)."""
    (mapping_dir / "won.yaml").write_text(STAGE_IDS_IN_EXAMPLES)
    config = tmp_path / "hubspot.toml"
    config.write_text(
        f'[syncd]\nmappings = ["{mapping_dir}"]\nstate_dir = "{tmp_path / "state"}"\n'
        "[hubspot]\n[github]\n"
    )
    code, out, err = run_check(config)
    assert code == 0, err
    assert "2 examples passed" in out
    assert "hubspot: live checks skipped" in err
