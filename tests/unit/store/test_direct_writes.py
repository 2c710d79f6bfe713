"""The ingest's multi-row writes (and its snapshot reads) go to the sqlite3 driver directly
(syncd.store.direct, issue 17), and store byte for byte what SQLAlchemy stored: the same
ingests on two stores, one taking SQLAlchemy's way (a statement listener is installed),
leave the same rows."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from syncd.clock import FakeClock
from syncd.ingest import Ingestor, RulesHolder
from syncd.mapping.loader import load_rules
from syncd.model import ObjectRef, Observation
from syncd.store import direct as store_direct
from syncd.store.actions import add_actions, claim_due_actions
from syncd.store.db import Store, open_store
from syncd.store.events import add_events
from syncd.store.inbox import add_deliveries, claim_due_deliveries, mark_deliveries_done

RULES = """\
rules:
  - id: won
    when: {source: localdb, object: deal, field: stage, to: won}
    do:
      - localdb.record:
          title: "Won: {{ deal.name }} ({{ deal.amount }})"
          body: "{{ deal.tags | tojson }} {{ deal.empty }}"
          labels: ["{{ deal.stage }}", plain, "\u00e9t\u00e9"]
      - localdb.record: {title: "{{ deal.no_such_field }}"}  # a render failure: dead action
  - id: created
    when: {source: localdb, object: deal, created: true}
    do:
      - localdb.record: {title: "New {{ deal.id }}"}
