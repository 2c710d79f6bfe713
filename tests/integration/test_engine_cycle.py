"""The engine end to end on the localdb connector: poll -> diff -> rules -> executor."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from syncd.cli import main
from syncd.clock import FakeClock
from syncd.store.schema import actions, events
from tests.helpers import make_engine


def _rows(engine, table=actions):
    with engine.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def test_every_transition_fires_once_in_order(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.put("item", "a", name="Ocean", stage="open")
    engine.run_once()
    # Between two polls the item goes to review, done, open again and done again.
    for stage in ("review", "done", "open", "done"):
        remote.put("item", "a", stage=stage)
    engine.run_once()
    engine.run_once()  # nothing new: a change seen twice counts once
    titles = [e["params"]["title"] for e in remote.effects()]
    assert titles == ["First review of Ocean", "Done: Ocean", "Done: Ocean"]
    stage_events = [(e["old"], e["new"]) for e in _rows(engine, events) if e["field"] == "stage"]
    assert stage_events == [
        (None, "open"),
        ("open", "review"),
        ("review", "done"),
        ("done", "open"),
        ("open", "done"),
    ]
    assert {a["status"] for a in _rows(engine)} == {"done"}
    engine.close()


def test_transient_error_waits_for_retry_after_then_succeeds(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", "transient", retry_after=120)
    remote.put("item", "a", name="Ocean", stage="done")
    report = engine.run_once()
    assert [o.status for o in report.outcomes] == ["pending"]
    row = _rows(engine)[0]
    assert row["next_attempt_at"] - int(clock.now().timestamp() * 1000) >= 120_000
    assert "503" in row["last_error"]
    clock.advance(60)
    assert engine.run_once().outcomes == []  # not due before Retry-After
    clock.advance(61 + 30)  # past Retry-After (and the jittered backoff, at most base+jitter)
    assert [o.status for o in engine.run_once().outcomes] == ["done"]
    assert len(remote.effects()) == 1
    engine.close()


def test_ambiguous_write_is_found_not_repeated(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", applied_first=True)  # applied, then "502"
    remote.put("item", "a", name="Ocean", stage="done")
    engine.run_once()
    clock.advance(3600)
    assert [o.status for o in engine.run_once().outcomes] == ["done"]
    assert len(remote.effects()) == 1
    assert _rows(engine)[0]["external_id"] == str(remote.effects()[0]["id"])
    engine.close()


def test_permanent_error_goes_dead_with_reason_and_retry_revives(
    tmp_path: Path, store_url: str
) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", "permanent")
    remote.put("item", "a", name="Ocean", stage="done")
    assert [o.status for o in engine.run_once().outcomes] == ["dead"]
    row = _rows(engine)[0]
    assert row["status"] == "dead" and "refused" in row["last_error"]
    assert remote.effects() == []

    config = tmp_path / "syncd.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n[syncd]\nmappings = []\n')
    result = CliRunner().invoke(main, ["actions", "retry", str(row["id"]), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert [o.status for o in engine.run_once().outcomes] == ["done"]
    assert len(remote.effects()) == 1
    engine.close()


def test_exhausted_retries_go_dead(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock, max_attempts=3)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", "transient", count=10)
    remote.put("item", "a", name="Ocean", stage="done")
    statuses = []
    for _ in range(5):
        statuses += [o.status for o in engine.run_once().outcomes]
        clock.advance(7200)
    assert statuses == ["pending", "pending", "dead"]
    assert "gave up after 3 attempts" in _rows(engine)[0]["last_error"]
    engine.close()


def test_action_interrupted_in_flight_is_looked_up_first(tmp_path: Path, store_url: str) -> None:
    """A crash after the remote effect but before the local commit: on restart the lease
    expires, the finder sees the effect, and nothing is done twice."""
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock, lease_seconds=60)
    remote = engine.connectors["localdb"].remote
    remote.put("item", "a", name="Ocean", stage="done")
    engine.poller.poll_all()
    (row,) = engine.executor.claim(10)  # marked in flight...
    # ...the remote call succeeds, then the process "crashes" before the local commit
    remote.add_effect(row.key, "record", {"title": "Done: Ocean"})
    assert engine.executor.run_due() == []  # lease still held
    clock.advance(61)
    assert [o.status for o in engine.executor.run_due()] == ["done"]
    assert len(remote.effects()) == 1
    engine.close()


def test_rendering_error_is_recorded_dead_not_lost(tmp_path: Path, store_url: str) -> None:
    rules = """
    rules:
      - id: needs-owner
        when: {source: localdb, object: item, field: stage, to: done}
        do:
          - localdb.record: {title: "{{ item.owner }}"}
    """
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock, rules=rules)
    engine.connectors["localdb"].remote.put("item", "a", stage="done")
    engine.run_once()
    (row,) = _rows(engine)
    assert row["status"] == "dead"
    assert "owner" in row["last_error"]
    engine.close()
