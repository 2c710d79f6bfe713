"""Alerts when actions go dead: the partnerships inbox hears once per failing rule, with what
failed, on which object, why, and the command that retries it.

The engine is wired like the daemon does it (`executor.on_dead = make_alerter(engine)`),
with the real email connector against a local SMTP server that is down for the whole run
and comes back at the end.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from connectors.email.connector import EmailConnector
from syncd.alerts import make_alerter
from syncd.cli import main
from syncd.clock import FakeClock, to_ms
from syncd.config import AlertsSection
from syncd.engine import Engine
from syncd.store.schema import actions
from syncd_sandbox.email.fake import FakeSmtpServer, ReceivedMessage
from syncd_sandbox.localdb import LocalDbConnector, LocalDbSettings
from tests.helpers import make_config, write_rules

ALERT_TO = "partnerships@example.org"
MAX_ATTEMPTS = 3
ROUND_SECONDS = 400  # longer than any backoff below: every pending action is due each round

RULES = """
rules:
  - id: mail-on-done
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - email.send:
          to: ops@example.org
          subject: "Done: {{ item.name }}"
          body: "{{ item.name }} is done."
  - id: mail-on-review
    when: {source: localdb, object: item, field: stage, to: review}
    do:
      - email.send:
          to: ops@example.org
          subject: "Review: {{ item.name }}"
          body: "{{ item.name }} needs a review."
