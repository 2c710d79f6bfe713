"""syncd against Node-RED 4.x on the same machine, the same fake GitHub and the same load.

Issue 17's measuring stick. Each round measures the idle latency of both stacks together
(both started, one webhook to each in turn: paired samples), then the load of each alone,
freshly started, in turns (the stack that goes first in one round goes second in the next):

- syncd: a real `syncd run` (SQLite in a temporary state directory) with the hubspot and
  github connectors pointed at the local fakes, and one rule: a deal moving to Closed Won
  opens a GitHub issue. Each signed HubSpot v3 webhook names one deal; syncd fetches the deal
  from the fake HubSpot (which answers after a fixed `--hubspot-latency`) and creates the issue.
- Node-RED: a "sync flow" (http in POST /hubspot -> function -> http request POST to the fake
  GitHub -> http response), installed from the npm registry into a cache folder once. It does
  not fetch and does not verify signatures: the simplest flow a team would write. With
  `--node-red-fetch` the flow first reads the deal from the fake HubSpot (one GET per
  webhook), so both stacks pay the same HubSpot round trip before the issue.

Both get the same webhook bodies (one dealstage -> closedwon event per delivery, a distinct
deal each). The fakes run in their own processes, so their CPU is not counted as either
stack's; API limits are lifted in the fakes and in syncd's client-side limits.

Per round and stack it prints: issues created/s over N webhooks sent at concurrency C
(after `--warm-up` webhooks sent one at a time, not timed),
duplicates and lost issues, webhook-to-issue latency p50/p95 at C=1 (one at a time, idle;
the first webhook after the start shown apart, as it pays for loading on first use),
CPU ms per webhook of the daemon process (utime+stime from /proc), its RSS, and for syncd the
HubSpot requests per 1,000 webhooks and its busiest threads' CPU over the load, in cores
(threads named as syncd names them for the system: syncd.osthreads). Then medians over
rounds and the ratios syncd/Node-RED.

    python benchmarks/peer.py [--n 5000] [--c 32] [--rounds 3] [--latency-samples 50]
                              [--hubspot-latency 0.01] [--no-node-red] [--node-red-fetch]

Node-RED is skipped with a message when node or npm is missing or the install fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.hubspot.signing import signed_request  # noqa: E402

HUBSPOT_TOKEN = "bench-hubspot-token"
HUBSPOT_SECRET = "bench-hubspot-app-secret"
GITHUB_TOKEN = "bench-github-token"
NODE_RED_SPEC = "node-red@4"
NO_LIMIT = 1_000_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
ISSUE_PATH = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues$")


def title_for(deal_id: str | int) -> str:
    """The issue title both stacks write for a won deal: distinct per deal."""
    return f"Deal won: {deal_id}"


# -- the fakes, each in its own process ---------------------------------------------------


def _github_main(conn: Connection, validate: bool) -> None:
    from syncd_sandbox.fakeserver import FakeRequest, FakeResponse
    from syncd_sandbox.github.fake import FakeGitHub

    fake = FakeGitHub(
        token=GITHUB_TOKEN, write_limit=NO_LIMIT, primary_limit=NO_LIMIT, validate=validate
    )
    fake.writes_per_hour = NO_LIMIT  # the secondary limit's hourly part, lifted as the rest
    created: dict[str, list[tuple[str, float]]] = {}  # repo -> [(title, monotonic time)]
    changed = threading.Condition()

    def record(request: FakeRequest, response: FakeResponse) -> FakeResponse:
        match = ISSUE_PATH.match(request.path)
        if request.method == "POST" and match and response.status == 201:
            title = str(json.loads(request.body).get("title"))
            with changed:
                created.setdefault(match["repo"], []).append((title, time.monotonic()))
                changed.notify_all()
        return response

    fake.app.after.append(record)
    fake.start()
    conn.send(fake.base_url)

    def first_time(repo: str, title: str) -> float | None:
        return next((t for name, t in created.get(repo, []) if name == title), None)

    def wait_title(repo: str, title: str, timeout: float) -> float | None:
        with changed:
            changed.wait_for(lambda: first_time(repo, title) is not None, timeout=timeout)
            return first_time(repo, title)

    def wait_count(repo: str, count: int, timeout: float) -> bool:
        with changed:
            return changed.wait_for(lambda: len(created.get(repo, [])) >= count, timeout=timeout)

    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            if command == "add_repo":
                fake.add_repo(args)
                with fake.app.lock:
                    fake.app.log.clear()  # keep the fake's memory flat across rounds
                conn.send(None)
            elif command == "created":  # a copy of [(title, time)] for a repo
                with changed:
                    conn.send(list(created.get(args, [])))
            elif command == "wait_title":  # (repo, title, timeout) -> creation time or None
                conn.send(wait_title(*args))
            elif command == "wait_count":  # (repo, count, timeout) -> whether it was reached
                conn.send(wait_count(*args))
            else:
                conn.send(ValueError(f"unknown command {command}"))
    finally:
        fake.stop()


def _hubspot_main(conn: Connection, latency: float) -> None:
    from syncd_sandbox.hubspot.fake import FakeHubSpot

    fake = FakeHubSpot(
        token=HUBSPOT_TOKEN,
        app_secret=HUBSPOT_SECRET,
        general_limit=NO_LIMIT,
        search_limit=NO_LIMIT,
        latency_seconds=latency,
    )
    server = fake.serve().start()
    conn.send(server.url)
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            if command == "seed":  # n deals at a stage before Closed Won -> their ids
                ids = [
                    fake.create_deal(
                        dealname=f"Bench deal {i}", amount=1000 + i, dealstage="contractadmin"
                    )
                    for i in range(args)
                ]
                fake.portal.take_events()
                conn.send(ids)
            elif command == "win":  # move deals to Closed Won -> the webhook events
                for deal_id in args:
                    fake.update_deal(deal_id, dealstage="closedwon")
                conn.send(
                    [e for e in fake.portal.take_events() if e.get("propertyName") == "dealstage"]
                )
            elif command == "requests":
                with fake.app.lock:
                    conn.send(len(fake.app.log))
                    fake.app.log.clear()
            else:
                conn.send(ValueError(f"unknown command {command}"))
    finally:
        server.stop()


class FakeProcess:
    """One fake served in a child process, driven through a pipe (one command at a time)."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.proc.start()
        self.pid = int(self.proc.pid or 0)
        self.url: str = self._recv(60)

    def _recv(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError("the fake did not answer")
        answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def call(self, command: str, args: Any = None, timeout: float = 120) -> Any:
        self._conn.send((command, args))
        return self._recv(timeout)

    def stop(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(("stop", None))
            self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=10)


# -- measuring processes --------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process and of its live descendants."""
    total = 0.0
    for p in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return total


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """Per thread of a process: its name as the system knows it (syncd names its threads:
    syncd.osthreads) and its utime+stime so far."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process has ended: no threads to read
        return out
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def thread_switches(pid: int) -> dict[int, tuple[str, int, int]]:
    """Per thread of a process: its name and its voluntary and involuntary context switches
    so far (a thread that waits for the GIL, a socket or a lock gives up its core: a
    voluntary switch)."""
    out: dict[int, tuple[str, int, int]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue
        counts = dict(re.findall(r"^(\w*voluntary_ctxt_switches):\s+(\d+)", status, re.M))
        out[int(task.name)] = (
            name,
            int(counts.get("voluntary_ctxt_switches", 0)),
            int(counts.get("nonvoluntary_ctxt_switches", 0)),
        )
    return out


def switches_made(
    before: dict[int, tuple[str, int, int]], after: dict[int, tuple[str, int, int]]
) -> dict[str, tuple[int, int]]:
    """Each thread's (voluntary, involuntary) switches between two readings, the executor's
    workers together as `executor-*`, most first."""
    made: dict[str, tuple[int, int]] = {}
    for tid, (name, voluntary, involuntary) in after.items():
        key = "executor-*" if re.fullmatch(r"executor-\d+", name) else name
        _, was_voluntary, was_involuntary = before.get(tid, (name, 0, 0))
        v, i = made.get(key, (0, 0))
        made[key] = (v + voluntary - was_voluntary, i + involuntary - was_involuntary)
    return dict(sorted(made.items(), key=lambda item: -sum(item[1])))


def thread_cpu_spent(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """Each thread's CPU seconds between two readings, the executor's workers (named
    `executor-<n>`) together as `executor-*`, largest first."""
    spent: dict[str, float] = {}
    for tid, (name, used) in after.items():
        key = "executor-*" if re.fullmatch(r"executor-\d+", name) else name
        spent[key] = spent.get(key, 0.0) + used - before.get(tid, (name, 0.0))[1]
    return dict(sorted(spent.items(), key=lambda item: -item[1]))


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status), answer.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


# -- the load: pre-built HTTP/1.1 requests over keep-alive connections ----------------------


def build_request(port: int, path: str, event: dict[str, Any]) -> bytes:
    url = f"http://127.0.0.1:{port}{path}"
    headers, body = signed_request(HUBSPOT_SECRET, url, [event], int(time.time() * 1000))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return status


async def _client(port: int, queue: list[bytes], statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue:
            writer.write(queue.pop())
            statuses.append(await asyncio.wait_for(read_response(reader), 120))
    finally:
        writer.close()


def blast(port: int, requests: list[bytes], concurrency: int) -> list[int]:
    """Send every request over `concurrency` keep-alive connections; the status codes."""
    statuses: list[int] = []
    queue = list(reversed(requests))

    async def run() -> None:
        await asyncio.gather(*(_client(port, queue, statuses) for _ in range(concurrency)))

    asyncio.run(run())
    return statuses


def send_one(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data else 0


# -- one stack, one round -------------------------------------------------------------------


@dataclass
class RoundResult:
    stack: str
    sent: int = 0
    accepted: int = 0  # 2xx answers
    created: int = 0
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0
    # When the last webhook was answered: for syncd before its issues are all made (stored,
    # then processed), for Node-RED's sync flow with its last issue.
    acked_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    # The first webhook after the start, apart: it pays for what a stack loads on first use
    # (syncd: the GitHub library, about 0.2 s here), which is once per start, not per webhook.
    first_ms: float = float("nan")
    cpu_ms_per_webhook: float = 0.0
    rss_mb: float = 0.0
    fake_github_cpu_ms_per_webhook: float = 0.0  # to see whether the fake limits the run
    hubspot_requests_per_1000: float | None = None
    # syncd's threads' CPU seconds over the load phase, by thread (see `threads_line`).
    thread_cpu: dict[str, float] = field(default_factory=dict)
    # and their context switches (voluntary, involuntary) over it, by thread
    thread_switches: dict[str, tuple[int, int]] = field(default_factory=dict)
    startup_seconds = 0.0
    note: str = ""

    @property
    def per_second(self) -> float:
        return (self.created - self.duplicates) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self) -> str:
        hub = (
            ""
            if self.hubspot_requests_per_1000 is None
            else f"  hubspot req/1000={self.hubspot_requests_per_1000:.0f}"
        )
        return (
            f"  {self.stack:8} {self.per_second:7.1f} issues/s  dup={self.duplicates} "
            f"lost={self.lost}  (2xx {self.accepted}/{self.sent} within {self.acked_seconds:.1f} "
            f"s, issues within {self.seconds:.1f} s)  "
            f"C=1 p50={self.pct(0.5):.1f} ms p95={self.pct(0.95):.1f} ms "
            f"(first after start {self.first_ms:.0f} ms)  "
            f"cpu={self.cpu_ms_per_webhook:.2f} ms/webhook  rss={self.rss_mb:.0f} MB{hub}"
            f"  (fake GitHub cpu={self.fake_github_cpu_ms_per_webhook:.2f} ms/webhook; "
            f"ready after {self.startup_seconds:.1f} s)" + (f"  [{self.note}]" if self.note else "")
        ) + self.threads_line()

    def threads_line(self) -> str:
        """The busiest threads' CPU over the load phase (syncd only), in cores: CPU seconds
        per second until the last issue. Python runs on one core at a time, so a sum near
        1.0 means the GIL sets the pace."""
        if not self.thread_cpu or not self.seconds:
            return ""
        top = list(self.thread_cpu.items())[:5]
        listed = ", ".join(f"{name} {spent / self.seconds:.2f}" for name, spent in top)
        line = (
            f"\n            threads over the load, in cores: {listed}; "
            f"all {sum(self.thread_cpu.values()) / self.seconds:.2f}"
        )
        if self.thread_switches and self.sent:
            top_switches = list(self.thread_switches.items())[:5]
            voluntary = ", ".join(f"{name} {v / self.sent:.1f}" for name, (v, _) in top_switches)
            all_v = sum(v for v, _ in self.thread_switches.values()) / self.sent
            all_i = sum(i for _, i in self.thread_switches.values()) / self.sent
            line += (
                f"\n            context switches per webhook, voluntary: {voluntary}; "
                f"all {all_v:.1f} (and {all_i:.1f} involuntary)"
            )
        return line


class Stack:
    """A daemon under test: started fresh for a round, fed webhooks on `port` at `path`."""

    name = ""
    path = ""
    port = 0
    proc: subprocess.Popen[bytes] | None = None

    startup_seconds = 0.0  # from launch to ready (syncd: to live, its first poll done)

    def start(self, repo: str, hubspot_url: str) -> None:
        raise NotImplementedError

    def diagnose(self) -> str:
        """What the stack says about work left undone (asked when issues are missing)."""
        return ""

    def keep_log(self, destination: Path) -> Path | None:
        return None

    def limiter_waits(self) -> dict[str, float]:
        """Client-side rate limiters that made calls wait (a lifted limit should not)."""
        return {}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class SyncdStack(Stack):
    name = "syncd"
    path = "/webhooks/hubspot"

    def __init__(
        self,
        github_url: str,
        workdir: Path,
        state_dir: Path | None = None,
        workers: int = 8,
        log_level: str = "info",
        name: str = "syncd",
        tree: Path = ROOT,
    ) -> None:
        self.name = name
        self.tree = tree  # the checkout whose syncd runs (`--also-tree`: another one)
        self.github_url = github_url
        self.workers = workers  # [executor] workers (8: syncd's default)
        self.log_level = log_level  # [syncd] log_level (info: syncd's default)
        self.workdir = workdir
        self.state_dir = state_dir  # None: a new store per start (idle_rss.py: a restart)
        self.log_file: Any = None

    def start(self, repo: str, hubspot_url: str) -> None:
        launched = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix="syncd-", dir=self.workdir))
        (tmp / "mappings").mkdir()
        (tmp / "mappings" / "bench.yaml").write_text(
            textwrap.dedent(f"""\
            rules:
              - id: bench-won-issue
                when: {{source: hubspot, object: deal, field: dealstage, to: Closed Won}}
                do:
                  - github.create_issue:
                      repo: {repo}
                      title: "{title_for("{{ deal.id }}")}"
                      body: "HubSpot deal {{{{ deal.id }}}} moved to Closed Won."
            """)
        )
        self.port = free_port()
        (tmp / "syncd.toml").write_text(
            textwrap.dedent(f"""\
            [syncd]
            state_dir = "{self.state_dir or tmp / "state"}"
            mappings = ["{tmp / "mappings"}"]
            log_level = "{self.log_level}"
            [http]
            port = {self.port}
            [executor]
            workers = {self.workers}
            [hubspot]
            base_url = "{hubspot_url}"
            requests_per_10s = {NO_LIMIT}
            search_requests_per_second = {NO_LIMIT}
            poll_interval_seconds = 3600
            max_webhook_age_seconds = 3600
            timeout_seconds = 30
            [github]
            base_url = "{self.github_url}"
            write_limit = {NO_LIMIT}
            write_period_seconds = 1
            writes_per_hour = {NO_LIMIT}
            requests_per_hour = {NO_LIMIT}
            poll_interval_seconds = 3600
            timeout_seconds = 30
            """)
        )
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SYNCD_HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
            "SYNCD_HUBSPOT_APP_SECRET": HUBSPOT_SECRET,
            "SYNCD_GITHUB_TOKEN": GITHUB_TOKEN,
        }
        self.log_file = open(tmp / "syncd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd.cli", "run", "--config", str(tmp / "syncd.toml")],
            cwd=self.tree,  # `-m` imports syncd from the working directory first
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        self.log_path = tmp / "syncd.log"
        base = f"http://127.0.0.1:{self.port}"
        wait_until(lambda: http_get(f"{base}/healthz")[0] == 200, 60, "syncd to start", self.proc)
        # Go live: the first HubSpot poll has finished, so every later change is news.
        wait_until(
            lambda: _first_poll_done(http_get(f"{base}/metrics")[1]),
            600,
            "syncd's first HubSpot poll",
            self.proc,
        )
        self.startup_seconds = time.monotonic() - launched

    def diagnose(self) -> str:
        wanted = (
            "syncd_inbox_pending",
            "syncd_actions{",
            "syncd_queue_depth",
            "syncd_webhooks_total{",
            "syncd_actions_finished_total{",
            "syncd_rate_waits{",
        )
        lines = http_get(f"http://127.0.0.1:{self.port}/metrics")[1].splitlines()
        return "; ".join(line for line in lines if line.startswith(wanted))

    def limiter_waits(self) -> dict[str, float]:
        out = {}
        for line in http_get(f"http://127.0.0.1:{self.port}/metrics")[1].splitlines():
            match = re.match(r'syncd_rate_waits\{api="([^"]+)"\} (\S+)$', line)
            if match and float(match[2]) > 0:
                out[match[1]] = float(match[2])
        return out

    def keep_log(self, destination: Path) -> Path | None:
        shutil.copy(self.log_path, destination)
        return destination

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.log_file is not None:
                self.log_file.close()
                self.log_file = None


def _first_poll_done(metrics: str) -> bool:
    for line in metrics.splitlines():
        if (
            line.startswith("syncd_polls_total{")
            and 'source="hubspot"' in line
            and 'outcome="ok"' in line
        ):
            return float(line.rsplit(" ", 1)[1]) >= 1
    return False


# The flow's function nodes (JavaScript), from shared pieces: the won event, and the issue.
_FIND_WON = """
const events = Array.isArray(msg.payload) ? msg.payload : [];
const won = events.find(e => e.propertyName === "dealstage" && e.propertyValue === "closedwon");
if (!won) { msg.statusCode = 200; msg.payload = {status: "ignored"}; return [null, msg]; }
"""


def _create_issue(deal_id: str) -> str:
    """The GitHub create for the deal whose id is the JavaScript expression `deal_id`."""
    return f"""
msg.method = "POST";
msg.url = env.get("BENCH_GITHUB_URL") + "/repos/" + env.get("BENCH_REPO") + "/issues";
msg.headers = {{"authorization": "Bearer " + env.get("BENCH_GITHUB_TOKEN"),
               "accept": "application/vnd.github+json", "content-type": "application/json",
               "user-agent": "node-red-bench"}};
msg.payload = {{title: "Deal won: " + {deal_id},
               body: "HubSpot deal " + {deal_id} + " moved to Closed Won."}};
return [msg, null];
"""


FUNCTION_BUILD = _FIND_WON + _create_issue("won.objectId")
# `--node-red-fetch`: the flow first reads the deal from the fake HubSpot (one GET, as
# syncd's one batch read per round trip), so both stacks pay the same HubSpot round trip.
FUNCTION_FETCH = (
    _FIND_WON
    + """
msg.method = "GET";
msg.url = env.get("BENCH_HUBSPOT_URL") + "/crm/v3/objects/deals/" + won.objectId +
          "?properties=dealstage";
msg.headers = {"authorization": "Bearer " + env.get("BENCH_HUBSPOT_TOKEN")};
delete msg.payload;
return [msg, null];
"""
)
FUNCTION_BUILD_FETCHED = """
const deal = msg.payload || {};
if (msg.statusCode !== 200 || (deal.properties || {}).dealstage !== "closedwon") {
  msg.statusCode = 502; msg.payload = {status: "not read"}; msg.headers = {}; return [null, msg];
}
""" + _create_issue("deal.id")
FUNCTION_REPLY = """
const ok = msg.statusCode >= 200 && msg.statusCode < 300;
msg.statusCode = ok ? 200 : 502;
msg.headers = {};
msg.payload = {status: ok ? "created" : "failed"};
return msg;
"""


def node_red_flow(fetch: bool = False) -> list[dict[str, Any]]:
    """The sync flow; with `fetch`, the deal is read from HubSpot before the issue is made."""
    nodes = _sync_flow()
    if not fetch:
        return nodes
    build = next(n for n in nodes if n["id"] == "build")
    build["func"] = FUNCTION_FETCH
    build["wires"] = [["fetch"], ["reply"]]
    return [
        *nodes,
        _http_request("fetch", then="fetched"),
        {
            "id": "fetched",
            "type": "function",
            "z": "bench",
            "func": FUNCTION_BUILD_FETCHED,
            "outputs": 2,
            "wires": [["create"], ["reply"]],
        },
    ]


def _http_request(node_id: str, then: str) -> dict[str, Any]:
    """An http request node: method, URL and headers from the message, a JSON answer."""
    return {
        "id": node_id,
        "type": "http request",
        "z": "bench",
        "method": "use",
        "ret": "obj",
        "paytoqs": "ignore",
        "url": "",
        "persist": True,
        "senderr": False,
        "wires": [[then]],
    }


def _sync_flow() -> list[dict[str, Any]]:
    return [
        {"id": "bench", "type": "tab", "label": "HubSpot won deal -> GitHub issue"},
        {
            "id": "in",
            "type": "http in",
            "z": "bench",
            "url": "/hubspot",
            "method": "post",
            "upload": False,
            "wires": [["build"]],
        },
        {
            "id": "build",
            "type": "function",
            "z": "bench",
            "func": FUNCTION_BUILD,
            "outputs": 2,
            "wires": [["create"], ["reply"]],
        },
        _http_request("create", then="answer"),
        {
            "id": "answer",
            "type": "function",
            "z": "bench",
            "func": FUNCTION_REPLY,
            "outputs": 1,
            "wires": [["reply"]],
        },
        {
            "id": "reply",
            "type": "http response",
            "z": "bench",
            "statusCode": "",
            "headers": {},
            "wires": [],
        },
        {
            "id": "ready",
            "type": "http in",
            "z": "bench",
            "url": "/ready",
            "method": "get",
            "wires": [["reply"]],
        },
    ]


def node_red_settings(port: int) -> str:
    return textwrap.dedent(f"""\
        module.exports = {{
            uiHost: "127.0.0.1",
            uiPort: {port},
            flowFile: "flows.json",
            credentialSecret: false,
            disableEditor: true,
            httpAdminRoot: false,
            logging: {{console: {{level: "warn", metrics: false, audit: false}}}},
            diagnostics: {{enabled: false, ui: false}},
            runtimeState: {{enabled: false, ui: false}},
            telemetry: {{enabled: false, updateNotification: false}},
            externalModules: {{autoInstall: false, palette: {{allowInstall: false}},
                               modules: {{allowInstall: false}}}},
            functionExternalModules: false,
            editorTheme: {{projects: {{enabled: false}}}},
        }};
        """)


class NodeRedStack(Stack):
    name = "node-red"
    path = "/hubspot"

    def __init__(self, red_js: Path, github_url: str, workdir: Path, fetch: bool = False) -> None:
        self.red_js = red_js
        self.github_url = github_url
        self.workdir = workdir
        self.fetch = fetch  # the flow reads the deal from HubSpot first (--node-red-fetch)
        self.log_file: Any = None

    def start(self, repo: str, hubspot_url: str) -> None:
        launched = time.monotonic()
        user_dir = Path(tempfile.mkdtemp(prefix="node-red-", dir=self.workdir))
        self.port = free_port()
        (user_dir / "settings.js").write_text(node_red_settings(self.port))
        (user_dir / "flows.json").write_text(json.dumps(node_red_flow(self.fetch), indent=1))
        env = {
            **os.environ,
            "BENCH_HUBSPOT_URL": hubspot_url,
            "BENCH_HUBSPOT_TOKEN": HUBSPOT_TOKEN,
            "BENCH_GITHUB_URL": self.github_url,
            "BENCH_REPO": repo,
            "BENCH_GITHUB_TOKEN": GITHUB_TOKEN,
            "NODE_RED_ENABLE_PROJECTS": "false",
        }
        self.log_file = open(user_dir / "node-red.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                shutil.which("node") or "node",
                str(self.red_js),
                "--userDir",
                str(user_dir),
                "--settings",
                str(user_dir / "settings.js"),
            ],
            cwd=user_dir,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{self.port}/ready")[0] == 200,
            60,
            "Node-RED to start",
            self.proc,
        )
        self.startup_seconds = time.monotonic() - launched

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.log_file is not None:
                self.log_file.close()
                self.log_file = None


def node_red_install(cache: Path) -> tuple[Path | None, str]:
    """red.js from the cache, installing Node-RED 4.x from npm when missing; or a reason."""
    red_js = cache / "node_modules" / "node-red" / "red.js"
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node or npm is not on PATH"
    if not red_js.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"installing {NODE_RED_SPEC} from the npm registry into {cache} ...", flush=True)
        try:
            done = subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(cache),
                    "--no-audit",
                    "--no-fund",
                    "--omit=dev",
                    NODE_RED_SPEC,
                ],
                capture_output=True,
                timeout=900,
            )
        except subprocess.TimeoutExpired:
            return None, "npm install timed out"
        if done.returncode != 0 or not red_js.exists():
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            return None, "npm install failed: " + " / ".join(tail)
    version = json.loads((red_js.parent / "package.json").read_text())["version"]
    if not version.startswith("4."):
        return None, f"the cache holds Node-RED {version}, not 4.x (delete {cache})"
    return red_js, version


# -- a round ---------------------------------------------------------------------------------


def idle_round(
    stacks: list[Stack], round_no: int, github: FakeProcess, args: argparse.Namespace
) -> dict[str, RoundResult]:
    """Webhook-to-issue latency at C=1 of every stack, paired: all of them started (each on
    a fresh daemon, fake HubSpot portal and repository) and sent one webhook each in turn,
    the order swapped every time. Each sample of one stack is taken within milliseconds of
    the other's, on the same machine state: the machine's speed, which moves from minute to
    minute, cancels out of the ratio. One at a time, each waited for until its issue exists;
    the stacks not being sampled sit idle meanwhile."""
    results = {stack.name: RoundResult(stack.name, sent=args.n) for stack in stacks}
    with contextlib.ExitStack() as running:
        phases = [
            (
                stack,
                *running.enter_context(
                    _phase(
                        stack,
                        github,
                        f"bench/{stack.name}-r{round_no}-idle",
                        args.latency_samples + 1,
                        args,
                    )
                ),
            )
            for stack in stacks
        ]
        failed: set[str] = set()
        for index in range(args.latency_samples + 1):
            turn = phases if index % 2 == 0 else phases[::-1]
            for stack, repo, hubspot, deals in turn:
                if stack.name in failed:
                    continue
                result = results[stack.name]
                deal_id = deals[index]
                (event,) = hubspot.call("win", [deal_id])
                request = build_request(stack.port, stack.path, event)
                sent_at = time.monotonic()
                status = send_one(stack.port, request)
                created_at = github.call("wait_title", (repo, title_for(deal_id), 30), timeout=60)
                if status // 100 != 2 or created_at is None:
                    result.note = f"latency sample for deal {deal_id} failed (HTTP {status})"
                    failed.add(stack.name)
                elif index == 0:  # the first after the start: apart (see first_ms)
                    result.first_ms = (created_at - sent_at) * 1000
                else:
                    result.latencies_ms.append((created_at - sent_at) * 1000)
    return results


def load_round(
    stack: Stack, round_no: int, github: FakeProcess, args: argparse.Namespace, result: RoundResult
) -> RoundResult:
    """Throughput of one stack, on a freshly started daemon, a fresh fake HubSpot portal and
    a new repository: N webhooks at concurrency C. Separate from the idle measurement's
    daemon, so the N creates all fall in one daemon's lifetime (syncd's GitHub client holds
    to 5,000 requests an hour per process, see the docs) and no idle work is left behind."""
    warm = args.warm_up
    with _phase(stack, github, f"bench/{stack.name}-r{round_no}-load", args.n + warm, args) as (
        repo,
        hubspot,
        deals,
    ):
        result.startup_seconds = stack.startup_seconds
        assert stack.proc is not None
        pid = stack.proc.pid
        # First a few webhooks one at a time, each waited for: what a daemon loads on first
        # use (syncd: PyGithub, about 0.2 s of CPU) is not part of its pace under load.
        for deal_id in deals[:warm]:
            (event,) = hubspot.call("win", [deal_id])
            send_one(stack.port, build_request(stack.port, stack.path, event))
            github.call("wait_title", (repo, title_for(deal_id), 30), timeout=60)
        timed = deals[warm:]
        events = hubspot.call("win", timed, timeout=600)
        requests = [build_request(stack.port, stack.path, e) for e in events]
        hubspot.call("requests")  # reset the count
        cpu_before, fake_before = cpu_seconds(pid), cpu_seconds(github.pid)
        threads_before = thread_cpu_seconds(pid) if isinstance(stack, SyncdStack) else {}
        switches_before = thread_switches(pid) if threads_before else {}
        started = time.monotonic()
        with _profiled(stack, args.profile, round_no):
            statuses = blast(stack.port, requests, args.c)
            result.acked_seconds = time.monotonic() - started
            result.accepted = sum(1 for s in statuses if s // 100 == 2)
            _drain(github, repo, len(deals), args)
        result.cpu_ms_per_webhook = (cpu_seconds(pid) - cpu_before) * 1000 / args.n
        if threads_before:
            result.thread_cpu = thread_cpu_spent(threads_before, thread_cpu_seconds(pid))
            result.thread_switches = switches_made(switches_before, thread_switches(pid))
        result.fake_github_cpu_ms_per_webhook = (
            (cpu_seconds(github.pid) - fake_before) * 1000 / args.n
        )
        result.rss_mb = rss_mb(pid)
        waited = stack.limiter_waits()
        if waited:
            result.note = f"client-side limiters made calls wait: {waited}"
        if isinstance(stack, SyncdStack):
            result.hubspot_requests_per_1000 = hubspot.call("requests") * 1000 / args.n
        created = github.call("created", repo)
        titles = [t for t, _ in created]
        result.duplicates = len(titles) - len(set(titles))  # the warm-up's included
        result.lost = len({title_for(d) for d in deals} - set(titles))
        timed_titles = {title_for(d) for d in timed}
        result.created = sum(1 for t in titles if t in timed_titles)
        timed_at = [at for t, at in created if t in timed_titles]
        result.seconds = (max(timed_at) - started) if timed_at else 0.0
        if result.lost or result.duplicates:
            print(f"  {stack.name} left work undone: {stack.diagnose()}", flush=True)
            kept = stack.keep_log(
                Path(tempfile.gettempdir()) / f"peer-{stack.name}-r{round_no}-{os.getpid()}.log"
            )
            if kept is not None:
                print(f"  {stack.name}'s log kept in {kept}", flush=True)
    return result


@contextlib.contextmanager
def _profiled(stack: Stack, folder: Path | None, round_no: int) -> Iterator[None]:
    """With `--profile DIR`: py-spy samples the syncd daemon (the thread holding the GIL:
    where its CPU goes) over the load phase, written as
    collapsed stacks to DIR/syncd-rN.txt (py-spy from PyPI; skipped with a note if absent)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if folder is None or not isinstance(stack, SyncdStack) or stack.proc is None:
        yield
        return
    if not Path(spy).exists():
        print("  --profile: py-spy not found (pip install py-spy); not profiled", flush=True)
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"syncd-r{round_no}.txt"
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(stack.proc.pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "--gil",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        print(f"  profile of syncd's load phase: {out}", flush=True)


@contextlib.contextmanager
def _phase(
    stack: Stack, github: FakeProcess, repo: str, deal_count: int, args: argparse.Namespace
) -> Iterator[tuple[str, FakeProcess, list[str]]]:
    """A new repo, a fake HubSpot portal seeded with `deal_count` deals not yet won, and
    the stack started (and gone live) on them; everything stopped on the way out."""
    github.call("add_repo", repo)
    hubspot = FakeProcess(_hubspot_main, args.hubspot_latency)
    try:
        deals = hubspot.call("seed", deal_count, timeout=600)
        stack.start(repo, hubspot.url)
        yield repo, hubspot, deals
    finally:
        try:
            stack.stop()
        finally:
            hubspot.stop()


def _drain(github: FakeProcess, repo: str, expected: int, args: argparse.Namespace) -> None:
    """Wait until `expected` issues exist, or none came for `--stall-seconds`; then a short
    settle, so late duplicates are counted too. Bounded by `--max-wait`."""
    deadline = time.monotonic() + args.max_wait
    last = -1
    while time.monotonic() < deadline:
        count = github.call("wait_count", (repo, expected, args.stall_seconds), timeout=600)
        now = len(github.call("created", repo))
        if count or now == last:
            break
        last = now
    time.sleep(args.settle_seconds)


# -- main ------------------------------------------------------------------------------------


def summary(name: str, results: list[RoundResult]) -> dict[str, float]:
    if not results:
        return {}
    return {
        "per_second": statistics.median(r.per_second for r in results),
        "p50": statistics.median(r.pct(0.5) for r in results),
        "p95": statistics.median(r.pct(0.95) for r in results),
        "cpu": statistics.median(r.cpu_ms_per_webhook for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "lost": sum(r.lost for r in results),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="webhooks per round (throughput)")
    parser.add_argument("--c", type=int, default=32, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--latency-samples",
        type=int,
        default=50,
        help="webhooks sent one at a time for the idle latency (after a first one, shown apart)",
    )
    parser.add_argument(
        "--hubspot-latency",
        type=float,
        default=0.01,
        help="seconds the fake HubSpot waits before each answer",
    )
    parser.add_argument(
        "--github-validate",
        action="store_true",
        help="the fake GitHub validates each request against the OpenAPI "
        "description (costs the fake CPU; off by default)",
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=30,
        help="stop waiting for issues after this long without a new one",
    )
    parser.add_argument(
        "--max-wait", type=float, default=1800, help="longest wait for the issues of one round"
    )
    parser.add_argument("--settle-seconds", type=float, default=2.0)
    parser.add_argument(
        "--warm-up",
        type=int,
        default=1,
        help="webhooks sent one at a time, each waited for, before a load phase's N "
        "(both stacks; what is loaded on first use is not timed)",
    )
    parser.add_argument(
        "--executor-workers",
        type=int,
        default=8,
        help="syncd's [executor] workers (default 8, syncd's default)",
    )
    levels = ["debug", "info", "warning", "error"]
    parser.add_argument(
        "--log-level",
        default="info",
        choices=levels,
        help="syncd's [syncd] log_level (default info, syncd's own default: a line per "
        "processed batch and per action to its log file)",
    )
    parser.add_argument(
        "--also-log-level",
        choices=levels,
        help="measure a second syncd at this log level in the same rounds (shown as "
        "syncd@LEVEL): what the level costs, the machine's swings aside",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample syncd with py-spy over each load phase into DIR",
    )
    parser.add_argument(
        "--also-executor-workers",
        type=int,
        default=None,
        metavar="N",
        help="measure a second syncd with N executor workers in the same rounds (shown as "
        "syncd@wN)",
    )
    parser.add_argument(
        "--also-tree",
        type=Path,
        default=None,
        metavar="DIR",
        help="measure a second syncd run from another checkout (a git worktree of another "
        "commit) in the same rounds (shown as syncd@tree): two versions of the code, the "
        "machine's swings aside",
    )
    parser.add_argument("--no-node-red", action="store_true")
    parser.add_argument(
        "--node-red-fetch",
        action="store_true",
        help="Node-RED's flow reads the deal from the fake HubSpot (one GET) before it "
        "creates the issue, as syncd does: the same HubSpot round trip on both sides",
    )
    parser.add_argument("--no-syncd", action="store_true", help="measure Node-RED only")
    parser.add_argument(
        "--node-red-cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "syncd-bench"
        / "node-red",
    )
    args = parser.parse_args()

    red_js, red_note = (
        (None, "--no-node-red") if args.no_node_red else node_red_install(args.node_red_cache)
    )
    if red_js is None:
        print(f"Node-RED SKIPPED: {red_note}. Only syncd is measured; no ratios.", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="syncd-peer-bench-"))
    github = None
    stacks: list[Stack] = []
    results: dict[str, list[RoundResult]] = {}
    try:
        github = FakeProcess(_github_main, args.github_validate)
        if not args.no_syncd:
            # (executor workers, log level, name): the daemon as asked, and each variant
            # measured beside it in the same rounds
            variants = [(args.executor_workers, args.log_level, "syncd")]
            if args.also_log_level:
                variants.append(
                    (args.executor_workers, args.also_log_level, f"syncd@{args.also_log_level}")
                )
            if args.also_executor_workers:
                variants.append(
                    (
                        args.also_executor_workers,
                        args.log_level,
                        f"syncd@w{args.also_executor_workers}",
                    )
                )
            stacks.extend(
                SyncdStack(github.url, workdir, workers=workers, log_level=level, name=name)
                for workers, level, name in variants
            )
            if args.also_tree:
                stacks.append(
                    SyncdStack(
                        github.url,
                        workdir,
                        workers=args.executor_workers,
                        log_level=args.log_level,
                        name="syncd@tree",
                        tree=args.also_tree.resolve(),
                    )
                )
        if red_js is not None:
            stacks.append(NodeRedStack(red_js, github.url, workdir, fetch=args.node_red_fetch))
        print(
            f"peer benchmark: N={args.n} C={args.c} rounds={args.rounds} "
            f"latency samples={args.latency_samples} hubspot latency="
            f"{args.hubspot_latency * 1000:.0f} ms; Node-RED {red_note}"
            f"{' (its flow fetches the deal)' if args.node_red_fetch else ''}; "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        for round_no in range(1, args.rounds + 1):
            print(f"round {round_no}:", flush=True)
            idle = idle_round(stacks, round_no, github, args)
            # Load phases one stack at a time (they would share the CPUs), in turns: the
            # first in one round goes second in the next, so a drift of the machine's speed
            # over a run does not favour one stack.
            for stack in stacks if round_no % 2 else stacks[::-1]:
                result = load_round(stack, round_no, github, args, idle[stack.name])
                results.setdefault(stack.name, []).append(result)
                print(result.line(), flush=True)
    finally:
        for stack in stacks:
            stack.stop()
        if github is not None:
            github.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    figures = {name: summary(name, rs) for name, rs in results.items()}
    print(f"medians over {args.rounds} round(s), load average now {os.getloadavg()[0]:.2f}:")
    for name, f in figures.items():
        print(
            f"  {name:8} {f['per_second']:7.1f} issues/s  C=1 p50="
            f"{f['p50']:.1f} ms p95={f['p95']:.1f} ms  cpu="
            f"{f['cpu']:.2f} ms/webhook  duplicates={f['duplicates']:.0f} "
            f"lost={f['lost']:.0f}"
        )
    r = figures.get("node-red") or {}
    for name in [n for n in figures if n.startswith("syncd") and r]:
        s = figures[name]
        print(
            f"  ratio {name}/node-red: throughput {s['per_second'] / r['per_second']:.2f}x  "
            f"p50 latency {s['p50'] / r['p50']:.2f}x  p95 latency {s['p95'] / r['p95']:.2f}x  "
            f"cpu/webhook {s['cpu'] / r['cpu']:.2f}x"
        )
        # Each round's ratio too: the machine's speed moves between rounds, and a round's
        # stacks ran minutes apart at most.
        ratios = [
            a.per_second / b.per_second
            for a, b in zip(results[name], results["node-red"], strict=True)
            if b.per_second
        ]
        print("    throughput ratio by round: " + " ".join(f"{x:.2f}x" for x in ratios))
        paired = [
            a.pct(0.5) / b.pct(0.5)
            for a, b in zip(results[name], results["node-red"], strict=True)
            if b.latencies_ms and a.latencies_ms
        ]
        print("    idle p50 ratio by round (paired): " + " ".join(f"{x:.2f}x" for x in paired))
    clean = all(x.duplicates == 0 and x.lost == 0 for rs in results.values() for x in rs)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
