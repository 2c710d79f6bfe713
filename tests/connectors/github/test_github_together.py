"""Creates sent together (`create_issue`'s `perform_together`, issue 17): one thread keeps up
to a window of POSTs in flight, each on a keep-alive connection of its own, and each answer
is its own action's result."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from connectors.github import GitHubConnector
from syncd.errors import PermanentError, TransientError, UncertainError
from syncd.governor import BEFORE_WAIT
from syncd.model import ActionContext, ActionResult
from syncd_sandbox import fakeserver
from syncd_sandbox.fakeserver import FakeRequest, FakeResponse
from syncd_sandbox.github.fake import FakeGitHub

REPO = "acme/infrastructure"


def create_together(
    connector: GitHubConnector, titles: list[str], window: int = 4, **extra: Any
) -> list[ActionResult | Exception]:
    spec = connector.actions["create_issue"]
    assert spec.perform_together is not None
    params = [spec.params.model_validate({"repo": REPO, "title": t, **extra}) for t in titles]
    ctxs = [ActionContext(key=f"k-{t}", rule_id="r", attempt=1) for t in titles]
    return spec.perform_together(connector, params, ctxs, window)


def created(fake: FakeGitHub) -> dict[str, int]:
    return {issue.title: issue.number for issue in fake.issues(REPO)}


class InFlight:
    """An after-hook that holds each POST's answer a moment and records how many POSTs the
    fake was answering at once."""

    def __init__(self, hold: float = 0.2) -> None:
        self.hold = hold
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if request.method != "POST":
            return response
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return response


def test_creates_go_together_on_connections_of_their_own_and_each_gets_its_issue(
    monkeypatch: pytest.MonkeyPatch, fake: FakeGitHub, connector: GitHubConnector
) -> None:
    accepted: list[Any] = []
    setup = fakeserver._Handler.setup

    def counted(self: Any) -> None:
        accepted.append(self.client_address)
        setup(self)

    monkeypatch.setattr(fakeserver._Handler, "setup", counted)
    held = InFlight()
    fake.app.after.append(held)
    results = create_together(connector, ["a", "b", "c", "d"])
    assert held.most == 4  # all four in flight at once, not one after another
    numbers = created(fake)
    assert sorted(numbers) == ["a", "b", "c", "d"]  # each exactly once
    assert [r.external_id for r in results if isinstance(r, ActionResult)] == [
        f"{REPO}#{numbers[t]}" for t in ("a", "b", "c", "d")
    ]
    assert len(set(accepted)) == 4
    create_together(connector, ["e", "f"])  # the thread's connections are kept
    assert len(set(accepted)) == 4
    assert connector.governor.sent == 6 and connector.governor.in_flight == 0


def test_a_window_smaller_than_the_group_keeps_that_many_in_flight(
    fake: FakeGitHub, connector: GitHubConnector
) -> None:
    held = InFlight(hold=0.1)
    fake.app.after.append(held)
    titles = [f"t{n}" for n in range(7)]
    results = create_together(connector, titles, window=2)
    assert held.most == 2
    numbers = created(fake)
    assert sorted(numbers) == sorted(titles)
    assert [r.external_id for r in results if isinstance(r, ActionResult)] == [
        f"{REPO}#{numbers[t]}" for t in titles
    ]
    assert connector.governor.in_flight == 0


def test_each_create_has_its_own_outcome(fake: FakeGitHub, connector: GitHubConnector) -> None:
    def answer(request: FakeRequest, response: FakeResponse) -> FakeResponse:
        title = request.json()["title"] if request.method == "POST" else ""
        if title == "refused":
            return FakeResponse(422, {"message": "Validation Failed"})
        if title == "made-then-502":
            return FakeResponse(502, {"message": "Server Error"})
        return response

    fake.app.after.append(answer)
    results = create_together(connector, ["first", "refused", "made-then-502", "last"])
    first, refused, uncertain, last = results
    numbers = created(fake)
    assert isinstance(first, ActionResult) and first.external_id == f"{REPO}#{numbers['first']}"
    assert isinstance(refused, PermanentError) and "422" in str(refused)
    assert isinstance(uncertain, UncertainError)  # made, but the answer says nothing sure
    assert isinstance(last, ActionResult) and last.external_id == f"{REPO}#{numbers['last']}"
    assert connector.governor.in_flight == 0


def test_a_failed_label_check_fails_only_its_own_create(
    fake: FakeGitHub, make_connector: Any
) -> None:
    fake.add_label(REPO, "sales")
    connector = make_connector(create_missing_labels=False)
    spec = connector.actions["create_issue"]
    params = [
        spec.params.model_validate({"repo": REPO, "title": "ok", "labels": ["sales"]}),
        spec.params.model_validate({"repo": REPO, "title": "bad", "labels": ["nosuch"]}),
    ]
    ctxs = [ActionContext(key=f"k{n}", rule_id="r", attempt=1) for n in range(2)]
    ok, bad = spec.perform_together(connector, params, ctxs, 4)
    assert isinstance(ok, ActionResult)
    assert isinstance(bad, PermanentError) and "nosuch" in str(bad)
    assert sorted(created(fake)) == ["ok"]


def _closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


def test_creates_that_could_not_connect_were_never_sent(
    fake: FakeGitHub, make_connector: Any
) -> None:
    connector = make_connector(base_url=f"http://127.0.0.1:{_closed_port()}")
    results = create_together(connector, ["a", "b"])
    for result in results:
        assert isinstance(result, TransientError) and not isinstance(result, UncertainError)
    assert connector.governor.in_flight == 0


def test_creates_whose_answers_come_too_late_are_uncertain(
    fake: FakeGitHub, make_connector: Any
) -> None:
    fake.app.after.append(InFlight(hold=1.5))  # the connector's timeout is 1 s
    connector = make_connector(timeout_seconds=1)
    results = create_together(connector, ["a", "b", "c"])
    assert all(isinstance(r, UncertainError) for r in results), results
    assert sorted(created(fake)) == ["a", "b", "c"]  # made: the finder will find them
    assert connector.governor.in_flight == 0


def test_answers_in_flight_are_read_before_waiting_for_the_governors_turn(
    fake: FakeGitHub, make_connector: Any, clock: Any
) -> None:
    # 2 writes a minute: the third create must wait; the first two answers are read (and no
    # longer count as in flight) before it does, not left waiting with it.
    connector = make_connector(write_limit=2, rate_margin=1.0)
    in_flight_at_wait: list[int] = []
    token = BEFORE_WAIT.set(lambda seconds: in_flight_at_wait.append(connector.governor.in_flight))
    try:
        results = create_together(connector, ["a", "b", "c"], window=4)
    finally:
        BEFORE_WAIT.reset(token)
    assert in_flight_at_wait and set(in_flight_at_wait) == {0}
    assert all(isinstance(r, ActionResult) for r in results)
    assert sorted(created(fake)) == ["a", "b", "c"]