"""
TABLES = {
    "events": "id",
    "snapshots": "source, object_type, object_id",
    "actions": "id",
    "event_traces": "event_id",
}


def _deal(n: int, stage: str, version: int, **extra: Any) -> Observation:
    fields = {
        "stage": stage,
        "name": f'Déal {n} \u2603 "quoted"',
        "amount": 10**15 + n if n % 2 else 12.5,
        "tags": {"b": [1, None, True], "a": "x"},
        "empty": None,
    }
    return Observation(
        ObjectRef("localdb", "deal", str(n)), fields, version, context={"n": n}, **extra
    )


def _ingest_everything(store: Store, tmp_path: Path) -> list[str]:
    """The same work on any store; the kinds of statements SQLAlchemy was asked to run."""
    executed: list[str] = []

    @event.listens_for(store.engine, "before_execute")
    def record(_conn: Any, clause: Any, *_: Any) -> None:
        tables = [clause.table] if hasattr(clause, "table") else clause.get_final_froms()
        names = ",".join(getattr(t, "name", "") for t in tables)
        executed.append(f"{getattr(clause, '__visit_name__', '')} {names}")

    rules = RulesHolder(load_rules([tmp_path], run_examples=False))
    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    ingestor = Ingestor(store, rules, clock, frozenset({"localdb"}))
    ingestor.ingest([_deal(n, "open", 1) for n in range(70)])  # 70 rows: chunks 64 + 4 + 2
    ingestor.ingest([_deal(n, "won", 2) for n in range(0, 70, 2)])
    # seen twice in a batch, redelivered, deleted, and a batch of one
    ingestor.ingest([_deal(1, "won", 3), _deal(1, "won", 3), _deal(2, "won", 2)])
    ingestor.ingest([_deal(3, "lost", 4, deleted=True), _deal(5, "won", 3)])
    ingestor.ingest([_deal(7, "won", 3)])
    return executed


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            for table, order in TABLES.items()
        }


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(RULES)
    return tmp_path / "rules"


def test_direct_writes_store_what_sqlalchemy_stored(tmp_path: Path, rules_dir: Path) -> None:
    direct = open_store(f"sqlite:///{tmp_path}/direct.sqlite3")
    through = open_store(f"sqlite:///{tmp_path}/sqlalchemy.sqlite3")
    event.listen(through.engine, "before_cursor_execute", lambda *_: None)  # SQLAlchemy's way
    direct_statements = _ingest_everything(direct, rules_dir)
    through_statements = _ingest_everything(through, rules_dir)
    direct.dispose()
    through.dispose()
    direct_rows = _dump(tmp_path / "direct.sqlite3")
    assert direct_rows == _dump(tmp_path / "sqlalchemy.sqlite3")
    assert len(direct_rows["events"]) > 70 + 35  # the work was done
    assert {a[11] for a in direct_rows["actions"]} == {"pending", "dead"}  # status
    # The direct store's batch writes went to the driver, not through SQLAlchemy's execute.
    writes = {
        "insert events",
        "insert snapshots",
        "insert actions",
        "insert event_traces",
        "select snapshots",  # the batch's snapshots, read together
        "select actions",  # which of the objects syncd created (none here)
    }
    assert writes <= set(through_statements)
    assert not writes & set(direct_statements), str(direct_statements)


def test_a_write_outside_a_transaction_takes_sqlalchemys_way(rules_dir: Path) -> None:
    """A connection with no transaction begun would send the driver's statement in
    autocommit, outside any transaction: SQLAlchemy runs it (and begins one)."""
    store = Store.in_memory()
    executed = []

    @event.listens_for(store.engine, "before_execute")
    def record(_conn: Any, clause: Any, *_: Any) -> None:
        executed.append(str(getattr(clause, "__visit_name__", clause)))

    with store.engine.connect() as conn:
        assert not conn.in_transaction()
        store.insert_many(conn, _traces(), [{"event_id": 1, "decisions": [], "created_at": 1}])
        conn.commit()
    assert executed == ["insert"]


def _traces() -> Any:
    from syncd.store.schema import event_traces

    return event_traces


def _store_deliveries(store: Store) -> tuple[list[list[bool]], list[str]]:
    """The intake's inserts (the InboxWriter's batches), and the statements SQLAlchemy ran."""
    executed: list[str] = []

    @event.listens_for(store.engine, "before_execute")
    def record(_conn: Any, clause: Any, *_: Any) -> None:
        executed.append(f"{getattr(clause, '__visit_name__', '')} {getattr(clause, 'table', '')}")

    def delivery(n: int, body: bytes = b'[{"objectId": 1}]') -> dict[str, Any]:
        return {
            "connector": "hubspot",
            "delivery_id": f"d-{n}",
            "headers": {"x-hubspot-signature-v3": f"sig\u00e9{n}", "content-type": "json"},
            "body": body,
            "received_at": 1_700_000_000_000 + n,
        }

    fresh = []
    for batch in (
        [delivery(n) for n in range(41)],  # chunks 32 + 8 + 1
        [delivery(3), delivery(41, b"\xff\xfe not utf-8"), delivery(41)],  # stored, new, repeat
    ):
        with store.tx() as conn:
            fresh.append(add_deliveries(store, conn, batch))
    return fresh, executed


def test_the_intakes_inserts_go_direct_and_store_what_sqlalchemy_stored(tmp_path: Path) -> None:
    direct = open_store(f"sqlite:///{tmp_path}/direct.sqlite3")
    through = open_store(f"sqlite:///{tmp_path}/sqlalchemy.sqlite3")
    event.listen(through.engine, "before_cursor_execute", lambda *_: None)  # SQLAlchemy's way
    direct_fresh, direct_statements = _store_deliveries(direct)
    through_fresh, through_statements = _store_deliveries(through)
    direct.dispose()
    through.dispose()
    assert direct_fresh == through_fresh == [[True] * 41, [False, True, False]]
    rows = []
    for name in ("direct", "sqlalchemy"):
        with sqlite3.connect(tmp_path / f"{name}.sqlite3") as db:
            rows.append(db.execute("SELECT * FROM inbox ORDER BY id").fetchall())
    assert rows[0] == rows[1]
    assert len(rows[0]) == 42
    assert "insert inbox" in through_statements
    assert "insert inbox" not in direct_statements, direct_statements


def _driver_statements(store: Store) -> list[str]:
    """Every statement the sqlite3 driver steps from now on (one per row of an executemany),
    on every connection the store opens."""
    stepped: list[str] = []

    @event.listens_for(store.engine, "connect")
    def trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(stepped.append)

    store.engine.dispose()  # connections made from now on are traced
    return stepped


def test_a_batch_write_is_one_statement_per_chunk_not_per_row(tmp_path: Path) -> None:
    """sqlite3 lets go of the GIL for every statement it steps; an executemany steps once per
    row, and the thread holding the store's write lock waits for the GIL after each one."""
    from syncd.store.schema import snapshots

    store = open_store(f"sqlite:///{tmp_path}/s.sqlite3")
    stepped = _driver_statements(store)

    def rows(n: int, version: int) -> list[dict[str, Any]]:
        return [
            {
                "source": "localdb",
                "object_type": "deal",
                "object_id": str(i),
                "version": version,
                "fields": {"i": i, "v": version},
                "context": {},
                "entered": {},
                "deleted": False,
                "updated_at": version,
            }
            for i in range(n)
        ]

    keys = ["source", "object_type", "object_id"]
    with store.tx() as conn:
        store.upsert_many(conn, snapshots, keys, rows(70, 1))
    with store.tx() as conn:
        store.upsert_many(conn, snapshots, keys, rows(5, 2))  # five stored already
    upserts = [s for s in stepped if s.startswith("INSERT INTO snapshots")]
    assert len(upserts) == 3 + 2  # 64 + 4 + 2 rows, then 4 + 1
    store.dispose()
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        found = db.execute("SELECT object_id, version, fields FROM snapshots").fetchall()
    assert len(found) == 70
    assert sorted(v for _, v, _ in found) == [1] * 65 + [2] * 5
    assert {i: json.loads(f) for i, v, f in found if v == 2}["4"] == {"i": 4, "v": 2}


