"""Singleton jobs across replicas: one poller per source and one scheduler at a time.

On PostgreSQL a job is held through a session-level advisory lock on a connection kept open
for that purpose: when the holder dies, its connection closes and PostgreSQL releases the
lock, so another replica takes the job over at its next try. Each acquisition increments
the job's fencing token in `leaderships`; writes made under the job call `check_fence` in
their own transaction, so a holder that was paused (GC, a stalled VM) and lost its lock in
the meantime cannot commit stale work.

On SQLite there is only ever one daemon (a file lock proves it), so every job is granted;
the fence is still kept, which keeps the code paths the same.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import structlog
from sqlalchemy import Connection, text

from syncd.clock import Clock, to_ms
from syncd.errors import SyncdError
from syncd.store import leadership as jobs
from syncd.store.db import Store

log = structlog.get_logger("syncd.leadership")


class FencedOut(SyncdError):
    """This replica no longer holds the job; its transaction is rolled back."""


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a job name."""
    return int.from_bytes(hashlib.sha256(f"syncd:{name}".encode()).digest()[:8], "big", signed=True)


def check_fence(conn: Connection, name: str, fence: int | None) -> None:
    """Raise FencedOut unless `fence` is still the job's current token (call it inside the
    transaction that writes under the job; on PostgreSQL it locks the row until commit)."""
    if fence is None:
        return
    current = jobs.current_fence(conn, name)
    if current != fence:
        raise FencedOut(f"job {name!r}: fence {fence} is stale (current {current})")


class Leadership:
    def __init__(self, store: Store, replica_id: str, clock: Clock) -> None:
        self.store = store
        self.replica_id = replica_id
        self.clock = clock
        self.held: dict[str, int] = {}  # job name -> fence
        self._lock = threading.Lock()
        self._session: Any = None  # the PostgreSQL connection that owns the advisory locks

    def _pg_session(self) -> Any:
        if self._session is None:
            self._session = self.store.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return self._session

    def hold(self, name: str) -> int | None:
        """The job's fence if this replica holds (or just took) it, else None."""
        with self._lock:
            if self.store.is_sqlite:
                return self.held.get(name) or self._take(name)
            try:
                session = self._pg_session()
                if name in self.held:
                    session.execute(text("SELECT 1"))  # the lock lives as long as this works
                    self._heartbeat(name)
                    return self.held[name]
                got = session.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)}
                ).scalar()
            except Exception as exc:  # the session is gone, and with it every lock
                log.warning("leadership.session_lost", error=str(exc))
                self._drop_session()
                return None
            return self._take(name) if got else None

    def _take(self, name: str) -> int:
        fence = jobs.take_job(self.store, name, self.replica_id, to_ms(self.clock.now()))
        self.held[name] = fence
        log.info("leadership.acquired", job=name, fence=fence, replica=self.replica_id)
        return fence

    def _heartbeat(self, name: str) -> None:
        jobs.job_heartbeat(self.store, name, self.replica_id, to_ms(self.clock.now()))

    def _drop_session(self) -> None:
        self.held.clear()
        if self._session is not None:
            try:
                self._session.close()
            except Exception:
                log.debug("leadership.close_failed")
            self._session = None

    def release_all(self) -> None:
        with self._lock:
            self._drop_session()
