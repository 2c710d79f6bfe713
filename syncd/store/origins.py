"""Which of syncd's own actions created an object, read from the store.

An issue syncd opened is watched like any other object. Rules about it (W13: the New Hub
issue is closed) need the deal it was opened for. Text in the issue body can be edited
away by an engineer; the store's record cannot: the action that created the issue is kept
with its result (`external_id`, e.g. `org/repo#7`) and the object it was planned for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select

from syncd.store import direct
from syncd.store.db import Store, padded
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
    conn: Connection, source: str, object_ids: list[str], store: Store | None = None
) -> dict[str, dict[str, Any]]:
    """`created_by` for many objects of a source: one statement finds which of them syncd
    created (most were not), and only those are followed further. Objects syncd did not
    create are left out of the answer. With the `store`, that statement may skip
    SQLAlchemy on SQLite (syncd.store.direct: it runs for every batch ingested)."""
    created: set[str] = set()
    wanted = sorted(set(object_ids))
    for start in range(0, len(wanted), IDS_PER_QUERY):
        chunk = padded(wanted[start : start + IDS_PER_QUERY])
        created.update(r[0] for r in _creators(store, conn, source, chunk))
    out = {}
    for object_id in sorted(created):
        found = created_by(conn, source, object_id)
        if found is not None:
            out[object_id] = found
    return out


def _creators(store: Store | None, conn: Connection, source: str, ids: list[str]) -> Iterable[Any]:
    """Rows of CREATORS for these ids, on the driver directly when it may."""
    found = None
    if store is not None:
        found = store.direct_query(conn, ("creators", len(ids)), lambda: _creators_of(len(ids)))
    if found is None:
        return conn.execute(CREATORS, {"connector": source, "ids": ids})
    driver, prepared = found
    params = {"connector": source, "status": "done"}
    params.update((f"id_{i}", object_id) for i, object_id in enumerate(ids))
    return direct.fetch(driver, prepared, prepared.parameters((params,)))


def _creators_of(size: int) -> tuple[Any, list[str]]:
    """CREATORS for `size` ids, each id its own parameter (id_0, id_1 ...), on SQLite."""
    ids = [f"id_{i}" for i in range(size)]
    stmt = (
        select(actions.c.external_id)
        .where(
            actions.c.connector == bindparam("connector"),
            actions.c.external_id.in_([bindparam(name) for name in ids]),
            actions.c.status == bindparam("status"),  # every parameter named (direct.prepare)
            actions.c.object_id.is_not(None),
        )
        .distinct()
    )
    return stmt, ["connector", "status", *ids]


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