def _finish_everything(store: Store) -> list[str]:
    """Finishes of several shapes recorded on `store`; the driver's statements meanwhile."""
    from syncd.store.actions import Finish, record_finishes
    from syncd.store.schema import actions

    def action(n: int, status: str) -> dict[str, Any]:
        return {
            "key": f"k{n}",
            "rule_id": "r",
            "connector": "localdb",
            "action": "record",
            "params": {"n": n},
            "status": status,
            "attempts": 1,
            "next_attempt_at": 0,
            "lease_owner": "me",
            "lease_until": 10,
            "created_at": 1,
            "updated_at": 1,
        }

    with store.tx() as conn:
        store.insert_many(conn, actions, [action(n, "in_flight") for n in range(1, 40)])
        store.insert_many(conn, actions, [action(40, "cancelled")])
    stepped = _driver_statements(store)
    done = [
        Finish(n, 1, 500 + n, {"status": "done", "external_id": f"x{n}", "last_error": None})
        for n in range(1, 35)
    ]
    retry = [
        Finish(n, 1, 600, {"status": "pending", "last_error": "503 é", "next_attempt_at": 9})
        for n in range(35, 39)
    ]
    quiet = [Finish(39, None, 700, {"status": "dead", "last_error": "gave up"})]
    cancelled = [Finish(40, 1, 800, {"status": "done", "external_id": "late"})]
    with store.tx() as conn:
        record_finishes(conn, [*done, *retry, *quiet, *cancelled])
    return stepped


def test_finishes_are_recorded_in_a_few_statements_as_sqlalchemy_recorded_them(
    tmp_path: Path,
) -> None:
    direct = open_store(f"sqlite:///{tmp_path}/direct.sqlite3")
    through = open_store(f"sqlite:///{tmp_path}/sqlalchemy.sqlite3")
    event.listen(through.engine, "before_cursor_execute", lambda *_: None)  # SQLAlchemy's way
    direct_steps = _finish_everything(direct)
    through_steps = _finish_everything(through)
    direct.dispose()
    through.dispose()
    dumps = []
    for name in ("direct", "sqlalchemy"):
        with sqlite3.connect(tmp_path / f"{name}.sqlite3") as db:
            dumps.append(
                (
                    db.execute("SELECT * FROM actions ORDER BY id").fetchall(),
                    db.execute("SELECT * FROM action_attempts ORDER BY action_id").fetchall(),
                )
            )
    assert dumps[0] == dumps[1]
    actions_rows, attempts = dumps[0]
    status = {row[0]: row[11] for row in actions_rows}
    assert [status[n] for n in (1, 34, 35, 39, 40)] == [
        "done",
        "done",
        "pending",
        "dead",
        "cancelled",
    ]
    # an attempt kept for each finish with a number, of an action still in flight
    assert [a[1] for a in attempts] == list(range(1, 39))
    # 34 + 4 + 1 + 1 finishes, 4 shapes, 39 attempts: the driver stepped the direct store's
    # in a statement per chunk (BEGIN and COMMIT aside); SQLAlchemy's way, one per row.
    writes = [s for s in direct_steps if s.split()[0] in ("INSERT", "UPDATE")]
    assert len(writes) <= 12, writes
    assert len([s for s in through_steps if s.split()[0] in ("INSERT", "UPDATE")]) >= 79


def _claims(store: Store) -> list[list[Any]]:
    """Claims over a mix of actions: due and not, leased and not, of busy connectors or
    not, with and without their event, one over the limit (`more` told)."""
    now = 1_000_000
    with store.tx() as conn:
        event_ids = add_events(
            store,
            conn,
            [
                {
                    "event_key": "e1",
                    "source": "localdb",
                    "object_type": "deal",
                    "object_id": "1",
                    "kind": "changed",
                    "field": "stage",
                    "old": None,
                    "new": "won",
                    "version": 77,
                    "created_at": 1,
                }
            ],
        )
        add_actions(
            store,
            conn,
            [
                {
                    "key": f"k{n}",
                    "rule_id": "r",
                    "connector": ("ledger", "github", "mail")[n % 3],
                    "action": "record",
                    "params": {"n": n, "text": "D\u00e9al \u2603", "list": [1, None]},
                    "event_id": event_ids["e1"] if n % 2 else None,
                    "status": ("pending", "pending", "in_flight", "done")[n % 4],
                    "attempts": n % 3,
                    "next_attempt_at": now - 10 + n,  # n > 10: not due yet
                    "lease_owner": "other" if n % 4 == 2 else None,
                    "lease_until": now - 1 if n % 8 == 2 else (now + 5 if n % 4 == 2 else None),
                    "created_at": n,
                    "updated_at": n,
                }
                for n in range(14)
            ],
        )
    told: list[str] = []
    out: list[list[Any]] = []
    for busy, limit in ((["github"], 2), ([], 3), (["github", "mail"], 10), ([], 10)):
        rows = claim_due_actions(
            store, "me", now_ms=now, lease_ms=60_000, limit=limit, busy=busy,
            more=lambda: told.append("more"),
        )  # fmt: skip
        out.append([tuple(vars(r).values()) for r in rows])
    out.append(told)
    return out


