"""What counts as history from before go-live (syncd.golive.is_before_golive): pure rules."""

from __future__ import annotations

import pytest

from syncd.diff import Snapshot, diff
from syncd.golive import is_before_golive
from syncd.model import ObjectRef, Observation

GOLIVE = 1_000_000
REF = ObjectRef("hubspot", "deal", "1")


def _judged(
    obs: Observation, snap: Snapshot | None = None, baseline_poll: bool = False
) -> list[tuple[str, object, bool]]:
    """(kind, new value, is history) for each event the diff finds."""
    return [
        (
            e.kind,
            e.new,
            is_before_golive(
                e, obs, first_sight=snap is None, golive_ms=GOLIVE, baseline_poll=baseline_poll
            ),
        )
        for e in diff(obs, snap, {"stage", "name"})
    ]


def test_stamped_history_is_judged_entry_by_entry() -> None:
    obs = Observation(
        REF,
        {"stage": "won", "name": "A"},
        GOLIVE + 50,
        {"stage": [(GOLIVE - 100, "lead"), (GOLIVE + 50, "won")]},
        created=GOLIVE - 100,
    )
    assert _judged(obs) == [
        ("created", None, True),
        ("changed", "A", True),
        ("changed", "lead", True),
        ("changed", "won", False),
    ]


def test_an_object_created_after_go_live_is_news_entirely() -> None:
    obs = Observation(REF, {"stage": "lead", "name": "A"}, GOLIVE + 5, created=GOLIVE + 5)
    assert [history for *_, history in _judged(obs, baseline_poll=True)] == [False] * 3


def test_the_go_live_instant_itself_is_after_go_live() -> None:
    obs = Observation(REF, {"stage": "lead"}, GOLIVE, created=GOLIVE)
    assert {history for *_, history in _judged(obs)} == {False}


def test_a_change_against_a_snapshot_fires_unless_its_stamp_is_older() -> None:
    snap = Snapshot(GOLIVE + 1, {"stage": "lead", "name": "A"}, {}, {})
    obs = Observation(REF, {"stage": "won", "name": "B"}, GOLIVE + 9, created=GOLIVE - 500)
    assert _judged(obs, snap) == [("changed", "B", False), ("changed", "won", False)]
    stamped = Observation(
        REF,
        {"stage": "won", "name": "A"},
        GOLIVE + 9,
        {"stage": [(GOLIVE - 1, "lead"), (GOLIVE + 2, "won")]},
    )
    assert _judged(stamped, Snapshot(GOLIVE - 200, {"stage": "open", "name": "A"}, {}, {})) == [
        ("changed", "lead", True),
        ("changed", "won", False),
    ]


@pytest.mark.parametrize(
    ("version", "baseline_poll", "history"),
    [
        (None, True, True),  # no timestamp at all, first poll: history
        (None, False, False),  # no timestamp, seen after the first poll: new
        (GOLIVE - 1, False, True),  # unchanged since before go-live
        (GOLIVE + 1, True, True),  # modified since, creation unknown, first poll: history
        (GOLIVE + 1, False, False),
    ],
)
def test_without_a_creation_time(version: int | None, baseline_poll: bool, history: bool) -> None:
    obs = Observation(REF, {"name": "A"}, version)
    assert {h for *_, h in _judged(obs, baseline_poll=baseline_poll)} == {history}
