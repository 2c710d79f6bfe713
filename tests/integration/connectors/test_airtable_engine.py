"""Airtable through the real engine: `syncd airtable webhooks ensure`, signed pings over HTTP,
payload cursors that move only after the changes are committed, and kill -9 between listing
payloads and committing them. Real pyairtable against the fake base; real SMTP to a fake."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from connectors.airtable import AirtableConnector, AirtableSettings
from connectors.email import EmailConnector
from syncd.cli import main
from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.engine import Engine
from syncd.store.schema import inbox, state
from syncd_sandbox.airtable.fake import FakeAirtable
from syncd_sandbox.email.fake import FakeSmtpServer
from syncd_sandbox.fakeserver import FakeServer
from tests.integration.connectors.support import (
    TickingClock,
    action_rows,
    inbox_rows,
    make_config,
    make_engine,
    post,
    run_driver,
    serve,
    write_rules,
    write_toml,
)

TOKEN = "patIntegrationToken.not-real"
BASE = "appIntegration0001"
LEAD_FIELDS = {
    "Name": "singleLineText",
    "Status": "singleSelect",
    "Email": "email",
    "Last Modified": "lastModifiedTime",
}
RULES = """
rules:
  - id: forward-needs-admin
    when: {source: airtable, object: lead, field: Status, to: Needs Admin}
    do:
      - email.send:
          to: [operations@example.org]
          cc: [partnerships@example.org]
          subject: "Needs admin: {{ lead.Name }}"
          body: "{{ lead.Name }} needs admin. {{ lead.url }}"
