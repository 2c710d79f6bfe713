"""The outbox: every query on planned actions. Rows come back as `ActionRow`.

Statuses: pending -> in_flight -> done | dead | cancelled (see schema.actions).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    Text,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)

from syncd.model import ObjectRef
from syncd.store import direct
from syncd.store.db import Store, padded, shaped_chunks
from syncd.store.schema import ACTION_STATUSES, action_attempts, actions, events

ACTIVE = ("pending", "in_flight")
STATUSES = ACTION_STATUSES  # every status an action can have (filters, forms)


@dataclass(frozen=True)
class ActionRow:
    """One planned action as stored (`attempts` as it was when the row was read)."""

    id: int
    key: str
    rule_id: str
    connector: str
    action: str
    params: Any
    source: str | None
    object_type: str | None
    object_id: str | None
    event_id: int | None
    guarantee: str
    status: str
    attempts: int
    next_attempt_at: int
    lease_owner: str | None
    lease_until: int | None
    last_error: str | None
    external_id: str | None
    external_url: str | None
    created_at: int
    updated_at: int
    # The version of the change behind it (read with it when claimed; None: not read).
    event_version: int | None = None

    @property
    def ref(self) -> ObjectRef | None:
        """The object the action was planned for (None for a schedule's or an alert's)."""
        if not self.source or self.object_type is None or self.object_id is None:
            return None
        return ObjectRef(self.source, self.object_type, self.object_id)


def _rows(result: Iterable[Any]) -> list[ActionRow]:
    """Rows of `select(actions)` (and the claim's event_version after them), by position."""
    return [ActionRow(*r) for r in result]


# ActionRow is built by position from `select(actions)`: its fields in the table's order.
assert [c.name for c in actions.c] == list(ActionRow.__dataclass_fields__)[:-1]


# The executor's statements, built once (building one costs more than running it on SQLite).
# Every value is a named parameter: on SQLite they also go to the driver directly (see
# `_due_rows`), which needs every parameter named.
_EVENT_VERSION = select(events.c.version).where(events.c.id == actions.c.event_id).scalar_subquery()
_ACTIVE_PARAMS = {f"active_{i}": status for i, status in enumerate(ACTIVE)}


def _due_statement(*busy: Any) -> Any:
    """Due actions, oldest first; `busy`: the condition leaving busy connectors out."""
    return (
        select(actions, _EVENT_VERSION.label("event_version"))
        .where(
            actions.c.status.in_([bindparam(n) for n in _ACTIVE_PARAMS]),
            actions.c.next_attempt_at <= bindparam("now"),
            or_(actions.c.lease_until.is_(None), actions.c.lease_until < bindparam("now")),
            *busy,
        )
        .order_by(actions.c.next_attempt_at, actions.c.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))  # (SQLite's LIMIT comes with one: named, not a literal)
    )


_DUE = _due_statement(actions.c.connector.not_in(bindparam("busy", expanding=True)))
# PostgreSQL: replicas never share a row
_DUE_LOCKED = _DUE.with_for_update(of=actions, skip_locked=True)
_CLAIM_SET = update(actions).values(
    status=bindparam("in_flight"),
    lease_owner=bindparam("owner"),
    lease_until=bindparam("until"),
    attempts=actions.c.attempts + literal_column("1"),
    updated_at=bindparam("now"),
)
_CLAIM = _CLAIM_SET.where(actions.c.id.in_(bindparam("ids", expanding=True)))
_FINISHED: dict[tuple[str, ...], Any] = {}  # finish statements by the columns they set


def claim_due_actions(
    store: Store,
    owner: str,
    now_ms: int,
    lease_ms: int,
    limit: int,
    defer: Callable[[ActionRow], int | None] | None = None,
    busy: Iterable[str] = (),
    admit: Callable[[ActionRow], bool] | None = None,
    in_tx: Connection | None = None,
    more: Callable[[], None] | None = None,
) -> list[ActionRow]:
    """Take due actions under a lease, marking them in flight and counting the attempt, in a
    committed transaction (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas never claim the
    same row; SQLite: the single writer lock). The rows are returned as read, before the
    update (their `attempts` is the count of earlier attempts).

    `defer(row)`: when it returns an instant (ms), the row is not claimed but due again then,
    with no attempt counted (an action only waiting for its API's rate budget).
    `busy`: connectors whose actions are not taken now; `admit(row)` False: the row is left
    as it is (both: the executor's bound on a connector's actions in flight).
    `in_tx`: claim inside that (the caller's) transaction instead of a new one.
    `more()`: called when more than `limit` actions were due (one row more is read to know;
    it is left as it is, on PostgreSQL locked with the others until the commit)."""
    with store.tx() if in_tx is None else contextlib.nullcontext(in_tx) as conn:
        read = limit + 1 if more is not None else limit
        rows = _due_rows(store, conn, now_ms, read, list(busy))
        if more is not None and len(rows) > limit:
            del rows[limit:]
            more()
        if defer is not None:
            rows = [r for r in rows if not _deferred(conn, r, defer(r))]
        if admit is not None:
            rows = [r for r in rows if admit(r)]
        if rows:
            _mark_claimed(store, conn, [r.id for r in rows], owner, now_ms + lease_ms, now_ms)
    return rows


