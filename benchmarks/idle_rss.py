"""syncd's resident memory when idle (issue 17: <= 80 MB), and what it has imported.

Starts a real `syncd run` exactly as `benchmarks/peer.py` does (SQLite, the hubspot and
github connectors pointed at local fakes in their own processes, one rule), waits until it
is live (its first HubSpot poll done), lets it settle, and prints its RSS (VmRSS from
/proc) over `--samples` readings a second apart: on a new store, then restarted on that
store (nothing to migrate). Then the daemon with no connector configured: the floor its
own parts set.

The daemon runs with the environment the shipped unit gives it (the `Environment=` lines of
systemd/syncd.service, such as MALLOC_ARENA_MAX), unless `--no-unit-env`.

    python benchmarks/idle_rss.py [--settle 5] [--samples 5] [--no-unit-env]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer

UNIT = peer.ROOT / "systemd" / "syncd.service"


def unit_environment() -> dict[str, str]:
    """The `Environment=NAME=value` settings of the shipped systemd unit."""
    out = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            out[name] = value
    return out


def _readings(pid: int, settle: float, samples: int) -> list[float]:
    time.sleep(settle)
    out = []
    for _ in range(samples):
        out.append(peer.rss_mb(pid))
        time.sleep(1)
    return out


def with_connectors(workdir: Path, settle: float, samples: int) -> dict[str, list[float]]:
    """First start on a new store, then a restart on the same store (the usual case: a
    daemon restarted on the store it has been using)."""
    github = peer.FakeProcess(peer._github_main, False)
    hubspot = peer.FakeProcess(peer._hubspot_main, 0.0)
    stack = peer.SyncdStack(github.url, workdir, state_dir=workdir / "state")
    out = {}
    try:
        github.call("add_repo", "bench/idle")
        hubspot.call("seed", 10)
        for start in ("first start", "restart"):
            stack.start("bench/idle", hubspot.url)
            assert stack.proc is not None
            out[f"hubspot+github, {start}"] = _readings(stack.proc.pid, settle, samples)
            stack.stop()
        return out
    finally:
        stack.stop()
        hubspot.stop()
        github.stop()


def bare(workdir: Path, settle: float, samples: int) -> dict[str, list[float]]:
    """The daemon with no connector: the floor its own parts set."""
    tmp = Path(tempfile.mkdtemp(prefix="syncd-bare-", dir=workdir))
    (tmp / "mappings").mkdir()
    (tmp / "mappings" / "none.yaml").write_text("rules: []\n")
    port = peer.free_port()
    (tmp / "syncd.toml").write_text(
        textwrap.dedent(f"""\
        [syncd]
        state_dir = "{tmp / "state"}"
        mappings = ["{tmp / "mappings"}"]
        log_level = "warning"
        [http]
        port = {port}
        """)
    )
    with open(tmp / "syncd.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd.cli", "run", "--config", str(tmp / "syncd.toml")],
            cwd=peer.ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            peer.wait_until(
                lambda: peer.http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
                60,
                "syncd to start",
                proc,
            )
            return {"no connector, first start": _readings(proc.pid, settle, samples)}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument(
        "--no-unit-env", action="store_true", help="without the unit's Environment= settings"
    )
    args = parser.parse_args()
    unit_env = {} if args.no_unit_env else unit_environment()
    os.environ.update(unit_env)  # the daemons started below inherit it
    workdir = Path(tempfile.mkdtemp(prefix="syncd-idle-rss-"))
    try:
        print(
            f"idle RSS: settle {args.settle:.0f} s, {args.samples} readings 1 s apart; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; environment of "
            f"the unit: {' '.join(f'{k}={v}' for k, v in unit_env.items()) or 'none'}",
            flush=True,
        )
        for measure in (with_connectors, bare):
            for name, values in measure(workdir, args.settle, args.samples).items():
                print(
                    f"  syncd idle, {name:30} RSS median {statistics.median(values):6.1f} MB"
                    f" (min {min(values):.1f}, max {max(values):.1f})",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
