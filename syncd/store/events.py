"""Snapshots (last known state of each object) and events (the audit history of changes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from syncd.store import direct
from syncd.store.db import Store, padded
from syncd.store.schema import event_traces, events, snapshots


@dataclass(frozen=True)
class SnapshotRow:
    source: str
    object_type: str
    object_id: str
    version: int | None
    fields: dict[str, Any]
    context: dict[str, Any]
    entered: dict[str, Any]
    deleted: bool
    updated_at: int


# Rows of `select(snapshots)` build a SnapshotRow by position: the same order.
assert [c.name for c in snapshots.c] == list(SnapshotRow.__dataclass_fields__)

_SNAPSHOT = select(snapshots).where(
    snapshots.c.source == bindparam("source"),
    snapshots.c.object_type == bindparam("object_type"),
    snapshots.c.object_id == bindparam("object_id"),
)


def snapshot_for_update(
    store: Store, conn: Connection, source: str, object_type: str, object_id: str
) -> SnapshotRow | None:
    """The object's snapshot, row-locked until commit on PostgreSQL (SQLite: the writer
    lock), so two ingests of one object diff one after the other. (The batch read's
    statement: on SQLite it skips SQLAlchemy, see `_snapshots_of`.)"""
    key = (source, object_type, object_id)
    return snapshots_for_update(store, conn, [key])[key]


# A batch's objects are mostly of one source and type: one IN list of ids per (source, type),
# cheaper to expand and bind than a list of (source, type, id) tuples.
_SNAPSHOTS = (
    select(snapshots)
    .where(
        snapshots.c.source == bindparam("source"),
        snapshots.c.object_type == bindparam("object_type"),
        snapshots.c.object_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(snapshots.c.object_id)
)
_SNAPSHOTS_FOR_UPDATE = _SNAPSHOTS.with_for_update()
SNAPSHOTS_PER_QUERY = 500  # ids per statement


def snapshots_for_update(
    store: Store, conn: Connection, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], SnapshotRow | None]:
    """`snapshot_for_update` for many objects in a few statements: each key's snapshot, or
    None when it has none (rows locked in key order on PostgreSQL, so concurrent batches
    never wait on each other in a cycle)."""
    query = _SNAPSHOTS if store.is_sqlite else _SNAPSHOTS_FOR_UPDATE
    found: dict[tuple[str, str, str], SnapshotRow | None] = dict.fromkeys(keys)
    by_type: dict[tuple[str, str], list[str]] = {}
    for source, object_type, object_id in sorted(set(keys)):
        by_type.setdefault((source, object_type), []).append(object_id)
    for (source, object_type), ids in by_type.items():
        for start in range(0, len(ids), SNAPSHOTS_PER_QUERY):
            chunk = padded(ids[start : start + SNAPSHOTS_PER_QUERY])
            for row in _snapshots_of(store, conn, query, source, object_type, chunk):
                snap = SnapshotRow(*row)
                found[(snap.source, snap.object_type, snap.object_id)] = snap
    return found


def _snapshots_of(
    store: Store, conn: Connection, query: Any, source: str, object_type: str, ids: list[str]
) -> Iterable[Any]:
    """Rows of `query` (_SNAPSHOTS...) for these ids: on the driver directly when it may
    (syncd.store.direct: SQLAlchemy's expanding IN costs more than the read), else by
    SQLAlchemy."""
    found = store.direct_query(conn, ("snapshots", len(ids)), lambda: _snapshots_by_ids(len(ids)))
    if found is None:
        return conn.execute(query, {"source": source, "object_type": object_type, "ids": ids})
    driver, prepared = found
    params = {"source": source, "object_type": object_type}
    params.update((f"id_{i}", object_id) for i, object_id in enumerate(ids))
    return direct.fetch(driver, prepared, prepared.parameters((params,)))


def _snapshots_by_ids(size: int) -> tuple[Any, list[str]]:
    """_SNAPSHOTS for `size` ids, each id its own parameter (id_0, id_1 ...), on SQLite."""
    ids = [f"id_{i}" for i in range(size)]
    stmt = (
        select(snapshots)
        .where(
            snapshots.c.source == bindparam("source"),
            snapshots.c.object_type == bindparam("object_type"),
            snapshots.c.object_id.in_([bindparam(name) for name in ids]),
        )
        .order_by(snapshots.c.object_id)
    )
    return stmt, ["source", "object_type", *ids]


def read_snapshot(
    store: Store, source: str, object_type: str, object_id: str
) -> SnapshotRow | None:
    with store.engine.connect() as conn:
        row = (
            conn.execute(
                _SNAPSHOT, {"source": source, "object_type": object_type, "object_id": object_id}
            )
            .mappings()
            .first()
        )
    return None if row is None else SnapshotRow(**dict(row))


def save_snapshot(store: Store, conn: Connection, values: dict[str, Any]) -> None:
    store.upsert(conn, snapshots, ["source", "object_type", "object_id"], values)


def live_snapshots(store: Store, source: str, object_type: str) -> list[SnapshotRow]:
    """Every object of a type not deleted at its source (date rules read their dates here)."""
    with store.engine.connect() as conn:
        rows = (
            conn.execute(
                select(snapshots).where(
                    snapshots.c.source == source,
                    snapshots.c.object_type == object_type,
                    snapshots.c.deleted.is_(False),
                )
            )
            .mappings()
            .all()
        )
    return [SnapshotRow(**dict(r)) for r in rows]


def save_snapshots(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> None:
    """`save_snapshot` for many objects (each once) in one executemany."""
    store.upsert_many(conn, snapshots, ["source", "object_type", "object_id"], rows)


def add_event(store: Store, conn: Connection, values: dict[str, Any]) -> int | None:
    """Store an event unless its key exists; its id, or None when it was seen before."""
    found: int | None = store.insert_if_new(conn, events, ["event_key"], values)
    return found


def add_events(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Store many events (same columns) in one statement, each unless its key exists:
    {event_key: id} of those stored now (a key seen before, or twice here, is stored once)."""
    found = store.insert_new_returning(conn, events, ["event_key"], rows, ("event_key", "id"))
    return {key: int(event_id) for key, event_id in found}


_EVENT_VERSION = select(events.c.version).where(events.c.id == bindparam("event_id"))


def event_version(store: Store, event_id: int) -> int | None:
    """The source's version (a time, for most sources) of the change behind an event."""
    with store.engine.connect() as conn:
        version = conn.execute(_EVENT_VERSION, {"event_id": event_id}).scalar()
    return None if version is None else int(version)


def prune_events(conn: Connection, cutoff_ms: int) -> int:
    return conn.execute(delete(events).where(events.c.created_at < cutoff_ms)).rowcount or 0


def add_traces(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Many events' traces in one statement (dicts: event_id, decisions, created_at)."""
    store.insert_many(conn, event_traces, rows)


def prune_traces(conn: Connection, cutoff_ms: int) -> int:
    return (
        conn.execute(delete(event_traces).where(event_traces.c.created_at < cutoff_ms)).rowcount
        or 0
    )