# The claim's two statements run inside the write lock (the inbox's commit and the
# executor's batches): on SQLite they go to the driver directly (syncd.store.direct), as
# SQLAlchemy's expanding IN lists and result processing cost more than the statements
# (issue 17). One statement text per count of busy connectors and per padded id count.


def _due_rows(
    store: Store, conn: Connection, now_ms: int, limit: int, busy: list[str]
) -> list[ActionRow]:
    params: dict[str, Any] = {"now": now_ms, "limit": limit, "offset": 0, **_ACTIVE_PARAMS}
    if not store.is_sqlite:
        return _rows(conn.execute(_DUE_LOCKED, {**params, "busy": busy}))
    found = store.direct_query(conn, ("due", len(busy)), lambda: _due_direct(len(busy)))
    if found is None:
        return _rows(conn.execute(_DUE, {**params, "busy": busy}))
    driver, prepared = found
    params.update((f"busy_{i}", name) for i, name in enumerate(busy))
    return _rows(direct.fetch(driver, prepared, prepared.parameters((params,))))


def _due_direct(busy: int) -> tuple[Any, list[str]]:
    """_DUE with each busy connector its own parameter (none: no such condition)."""
    names = [f"busy_{i}" for i in range(busy)]
    condition = [actions.c.connector.not_in([bindparam(n) for n in names])] if names else []
    return _due_statement(*condition), ["now", "limit", "offset", *_ACTIVE_PARAMS, *names]


def _mark_claimed(
    store: Store, conn: Connection, ids: list[int], owner: str, until_ms: int, now_ms: int
) -> None:
    ids = padded(ids)
    values: dict[str, Any] = {
        "in_flight": "in_flight",
        "owner": owner,
        "until": until_ms,
        "now": now_ms,
    }
    found = store.direct_query(conn, ("claim", len(ids)), lambda: _claim_direct(len(ids)))
    if found is None:
        conn.execute(_CLAIM, {**values, "ids": ids})
        return
    driver, prepared = found
    values.update((f"id_{i}", action_id) for i, action_id in enumerate(ids))
    direct.execute(driver, prepared, prepared.parameters((values,)))


def _claim_direct(size: int) -> tuple[Any, list[str]]:
    """_CLAIM for `size` ids, each its own parameter."""
    names = [f"id_{i}" for i in range(size)]
    stmt = _CLAIM_SET.where(actions.c.id.in_([bindparam(n) for n in names]))
    return stmt, ["in_flight", "owner", "until", "now", *names]


def _deferred(conn: Connection, row: ActionRow, until_ms: int | None) -> bool:
    if until_ms is None:
        return False
    conn.execute(update(actions).where(actions.c.id == row.id).values(next_attempt_at=until_ms))
    return True


def extend_leases(store: Store, ids: list[int], owner: str, until_ms: int) -> None:
    """Keep the actions `owner` still holds in flight leased until at least `until_ms` (a
    request waits for its rate budget: no replica may take them over meanwhile)."""
    if not ids:
        return
    with store.tx() as conn:
        conn.execute(
            update(actions)
            .where(
                actions.c.id.in_(ids),
                actions.c.status == "in_flight",
                actions.c.lease_owner == owner,
                actions.c.lease_until < until_ms,
            )
            .values(lease_until=until_ms)
        )


@dataclass(frozen=True)
class Finish:
    """An attempt's end to record: the action, its attempt number (None: not kept in the
    history), when, and the columns to set (status, external_id, last_error...)."""

    action_id: int
    attempt: int | None
    now_ms: int
    values: dict[str, Any]


# An attempt's record, kept only while its action is still in flight (checked in the same
# statement: no separate read of which actions are).
_ADD_ATTEMPT_IF_IN_FLIGHT = action_attempts.insert().from_select(
    ["action_id", "attempt", "finished_at", "outcome", "error"],
    select(
        actions.c.id,
        bindparam("attempt", type_=Integer),
        bindparam("finished_at", type_=BigInteger),
        bindparam("outcome", type_=String),
        bindparam("error", type_=Text),
    ).where(actions.c.id == bindparam("action_id"), actions.c.status == "in_flight"),
)


