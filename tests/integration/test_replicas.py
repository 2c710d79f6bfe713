"""Three replicas on one PostgreSQL database, with kill -9s: no duplicate work, none lost."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from syncd.store.schema import actions, leaderships
from syncd_sandbox.localdb import LocalDbRemote
from syncd_sandbox.localdb.connector import sign
from tests.conftest import PG_URL, _psycopg_url
from tests.helpers import RULES, free_port, wait_healthy, write_rules
from tests.integration.test_crash_recovery import ROOT, SECRET, effect_titles, expected_effects

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="replicas need PostgreSQL: set SYNCD_TEST_DATABASE_URL"
)


def replica_config(tmp_path: Path, index: int, store_url: str, rules: Path) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / f"replica{index}.toml"
    path.write_text(f"""
[syncd]
state_dir = "{tmp_path / f"state{index}"}"
mappings = ["{rules}"]
log_level = "warning"
[store]
url = "{store_url}"
[http]
port = {port}
[console]
enabled = false
[executor]
lease_seconds = 3
backoff_base_seconds = 0.2
workers = 2
[scheduler]
tick_seconds = 1
[localdb]
path = "{tmp_path / "remote.sqlite3"}"
webhook_secret = "{SECRET}"
page_size = 5
poll_interval_seconds = 0.5
""")
    return path, port


class Replica:
    def __init__(self, config: Path, port: int) -> None:
        self.config, self.port = config, port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_CRASH")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd.cli", "run", "--config", str(self.config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(self.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def pg_url(store_url: str) -> str:
    if not store_url.startswith("postgresql"):
        pytest.skip("this test is about PostgreSQL replicas")
    return store_url


def poll_holder(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(leaderships.c.holder).where(leaderships.c.name == "poll:localdb:item")
        ).scalar()


def test_three_replicas_with_kills_do_every_effect_once(
    tmp_path: Path, pg_url: str, report_figure
) -> None:
    rng = random.Random(11)
    rules = write_rules(tmp_path / "mappings", RULES)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    for i in range(30):
        remote.put("item", f"i{i}", name=f"i{i}", stage="open")
    replicas = [Replica(*replica_config(tmp_path, n, pg_url, rules)) for n in range(3)]
    db = create_engine(_psycopg_url(pg_url))
    takeovers: list[float] = []
    try:
        for r in replicas:
            r.start()
        for round_ in range(12):
            for _ in range(15):  # a few hundred changes in all
                obj = f"i{rng.randrange(30)}"
                remote.put("item", obj, stage=rng.choice(["open", "review", "done"]))
                if rng.random() < 0.5:  # half are also announced by webhook, to any replica
                    body = json.dumps({"type": "item", "id": obj}).encode()
                    target = rng.choice([r for r in replicas if r.proc and r.proc.poll() is None])
                    requests.post(
                        f"http://127.0.0.1:{target.port}/webhooks/localdb",
                        data=body,
                        timeout=10,
                        headers={
                            "x-localdb-delivery": f"r{round_}-{obj}-{rng.random()}",
                            "x-localdb-signature": sign(SECRET, body),
                        },
                    )
            if round_ % 3 == 1:
                # Kill the replica holding the poller, and time the takeover.
                holder = poll_holder(db)
                victim = next(
                    (r for r in replicas if holder and r.proc and f":{r.proc.pid}:" in holder),
                    rng.choice(replicas),
                )
                victim.kill()
                killed_at = time.monotonic()
                while time.monotonic() - killed_at < 45:
                    now_holder = poll_holder(db)
                    if now_holder and now_holder != holder:
                        takeovers.append(time.monotonic() - killed_at)
                        break
                    time.sleep(0.2)
                victim.start()
            time.sleep(rng.uniform(0.1, 0.5))
        expected = expected_effects(remote)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with db.connect() as conn:
                open_actions = conn.execute(
                    select(func.count()).where(actions.c.status.in_(("pending", "in_flight")))
                ).scalar()
            if open_actions == 0 and effect_titles(remote) == expected:
                break
            time.sleep(0.5)
    finally:
        for r in replicas:
            r.stop()
        db.dispose()
    titles = effect_titles(remote)
    keys = [e["key"] for e in remote.effects()]
    report_figure(
        f"replicas: {sum(expected.values())} expected effects, {len(keys)} made; "
        f"poller takeovers after kill -9: {[round(t, 1) for t in takeovers]} s"
    )
    assert sum(expected.values()) > 40
    assert titles == expected
    assert len(keys) == len(set(keys))
    assert len(takeovers) == 4 and max(takeovers) < 30
