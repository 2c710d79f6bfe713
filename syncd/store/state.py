"""Small key/value state (`state` table): connector values, go-live instants, the cron
rules' last instants, re-plan situations, shared rate windows. One value per (scope, key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from syncd.store.db import Store
from syncd.store.schema import state


def get_value(store: Store, scope: str, key: str, conn: Connection | None = None) -> Any:
    """The stored value, or None (`conn`: read inside the caller's transaction)."""
    query = select(state.c.value).where(state.c.scope == scope, state.c.key == key)
    if conn is not None:
        return conn.execute(query).scalar()
    with store.engine.connect() as own:
        return own.execute(query).scalar()


def set_value(
    store: Store, scope: str, key: str, value: Any, now_ms: int, conn: Connection | None = None
) -> None:
    """Store (or replace) a value, in the caller's transaction if given."""
    values = {"scope": scope, "key": key, "value": value, "updated_at": now_ms}
    if conn is not None:
        store.upsert(conn, state, ["scope", "key"], values)
        return
    with store.tx() as own:
        store.upsert(own, state, ["scope", "key"], values)


def add_value_if_absent(
    store: Store, conn: Connection, scope: str, key: str, value: Any, now_ms: int
) -> None:
    """Insert unless a value exists (first writer wins when replicas race)."""
    conn.execute(
        store.insert_ignore(state, ["scope", "key"]).values(
            scope=scope, key=key, value=value, updated_at=now_ms
        )
    )


def delete_value(conn: Connection, scope: str, key: str) -> None:
    conn.execute(delete(state).where(state.c.scope == scope, state.c.key == key))


def values_with_prefix(store: Store, scope: str, prefix: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(state.c.key, state.c.value).where(
                state.c.scope == scope, state.c.key.startswith(prefix)
            )
        ).all()
    return {key: value for key, value in rows}


def lock_value(
    store: Store, conn: Connection, scope: str, key: str, initial: Any, *, lock: bool = True
) -> Any:
    """The value, created as `initial` if absent, and locked until the caller's transaction
    ends (PostgreSQL FOR UPDATE; SQLite: the writer lock): read-modify-write across
    replicas, e.g. a shared rate window. `lock=False`: created if absent, read, not locked."""
    store.insert_if_new(
        conn,
        state,
        ["scope", "key"],
        {"scope": scope, "key": key, "value": initial, "updated_at": 0},
    )
    query = select(state.c.value).where(state.c.scope == scope, state.c.key == key)
    if lock and not store.is_sqlite:
        query = query.with_for_update()
    return conn.execute(query).scalar()


def replace_value(conn: Connection, scope: str, key: str, value: Any, now_ms: int) -> None:
    """Overwrite an existing value (one locked with `lock_value`)."""
    conn.execute(
        update(state)
        .where(state.c.scope == scope, state.c.key == key)
        .values(value=value, updated_at=now_ms)
    )
