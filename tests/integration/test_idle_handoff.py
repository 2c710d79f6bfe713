"""The idle path's hand-offs (issue 17, idle latency), on an in-process daemon (SQLite):

- an action the inbox plans is claimed in the planning transaction and handed to an idle
  executor thread, which performs it without a claim of its own;
- a hand-off whose transaction rolls back hands nothing and keeps no executor place;
- a handed action the process never performed is performed once after a restart;
- the inbox thread makes one claim for a lone delivery (no empty second claim), and goes
  back to wait at once; after a batch of many deliveries short of a full claim it lingers a
  little first, so that its next batch (and its fetch) is larger;
- the intake writer wakes the inbox itself once the delivery is committed, and hands the
  stored delivery to the idle inbox thread, which takes it without a claim; one it never
  processed is due at once after a restart;
- a lone delivery is shown to the idle inbox thread before its commit, which fetches what
  it names meanwhile and ingests it once it is stored (a duplicate: nothing).

Counted, not timed: claims and wake-ups, through wrappers around the real methods."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from syncd.config import load_config
from syncd.daemon import INBOX_LINGER_FROM, INBOX_LINGER_SECONDS, Daemon
from syncd.engine import Engine
from syncd.errors import TransientError
from syncd.inbox import Delivery, InboxWriter
from syncd.store import inbox as inbox_store
from syncd.store.schema import actions, inbox
from syncd_sandbox.localdb import LocalDbRemote
from tests.helpers import write_rules
from tests.integration.daemon_helpers import wait_until


def _config(tmp_path: Path) -> Path:
    rules = write_rules(tmp_path / "mappings")
    path = tmp_path / "syncd.toml"
    path.write_text(f"""
