"""Poll positions, one per (source, stream); moved only with what was read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from syncd.store.db import Store
from syncd.store.schema import cursors


@dataclass(frozen=True)
class CursorRow:
    source: str
    stream: str
    value: str | None
    updated_at: int
    fence: int


def read_cursor(store: Store, source: str, stream: str) -> str | None:
    with store.engine.connect() as conn:
        value: str | None = conn.execute(
            select(cursors.c.value).where(cursors.c.source == source, cursors.c.stream == stream)
        ).scalar()
    return value


def save_cursor(
    store: Store, conn: Connection, source: str, stream: str, value: str | None, now_ms: int
) -> None:
    values = {"source": source, "stream": stream, "value": value, "updated_at": now_ms}
    store.upsert(conn, cursors, ["source", "stream"], values)


def all_cursors(store: Store) -> list[CursorRow]:
    with store.engine.connect() as conn:
        return [CursorRow(**dict(r)) for r in conn.execute(select(cursors)).mappings()]


def forget_all_cursors(conn: Connection) -> None:
    """Every stream polls from scratch next time (the sandbox's replay)."""
    conn.execute(delete(cursors))
