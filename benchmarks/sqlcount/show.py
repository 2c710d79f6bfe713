"""Prints what benchmarks/sqlcount/sitecustomize.py counted, per webhook.

    python benchmarks/sqlcount/show.py COUNTS.json WEBHOOKS

WEBHOOKS: how many webhooks the run sent after the daemon started (peer.py: --n plus its
latency samples, 3000 + 50)."""

from __future__ import annotations

import collections
import json
import sys


def main() -> None:
    rows = json.load(open(sys.argv[1]))  # noqa: SIM115 - read once
    webhooks = float(sys.argv[2])
    statements: collections.Counter[str] = collections.Counter()
    begins = 0
    for thread, kind, sql, n in sorted(rows, key=lambda r: (-r[3], r[0])):
        print(f"{n / webhooks:7.3f}  {thread:10} {kind:4} {sql[:120]}")
        if kind == "tx":
            begins += n if sql == "BEGIN" else 0
        else:
            statements[thread] += n
    per_thread = ", ".join(f"{t} {n / webhooks:.3f}" for t, n in statements.most_common())
    print(
        f"per webhook: {sum(statements.values()) / webhooks:.3f} statements "
        f"(BEGIN and COMMIT not counted; {per_thread}), {begins / webhooks:.3f} transactions"
    )


if __name__ == "__main__":
    main()
