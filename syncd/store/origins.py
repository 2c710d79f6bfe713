"""Which of syncd's own actions created an object, read from the store.

An issue syncd opened is watched like any other object. Rules about it (W13: the New Hub
issue is closed) need the deal it was opened for. Text in the issue body can be edited
away by an engineer; the store's record cannot: the action that created the issue is kept
with its result (`external_id`, e.g. `org/repo#7`) and the object it was planned for.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from syncd.store.db import padded
from syncd.store.schema import actions, snapshots

MAX_DEPTH = 4  # issue <- issue <- deal: chains are short; a bound keeps a loop harmless


def created_by(conn: Connection, source: str, object_id: str) -> dict[str, Any] | None:
    """`{"rule": id, "from": <object>, "root": <object>}` for an object a done action of
    syncd created, where `from` is the object the action was planned for (its fields and
    context as last stored, plus `source` and `type`) and `root` the first object of the
    chain that syncd did not create itself (the deal behind issue <- issue <- deal)."""
    first = _origin(conn, source, object_id)
    if first is None:
        return None
    rule, view = first
    root = view
    for _ in range(MAX_DEPTH):
        step = _origin(conn, root["source"], root["id"])
        if step is None:
            break
        root = step[1]
    return {"rule": rule, "from": view, "root": root}


def created_by_many(
    conn: Connection, source: str, object_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """`created_by` for many objects of a source: one statement finds which of them syncd
    created (most were not), and only those are followed further. Objects syncd did not
    create are left out of the answer."""
    created: set[str] = set()
    wanted = sorted(set(object_ids))
    for start in range(0, len(wanted), IDS_PER_QUERY):
        chunk = wanted[start : start + IDS_PER_QUERY]
        params = {"connector": source, "ids": padded(chunk)}
        created.update(r[0] for r in conn.execute(CREATORS, params))
    out = {}
    for object_id in sorted(created):
        found = created_by(conn, source, object_id)
        if found is not None:
            out[object_id] = found
    return out


IDS_PER_QUERY = 500
# Built once: this runs for every object ingested (ix_actions_external serves it).
CREATOR = (
    select(actions.c.rule_id, actions.c.source, actions.c.object_type, actions.c.object_id)
    .where(
        actions.c.connector == bindparam("connector"),
        actions.c.external_id == bindparam("external_id"),
        actions.c.status == "done",
        actions.c.object_id.is_not(None),
    )
    .order_by(actions.c.id)
    .limit(1)
)
CREATORS = (
    select(actions.c.external_id)
    .where(
        actions.c.connector == bindparam("connector"),
        actions.c.external_id.in_(bindparam("ids", expanding=True)),
        actions.c.status == "done",
        actions.c.object_id.is_not(None),
    )
    .distinct()
)
_SNAPSHOT_VIEW = select(snapshots.c.fields, snapshots.c.context).where(
    snapshots.c.source == bindparam("source"),
    snapshots.c.object_type == bindparam("object_type"),
    snapshots.c.object_id == bindparam("object_id"),
)


def _origin(conn: Connection, source: str, object_id: str) -> tuple[str, dict[str, Any]] | None:
    action = conn.execute(CREATOR, {"connector": source, "external_id": object_id}).first()
    if action is None:
        return None
    snap = conn.execute(
        _SNAPSHOT_VIEW,
        {
            "source": action.source,
            "object_type": action.object_type,
            "object_id": action.object_id,
        },
    ).first()
    view: dict[str, Any] = dict(snap.context or {}) if snap else {}
    view.update(snap.fields or {} if snap else {})
    view.update({"id": action.object_id, "source": action.source, "type": action.object_type})
    return action.rule_id, view
