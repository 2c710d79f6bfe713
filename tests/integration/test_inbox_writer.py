"""The group-committing writer's answers to handlers waiting on an event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from syncd.clock import FakeClock
from syncd.inbox import Delivery, _settle_on_loop
from tests.helpers import make_engine


@pytest.fixture
def engine(tmp_path: Path):
    # SQLite: the test holds the store's write lock to make the deliveries queue up.
    engine = make_engine(tmp_path, f"sqlite:///{tmp_path / 'store.sqlite3'}", FakeClock())
    yield engine
    engine.close()


def _deliveries(count: int, prefix: str = "d") -> list[Delivery]:
    return [Delivery("localdb", f"{prefix}-{i}", {}, b"{}", 0) for i in range(count)]


async def _accept_while_held(engine: Any, deliveries: list[Delivery]) -> tuple[list, int]:
    """Each delivery accepted from this loop while the write lock is held, so the writer
    takes the first and the rest queue up behind it. Returns the outcomes and how often the
    writer woke this loop to answer."""
    loop = asyncio.get_running_loop()
    wakes = 0
    real = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal wakes
        wakes += callback is _settle_on_loop
        return real(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    with engine.store.tx():
        tasks = [asyncio.create_task(engine.writer.accept(d)) for d in deliveries]
        await asyncio.sleep(0.3)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes, wakes


def test_one_wake_of_the_loop_per_committed_batch(engine) -> None:
    batches_before = engine.writer.batches
    outcomes, wakes = asyncio.run(_accept_while_held(engine, _deliveries(40)))
    assert outcomes == [True] * 40
    batches = engine.writer.batches - batches_before
    assert batches <= 3  # the first alone, the other 39 together (at most one more)
    assert wakes == batches


def test_a_delivery_seen_before_is_answered_false(engine) -> None:
    first, _ = asyncio.run(_accept_while_held(engine, _deliveries(3)))
    again, _ = asyncio.run(_accept_while_held(engine, _deliveries(3) + _deliveries(2, "e")))
    assert first == [True] * 3
    assert again == [False, False, False, True, True]


def test_a_failed_commit_reaches_every_waiting_handler(engine, monkeypatch) -> None:
    def broken(conn: Any, batch: list[Delivery]) -> list[bool]:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(engine.writer, "_insert_new", broken)
    outcomes, wakes = asyncio.run(_accept_while_held(engine, _deliveries(5)))
    assert [str(o) for o in outcomes] == ["database is locked"] * 5
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert 1 <= wakes <= 3


def test_threads_still_get_a_future(engine) -> None:
    assert engine.writer.submit(_deliveries(1, "t")[0]).result(timeout=10) is True
    assert engine.writer.submit(_deliveries(1, "t")[0]).result(timeout=10) is False
