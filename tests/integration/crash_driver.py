"""Driver for the random-kill crash test (run as a subprocess by the test).

It imports everything once, then for each round changes a few objects at the remote (as
users would), and forks a worker that receives a webhook and runs engine cycles, while this
process kills it with SIGKILL after a random delay: a real kill -9 of a real process,
landing anywhere (mid-transaction, mid-call, mid-commit). After the rounds one last worker
runs to completion. Prints one JSON line with the counts.

    python -m tests.integration.crash_driver CONFIG KILLS SEED

Rounds go on until KILLS workers were killed (a worker that finished its work before its
kill does not count), at most 3 x KILLS rounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import time

from syncd.config import load_config
from syncd.engine import Engine
from syncd.inbox import Delivery
from syncd_sandbox.localdb import LocalDbRemote

OBJECTS = 30
STAGES = ("open", "review", "done")


def work(config_path: str, hinted: str | None, delivery: str) -> None:
    engine = Engine(load_config(config_path), exclusive=True)
    if hinted is not None:
        body = json.dumps({"type": "item", "id": hinted}).encode()
        engine.writer.submit(Delivery("localdb", delivery, {}, body, 0)).result()
    for _ in range(100):
        report = engine.run_once()
        if (
            not report.outcomes
            and not report.inbox
            and not any(getattr(r, "observed", 0) for r in report.polled.values())
        ):
            break
    engine.close()


def run_worker(config_path: str, hinted: str | None, delivery: str) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            work(config_path, hinted, delivery)
        except BaseException:
            code = 1
        os._exit(code)
    return pid


def main() -> None:
    config_path, wanted, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    remote = LocalDbRemote(load_config(config_path).connectors["localdb"].path)
    kills = finished = 0
    for n in range(3 * wanted):
        if kills >= wanted:
            break
        for _ in range(2):
            remote.put("item", f"i{rng.randrange(OBJECTS)}", stage=rng.choice(STAGES))
        hinted = f"i{rng.randrange(OBJECTS)}" if rng.random() < 0.5 else None
        pid = run_worker(config_path, hinted, f"d{n}")
        time.sleep(rng.uniform(0.0, 0.08))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            kills += 1
        else:
            finished += 1
    _, status = os.waitpid(run_worker(config_path, None, "final"), 0)
    print(
        json.dumps(
            {
                "kills": kills,
                "finished_before_kill": finished,
                "final_exit": os.waitstatus_to_exitcode(status),
            }
        )
    )


if __name__ == "__main__":
    main()
