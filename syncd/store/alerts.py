"""Alerts already mailed (`alerts` table): at most one mail per rule (or topic) and period;
the failures held back meanwhile are counted for the digest."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from syncd.store.db import Store
from syncd.store.schema import alerts


@dataclass(frozen=True)
class AlertRow:
    rule_id: str
    last_sent_at: int
    suppressed: int


def alert_for_update(conn: Connection, rule_id: str) -> AlertRow | None:
    row = conn.execute(select(alerts).where(alerts.c.rule_id == rule_id)).mappings().first()
    return None if row is None else AlertRow(**dict(row))


def hold_back(conn: Connection, rule_id: str) -> None:
    """One more failure not mailed (it goes into the next digest)."""
    conn.execute(
        update(alerts).where(alerts.c.rule_id == rule_id).values(suppressed=alerts.c.suppressed + 1)
    )


def mark_sent(store: Store, conn: Connection, rule_id: str, now_ms: int) -> None:
    store.upsert(
        conn, alerts, ["rule_id"], {"rule_id": rule_id, "last_sent_at": now_ms, "suppressed": 0}
    )


def digests_due(store: Store, now_ms: int, period_ms: int, exclude_prefix: str) -> list[AlertRow]:
    """Rules with failures held back whose period has ended."""
    with store.engine.connect() as conn:
        rows = (
            conn.execute(
                select(alerts).where(
                    alerts.c.suppressed > 0,
                    alerts.c.last_sent_at <= now_ms - period_ms,
                    ~alerts.c.rule_id.startswith(exclude_prefix),
                )
            )
            .mappings()
            .all()
        )
    return [AlertRow(**dict(r)) for r in rows]


def digest_sent(store: Store, rule_id: str, now_ms: int) -> None:
    with store.tx() as conn:
        conn.execute(
            update(alerts)
            .where(alerts.c.rule_id == rule_id)
            .values(suppressed=0, last_sent_at=now_ms)
        )
