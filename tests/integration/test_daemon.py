"""`syncd run` as ops run it: a real subprocess with a TOML config, webhooks over HTTP,
signals (SIGHUP reload, SIGTERM stop), systemd notifications, health endpoints, start-up
checks, and secrets that never leak."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import statistics
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import select

from syncd.daemon import STOP_TIMEOUT_SECONDS
from syncd.store.db import open_store
from syncd.store.schema import actions, inbox, metadata
from syncd_sandbox.email.fake import FakeSmtpServer
from syncd_sandbox.localdb import LocalDbRemote
from tests.integration.daemon_helpers import (
    Daemon,
    free_port,
    post_webhook,
    wait_until,
    write_daemon_config,
)

SECRET = "daemon-test-hook-secret"


def titles(remote: LocalDbRemote) -> Counter[str]:
    return Counter(e["params"]["title"] for e in remote.effects())


def table_rows(store_url: str, table: object) -> list[dict[str, object]]:
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(table)).mappings()]  # type: ignore[call-overload]
    finally:
        store.dispose()


# -- 1. webhooks -------------------------------------------------------------------------------


def test_webhook_over_http_is_stored_and_acted_upon(tmp_path: Path, store_url: str) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET, store_url=store_url)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    remote.put("item", "w", name="Wave", stage="done")
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        forged = post_webhook(daemon.url, "not-the-secret", {"type": "item", "id": "w"}, "d-0")
        assert forged.status_code == 401
        accepted = post_webhook(daemon.url, SECRET, {"type": "item", "id": "w"}, "d-1")
        assert accepted.status_code == 202, accepted.text
        assert accepted.json() == {"status": "accepted", "delivery": "d-1"}
        wait_until(remote.effects, 20, "the effect of the webhook")
        again = post_webhook(daemon.url, SECRET, {"type": "item", "id": "w"}, "d-1")
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert daemon.terminate() == 0, daemon.stderr[-3000:]
    assert titles(remote) == {"Done: Wave": 1}
    stored = table_rows(store_url, inbox)
    assert [(r["delivery_id"], r["status"]) for r in stored] == [("d-1", "done")]
    assert [r["status"] for r in table_rows(store_url, actions)] == ["done"]


# -- 2. SIGHUP ---------------------------------------------------------------------------------

OLD_RULES = """
rules:
  - id: old-rule
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record: {title: "Old rule: {{ item.name }}"}
"""
NEW_RULES = OLD_RULES.replace("old-rule", "new-rule").replace("Old rule", "New rule")
BROKEN_RULES = """
rules:
  - id: misspelt-action
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.recrod: {title: "x"}
  - id: bad-offset
    when: {source: localdb, object: item, date: end_date, offset: soon}
    do:
      - localdb.record: {title: "y"}
