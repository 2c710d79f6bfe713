"""`[executor] separate_process = true`: a real daemon performs its actions in a child
process it supervises (syncd.executor_process). Every action exactly once, across a kill -9
of the child; the child is started again and said while it is down; it never outlives the
daemon; a loop failing in the child is reported by the daemon's /readyz."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from syncd_sandbox.email.fake import FakeSmtpServer
from syncd_sandbox.localdb import LocalDbRemote
from tests.integration.daemon_helpers import (
    Daemon,
    free_port,
    post_webhook,
    wait_until,
    write_daemon_config,
)

SECRET = "executor-process-hook-secret"


def titles(remote: LocalDbRemote) -> Counter[str]:
    return Counter(e["params"]["title"] for e in remote.effects())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def readiness(daemon: Daemon) -> dict[str, Any]:
    answer = requests.get(f"{daemon.url}/readyz", timeout=5)
    return answer.json()  # type: ignore[no-any-return]


def start(tmp_path: Path, **extra: Any) -> tuple[Daemon, LocalDbRemote, int]:
    port = free_port()
    config = write_daemon_config(
        tmp_path, port, secret=SECRET, separate_process=True, extra=extra.get("extra", "")
    )
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    daemon = Daemon(config, port)
    daemon.wait_ready()
    child = daemon.wait_for_log("executor_process.ready", timeout=30)["pid"]
    wait_until(lambda: readiness(daemon)["ready"], 30, "the daemon to be ready")
    return daemon, remote, child


def test_actions_run_in_the_child_exactly_once_across_its_kill(tmp_path: Path) -> None:
    daemon, remote, child = start(tmp_path, extra="latency_seconds = 0.02\n")
    try:
        assert child != daemon.proc.pid and alive(child)
        items = [f"i{n}" for n in range(60)]
        for item in items:
            remote.put("item", item, name=item.upper(), stage="done")
        for n, item in enumerate(items):
            answer = post_webhook(daemon.url, SECRET, {"type": "item", "id": item}, f"d-{n}")
            assert answer.status_code == 202, answer.text
        wait_until(lambda: len(remote.effects()) >= 10, 30, "the first effects")
        events_before = len(daemon.log_events())
        os.kill(child, signal.SIGKILL)  # in the middle of the burst
        said = wait_until(
            lambda: [p for p in readiness(daemon)["problems"] if "executor process" in p],
            10,
            "/readyz to say the executor process is down",
            interval=0.02,
        )
        assert "killed by signal 9" in said[0], said
        exited = daemon.wait_for_log("executor_process.exited", after=events_before)
        assert exited["code"] == -9
        again = daemon.wait_for_log("executor_process.ready", timeout=30, after=events_before)
        assert again["pid"] != child
        wait_until(
            lambda: len(titles(remote)) == len(items), 60, "every item's effect after the kill"
        )
        wait_until(lambda: readiness(daemon)["ready"], 10, "the daemon to be ready again")
        child = again["pid"]
        assert daemon.terminate() == 0, daemon.stderr[-3000:]
    finally:
        daemon.kill()
    assert titles(remote) == Counter({f"Done: {item.upper()}": 1 for item in items})
    assert not alive(child)  # stopped with the daemon


def test_the_child_does_not_outlive_a_killed_daemon(tmp_path: Path) -> None:
    daemon, _, child = start(tmp_path)
    try:
        daemon.proc.kill()
        daemon.proc.wait(timeout=10)
        wait_until(lambda: not alive(child), 20, "the executor process to stop")
    finally:
        daemon.kill()


FAILING_RULES = """
rules:
  - id: record-on-done
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record: {title: "Done: {{ item.name }}"}
  - id: broken-writer
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      # `type_` collides with LocalDbRemote.put's own argument: a TypeError, every time.
      - localdb.set_fields: {type: item, id: "{{ item.id }}", fields: {type_: x}}
"""


def finished(metrics: str, connector: str, outcome: str) -> float:
    wanted = f'syncd_actions_finished_total{{connector="{connector}",outcome="{outcome}"}} '
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(wanted))


def all_counted(url: str) -> str | None:
    """The daemon's /metrics once it counts the three actions the child finished."""
    metrics = requests.get(f"{url}/metrics", timeout=5).text
    counted = [("localdb", "done"), ("localdb", "dead"), ("email", "done")]
    return metrics if all(finished(metrics, *c) >= 1 for c in counted) else None


def test_what_the_child_does_reaches_the_daemons_alerts_and_metrics(tmp_path: Path) -> None:
    with FakeSmtpServer() as smtp:
        port = free_port()
        config = write_daemon_config(
            tmp_path,
            port,
            secret=SECRET,
            rules=FAILING_RULES,
            max_attempts=2,
            separate_process=True,
            extra=f"""
            [email]
            host = "127.0.0.1"
            port = {smtp.port}
            security = "plain"
            from_address = "syncd@example.org"
            timeout_seconds = 5
            [alerts]
            to = ["partnerships@example.org"]
            """,
        )
        remote = LocalDbRemote(tmp_path / "remote.sqlite3")
        remote.put("item", "a", name="Alpha", stage="done")
        with Daemon(config, port) as daemon:
            daemon.wait_ready()
            daemon.wait_for_log("executor_process.ready", timeout=30)
            assert post_webhook(daemon.url, SECRET, {"type": "item", "id": "a"}, "d-a").ok
            # The child gives up on broken-writer; the daemon's alerter plans the mail, and
            # the child sends it.
            smtp.wait_for(1, timeout=30)
            metrics = wait_until(
                lambda: all_counted(daemon.url), 15, "the child's counts in the daemon's /metrics"
            )
            assert daemon.terminate() == 0, daemon.stderr[-3000:]
        mail = smtp.messages[0].raw.decode("utf-8", "replace")
    assert "partnerships@example.org" in mail and "broken-writer" in mail
    # record-on-done and the alert mail are done; broken-writer is dead: each counted once.
    assert finished(metrics, "localdb", "done") == 1
    assert finished(metrics, "localdb", "dead") == 1
    assert finished(metrics, "email", "done") == 1
    assert titles(remote) == {"Done: Alpha": 1}
