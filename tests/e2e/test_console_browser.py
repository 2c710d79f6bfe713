"""The console in a real browser: `syncd run` (a subprocess, as ops run it) with the localdb
fake behind signed webhooks, and Debian's headless Chromium driven by Playwright.

A few changes are played, one of whose actions fails; then: the overview and the activity
page list them, the event page says why a rule did not fire, the Retry button performs the
failed action once (read from the fake's own records), and no page answers without the
token. Screenshots go to $SYNCD_TEST_SCREENSHOTS (or the test's tmp folder); the path is
printed.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from syncd_sandbox.localdb import LocalDbRemote
from tests.integration.daemon_helpers import (
    Daemon,
    free_port,
    post_webhook,
    wait_until,
    write_daemon_config,
)

pytestmark = pytest.mark.timeout(120)

CHROMIUM = os.environ.get("SYNCD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "console-test-hook-secret"
RULES = """
rules:
  - id: record-on-done
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record:
          title: "Done: {{ item.name }}"
  - id: big-items-only
    when: {source: localdb, object: item, field: stage, to: done}
    if:
      size: {gt: 100}
    do:
      - localdb.record:
          title: "Big: {{ item.name }}"
  - id: on-review
    when: {source: localdb, object: item, field: stage, to: review}
    do:
      - localdb.record:
          title: "Review: {{ item.name }}"
"""


def titles(remote: LocalDbRemote) -> Counter[str]:
    return Counter(e["params"]["title"] for e in remote.effects())


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SYNCD_TEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"console screenshots: {folder}")
    return folder


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_console_shows_explains_and_retries(tmp_path: Path, browser: object, shots: Path) -> None:
    port, console_port = free_port(), free_port()
    config = write_daemon_config(
        tmp_path, port, secret=SECRET, rules=RULES, max_attempts=1, console_port=console_port
    )
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    remote.put("item", "w", name="Wave", stage="done", size=5)
    remote.put("item", "x", name="Xylophone", stage="done", size=500)
    console = f"http://127.0.0.1:{console_port}"
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        hooks = [{"type": "item", "id": "w"}, {"type": "item", "id": "x"}]
        assert post_webhook(daemon.url, SECRET, hooks, "d-1").status_code == 202
        wait_until(lambda: len(remote.effects()) == 3, 60, "the three records")
        remote.fail_next("record", "permanent")  # the next action fails, for good
        remote.put("item", "z", name="Zeppelin", stage="review", size=1)
        assert post_webhook(daemon.url, SECRET, {"type": "item", "id": "z"}, "d-2").ok
        token = (tmp_path / "state" / "console-token").read_text().strip()
        bearer = {"Authorization": f"Bearer {token}"}

        def dead_ids() -> list[int]:
            found = requests.get(f"{console}/activity?status=dead", headers=bearer, timeout=5)
            return [int(part.split('"')[0]) for part in found.text.split('href="/actions/')[1:]]

        dead = wait_until(dead_ids, 60, "the failed action to be dead")
        assert len(dead) == 1
        assert titles(remote) == {"Done: Wave": 1, "Done: Xylophone": 1, "Big: Xylophone": 1}

        # Without the token: 401 everywhere, buttons included; a wrong token is no better.
        for path in ("/", "/activity", f"/actions/{dead[0]}", "/plots/data", "/static/htmx.min.js"):
            assert requests.get(console + path, timeout=5).status_code == 401, path
        assert (
            requests.get(
                console + "/", headers={"Authorization": "Bearer nope"}, timeout=5
            ).status_code
            == 401
        )
        assert requests.post(f"{console}/actions/{dead[0]}/retry", timeout=5).status_code == 401
        # With the token but without the CSRF field, a button does nothing.
        assert (
            requests.post(
                f"{console}/actions/{dead[0]}/retry", headers=bearer, timeout=5
            ).status_code
            == 403
        )

        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        first = page.goto(console + "/")
        assert first is not None and first.status == 401
        page.goto(console + "/login")
        page.fill("input[name=token]", "not-the-token")
        page.click("form.login button")
        assert "not the console token" in page.content()
        page.fill("input[name=token]", token)
        page.click("form.login button")
        page.wait_for_selector("#rules")
        overview = page.inner_text("main")
        for text in ("record-on-done", "big-items-only", "on-review", "localdb"):
            assert text in overview
        assert page.inner_text("#dead-count") == "1"
        cookie = next(c for c in page.context.cookies() if c["name"] == "syncd_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert token not in cookie["value"] and token not in page.content()
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        page.click("text=Activity")
        page.wait_for_selector("table.activity")
        # the page's script has run (the table can be read before it does)
        page.wait_for_selector("#rows time[data-local]")
        activity = page.inner_text("#rows")
        for text in ("Wave", "Xylophone", "Zeppelin", "dead", "done"):
            assert text in activity
        # Times are shown in the viewer's zone by the page's script, not as UTC text.
        assert "UTC" not in activity
        page.screenshot(path=str(shots / "activity.png"), full_page=True)
        page.select_option("select[name=status]", "dead")  # htmx swaps the rows in place
        # (no wait_for_function: the console's CSP forbids the eval it needs)
        page.wait_for_selector("#rows >> text=Xylophone", state="detached")
        assert "Zeppelin" in page.inner_text("#rows")

        page.goto(console + "/activity?object=Wave")
        page.click("#rows td:nth-child(3) a")
        page.wait_for_selector("#decisions")
        decisions = page.inner_text("#decisions")
        assert "not fired" in decisions
        assert "condition failed: size gt 100" in decisions
        assert "trigger wants" in decisions  # on-review: the trigger did not match
        page.screenshot(path=str(shots / "event.png"), full_page=True)

        page.goto(f"{console}/actions/{dead[0]}")
        assert "remote refused the call" in page.inner_text("#last-error")
        assert "remote refused the call" in page.inner_text("#attempt-log")
        page.screenshot(path=str(shots / "action-dead.png"), full_page=True)
        page.click("#retry")
        page.wait_for_selector("#said")
        assert "pending again" in page.inner_text("#said")
        wait_until(lambda: titles(remote)["Review: Zeppelin"], 60, "the retried action")
        page.reload()
        assert "done" in page.inner_text("h1")
        assert page.query_selector("#retry") is None  # a done action offers no retry
        log_rows = page.inner_text("#attempt-log").splitlines()[1:]
        assert [r.split("\t")[2] for r in log_rows] == ["done", "dead"]  # newest first
        page.screenshot(path=str(shots / "action-retried.png"), full_page=True)

        page.goto(console + "/activity")
        page.click("text=All actions")
        page.wait_for_selector("tr.action")
        assert "Review: Zeppelin" not in page.inner_text("#rows")  # names, not params
        assert "Zeppelin" in page.inner_text("#rows") and "on-review" in page.inner_text("#rows")
        page.screenshot(path=str(shots / "actions.png"), full_page=True)

        page.goto(console + "/plots")
        page.wait_for_selector("body[data-plotted='24h']")
        assert page.query_selector("#per-hour canvas") is not None
        page.screenshot(path=str(shots / "plots.png"), full_page=True)
        assert daemon.terminate() == 0, daemon.stderr[-3000:]
    assert titles(remote) == {
        "Done: Wave": 1,
        "Done: Xylophone": 1,
        "Big: Xylophone": 1,
        "Review: Zeppelin": 1,
    }
    assert token not in daemon.stderr + daemon.stdout