"""


def test_sighup_keeps_old_rules_on_errors_and_switches_on_good_file(tmp_path: Path) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET, rules=OLD_RULES)
    rules_file = tmp_path / "mappings" / "rules.yaml"
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        seen = len(daemon.log_events())
        rules_file.write_text(BROKEN_RULES)
        daemon.signal(signal.SIGHUP)
        rejected = daemon.wait_for_log("reload.rejected", after=seen)
        problems = "\n".join(rejected["problems"])
        assert f"{rules_file}:6: rule misspelt-action:" in problems
        assert "unknown action 'localdb.recrod'" in problems
        assert "rule bad-offset: when.offset:" in problems and "bad offset 'soon'" in problems
        assert "unknown action 'localdb.recrod'" in daemon.stderr

        remote.put("item", "a", name="A", stage="done")
        assert post_webhook(daemon.url, SECRET, {"type": "item", "id": "a"}, "a").ok
        wait_until(lambda: titles(remote) == {"Old rule: A": 1}, 20, "the old rule to fire")
        assert requests.get(f"{daemon.url}/readyz", timeout=5).json()["rules"] == 1

        seen = len(daemon.log_events())
        rules_file.write_text(NEW_RULES)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("reload.ok", after=seen)
        remote.put("item", "b", name="B", stage="done")
        assert post_webhook(daemon.url, SECRET, {"type": "item", "id": "b"}, "b").ok
        wait_until(lambda: "New rule: B" in titles(remote), 20, "the new rule to fire")
        assert daemon.terminate() == 0
    assert titles(remote) == {"Old rule: A": 1, "New rule: B": 1}


def test_sighup_rereads_the_config_file(tmp_path: Path) -> None:
    """The mapping folder named in the config moves: a reload follows it; a config that
    does not parse is rejected and changes nothing."""
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET, rules=OLD_RULES)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    other = tmp_path / "other-mappings"
    other.mkdir()
    (other / "rules.yaml").write_text(textwrap.dedent(NEW_RULES))
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        seen = len(daemon.log_events())
        original = config.read_text()
        config.write_text(original + "\n[nosuch]\nkey = 1\n")
        daemon.signal(signal.SIGHUP)
        rejected = daemon.wait_for_log("reload.rejected", after=seen)
        assert "unknown section" in "\n".join(rejected["problems"])

        seen = len(daemon.log_events())
        config.write_text(original.replace(str(tmp_path / "mappings"), str(other)))
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("reload.ok", after=seen)
        remote.put("item", "c", name="C", stage="done")
        assert post_webhook(daemon.url, SECRET, {"type": "item", "id": "c"}, "c").ok
        wait_until(lambda: "New rule: C" in titles(remote), 20, "the new folder's rule")
        assert daemon.terminate() == 0
    assert titles(remote) == {"New rule: C": 1}


# -- 3. SIGTERM --------------------------------------------------------------------------------


def test_sigterm_during_a_burst_exits_zero_and_loses_nothing(
    tmp_path: Path, store_url: str
) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET, store_url=store_url)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    names = [f"n{i:02d}" for i in range(60)]
    for name in names:
        remote.put("item", name, name=name, stage="done")

    unanswered: list[str] = []
    with Daemon(config, port) as daemon:
        daemon.wait_ready()

        def send(name: str) -> str | None:
            try:
                reply = post_webhook(daemon.url, SECRET, {"type": "item", "id": name}, name)
            except requests.ConnectionError:
                return name  # refused or cut while stopping: the sender retries later
            if reply.status_code == 503:
                return name  # "could not store; retry": the sender retries later
            assert reply.status_code == 202, reply.text
            return None

        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(send, names[:40]))
            later = [pool.submit(send, name) for name in names[40:]]
            daemon.signal(signal.SIGTERM)  # right away, with deliveries in flight
            started = time.monotonic()
            unanswered = [n for n in first if n] + [
                n for f in later if (n := f.result()) is not None
            ]
        assert daemon.wait(STOP_TIMEOUT_SECONDS + 10) == 0, daemon.stderr[-3000:]
        stop_seconds = time.monotonic() - started
    assert stop_seconds < STOP_TIMEOUT_SECONDS
    # It stopped mid-work, so the restart below has something to finish.
    assert len(remote.effects()) < len(names), "all done before the stop: nothing tested"

    with Daemon(config, port) as daemon:  # restart; the sender retries what was not answered
        daemon.wait_ready()
        for name in unanswered:
            assert post_webhook(daemon.url, SECRET, {"type": "item", "id": name}, name).ok
        wait_until(lambda: len(remote.effects()) >= len(names), 30, "every effect")
        assert daemon.terminate() == 0
    assert titles(remote) == {f"Done: {name}": 1 for name in names}
    assert {r["status"] for r in table_rows(store_url, actions)} == {"done"}
    assert {r["status"] for r in table_rows(store_url, inbox)} == {"done"}


# -- 4. systemd notifications ------------------------------------------------------------------


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, list[tuple[float, str]]]]:
    """A unix datagram socket like systemd's, and the (monotonic time, message) it got."""
    folder = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")  # short: sun_path is 108 bytes
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    received: list[tuple[float, str]] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            received.append((time.monotonic(), data.decode()))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield path, received
    finally:
        done.set()
        thread.join(timeout=5)
        sock.close()
        os.unlink(path)
        os.rmdir(folder)


def _sent(received: list[tuple[float, str]], assignment: str) -> list[float]:
    return [t for t, text in list(received) if assignment in text.splitlines()]


def test_notify_socket_ready_watchdog_and_stopping(
    tmp_path: Path, notify_socket: tuple[str, list[tuple[float, str]]]
) -> None:
    path, received = notify_socket
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    # systemd sets WATCHDOG_PID to the main process: the shell exports its own pid, then
    # exec keeps that pid for the daemon.
    wrapper = ["sh", "-c", 'export WATCHDOG_PID=$$; exec "$@"', "sh"]
    with Daemon(config, port, env=env, argv_prefix=wrapper) as daemon:
        wait_until(lambda: _sent(received, "READY=1"), 30, "READY=1")
        # Ready means serving: the port answers as soon as READY=1 is sent.
        assert requests.get(f"{daemon.url}/healthz", timeout=5).ok
        ready_at = _sent(received, "READY=1")[0]
        wait_until(
            lambda: len([t for t in _sent(received, "WATCHDOG=1") if t > ready_at]) >= 8,
            10,
            "eight watchdog pings",
        )
        pings = [t for t in _sent(received, "WATCHDOG=1") if t > ready_at]
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert 0.15 <= statistics.median(gaps) <= 0.3, gaps  # half of WATCHDOG_USEC
        assert max(gaps) < 0.4, gaps  # never past the watchdog timeout itself
        assert _sent(received, "STOPPING=1") == []
        assert daemon.terminate() == 0
    assert _sent(received, "STOPPING=1"), [text for _, text in received]
    assert _sent(received, "STOPPING=1")[0] > ready_at


