"""`syncd run` with its console: a console that cannot listen (its port taken) is logged
and left off, and the daemon serves webhooks all the same."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from tests.integration.daemon_helpers import Daemon, free_port, write_daemon_config

pytestmark = pytest.mark.timeout(90)


def test_a_taken_console_port_leaves_the_daemon_running(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        console_port = taken.getsockname()[1]
        port = free_port()
        config = write_daemon_config(tmp_path, port, secret="s" * 20, console_port=console_port)
        with Daemon(config, port) as daemon:
            daemon.wait_ready()
            failed = daemon.wait_for_log("console.start_failed")
            assert failed["listen"] == f"127.0.0.1:{console_port}"
            assert requests.get(f"{daemon.url}/healthz", timeout=5).ok
            assert daemon.terminate() == 0, daemon.stderr[-3000:]
    token = (tmp_path / "state" / "console-token").read_text().strip()
    assert token and token not in daemon.stderr + daemon.stdout
