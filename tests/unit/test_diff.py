"""syncd.diff: from an observation and the stored snapshot to the events between them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncd.diff import Snapshot, diff, event_key, is_stale, next_entered
from syncd.model import Event, ObjectRef, Observation

REF = ObjectRef("localdb", "deal", "1")
WATCHED = {"stage", "amount"}
NOW_MS = 1_767_225_600_000


def observe(version: int | None, history: dict[str, Any] | None = None, **fields: Any):
    return Observation(REF, fields, version, history or {})


def snapshot(version: int | None, entered: dict[str, int] | None = None, **fields: Any):
    return Snapshot(version, fields, {}, entered or {})


def changes(events: list[Event]) -> list[tuple[str, str | None, Any, Any, int | None]]:
    return [(e.kind, e.field, e.old, e.new, e.version) for e in events]


def test_creation() -> None:
    events = diff(observe(5, stage="lead", amount=10, name="A"), None, WATCHED)
    assert changes(events) == [
        ("created", None, None, None, 5),
        ("changed", "amount", None, 10, 5),
        ("changed", "stage", None, "lead", 5),
    ]


def test_plain_change() -> None:
    events = diff(observe(6, stage="won", amount=10), snapshot(5, stage="lead", amount=10), WATCHED)
    assert changes(events) == [("changed", "stage", "lead", "won", 6)]


def test_stale_observation_is_ignored() -> None:
    snap = snapshot(10, stage="won")
    older = observe(9, stage="lead")
    assert is_stale(older, snap)
    assert diff(older, snap, WATCHED) == []


def test_duplicate_identical_observation_yields_nothing() -> None:
    snap = snapshot(7, stage="won", amount=3)
    same = observe(7, stage="won", amount=3)
    assert is_stale(same, snap)
    assert diff(same, snap, WATCHED) == []


def test_unversioned_duplicate_yields_nothing() -> None:
    snap = snapshot(None, stage="won")
    assert diff(observe(None, stage="won"), snap, WATCHED) == []
    assert changes(diff(observe(None, stage="lost"), snap, WATCHED)) == [
        ("changed", "stage", "won", "lost", None)
    ]


def test_same_version_with_other_fields_is_applied() -> None:
    # a source whose version is coarse (seconds) may show two states under one version
    events = diff(observe(7, stage="lost"), snapshot(7, stage="won"), WATCHED)
    assert changes(events) == [("changed", "stage", "won", "lost", 7)]


def test_history_yields_each_intermediate_transition_in_order() -> None:
    history = {"stage": [(4, "qualified"), (3, "lead"), (6, "contract"), (5, "proposal")]}
    obs = observe(6, history, stage="contract")
    events = diff(obs, snapshot(3, stage="lead"), WATCHED)
    assert changes(events) == [
        ("changed", "stage", "lead", "qualified", 4),
        ("changed", "stage", "qualified", "proposal", 5),
        ("changed", "stage", "proposal", "contract", 6),
    ]


def test_history_entries_already_seen_are_skipped() -> None:
    history = {"stage": [(1, "lead"), (2, "qualified"), (3, "proposal")]}
    events = diff(observe(3, history, stage="proposal"), snapshot(2, stage="qualified"), WATCHED)
    assert changes(events) == [("changed", "stage", "qualified", "proposal", 3)]


def test_incomplete_history_still_yields_the_net_change() -> None:
    history = {"stage": [(4, "qualified")]}  # the source forgot the last step
    events = diff(observe(6, history, stage="won"), snapshot(3, stage="lead"), WATCHED)
    assert changes(events) == [
        ("changed", "stage", "lead", "qualified", 4),
        ("changed", "stage", "qualified", "won", 6),
    ]


def test_history_round_trip_yields_both_transitions() -> None:
    history = {"stage": [(1, "lead"), (2, "qualified"), (3, "lead")]}
    events = diff(observe(3, history, stage="lead"), snapshot(1, stage="lead"), WATCHED)
    assert changes(events) == [
        ("changed", "stage", "lead", "qualified", 2),
        ("changed", "stage", "qualified", "lead", 3),
    ]


def test_deletion() -> None:
    gone = Observation(REF, {}, 9, deleted=True)
    assert changes(diff(gone, snapshot(8, stage="won"), WATCHED)) == [
        ("deleted", None, None, None, 9)
    ]


def test_deletion_seen_twice_or_of_an_unknown_object_yields_nothing() -> None:
    gone = Observation(REF, {}, 9, deleted=True)
    assert diff(gone, None, WATCHED) == []
    already = Snapshot(9, {"stage": "won"}, {}, {}, deleted=True)
    assert diff(Observation(REF, {}, 10, deleted=True), already, WATCHED) == []


def test_reappearing_object_is_created_again() -> None:
    was_deleted = Snapshot(9, {"stage": "won"}, {}, {}, deleted=True)
    events = diff(observe(10, stage="won"), was_deleted, {"stage"})
    assert [e.kind for e in events] == ["created"]


def test_unwatched_fields_produce_no_events() -> None:
    events = diff(
        observe(6, stage="lead", name="New name", amount=1),
        snapshot(5, stage="lead", name="Old name", amount=1),
        WATCHED,
    )
    assert events == []
    assert not is_stale(
        observe(6, stage="lead", name="New name", amount=1),
        snapshot(5, stage="lead", name="Old name", amount=1),
    )


def test_creation_with_no_watched_fields_is_only_created() -> None:
    assert changes(diff(observe(1, name="A"), None, set())) == [("created", None, None, None, 1)]


def test_next_entered_records_when_each_field_took_its_value() -> None:
    snap = snapshot(3, {"stage": 100, "amount": 50}, stage="lead", amount=1)
    history = {"stage": [(4, "qualified"), (6, "proposal")]}
    obs = observe(6, history, stage="proposal", amount=2)
    events = diff(obs, snap, WATCHED)
    entered = next_entered(obs, snap, events, NOW_MS)
    assert entered == {"stage": 6, "amount": 6}


def test_next_entered_uses_now_without_a_version_and_keeps_other_fields() -> None:
    snap = snapshot(None, {"stage": 100, "amount": 50}, stage="lead", amount=1)
    obs = observe(None, stage="won", amount=1)
    entered = next_entered(obs, snap, diff(obs, snap, WATCHED), NOW_MS)
    assert entered == {"stage": NOW_MS, "amount": 50}
    assert snap.entered == {"stage": 100, "amount": 50}  # the snapshot is not mutated


def test_next_entered_for_a_new_object() -> None:
    obs = observe(7, stage="lead")
    assert next_entered(obs, None, diff(obs, None, {"stage"}), NOW_MS) == {"stage": 7}


def test_event_key_is_stable_and_distinguishes_events() -> None:
    a = Event(REF, "changed", "stage", "lead", "won", 5)
    assert event_key(a) == event_key(Event(REF, "changed", "stage", "lead", "won", 5))
    assert event_key(a) != event_key(Event(REF, "changed", "stage", "lead", "won", 6))
    assert event_key(a) != event_key(Event(REF, "changed", "stage", "lost", "won", 5))


def test_event_keys_stay_the_stored_ones() -> None:
    """Keys are stored (an event seen again is known by its key): how they are computed may
    change, their value must not. Pinned from the keys before issue 17's encoder reuse."""
    ref = ObjectRef("hubspot", "deal", "42")
    moved = Event(ref, "changed", "dealstage", "appointmentscheduled", "closedwon", 1764547200000)
    when = datetime(2026, 12, 1, tzinfo=UTC)  # not JSON: encoded with str()
    nested = Event(ref, "changed", "tags", {"b": 1, "a": [1, "é"]}, when, 1.5)
    assert event_key(moved) == "1ab731acc85ffd06d51faab4c9d56b1b73af4b8f60b2721c8d4263d103279e51"
    assert event_key(Event(ref, "created")) == (
        "540f8bb8d1b16420da690d411ace4359468d91d69549951097e88bf25d78fca5"
    )
    assert event_key(nested) == "ea2b67f6f57f68c6bd9583b141f12ec270de3de3880f9da4c737a25f838ca828"
