"""The store's busiest statements on SQLite, sent to the sqlite3 driver directly: the
ingest's and the intake's multi-row writes, an executor batch's finishes
(syncd.store.actions), the ingest's snapshot and origin reads.

SQLAlchemy builds each row's parameters anew on every execution (construct_params, the
bind processors, the insertmanyvalues batches): on SQLite that costs more than running the
statement (issue 17: a fifth of the inbox thread's CPU went to the ingest's writes). A
statement here is compiled by SQLAlchemy once, for one row count, into its SQL text and,
for each `?`, which row and column it takes and the column type's bind processor (JSON
columns: the store's serializer): the parameters SQLAlchemy would send, built in one pass;
for a SELECT also each column's result processor (JSON parsed, booleans), as SQLAlchemy
converts rows.

Used only inside a transaction the store began (Store.tx: BEGIN IMMEDIATE went to the
driver already), and only when nobody listens to the engine's statements (tests and
benchmarks/sqlcount count them): else SQLAlchemy runs the statement as before.
PostgreSQL always goes through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Prepared:
    """A statement's SQL and, per `?` in order, (row in the chunk, column, processor); for
    a SELECT, per column of its rows the type's result processor (JSON columns: parsed)."""

    sql: str
    slots: tuple[tuple[int, str, Processor | None], ...]
    results: tuple[Processor | None, ...] = ()

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [
            rows[i][name] if process is None else process(rows[i][name])
            for i, name, process in self.slots
        ]

    def converted(self, rows: list[Any]) -> list[tuple[Any, ...]]:
        """Rows as SQLAlchemy gives them: each value through its column's processor."""
        if not any(self.results):
            return [tuple(row) for row in rows]
        return [
            tuple(v if p is None else p(v) for v, p in zip(row, self.results, strict=True))
            for row in rows
        ]


def prepare(
    stmt: Any, dialect: Dialect, binds: Mapping[str, tuple[int, str]], **compile_kw: Any
) -> Prepared:
    """Compile `stmt` once; `binds`: each bind parameter's (row, column) in the rows."""
    compiled = stmt.compile(dialect=dialect, **compile_kw)
    if compiled.insert_prefetch or compiled.positiontup is None:
        # Python-side column defaults, or a driver that names its parameters: not for here
        raise ValueError("statement not suited to direct execution")
    slots = []
    for name in compiled.positiontup:
        if name not in binds:  # a literal in the statement: name it as a parameter instead
            raise ValueError(f"statement parameter {name} is not named in the rows")
        row, column = binds[name]
        bind_type = compiled.binds[name].type.dialect_impl(dialect)
        slots.append((row, column, bind_type.bind_processor(dialect)))
    results = tuple(
        c.type.dialect_impl(dialect).result_processor(dialect, None)
        for c in getattr(stmt, "selected_columns", ())
    )
    return Prepared(compiled.string, tuple(slots), results)


def multirow_values(table: Table, columns: Sequence[str], rows: int) -> list[dict[str, Any]]:
    """`rows` rows of VALUES for `columns`, each value a bind parameter named after its place
    (for an INSERT ... VALUES (...), (...) of that many rows)."""
    return [
        {c: bindparam(f"r{i}_{c}", type_=table.c[c].type) for c in columns} for i in range(rows)
    ]


def multirow_binds(columns: Sequence[str], rows: int) -> dict[str, tuple[int, str]]:
    return {f"r{i}_{c}": (i, c) for i in range(rows) for c in columns}


def driver_of(conn: Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `conn` when a statement may go to it directly: inside a
    begun transaction (so it is part of it) and with no statement listener to bypass."""
    if not conn.in_transaction():
        return None
    dispatch = conn.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        return None
    driver = conn.connection.driver_connection
    return driver if isinstance(driver, sqlite3.Connection) else None


def fetch(
    driver: sqlite3.Connection, prepared: Prepared, params: list[Any]
) -> list[tuple[Any, ...]]:
    """Run a statement that returns rows; errors as SQLAlchemy raises them."""
    try:
        rows = driver.execute(prepared.sql, params).fetchall()
    except sqlite3.Error as exc:
        raise DBAPIError.instance(prepared.sql, params, exc, sqlite3.Error) from exc
    return prepared.converted(rows)


def execute(driver: sqlite3.Connection, prepared: Prepared, params: list[Any]) -> None:
    """Run a statement that returns no rows; errors as SQLAlchemy raises them."""
    execute_sql(driver, prepared.sql, params)


def execute_sql(driver: sqlite3.Connection, sql: str, params: list[Any]) -> None:
    """Run SQL that returns no rows; errors as SQLAlchemy raises them."""
    try:
        driver.execute(sql, params)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