[syncd]
state_dir = "{tmp_path / "state"}"
mappings = ["{rules}"]
[console]
enabled = false
[localdb]
path = "{tmp_path / "remote.sqlite3"}"
object_types = []
""")
    return path


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    made = Daemon(load_config(_config(tmp_path)))
    made.engine.go_live()
    made.engine.refresh_lookups()
    try:
        yield made
    finally:
        made.engine.close()


def _deliver(daemon: Daemon, remote: LocalDbRemote, item: str) -> None:
    """An item moved to done, and its webhook stored as the intake stores it."""
    remote.put("item", item, name=item.title(), stage="done")
    body = f'{{"type": "item", "id": "{item}"}}'.encode()
    delivery = Delivery("localdb", f"d-{item}", {}, body, int(time.time() * 1000))
    assert daemon.engine.writer.submit(delivery).result(10) is True


def _counting(obj: Any, name: str) -> list[Any]:
    """Calls of `obj.name` (the real method still runs)."""
    calls: list[Any] = []
    real = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


def _action_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(actions)).mappings()]


def _idle_executor_thread(daemon: Daemon) -> threading.Thread:
    """One executor thread as the daemon runs it: wait for a wake, then its body."""

    def run() -> None:
        if daemon.wake_executor.wait(30):
            daemon._executor_body()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: daemon.wake_executor._waiting == 1, 10, "an idle executor thread", 0.005)
    return thread


def test_a_planned_action_goes_to_an_idle_executor_thread_without_a_claim_of_its_own(
    daemon: Daemon, tmp_path: Path
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    _deliver(daemon, remote, "a")
    claims = _counting(daemon.engine.executor, "claim")
    wakes = _counting(daemon.wake_executor, "set")
    worker = _idle_executor_thread(daemon)

    daemon._inbox_body()
    worker.join(30)

    assert [e["params"]["title"] for e in remote.effects()] == ["Done: A"]
    (row,) = _action_rows(daemon.engine)
    assert row["status"] == "done" and row["attempts"] == 1
    # claimed in the inbox's transaction: no claim of the executor's own
    assert [c for c in claims if len(c) < 2] == []
    assert wakes == []  # handed over, so no wake for a thread to go and look for it
    assert daemon.engine.executor._in_flight["localdb"] == 0


def test_without_an_idle_executor_thread_the_action_waits_for_the_usual_claim(
    daemon: Daemon, tmp_path: Path
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    _deliver(daemon, remote, "b")
    wakes = _counting(daemon.wake_executor, "set")

    daemon._inbox_body()  # no executor thread waits: nothing is claimed for one

    (row,) = _action_rows(daemon.engine)
    assert row["status"] == "pending" and row["attempts"] == 0
    assert len(wakes) == 1
    daemon._executor_body()
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: B"]


def test_a_hand_off_whose_transaction_rolls_back_hands_nothing(
    daemon: Daemon, tmp_path: Path
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    _deliver(daemon, remote, "c")
    handoff = daemon.handoff
    assert handoff is not None
    real_claim = handoff.claim
    failing: list[bool] = []

    def claim_then_fail_the_commit(conn: Any) -> list[Any]:
        rows = real_claim(conn)
        failing.append(bool(rows))  # claimed inside the transaction, whose commit now fails
        return rows

    def commit(conn: Any) -> None:
        if failing and failing.pop():
            raise RuntimeError("the store went away")

    handoff.claim = claim_then_fail_the_commit  # type: ignore[method-assign]
    event.listen(daemon.engine.store.engine, "commit", commit)
    worker = _idle_executor_thread(daemon)
    daemon._inbox_body()

    assert _action_rows(daemon.engine) == []  # the planning rolled back with the claim
    assert daemon.engine.executor._in_flight["localdb"] == 0  # its place given back
    assert daemon.wake_executor.take() is None
    with daemon.engine.store.engine.connect() as conn:
        (status,) = conn.execute(select(inbox.c.status)).one()
    assert status == "pending"  # the delivery is retried later
    daemon.wake_executor.set_all()
    worker.join(5)


def test_a_handed_action_never_performed_is_performed_once_after_a_restart(
    tmp_path: Path,
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    first = Daemon(load_config(_config(tmp_path)))
    first.engine.go_live()
    first.engine.refresh_lookups()
    try:
        _deliver(first, remote, "d")
        idle = threading.Thread(target=lambda: first.wake_executor.wait(30), daemon=True)
        idle.start()  # a thread waits, but the process ends before it performs the action
        wait_until(lambda: first.wake_executor._waiting == 1, 10, "an idle executor thread", 0.005)
        first._inbox_body()
        idle.join(5)
        (row,) = _action_rows(first.engine)
        assert row["status"] == "in_flight" and remote.effects() == []
    finally:
        first.engine.close()

    second = Daemon(load_config(_config(tmp_path)))  # leases of the ended process released
    try:
        second.engine.refresh_lookups()
        second._executor_body()
        second._executor_body()
        assert [e["params"]["title"] for e in remote.effects()] == ["Done: D"]
        (row,) = _action_rows(second.engine)
        assert row["status"] == "done"
    finally:
        second.engine.close()


def test_a_lone_delivery_takes_one_inbox_claim(daemon: Daemon, tmp_path: Path) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    _deliver(daemon, remote, "e")
    claims = _counting(daemon.engine.inbox, "claim")

    daemon._inbox_body()

    assert len(claims) == 1  # a batch short of the limit took all: no empty second claim
    daemon._executor_body()
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: E"]


def test_the_intake_writer_wakes_the_inbox_once_the_delivery_is_committed(
    daemon: Daemon,
) -> None:
    writer = InboxWriter(daemon.engine.store)
    seen: list[int] = []

    def on_stored() -> None:  # on the writer's thread, after the commit
        with daemon.engine.store.engine.connect() as conn:
            seen.append(len(conn.execute(select(inbox.c.id)).all()))

    writer.on_stored = on_stored
    try:
        body = b'{"type": "item", "id": "f"}'
        fresh = writer.submit(Delivery("localdb", "d-f", {}, body, 0)).result(10)
        again = writer.submit(Delivery("localdb", "d-f", {}, body, 0)).result(10)
    finally:
        writer.close()
    assert (fresh, again) == (True, False)
    assert seen == [1]  # once, for the new delivery, with it stored; not for the duplicate


def test_a_stored_delivery_goes_to_the_idle_inbox_thread_without_a_claim(
    daemon: Daemon, tmp_path: Path
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    daemon.connect_intake()
    daemon._inbox_body()  # as the inbox thread starts: a claim, which finds nothing due
    claims = _counting(daemon.engine.inbox, "claim")
    _deliver(daemon, remote, "g")
    assert daemon.wake_inbox.is_set()

    daemon._inbox_body()
    daemon._executor_body()

    assert claims == []
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: G"]
    with daemon.engine.store.engine.connect() as conn:
        assert conn.execute(select(inbox.c.status)).scalars().all() == ["done"]
    daemon._inbox_body()  # later deliveries (none here) are claimed as usual
    assert len(claims) == 1


def test_after_a_batch_of_many_deliveries_the_inbox_thread_lingers_before_its_next_claim(
    daemon: Daemon, tmp_path: Path
) -> None:
    # Webhooks arrive faster than one at a time and the inbox has caught up with them: a
    # short wait lets the next batch gather more, so a fetch costs fewer requests a webhook.
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    for n in range(INBOX_LINGER_FROM):
        _deliver(daemon, remote, f"many{n}")
    waits = _counting(daemon.stop, "wait")

    daemon._inbox_body()

    assert waits == [(INBOX_LINGER_SECONDS,)]
    assert len(_action_rows(daemon.engine)) == INBOX_LINGER_FROM


def test_a_lone_delivery_does_not_make_the_inbox_thread_linger(
    daemon: Daemon, tmp_path: Path
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    daemon.connect_intake()
    daemon._inbox_body()
    _deliver(daemon, remote, "lone")  # handed to the idle inbox thread
    waits = _counting(daemon.stop, "wait")

    daemon._inbox_body()

    assert waits == []  # the idle path: back to wait for the next webhook at once
    assert len(_action_rows(daemon.engine)) == 1


def test_a_busy_inbox_thread_is_not_handed_deliveries(daemon: Daemon, tmp_path: Path) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    daemon.connect_intake()
    daemon._inbox_body()
    claims = _counting(daemon.engine.inbox, "claim")
    daemon.engine.inbox._busy = True  # as while process_due runs: its claim may read them
    _deliver(daemon, remote, "h")
    daemon.engine.inbox._busy = False

    daemon._inbox_body()

    assert len(claims) == 1  # claimed: nothing was handed
    daemon._executor_body()
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: H"]


def test_a_handed_delivery_never_processed_is_due_at_once_after_a_restart(
    tmp_path: Path,
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    first = Daemon(load_config(_config(tmp_path)))
    try:
        first.engine.go_live()
        first.connect_intake()
        first._inbox_body()
        _deliver(first, remote, "i")
        assert first.engine.inbox._handed  # handed, then the process ends
    finally:
        first.engine.close()

    second = Daemon(load_config(_config(tmp_path)))
    try:
        second.engine.refresh_lookups()
        second._inbox_body()  # no lease to run out: claimed at once
        second._executor_body()
        assert [e["params"]["title"] for e in remote.effects()] == ["Done: I"]
    finally:
        second.engine.close()


def test_a_delivery_stored_while_others_wait_is_not_handed_but_claimed_with_them(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A hand-off is for a lone delivery: with others due (stored while the inbox thread
    was busy), the next round claims them all together instead."""
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    daemon.connect_intake()
    daemon._inbox_body()
    claims = _counting(daemon.engine.inbox, "claim")
    processed = _counting(daemon.engine.inbox, "_process")
    daemon.engine.inbox._busy = True
    _deliver(daemon, remote, "j")  # refused: the inbox is busy
    daemon.engine.inbox._busy = False
    _deliver(daemon, remote, "k")  # the inbox is idle now, but "j" waits

    daemon._inbox_body()

    assert len(claims) == 1 and [len(rows) for (rows,) in processed] == [2]
    daemon._executor_body()
    assert sorted(e["params"]["title"] for e in remote.effects()) == ["Done: J", "Done: K"]


