"""A real `syncd run` daemon in a subprocess, for tests: config writing, start/stop with
bounded waits, captured output, and signed localdb webhooks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests

from syncd_sandbox.localdb.connector import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from tests.helpers import free_port  # noqa: F401 - re-exported for the daemon tests

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0

RECORD_ON_DONE = """
rules:
  - id: record-on-done
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record:
          title: "Done: {{ item.name }}"
"""


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def write_daemon_config(
    tmp_path: Path,
    port: int,
    *,
    secret: str,
    store_url: str | None = None,
    rules: str = RECORD_ON_DONE,
    extra: str = "",
    max_attempts: int = 8,
    console_port: int | None = None,
    inbox_workers: int = 1,
) -> Path:
    """A config for a daemon on `port`, with the localdb connector taking signed webhooks
    only (no polling: object_types is empty, so every change seen came by webhook). The
    console listens on `console_port` when given, else it is off."""
    mappings = tmp_path / "mappings"
    mappings.mkdir(exist_ok=True)
    (mappings / "rules.yaml").write_text(textwrap.dedent(rules))
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    # First: `extra` may add keys to the [localdb] table, which must stay last.
    console = (
        f'[console]\nlisten = "127.0.0.1:{console_port}"\n'
        if console_port
        else "[console]\nenabled = false\n"
    )
    config = tmp_path / "syncd.toml"
    config.write_text(
        console
        + textwrap.dedent(f"""\
        [syncd]
        state_dir = "{tmp_path / "state"}"
        mappings = ["{mappings}"]
        log_level = "info"
        log_json = true
        [http]
        port = {port}
        [inbox]
        workers = {inbox_workers}
        [executor]
        max_attempts = {max_attempts}
        backoff_base_seconds = 0.01
        backoff_max_seconds = 0.05
        [localdb]
        path = "{tmp_path / "remote.sqlite3"}"
        webhook_secret = "{secret}"
        object_types = []
        """)
        + store
        + textwrap.dedent(extra)
    )
    return config


class Daemon:
    """`python -m syncd.cli run --config X`, its stdout and stderr read into memory."""

    def __init__(
        self,
        config: Path,
        port: int,
        env: dict[str, str] | None = None,
        argv_prefix: Iterable[str] = (),
    ) -> None:
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SYNCD_CRASH", "NOTIFY_SOCKET", "WATCHDOG_"))
        }
        full_env.update(env or {})
        cmd = [*argv_prefix, sys.executable, "-m", "syncd.cli", "run", "--config", str(config)]
        self.proc = subprocess.Popen(
            cmd,
            env=full_env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._readers = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def stdout(self) -> str:
        return b"".join(list(self._out)).decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return b"".join(list(self._err)).decode("utf-8", "replace")

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        out = []
        for line in self.stderr.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_for_log(self, event: str, timeout: float = 10.0, after: int = 0) -> dict[str, Any]:
        """The first log record named `event` among those after the first `after` ones."""

        def found() -> dict[str, Any] | None:
            self._fail_if_exited()
            return next((e for e in self.log_events()[after:] if e.get("event") == event), None)

        return wait_until(found, timeout, f"log event {event!r}")  # type: ignore[no-any-return]

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Daemon:
        def ready() -> bool:
            self._fail_if_exited()
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(ready, timeout, "the daemon to answer /healthz")
        return self

    def _fail_if_exited(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"daemon exited with {self.proc.returncode}:\n{self.stderr[-4000:]}"
            )

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def terminate(self, timeout: float = 40.0) -> int:
        """SIGTERM and wait; the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _pump(stream: Any, sink: list[bytes]) -> None:
    for line in iter(stream.readline, b""):
        sink.append(line)
    stream.close()


def post_webhook(
    url: str,
    secret: str,
    items: list[dict[str, str]] | dict[str, str],
    delivery: str,
    session: Any = requests,
) -> requests.Response:
    """A localdb webhook delivery, signed with `secret`."""
    body = json.dumps(items).encode()
    headers = {
        DELIVERY_HEADER: delivery,
        SIGNATURE_HEADER: sign(secret, body),
        "content-type": "application/json",
    }
    return session.post(
        f"{url}/webhooks/localdb",
        data=body,
        headers=headers,  # type: ignore[no-any-return]
        timeout=10,
    )
