"""Driver for the random-kill crash test (run as a subprocess by the test).

It imports everything once, then forks a worker per round that runs engine cycles on the
shared state while this process kills it with SIGKILL after a random delay (a real kill -9
of a real process, landing anywhere: mid-transaction, mid-HTTP-call, mid-commit). After the
rounds, one last worker runs to completion. Prints one JSON line with the counts.

    python -m tests.integration.crash_driver CONFIG ROUNDS SEED
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time

from syncd.config import load_config
from syncd.engine import Engine


def work(config_path: str) -> None:
    engine = Engine(load_config(config_path), exclusive=True)
    for _ in range(1000):
        report = engine.run_once()
        if not report.outcomes and not report.inbox and not any(
            getattr(r, "observed", 0) for r in report.polled.values()
        ):
            break
    engine.close()


def main() -> None:
    config_path, rounds, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    kills = finished = 0
    for _ in range(rounds):
        pid = os.fork()
        if pid == 0:
            try:
                work(config_path)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.12))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            kills += 1
        else:
            finished += 1
    pid = os.fork()
    if pid == 0:
        try:
            work(config_path)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"kills": kills, "finished_before_kill": finished,
                      "final_exit": os.waitstatus_to_exitcode(status)}))


if __name__ == "__main__":
    main()