"""
PUBLIC_URL = "https://syncd.example.org"


def _fake(clock: FakeClock) -> FakeAirtable:
    fake = FakeAirtable(token=TOKEN, base_id=BASE, clock=clock)
    fake.create_table("Leads", LEAD_FIELDS)
    fake.create_table("Active Hubs", {"Community": "singleLineText", "Status": "singleSelect"})
    return fake


def _subjects(smtp: FakeSmtpServer) -> list[str]:
    return sorted(str(m.message["Subject"]) for m in smtp.messages)


def _cursor(engine: Engine, webhook_id: str) -> Any:
    with engine.store.engine.connect() as conn:
        return conn.execute(
            select(state.c.value).where(
                state.c.scope == "airtable", state.c.key == f"cursor:{webhook_id}"
            )
        ).scalar()


class World:
    def __init__(
        self,
        engine: Engine,
        fake: FakeAirtable,
        smtp: FakeSmtpServer,
        clock: FakeClock,
        hook_id: str,
    ) -> None:
        self.engine, self.fake, self.smtp, self.clock = engine, fake, smtp, clock
        self.hook_id = hook_id


@pytest.fixture
def world(tmp_path: Path, store_url: str) -> Iterator[World]:
    clock = FakeClock()
    fake = _fake(clock)
    with FakeServer(fake.app) as api, FakeSmtpServer() as smtp:
        settings = AirtableSettings(
            token=TOKEN,
            base_id=BASE,
            base_url=api.url,
            tables={"lead": "Leads", "hub": "Active Hubs"},
            timeout_seconds=5,
        )
        config = make_config(
            tmp_path, store_url, RULES, {"airtable": settings, "email": smtp.settings()}
        )
        engine = make_engine(
            config,
            clock,
            {
                "airtable": AirtableConnector(settings, clock),
                "email": EmailConnector(smtp.settings(), clock),
            },
        )
        connector = engine.connectors["airtable"]
        hooks = connector.ensure_webhooks(
            PUBLIC_URL + "/webhooks/airtable", connector.watched_tables(engine.rules.current)
        )
        assert list(hooks) == ["lead"]
        yield World(engine, fake, smtp, clock, hooks["lead"])
        engine.close()


def test_ping_is_stored_listed_fetched_and_acted_on_once(world: World) -> None:
    record = world.fake.user_create("Leads", {"Name": "Ocean", "Status": "Active Lead"})
    world.engine.poller.poll_all()
    world.clock.advance(30)
    world.fake.user_update("Leads", record, {"Status": "Needs Admin"})
    headers, body = world.fake.signed_ping(world.hook_id)
    with serve(world.engine) as app:
        assert post(app, "airtable", headers, body).status_code == 202
        forged = dict(headers, **{"X-Airtable-Content-MAC": "hmac-sha256=" + "0" * 64})
        assert post(app, "airtable", forged, body).status_code == 401
    assert len(inbox_rows(world.engine)) == 1
    assert world.engine.inbox.drain() == 1
    assert [o.status for o in world.engine.executor.drain()] == ["done"]
    assert _subjects(world.smtp) == ["Needs admin: Ocean"]
    assert _cursor(world.engine, world.hook_id) == 3  # past both payloads, once committed
    world.engine.run_once()  # the poll sees the same change: nothing more
    assert _subjects(world.smtp) == ["Needs admin: Ocean"]
    assert len(action_rows(world.engine)) == 1


def test_secrets_live_in_the_secret_file_not_the_store(world: World) -> None:
    secret = world.engine.connectors["airtable"].registry.get_secret(world.hook_id)
    assert secret
    path = world.engine.config.state_dir / "airtable-secrets.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret in path.read_text()
    with world.engine.store.engine.connect() as conn:
        stored = [json.dumps(r["value"]) for r in conn.execute(state.select()).mappings()]
    assert stored and not any(secret in text for text in stored)


def test_cursor_stays_put_when_the_commit_fails(world: World, monkeypatch) -> None:
    world.engine.go_live()  # syncd runs before the record is made: it is news, not history
    world.fake.user_create("Leads", {"Name": "Ocean", "Status": "Needs Admin"})
    headers, body = world.fake.signed_ping(world.hook_id)
    with serve(world.engine) as app:
        assert post(app, "airtable", headers, body).status_code == 202

    def store_down(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(world.engine.inbox.ingestor, "ingest", store_down)
    world.engine.inbox.drain()  # the commit fails: the delivery is kept for a retry
    with world.engine.store.engine.connect() as conn:
        row = conn.execute(select(inbox)).mappings().one()
    assert row["status"] == "pending" and "database went away" in row["last_error"]
    assert _cursor(world.engine, world.hook_id) is None  # payloads listed, not acknowledged
    monkeypatch.undo()
    world.clock.advance(3600)
    assert world.engine.inbox.drain() == 1
    world.engine.executor.drain()
    assert _subjects(world.smtp) == ["Needs admin: Ocean"]
    assert _cursor(world.engine, world.hook_id) == 2


def test_kill_9_between_listing_payloads_and_commit_loses_and_doubles_nothing(
    tmp_path: Path, store_url: str
) -> None:
    clock = TickingClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    fake = _fake(clock)
    with FakeServer(fake.app) as api, FakeSmtpServer() as smtp:
        mail = smtp.settings()
        toml = write_toml(
            tmp_path / "syncd.toml",
            {
                "syncd": {
                    "state_dir": str(tmp_path / "state"),
                    "mappings": [str(write_rules(tmp_path / "mappings", RULES))],
                },
                "store": {"url": store_url},
                "http": {"public_url": PUBLIC_URL},
                "airtable": {
                    "token": TOKEN,
                    "base_id": BASE,
                    "base_url": api.url,
                    "tables": {"lead": "Leads", "hub": "Active Hubs"},
                },
                "email": {
                    "host": mail.host,
                    "port": mail.effective_port,
                    "security": "plain",
                    "from_address": "syncd@example.org",
                },
            },
        )
        ensured = CliRunner().invoke(
            main, ["airtable", "webhooks", "ensure", "--config", str(toml)]
        )
        assert ensured.exit_code == 0, ensured.output
        assert f"-> {PUBLIC_URL}/webhooks/airtable" in ensured.output
        (hook_id,) = list(fake.webhooks.hooks)  # one: only `lead` is watched by a rule
        assert TOKEN not in ensured.output

        engine = Engine(load_config(toml), clock)  # the daemon's webhook receiver
        ids = [
            fake.user_create("Leads", {"Name": n, "Status": "Active Lead"})
            for n in ("Ocean", "River")
        ]
        engine.poller.poll_all()
        clock.advance(60)
        for record in ids:
            fake.user_update("Leads", record, {"Status": "Needs Admin"})
        with serve(engine) as app:
            assert post(app, "airtable", *fake.signed_ping(hook_id)).status_code == 202
        engine.close()

        crashed = run_driver(toml, clock.now().isoformat(), "inbox", crash_at="inbox_before_commit")
        assert crashed.returncode == -9, crashed.stderr[-2000:]
        assert smtp.messages == []
        probe = Engine(load_config(toml), clock)
        assert _cursor(probe, hook_id) is None  # the cursor did not move past the lost work
        probe.close()

        later = (clock.now() + timedelta(hours=1)).isoformat()  # the delivery's lease ran out
        restarted = run_driver(toml, later, "inbox")
        assert restarted.returncode == 0, restarted.stderr[-2000:]
        assert json.loads(restarted.stdout.splitlines()[-1])["outcomes"] == ["done", "done"]
        assert _subjects(smtp) == ["Needs admin: Ocean", "Needs admin: River"]

        # A later ping with nothing new, and a full cycle with polling: nothing doubles.
        clock.advance(hours=2)
        engine = Engine(load_config(toml), clock)
        with serve(engine) as app:
            assert post(app, "airtable", *fake.signed_ping(hook_id)).status_code == 202
        engine.close()
        again = run_driver(toml, clock.now().isoformat(), "cycle")
        assert again.returncode == 0, again.stderr[-2000:]
        assert _subjects(smtp) == ["Needs admin: Ocean", "Needs admin: River"]
        probe = Engine(load_config(toml), clock)
        assert _cursor(probe, hook_id) == 5  # 2 creations + 2 updates, all acknowledged
        assert len(action_rows(probe)) == 2
        probe.close()