# -- 5. secrets never leak ---------------------------------------------------------------------

CANARY_HOOK = "canary-hook-5e1d7c93ab"  # not token-shaped: only the configured value tells
# A space and a slash: percent-encoded (a form only the daemon-wide redaction knows about,
# the email connector's own redaction looks for the plain value).
CANARY_SMTP = "canary smtp/0f4b2a86dc"
CANARY_SMTP_URL = quote(CANARY_SMTP, safe="")
CANARY_RULES = """
rules:
  - id: mail-on-done
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - email.send:
          to: ops@example.org
          subject: "Done: {{ item.name }}"
          body: "{{ item.name }} is done."
  - id: broken-writer
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      # `type_` collides with LocalDbRemote.put's own argument: an unexpected TypeError,
      # logged with its traceback.
      - localdb.set_fields: {type: item, id: "{{ item.id }}", fields: {type_: x}}
"""


def test_secrets_never_reach_logs_store_mail_or_http_answers(
    tmp_path: Path, store_url: str
) -> None:
    with FakeSmtpServer(username="syncd-bot", password=CANARY_SMTP) as smtp:
        # A server that echoes the session's credentials in its refusals, plain and in a URL.
        # Ten refusals: the mail action's two attempts meet some of them whatever the order
        # of retries (the alert of broken-writer competes for them), and the alerts go
        # through once they run out.
        smtp.fail_next(
            "transient",
            at="mail",
            count=2,
            reply=f"451 4.7.1 Session syncd-bot:{CANARY_SMTP} rejected",
        )
        smtp.fail_next(
            "transient",
            at="mail",
            count=8,
            reply=f"451 4.7.1 Busy, see https://mx.test/?u=syncd-bot&p={CANARY_SMTP_URL}",
        )
        port = free_port()
        config = write_daemon_config(
            tmp_path,
            port,
            secret=CANARY_HOOK,
            store_url=store_url,
            rules=CANARY_RULES,
            max_attempts=2,
            extra=f"""
            [email]
            host = "127.0.0.1"
            port = {smtp.port}
            security = "plain"
            username = "syncd-bot"
            password = "{CANARY_SMTP}"
            from_address = "syncd@example.org"
            timeout_seconds = 5
            [alerts]
            to = ["partnerships@example.org"]
            """,
        )
        remote = LocalDbRemote(tmp_path / "remote.sqlite3")
        remote.put("item", "c", name="Canary", stage="done")
        answers: list[str] = []
        with Daemon(config, port) as daemon:
            daemon.wait_ready()
            forged = post_webhook(daemon.url, "guess", {"type": "item", "id": "c"}, "c-0")
            assert forged.status_code == 401
            unsigned = requests.post(f"{daemon.url}/webhooks/localdb", data=b"{}", timeout=5)
            assert unsigned.status_code == 401
            accepted = post_webhook(daemon.url, CANARY_HOOK, {"type": "item", "id": "c"}, "c-1")
            assert accepted.status_code == 202
            # Both rules go dead (2 attempts); both alerts get through once the faults run out.
            smtp.wait_for(2, timeout=30)
            for reply in (
                forged,
                unsigned,
                accepted,
                requests.get(f"{daemon.url}/readyz", timeout=5),
                requests.get(f"{daemon.url}/metrics", timeout=5),
            ):
                answers.append(f"{reply.headers}\n{reply.text}")
            assert daemon.terminate() == 0
        mails = [m.raw.decode("utf-8", "replace") for m in smtp.messages]

    logs = daemon.stdout + daemon.stderr
    # The failures really happened and were logged: the echoed reply and a traceback.
    assert "451 4.7.1 Session syncd-bot:" in logs and "https://mx.test/?u=syncd-bot&p=" in logs
    assert "Traceback" in logs and "action.unexpected_error" in logs
    assert len(mails) == 2 and all("partnerships@example.org" in m for m in mails)
    assert {
        r["rule_id"]: r["status"]
        for r in table_rows(store_url, actions)
        if not r["rule_id"].startswith("syncd.alert")
    } == {"mail-on-done": "dead", "broken-writer": "dead"}
    dump = "\n".join(
        repr(row) for table in metadata.sorted_tables for row in table_rows(store_url, table)
    )
    assert "451 4.7.1 Session syncd-bot:" in dump
    for where, text in [
        ("logs", logs),
        ("store", dump),
        ("mail", "\n".join(mails)),
        ("http", "\n".join(answers)),
    ]:
        for canary in (CANARY_HOOK, CANARY_SMTP, CANARY_SMTP_URL):
            assert canary not in text, f"{canary} leaked into the {where}"


