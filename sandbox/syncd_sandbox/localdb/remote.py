"""The "remote service" of the localdb connector: objects and effects in a SQLite file.

Tests drive it like a user would drive a SaaS UI (`put` changes an object, bumping its
version and recording its history) and inspect the effects syncd made (`effects`).
`fail_next` makes the next calls of an action fail, for retry tests.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
  type TEXT NOT NULL, id TEXT NOT NULL, fields TEXT NOT NULL, version INTEGER NOT NULL,
  history TEXT NOT NULL DEFAULT '{}', deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (type, id));
CREATE TABLE IF NOT EXISTS seq (n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS effects (
  id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, action TEXT NOT NULL,
  params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faults (
  action TEXT NOT NULL, kind TEXT NOT NULL, retry_after REAL, remaining INTEGER NOT NULL,
  applied_first INTEGER NOT NULL DEFAULT 0);
"""


class LocalDbRemote:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        setup = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            setup.execute("PRAGMA journal_mode=WAL")
            setup.executescript(SCHEMA)
        finally:
            setup.close()
        with self._db() as db:
            if db.execute("SELECT count(*) FROM seq").fetchone()[0] == 0:
                db.execute("INSERT INTO seq VALUES (0)")

    def _db(self) -> sqlite3.Connection:
        return _Tx(sqlite3.connect(self.path, timeout=30, isolation_level=None))  # type: ignore[return-value]

    # -- what a user of the remote service does -------------------------------------------

    def put(self, type_: str, id_: str, **changes: Any) -> int:
        """Change (or create) an object; returns its new version."""
        with self._lock, self._db() as db:
            version = self._next_version(db)
            row = db.execute(
                "SELECT fields, history FROM objects WHERE type=? AND id=?", (type_, id_)
            ).fetchone()
            fields = json.loads(row[0]) if row else {}
            history: dict[str, list[Any]] = json.loads(row[1]) if row else {}
            for key, value in changes.items():
                fields[key] = value
                history.setdefault(key, []).append([version, value])
            db.execute(
                "INSERT INTO objects (type, id, fields, version, history) VALUES (?,?,?,?,?) "
                "ON CONFLICT (type, id) DO UPDATE SET fields=excluded.fields, "
                "version=excluded.version, history=excluded.history, deleted=0",
                (type_, id_, json.dumps(fields), version, json.dumps(history)),
            )
            return int(version)

    def delete(self, type_: str, id_: str) -> None:
        with self._lock, self._db() as db:
            version = self._next_version(db)
            db.execute(
                "UPDATE objects SET deleted=1, version=? WHERE type=? AND id=?",
                (version, type_, id_),
            )

    @staticmethod
    def _next_version(db: sqlite3.Connection) -> int:
        # Versions are epoch milliseconds, strictly increasing, like a SaaS "last modified".
        now_ms = int(time.time() * 1000)
        row = db.execute("UPDATE seq SET n = max(n + 1, ?) RETURNING n", (now_ms,)).fetchone()
        return int(row[0])

    def effects(self, action: str | None = None) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT id, key, action, params FROM effects ORDER BY id").fetchall()
        out = [{"id": r[0], "key": r[1], "action": r[2], "params": json.loads(r[3])} for r in rows]
        return [e for e in out if action is None or e["action"] == action]

    def fail_next(
        self,
        action: str,
        kind: str = "transient",
        *,
        count: int = 1,
        retry_after: float | None = None,
        applied_first: bool = False,
    ) -> None:
        """The next `count` calls of `action` fail with `kind` ("transient" or "permanent").
        `applied_first`: the effect is recorded, then the call fails (an ambiguous write)."""
        with self._db() as db:
            db.execute(
                "INSERT INTO faults VALUES (?,?,?,?,?)",
                (action, kind, retry_after, count, int(applied_first)),
            )

    # -- what the connector calls ---------------------------------------------------------

    def read(self, type_: str, id_: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute(
                "SELECT fields, version, history, deleted FROM objects WHERE type=? AND id=?",
                (type_, id_),
            ).fetchone()
        if row is None:
            return None
        return {
            "fields": json.loads(row[0]),
            "version": row[1],
            "history": json.loads(row[2]),
            "deleted": bool(row[3]),
        }

    def changed_since(self, type_: str, version: int, limit: int) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, fields, version, history, deleted FROM objects "
                "WHERE type=? AND version>? ORDER BY version LIMIT ?",
                (type_, version, limit),
            ).fetchall()
        return [
            {
                "id": r[0],
                "fields": json.loads(r[1]),
                "version": r[2],
                "history": json.loads(r[3]),
                "deleted": bool(r[4]),
            }
            for r in rows
        ]

    def all_objects(self, type_: str) -> list[dict[str, Any]]:
        return self.changed_since(type_, -1, 1_000_000)

    def take_fault(self, action: str) -> tuple[str, float | None, bool] | None:
        with self._lock, self._db() as db:
            row = db.execute(
                "SELECT rowid, kind, retry_after, applied_first FROM faults "
                "WHERE action=? AND remaining>0 ORDER BY rowid LIMIT 1",
                (action,),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE faults SET remaining=remaining-1 WHERE rowid=?", (row[0],))
            return row[1], row[2], bool(row[3])

    def add_effect(self, key: str, action: str, params: dict[str, Any]) -> int:
        with self._lock, self._db() as db:
            cur = db.execute(
                "INSERT INTO effects (key, action, params) VALUES (?,?,?)",
                (key, action, json.dumps(params, sort_keys=True)),
            )
            return int(cur.lastrowid or 0)

    def find_effect(self, key: str) -> int | None:
        with self._db() as db:
            row = db.execute("SELECT id FROM effects WHERE key=? LIMIT 1", (key,)).fetchone()
        return int(row[0]) if row else None


class _Tx:
    """`with` block = one immediate transaction; closes the connection afterwards."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.db.close()