def test_a_handed_delivery_that_fails_is_retried_with_its_attempt_counted(
    daemon: Daemon, tmp_path: Path
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    daemon.connect_intake()
    daemon._inbox_body()
    connector = daemon.engine.connectors["localdb"]

    def unavailable(ref: Any) -> Any:
        raise TransientError("remote unavailable (503)")

    connector.fetch = unavailable  # type: ignore[method-assign]
    claims = _counting(daemon.engine.inbox, "claim")
    _deliver(daemon, remote, "l")
    daemon._inbox_body()

    assert claims == []  # handed
    with daemon.engine.store.engine.connect() as conn:
        (row,) = conn.execute(select(inbox)).mappings().all()
    assert (row["status"], row["attempts"]) == ("pending", 1)  # as a claim would count it
    assert "remote unavailable" in row["last_error"]


def _inbox_thread(daemon: Daemon) -> threading.Thread:
    """The inbox thread as the daemon runs it (its loop: its body, then wait for a wake),
    returned once its first round (as it starts: a claim, which finds nothing due) is
    over, so that what a test counts from then on is the delivery's doing alone."""
    first_round = threading.Event()

    def body() -> None:
        daemon._inbox_body()
        first_round.set()

    thread = daemon._loop("inbox-0", lambda: 1.0, body, daemon.wake_inbox)
    assert first_round.wait(10), "the inbox thread's first round did not end"
    return thread


def _stop(daemon: Daemon, thread: threading.Thread) -> None:
    daemon.stop.set()
    daemon.wake_inbox.set()
    thread.join(10)
    daemon.stop.clear()  # for the test's own executor body


def _stored_deliveries(daemon: Daemon) -> int:
    with daemon.engine.store.engine.connect() as conn:
        return len(conn.execute(select(inbox.c.id)).all())


def test_a_lone_delivery_is_fetched_while_the_writer_commits_it(
    daemon: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 17: an idle webhook waited for its commit, then for its fetch. The idle inbox
    # thread now reads what the delivery names meanwhile (the writer here holds its insert
    # until that read is done), then ingests it once stored and handed over: one fetch, no
    # claim, no second wake-up.
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    wakes = _counting(daemon.wake_inbox, "set")  # before the writer and inbox take it
    daemon.connect_intake()
    connector = daemon.engine.connectors["localdb"]
    fetched = threading.Event()
    stored_when_fetched: list[int] = []
    real_fetch, real_add = connector.fetch, inbox_store.add_delivery_rows

    def fetch(ref: Any) -> Any:
        stored_when_fetched.append(_stored_deliveries(daemon))
        fetched.set()
        return real_fetch(ref)

    def add_delivery_rows(*args: Any) -> Any:
        fetched.wait(5)  # (without an early fetch: on after 5 s, and the test fails)
        return real_add(*args)

    monkeypatch.setattr(connector, "fetch", fetch)
    monkeypatch.setattr(inbox_store, "add_delivery_rows", add_delivery_rows)
    thread = _inbox_thread(daemon)
    try:
        claims = _counting(daemon.engine.inbox, "claim")
        _deliver(daemon, remote, "early")
        wait_until(lambda: _action_rows(daemon.engine), 10, "the action planned")
        woken = len(wakes)
    finally:
        _stop(daemon, thread)

    assert stored_when_fetched == [0]  # fetched once, before the delivery was stored
    assert claims == [] and woken == 1  # the early fetch's wake only
    with daemon.engine.store.engine.connect() as conn:
        assert conn.execute(select(inbox.c.status)).scalars().all() == ["done"]
    daemon._executor_body()
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: Early"]


def test_an_early_fetch_of_a_delivery_seen_before_ingests_nothing(
    daemon: Daemon, tmp_path: Path
) -> None:
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    daemon.connect_intake()
    thread = _inbox_thread(daemon)
    try:
        _deliver(daemon, remote, "twice")
        wait_until(lambda: _action_rows(daemon.engine), 10, "the action planned")
        processed = _counting(daemon.engine.inbox, "_process")
        body = b'{"type": "item", "id": "twice"}'
        again = Delivery("localdb", "d-twice", {}, body, int(time.time() * 1000))
        assert daemon.engine.writer.submit(again).result(10) is False  # a duplicate
        wait_until(lambda: daemon.engine.inbox._early_settled, 10, "the early fetch settled")
        _deliver(daemon, remote, "next")  # the next one is handled as usual
        wait_until(lambda: len(_action_rows(daemon.engine)) == 2, 10, "the next action")
    finally:
        _stop(daemon, thread)
    assert [len(rows) for (rows,) in processed] == [1]  # "next" only: the duplicate is not


def test_a_connector_that_acknowledges_its_webhooks_is_not_fetched_early(
    daemon: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airtable's parse reads payloads and keeps their cursor until `acknowledge_webhook`:
    # its deliveries are parsed once, on the usual path.
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    wakes = _counting(daemon.wake_inbox, "set")  # before the writer and inbox take it
    daemon.connect_intake()
    connector = daemon.engine.connectors["localdb"]
    monkeypatch.setattr(type(connector), "acknowledge_webhook", lambda self, request: None)
    daemon._inbox_body()

    _deliver(daemon, remote, "acked")

    assert len(wakes) == 1  # the commit's wake-up only: none for an early fetch
    daemon._inbox_body()
    daemon._executor_body()
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: Acked"]