"""


@pytest.fixture
def smtp(fake_smtp: FakeSmtpServer) -> FakeSmtpServer:
    return fake_smtp  # the sandbox plugin's SMTP server on 127.0.0.1


def build_engine(tmp_path: Path, store_url: str, clock: FakeClock, smtp: FakeSmtpServer) -> Engine:
    config = make_config(
        tmp_path,
        store_url,
        write_rules(tmp_path / "mappings", RULES),
        max_attempts=MAX_ATTEMPTS,
        backoff_base_seconds=10,
        backoff_max_seconds=300,
    )
    config.alerts = AlertsSection(to=[ALERT_TO], via="email")
    local = LocalDbSettings(path=str(tmp_path / "remote.sqlite3"))
    email = smtp.settings(from_address="syncd <syncd@example.org>")
    config.connectors.update(localdb=local, email=email)
    engine = Engine(
        config,
        clock,
        connectors={
            "localdb": LocalDbConnector(local, clock=clock),
            "email": EmailConnector(email, clock=clock),
        },
    )
    engine.executor.on_dead = make_alerter(engine)  # as syncd.daemon.Daemon does
    return engine


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(actions).order_by(actions.c.id)).mappings()]


def by_rule(engine: Engine, prefix: str) -> list[dict[str, Any]]:
    return [r for r in rows(engine) if r["rule_id"].startswith(prefix)]


def run_rounds(engine: Engine, clock: FakeClock, count: int) -> None:
    for _ in range(count):
        engine.run_once()
        clock.advance(ROUND_SECONDS)


def alerts_received(smtp: FakeSmtpServer) -> list[ReceivedMessage]:
    return [m for m in smtp.messages if ALERT_TO in m.rcpt_tos]


def test_two_failing_rules_give_two_alerts_after_the_outage(
    tmp_path: Path, store_url: str, smtp: FakeSmtpServer
) -> None:
    clock = FakeClock()
    engine = build_engine(tmp_path, store_url, clock, smtp)
    remote = engine.connectors["localdb"].remote
    smtp.go_down()
    remote.put("item", "x", name="Ocean", stage="done")
    remote.put("item", "y", name="Wave", stage="review")

    # Backoff: each failed attempt waits longer (10 s, then 20 s, plus up to 5 s jitter).
    waits: list[int] = []
    for _ in range(MAX_ATTEMPTS - 1):
        engine.run_once()
        (done_row,) = by_rule(engine, "mail-on-done")
        assert done_row["status"] == "pending"
        assert "Connection refused" in done_row["last_error"]
        waits.append(done_row["next_attempt_at"] - to_ms(clock.now()))
        clock.advance(ROUND_SECONDS)
    assert 10_000 <= waits[0] <= 15_000 and 20_000 <= waits[1] <= 25_000, waits

    run_rounds(engine, clock, 6)  # the last attempt, then alerts keep failing meanwhile
    for rule in ("mail-on-done", "mail-on-review"):
        (row,) = by_rule(engine, rule)
        assert row["status"] == "dead" and row["attempts"] == MAX_ATTEMPTS
        assert f"gave up after {MAX_ATTEMPTS} attempts" in row["last_error"]
    queued = by_rule(engine, "syncd.alert")
    assert sorted(r["rule_id"] for r in queued) == [
        "syncd.alert:mail-on-done",
        "syncd.alert:mail-on-review",
    ]
    # Alerts are how ops hear of the outage: they outlive max_attempts, never dead.
    assert all(r["status"] == "pending" and r["attempts"] > MAX_ATTEMPTS for r in queued)
    assert smtp.messages == []

    smtp.come_back()
    run_rounds(engine, clock, 4)
    smtp.wait_for(2)
    run_rounds(engine, clock, 4)
    received = alerts_received(smtp)
    assert len(smtp.messages) == len(received) == 2  # the dead actions stay dead
    subjects = sorted(str(m.message["Subject"]) for m in received)
    assert "mail-on-done" in subjects[0] and "mail-on-review" in subjects[1]
    assert {r["status"] for r in by_rule(engine, "syncd.alert")} == {"done"}
    engine.close()


def _one_rule_fails_five_times(
    tmp_path: Path, store_url: str, clock: FakeClock, smtp: FakeSmtpServer
) -> tuple[Engine, list[dict[str, Any]], ReceivedMessage]:
    """Five items done while the mail server is down, then it comes back: the engine, the
    dead actions and the one alert mail."""
    engine = build_engine(tmp_path, store_url, clock, smtp)
    remote = engine.connectors["localdb"].remote
    smtp.go_down()
    for i in range(5):
        remote.put("item", f"i{i}", name=f"Item {i}", stage="done")
    run_rounds(engine, clock, MAX_ATTEMPTS + 3)
    dead = by_rule(engine, "mail-on-done")
    assert len(dead) == 5 and {r["status"] for r in dead} == {"dead"}

    smtp.come_back()
    run_rounds(engine, clock, 4)
    smtp.wait_for(1)
    run_rounds(engine, clock, 4)
    smtp.wait_for(2)
    # One alert; the four failures held back come as one digest once the period is over.
    alert, digest = alerts_received(smtp)
    assert len(smtp.messages) == 2
    assert "digest: rule mail-on-done failed 4 more time(s)" in str(digest.message["Subject"])
    assert "syncd actions retry --rule mail-on-done" in digest.message.get_content()
    return engine, dead, alert


def _retry_command(body: str) -> str:
    found = re.search(r"syncd actions retry (\S+)", body)
    assert found is not None, body
    return found.group(1)


def test_many_failures_of_one_rule_give_one_alert_naming_rule_object_error_and_command(
    tmp_path: Path, store_url: str, smtp: FakeSmtpServer
) -> None:
    clock = FakeClock()
    engine, dead, alert = _one_rule_fails_five_times(tmp_path, store_url, clock, smtp)
    body = alert.message.get_content()
    assert "mail-on-done" in str(alert.message["Subject"])
    assert "Rule:    mail-on-done" in body
    assert "Connection refused" in body and f"gave up after {MAX_ATTEMPTS} attempts" in body
    named = next(r for r in dead if str(r["id"]) == _retry_command(body))
    assert f"Object:  localdb:item:{named['object_id']}" in body
    engine.close()


def test_retry_command_in_the_alert_works_when_a_key_starts_with_the_same_digits(
    tmp_path: Path, store_url: str, smtp: FakeSmtpServer
) -> None:
    clock = FakeClock()
    engine, dead, alert = _one_rule_fails_five_times(tmp_path, store_url, clock, smtp)
    ident = _retry_command(alert.message.get_content())
    named = next(r for r in dead if str(r["id"]) == ident)
    # Keys are 40 hex digits: in a store of any size some start with the digits of a small
    # id. Make sure one does (another action of the same kind, cancelled long ago).
    now = to_ms(clock.now())
    with engine.store.tx() as conn:
        conn.execute(
            actions.insert().values(
                key=(ident + "0" * 40)[:40],
                rule_id="mail-on-done",
                connector="email",
                action="send",
                params={},
                status="cancelled",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )

    config = tmp_path / "syncd.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n[syncd]\nmappings = []\n')
    result = CliRunner().invoke(main, ["actions", "retry", ident, "--config", str(config)])
    assert result.exit_code == 0, result.output
    run_rounds(engine, clock, 2)  # the server is back: the retried action is sent
    sent = [m for m in smtp.messages if "ops@example.org" in m.rcpt_tos]
    assert [str(m.message["Subject"]) for m in sent] == [f"Done: Item {named['object_id'][1:]}"]
    assert len(alerts_received(smtp)) == 2  # the alert and its digest, no more
    engine.close()
