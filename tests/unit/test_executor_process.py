"""The daemon's side of the executor process: what it hears from the child (loops failing
and recovering, dead actions, counts of finished actions) goes to the daemon's readiness,
alerter and counters (syncd.executor_process)."""

from __future__ import annotations

import subprocess
import sys
from multiprocessing import Pipe
from typing import Any

import pytest

from syncd.executor_process import ExecutorProcess, ForwardedCounts
from syncd.metrics import ACTIONS_FINISHED


def counted(connector: str, outcome: str) -> float:
    return ACTIONS_FINISHED.labels(connector, outcome)._value.get()


def test_the_childs_totals_are_added_once_and_a_new_child_starts_from_zero() -> None:
    before = counted("rpc-test", "done")
    counts = ForwardedCounts()
    counts.add({("rpc-test", "done"): 3.0})
    counts.add({("rpc-test", "done"): 5.0})
    counts.add({("rpc-test", "done"): 5.0})  # nothing new
    assert counted("rpc-test", "done") == before + 5
    counts.child_restarted()
    counts.add({("rpc-test", "done"): 2.0})  # the next child's own total
    assert counted("rpc-test", "done") == before + 7


def test_what_the_child_says_reaches_the_daemon() -> None:
    heard: list[tuple[str, Any, Any]] = []
    process = ExecutorProcess(
        config=None,  # type: ignore[arg-type]  # not started: only hearing is tested
        governors=[],
        on_loop=lambda name, error: heard.append(("loop", name, error)),
        on_dead=lambda row, reason: heard.append(("dead", row, reason)),
        on_exit=lambda code, why: heard.append(("exit", code, why)),
    )
    ours, theirs = Pipe(duplex=True)
    before = counted("rpc-test-2", "dead")
    for message in (
        ("ready",),
        ("loop", "executor-2", "OperationalError: disk I/O error"),
        ("dead", {"key": "k-1"}, "HTTP 422"),
        ("counts", {("rpc-test-2", "dead"): 1.0}),
        ("loop", "executor-2", None),
    ):
        theirs.send(message)
    theirs.close()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process.problems() == ["executor process starting"]
    with pytest.raises(EOFError):  # the child's end closed: _run_child says how it exited
        process._hear(ours, child)
    assert process.problems() == []  # it said it was ready
    assert heard == [
        ("loop", "executor-2", "OperationalError: disk I/O error"),
        ("dead", {"key": "k-1"}, "HTTP 422"),
        ("loop", "executor-2", None),
    ]
    assert counted("rpc-test-2", "dead") == before + 1
