"""kill -9 at each named point, and at 200+ random instants: every expected effect happens
exactly once at the remote side (the localdb connector's SQLite file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from syncd_sandbox.localdb import LocalDbRemote
from syncd_sandbox.localdb.connector import sign
from tests.helpers import RULES, free_port, wait_healthy, write_rules

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_crash_test_secret"


def write_config(tmp_path: Path, port: int = 0, page_size: int = 100) -> Path:
    rules = write_rules(tmp_path / "mappings", RULES)
    config = tmp_path / "syncd.toml"
    config.write_text(f"""
[syncd]
state_dir = "{tmp_path / "state"}"
mappings = ["{rules}"]
log_level = "warning"
[http]
port = {port}
[console]
enabled = false
[executor]
backoff_base_seconds = 0.01
[localdb]
path = "{tmp_path / "remote.sqlite3"}"
webhook_secret = "{SECRET}"
page_size = {page_size}
poll_interval_seconds = 0.2
""")
    return config


def syncd(
    config: Path, *args: str, crash_at: str | None = None, skip: int = 0
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_CRASH")}
    if crash_at:
        env.update(SYNCD_CRASH_AT=crash_at, SYNCD_CRASH_SKIP=str(skip))
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli", *args, "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def effect_titles(remote: LocalDbRemote) -> Counter[str]:
    return Counter(e["params"]["title"] for e in remote.effects())


@pytest.mark.parametrize("point", ["action_in_flight", "remote_done", "cursor_advance"])
def test_kill_at_named_point_then_restart(tmp_path: Path, point: str) -> None:
    config = write_config(tmp_path)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    remote.put("item", "a", name="Ocean", stage="review")
    remote.put("item", "a", stage="done")
    crashed = syncd(config, "run", "--once", crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    done = syncd(config, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert effect_titles(remote) == {"First review of Ocean": 1, "Done: Ocean": 1}
    assert len({e["key"] for e in remote.effects()}) == 2


def test_kill_after_inbox_commit_before_2xx(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    remote.put("item", "w", name="Wave", stage="done")
    body = json.dumps({"type": "item", "id": "w"}).encode()
    headers = {"x-localdb-delivery": "dlv-1", "x-localdb-signature": sign(SECRET, body)}
    env = {**os.environ, "SYNCD_CRASH_AT": "inbox_committed"}
    cmd = [sys.executable, "-m", "syncd.cli", "run", "--config", str(config)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(port, proc)
        with pytest.raises(requests.ConnectionError):  # killed before answering
            requests.post(
                f"http://127.0.0.1:{port}/webhooks/localdb", data=body, headers=headers, timeout=10
            )
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    env.pop("SYNCD_CRASH_AT")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(port, proc)
        # The sender retries: the delivery was stored, so it is acknowledged as a duplicate.
        again = requests.post(
            f"http://127.0.0.1:{port}/webhooks/localdb", data=body, headers=headers, timeout=10
        )
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        deadline = time.monotonic() + 20
        while not remote.effects() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert effect_titles(remote) == {"Done: Wave": 1}


def expected_effects(remote: LocalDbRemote) -> Counter[str]:
    """The sequential model: every transition into done, and the first into review."""
    expected: Counter[str] = Counter()
    for row in remote.all_objects("item"):
        previous, reviewed = None, False
        for _, stage in row["history"]["stage"]:
            if stage != previous:
                if stage == "done":
                    expected[f"Done: {row['id']}"] += 1
                if stage == "review" and not reviewed:
                    expected[f"First review of {row['id']}"] += 1
                    reviewed = True
                previous = stage
    return expected


@pytest.mark.slow
def test_two_hundred_random_kills(tmp_path: Path, report_figure) -> None:
    config = write_config(tmp_path, page_size=3)
    remote = LocalDbRemote(tmp_path / "remote.sqlite3")
    for i in range(30):
        remote.put("item", f"i{i}", name=f"i{i}", stage="open")
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.crash_driver", str(config), "220", "7"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    expected = expected_effects(remote)
    titles = effect_titles(remote)
    report_figure(
        f"random-kill crash test: {counts['kills']} SIGKILLs, "
        f"{counts['finished_before_kill']} workers finished before their kill; "
        f"effects expected {sum(expected.values())}, found {sum(titles.values())}, "
        f"distinct keys {len({e['key'] for e in remote.effects()})}"
    )
    assert counts["kills"] >= 200
    assert counts["final_exit"] == 0
    assert sum(expected.values()) > 50  # the story is big enough to mean something
    assert titles == expected
    keys = [e["key"] for e in remote.effects()]
    assert len(keys) == len(set(keys))
