"""A failed render is repaired: fix the mapping, `syncd actions retry`, performed once."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from syncd.cli import main
from syncd.clock import FakeClock
from syncd.store.schema import actions
from tests.helpers import make_engine, write_rules

BROKEN = """
rules:
  - id: record-on-done
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record:
          title: "Done: {{ item.name.upper(1, 2, 3) }}"
"""
FIXED = BROKEN.replace("item.name.upper(1, 2, 3)", "item.name")


def _config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "ops.toml"
    path.write_text(
        f'[syncd]\nmappings = ["{tmp_path / "mappings"}"]\n'
        f'state_dir = "{tmp_path / "state"}"\n[store]\nurl = "{store_url}"\n'
        f'[localdb]\npath = "{tmp_path / "remote.sqlite3"}"\n'
    )
    return path


def _retry(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["actions", "retry", *args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


def _dead(engine: object, count: int) -> list[dict]:
    with engine.store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = (
            conn.execute(select(actions).where(actions.c.status == "dead").order_by(actions.c.id))
            .mappings()
            .all()
        )
    assert len(rows) == count
    return [dict(r) for r in rows]


def test_a_failed_render_is_retried_after_the_fix_and_performed_once(
    tmp_path: Path, store_url: str
) -> None:
    engine = make_engine(tmp_path, store_url, FakeClock(), rules=BROKEN)
    remote = engine.connectors["localdb"].remote
    remote.put("item", "a", name="Ocean", stage="open")
    engine.poller.poll_all()
    remote.put("item", "a", name="Ocean", stage="done")
    engine.poller.poll_all()
    (row,) = _dead(engine, 1)
    assert row["params"] == {} and "template error" in row["last_error"]
    config = _config(tmp_path, store_url)

    # not fixed yet: it still fails and stays dead, with the error shown
    assert "still fails, left dead" in _retry(config, str(row["id"]))
    write_rules(tmp_path / "mappings", FIXED)
    out = _retry(config, str(row["id"]))
    assert f"action {row['id']} (record-on-done): re-planned with today's rules" in out
    engine.executor.drain()
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: Ocean"]
    assert "is done; only dead or cancelled" in _retry(config, str(row["id"]))
    engine.executor.drain()
    assert len(remote.effects()) == 1
    engine.close()


def test_a_bulk_retry_of_20_dead_actions_performs_20(tmp_path: Path, store_url: str) -> None:
    engine = make_engine(tmp_path, store_url, FakeClock(), rules=BROKEN)
    remote = engine.connectors["localdb"].remote
    for i in range(20):
        remote.put("item", f"i{i}", name=f"n{i}", stage="open")
    engine.poller.poll_all()
    for i in range(20):
        remote.put("item", f"i{i}", name=f"n{i}", stage="done")
    engine.poller.poll_all()
    _dead(engine, 20)
    write_rules(tmp_path / "mappings", FIXED)
    out = _retry(_config(tmp_path, store_url), "--rule", "record-on-done")
    assert out.count("re-planned with today's rules, pending") == 20
    engine.executor.drain()
    assert sorted(e["params"]["title"] for e in remote.effects()) == sorted(
        f"Done: n{i}" for i in range(20)
    )
    assert "0 action(s) looked at" in _retry(
        _config(tmp_path, store_url), "--status", "dead", "--since", "2000-01-01"
    )
    engine.close()
