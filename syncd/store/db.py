"""Opening the store: engine set-up per dialect, migrations, transactions."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.exc import DatabaseError, DBAPIError
from sqlalchemy.pool import NullPool, StaticPool

from syncd.errors import ConfigError
from syncd.migrations.head import head_revision
from syncd.store import direct, jsoncodec

ACTIONS_CHANNEL = "syncd_actions"  # NOTIFY'd when actions are planned: idle executors wake
MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


class StoreUnreadable(ConfigError):
    """The SQLite file cannot be used: its path and what to do, instead of a traceback."""

    def __init__(self, message: str) -> None:
        self.problems = [message]
        Exception.__init__(self, message)


def corrupt_store_message(path: str, detail: str) -> str:
    return (
        f"the SQLite store {path} is damaged ({detail}). syncd did not change it. To recover "
        f'(docs/OPERATIONS.md, "Corrupt or lost SQLite file"): stop syncd; move {path} and '
        f"any {path}-wal and {path}-shm aside; then either restore the last backup to {path}, "
        f"or salvage with `sqlite3 BROKEN.sqlite3 .recover | sqlite3 {path}`, or start with "
        "no file (a fresh store goes live again without replaying history)"
    )


class Store:
    """The engine plus the few things that differ between SQLite and PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"
        # sqlalchemy.dialects.sqlite or .postgresql, for their INSERT ... ON CONFLICT: only the
        # one in use (the PostgreSQL one is ~2 MB of an idle SQLite daemon, issue 17).
        self._dialect_module: Any = importlib.import_module(
            "sqlalchemy.dialects." + ("sqlite" if self.is_sqlite else "postgresql")
        )
        self._statements: dict[tuple[Any, ...], Any] = {}
        # SQLite has one writer at a time. Threads that find the write lock taken would sleep
        # in SQLite's busy handler (1, 2, 5 ... 100 ms steps); queued on a Python lock, the
        # next writer starts the moment the last one commits.
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextlib.contextmanager
    def tx(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite: take the write lock up front, so
        two writers never deadlock on a lock upgrade)."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(syncd_write=True)
            with conn.begin():
                yield conn

    def insert_ignore(self, table: Table, index_elements: list[str] | None = None) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, the same statement on both databases."""
        insert = self._dialect_module.insert(table)
        return insert.on_conflict_do_nothing(index_elements=index_elements)

    def insert_if_new(
        self, conn: Connection, table: Table, index_elements: list[str], values: dict[str, Any]
    ) -> Any | None:
        """Insert a row unless its unique key exists; the new row's id, or None if it existed.

        (RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.)
        """
        key = ("insert_if_new", table.name, tuple(index_elements), tuple(values))
        stmt = self._statements.get(key)
        if stmt is None:  # built once per shape: statement building is the hot path's cost
            pk = next(iter(table.primary_key.columns))
            stmt = self._statements[key] = self.insert_ignore(table, index_elements).returning(pk)
        row = conn.execute(stmt, values).first()
        return None if row is None else row[0]

    def upsert(
        self, conn: Connection, table: Table, index_elements: list[str], values: dict[str, Any]
    ) -> None:
        """INSERT ... ON CONFLICT (keys) DO UPDATE SET the other columns."""
        conn.execute(self._upsert_statement(table, index_elements, tuple(values)), values)

    def upsert_many(
        self,
        conn: Connection,
        table: Table,
        index_elements: list[str],
        rows: list[dict[str, Any]],
    ) -> None:
        """`upsert` for many rows with the same columns in one executemany. Their keys must
        differ (PostgreSQL refuses to update one row twice in one statement)."""
        if not rows:
            return
        columns = tuple(rows[0])
        stmt = self._upsert_statement(table, index_elements, columns)
        self._execute_rows(conn, ("upsert", table.name, tuple(index_elements), columns), stmt, rows)

    def insert_many(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """A plain INSERT of many rows with the same columns (executemany)."""
        if not rows:
            return
        columns = tuple(rows[0])
        key = ("insert", table.name, columns)
        stmt = self._statements.get(key)
        if stmt is None:
            stmt = self._statements[key] = table.insert()
        self._execute_rows(conn, key, stmt, rows)

    def _execute_rows(
        self, conn: Connection, key: tuple[Any, ...], stmt: Any, rows: list[dict[str, Any]]
    ) -> None:
        """Many rows of one statement: on SQLite straight to sqlite3 (syncd.store.direct) as
        multi-row statements in `shaped_chunks`, else SQLAlchemy's executemany in chunks.

        Why multi-row on SQLite: the sqlite3 module lets go of the GIL around every statement
        it steps, and an executemany steps once per row. A thread holding the store's write
        lock then waits for the GIL again after each row while the executor's threads run
        Python; one statement per chunk takes it back once (issue 17: the write lock was
        held 93% of a load's time, most of it waiting for the GIL)."""
        driver = direct.driver_of(conn) if self.is_sqlite else None
        if driver is not None:
            chunks = list(shaped_chunks(rows))
            columns = tuple(rows[0])
            statements = [self._direct_multirow(key, stmt, columns, len(c)) for c in chunks]
            if all(statements):
                for chunk, prepared in zip(chunks, statements, strict=True):
                    assert prepared is not None
                    direct.execute(driver, prepared, prepared.parameters(chunk))
                return
        for chunk in shaped_chunks(rows):
            conn.execute(stmt, chunk)

    def _direct_multirow(
        self, stmt_key: tuple[Any, ...], stmt: Any, columns: tuple[str, ...], size: int
    ) -> direct.Prepared | None:
        """`stmt` (an INSERT, with or without ON CONFLICT) for `size` rows of `columns` in one
        VALUES list, compiled once for the driver; None when not suited (see direct.prepare,
        or more parameters than SQLite takes in one statement)."""
        key = ("direct_multirow", *stmt_key, size)
        if key not in self._statements:
            dialect = self.engine.dialect
            if size * len(columns) > dialect.insertmanyvalues_max_parameters:
                self._statements[key] = None
            else:
                table = stmt.table
                many = stmt.values(direct.multirow_values(table, columns, size))
                self._statements[key] = self._prepare(many, direct.multirow_binds(columns, size))
        found: direct.Prepared | None = self._statements[key]
        return found

    def insert_new_returning(
        self,
        conn: Connection,
        table: Table,
        index_elements: list[str],
        rows: list[dict[str, Any]],
        returning: tuple[str, ...],
    ) -> list[tuple[Any, ...]]:
        """Insert many rows unless their unique key exists, in one multi-row INSERT ... ON
        CONFLICT DO NOTHING RETURNING (SQLAlchemy's "insertmanyvalues"): the `returning`
        columns of each row inserted. A row whose key is stored, or repeats an earlier row's
        of the same call, is skipped and left out of the answer."""
        if not rows:
            return []
        shape = (table.name, tuple(index_elements), tuple(rows[0]), returning)
        driver = direct.driver_of(conn) if self.is_sqlite else None
        if driver is not None:
            chunks = list(shaped_chunks(rows))
            statements = [self._direct_insert_returning(table, shape, len(c)) for c in chunks]
            if all(statements):  # else none goes directly: SQLAlchemy runs them all
                return [
                    row
                    for chunk, prepared in zip(chunks, statements, strict=True)
                    if prepared is not None
                    for row in direct.fetch(driver, prepared, prepared.parameters(chunk))
                ]
        key = ("insert_new_returning", *shape)
        stmt = self._statements.get(key)
        if stmt is None:
            columns = [table.c[name] for name in returning]
            stmt = self._statements[key] = self.insert_ignore(table, index_elements).returning(
                *columns
            )
        return [tuple(r) for chunk in shaped_chunks(rows) for r in conn.execute(stmt, chunk)]

    def _direct_insert_returning(
        self, table: Table, shape: tuple[Any, ...], size: int
    ) -> direct.Prepared | None:
        """`insert_new_returning`'s statement for `size` rows, compiled once for the driver
        (None when it is not suited: returned values to convert, too many parameters)."""
        key = ("direct_insert_new_returning", *shape, size)
        if key not in self._statements:
            _, index_elements, columns, returning = shape
            dialect = self.engine.dialect
            convert = any(
                table.c[r].type.dialect_impl(dialect).result_processor(dialect, None)
                for r in returning
            )
            if convert or size * len(columns) > dialect.insertmanyvalues_max_parameters:
                self._statements[key] = None
            else:
                stmt = (
                    self.insert_ignore(table, list(index_elements))
                    .values(direct.multirow_values(table, columns, size))
                    .returning(*[table.c[r] for r in returning])
                )
                self._statements[key] = self._prepare(stmt, direct.multirow_binds(columns, size))
        found: direct.Prepared | None = self._statements[key]
        return found

    def direct_query(
        self,
        conn: Connection,
        key: tuple[Any, ...],
        build: Callable[[], tuple[Any, list[str]]],
    ) -> tuple[sqlite3.Connection, direct.Prepared] | None:
        """A statement with named parameters to run on the driver directly (see
        syncd.store.direct): the driver and the statement `build` returns (the statement
        and its parameter names), compiled once under `key`; None: SQLAlchemy runs it."""
        driver = direct.driver_of(conn) if self.is_sqlite else None
        if driver is None:
            return None
        key = ("direct_query", *key)
        if key not in self._statements:
            stmt, names = build()
            self._statements[key] = self._prepare(stmt, {n: (0, n) for n in names})
        prepared: direct.Prepared | None = self._statements[key]
        return None if prepared is None else (driver, prepared)

    def _prepare(
        self, stmt: Any, binds: dict[str, tuple[int, str]], **compile_kw: Any
    ) -> direct.Prepared | None:
        try:
            return direct.prepare(stmt, self.engine.dialect, binds, **compile_kw)
        except ValueError:  # not suited (see direct.prepare): SQLAlchemy's way
            return None

    def _upsert_statement(
        self, table: Table, index_elements: list[str], columns: tuple[str, ...]
    ) -> Any:
        key = ("upsert", table.name, tuple(index_elements), columns)
        stmt = self._statements.get(key)
        if stmt is None:
            base = self._dialect_module.insert(table)
            updates = {k: base.excluded[k] for k in columns if k not in index_elements}
            stmt = self._statements[key] = base.on_conflict_do_update(
                index_elements=index_elements, set_=updates
            )
        return stmt

    def notify(self, conn: Connection, channel: str) -> None:
        """PostgreSQL NOTIFY, delivered at commit; nothing to do on SQLite (one process)."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})

    def libpq_url(self) -> str:
        """The URL for a plain psycopg connection (LISTEN needs one of its own)."""
        url = self.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def dispose(self) -> None:
        self.engine.dispose()

    @classmethod
    def in_memory(cls) -> Store:
        """A migrated store in SQLite memory, for unit tests: no file, same SQL. One
        connection serves every caller (a second one would see another, empty database)."""
        store = cls(_sqlite_engine("sqlite://", "NORMAL", poolclass=StaticPool))
        upgrade(store)
        return store


LARGEST_CHUNK = 64


def shaped_chunks(rows: list[Any]) -> Iterator[list[Any]]:
    """Rows in chunks of 64, 32 ... 2, 1: a multi-row statement's text depends on its row
    count, and the drivers keep each text prepared (sqlite3: 128 per connection; one for
    every batch size from 1 to 129 took 14 MB). So a batch is sent in a few statements of
    at most 7 sizes."""
    start = 0
    while start < len(rows):
        size = LARGEST_CHUNK
        while size > len(rows) - start:
            size //= 2
        yield rows[start : start + size]
        start += size


def padded(values: list[Any]) -> list[Any]:
    """An IN list padded to a power of two by repeating its last value (the answer is the
    same), for the same reason as `shaped_chunks`: a few statement texts, not one per length.
    Empty stays empty."""
    if not values:
        return values
    size = 1
    while size < len(values):
        size *= 2
    return values + [values[-1]] * (size - len(values))


def _sqlite_engine(url: str, synchronous: str, poolclass: Any = None) -> Engine:
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError("[store] synchronous must be NORMAL or FULL")
    extra = {} if poolclass is None else {"poolclass": poolclass}
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        json_serializer=jsoncodec.dumps,
        json_deserializer=jsoncodec.loads,
        **extra,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable against process crashes (kill -9); only a power
        # loss can undo the last commits. FULL is available via [store] synchronous.
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writes (Store.tx) take the write lock up front, so two writers never deadlock on a
        # lock upgrade; reads need no lock in WAL mode and never wait for a writer.
        write = conn.get_execution_options().get("syncd_write", False)
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        # Straight to sqlite3: every transaction begins here, and SQLAlchemy's statement
        # machinery costs more than the BEGIN itself (issue 17). Errors as SQLAlchemy's.
        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            driver.execute(statement)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc

    return engine


def open_store(
    url: str, *, migrate: bool = True, synchronous: str = "NORMAL", migrate_in_child: bool = False
) -> Store:
    """Open (and by default migrate) the store at `url` (sqlite:///path or postgresql://...).

    `migrate_in_child`: a store that needs migrating is migrated by a child process, so that
    alembic (with mako, ~10 MB) never enters this one (the daemon: issue 17); if the child
    fails, the migration is run here, which raises the error it meets."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    path = ""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            make_private_sqlite_file(Path(path))
        engine = _sqlite_engine(url, synchronous.upper())
    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            json_serializer=jsoncodec.dumps,
            json_deserializer=jsoncodec.loads,
        )
    store = Store(engine)
    if migrate:
        try:
            if not (migrate_in_child and _upgrade_in_child(store, synchronous)):
                upgrade(store)
        except DatabaseError as exc:
            if not store.is_sqlite:
                raise
            store.dispose()
            raise _sqlite_problem(path, exc) from None
    return store


def make_private_sqlite_file(path: Path) -> None:
    """The store holds webhook bodies and customer data: its folder 0700 when syncd creates
    it, the database 0600 (SQLite gives its -wal and -shm files the database's mode), and
    files from an older version with wider modes narrowed."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is a new db
    for suffix in SQLITE_SIDE_FILES:
        side = Path(f"{path}{suffix}")
        try:
            mode = side.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                side.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:  # owned by another user: the start says what is wrong later
            continue


def _sqlite_problem(path: str, exc: DatabaseError) -> StoreUnreadable:
    detail = str(getattr(exc, "orig", exc))
    if "not a database" in detail or "malformed" in detail or "corrupt" in detail:
        return StoreUnreadable(corrupt_store_message(path, detail))
    return StoreUnreadable(
        f"cannot use the SQLite store {path}: {detail} (check that the "
        "file and its folder exist and belong to the user syncd runs as)"
    )


def upgrade(store: Store, revision: str = "head") -> None:
    if revision == "head" and at_head(store):
        return  # nothing to migrate: alembic is not even imported (idle memory, issue 17)
    # Before the import: alembic lists its plugins at info as it loads, and says "Context
    # impl ..." at every start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with store.tx() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _upgrade_in_child(store: Store, synchronous: str) -> bool:
    """Migrate the store to head in a child process; True when it is at head afterwards."""
    if at_head(store):
        return True
    if store.is_sqlite and store.engine.url.database in (None, "", ":memory:"):
        return False  # a memory database is this process's own
    code = (
        "import sys; from syncd.store.db import open_store; "
        "open_store(sys.stdin.read(), synchronous=sys.argv[1]).dispose()"
    )
    url = store.engine.url.render_as_string(hide_password=False)  # stdin: not in `ps`
    try:
        subprocess.run(
            [sys.executable, "-c", code, synchronous],
            input=url,
            text=True,
            capture_output=True,  # a failure is met again, and reported, by the retry here
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return False
    return at_head(store)


def at_head(store: Store) -> bool:
    """True when the store's schema is at the newest migration (read without alembic)."""
    head = head_revision()
    if head is None:
        return False
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version"))
            versions = [r[0] for r in rows]
    except DatabaseError:  # no version table yet (a new store), or not a database at all
        return False
    return versions == [head]


def null_pool_engine(url: str) -> Engine:
    """A poolless engine, for tools that open and close connections rarely."""
    return create_engine(url, poolclass=NullPool)
