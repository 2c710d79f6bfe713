"""Replicas and singleton jobs: the `replicas` and `leaderships` tables."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from syncd.store.db import Store
from syncd.store.schema import leaderships, replicas


@dataclass(frozen=True)
class ReplicaRow:
    replica_id: str
    host: str
    pid: int
    started_at: int
    heartbeat_at: int


@dataclass(frozen=True)
class JobRow:
    name: str
    fence: int
    holder: str
    acquired_at: int
    heartbeat_at: int


def current_fence(conn: Connection, name: str) -> int | None:
    """The job's fencing token; on PostgreSQL the row stays locked until commit, so no
    replica takes the job over while the caller's transaction writes under it."""
    query = select(leaderships.c.fence).where(leaderships.c.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    fence = conn.execute(query).scalar()
    return None if fence is None else int(fence)


def take_job(store: Store, name: str, holder: str, now_ms: int) -> int:
    """Record `holder` as the job's holder with a new fence (one more than any before)."""
    with store.tx() as conn:
        conn.execute(
            store.insert_ignore(leaderships, ["name"]).values(
                name=name, fence=0, holder=holder, acquired_at=now_ms, heartbeat_at=now_ms
            )
        )
        fence = conn.execute(
            update(leaderships)
            .where(leaderships.c.name == name)
            .values(
                fence=leaderships.c.fence + 1,
                holder=holder,
                acquired_at=now_ms,
                heartbeat_at=now_ms,
            )
            .returning(leaderships.c.fence)
        ).scalar_one()
    return int(fence)


def job_heartbeat(store: Store, name: str, holder: str, now_ms: int) -> None:
    with store.tx() as conn:
        conn.execute(
            update(leaderships)
            .where(leaderships.c.name == name, leaderships.c.holder == holder)
            .values(heartbeat_at=now_ms)
        )


def replica_heartbeat(store: Store, replica: ReplicaRow) -> None:
    with store.tx() as conn:
        store.upsert(
            conn,
            replicas,
            ["replica_id"],
            {
                "replica_id": replica.replica_id,
                "host": replica.host,
                "pid": replica.pid,
                "started_at": replica.started_at,
                "heartbeat_at": replica.heartbeat_at,
            },
        )


def remove_replica(store: Store, replica_id: str) -> None:
    with store.tx() as conn:
        conn.execute(delete(replicas).where(replicas.c.replica_id == replica_id))


def all_replicas(store: Store) -> list[ReplicaRow]:
    """Every replica, oldest start first."""
    with store.engine.connect() as conn:
        return [
            ReplicaRow(**dict(r))
            for r in conn.execute(select(replicas).order_by(replicas.c.started_at)).mappings()
        ]


def all_jobs(store: Store) -> list[JobRow]:
    with store.engine.connect() as conn:
        return [
            JobRow(**dict(r))
            for r in conn.execute(select(leaderships).order_by(leaderships.c.name)).mappings()
        ]
