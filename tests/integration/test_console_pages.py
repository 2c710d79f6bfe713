"""The console app over HTTP (Starlette's test client on a real store): the token gate,
the CSRF field, the htmx partial, and secrets masked on pages."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from starlette.testclient import TestClient

from syncd.clock import FakeClock
from syncd.console.app import Console, build_console_app
from syncd.console.auth import COOKIE, Keys
from syncd.logs import REDACTED, add_secrets
from syncd.store.schema import actions
from tests.helpers import make_engine

TOKEN = "pages-test-console-token-0123456789"


def test_gate_csrf_partial_and_masking(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, f"sqlite:///{tmp_path / 's.sqlite3'}", clock)
    remote = engine.connectors["localdb"].remote
    remote.fail_next("record", "permanent")
    remote.put("item", "a", name="Ocean", stage="done")
    engine.poller.poll_all()
    engine.executor.drain()
    secret = "sk-live-pages-test-secret-value"
    add_secrets([secret])
    with engine.store.tx() as conn:  # an API answer that quoted a credential back
        conn.execute(update(actions).values(last_error=f"refused: key {secret} invalid"))
    keys = Keys(TOKEN)
    app = build_console_app(Console(engine.store, engine.rules, clock, ["localdb"], keys))
    client = TestClient(app)

    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/login").status_code == 200
    bad = client.post("/login", data={"token": "nope"})
    assert bad.status_code == 401 and COOKIE not in bad.cookies
    good = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert good.status_code == 303
    set_cookie = good.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
    assert TOKEN not in set_cookie

    page = client.get("/actions/1")  # the session cookie lets the browser in
    assert page.status_code == 200
    assert secret not in page.text and REDACTED in page.text
    assert TOKEN not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in page.headers["content-security-policy"]

    assert client.post("/actions/1/retry", data={}).status_code == 403
    assert client.post("/actions/1/retry", data={"csrf": "x" * 64}).status_code == 403
    done = client.post("/actions/1/retry", data={"csrf": keys.csrf}, follow_redirects=False)
    assert done.status_code == 303 and "pending+again" in done.headers["location"]
    engine.executor.drain()
    assert [e["params"]["title"] for e in remote.effects()] == ["Done: Ocean"]
    refused = client.post("/actions/1/cancel", data={"csrf": keys.csrf})  # it is done now
    assert "only pending or dead actions are cancelled" in refused.text

    listed = client.get("/actions?status=done")
    assert listed.status_code == 200 and "Ocean" in listed.text and "/actions/1" in listed.text
    assert "Ocean" not in client.get("/actions?status=dead").text

    partial = client.get("/activity?status=done", headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="rows">') and "Ocean" in partial.text
    assert "<html" not in partial.text
    engine.close()
