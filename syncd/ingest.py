"""Ingest: one function, one transaction.

An object's current state from any source (webhook hint + fetch, poll page, backfill) is
diffed with its snapshot; the changes become events; matching rules become planned actions;
snapshot, events, actions and the poll cursor commit together. A change seen twice (webhook
and poll, or a redelivery) yields one event, because the second observation is not newer
than the snapshot, and because event and action keys are unique in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection

from syncd import crashpoints
from syncd.clock import Clock, to_ms
from syncd.diff import Snapshot, diff, event_key, is_stale, next_entered
from syncd.golive import GoLive, event_time, is_before_golive
from syncd.leadership import check_fence
from syncd.mapping.planner import NO_MATCH, Plan, plan_change
from syncd.mapping.rules import PlannedAction, RuleSet
from syncd.metrics import EVENTS, RULE_FAILURES
from syncd.model import Event, Observation
from syncd.store.actions import add_actions
from syncd.store.cursors import save_cursor
from syncd.store.db import ACTIONS_CHANNEL, Store
from syncd.store.events import (
    SnapshotRow,
    add_events,
    add_traces,
    save_snapshots,
    snapshot_for_update,
    snapshots_for_update,
)
from syncd.store.origins import created_by_many
from syncd.store.state import set_value


@dataclass
class IngestResult:
    observed: int = 0
    stale: int = 0
    events: int = 0
    actions: int = 0
    # Objects whose changes were all history from before go-live (snapshot only).
    baselined: int = 0

    def add(self, other: IngestResult) -> None:
        self.observed += other.observed
        self.stale += other.stale
        self.events += other.events
        self.actions += other.actions
        self.baselined += other.baselined


class RulesHolder:
    """The rules in force; swapped whole on reload so a tick never sees half a reload."""

    def __init__(self, rules: RuleSet) -> None:
        self.current = rules


log = structlog.get_logger("syncd.ingest")
# `state` rows (key: action key) keeping what a failed render is planned again from.
REPLAN_SCOPE = "replan"


SnapshotKey = tuple[str, str, str]


@dataclass
class Seen:
    """An object's changes found by the diff, waiting for the batch's statements."""

    obs: Observation
    snap: Snapshot | None  # the snapshot they were diffed against
    found: list[Event]
    fire: bool


@dataclass
class Batch:
    """What one `ingest` call reads and writes in bulk (statements per object are the
    ingest's cost: issue 17). Objects are diffed one by one in memory; then the batch's
    events, snapshots, origins, actions and decision traces take a statement each."""

    ruleset: RuleSet  # the rules in force when the batch began, for all of it
    # Snapshots read together before the first object is diffed.
    known: dict[SnapshotKey, SnapshotRow | None] = field(default_factory=dict)
    # New snapshots to write, by object: an object seen twice in one batch diffs against
    # its first sighting, kept here.
    snapshots: dict[SnapshotKey, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)


def snapshot_key(obs: Observation) -> SnapshotKey:
    return (obs.ref.source, obs.ref.type, obs.ref.id)


def load_snapshot(
    store: Store, conn: Connection, obs: Observation, batch: Batch | None = None
) -> Snapshot | None:
    """The object's snapshot: as this batch left it when it was seen earlier in the batch,
    else as read with the batch, else read now."""
    key = snapshot_key(obs)
    if batch is not None and key in batch.snapshots:
        v = batch.snapshots[key]
        return Snapshot(v["version"], v["fields"], v["context"], v["entered"], v["deleted"])
    if batch is not None and key in batch.known:
        row = batch.known.pop(key)
    else:
        row = snapshot_for_update(store, conn, *key)
    if row is None:
        return None
    return Snapshot(row.version, row.fields, row.context, row.entered, row.deleted)


def insert_actions(
    store: Store,
    conn: Connection,
    planned: Iterable[PlannedAction],
    now_ms: int,
    event_id: int | None = None,
) -> int:
    """Insert planned actions; an action whose key exists already is left alone."""
    return insert_planned(store, conn, [(p, event_id) for p in planned], now_ms)


def insert_planned(
    store: Store,
    conn: Connection,
    planned: list[tuple[PlannedAction, int | None]],
    now_ms: int,
) -> int:
    """Insert planned actions (each with its event's id) in one statement; an action whose
    key exists already, or comes twice, is left alone. How many were stored."""
    rows: list[dict[str, Any]] = []
    for p, event_id in planned:
        ref = p.ref
        rows.append(
            {
                "key": p.key,
                "rule_id": p.rule_id,
                "connector": p.connector,
                "action": p.action,
                "params": p.params,
                "source": ref.source if ref else None,
                "object_type": ref.type if ref else None,
                "object_id": ref.id if ref else None,
                "event_id": event_id,
                "guarantee": p.guarantee,
                "status": "dead" if p.error else "pending",
                "last_error": p.error,
                "attempts": 0,
                "next_attempt_at": now_ms,
                "created_at": now_ms,
                "updated_at": now_ms,
            }
        )
    stored = add_actions(store, conn, rows)
    count = 0
    for p, _ in planned:
        if p.key not in stored:
            continue
        stored.discard(p.key)  # a key planned twice is stored (and counted) once
        count += 1
        ref = p.ref
        if p.error:
            RULE_FAILURES.labels(
                p.rule_id, "condition" if p.error.startswith("condition error") else "render"
            ).inc()
        if p.replan is not None:  # what `syncd actions retry` plans it again from
            set_value(
                store,
                REPLAN_SCOPE,
                p.key,
                {"rule_id": p.rule_id, "situation": p.replan},
                now_ms,
                conn,
            )
        # A planned action is news only when its rule failed on it; otherwise its
        # `action.done` (or retry, or dead) line tells, and this one, written inside the
        # write transaction, would double the log and the time the write lock is held.
        (log.warning if p.error else log.debug)(
            "action.planned",
            key=p.key,
            rule_id=p.rule_id,
            action=p.name,
            source=ref.source if ref else None,
            object=str(ref) if ref else None,
            **({"error": p.error} if p.error else {}),
        )
    return count


def trace_of(plan: Plan, index: int, obs: Observation) -> list[dict[str, str]]:
    """Each rule's decision on the `index`th new event of `obs`, as stored for the console.
    Rules watching other objects are left out (their reason says only that)."""
    out = []
    decided_elsewhere = {
        d.rule_id for d in plan.decisions if d.event_index is not None and d.event_index != index
    }
    own = {d.rule_id for d in plan.decisions if d.event_index == index}
    for d in plan.decisions:
        if d.event_index == index or (d.event_index is None and d.rule_id not in own):
            if d.outcome == NO_MATCH and d.reason.startswith("trigger is for "):
                continue
            out.append({"rule": d.rule_id, "outcome": d.outcome, "reason": d.reason})
    for rule_id in sorted(decided_elsewhere - own):
        out.append(
            {
                "rule": rule_id,
                "outcome": NO_MATCH,
                "reason": "it acted on another change of this object seen at the same time",
            }
        )
    return out


class Ingestor:
    def __init__(
        self,
        store: Store,
        rules: RulesHolder,
        clock: Clock,
        unbaselined: frozenset[str] = frozenset(),
        gate: Callable[[Iterable[tuple[str, str]]], None] | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.golive = GoLive(store, clock)
        # Sources whose versions are not times (Connector.golive_baseline False).
        self.unbaselined = unbaselined
        # Raises (syncd.lookups.LookupsNotReady) for (source, object type) whose rules
        # cannot be evaluated yet: nothing of theirs may be consumed.
        self.check_ready = gate or (lambda refs: None)

    def ingest(
        self,
        observations: Iterable[Observation],
        *,
        cursor: tuple[str, str, str | None] | None = None,
        fire: bool = True,
        conn: Connection | None = None,
        fence: tuple[str, int] | None = None,
        baseline_poll: bool = False,
        replay_since_ms: int | None = None,
    ) -> IngestResult:
        """Ingest in one transaction (the caller's `conn` if given), moving `cursor` with it.

        `fence`: (job, token) when the caller holds a singleton job (a poller); the
        transaction is refused if another replica took the job over meanwhile.
        `baseline_poll`: the page belongs to a stream's first poll (no cursor yet): objects
        seen without any timestamp are history (see syncd.golive).
        `replay_since_ms`: explicit replay of history (`syncd backfill --replay`): every
        change since that instant is diffed from nothing and fires, go-live or not; what
        fired before is recognised by its event and action keys."""
        observations = list(observations)
        self.check_ready((o.ref.source, o.ref.type) for o in observations)
        if conn is None:
            with self.store.tx() as own:
                return self.ingest(
                    observations,
                    cursor=cursor,
                    fire=fire,
                    conn=own,
                    fence=fence,
                    baseline_poll=baseline_poll,
                    replay_since_ms=replay_since_ms,
                )
        if fence is not None:
            check_fence(conn, *fence)
        result = IngestResult()
        now_ms = to_ms(self.clock.now())
        batch = Batch(self.rules.current)
        if len(observations) > 1:
            batch.known = snapshots_for_update(
                self.store, conn, [snapshot_key(o) for o in observations]
            )
        for obs in observations:
            if replay_since_ms is not None:
                result.add(self._replay(conn, obs, fire, now_ms, replay_since_ms, batch))
            else:
                result.add(self._one(conn, obs, fire, now_ms, baseline_poll, batch))
        self._write(conn, batch, now_ms, result)
        if cursor is not None:
            crashpoints.hit("cursor_advance")
            save_cursor(self.store, conn, cursor[0], cursor[1], cursor[2], now_ms)
        if result.actions:
            self.store.notify(conn, ACTIONS_CHANNEL)
        return result

    def _one(
        self,
        conn: Connection,
        obs: Observation,
        fire: bool,
        now_ms: int,
        baseline_poll: bool,
        batch: Batch,
    ) -> IngestResult:
        result = IngestResult(observed=1)
        snap = load_snapshot(self.store, conn, obs, batch)
        if is_stale(obs, snap):
            result.stale = 1
            return result
        found = diff(obs, snap, batch.ruleset.watched_fields(obs.ref.source, obs.ref.type))
        golive_ms = self.golive.ensure(obs.ref.source, conn)
        live = (
            found
            if obs.ref.source in self.unbaselined
            else [
                e
                for e in found
                if not is_before_golive(
                    e,
                    obs,
                    first_sight=snap is None,
                    golive_ms=golive_ms,
                    baseline_poll=baseline_poll,
                )
            ]
        )
        if found and not live:
            result.baselined = 1
        if live:
            batch.seen.append(Seen(obs, snap, live, fire))
        self._save_snapshot(obs, snap, found, now_ms, batch)
        return result

    def _replay(
        self,
        conn: Connection,
        obs: Observation,
        fire: bool,
        now_ms: int,
        since_ms: int,
        batch: Batch,
    ) -> IngestResult:
        """Act on history on purpose: the changes since `since_ms` as if syncd had watched."""
        result = IngestResult(observed=1)
        watched = batch.ruleset.watched_fields(obs.ref.source, obs.ref.type)
        snap = load_snapshot(self.store, conn, obs, batch)
        chosen = []
        for event in diff(obs, None, watched):
            when = event_time(event, obs, first_sight=True)
            if when is not None and when >= since_ms:
                chosen.append(event)
        if chosen:
            batch.seen.append(Seen(obs, None, chosen, fire))
        if is_stale(obs, snap):
            result.stale = 1
        else:
            self._save_snapshot(obs, snap, diff(obs, snap, watched), now_ms, batch)
        return result

    def _write(self, conn: Connection, batch: Batch, now_ms: int, result: IngestResult) -> None:
        """The batch's statements: its events not stored yet and its snapshots; then the
        actions of the rules the new events match, and every new event's decision trace.
        (Origins are read after the snapshots are written: an object syncd created, seen in
        the batch of the object it was created for, sees that object as the batch left it.)"""
        rows: list[dict[str, Any]] = []
        for seen in batch.seen:
            ref = seen.obs.ref
            for event in seen.found:
                rows.append(
                    {
                        "event_key": event_key(event),
                        "source": ref.source,
                        "object_type": ref.type,
                        "object_id": ref.id,
                        "kind": event.kind,
                        "field": event.field,
                        "old": event.old,
                        "new": event.new,
                        "version": event.version,
                        "created_at": now_ms,
                    }
                )
        stored = add_events(self.store, conn, rows)
        save_snapshots(self.store, conn, sorted_values(batch.snapshots))
        fresh: list[tuple[Seen, list[tuple[Event, int | None, str]]]] = []
        keys = iter(rows)
        for seen in batch.seen:
            new_events: list[tuple[Event, int | None, str]] = []
            for event in seen.found:
                key = next(keys)["event_key"]
                event_id = stored.pop(key, None)  # once, if seen twice
                if event_id is not None:
                    new_events.append((event, event_id, key))
            if new_events:
                result.events += len(new_events)
                EVENTS.labels(seen.obs.ref.source).inc(len(new_events))
                if seen.fire:
                    fresh.append((seen, new_events))
        origins = self._origins(conn, [seen.obs for seen, _ in fresh])
        planned: list[tuple[PlannedAction, int | None]] = []
        for seen, new_events in fresh:
            obs = seen.obs
            plan = self._plan(batch.ruleset, origins, obs, seen.snap, new_events)
            # In the order the changes happened (the planner's).
            for d in plan.decisions:
                if d.actions and d.event_index is not None:
                    event_id = new_events[d.event_index][1]
                    planned.extend((a, event_id) for a in d.actions)
            for index, (_, event_id, _) in enumerate(new_events):
                batch.traces.append(
                    {
                        "event_id": event_id,
                        "decisions": trace_of(plan, index, obs),
                        "created_at": now_ms,
                    }
                )
        result.actions += insert_planned(self.store, conn, planned, now_ms)
        add_traces(self.store, conn, batch.traces)

    def _origins(
        self, conn: Connection, observed: list[Observation]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Which syncd action created each object, if one did: by (source, object id)."""
        by_source: dict[str, list[str]] = {}
        for obs in observed:
            by_source.setdefault(obs.ref.source, []).append(obs.ref.id)
        return {
            (source, object_id): origin
            for source, ids in by_source.items()
            for object_id, origin in created_by_many(conn, source, ids, self.store).items()
        }

    def _plan(
        self,
        ruleset: RuleSet,
        origins: dict[tuple[str, str], dict[str, Any]],
        obs: Observation,
        snap: Snapshot | None,
        new_events: list[tuple[Event, int | None, str]],
    ) -> Plan:
        """The planner's decisions on the new events. An object syncd created sees its origin
        as `syncd` (`issue.syncd.root.id`)."""
        context = obs.context
        origin = origins.get((obs.ref.source, obs.ref.id))
        if origin is not None:
            context = {**context, "syncd": origin}
        return plan_change(
            ruleset,
            obs.ref,
            obs.fields,
            context,
            snap.fields if snap else {},
            [e for e, _, _ in new_events],
            self.clock.now(),
            [key for _, _, key in new_events],
        )

    @staticmethod
    def _save_snapshot(
        obs: Observation,
        snap: Snapshot | None,
        found: list[Event],
        now_ms: int,
        batch: Batch,
    ) -> None:
        """The object's new snapshot, written with the batch (the last sighting's wins)."""
        batch.snapshots[snapshot_key(obs)] = {
            "source": obs.ref.source,
            "object_type": obs.ref.type,
            "object_id": obs.ref.id,
            "version": obs.version,
            "fields": obs.fields if not obs.deleted else (snap.fields if snap else {}),
            "context": obs.context,
            "entered": next_entered(obs, snap, found, now_ms),
            "deleted": obs.deleted,
            "updated_at": now_ms,
        }


def sorted_values(by_key: dict[SnapshotKey, dict[str, Any]]) -> list[dict[str, Any]]:
    """In key order: concurrent batches on PostgreSQL take their row locks in one order."""
    return [by_key[k] for k in sorted(by_key)]
