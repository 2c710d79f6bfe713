"""Test helpers shared by integration and e2e tests (not fixtures: plain functions)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from syncd.clock import Clock
from syncd.config import Config, ExecutorSection, StoreSection, SyncdSection
from syncd.engine import Engine
from syncd_sandbox.localdb import LocalDbConnector, LocalDbSettings

RULES = """
rules:
  - id: record-on-done
    when: {source: localdb, object: item, field: stage, to: done}
    do:
      - localdb.record:
          title: "Done: {{ item.name }}"
          labels: [done]
  - id: once-on-review
    when: {source: localdb, object: item, field: stage, to: review}
    once_per_object: true
    do:
      - localdb.record:
          title: "First review of {{ item.name }}"
"""


def write_rules(folder: Path, text: str = RULES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return folder


def make_config(tmp_path: Path, store_url: str, rules_dir: Path, **executor: Any) -> Config:
    return Config(
        path=None,
        syncd=SyncdSection(state_dir=str(tmp_path / "state"), mappings=[str(rules_dir)]),
        store=StoreSection(url=store_url),
        executor=ExecutorSection(**executor),
        connectors={"localdb": LocalDbSettings(path=str(tmp_path / "remote.sqlite3"))},
    )


def make_engine(
    tmp_path: Path,
    store_url: str,
    clock: Clock,
    rules: str = RULES,
    secret: str | None = None,
    **executor: Any,
) -> Engine:
    rules_dir = write_rules(tmp_path / "mappings", rules)
    config = make_config(tmp_path, store_url, rules_dir, **executor)
    settings = LocalDbSettings(path=str(tmp_path / "remote.sqlite3"), webhook_secret=secret)
    config.connectors["localdb"] = settings
    connector = LocalDbConnector(settings, clock=clock)
    return Engine(config, clock, connectors={"localdb": connector})


class ServedApp:
    """An ASGI app on a real socket (uvicorn in a thread), for tests that speak HTTP."""

    def __init__(self, app: Any) -> None:
        import socket
        import threading

        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServedApp:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: Any = None, timeout: float = 30) -> None:
    """Wait until a daemon answers /healthz (failing at once if its process `proc` exits)."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"daemon exited early with {proc.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(f"no daemon answered on port {port} within {timeout} s")


def plan_action(
    store: Any,
    key: str,
    params: dict[str, Any],
    now_ms: int,
    *,
    connector: str = "ledger",
    action: str = "record",
    created_ms: int | None = None,
) -> None:
    """A pending first attempt of `connector.action`, due at `now_ms`, as the planner adds
    it (for the executor's tests on a memory store)."""
    from syncd.store import actions

    with store.tx() as conn:
        actions.add_action(
            store,
            conn,
            {
                "key": key,
                "rule_id": "r1",
                "connector": connector,
                "action": action,
                "params": params,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now_ms,
                "created_at": now_ms if created_ms is None else created_ms,
                "updated_at": now_ms,
            },
        )
