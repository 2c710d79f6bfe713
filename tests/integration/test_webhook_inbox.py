"""The webhook inbox over real HTTP: verify, store durably, answer, then process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from syncd.clock import FakeClock
from syncd.store.schema import inbox
from syncd.webapp import build_app
from syncd_sandbox.localdb.connector import sign
from tests.helpers import ServedApp, make_engine

SECRET = "whsec_test_0123456789"


@pytest.fixture
def served(tmp_path: Path, store_url: str):
    clock = FakeClock()
    engine = make_engine(tmp_path, store_url, clock, secret=SECRET)
    app = build_app(
        connectors=engine.connectors, writer=engine.writer, clock=clock, max_body_bytes=4096
    )
    with ServedApp(app) as server:
        yield engine, server
    engine.close()


def post(server: ServedApp, body: bytes, delivery: str = "d-1") -> requests.Response:
    headers = {
        "x-localdb-delivery": delivery,
        "x-localdb-signature": sign(SECRET, body),
        "content-type": "application/json",
    }
    return requests.post(f"{server.url}/webhooks/localdb", data=body, headers=headers, timeout=10)


def stored(engine) -> int:
    with engine.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(inbox)).scalar()


def test_signed_delivery_is_stored_then_acted_upon(served) -> None:
    engine, server = served
    remote = engine.connectors["localdb"].remote
    remote.put("item", "7", name="Ocean", stage="done")
    body = json.dumps({"type": "item", "id": "7"}).encode()
    answer = post(server, body)
    assert answer.status_code == 202, answer.text
    assert stored(engine) == 1  # stored before the answer
    assert engine.inbox.drain() == 1
    assert [o.status for o in engine.executor.drain()] == ["done"]
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: Ocean"]


def test_redelivery_is_acknowledged_and_ignored(served) -> None:
    engine, server = served
    body = json.dumps({"type": "item", "id": "7"}).encode()
    assert post(server, body).status_code == 202
    again = post(server, body)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert stored(engine) == 1


GOOD = json.dumps({"type": "item", "id": "7"}).encode()


@pytest.mark.parametrize(
    ("body", "signed", "secret", "connector", "status"),
    [
        (GOOD, GOOD, "wrong-secret", "localdb", 401),
        (GOOD + b" ", GOOD, SECRET, "localdb", 401),  # body changed after signing
        (b"not json", b"not json", SECRET, "localdb", 400),
        (b"\xff\xfe\xfa", b"\xff\xfe\xfa", SECRET, "localdb", 400),
        (b'{"type": 3}', b'{"type": 3}', SECRET, "localdb", 400),
        (b"x" * 5000, b"x" * 5000, SECRET, "localdb", 413),
        (GOOD, GOOD, SECRET, "nosuch", 404),
    ],
)
def test_bad_deliveries_get_4xx_and_store_nothing(
    served, body: bytes, signed: bytes, secret: str, connector: str, status: int
) -> None:
    engine, server = served
    answer = requests.post(
        f"{server.url}/webhooks/{connector}",
        data=body,
        timeout=10,
        headers={"x-localdb-delivery": "d-1", "x-localdb-signature": sign(secret, signed)},
    )
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()
    assert SECRET not in answer.text
    assert stored(engine) == 0


def test_missing_signature_is_rejected(served) -> None:
    engine, server = served
    answer = requests.post(
        f"{server.url}/webhooks/localdb",
        data=b'{"type":"item","id":"1"}',
        headers={"x-localdb-delivery": "d-9"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert stored(engine) == 0


def test_fetch_failure_keeps_delivery_for_later(served, monkeypatch) -> None:
    engine, server = served
    remote = engine.connectors["localdb"].remote
    remote.put("item", "7", name="Ocean", stage="done")
    assert post(server, json.dumps({"type": "item", "id": "7"}).encode()).status_code == 202
    from syncd.errors import TransientError

    def down(ref):
        raise TransientError("API unavailable (503)", retry_after=30)

    monkeypatch.setattr(engine.connectors["localdb"], "fetch", down)
    engine.inbox.drain()
    with engine.store.engine.connect() as conn:
        row = conn.execute(select(inbox)).mappings().one()
    assert row["status"] == "pending" and "503" in row["last_error"]
    monkeypatch.undo()
    engine.clock.advance(3600)
    assert engine.inbox.drain() == 1
    assert [o.status for o in engine.executor.drain()] == ["done"]


def test_a_connector_failing_to_verify_gets_500_and_stores_nothing(served, monkeypatch) -> None:
    engine, server = served

    def broken(request):
        raise RuntimeError("bug in the connector")

    monkeypatch.setattr(engine.connectors["localdb"], "verify_webhook", broken)
    answer = post(server, json.dumps({"type": "item", "id": "7"}).encode())
    assert answer.status_code == 500 and "retry later" in answer.json()["error"]
    assert stored(engine) == 0


@pytest.mark.parametrize("error", [TypeError, KeyError, RecursionError, UnicodeDecodeError])
def test_a_verifier_raising_on_odd_input_gets_400_not_500(served, monkeypatch, error) -> None:
    """Issue 14 item 4: whatever the sender sent, the answer is a 4xx (the bug is logged)."""
    engine, server = served

    def trips(request):
        if error is UnicodeDecodeError:
            b"\xff".decode("utf-8")
        raise error("odd input")

    monkeypatch.setattr(engine.connectors["localdb"], "verify_webhook", trips)
    answer = post(server, json.dumps({"type": "item", "id": "7"}).encode())
    assert answer.status_code == 400, answer.text
    assert stored(engine) == 0
