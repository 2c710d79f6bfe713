"""syncd.store.origins: the object behind an object syncd created, read from the store
(SQLite, and PostgreSQL when SYNCD_TEST_DATABASE_URL is set)."""

from __future__ import annotations

from typing import Any

from syncd.store.db import Store
from syncd.store.origins import created_by, created_by_many
from syncd.store.schema import actions, snapshots


def _snapshot(
    store: Store,
    source: str,
    kind: str,
    object_id: str,
    fields: dict[str, Any],
    context: dict[str, Any] | None = None,
) -> None:
    with store.tx() as conn:
        conn.execute(
            snapshots.insert().values(
                source=source,
                object_type=kind,
                object_id=object_id,
                version=1,
                fields=fields,
                context=context or {},
                entered={},
                deleted=False,
                updated_at=0,
            )
        )


def _action(
    store: Store,
    key: str,
    rule: str,
    source: str,
    kind: str,
    object_id: str,
    external_id: str,
    status: str = "done",
) -> None:
    with store.tx() as conn:
        conn.execute(
            actions.insert().values(
                key=key,
                rule_id=rule,
                connector="github",
                action="create_issue",
                params={},
                source=source,
                object_type=kind,
                object_id=object_id,
                status=status,
                next_attempt_at=0,
                external_id=external_id,
                created_at=0,
                updated_at=0,
            )
        )


def test_an_issue_chain_leads_back_to_the_deal(store: Store) -> None:
    _snapshot(
        store,
        "hubspot",
        "deal",
        "1001",
        {"community_id": "pangeo"},
        {"url": "https://hubspot.example/1001"},
    )
    _snapshot(store, "github", "issue", "org/infra#6", {"title": "Request Information"})
    _action(store, "k1", "w1-info", "hubspot", "deal", "1001", "org/infra#6")
    _action(store, "k2", "w1-deploy", "github", "issue", "org/infra#6", "org/infra#7")
    with store.engine.connect() as conn:
        found = created_by(conn, "github", "org/infra#7")
        first = created_by(conn, "github", "org/infra#6")
        none = created_by(conn, "github", "org/infra#8")
    assert found is not None and first is not None and none is None
    assert found["rule"] == "w1-deploy" and found["from"]["title"] == "Request Information"
    root = found["root"]
    assert (root["id"], root["type"], root["community_id"]) == ("1001", "deal", "pangeo")
    assert root["url"] == "https://hubspot.example/1001"  # the context comes along
    assert first["rule"] == "w1-info" and first["root"] == first["from"]
    with store.engine.connect() as conn:  # the batch form: the same answers, in one look-up
        many = created_by_many(conn, "github", ["org/infra#7", "org/infra#8", "org/infra#6"])
    assert many == {"org/infra#7": found, "org/infra#6": first}
    with store.tx() as conn:  # as ingest asks, in its transaction: SQLite's direct read
        wanted = ["org/infra#8", "org/infra#6", "org/infra#7"]
        assert created_by_many(conn, "github", wanted, store) == many


def test_an_action_not_done_creates_no_link(store: Store) -> None:
    _snapshot(store, "hubspot", "deal", "1002", {"community_id": "x"})
    _action(store, "k3", "w1-info", "hubspot", "deal", "1002", "org/infra#9", status="dead")
    with store.engine.connect() as conn:
        assert created_by(conn, "github", "org/infra#9") is None
        assert created_by_many(conn, "github", ["org/infra#9"]) == {}
    with store.tx() as conn:
        assert created_by_many(conn, "github", ["org/infra#9"], store) == {}


def test_a_loop_in_the_records_ends(store: Store) -> None:
    _action(store, "k4", "r", "github", "issue", "org/infra#2", "org/infra#1")
    _action(store, "k5", "r", "github", "issue", "org/infra#1", "org/infra#2")
    with store.engine.connect() as conn:
        found = created_by(conn, "github", "org/infra#1")
    assert found is not None and found["root"]["id"] in ("org/infra#1", "org/infra#2")
