"""SIGHUP is as strict as a start: file modes, no silent loss of every rule, and a mapping
file cannot blow up the daemon's memory (issue 14, items 9 and 10). A real `syncd run`."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import requests

from tests.integration.daemon_helpers import (
    RECORD_ON_DONE,
    Daemon,
    free_port,
    write_daemon_config,
)

SECRET = "reload-test-hook-secret"
OTHER_RULE = RECORD_ON_DONE.replace("record-on-done", "other-rule")


def billion_laughs(levels: int = 9) -> str:
    """Nine levels of ten aliases: 10^9 strings once expanded, 1 KB as written."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\nrules: []\n"


def rules_loaded(daemon: Daemon) -> int:
    return int(requests.get(f"{daemon.url}/readyz", timeout=5).json()["rules"])


def reload(daemon: Daemon, outcome: str, timeout: float = 15.0) -> dict:
    seen = len(daemon.log_events())
    daemon.signal(signal.SIGHUP)
    return daemon.wait_for_log(outcome, timeout=timeout, after=seen)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_reload_refuses_a_world_writable_mapping_file(tmp_path: Path) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    rules_file = tmp_path / "mappings" / "rules.yaml"
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        rules_file.write_text(OTHER_RULE)
        rules_file.chmod(0o666)
        rejected = reload(daemon, "reload.rejected")
        assert f"chmod go-w {rules_file}" in "\n".join(rejected["problems"])
        rules_file.chmod(0o644)
        assert "other-rule" not in daemon.stderr.split("reload.rejected")[0]
        reload(daemon, "reload.ok")  # fixed: the same file is taken
        assert daemon.terminate() == 0


def test_reload_refuses_an_empty_rule_set_unless_the_config_allows_it(tmp_path: Path) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    rules_file = tmp_path / "mappings" / "rules.yaml"
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        rules_file.unlink()  # deleted by mistake
        rejected = reload(daemon, "reload.rejected")
        assert "allow_empty_rules" in "\n".join(rejected["problems"])
        assert rejected["kept_rules"] == 1
        assert rules_loaded(daemon) == 1

        config.write_text(
            config.read_text().replace(
                "log_json = true\n", "log_json = true\nallow_empty_rules = true\n"
            )
        )
        assert reload(daemon, "reload.ok")["rules"] == 0
        assert rules_loaded(daemon) == 0
        assert daemon.terminate() == 0


def test_reload_refuses_a_yaml_alias_bomb_quickly_and_stays_small(tmp_path: Path) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, secret=SECRET)
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        before = rss_mb(daemon.proc.pid)
        (tmp_path / "mappings" / "bomb.yaml").write_text(billion_laughs())
        started = time.monotonic()
        rejected = reload(daemon, "reload.rejected", timeout=20)
        assert time.monotonic() - started < 10
        problems = "\n".join(rejected["problems"])
        assert "bomb.yaml" in problems and "aliases" in problems
        assert rss_mb(daemon.proc.pid) < before + 100
        assert rules_loaded(daemon) == 1
        started = time.monotonic()
        assert daemon.terminate() == 0  # SIGTERM still answered
        assert time.monotonic() - started < 20
