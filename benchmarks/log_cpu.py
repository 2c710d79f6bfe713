"""CPU per log line of syncd's logging (issue 17), as `syncd run` configures it.

Logs an `action.done`-like line (an action's bound context plus its result: eight fields)
`--n` times through `syncd.logs.configure_logging` at level info to /dev/null, JSON
rendered, with three secrets registered, and prints this process's CPU per line
(`time.process_time`: rendering, redaction and the writes, whichever thread does them).
`--background` configures it as the daemon does (lines written by the handler's thread).

    python benchmarks/log_cpu.py [--n 20000] [--rounds 5] [--background]

Run it on two trees (a copy of this file in each) for an A/B; lower is better.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from syncd.logs import configure_logging  # noqa: E402

SECRETS = ["bench-hubspot-token", "bench-github-token-xyz", "bench-hubspot-app-secret"]


def log_lines(log: object, n: int) -> None:
    for i in range(n):
        bound = log.bind(  # type: ignore[attr-defined]
            key="a6768991a6412c54641c597e1d4aff0842842712",
            rule_id="bench-won-issue",
            action="github.create_issue",
            source="hubspot",
            object=f"hubspot:deal:{1000 + i}",
            attempt=1,
        )
        bound.info("action.done", external_id=f"bench/repo#{i}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="lines per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--background", action="store_true", help="as `syncd run` does")
    args = parser.parse_args()
    options = {"background": True} if args.background else {}
    with open(os.devnull, "w") as out:
        configure_logging("INFO", json=True, secrets=SECRETS, stream=out, **options)
        log = structlog.get_logger("syncd.executor")
        log_lines(log, 1000)  # first use: loggers built, caches filled
        per_line = []
        for r in range(args.rounds):
            started = time.process_time()
            log_lines(log, args.n)
            for handler in logging.getLogger().handlers:
                handler.flush()  # what waits for the handler's thread is counted too
            per_line.append((time.process_time() - started) / args.n * 1e6)
            print(f"round {r + 1}: {per_line[-1]:.1f} us CPU per line", flush=True)
    print(f"median: {statistics.median(per_line):.1f} us CPU per line (syncd from {ROOT})")


if __name__ == "__main__":
    main()