def test_the_claims_go_direct_and_take_what_sqlalchemy_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = open_store(f"sqlite:///{tmp_path}/direct.sqlite3")
    through = open_store(f"sqlite:///{tmp_path}/sqlalchemy.sqlite3")
    event.listen(through.engine, "before_cursor_execute", lambda *_: None)  # SQLAlchemy's way
    sent_direct: list[str] = []
    for name in ("fetch", "execute"):
        original = getattr(store_direct, name)

        def counted(driver: Any, prepared: Any, params: Any, original: Any = original) -> Any:
            sent_direct.append(prepared.sql.split(" WHERE ")[0][:30])
            return original(driver, prepared, params)

        monkeypatch.setattr(store_direct, name, counted)
    claimed = _claims(direct)
    went_direct = list(sent_direct)
    claimed_through = _claims(through)
    direct.dispose()
    through.dispose()
    assert claimed == claimed_through
    taken = [len(c) for c in claimed[:4]]
    assert taken == [2, 3, 1, 2] and claimed[4] == ["more", "more"]
    assert claimed[0][0][-1] is None and claimed[1][0][-1] == 77  # event_version read
    rows = []
    for name in ("direct", "sqlalchemy"):
        with sqlite3.connect(tmp_path / f"{name}.sqlite3") as db:
            rows.append(db.execute("SELECT * FROM actions ORDER BY id").fetchall())
    assert rows[0] == rows[1]
    assert sum(r[11] == "in_flight" and r[14] == "me" for r in rows[0]) == sum(taken)
    assert went_direct.count("UPDATE actions SET status=?, a") == 4, went_direct
    assert sum(s.startswith("SELECT actions.id") for s in went_direct) == 4, went_direct
    assert len(sent_direct) == len(went_direct)  # SQLAlchemy's way: none direct


def _inbox_claims(store: Store) -> tuple[list[list[Any]], list[str]]:
    """The inbox thread's claims (read, lease) and done-marks over stored deliveries, and
    the statements SQLAlchemy ran for them."""
    _store_deliveries(store)
    executed: list[str] = []

    @event.listens_for(store.engine, "before_execute")
    def record(_conn: Any, clause: Any, *_: Any) -> None:
        executed.append(f"{getattr(clause, '__visit_name__', '')} {getattr(clause, 'table', '')}")

    out: list[list[Any]] = []
    for now, limit in ((1_700_000_000_010, 5), (1_700_000_000_020, 7), (1_700_000_000_100, 50)):
        rows = claim_due_deliveries(store, now_ms=now, lease_ms=60_000, limit=limit)
        out.append([tuple(vars(r).values()) for r in rows])
        with store.tx() as conn:
            mark_deliveries_done(store, conn, [r.id for r in rows[::2]])
    return out, executed


def test_the_inbox_claims_go_direct_and_take_what_sqlalchemy_took(tmp_path: Path) -> None:
    direct = open_store(f"sqlite:///{tmp_path}/direct.sqlite3")
    through = open_store(f"sqlite:///{tmp_path}/sqlalchemy.sqlite3")
    event.listen(through.engine, "before_cursor_execute", lambda *_: None)  # SQLAlchemy's way
    (claimed, direct_sent), (claimed_through, through_sent) = (
        _inbox_claims(direct),
        _inbox_claims(through),
    )
    direct.dispose()
    through.dispose()
    assert claimed == claimed_through
    assert [len(c) for c in claimed] == [5, 7, 30]  # 42 stored; the leased ones not again
    rows = []
    for name in ("direct", "sqlalchemy"):
        with sqlite3.connect(tmp_path / f"{name}.sqlite3") as db:
            rows.append(db.execute("SELECT * FROM inbox ORDER BY id").fetchall())
    assert rows[0] == rows[1]
    assert sum(r[6] == "done" for r in rows[0]) == 3 + 4 + 15
    assert {r[7] for r in rows[0]} == {1}  # each delivery's attempt counted once
    assert through_sent == ["select ", "update inbox", "update inbox"] * 3
    assert direct_sent == [], direct_sent
