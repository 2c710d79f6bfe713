"""Property: whatever the order and duplication of deliveries, through the webhook path
and the poll path, the planned actions are exactly those of a sequential reference model."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text

from syncd.clock import FakeClock
from syncd.engine import Engine
from syncd.model import Hint, ObjectRef, Observation, WebhookRequest
from syncd.store.schema import actions, events
from syncd_sandbox.localdb import LocalDbConnector, LocalDbSettings
from tests.conftest import PG_URL, _pg_schema_url, _psycopg_url
from tests.helpers import make_config, write_rules

STAGES = ["open", "review", "done"]
BASE_VERSION = 1_790_000_000_000


class ScriptedConnector(LocalDbConnector):
    """localdb whose webhook bodies carry a full observation (as GitHub's do)."""

    observations: dict[str, Observation] = {}

    def verify_webhook(self, request: WebhookRequest) -> str:
        return request.headers["x-localdb-delivery"]

    def parse_webhook(self, request: WebhookRequest) -> list[Hint]:
        obs = self.observations[json.loads(request.body)["obs"]]
        return [Hint(obs.ref, obs)]


def observations(object_id: str, stages: list[str]) -> list[Observation]:
    """The state of the object after each change, as the source would return it."""
    out, history = [], []
    for i, stage in enumerate(stages):
        version = BASE_VERSION + 1000 * (i + 1)
        history.append((version, stage))
        out.append(
            Observation(
                ObjectRef("localdb", "item", object_id),
                {"stage": stage, "name": object_id, "step": i},
                version,
                {"stage": list(history)},
            )
        )
    return out


def reference(stages: list[str]) -> list[tuple[str | None, str]]:
    transitions, previous = [], None
    for stage in stages:
        if stage != previous:
            transitions.append((previous, stage))
            previous = stage
    return transitions


def new_store_url(backend: str, tmp: Path) -> tuple[str, object]:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'p.sqlite3'}", None
    schema = f"p_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return _pg_schema_url(PG_URL, schema), (admin, schema)


def drop(handle: object) -> None:
    if handle is None:
        return
    admin, schema = handle  # type: ignore[misc]
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


object_story = st.lists(st.sampled_from(STAGES), min_size=1, max_size=7)
delivery = st.tuples(st.sampled_from(["webhook", "poll"]), st.integers(0, 100))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stories=st.lists(object_story, min_size=1, max_size=3),
    deliveries=st.lists(delivery, max_size=25),
    order_seed=st.randoms(use_true_random=False),
)
def test_out_of_order_duplicated_deliveries_match_sequential_model(
    backend: str, stories: list[list[str]], deliveries: list[tuple[str, int]], order_seed
) -> None:
    if backend == "postgres" and not PG_URL:
        pytest.skip("PostgreSQL: set SYNCD_TEST_DATABASE_URL to run")
    tmp = Path(tempfile.mkdtemp())
    url, handle = new_store_url(backend, tmp)
    clock = FakeClock()
    rules_dir = write_rules(tmp / "mappings")
    config = make_config(tmp, url, rules_dir)
    connector = ScriptedConnector(LocalDbSettings(path=str(tmp / "remote.sqlite3")), clock)
    engine = Engine(config, clock, connectors={"localdb": connector})
    try:
        all_obs: list[tuple[str, Observation]] = []
        for n, stages in enumerate(stories):
            for i, obs in enumerate(observations(f"obj{n}", stages)):
                all_obs.append((f"{n}/{i}", obs))
        ScriptedConnector.observations = dict(all_obs)
        # Arbitrary deliveries, then the final state of every object (the last one to be
        # seen in some order), all shuffled together.
        plan = [(path, all_obs[k % len(all_obs)][0]) for path, k in deliveries]
        plan += [
            (order_seed.choice(["webhook", "poll"]), f"{n}/{len(s) - 1}")
            for n, s in enumerate(stories)
        ]
        order_seed.shuffle(plan)
        for count, (path, name) in enumerate(plan):
            if path == "poll":
                engine.ingestor.ingest(
                    [ScriptedConnector.observations[name]], cursor=("localdb", "item", str(count))
                )
            else:
                from syncd.inbox import Delivery

                body = json.dumps({"obs": name}).encode()
                engine.writer.submit(
                    Delivery(
                        "localdb", f"d{count % 7}-{name}", {"x-localdb-delivery": name}, body, 0
                    )
                ).result()
                engine.inbox.drain()
        with engine.store.engine.connect() as conn:
            seen = (
                conn.execute(
                    select(events)
                    .where(events.c.field == "stage")
                    .order_by(events.c.object_id, events.c.version)
                )
                .mappings()
                .all()
            )
            planned = conn.execute(select(actions)).mappings().all()
        for n, stages in enumerate(stories):
            got = [(e["old"], e["new"]) for e in seen if e["object_id"] == f"obj{n}"]
            assert got == reference(stages)
        expected_done = sum(1 for s in stories for t in reference(s) if t[1] == "done")
        expected_review = sum(1 for s in stories if any(t[1] == "review" for t in reference(s)))
        by_rule = [a["rule_id"] for a in planned]
        assert by_rule.count("record-on-done") == expected_done
        assert by_rule.count("once-on-review") == expected_review
        assert len({a["key"] for a in planned}) == len(planned)
    finally:
        engine.close()
        drop(handle)
