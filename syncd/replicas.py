"""This replica's presence in the store, and what `syncd status` shows of all replicas."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import delete, select

from syncd.clock import Clock, to_ms
from syncd.store.db import ACTIONS_CHANNEL, Store
from syncd.store.schema import leaderships, replicas

log = structlog.get_logger("syncd.replicas")


def heartbeat(store: Store, replica_id: str, clock: Clock, started_at: int) -> None:
    with store.tx() as conn:
        store.upsert(conn, replicas, ["replica_id"], {
            "replica_id": replica_id, "host": socket.gethostname(), "pid": os.getpid(),
            "started_at": started_at, "heartbeat_at": to_ms(clock.now())})


def leave(store: Store, replica_id: str) -> None:
    with store.tx() as conn:
        conn.execute(delete(replicas).where(replicas.c.replica_id == replica_id))


def describe(store: Store, now_ms: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        reps = [dict(r) for r in conn.execute(select(replicas).order_by(replicas.c.started_at))
                .mappings()]
        jobs = [dict(r) for r in conn.execute(select(leaderships).order_by(leaderships.c.name))
                .mappings()]
    return {
        "replicas": [{"replica": r["replica_id"], "host": r["host"], "pid": r["pid"],
                      "heartbeat_seconds_ago": round((now_ms - r["heartbeat_at"]) / 1000, 1)}
                     for r in reps],
        "jobs": [{"job": j["name"], "holder": j["holder"], "fence": j["fence"],
                  "heartbeat_seconds_ago": round((now_ms - j["heartbeat_at"]) / 1000, 1)}
                 for j in jobs],
    }


class ActionListener:
    """LISTEN for planned actions on PostgreSQL and wake the idle executors at once, instead
    of at their next tick. Nothing to do on SQLite, where one process plans and performs."""

    def __init__(self, store: Store, wake: Callable[[], None], stop: threading.Event) -> None:
        self.store = store
        self.wake = wake
        self.stop = stop

    def run(self) -> None:
        import psycopg

        while not self.stop.is_set():
            try:
                with psycopg.connect(self.store.libpq_url(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {ACTIONS_CHANNEL}")
                    while not self.stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake()
            except Exception as exc:
                log.warning("listener.reconnecting", error=str(exc))
                self.stop.wait(2.0)
