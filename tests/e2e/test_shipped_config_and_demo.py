"""The shipped config checks clean, and `syncd demo --once` passes on a machine with no
credentials and no network."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from syncd.cli import main
from syncd_sandbox.demo import demo

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "config.example.toml"
# Dummy secrets as a deployment gives them (environment); every API address points at a
# closed local port, so the live checks fail fast instead of leaving the machine.
CLOSED = "http://127.0.0.1:9"
OFFLINE_ENV = {
    "SYNCD_HUBSPOT_ACCESS_TOKEN": "dummy",
    "SYNCD_GITHUB_TOKEN": "dummy",
    "SYNCD_AIRTABLE_TOKEN": "dummy",
    "SYNCD_JIRA_API_TOKEN": "dummy",
    "SYNCD_HUBSPOT_BASE_URL": CLOSED,
    "SYNCD_GITHUB_BASE_URL": CLOSED,
    "SYNCD_AIRTABLE_BASE_URL": CLOSED,
    "SYNCD_JIRA_BASE_URL": CLOSED,
    "SYNCD_EMAIL_HOST": "127.0.0.1",
    "CREDENTIALS_DIRECTORY": "",
}
WORKFLOWS = [f"w{n}-" for n in range(1, 19)]
# W15 (an engagement's end) is not in the nine-day story: its end date would also be a date
# inside W6's 60-day window; tests/e2e/test_new_workflows.py plays it.
DEMO_WORKFLOWS = [p for p in WORKFLOWS if p != "w15-"]


def test_example_config_and_shipped_mappings_check_clean() -> None:
    result = CliRunner().invoke(main, ["check", "--config", str(EXAMPLE_CONFIG)], env=OFFLINE_ENV)
    assert result.exit_code == 0, result.output
    found = re.search(r"ok: (\d+) rules in (\d+) files, (\d+) examples passed", result.output)
    assert found, result.output
    assert int(found[1]) >= 13 and int(found[3]) >= int(found[1])
    assert "connectors: airtable, email, github, hubspot, jira" in result.output


def test_example_config_checks_without_any_credentials() -> None:
    env = {k: v for k, v in OFFLINE_ENV.items() if "TOKEN" not in k}
    result = CliRunner().invoke(main, ["check", "--config", str(EXAMPLE_CONFIG)], env=env)
    assert result.exit_code == 0, result.output


def test_every_workflow_has_a_shipped_rule_with_examples() -> None:
    from syncd.mapping.loader import load_rules

    rules = load_rules([REPO / "mappings"])
    for prefix in WORKFLOWS:
        mine = [r for r in rules.rules if r.id.startswith(prefix)]
        assert mine, f"no rule for {prefix}"
        assert all(r.rule.examples for r in mine), prefix


def test_demo_once_plays_the_story_and_checks_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(demo, ["--once", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "OK: every expected effect happened exactly once" in result.output
    # syncd went live over accounts with history (deals won months ago): it acted on none
    assert re.search(r"went live: .*7 hubspot\.deal.* baselined .*, 0 actions\n", result.output), (
        result.output
    )
    for prefix in DEMO_WORKFLOWS:
        assert f"[{prefix}" in result.output, prefix


def test_demo_once_fails_with_the_difference_when_a_rule_is_missing(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    for path in (REPO / "mappings").glob("*.yaml"):
        if path.name != "client-strategy.yaml":  # W8 gone: its Jira tickets are missing
            (mappings / path.name).write_text(path.read_text())
    # copied: a template reached through a symlink out of the mapping folder is refused
    shutil.copytree(REPO / "mappings" / "templates", mappings / "templates")
    result = CliRunner().invoke(
        demo, ["--once", "--state-dir", str(tmp_path / "state"), "--mappings", str(mappings)]
    )
    assert result.exit_code == 1
    assert "Client strategy review 2026-Q2" in result.output


def test_the_readme_mapping_example_checks_clean(tmp_path: Path) -> None:
    """The rule the README shows as a mapping file's shape passes `syncd check`, with its
    example written in stage labels and again in HubSpot's stage ids."""
    readme = (REPO / "README.md").read_text()
    found = re.search(r"```yaml\n(rules:\n  - id: new-hub-on-closed-won.*?)```", readme, re.S)
    assert found, "the README's mapping example is gone"
    labels = found[1]
    ids = labels.replace("dealstage: Closed Won", "dealstage: closedwon").replace(
        "dealstage: Contract Admin", "dealstage: contractadmin"
    )
    assert ids != labels
    for text in (labels, ids):
        mappings = tmp_path / "mappings"
        mappings.mkdir(exist_ok=True)
        (mappings / "example.yaml").write_text(text)
        config = tmp_path / "syncd.toml"
        config.write_text(
            f'[syncd]\nmappings = ["{mappings}"]\nstate_dir = "{tmp_path / "state"}"\n'
            "[hubspot]\n[github]\n"
        )
        no_credentials: dict[str, str | None] = {name: None for name in OFFLINE_ENV}
        result = CliRunner().invoke(main, ["check", "--config", str(config)], env=no_credentials)
        assert result.exit_code == 0, result.output
        assert "ok: 1 rules in 1 files, 1 examples passed" in result.output


def test_the_example_event_file_fires_the_won_deal_rules_cleanly() -> None:
    """`examples/won-deal.yaml`, which the README points to, has every field the shipped
    rules for a won deal render: `explain` fires them, none fails."""
    result = CliRunner().invoke(
        main,
        [
            "explain",
            "--config",
            str(EXAMPLE_CONFIG),
            "--event",
            str(REPO / "examples" / "won-deal.yaml"),
        ],
        env=OFFLINE_ENV,
    )
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output
    fired = re.findall(r"^FIRED (\S+):", result.output, re.M)
    assert "w1-new-hub-information" in fired and "w12-maintenance-tier-2" in fired
    assert len(fired) == 7, result.output
