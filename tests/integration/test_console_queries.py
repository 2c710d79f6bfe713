"""The console's store layer (syncd.store.console) and the decision traces ingest keeps,
on SQLite and PostgreSQL: filters, paging, the planner's reasons, per-hour series,
percentiles, and traces pruned with the events."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from syncd.clock import FakeClock, to_ms
from syncd.store import console as queries
from syncd.store.schema import event_traces
from tests.helpers import make_engine


def test_activity_event_trace_and_plots(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", "permanent")
    remote.put("item", "a", name="Ocean", stage="done")
    remote.put("item", "b", name="Sea", stage="review")
    remote.put("item", "c", name="Lake", stage="draft")
    engine.poller.poll_all()
    clock.advance(seconds=2)
    engine.executor.drain()
    store = engine.store
    now = to_ms(clock.now())

    page = queries.activity(store, queries.Filters())
    changes = [(e.object_id, e.kind, e.field) for e in page.entries]
    assert ("a", "changed", "stage") in changes and ("c", "created", None) in changes
    assert [e.id for e in page.entries] == sorted((e.id for e in page.entries), reverse=True)
    by_object = {e.object_id: e for e in page.entries if e.field == "stage"}
    assert by_object["a"].fields["name"] == "Ocean"
    assert [a.status for a in by_object["a"].actions] == ["dead"]
    assert [a.status for a in by_object["b"].actions] == ["done"]

    dead = queries.activity(store, queries.Filters(status="dead")).entries
    assert [e.object_id for e in dead] == ["a"]
    assert [
        e.object_id for e in queries.activity(store, queries.Filters(rule="once-on-review")).entries
    ] == ["b"]
    named = queries.activity(store, queries.Filters(object="Lak")).entries
    assert {e.object_id for e in named} == {"c"}
    assert queries.activity(store, queries.Filters(since_ms=now + 1)).entries == []

    first = queries.activity(store, queries.Filters(), limit=2)
    assert len(first.entries) == 2 and first.next_before == first.entries[-1].id
    rest = queries.activity(store, queries.Filters(), before=first.next_before, limit=100)
    assert rest.next_before is None
    assert not {e.id for e in first.entries} & {e.id for e in rest.entries}

    # Lake moved to "draft": neither rule fired, and the trace says why.
    lake = next(
        e for e in rest.entries + first.entries if e.object_id == "c" and e.field == "stage"
    )
    found = queries.event(store, lake.id)
    assert found is not None
    _, trace = found
    assert trace.stored
    reasons = {d["rule"]: (d["outcome"], d["reason"]) for d in trace.decisions}
    assert reasons["record-on-done"][0] == "trigger did not match"
    assert "trigger wants" in reasons["record-on-done"][1]
    ocean = queries.event(store, by_object["a"].id)
    assert ocean is not None
    assert {d["rule"]: d["outcome"] for d in ocean[1].decisions}["record-on-done"] == "fired"

    listed, more = queries.action_page(store, queries.Filters(), limit=1)
    assert more == listed[0].id and listed[0].object_fields["name"] in ("Ocean", "Sea")
    every, _ = queries.action_page(store, queries.Filters(), limit=10)
    assert [a.id for a in every] == sorted((a.id for a in every), reverse=True)
    dead_only, _ = queries.action_page(store, queries.Filters(status="dead", object="Ocea"))
    assert [(a.object_id, a.status) for a in dead_only] == [("a", "dead")]
    assert queries.action_page(store, queries.Filters(rule="no-such-rule"))[0] == []

    dead_action = queries.action(store, by_object["a"].actions[0].id)
    assert dead_action is not None
    assert [(t.attempt, t.outcome) for t in dead_action[0].attempt_log] == [(1, "dead")]
    assert "refused" in (dead_action[0].attempt_log[0].error or "")

    plots = queries.plot_data(store, now, 24)
    assert len(plots.hours) == 24 and sum(plots.events) == len(page.entries)
    assert sum(plots.actions) == 2 and sum(plots.failures) == 1
    assert plots.failures_by_rule == [("record-on-done", 1)]
    assert plots.latency_samples == 1 and plots.latency_p50_ms == 2000

    overview = queries.overview(store, now, ["localdb"])
    assert overview.by_status == {"dead": 1, "done": 1}
    assert [(r.rule_id, r.dead, r.done) for r in overview.rules] == [
        ("once-on-review", 0, 1),
        ("record-on-done", 1, 0),
    ]
    assert overview.sources[0].polls[0].stream == "item"

    clock.advance(days=91)
    assert engine.prune()["traces"] == len(page.entries)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(event_traces)).scalar() == 0
    engine.close()
