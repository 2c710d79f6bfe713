"""A scheduler rule that raises every tick (the W7 monthly rule on a text fee): one alert mail
naming the rule and the record, /readyz and status report it, no repeat within the period,
one digest after it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.daemon import Daemon
from syncd.metrics import RULE_FAILURES
from syncd_sandbox.email.fake import FakeSmtpServer
from tests.helpers import write_rules

ALERT_TO = "partnerships@example.org"
RULES = """
rules:
  - id: monthly-fee
    when:
      cron: "*/5 * * * *"
      for_each: {source: localdb, object: item, query: {}}
    do:
      - localdb.record: {title: "Fee {{ item.fee * 2 + 1 }}"}
"""


@pytest.fixture
def smtp(fake_smtp: FakeSmtpServer) -> FakeSmtpServer:
    return fake_smtp  # the sandbox plugin's SMTP server on 127.0.0.1


def alerting_daemon(tmp_path: Path, smtp: FakeSmtpServer) -> Daemon:
    """A daemon (not started) with the localdb connector, the rules above, and alerts mailed
    to ALERT_TO through the fake SMTP server."""
    rules = write_rules(tmp_path / "mappings", RULES)
    config_path = tmp_path / "syncd.toml"
    config_path.write_text(f"""
[syncd]
state_dir = "{tmp_path / "state"}"
mappings = ["{rules}"]
[alerts]
to = ["{ALERT_TO}"]
[localdb]
path = "{tmp_path / "remote.sqlite3"}"
[email]
host = "{smtp.host}"
port = {smtp.port}
security = "plain"
from_address = "syncd <syncd@example.org>"
""")
    return Daemon(load_config(config_path))


def test_a_failing_scheduler_rule_alerts_once_reports_and_digests(
    tmp_path: Path, smtp: FakeSmtpServer
) -> None:
    rules = write_rules(tmp_path / "mappings", RULES)
    config_path = tmp_path / "syncd.toml"
    config_path.write_text(f"""
