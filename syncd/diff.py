"""From an observation and the stored snapshot to the events between them.

Pure functions: no store, no clock. The rules of the game:
- an observation older than the snapshot (by version) changes nothing: late and duplicated
  deliveries are harmless;
- a field with history yields one event per value it took since the snapshot, in order;
- only watched fields (those some rule looks at) become events; the others just update
  the snapshot.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from syncd.model import Event, Observation


@dataclass
class Snapshot:
    version: int | None
    fields: dict[str, Any]
    context: dict[str, Any]
    entered: dict[str, int]
    deleted: bool = False


def is_stale(obs: Observation, snap: Snapshot | None) -> bool:
    """True when the observation brings nothing newer than the snapshot."""
    if snap is None:
        return False
    if obs.version is not None and snap.version is not None:
        if obs.version < snap.version:
            return True
        if obs.version == snap.version:
            return obs.fields == snap.fields and obs.deleted == snap.deleted
        # Newer, same fields: still news if the history holds a round trip since then
        # (lead -> qualified -> lead).
        # (Newest first: connectors list history oldest first, so one step per field.)
        since = snap.version
        if any(v > since for entries in obs.history.values() for v, _ in reversed(entries)):
            return False
    return obs.fields == snap.fields and obs.deleted == snap.deleted and obs.context == snap.context


def field_transitions(
    name: str, obs: Observation, snap: Snapshot | None
) -> list[tuple[Any, Any, int | None]]:
    """(old, new, version) for each value `name` took since the snapshot."""
    old = snap.fields.get(name) if snap else None
    current = obs.fields.get(name)
    out: list[tuple[Any, Any, int | None]] = []
    history = obs.history.get(name)
    if history and (snap is None or snap.version is not None):
        since = snap.version if snap else None
        for version, value in sorted(history, key=lambda e: e[0]):
            if since is not None and version <= since:
                continue
            if value != old:
                out.append((old, value, version))
                old = value
    if current != old:  # history missing or incomplete: the net change still counts
        out.append((old, current, obs.version))
    return out


def diff(obs: Observation, snap: Snapshot | None, watched: set[str]) -> list[Event]:
    if is_stale(obs, snap):
        return []
    ref = obs.ref
    if obs.deleted:
        return [] if snap is None or snap.deleted else [Event(ref, "deleted", version=obs.version)]
    events: list[Event] = []
    if snap is None or snap.deleted:
        events.append(Event(ref, "created", version=obs.version))
    for name in sorted(watched):
        for old, new, version in field_transitions(name, obs, snap):
            events.append(Event(ref, "changed", name, old, new, version))
    return events


def next_entered(
    obs: Observation, snap: Snapshot | None, events: list[Event], now_ms: int
) -> dict[str, int]:
    """When each watched field took its current value (for "7 days after it entered X")."""
    entered = dict(snap.entered) if snap else {}
    for event in events:
        if event.kind == "changed" and event.field is not None:
            entered[event.field] = event.version if event.version is not None else now_ms
    return entered


# What json.dumps(..., sort_keys=True, default=str) builds on every call, built once: the
# same text (event keys are stored; they must never change), without a new encoder per key.
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def event_key(event: Event) -> str:
    text = _KEY_ENCODER.encode(
        [str(event.ref), event.kind, event.field, event.old, event.new, event.version]
    )
    return hashlib.sha256(text.encode()).hexdigest()
