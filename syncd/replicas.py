"""This replica's presence in the store, and what `syncd status` shows of all replicas."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import structlog

from syncd.clock import Clock, to_ms
from syncd.store import leadership as jobs
from syncd.store.db import ACTIONS_CHANNEL, Store

log = structlog.get_logger("syncd.replicas")


def heartbeat(store: Store, replica_id: str, clock: Clock, started_at: int) -> None:
    jobs.replica_heartbeat(
        store,
        jobs.ReplicaRow(
            replica_id=replica_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=started_at,
            heartbeat_at=to_ms(clock.now()),
        ),
    )


def leave(store: Store, replica_id: str) -> None:
    jobs.remove_replica(store, replica_id)


def describe(store: Store, now_ms: int) -> dict[str, Any]:
    return {
        "replicas": [
            {
                "replica": r.replica_id,
                "host": r.host,
                "pid": r.pid,
                "heartbeat_seconds_ago": round((now_ms - r.heartbeat_at) / 1000, 1),
            }
            for r in jobs.all_replicas(store)
        ],
        "jobs": [
            {
                "job": j.name,
                "holder": j.holder,
                "fence": j.fence,
                "heartbeat_seconds_ago": round((now_ms - j.heartbeat_at) / 1000, 1),
            }
            for j in jobs.all_jobs(store)
        ],
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