def _finish_statement(names: tuple[str, ...]) -> Any:
    stmt = _FINISHED.get(names)
    if stmt is None:  # a handful of shapes (done, retry, dead): each built once
        stmt = _FINISHED[names] = (
            update(actions)
            .where(actions.c.id == bindparam("_id"), actions.c.status == "in_flight")
            .values(
                lease_owner=None,
                lease_until=None,
                updated_at=bindparam("_now"),
                **{name: bindparam(f"_{name}") for name in names},
            )
        )
    return stmt


def finish_actions(store: Store, finishes: list[Finish]) -> None:
    """Record attempts' ends (done, pending again, dead) and drop their leases, in one
    transaction (`record_finishes`)."""
    if finishes:
        with store.tx() as conn:
            record_finishes(conn, finishes)


def record_finishes(conn: Connection, finishes: list[Finish]) -> None:
    """Record attempts' ends in the caller's transaction; only an action still in flight
    changes (one cancelled meanwhile stays cancelled, one recorded already is left as it
    is). Each attempt is kept with its outcome and error in the attempts' history (the
    console's action page)."""
    if not finishes:
        return
    history = [
        {
            "action_id": f.action_id,
            "attempt": f.attempt,
            "finished_at": f.now_ms,
            "outcome": f.values["status"],
            "error": f.values.get("last_error"),
        }
        for f in finishes
        if f.attempt is not None
    ]
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for f in finishes:
        params = {f"_{name}": value for name, value in f.values.items()}
        params.update(_id=f.action_id, _now=f.now_ms)
        by_shape.setdefault(tuple(sorted(f.values)), []).append(params)
    driver = direct.driver_of(conn) if conn.dialect.name == "sqlite" else None
    if driver is not None and sqlite3.sqlite_version_info >= (3, 33):  # UPDATE ... FROM
        _record_in_few_statements(driver, history, by_shape)
        return
    if history:  # first, while the actions are still in flight
        conn.execute(_ADD_ATTEMPT_IF_IN_FLIGHT, history)
    for names, rows in by_shape.items():
        conn.execute(_finish_statement(names), rows)  # one executemany per shape


def _record_in_few_statements(
    driver: sqlite3.Connection,
    history: list[dict[str, Any]],
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]],
) -> None:
    """`record_finishes` on SQLite: a statement per chunk of rows (VALUES lists), not per
    row. The sqlite3 module lets go of the GIL for every row an executemany steps, and the
    executor's thread, holding the store's write lock, then waits for it again behind the
    other threads (see Store._execute_rows)."""
    for chunk in shaped_chunks(history):
        sql = _sqlite_add_attempts(len(chunk))
        params = [r[c] for r in chunk for c in _ATTEMPT_COLUMNS]
        direct.execute_sql(driver, sql, params)
    for names, rows in by_shape.items():
        for chunk in shaped_chunks(rows):
            sql = _sqlite_finish(names, len(chunk))
            params = [r[c] for r in chunk for c in ("_id", "_now", *[f"_{n}" for n in names])]
            direct.execute_sql(driver, sql, params)


_ATTEMPT_COLUMNS = ("action_id", "attempt", "finished_at", "outcome", "error")


@functools.cache
def _sqlite_add_attempts(rows: int) -> str:
    """`_ADD_ATTEMPT_IF_IN_FLIGHT` for `rows` attempts in one statement (SQLite)."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO action_attempts (action_id, attempt, finished_at, outcome, error) "
        "SELECT v.column1, v.column2, v.column3, v.column4, v.column5 "
        f"FROM (VALUES {values}) AS v JOIN actions ON actions.id = v.column1 "
        "WHERE actions.status = 'in_flight'"
    )


@functools.cache
def _sqlite_finish(names: tuple[str, ...], rows: int) -> str:
    """`_finish_statement(names)` for `rows` actions in one UPDATE ... FROM (SQLite 3.33+).
    Column names come from the executor's code (Finish.values), never from input."""
    assert all(n in actions.c for n in names)
    width = 2 + len(names)
    values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)
    sets = ", ".join(f"{n} = v.column{i + 3}" for i, n in enumerate(names))
    return (
        "UPDATE actions SET lease_owner = NULL, lease_until = NULL, updated_at = v.column2, "
        f"{sets} FROM (VALUES {values}) AS v "
        "WHERE actions.id = v.column1 AND actions.status = 'in_flight'"
    )


def finish_action(
    store: Store, action_id: int, now_ms: int, *, attempt: int | None = None, **values: Any
) -> None:
    """`finish_actions` for one action."""
    finish_actions(store, [Finish(action_id, attempt, now_ms, values)])


