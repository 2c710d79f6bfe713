"""CPU per webhook of the ingest alone (issue 17): `Ingestor.ingest` in a write transaction,
as the inbox thread runs it, over a real SQLite store and benchmarks/peer.py's rule.

peer.py measures the whole daemon, and its run-to-run noise (other processes on the machine,
HTTP, threads) hides a change of a few percent in one component. This runs only the inbox
thread's commit: batches of `--batch` HubSpot-like deal observations, each deal first seen
open (a baseline batch, not timed) and then moving to Closed Won (timed: diff, events,
snapshots, planning with two template renders, actions, traces, commit), each deal
distinct, as in peer.py. The time is `time.process_time` (this process's CPU, SQLite's
included), so waiting on the machine's other work is not counted.

    python benchmarks/ingest_cpu.py [--n 2000] [--batch 16] [--rounds 5] [--profile FILE]

It prints each round's CPU ms per webhook and their median (lower is better). Run it on
two trees (PYTHONPATH=<tree>) interleaved for an A/B.
"""

from __future__ import annotations

import argparse
import cProfile
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the tree this script is in, unless PYTHONPATH names another
    sys.path.append(str(ROOT))

from syncd.clock import SystemClock, to_ms  # noqa: E402
from syncd.ingest import Ingestor, RulesHolder  # noqa: E402
from syncd.logs import configure_logging  # noqa: E402
from syncd.mapping.loader import load_rules  # noqa: E402
from syncd.model import ObjectRef, Observation  # noqa: E402
from syncd.store.db import Store, open_store  # noqa: E402

# benchmarks/peer.py's rule (its repo and title as peer.py writes them).
RULE = textwrap.dedent("""\
    rules:
      - id: bench-won-issue
        when: {source: hubspot, object: deal, field: dealstage, to: Closed Won}
        do:
          - github.create_issue:
              repo: bench/peer
              title: "Deal won: {{ deal.id }}"
              body: "HubSpot deal {{ deal.id }} moved to Closed Won."
    """)


def stage_names(source: str, object_type: str, field: str) -> dict[str, str]:
    """Stage labels to ids, as the HubSpot connector reads them (the rule says Closed Won)."""
    return {"Closed Won": "closedwon", "Appointment Scheduled": "appointmentscheduled"}


def deal(n: int, stage: str, version_ms: int) -> Observation:
    """A deal as the HubSpot connector shapes a batch read's answer (fields, history of the
    stage, context with company, contacts and owner)."""
    fields: dict[str, Any] = {
        "dealname": f"Deal {n}",
        "amount": str(1000 + n),
        "closedate": "2026-12-01T00:00:00Z",
        "createdate": "2026-11-01T00:00:00Z",
        "hubspot_owner_id": "77",
        "deal_currency_code": "EUR",
        "description": None,
        "pipeline": "default",
        "dealstage": stage,
    }
    context: dict[str, Any] = {
        "url": f"https://app.hubspot.com/contacts/1/record/0-3/{n}",
        "stage_label": "Closed Won" if stage == "closedwon" else "Open",
        "pipeline_label": "Sales Pipeline",
        "companies": [{"id": "5", "name": "Acme", "domain": "acme.test", "primary": True}],
        "company": {"id": "5", "name": "Acme", "domain": "acme.test", "primary": True},
        "contacts": [{"id": "9", "email": "a@acme.test", "firstname": "Ada", "roles": []}],
        "owner": {"id": "77", "email": "owner@example.test", "name": "Owner"},
    }
    return Observation(
        ObjectRef("hubspot", "deal", str(n)),
        fields,
        version_ms,
        {"dealstage": [(version_ms, stage)]},
        context,
        created=version_ms - 86_400_000,
    )


def batches(first: int, n: int, size: int, stage: str, version_ms: int) -> list[list[Observation]]:
    ids = range(first, first + n)
    return [
        [deal(i, stage, version_ms) for i in ids[start : start + size]]
        for start in range(0, n, size)
    ]


def ingest_all(store: Store, ingestor: Ingestor, work: list[list[Observation]]) -> int:
    """Each batch in its own write transaction, as InboxProcessor._commit does; actions."""
    actions = 0
    for batch in work:
        with store.tx() as conn:
            actions += ingestor.ingest(batch, conn=conn).actions
    return actions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="deals per round")
    parser.add_argument("--batch", type=int, default=16, help="observations per ingest")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of the timed batches here")
    args = parser.parse_args()
    import syncd

    configure_logging("warning")  # as peer.py's daemon: info lines (action.planned) dropped
    print(
        f"ingest_cpu: syncd from {Path(syncd.__file__).parent}, n={args.n} batch={args.batch}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="ingest-cpu-") as tmp:
        (Path(tmp) / "bench.yaml").write_text(RULE)
        store = open_store(f"sqlite:///{tmp}/state.sqlite3")
        clock = SystemClock()
        rules = load_rules([Path(tmp)], aliases=stage_names)
        ingestor = Ingestor(store, RulesHolder(rules), clock)
        profiler = cProfile.Profile() if args.profile else None
        per_webhook = []
        for r in range(args.rounds):
            first = r * args.n
            # Versions after go-live (set by the first ingest), as webhooks of live changes.
            ingest_all(store, ingestor, batches(first, 1, 1, "open", to_ms(clock.now())))
            time.sleep(0.01)
            now = to_ms(clock.now())
            ingest_all(
                store, ingestor, batches(first, args.n, args.batch, "appointmentscheduled", now)
            )
            won = batches(first, args.n, args.batch, "closedwon", now + 1000)
            if profiler:
                profiler.enable()
            start = time.process_time()
            actions = ingest_all(store, ingestor, won)
            spent = time.process_time() - start
            if profiler:
                profiler.disable()
            if actions != args.n:
                raise SystemExit(f"round {r + 1}: {actions} actions planned, expected {args.n}")
            per_webhook.append(spent * 1000 / args.n)
            print(f"round {r + 1}: {per_webhook[-1]:.3f} cpu ms/webhook ({actions} actions)")
        # The minimum too: other processes on the machine only ever add to a round's CPU
        # (cache and frequency contention), so the least-disturbed round is the steadiest.
        print(
            f"median: {statistics.median(per_webhook):.3f} cpu ms/webhook"
            f"  min: {min(per_webhook):.3f}"
        )
        if profiler:
            profiler.dump_stats(args.profile)
        store.dispose()


if __name__ == "__main__":
    main()
