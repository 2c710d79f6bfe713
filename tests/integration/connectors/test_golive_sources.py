"""Going live over GitHub, Jira and Airtable: what the accounts held before syncd's first
start fires nothing, changes after it fire once. Each fake through its real client library.
(HubSpot: test_golive_hubspot.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from connectors.airtable import AirtableConnector, AirtableSettings
from connectors.email import EmailConnector
from connectors.github import GitHubConnector, GitHubSettings
from connectors.jira import JiraConnector, JiraSettings
from syncd.clock import FakeClock
from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.email.fake import FakeSmtpServer
from syncd_sandbox.fakeserver import FakeServer
from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.jira.fake import FakeJira
from tests.integration.connectors.support import (
    TickingClock,
    action_rows,
    make_config,
    make_engine,
    post,
    serve,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

GITHUB_RULES = """
rules:
  - id: thank-on-close
    when: {source: github, object: issue, field: state, to: closed}
    do:
      - github.comment: {repo: "{{ issue.repo }}", issue_number: "{{ issue.number }}",
                         body: "Closed: {{ issue.title }}"}
  - id: welcome
    when: {source: github, object: issue, created: true}
    do:
      - github.comment: {repo: "{{ issue.repo }}", issue_number: "{{ issue.number }}",
                         body: "Welcome: {{ issue.title }}"}
"""


def test_github_issues_closed_or_opened_before_go_live_fire_nothing(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock(START)
    fake = FakeGitHub(clock=clock, token="ghp_golive-test-token", login="syncd-bot")
    fake.add_repo("acme/support")
    old = [fake.open_issue("acme/support", f"Old {n}") for n in range(3)]
    for issue in old[:2]:
        fake.close_issue("acme/support", issue.number)
    clock.advance(days=7)
    with fake:
        settings = GitHubSettings(
            token="ghp_golive-test-token",
            base_url=fake.base_url,
            repositories=["acme/support"],
            timeout_seconds=5,
        )
        engine = make_engine(
            make_config(tmp_path, store_url, GITHUB_RULES, {"github": settings}),
            clock,
            {"github": GitHubConnector(settings, clock)},
        )
        engine.run_once()
        assert action_rows(engine) == []
        clock.advance(3600)
        fake.close_issue("acme/support", old[2].number)  # opened before, closed after
        fresh = fake.open_issue("acme/support", "Fresh")
        clock.advance(60)
        engine.run_once()
        engine.run_once()
        engine.close()
    comments = {
        i.number: [c.body.split("\n")[0] for c in i.comments] for i in fake.issues("acme/support")
    }
    assert comments == {
        old[0].number: [],
        old[1].number: [],
        old[2].number: ["Closed: Old 2"],
        fresh.number: ["Welcome: Fresh"],
    }


JIRA_RULES = """
rules:
  - id: note-on-done
    when: {source: jira, object: issue, field: status, to: Done}
    do:
      - jira.comment: {issue: "{{ issue.key }}", body: "Done: {{ issue.summary }}"}
"""


def test_jira_issues_done_before_go_live_fire_nothing(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock(START)
    fake = FakeJira(clock=clock, email="syncd@example.org", api_token="jira-token-not-real")
    done = [fake.user_create("OPS", f"Old {n}", status="Done").key for n in range(3)]
    open_key = fake.user_create("OPS", "Open").key
    clock.advance(days=7)
    with FakeServer(fake.app) as server:
        settings = JiraSettings(
            base_url=server.url,
            email="syncd@example.org",
            api_token=SecretStr("jira-token-not-real"),
            webhook_secret=SecretStr("s"),
            projects=["OPS"],
            timeout_seconds=5,
        )
        engine = make_engine(
            make_config(tmp_path, store_url, JIRA_RULES, {"jira": settings}),
            clock,
            {"jira": JiraConnector(settings, clock)},
        )
        engine.run_once()
        assert action_rows(engine) == []
        clock.advance(3600)
        fake.user_update(open_key, status="Done")
        clock.advance(120)
        engine.run_once()
        engine.run_once()
        engine.close()
    comments = {
        key: [c.split("\n")[0] for c in _jira_comments(fake, key)] for key in [*done, open_key]
    }
    assert comments == {**{k: [] for k in done}, open_key: ["Done: Open"]}


def _jira_comments(fake: FakeJira, key: str) -> list[str]:
    from connectors.jira.adf import adf_to_text

    return [
        adf_to_text(c["body"]) if isinstance(c.get("body"), dict) else str(c.get("body"))
        for c in fake.issues[key].comments
    ]


AIRTABLE_RULES = """
rules:
  - id: forward-needs-admin
    when: {source: airtable, object: lead, field: Status, to: Needs Admin}
    do:
      - email.send:
          to: [operations@example.org]
          subject: "Needs admin: {{ lead.Name }}"
          body: "{{ lead.Name }} needs admin."
