"""Hostile input over HTTP against a real `syncd run` with all five receivers (issue 14,
acceptance): a few thousand deliveries, most of them invalid (random bytes and headers,
bad, missing and non-ASCII signatures, valid signatures over truncated, wrongly typed, non
UTF-8, scalar or too deep bodies, oversized bodies, stale HubSpot timestamps), sent with a
raw HTTP client so that nothing is cleaned up on the way. No answer is a 5xx, every invalid
delivery gets a 4xx, every valid one a 2xx, and the inbox holds exactly the valid ones."""

from __future__ import annotations

import contextlib
import random
import socket
import textwrap
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, select

from connectors.airtable.registry import WebhookRegistration
from syncd.clock import SystemClock
from syncd.config import load_config
from syncd.engine import Engine
from syncd.store.schema import inbox
from tests.integration.daemon_helpers import RECORD_ON_DONE, Daemon, free_port
from tests.receiver_cases import (
    AIRTABLE_BASE,
    AIRTABLE_HOOK,
    AIRTABLE_MAC,
    PUBLIC_URL,
    RECEIVERS,
    SECRET,
    invalid_delivery,
    valid_delivery,
)

NO_API = "http://127.0.0.1:9"
PER_RECEIVER = 600
MAX_BODY = 65_536
TIME_BUDGET = 50.0


def _config(tmp_path: Path, port: int) -> Path:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "rules.yaml").write_text(textwrap.dedent(RECORD_ON_DONE))
    config = tmp_path / "syncd.toml"
    config.write_text(
        textwrap.dedent(f"""\
        [syncd]
        state_dir = "{tmp_path / "state"}"
        mappings = ["{mappings}"]
        log_json = true
        [http]
        port = {port}
        public_url = "{PUBLIC_URL}"
        max_body_bytes = {MAX_BODY}
        [localdb]
        path = "{tmp_path / "remote.sqlite3"}"
        webhook_secret = "{SECRET}"
        object_types = []
        [hubspot]
        base_url = "{NO_API}"
        access_token = "pat-na1-fuzz"
        app_secret = "{SECRET}"
        poll_interval_seconds = 3600
        [github]
        base_url = "{NO_API}"
        token = "ghp_fuzz"
        webhook_secret = "{SECRET}"
        poll_interval_seconds = 3600
        [airtable]
        base_url = "{NO_API}"
        token = "patFuzz.token"
        base_id = "{AIRTABLE_BASE}"
        tables = {{ lead = "Leads" }}
        poll_interval_seconds = 3600
        [jira]
        base_url = "{NO_API}"
        email = "fuzz@example.org"
        api_token = "fuzz"
        webhook_secret = "{SECRET}"
        poll_interval_seconds = 3600
        """)
    )
    config.chmod(0o600)
    return config


def _register_airtable_hook(config: Path) -> None:
    """What `syncd airtable webhooks ensure` leaves behind: the webhook and its MAC secret."""
    engine = Engine(load_config(config))
    try:
        engine.connectors["airtable"].registry.add(
            WebhookRegistration(
                AIRTABLE_HOOK, "tblFuzz", f"{PUBLIC_URL}/webhooks/airtable", AIRTABLE_MAC
            )
        )
    finally:
        engine.close()


def _clean(text: str) -> bytes:
    # A CR or LF would split the header in two; anything else goes on the wire as is.
    return text.replace("\r", "").replace("\n", "").encode("latin-1", "replace")


def raw_post(port: int, path: str, headers: dict[str, str], body: bytes) -> int:
    """POST with a raw socket; the status code of the answer."""
    lines = [
        f"POST {path} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        b"Connection: close",
        f"Content-Length: {len(body)}".encode(),
    ]
    lines += [
        _clean(k).replace(b":", b"") + b": " + _clean(v)
        for k, v in headers.items()
        if _clean(k).replace(b":", b"").strip()
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # An oversized body may be answered (413) and closed before it is all sent.
        with contextlib.suppress(OSError):
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


def test_hostile_deliveries_over_http_get_4xx_and_store_nothing(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    _register_airtable_hook(config)
    rng, clock = random.Random(14), SystemClock()
    statuses: Counter[tuple[str, str, int]] = Counter()
    problems: list[str] = []
    started = time.monotonic()
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        for i in range(PER_RECEIVER):
            for name in RECEIVERS:
                if i % 10 == 0:
                    headers, body, kind = (*valid_delivery(name, i, clock), "valid")
                elif i % 50 == 1:
                    headers, body = valid_delivery(name, 10**6 + i, clock)
                    body, kind = body + b" " * MAX_BODY, "huge"
                else:
                    headers, body, kind = invalid_delivery(name, 10**6 + i, rng, clock)
                status = raw_post(port, f"/webhooks/{name}", headers, body)
                statuses[(name, kind, status)] += 1
                if kind == "valid":
                    if status != 202:
                        problems.append(f"{name} valid delivery {i}: {status}")
                elif not 400 <= status < 500:
                    problems.append(f"{name} {kind} delivery {i}: {status}")
            assert time.monotonic() - started < TIME_BUDGET, "the run took too long"
        daemon.terminate()
    with create_engine(f"sqlite:///{tmp_path / 'state' / 'syncd.sqlite3'}").connect() as conn:
        rows = {(r.connector, r.delivery_id) for r in conn.execute(select(inbox))}
    summary = {f"{n}/{k}/{s}": c for (n, k, s), c in sorted(statuses.items())}
    assert not problems, f"{problems[:10]}\n{summary}"
    assert sum(statuses.values()) == PER_RECEIVER * len(RECEIVERS)
    assert not any(s >= 500 for _, _, s in statuses), summary
    valid = sum(c for (_, k, _), c in statuses.items() if k == "valid")
    assert len(rows) == valid  # one row per valid delivery, none from an invalid one
    assert {n for n, _ in rows} == set(RECEIVERS)
