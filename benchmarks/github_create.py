"""CPU of one GitHub issue create through syncd's connector, alone (issue #17).

The fake GitHub runs in its own process (limits lifted), so only the client side is
measured: `GitHubConnector.create_issue` as the executor calls it (parameter model, the
governor, PyGithub, requests, urllib3), on `--workers` threads sharing one connector as the
executor's workers do. Printed: creates/s, the client process's CPU ms per create, and
whether every issue was created once. With `--profile FILE` py-spy samples the GIL-holding
thread into FILE (collapsed stacks).

    python benchmarks/github_create.py [--n 3000] [--workers 4] [--profile FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from connectors.github import GitHubConnector, GitHubSettings  # noqa: E402
from syncd.model import ActionContext  # noqa: E402

TOKEN = "bench-github-token"
REPO = "bench/create"
NO_LIMIT = 1_000_000_000


def _fake_main(conn: Connection, repo: str = REPO) -> None:
    """The fake GitHub in a process of its own, API limits lifted: its URL, then (on "stop")
    the titles of the issues created in `repo`."""
    from syncd_sandbox.github.fake import FakeGitHub

    fake = FakeGitHub(token=TOKEN, write_limit=NO_LIMIT, primary_limit=NO_LIMIT)
    fake.writes_per_hour = NO_LIMIT
    fake.add_repo(repo)
    fake.start()
    conn.send(fake.base_url)
    conn.recv()  # "stop"
    titles = [i.title for i in fake.repos[repo].issues.values()]
    conn.send(titles)
    fake.stop()


def run(n: int, workers: int, profile: str | None) -> None:
    ours, theirs = multiprocessing.Pipe()
    fake = multiprocessing.get_context("spawn").Process(target=_fake_main, args=(theirs,))
    fake.start()
    base_url = ours.recv()
    connector = GitHubConnector(
        GitHubSettings(
            token=SecretStr(TOKEN),
            base_url=base_url,
            requests_per_hour=NO_LIMIT,  # lifted as in the fake: only CPU is measured
            write_limit=NO_LIMIT,
            writes_per_hour=NO_LIMIT,
        )
    )
    spec = GitHubConnector.actions["create_issue"]
    counter = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            params = spec.params.model_validate(
                {"repo": REPO, "title": f"Deal won: {i}", "body": "won", "labels": ["sales"]}
            )
            spec.perform(connector, params, ActionContext(key=f"k{i}", rule_id="r", attempt=1))

    warm = [threading.Thread(target=worker) for _ in range(workers)]
    counter = iter(range(-50, 0))  # warm up: connections open, code paths hot
    for t in warm:
        t.start()
    for t in warm:
        t.join()
    counter = iter(range(n))
    spy = _start_profile(profile)
    cpu, wall = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(timeout=60)
    ours.send("stop")
    titles = ours.recv()
    fake.join()
    measured = [t for t in titles if not t.startswith("Deal won: -")]
    print(
        f"github create: n={n} workers={workers}  {n / wall:.0f} creates/s  "
        f"cpu={cpu * 1000 / n:.3f} ms/create  created={len(measured)} "
        f"distinct={len(set(measured))}  load average {os.getloadavg()[0]:.2f}"
    )


def _start_profile(path: str | None) -> subprocess.Popen[bytes] | None:
    if not path:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", "200"]
        + ["--nonblocking", "--gil", "-o", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--profile", help="py-spy collapsed stacks into this file")
    args = parser.parse_args()
    run(args.n, args.workers, args.profile)


if __name__ == "__main__":
    main()
