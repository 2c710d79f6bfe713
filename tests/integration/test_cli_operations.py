"""The operator's commands against a real store: status, actions list/show/cancel, prune."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from syncd.cli import main
from syncd.clock import FakeClock
from syncd.store.schema import actions, events, inbox
from tests.helpers import make_engine, write_rules


def config_file(tmp_path: Path, store_url: str, retention_days: int = 90) -> Path:
    path = tmp_path / "ops.toml"
    rules = write_rules(tmp_path / "mappings")
    path.write_text(
        f'[syncd]\nmappings = ["{rules}"]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[store]\nurl = "{store_url}"\nretention_days = {retention_days}\n'
        f'[localdb]\npath = "{tmp_path / "remote.sqlite3"}"\n'
    )
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_status_list_show_cancel(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", "permanent")
    remote.put("item", "a", name="Ocean", stage="done")
    remote.put("item", "b", name="Sea", stage="review")
    engine.poller.poll_all()
    engine.executor.run_due(limit=1)  # the first one goes dead, the other stays pending
    config = config_file(tmp_path, store_url)

    state = json.loads(run("status", "--json", "--config", str(config)))
    assert state["dead"] == 1 and state["queue_depth"] == 1
    assert [p["stream"] for p in state["polls"]] == ["item"]

    listed = run("actions", "list", "--status", "dead", "--config", str(config))
    assert "record-on-done" in listed and "localdb:item:a" in listed
    with engine.store.engine.connect() as conn:
        query = select(actions).where(actions.c.status == "pending")
        pending = conn.execute(query).mappings().one()
    shown = json.loads(
        run("actions", "show", pending["key"][:10], "--json", "--config", str(config))
    )
    assert shown["params"]["title"] == "First review of Sea"
    run("actions", "cancel", str(pending["id"]), "--config", str(config))
    assert engine.executor.drain() == []  # cancelled: never performed
    assert remote.effects() == []
    engine.close()


def test_prune_keeps_unfinished_work(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.put("item", "a", name="Ocean", stage="done")
    remote.fail_next("record", "permanent")
    remote.put("item", "b", name="Sea", stage="done")
    engine.run_once()
    clock.advance(days=91)
    remote.put("item", "c", name="Lake", stage="review")
    engine.poller.poll_all()  # a fresh, pending action
    pruned = engine.prune()
    with engine.store.engine.connect() as conn:
        statuses = sorted(r[0] for r in conn.execute(select(actions.c.status)))
        recent_events = conn.execute(select(func.count()).select_from(events)).scalar()
    assert pruned["actions"] == 1 and pruned["events"] >= 4
    assert statuses == ["dead", "pending"]  # done work pruned; dead and pending kept
    assert recent_events >= 1  # the new item's events stay
    engine.close()


def test_failed_delivery_is_listed_with_its_reason_and_can_be_retried(
    tmp_path: Path, store_url: str
) -> None:
    from syncd.inbox import Delivery

    engine = make_engine(tmp_path, store_url, FakeClock())
    # Stored by an earlier configuration that had a [ghost] connector.
    engine.writer.submit(Delivery("ghost", "d-1", {}, b"{}", 0)).result()
    engine.inbox.drain()
    config = config_file(tmp_path, store_url)
    listed = run("inbox", "list", "--config", str(config))
    assert "d-1" in listed and "connector 'ghost' is not configured" in listed
    with engine.store.engine.connect() as conn:
        (delivery_id,) = conn.execute(select(inbox.c.id)).one()
    run("inbox", "retry", str(delivery_id), "--config", str(config))
    assert "d-1" in run("inbox", "list", "--status", "pending", "--config", str(config))
    result = CliRunner().invoke(main, ["inbox", "retry", "999", "--config", str(config)])
    assert result.exit_code != 0 and "no failed delivery 999" in result.output
    engine.close()


def test_status_shows_when_each_source_went_live(tmp_path: Path, store_url: str) -> None:
    config = config_file(tmp_path, store_url)
    before = run("status", "--config", str(config))
    assert "source localdb: not live yet (the first run baselines it)" in before
    assert json.loads(run("status", "--json", "--config", str(config)))["went_live"] == {
        "localdb": None
    }
    engine = make_engine(tmp_path, store_url, FakeClock())
    engine.run_once()  # the first run: the source goes live
    engine.close()
    assert "source localdb: live since 2026-01-05T09:00:00+00:00" in run(
        "status", "--config", str(config)
    )
    state = json.loads(run("status", "--json", "--config", str(config)))
    assert state["went_live"] == {"localdb": "2026-01-05T09:00:00+00:00"}