def release_all_leases(store: Store) -> int:
    """At a start on SQLite (one daemon): every in-flight action is due again at once."""
    with store.tx() as conn:
        return (
            conn.execute(
                update(actions)
                .where(actions.c.status == "in_flight")
                .values(lease_until=None, lease_owner=None)
            ).rowcount
            or 0
        )


def add_action(store: Store, conn: Connection, values: dict[str, Any]) -> bool:
    """Insert a planned action unless its key exists (planning is idempotent by key)."""
    return store.insert_if_new(conn, actions, ["key"], values) is not None


def add_actions(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """`add_action` for many actions (same columns) in one statement: the keys stored now."""
    return {r[0] for r in store.insert_new_returning(conn, actions, ["key"], rows, ("key",))}


def update_action(conn: Connection, action_id: int, **values: Any) -> None:
    """Change stored fields of one action (operator commands: retry, cancel)."""
    conn.execute(update(actions).where(actions.c.id == action_id).values(**values))


def action_by_id(conn: Connection, action_id: int) -> ActionRow | None:
    row = conn.execute(select(actions).where(actions.c.id == action_id)).mappings().first()
    return None if row is None else ActionRow(**dict(row))


def actions_by_key_prefix(conn: Connection, prefix: str) -> list[ActionRow]:
    return _rows(conn.execute(select(actions).where(actions.c.key.startswith(prefix))))


def list_actions(
    store: Store,
    *,
    status: str | None = None,
    rule_id: str | None = None,
    created_since_ms: int | None = None,
    after_id: int | None = None,
    attempts: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    conn: Connection | None = None,
) -> list[ActionRow]:
    """Actions matching every filter given, oldest first (or newest first)."""
    query = select(actions)
    if status is not None:
        query = query.where(actions.c.status == status)
    if rule_id is not None:
        query = query.where(actions.c.rule_id == rule_id)
    if created_since_ms is not None:
        query = query.where(actions.c.created_at >= created_since_ms)
    if after_id is not None:
        query = query.where(actions.c.id > after_id)
    if attempts is not None:
        query = query.where(actions.c.attempts == attempts)
    query = query.order_by(actions.c.id.desc() if newest_first else actions.c.id)
    if limit is not None:
        query = query.limit(limit)
    if conn is not None:
        return _rows(conn.execute(query))
    with store.engine.connect() as own:
        return _rows(own.execute(query))


def finished_actions_after(store: Store, after_id: int) -> list[ActionRow]:
    """Actions done or dead with an id above `after_id`, oldest first."""
    query = (
        select(actions)
        .where(actions.c.id > after_id, actions.c.status.in_(("done", "dead")))
        .order_by(actions.c.id)
    )
    with store.engine.connect() as conn:
        return _rows(conn.execute(query))


def newest_action_id(conn: Connection) -> int:
    return conn.execute(select(actions.c.id).order_by(actions.c.id.desc()).limit(1)).scalar() or 0


def count_by_status(store: Store, now_ms: int) -> tuple[dict[str, int], int]:
    """Actions per status, and how many are due now."""
    with store.engine.connect() as conn:
        by_status: dict[str, int] = dict(
            conn.execute(select(actions.c.status, func.count()).group_by(actions.c.status)).all()
        )
        due = conn.execute(
            select(func.count()).where(
                actions.c.status.in_(ACTIVE), actions.c.next_attempt_at <= now_ms
            )
        ).scalar()
    return {str(k): int(v) for k, v in by_status.items()}, int(due or 0)


def dead_counts_since(
    store: Store, since_ms: int, exclude_prefix: str
) -> list[tuple[str, int, int, int]]:
    """(rule_id, attempts, count, last updated_at) of actions gone dead since `since_ms`."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                actions.c.rule_id, actions.c.attempts, func.count(), func.max(actions.c.updated_at)
            )
            .where(
                actions.c.status == "dead",
                actions.c.updated_at >= since_ms,
                ~actions.c.rule_id.startswith(exclude_prefix),
            )
            .group_by(actions.c.rule_id, actions.c.attempts)
        ).all()
    return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]


def prune_finished_actions(conn: Connection, cutoff_ms: int) -> int:
    """Done and cancelled actions last changed before the cutoff."""
    return (
        conn.execute(
            delete(actions).where(
                actions.c.updated_at < cutoff_ms, actions.c.status.in_(("done", "cancelled"))
            )
        ).rowcount
        or 0
    )


def prune_attempts(conn: Connection, cutoff_ms: int) -> int:
    """Attempt records that ended before the cutoff."""
    return (
        conn.execute(
            delete(action_attempts).where(action_attempts.c.finished_at < cutoff_ms)
        ).rowcount
        or 0
    )