[syncd]
state_dir = "{tmp_path / "state"}"
mappings = ["{rules}"]
[alerts]
to = ["{ALERT_TO}"]
period_minutes = 60
[localdb]
path = "{tmp_path / "remote.sqlite3"}"
[email]
host = "{smtp.host}"
port = {smtp.port}
security = "plain"
from_address = "syncd <syncd@example.org>"
timeout_seconds = 5
""")
    daemon = Daemon(load_config(config_path))
    engine = daemon.engine
    clock = FakeClock(datetime(2026, 3, 2, 8, 58, tzinfo=UTC))
    for part in (engine, engine.poller, engine.ingestor, engine.scheduler, engine.executor):
        part.clock = clock
    engine.ingestor.golive.clock = engine.scheduler.golive.clock = clock
    daemon.started_at = int(clock.now().timestamp() * 1000)
    remote = engine.connectors["localdb"].remote
    remote.put("item", "a", name="Acme Hub", fee="$900")  # text: `* 2 + 1` raises TypeError
    before = RULE_FAILURES.labels("monthly-fee", "render")._value.get()
    try:
        engine.run_once()  # first sight of the cron rule
        for _ in range(6):  # 30 minutes: six runs, each one fails
            clock.advance(minutes=5)
            engine.run_once()
        smtp.wait_for(1)
        alerts = [m for m in smtp.messages if ALERT_TO in m.rcpt_tos]
        assert len(alerts) == 1
        body = alerts[0].message.get_content()
        assert "monthly-fee" in str(alerts[0].message["Subject"])
        assert "TypeError" in body and "Name:    Acme Hub" in body
        assert "syncd actions retry --rule monthly-fee" in body
        assert RULE_FAILURES.labels("monthly-fee", "render")._value.get() - before == 6

        state = daemon.readiness()
        assert state["ready"] is False
        assert any(
            p.startswith("rule monthly-fee failing: 6 render/condition") for p in state["problems"]
        ), state
        assert engine.status()["failing"][0]["rule"] == "monthly-fee"

        clock.advance(minutes=35)  # the period is over; it still fails
        engine.run_once()
        smtp.wait_for(2)
        # the next alert carries the digest: the five failures held back during the period
        digest = [m for m in smtp.messages if ALERT_TO in m.rcpt_tos][1]
        assert "5 more failure(s) of this rule were held back" in digest.message.get_content()
        engine.run_once()
        assert len([m for m in smtp.messages if ALERT_TO in m.rcpt_tos]) == 2
    finally:
        engine.close()


def test_a_failing_loop_is_alerted_once_and_reported_until_it_recovers(
    tmp_path: Path, smtp: FakeSmtpServer
) -> None:
    import time

    daemon = alerting_daemon(tmp_path, smtp)
    healthy = False
    runs = 0

    def tick() -> None:  # a loop body that raises until it is "fixed"
        nonlocal runs
        runs += 1
        if not healthy:
            raise TypeError("'<' not supported between instances of 'str' and 'int'")

    try:
        daemon._loop("scheduler", lambda: 0.01, tick)
        deadline = time.monotonic() + 10
        while runs < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        state = daemon.readiness()
        assert state["ready"] is False
        assert any(
            p.startswith("loop scheduler failing:") and "TypeError" in p for p in state["problems"]
        ), state
        daemon.engine.executor.drain()
        smtp.wait_for(1)
        time.sleep(0.1)
        daemon.engine.executor.drain()
        (mail,) = [m for m in smtp.messages if ALERT_TO in m.rcpt_tos]  # once, not per run
        assert "the scheduler loop is failing" in str(mail.message["Subject"])
        healthy = True
        seen = runs
        while runs < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(p.startswith("loop ") for p in daemon.readiness()["problems"])
    finally:
        daemon.stop.set()
        for thread in daemon.threads:
            thread.join(timeout=5)
        daemon.engine.close()


def test_failed_webhook_deliveries_are_alerted_once_per_period(
    tmp_path: Path, smtp: FakeSmtpServer
) -> None:
    from syncd.store.schema import inbox

    daemon = alerting_daemon(tmp_path, smtp)
    engine = daemon.engine

    def fail_delivery(n: int) -> None:  # as InboxProcessor leaves one it gave up on
        with engine.store.tx() as conn:
            conn.execute(
                inbox.insert().values(
                    connector="localdb",
                    delivery_id=f"d{n}",
                    received_at=0,
                    headers={},
                    body=b"{}",
                    status="failed",
                    attempts=8,
                    last_error="gave up after 8 attempts: TransientError: fetch failed",
                )
            )

    try:
        fail_delivery(1)
        fail_delivery(2)
        assert engine.alert_failures() == 1
        fail_delivery(3)
        assert engine.alert_failures() == 0  # within the period: no second mail
        engine.executor.drain()
        smtp.wait_for(1)
        (mail,) = [m for m in smtp.messages if ALERT_TO in m.rcpt_tos]
        assert "localdb webhook deliveries failed (2)" in str(mail.message["Subject"])
        body = mail.message.get_content()
        assert "syncd inbox retry" in body and "fetch failed" in body
    finally:
        engine.close()


def test_a_failing_housekeeping_is_alerted_and_reported(
    tmp_path: Path, smtp: FakeSmtpServer
) -> None:
    """A connector's upkeep (Airtable's webhook refresh) that fails is no longer only a log
    line: the housekeeping loop reports it and the alert inbox hears of it once."""
    import time

    daemon = alerting_daemon(tmp_path, smtp)
    runs = 0

    def refresh_fails() -> None:  # the fault: the connector's upkeep raises
        nonlocal runs
        runs += 1
        raise ConnectionError("webhook refresh refused")

    daemon.engine.connectors["localdb"].housekeeping = refresh_fails  # type: ignore[method-assign]
    try:
        daemon._loop("housekeeping", lambda: 0.01, daemon._housekeeping_body)
        deadline = time.monotonic() + 10
        while runs < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        problems = daemon.readiness()["problems"]
        assert any(
            p.startswith("loop housekeeping failing:")
            and "localdb" in p
            and "webhook refresh refused" in p
            for p in problems
        ), problems
        daemon.engine.executor.drain()
        smtp.wait_for(1)
        time.sleep(0.1)
        daemon.engine.executor.drain()
        (mail,) = [m for m in smtp.messages if ALERT_TO in m.rcpt_tos]
        assert "the housekeeping loop is failing" in str(mail.message["Subject"])
    finally:
        daemon.stop.set()
        for thread in daemon.threads:
            thread.join(timeout=5)
        daemon.engine.close()