"""


def test_airtable_webhook_payload_log_from_before_go_live_is_not_replayed(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock(START)
    fake = FakeAirtable(token="patGoLive.not-real", base_id="appGoLive0000001", clock=clock)
    fake.create_table(
        "Leads",
        {"Name": "singleLineText", "Status": "singleSelect", "Last Modified": "lastModifiedTime"},
    )
    with FakeServer(fake.app) as api, FakeSmtpServer() as smtp:
        settings = AirtableSettings(
            token="patGoLive.not-real",
            base_id="appGoLive0000001",
            base_url=api.url,
            tables={"lead": "Leads"},
            timeout_seconds=5,
        )
        config = make_config(
            tmp_path, store_url, AIRTABLE_RULES, {"airtable": settings, "email": smtp.settings()}
        )

        def engine_now() -> object:
            return make_engine(
                config,
                clock,
                {
                    "airtable": AirtableConnector(settings, clock),
                    "email": EmailConnector(smtp.settings(), clock),
                },
            )

        # The admin created the webhook with `syncd airtable webhooks ensure` days before the
        # first `syncd run`; people kept working meanwhile: its payload log fills up.
        setup = engine_now()
        airtable = setup.connectors["airtable"]
        hook = airtable.ensure_webhooks(
            "https://syncd.example.org/webhooks/airtable",
            airtable.watched_tables(setup.rules.current),
        )["lead"]
        setup.close()
        old = [
            fake.user_create("Leads", {"Name": f"Old {n}", "Status": "Active Lead"})
            for n in range(3)
        ]
        for record in old:
            fake.user_update("Leads", record, {"Status": "Needs Admin"})
        newer = fake.user_create("Leads", {"Name": "Newer", "Status": "Active Lead"})
        clock.advance(days=3)

        engine = engine_now()
        with serve(engine) as app:
            # the first thing syncd hears is a ping, before any poll
            assert post(app, "airtable", *fake.signed_ping(hook)).status_code == 202
            engine.inbox.drain()
            engine.run_once()
            assert action_rows(engine) == [] and smtp.messages == []
            clock.advance(600)
            fake.user_update("Leads", newer, {"Status": "Needs Admin"})
            assert post(app, "airtable", *fake.signed_ping(hook)).status_code == 202
            engine.run_once()
            engine.run_once()
        engine.close()
    assert sorted(str(m.message["Subject"]) for m in smtp.messages) == ["Needs admin: Newer"]


def test_syncd_backfill_replay_since_a_date_acts_on_jira_history_once(
    tmp_path: Path, store_url: str
) -> None:
    from click.testing import CliRunner

    from syncd.cli import main
    from syncd.config import load_config
    from syncd.engine import Engine
    from tests.integration.connectors.support import write_rules, write_toml

    # The CLI below runs on real time: a clock that moves on with each reading keeps the
    # fake's per-second and cost limits seeing its requests spread as they are.
    clock = TickingClock(START)
    fake = FakeJira(clock=clock, email="syncd@example.org", api_token="jira-token-not-real")
    ancient = fake.user_create("OPS", "Ancient", status="Done").key
    clock.advance(days=30)
    recent = fake.user_create("OPS", "Recent", status="Done").key
    clock.advance(days=7)
    with FakeServer(fake.app) as server:
        toml = write_toml(
            tmp_path / "syncd.toml",
            {
                "syncd": {
                    "state_dir": str(tmp_path / "state"),
                    "mappings": [str(write_rules(tmp_path / "mappings", JIRA_RULES))],
                },
                "store": {"url": store_url},
                "jira": {
                    "base_url": server.url,
                    "email": "syncd@example.org",
                    "api_token": "jira-token-not-real",
                    "webhook_secret": "s",
                    "projects": ["OPS"],
                },
            },
        )
        engine = Engine(load_config(toml), clock)
        engine.run_once()  # go-live: both are history
        assert action_rows(engine) == []
        engine.close()
        since = (START + timedelta(days=15)).strftime("%Y-%m-%d")  # after Ancient, before Recent
        for _ in range(2):  # twice: the second run recognises what the first planned
            result = CliRunner().invoke(
                main,
                ["backfill", "jira", "--replay", "--since", since, "--config", str(toml)],
                catch_exceptions=False,
            )
            assert result.exit_code == 0, result.output
        assert "backfill jira done: 2 objects, 0 events, 0 actions" in result.output
        # the CLI planned on real time: the executor runs just after it
        engine = Engine(load_config(toml), FakeClock(datetime.now(UTC) + timedelta(minutes=1)))
        engine.executor.drain()
        engine.close()
    assert [c.split("\n")[0] for c in _jira_comments(fake, recent)] == ["Done: Recent"]
    assert _jira_comments(fake, ancient) == []
