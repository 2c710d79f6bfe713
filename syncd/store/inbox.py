"""Webhook deliveries as stored before the 2xx: every query on the `inbox` table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, literal_column, select, update

from syncd.store import direct
from syncd.store.db import Store, padded
from syncd.store.schema import inbox


@dataclass(frozen=True)
class DeliveryRow:
    """One stored delivery (`attempts` as it was when the row was read)."""

    id: int
    connector: str
    delivery_id: str
    received_at: int
    headers: dict[str, str]
    body: bytes
    status: str
    attempts: int
    next_attempt_at: int
    last_error: str | None


@dataclass(frozen=True)
class DeliverySummary:
    """What `syncd inbox list` shows of a delivery."""

    id: int
    connector: str
    delivery_id: str
    attempts: int
    status: str
    last_error: str | None


def known_delivery_ids(conn: Connection, connector: str, ids: list[str]) -> set[str]:
    """Which of these delivery ids of a connector are stored already."""
    rows = conn.execute(
        select(inbox.c.delivery_id).where(
            inbox.c.connector == connector, inbox.c.delivery_id.in_(ids)
        )
    )
    return {r[0] for r in rows}


def add_deliveries(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> list[bool]:
    """For each delivery, True when it is stored now (see `add_delivery_rows`)."""
    return [row_id is not None for row_id in add_delivery_rows(store, conn, rows)]


def add_delivery_rows(
    store: Store, conn: Connection, rows: list[dict[str, Any]]
) -> list[int | None]:
    """Insert deliveries in one statement (INSERT ... ON CONFLICT DO NOTHING RETURNING):
    for each, its new row's id, or None when its (connector, delivery id) is stored already
    or came earlier in `rows`. Each dict: connector, delivery_id, headers, body, received_at.
    (The ids come with the insert: the intake hands new deliveries to an idle inbox thread
    as rows, and reading them back cost the idle path a statement, issue 17.)"""
    if not rows:
        return []
    # On SQLite inside Store.tx this goes straight to sqlite3 (syncd.store.direct): the
    # writer thread stores every webhook (issue 17).
    found = store.insert_new_returning(
        conn,
        inbox,
        ["connector", "delivery_id"],
        [{**r, "status": "pending", "attempts": 0, "next_attempt_at": 0} for r in rows],
        ("connector", "delivery_id", "id"),
    )
    new = {(connector, delivery_id): row_id for connector, delivery_id, row_id in found}
    # a delivery sent twice in one batch is new the first time only
    return [new.pop((r["connector"], r["delivery_id"]), None) for r in rows]


# The inbox thread's statements, built once. Every value is a named parameter: on SQLite
# they also go to the driver directly (see `_due`, `_update_ids`), which needs every
# parameter named.
_DUE = (
    select(inbox)
    .where(inbox.c.status == bindparam("pending"), inbox.c.next_attempt_at <= bindparam("now"))
    .order_by(inbox.c.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))  # (SQLite's LIMIT comes with one: named, not a literal)
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)  # PostgreSQL: replicas share no row
# What the lease and the done-mark set, for the ids `_update_ids` adds.
_SETS = {
    "lease": update(inbox).values(
        next_attempt_at=bindparam("until"), attempts=inbox.c.attempts + literal_column("1")
    ),
    "done": update(inbox).values(status=bindparam("done"), last_error=bindparam("no_error")),
}
_BY_IDS = {
    what: stmt.where(inbox.c.id.in_(bindparam("ids", expanding=True)))
    for what, stmt in _SETS.items()
}
# Rows of `select(inbox)` build a DeliveryRow by position: the same order.
assert [c.name for c in inbox.c] == list(DeliveryRow.__dataclass_fields__)


def claim_due_deliveries(store: Store, now_ms: int, lease_ms: int, limit: int) -> list[DeliveryRow]:
    """Take due deliveries; pushing next_attempt_at forward is the lease: if this process
    dies, the delivery becomes due again when it runs out. Rows as read, before the update."""
    with store.tx() as conn:
        rows = [DeliveryRow(*r) for r in _due(store, conn, now_ms, limit)]
        if rows:
            ids = padded([r.id for r in rows])
            _update_ids(store, conn, "lease", ids, {"until": now_ms + lease_ms})
    return rows


def mark_deliveries_done(store: Store, conn: Connection, ids: Iterable[int]) -> None:
    _update_ids(store, conn, "done", padded(list(ids)), {"done": "done", "no_error": None})


# The inbox thread's claim (a read and the lease) and its done-mark (in the ingest's commit)
# run inside the write lock: on SQLite they go to the driver directly (syncd.store.direct),
# every value a named parameter and each id its own, as SQLAlchemy's expanding IN lists and
# result processing cost more than the statements (issue 17).


def _due(store: Store, conn: Connection, now_ms: int, limit: int) -> Iterable[Any]:
    params = {"pending": "pending", "now": now_ms, "limit": limit, "offset": 0}
    if not store.is_sqlite:
        return conn.execute(_DUE_LOCKED, params)
    found = store.direct_query(conn, ("inbox due",), lambda: (_DUE, list(params)))
    if found is None:
        return conn.execute(_DUE, params)
    driver, prepared = found
    return direct.fetch(driver, prepared, prepared.parameters((params,)))


def _update_ids(
    store: Store, conn: Connection, what: str, ids: list[int], values: dict[str, Any]
) -> None:
    """The lease or the done-mark (`what`, a key of _SETS) for these (padded) ids."""

    def build() -> tuple[Any, list[str]]:
        names = [f"id_{i}" for i in range(len(ids))]
        stmt = _SETS[what].where(inbox.c.id.in_([bindparam(n) for n in names]))
        return stmt, [*values, *names]

    found = store.direct_query(conn, ("inbox", what, len(ids)), build)
    if found is None:
        conn.execute(_BY_IDS[what], {**values, "ids": ids})
        return
    driver, prepared = found
    params = dict(values)
    params.update((f"id_{i}", row_id) for i, row_id in enumerate(ids))
    direct.execute(driver, prepared, prepared.parameters((params,)))


def retry_delivery_later(
    store: Store, delivery_id: int, next_at_ms: int, reason: str, attempts: int | None = None
) -> None:
    """Due again at `next_at_ms`; `attempts` given: the attempt is not counted (waiting)."""
    values: dict[str, Any] = {"next_attempt_at": next_at_ms, "last_error": reason}
    if attempts is not None:
        values["attempts"] = attempts
    with store.tx() as conn:
        conn.execute(update(inbox).where(inbox.c.id == delivery_id).values(**values))


def fail_delivery(store: Store, delivery_id: int, reason: str) -> None:
    with store.tx() as conn:
        conn.execute(
            update(inbox)
            .where(inbox.c.id == delivery_id)
            .values(status="failed", last_error=reason)
        )


def list_deliveries(store: Store, status: str, limit: int) -> list[DeliverySummary]:
    query = (
        select(
            inbox.c.id,
            inbox.c.connector,
            inbox.c.delivery_id,
            inbox.c.attempts,
            inbox.c.status,
            inbox.c.last_error,
        )
        .where(inbox.c.status == status)
        .order_by(inbox.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [DeliverySummary(**dict(r)) for r in conn.execute(query).mappings()]


def requeue_failed_delivery(store: Store, delivery_id: int) -> bool:
    """A failed delivery pending again, its attempts reset; False if none was failed."""
    with store.tx() as conn:
        changed = conn.execute(
            update(inbox)
            .where(inbox.c.id == delivery_id, inbox.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=0)
        ).rowcount
    return bool(changed)


def count_by_status(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(inbox.c.status, func.count()).group_by(inbox.c.status)).all()
    return {str(s): int(n) for s, n in rows}


def failed_since(
    store: Store, after_id: int
) -> tuple[list[tuple[str, int, int, int]], dict[str, str | None]]:
    """Deliveries failed for good with an id above `after_id`: per connector (connector,
    count, newest id, oldest id), and one last error per connector."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(inbox.c.connector, func.count(), func.max(inbox.c.id), func.min(inbox.c.id))
            .where(inbox.c.status == "failed", inbox.c.id > after_id)
            .group_by(inbox.c.connector)
        ).all()
        errors = {
            r[0]: r[1]
            for r in conn.execute(
                select(inbox.c.connector, inbox.c.last_error).where(
                    inbox.c.status == "failed", inbox.c.id > after_id
                )
            ).all()
        }
    return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows], errors


def prune_done_deliveries(conn: Connection, cutoff_ms: int) -> int:
    return (
        conn.execute(
            delete(inbox).where(inbox.c.received_at < cutoff_ms, inbox.c.status == "done")
        ).rowcount
        or 0
    )
