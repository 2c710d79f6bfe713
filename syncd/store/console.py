"""The console's read queries (syncd/console): overview, activity, one event, one action,
plot series. Plain dataclasses out; times are epoch milliseconds as stored.

Every query is bounded (a page, a time window, a row cap) so a page stays fast with
hundreds of thousands of actions in the store (benchmarks/console.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, String, and_, cast, create_engine, func, or_, select
from sqlalchemy import event as sa_event

from syncd.store.db import Store
from syncd.store.schema import (
    action_attempts,
    actions,
    cursors,
    event_traces,
    events,
    inbox,
    leaderships,
    replicas,
    snapshots,
    state,
)

HOUR_MS = 3_600_000
LATENCY_ROWS = 5_000  # newest done actions in the range the p50/p95 are taken from
GOLIVE_SCOPE, GOLIVE_PREFIX = "syncd", "golive:"  # as syncd.golive keeps them


@dataclass
class PollRow:
    source: str
    stream: str
    updated_at: int


@dataclass
class SourceRow:
    name: str
    polls: list[PollRow] = field(default_factory=list)
    webhooks: dict[str, int] = field(default_factory=dict)  # inbox status -> count (24 h)
    went_live_at: int | None = None


@dataclass
class RuleRow:
    rule_id: str
    actions: int
    done: int
    dead: int
    waiting: int  # pending or in flight


@dataclass
class ReplicaRow:
    replica_id: str
    host: str
    pid: int
    started_at: int
    heartbeat_at: int
    jobs: list[str] = field(default_factory=list)


@dataclass
class Overview:
    sources: list[SourceRow]
    by_status: dict[str, int]
    due_now: int
    inbox_pending: int
    inbox_failed: int
    rules: list[RuleRow]
    replicas: list[ReplicaRow]
    unheld_jobs: list[str]

    @property
    def queue_depth(self) -> int:
        return self.by_status.get("pending", 0) + self.by_status.get("in_flight", 0)


@dataclass
class ActionRow:
    id: int
    key: str
    rule_id: str
    connector: str
    action: str
    status: str
    attempts: int
    created_at: int
    updated_at: int
    next_attempt_at: int
    event_id: int | None
    source: str | None
    object_type: str | None
    object_id: str | None
    last_error: str | None
    external_id: str | None
    external_url: str | None
    params: dict[str, Any] = field(default_factory=dict)
    guarantee: str = ""
    object_fields: dict[str, Any] = field(default_factory=dict)  # its object as last seen
    object_context: dict[str, Any] = field(default_factory=dict)
    attempt_log: list[AttemptRow] = field(default_factory=list)


@dataclass
class AttemptRow:
    attempt: int
    finished_at: int
    outcome: str
    error: str | None


@dataclass
class EventRow:
    id: int
    source: str
    object_type: str
    object_id: str
    kind: str
    field: str | None
    old: Any
    new: Any
    created_at: int
    # (`dataclasses.field`: this class has a column named `field`)
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)  # as last seen
    actions: list[ActionRow] = dataclasses.field(default_factory=list)
    context: dict[str, Any] = dataclasses.field(default_factory=dict)  # its link, if any


@dataclass
class Filters:
    rule: str = ""
    source: str = ""
    object: str = ""  # an id, or part of the object's name
    status: str = ""
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass
class ActivityPage:
    entries: list[EventRow]
    next_before: int | None  # the `before` of the next (older) page, None on the last


@dataclass
class Trace:
    decisions: list[dict[str, str]]
    stored: bool  # False: the event predates traces (or was seen without firing)


@dataclass
class PlotData:
    hours: list[int]  # hour starts (ms)
    events: list[int]
    actions: list[int]
    failures: list[int]
    failures_by_rule: list[tuple[str, int]]
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    latency_samples: int


@contextlib.contextmanager
def _reading(store: Store) -> Iterator[Connection]:
    """A connection for reads. On SQLite the store's engine begins every transaction
    IMMEDIATE (the write lock, for its writers); a console page must not hold back ingest
    while it reads, so it reads through an engine of its own, in plain read transactions."""
    if not store.is_sqlite:
        with store.engine.connect() as conn:
            yield conn
        return
    reader = getattr(store, "_console_reader", None)
    if reader is None:
        reader = create_engine(
            store.engine.url, connect_args={"timeout": 30, "check_same_thread": False}
        )

        @sa_event.listens_for(reader, "connect")
        def _read_only(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # BEGIN as below, not the sqlite3 module's
            dbapi_conn.execute("PRAGMA query_only=ON")
            dbapi_conn.execute("PRAGMA busy_timeout=30000")

        @sa_event.listens_for(reader, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")  # deferred: a read snapshot, no write lock

        store._console_reader = reader  # type: ignore[attr-defined]
    with reader.connect() as conn:
        yield conn


_ACTION_COLUMNS = (
    actions.c.id,
    actions.c.key,
    actions.c.rule_id,
    actions.c.connector,
    actions.c.action,
    actions.c.status,
    actions.c.attempts,
    actions.c.created_at,
    actions.c.updated_at,
    actions.c.next_attempt_at,
    actions.c.event_id,
    actions.c.source,
    actions.c.object_type,
    actions.c.object_id,
    actions.c.last_error,
    actions.c.external_id,
    actions.c.external_url,
)


def _action(row: Any, params: dict[str, Any] | None = None, guarantee: str = "") -> ActionRow:
    return ActionRow(
        **{c.name: row[c.name] for c in _ACTION_COLUMNS}, params=params or {}, guarantee=guarantee
    )


# -- overview ------------------------------------------------------------------------------


def overview(store: Store, now_ms: int, source_names: Iterable[str]) -> Overview:
    since = now_ms - 24 * HOUR_MS
    with _reading(store) as conn:
        by_status: dict[str, int] = dict(
            conn.execute(select(actions.c.status, func.count()).group_by(actions.c.status)).all()
        )
        due = (
            conn.execute(
                select(func.count()).where(
                    actions.c.status.in_(("pending", "in_flight")),
                    actions.c.next_attempt_at <= now_ms,
                )
            ).scalar()
            or 0
        )
        inbox_counts: dict[str, int] = dict(
            conn.execute(select(inbox.c.status, func.count()).group_by(inbox.c.status)).all()
        )
        sources = {name: SourceRow(name) for name in sorted(source_names)}
        for row in conn.execute(
            select(cursors.c.source, cursors.c.stream, cursors.c.updated_at)
        ).mappings():
            src = sources.setdefault(row["source"], SourceRow(row["source"]))
            src.polls.append(PollRow(row["source"], row["stream"], row["updated_at"]))
        for name, status, count in conn.execute(
            select(inbox.c.connector, inbox.c.status, func.count())
            .where(inbox.c.received_at >= since)
            .group_by(inbox.c.connector, inbox.c.status)
        ).all():
            sources.setdefault(name, SourceRow(name)).webhooks[status] = count
        for key, value in conn.execute(
            select(state.c.key, state.c.value).where(
                state.c.scope == GOLIVE_SCOPE, state.c.key.startswith(GOLIVE_PREFIX)
            )
        ).all():
            if isinstance(value, int | float):
                name = key[len(GOLIVE_PREFIX) :]
                sources.setdefault(name, SourceRow(name)).went_live_at = int(value)
        rules = _rule_rows(conn)
        holders: dict[str, list[str]] = {}
        for name, holder in conn.execute(select(leaderships.c.name, leaderships.c.holder)).all():
            holders.setdefault(holder, []).append(name)
        reps = [
            ReplicaRow(
                r["replica_id"],
                r["host"],
                r["pid"],
                r["started_at"],
                r["heartbeat_at"],
                sorted(holders.pop(r["replica_id"], [])),
            )
            for r in conn.execute(select(replicas).order_by(replicas.c.started_at)).mappings()
        ]
    return Overview(
        list(sources.values()),
        by_status,
        due,
        inbox_counts.get("pending", 0),
        inbox_counts.get("failed", 0),
        rules,
        reps,
        sorted(j for jobs in holders.values() for j in jobs),
    )


def _rule_rows(conn: Connection) -> list[RuleRow]:
    counts: dict[str, dict[str, int]] = {}
    for rule_id, status, count in conn.execute(
        select(actions.c.rule_id, actions.c.status, func.count()).group_by(
            actions.c.rule_id, actions.c.status
        )
    ).all():
        counts.setdefault(rule_id, {})[status] = count
    return [
        RuleRow(
            rule_id,
            sum(c.values()),
            c.get("done", 0),
            c.get("dead", 0),
            c.get("pending", 0) + c.get("in_flight", 0),
        )
        for rule_id, c in sorted(counts.items())
    ]


# -- activity ------------------------------------------------------------------------------


def activity(
    store: Store, filters: Filters, before: int | None = None, limit: int = 50
) -> ActivityPage:
    """Events newest first with the actions they caused; `before`: an event id (paging)."""
    f = filters
    with _reading(store) as conn:
        conds = []
        if before is not None:
            conds.append(events.c.id < before)
        if f.source:
            conds.append(events.c.source == f.source)
        if f.since_ms is not None:
            conds.append(events.c.created_at >= f.since_ms)
        if f.until_ms is not None:
            conds.append(events.c.created_at < f.until_ms)
        if f.object:
            named = _objects_named(conn, f.object, f.source)
            conds.append(
                or_(
                    events.c.object_id == f.object,
                    *[
                        and_(
                            events.c.source == s, events.c.object_type == t, events.c.object_id == i
                        )
                        for s, t, i in named
                    ],
                )
            )
        if f.rule or f.status:
            # Start from the actions (indexed by rule and status): few matches among many
            # events; the ids first (DISTINCT on ids: PostgreSQL's json has no equality).
            ids = select(actions.c.event_id).where(actions.c.event_id.is_not(None))
            if conds:
                ids = ids.join(events, events.c.id == actions.c.event_id)
            if f.rule:
                ids = ids.where(actions.c.rule_id == f.rule)
            if f.status:
                ids = ids.where(actions.c.status == f.status)
            ids = ids.where(*conds).distinct().order_by(actions.c.event_id.desc())
            found = [i for (i,) in conn.execute(ids.limit(limit + 1)).all()]
            rows = (
                conn.execute(
                    select(events).where(events.c.id.in_(found)).order_by(events.c.id.desc())
                )
                .mappings()
                .all()
            )
        else:
            rows = (
                conn.execute(
                    select(events).where(*conds).order_by(events.c.id.desc()).limit(limit + 1)
                )
                .mappings()
                .all()
            )
        entries = [_event(r) for r in rows[:limit]]
        _attach(conn, entries)
    return ActivityPage(entries, entries[-1].id if len(rows) > limit else None)


def _objects_named(conn: Connection, text: str, source: str) -> list[tuple[str, str, str]]:
    """Objects whose last seen fields contain `text` (the name box of the filters)."""
    query = select(snapshots.c.source, snapshots.c.object_type, snapshots.c.object_id).where(
        cast(snapshots.c.fields, String).ilike(f"%{_like_escape(text)}%", escape="\\")
    )
    if source:
        query = query.where(snapshots.c.source == source)
    return [(r[0], r[1], r[2]) for r in conn.execute(query.limit(200)).all()]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _event(row: Any) -> EventRow:
    return EventRow(
        row["id"],
        row["source"],
        row["object_type"],
        row["object_id"],
        row["kind"],
        row["field"],
        row["old"],
        row["new"],
        row["created_at"],
    )


def _attach(conn: Connection, entries: list[EventRow]) -> None:
    """Each event's actions and its object's last seen fields (for its name)."""
    if not entries:
        return
    by_id = {e.id: e for e in entries}
    for row in conn.execute(
        select(*_ACTION_COLUMNS).where(actions.c.event_id.in_(list(by_id))).order_by(actions.c.id)
    ).mappings():
        by_id[row["event_id"]].actions.append(_action(row))
    found = _fields_of(conn, {(e.source, e.object_type, e.object_id) for e in entries})
    for e in entries:
        e.fields, e.context = found.get((e.source, e.object_type, e.object_id), ({}, {}))


Seen = tuple[dict[str, Any], dict[str, Any]]


def _fields_of(conn: Connection, refs: set[Any]) -> dict[tuple[str, str, str], Seen]:
    """The last seen fields and context of each (source, type, id) given."""
    found: dict[tuple[str, str, str], Seen] = {}
    for source, object_type in {(s, t) for s, t, _ in refs}:
        ids = [i for s, t, i in refs if (s, t) == (source, object_type)]
        for row in conn.execute(
            select(snapshots.c.object_id, snapshots.c.fields, snapshots.c.context).where(
                snapshots.c.source == source,
                snapshots.c.object_type == object_type,
                snapshots.c.object_id.in_(ids),
            )
        ).all():
            found[(source, object_type, row[0])] = (row[1] or {}, row[2] or {})
    return found


# -- one event, one action -----------------------------------------------------------------


def event(store: Store, event_id: int) -> tuple[EventRow, Trace] | None:
    with _reading(store) as conn:
        row = conn.execute(select(events).where(events.c.id == event_id)).mappings().first()
        if row is None:
            return None
        entry = _event(row)
        _attach(conn, [entry])
        decisions = conn.execute(
            select(event_traces.c.decisions).where(event_traces.c.event_id == event_id)
        ).scalar()
    return entry, Trace(decisions or [], decisions is not None)


def action(store: Store, action_id: int) -> tuple[ActionRow, bool] | None:
    """The action, and whether it kept a situation to be re-planned from (a failed render)."""
    with _reading(store) as conn:
        row = (
            conn.execute(
                select(*_ACTION_COLUMNS, actions.c.params, actions.c.guarantee).where(
                    actions.c.id == action_id
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        kept = conn.execute(
            select(func.count()).where(state.c.scope == "replan", state.c.key == row["key"])
        ).scalar()
        attempts = [
            AttemptRow(*r)
            for r in conn.execute(
                select(
                    action_attempts.c.attempt,
                    action_attempts.c.finished_at,
                    action_attempts.c.outcome,
                    action_attempts.c.error,
                )
                .where(action_attempts.c.action_id == action_id)
                .order_by(action_attempts.c.id.desc())
                .limit(100)
            ).all()
        ]
    found = _action(row, row["params"], row["guarantee"])
    found.attempt_log = attempts
    return found, bool(kept)


def recent_actions(
    store: Store, status: str | None = None, rule: str | None = None, limit: int = 50
) -> list[ActionRow]:
    """Actions newest first, with their objects' last seen fields (`syncd actions list`)."""
    query = select(*_ACTION_COLUMNS).order_by(actions.c.id.desc()).limit(limit)
    if status:
        query = query.where(actions.c.status == status)
    if rule:
        query = query.where(actions.c.rule_id == rule)
    with _reading(store) as conn:
        rows = [_action(r) for r in conn.execute(query).mappings()]
        fields = _fields_of(
            conn,
            {
                (a.source, a.object_type, a.object_id)
                for a in rows
                if a.source and a.object_type and a.object_id
            },
        )
    for a in rows:
        a.object_fields, a.object_context = fields.get(
            (a.source or "", a.object_type or "", a.object_id or ""), ({}, {})
        )
    return rows


