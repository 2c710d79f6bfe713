"""Hostile-input benchmark: >= 1,000,000 webhook deliveries across the four SaaS receivers
(HubSpot, GitHub, Airtable, Jira), through the daemon's own webhook endpoint in process.

Each delivery goes through `syncd.webapp.WebhookEndpoint` exactly as uvicorn hands it over
(ASGI scope, body messages), so the real verifier runs, and an accepted delivery is stored
by the real group-committing `InboxWriter` in a SQLite store. About 1 in 100 deliveries is
valid (signed, well-formed); the others are invalid by construction (random bytes and
headers; bad, missing and non-ASCII signatures; valid signatures over truncated, wrongly
typed, non-UTF-8, scalar or too deep bodies; stale HubSpot timestamps), and 1 in 1000 is
larger than `max_body_bytes`. The cases are in `tests/receiver_cases.py`.

    python benchmarks/fuzz_receivers.py [--n 1000000] [--seed 14]

It prints, per receiver, the deliveries sent by kind, the answers by status, the 5xx and
unexpected exceptions (an exception out of the endpoint, or a verifier that raised anything
but its 4xx refusal), the valid deliveries accepted, and the inbox rows stored from
invalid deliveries. It exits 1 unless there were no 5xx, no unexpected exception, no
invalid delivery accepted, and exactly one stored row per valid delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from syncd.clock import FakeClock  # noqa: E402
from syncd.inbox import InboxWriter  # noqa: E402
from syncd.logs import configure_logging  # noqa: E402
from syncd.metrics import REGISTRY  # noqa: E402
from syncd.store.db import open_store  # noqa: E402
from syncd.store.schema import inbox  # noqa: E402
from syncd.webapp import WebhookEndpoint  # noqa: E402
from tests.receiver_cases import (  # noqa: E402
    PUBLIC_URL,
    SAAS_RECEIVERS,
    invalid_delivery,
    make_receiver,
    valid_delivery,
)

MAX_BODY = 1_048_576
CHUNK = 65_536


async def deliver(
    endpoint: WebhookEndpoint, name: str, headers: dict[str, str], body: bytes
) -> int:
    """One delivery through the ASGI endpoint; the status it answered."""
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-type", b"application/json"))
    path = f"/webhooks/{name}"
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": raw,
        "scheme": "https",
        "server": ("hooks.example.org", 443),
    }
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]
    position = 0

    async def receive() -> dict[str, Any]:
        nonlocal position
        chunk = chunks[position]
        position += 1
        return {"type": "http.request", "body": chunk, "more_body": position < len(chunks)}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await endpoint(scope, receive, send)
    return status


async def run(n: int, seed: int, state: Path) -> int:
    clock = FakeClock()
    rng = random.Random(seed)
    connectors = {name: make_receiver(name, clock) for name in SAAS_RECEIVERS}
    store = open_store(f"sqlite:///{state / 'fuzz.sqlite3'}")
    writer = InboxWriter(store)
    endpoint = WebhookEndpoint(connectors, writer, clock, MAX_BODY, PUBLIC_URL, lambda: None)
    huge = {name: valid_delivery(name, 0, clock)[1] + b" " * MAX_BODY for name in connectors}
    kinds: dict[str, Counter[str]] = {name: Counter() for name in connectors}
    statuses: dict[str, Counter[int]] = {name: Counter() for name in connectors}
    errors: Counter[str] = Counter()
    invalid_accepted: Counter[str] = Counter()
    valid_refused: Counter[str] = Counter()
    started = time.monotonic()
    for i in range(n):
        name = SAAS_RECEIVERS[i % len(SAAS_RECEIVERS)]
        case = i // len(SAAS_RECEIVERS)
        if case % 100 == 0:
            (headers, body), kind = valid_delivery(name, case, clock), "valid"
        elif case % 1000 == 1:
            headers, body, kind = valid_delivery(name, case, clock)[0], huge[name], "huge"
        else:
            headers, body, kind = invalid_delivery(name, 10**9 + case, rng, clock)
        kinds[name][kind] += 1
        try:
            status = await deliver(endpoint, name, headers, body)
        except Exception as exc:  # the endpoint itself failed: what uvicorn would turn into 500
            errors[f"{name}: {type(exc).__name__}"] += 1
            continue
        statuses[name][status] += 1
        if kind == "valid" and status != 202:
            valid_refused[name] += 1
        if kind != "valid" and status < 400:
            invalid_accepted[name] += 1
        if i and i % 200_000 == 0:
            print(f"  ... {i:,} deliveries, {time.monotonic() - started:.0f} s", flush=True)
    elapsed = time.monotonic() - started
    writer.close()
    with store.engine.connect() as conn:
        stored = dict(
            conn.execute(select(inbox.c.connector, func.count()).group_by(inbox.c.connector)).all()
        )
    store.engine.dispose()

    print(f"\n{n:,} deliveries in {elapsed:.0f} s ({n / elapsed:,.0f}/s), seed {seed}\n")
    failed = bool(errors)
    for name in connectors:
        sent = sum(kinds[name].values())
        five = sum(c for s, c in statuses[name].items() if s >= 500)
        valid = kinds[name]["valid"]
        rows = stored.get(name, 0)
        from_invalid = rows - (valid - valid_refused[name])
        failed |= bool(five or invalid_accepted[name] or valid_refused[name] or from_invalid)
        print(f"{name}: {sent:,} deliveries")
        print("  by kind:   " + ", ".join(f"{k} {c:,}" for k, c in sorted(kinds[name].items())))
        print("  answers:   " + ", ".join(f"{s} {c:,}" for s, c in sorted(statuses[name].items())))
        print(
            f"  5xx: {five}   invalid accepted: {invalid_accepted[name]}   "
            f"valid refused: {valid_refused[name]}"
        )
        print(
            f"  inbox rows: {rows:,} (valid deliveries {valid:,}); "
            f"rows from invalid deliveries: {from_invalid}"
        )
    for name in connectors:  # a verifier that raised (answered 400 or 500 by the endpoint)
        raised = (
            REGISTRY.get_sample_value(
                "syncd_webhooks_total", {"connector": name, "outcome": "verify_error"}
            )
            or 0
        )
        if raised:
            errors[f"{name}: verifier raised"] += int(raised)
    failed |= bool(errors)
    print(f"\nunexpected exceptions: {sum(errors.values())} {dict(errors) or ''}")
    print(
        "RESULT: "
        + (
            "FAIL"
            if failed
            else "OK: 0 5xx, 0 unexpected exceptions, no row stored from an invalid delivery"
        )
    )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    sys.setswitchinterval(0.001)  # as the daemon: the writer thread answers promptly
    configure_logging("error")  # each refusal logs a warning: keep the output to the figures
    with tempfile.TemporaryDirectory(prefix="syncd-fuzz-") as state:
        return asyncio.run(run(args.n, args.seed, Path(state)))


if __name__ == "__main__":
    sys.exit(main())
