"""Go-live: the instant syncd first ran a source, and whether a change is history before it.

Turning syncd on over accounts that already have years of history must not act on that
history. The first time a source is run (its first poll, webhook or `syncd run`), the
current instant is recorded in the store (`state` table, scope "syncd", key
`golive:<source>`), once. From then on a change is judged by when it happened at the source:

- a change with its own timestamp (a HubSpot `propertiesWithHistory` entry, a Jira changelog
  entry) fires when it happened at or after go-live;
- an object seen for the first time is judged by its creation time (`Observation.created`):
  created before go-live, its `created` event and the values it holds are history
  (snapshot only); created at or after go-live, it is new and fires;
- a change against a snapshot syncd already holds happened after that snapshot was taken,
  so after go-live: it fires;
- with no timestamp at all, the first sight of an object during the baseline poll (the
  first poll of a stream, which has no cursor) is history; later first sights are new.

`syncd backfill SOURCE --replay --since DATE` is the explicit way to act on history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from syncd.clock import Clock, to_ms
from syncd.model import Event, Observation
from syncd.store import state
from syncd.store.db import Store

SCOPE = "syncd"
PREFIX = "golive:"


def golive_key(source: str) -> str:
    return f"{PREFIX}{source}"


class GoLive:
    """Reads and records go-live instants (ms). Cached once known: they never change."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._known: dict[str, int] = {}

    def instant(self, source: str, conn: Connection | None = None) -> int | None:
        if source in self._known:
            return self._known[source]
        if conn is None:
            with self.store.engine.connect() as own:
                return self.instant(source, own)
        value = state.get_value(self.store, SCOPE, golive_key(source), conn)
        if value is not None:
            self._known[source] = int(value)
        return None if value is None else int(value)

    def ensure(self, source: str, conn: Connection | None = None) -> int:
        """The source's go-live instant, recorded now if it has none yet (first one wins
        when replicas race: insert-if-absent, then read back)."""
        known = self.instant(source, conn)
        if known is not None:
            return known
        if conn is None:
            with self.store.tx() as own:
                return self.ensure(source, own)
        now_ms = to_ms(self.clock.now())
        state.add_value_if_absent(self.store, conn, SCOPE, golive_key(source), now_ms, now_ms)
        found = self.instant(source, conn)
        assert found is not None
        return found

    def all(self) -> dict[str, int]:
        rows = state.values_with_prefix(self.store, SCOPE, PREFIX)
        return {key[len(PREFIX) :]: int(value) for key, value in rows.items() if value is not None}


def history_time(event: Event, obs: Observation) -> int | None:
    """The event's own timestamp when it comes from the source's history of the field."""
    if event.kind != "changed" or event.field is None or event.version is None:
        return None
    for version, value in obs.history.get(event.field, ()):
        if version == event.version and value == event.new:
            return version
    return None


def is_before_golive(
    event: Event, obs: Observation, *, first_sight: bool, golive_ms: int, baseline_poll: bool
) -> bool:
    """True when the event is history from before go-live: snapshot it, fire nothing."""
    stamped = history_time(event, obs)
    if stamped is not None:
        return stamped < golive_ms
    if not first_sight:
        return False  # a change against a snapshot taken after go-live
    if obs.created is not None:
        return obs.created < golive_ms
    if obs.version is not None and obs.version < golive_ms:
        return True  # unchanged since before go-live
    return baseline_poll


def event_time(event: Event, obs: Observation, *, first_sight: bool) -> int | None:
    """When the event happened at the source, as far as known (for `--replay --since`)."""
    stamped = history_time(event, obs)
    if stamped is not None:
        return stamped
    if first_sight and obs.created is not None and event.kind == "created":
        return obs.created
    return event.version


def describe(instants: dict[str, int]) -> dict[str, Any]:
    from syncd.clock import from_ms

    return {source: from_ms(ms).isoformat() for source, ms in sorted(instants.items())}