def action_page(
    store: Store, filters: Filters, before: int | None = None, limit: int = 50
) -> tuple[list[ActionRow], int | None]:
    """Actions newest first, every kind (scheduled ones have no event), with the activity
    page's filters; the `before` of the next page, or None on the last."""
    f = filters
    conds = []
    if before is not None:
        conds.append(actions.c.id < before)
    if f.rule:
        conds.append(actions.c.rule_id == f.rule)
    if f.status:
        conds.append(actions.c.status == f.status)
    if f.source:
        conds.append(actions.c.source == f.source)
    if f.since_ms is not None:
        conds.append(actions.c.created_at >= f.since_ms)
    if f.until_ms is not None:
        conds.append(actions.c.created_at < f.until_ms)
    with _reading(store) as conn:
        if f.object:
            named = _objects_named(conn, f.object, f.source)
            conds.append(
                or_(
                    actions.c.object_id == f.object,
                    *[
                        and_(
                            actions.c.source == s,
                            actions.c.object_type == t,
                            actions.c.object_id == i,
                        )
                        for s, t, i in named
                    ],
                )
            )
        rows = [
            _action(r)
            for r in conn.execute(
                select(*_ACTION_COLUMNS)
                .where(*conds)
                .order_by(actions.c.id.desc())
                .limit(limit + 1)
            ).mappings()
        ]
        seen = _fields_of(
            conn,
            {
                (a.source, a.object_type, a.object_id)
                for a in rows[:limit]
                if a.source and a.object_type and a.object_id
            },
        )
    for a in rows[:limit]:
        a.object_fields, a.object_context = seen.get(
            (a.source or "", a.object_type or "", a.object_id or ""), ({}, {})
        )
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def object_seen(
    store: Store, source: str, object_type: str, object_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An object's last seen fields and context (for its name and link)."""
    with _reading(store) as conn:
        return _fields_of(conn, {(source, object_type, object_id)}).get(
            (source, object_type, object_id), ({}, {})
        )


# -- plots ---------------------------------------------------------------------------------


def plot_data(store: Store, now_ms: int, hours: int) -> PlotData:
    since = (now_ms // HOUR_MS - hours + 1) * HOUR_MS
    starts = [since + i * HOUR_MS for i in range(hours)]
    with _reading(store) as conn:
        ev = _per_hour(conn, events.c.created_at, since)
        ac = _per_hour(conn, actions.c.created_at, since)
        # A failure: an attempt that did not succeed (retried later, or given up), or an
        # action whose condition or template failed when it was planned (never attempted).
        failed_try = action_attempts.c.outcome != "done"
        never_tried = and_(actions.c.status == "dead", actions.c.attempts == 0)
        dead = _per_hour(conn, action_attempts.c.finished_at, since, failed_try)
        for hour, n in _per_hour(conn, actions.c.created_at, since, never_tried).items():
            dead[hour] = dead.get(hour, 0) + n
        rules: dict[str, int] = {}
        for query in (
            select(actions.c.rule_id, func.count())
            .join(actions, actions.c.id == action_attempts.c.action_id)
            .where(failed_try, action_attempts.c.finished_at >= since)
            .group_by(actions.c.rule_id),
            select(actions.c.rule_id, func.count())
            .where(never_tried, actions.c.created_at >= since)
            .group_by(actions.c.rule_id),
        ):
            for rule_id, n in conn.execute(query).all():
                rules[rule_id] = rules.get(rule_id, 0) + n
        by_rule = sorted(rules.items(), key=lambda item: (-item[1], item[0]))[:20]
        # The newest actions by their last change (that index, not the status one: no
        # sort of the whole range); the done ones among them.
        waits = sorted(
            w
            for status, w in conn.execute(
                select(actions.c.status, actions.c.updated_at - events.c.created_at)
                .join(events, events.c.id == actions.c.event_id)
                .where(actions.c.updated_at >= since)
                .order_by(actions.c.updated_at.desc())
                .limit(LATENCY_ROWS)
            ).all()
            if status == "done"
        )
    return PlotData(
        starts,
        [ev.get(h, 0) for h in starts],
        [ac.get(h, 0) for h in starts],
        [dead.get(h, 0) for h in starts],
        by_rule,
        _percentile(waits, 0.50),
        _percentile(waits, 0.95),
        len(waits),
    )


def _per_hour(conn: Connection, column: Any, since: int, *where: Any) -> dict[int, int]:
    bucket = (column // HOUR_MS).label("hour")
    rows = conn.execute(
        select(bucket, func.count()).where(column >= since, *where).group_by(bucket)
    ).all()
    return {int(h) * HOUR_MS: n for h, n in rows}


def _percentile(sorted_values: list[int], q: float) -> int | None:
    if not sorted_values:
        return None
    return int(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])
