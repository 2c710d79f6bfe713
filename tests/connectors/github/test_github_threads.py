"""Actions from several executor workers at once (issue 17): each create sends its own
request and gets its own answer. PyGithub keeps one connection object per client whose
`request()` stores the request for `getresponse()` to send, so two threads sharing it could
send one body twice and the other never: a duplicate issue and a lost one (seen in
benchmarks/peer.py at C=32)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.github import GitHubConnector
from connectors.github.connector import CreateIssueParams
from syncd.model import ActionContext
from syncd_sandbox.github.fake import FakeGitHub

REPO = "acme/infrastructure"
THREADS = 8
EACH = 40


@pytest.fixture
def busy_threads() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so that a race shows in one run."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_concurrent_creates_each_make_their_own_issue(
    busy_threads: None, make_connector: Any, fake: FakeGitHub
) -> None:
    connector: GitHubConnector = make_connector(write_limit=1_000_000)
    fake.write_limit = 1_000_000
    spec = connector.actions["create_issue"]
    mismatched: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(EACH):
                title = f"issue {t}-{i}"
                ctx = ActionContext(key=f"rule:{t}-{i}", rule_id="rule", attempt=1)
                result = spec.perform(connector, CreateIssueParams(repo=REPO, title=title), ctx)
                number = int(str(result.external_id).rsplit("#", 1)[-1])
                created = next(i for i in fake.issues(REPO) if i.number == number)
                if created.title != title:
                    mismatched.append((title, created.title))
        except BaseException as exc:  # reported below, with the others' results
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    titles = sorted(i.title for i in fake.issues(REPO))
    assert titles == sorted(f"issue {t}-{i}" for t in range(THREADS) for i in range(EACH))
    assert mismatched == []
