"""Schedule instants already handled (cron rules; date rules use their action keys)."""

from __future__ import annotations

from sqlalchemy import Connection

from syncd.store.db import Store
from syncd.store.schema import fired_triggers


def mark_fired(store: Store, conn: Connection, trigger_key: str, rule_id: str, now_ms: int) -> None:
    conn.execute(
        store.insert_ignore(fired_triggers, ["trigger_key"]).values(
            trigger_key=trigger_key, rule_id=rule_id, fired_at=now_ms
        )
    )
