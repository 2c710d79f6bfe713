"""The operator's commands against a real store: status, actions list/show/cancel, prune."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from syncd.cli import main
from syncd.clock import FakeClock
from syncd.config import load_config
from syncd.engine import Engine
from syncd.store.schema import actions, events, inbox
from tests.helpers import make_engine, write_rules


def config_file(tmp_path: Path, store_url: str, retention_days: int = 90, more: str = "") -> Path:
    path = tmp_path / "ops.toml"
    rules = write_rules(tmp_path / "mappings")
    path.write_text(
        f'[syncd]\nmappings = ["{rules}"]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[store]\nurl = "{store_url}"\nretention_days = {retention_days}\n'
        f'[localdb]\npath = "{tmp_path / "remote.sqlite3"}"\n' + more
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
    # An action-only connector (email) observes nothing: it has no go-live to show.
    email = '[email]\nhost = "127.0.0.1"\nport = 2525\nfrom_address = "syncd@example.com"\n'
    config = config_file(tmp_path, store_url, more=email)
    before = run("status", "--config", str(config))
    assert "source localdb: not live yet (the first run baselines it)" in before
    assert "email" not in before
    assert json.loads(run("status", "--json", "--config", str(config)))["went_live"] == {
        "localdb": None
    }
    engine = make_engine(tmp_path, store_url, FakeClock())
    engine.run_once()  # the first run: the source goes live
    engine.close()
    with_email = Engine(load_config(config), FakeClock())
    assert "email" in with_email.go_live()  # an instant is recorded for every connector
    with_email.close()
    after = run("status", "--config", str(config))
    assert "source localdb: live since 2026-01-05T09:00:00+00:00" in after
    assert "email" not in after
    state = json.loads(run("status", "--json", "--config", str(config)))
    assert state["went_live"] == {"localdb": "2026-01-05T09:00:00+00:00"}


def test_check_and_one_cycle_refuse_the_file_modes_the_daemon_refuses(
    tmp_path: Path, store_url: str
) -> None:
    """`syncd check` is what an operator runs before a start: it must not pass a config that
    `syncd run` would then refuse to start with, and `run --once` refuses it as `run` does."""
    config = config_file(tmp_path, store_url)
    tmp_path.chmod(0o755)
    assert CliRunner().invoke(main, ["check", "--config", str(config)]).exit_code == 0
    config.chmod(0o666)  # writable by anyone: whoever can write it runs code as syncd

    checked = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert checked.exit_code == 1
    assert f"chmod go-w {config}" in checked.output
    assert "1 problem(s) found" in checked.output

    cycle = CliRunner().invoke(main, ["run", "--once", "--config", str(config)])
    assert cycle.exit_code == 2
    assert f"chmod go-w {config}" in cycle.output
    assert "cycle:" not in cycle.output  # nothing ran

    config.chmod(0o600)
    assert "cycle:" in run("run", "--once", "--config", str(config))


def test_commands_without_a_config_say_so_and_fail_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a folder with no config file and no mappings: a note that the defaults apply, then
    the missing mappings as an error, for the commands that load the rules."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    for command in (["status"], ["prune"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert "note: no config file" in result.output
        assert f"error: {tmp_path / 'mappings'}: cannot read" in result.output
        assert "Traceback" not in result.output


def test_a_command_for_a_connector_not_configured_says_so_before_calling_any_api(
    tmp_path: Path,
) -> None:
    """`backfill nosuch` names the missing table at once, without first building every
    configured connector (HubSpot here, behind a closed port) and waiting on its API."""
    rules = write_rules(tmp_path / "mappings")
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[syncd]\nmappings = ["{rules}"]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[localdb]\npath = "{tmp_path / "remote.sqlite3"}"\n'
        '[hubspot]\naccess_token = "t"\nbase_url = "http://127.0.0.1:9"\n'
    )
    result = CliRunner().invoke(main, ["backfill", "nosuch", "--config", str(config)])
    assert result.exit_code != 0
    assert "no enabled [nosuch] table in the config" in result.output
    assert not (tmp_path / "state").exists()  # no engine was built: no store opened either


def test_one_cycle_without_a_token_says_so_before_making_a_store(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "mappings")
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[syncd]\nmappings = ["{rules}"]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[localdb]\npath = "{tmp_path / "remote.sqlite3"}"\n[github]\n'
    )
    result = CliRunner().invoke(
        main, ["run", "--once", "--config", str(config)], env={"SYNCD_GITHUB_TOKEN": None}
    )
    assert result.exit_code == 1
    assert "[github] token: required to run" in result.output
    assert not (tmp_path / "state" / "syncd.sqlite3").exists()


def test_a_first_cycle_on_a_new_store_logs_no_alembic_chatter(tmp_path: Path) -> None:
    """Making the store runs its migrations: at the default level the operator sees syncd's
    lines, not the migration tool listing its plugins as it loads (a process of its own:
    alembic is imported once per process)."""
    rules = write_rules(tmp_path / "mappings")
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[syncd]\nmappings = ["{rules}"]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[localdb]\npath = "{tmp_path / "remote.sqlite3"}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "run", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "cycle:" in done.stdout
    assert (tmp_path / "state" / "syncd.sqlite3").exists()  # made, and migrated, just now
    assert "alembic" not in done.stderr