# -- 6. start-up refuses unsafe permissions ----------------------------------------------------


@pytest.mark.parametrize("unsafe", ["config", "mapping"])
def test_startup_refuses_group_or_other_writable_files(tmp_path: Path, unsafe: str) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    target = config if unsafe == "config" else tmp_path / "mappings" / "rules.yaml"
    target.chmod(0o666)
    with Daemon(config, port) as daemon:

        def exited_or_serving() -> bool:
            if daemon.proc.poll() is not None:
                return True
            try:
                return requests.get(f"{daemon.url}/healthz", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(exited_or_serving, 30, "the daemon to refuse (or start)")
        assert daemon.proc.poll() is not None, "started despite the unsafe file"
        code = daemon.wait(5)
    assert code != 0
    assert f"chmod go-w {target}" in daemon.stderr
    assert "daemon.ready" not in daemon.stderr


# -- 7. health, readiness, metrics -------------------------------------------------------------


def test_health_readiness_and_metrics(tmp_path: Path) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    remote.put("item", "m", name="Metric", stage="done")
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        assert requests.get(f"{daemon.url}/healthz", timeout=5).status_code == 200
        ready = requests.get(f"{daemon.url}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["ready"] is True and ready.json()["rules"] == 1
        assert post_webhook(daemon.url, SECRET, {"type": "item", "id": "m"}, "m").ok
        wait_until(remote.effects, 20, "the effect")
        # The action's done record follows the effect by a moment (recorded after the call).
        done = 'syncd_actions{status="done"} 1.0'
        metrics = wait_until(
            lambda: (m := requests.get(f"{daemon.url}/metrics", timeout=5).text) * (done in m),
            10,
            "the action recorded as done",
        )
        assert 'syncd_webhooks_total{connector="localdb",outcome="accepted"} 1.0' in metrics
        assert daemon.terminate() == 0


def test_the_daemons_threads_are_named_for_the_system(tmp_path: Path) -> None:
    """`top -H` and /proc show which loop each thread runs (syncd.osthreads)."""
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        tasks = Path(f"/proc/{daemon.proc.pid}/task")
        names = Counter((task / "comm").read_text().strip() for task in tasks.iterdir())
        assert daemon.terminate() == 0
    loops = {"inbox-0", "inbox-writer", "heartbeat", "scheduler", "lookups", "alerts", "prune"}
    assert loops <= set(names)
    assert {f"executor-{i}" for i in range(8)} <= set(names)  # [executor] workers = 8


def test_readiness_fails_without_rules(tmp_path: Path) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET, rules="rules: []\n")
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        assert requests.get(f"{daemon.url}/healthz", timeout=5).status_code == 200
        ready = requests.get(f"{daemon.url}/readyz", timeout=5)
        assert ready.status_code == 503
        assert "no rules loaded" in ready.json()["problems"]
        assert daemon.terminate() == 0


def test_a_receive_only_replica_stores_webhooks_and_leaves_them_for_processing(
    tmp_path: Path, store_url: str
) -> None:
    """`[inbox] workers = 0`: webhooks are stored and answered, never processed here; a
    daemon with processing on takes them up (`benchmarks/webhooks.py --intake-only`)."""
    port = free_port()
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    remote.put("item", "w", name="Wave", stage="done")
    config = write_daemon_config(
        tmp_path, port, secret=SECRET, store_url=store_url, inbox_workers=0
    )
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        accepted = post_webhook(daemon.url, SECRET, {"type": "item", "id": "w"}, "d-1")
        assert accepted.status_code == 202, accepted.text
        time.sleep(1.5)  # a processing daemon acts within milliseconds
        assert daemon.terminate() == 0, daemon.stderr[-3000:]
        assert "inbox.processing_off" in daemon.stderr
    assert [r["status"] for r in table_rows(store_url, inbox)] == ["pending"]
    assert remote.effects() == []
    config = write_daemon_config(tmp_path, port, secret=SECRET, store_url=store_url)
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        wait_until(remote.effects, 20, "the stored webhook's effect")
        assert daemon.terminate() == 0, daemon.stderr[-3000:]
    assert titles(remote) == {"Done: Wave": 1}
