"""Hypothesis on every webhook receiver's verify and parse (issue 14 items 4 and 5): any
headers (non-ASCII included) and any body (random, truncated, huge, too deep, validly signed
but malformed) get a 4xx or are accepted; an accepted delivery always parses. Never an
unexpected exception, which the HTTP layer would answer with a 500."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.clock import FakeClock
from syncd.connector import Connector
from syncd.errors import WebhookRejected
from tests.receiver_cases import (
    INVALID_KINDS,
    KNOWN_HEADERS,
    RECEIVERS,
    invalid_delivery,
    make_receiver,
    parse,
    request,
    sign,
    valid_delivery,
)

CLOCK = FakeClock()
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

latin1_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=120)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | latin1_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(latin1_text, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def receivers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Connector]:
    path = str(tmp_path_factory.mktemp("localdb") / "remote.sqlite3")
    return {name: make_receiver(name, CLOCK, localdb_path=path) for name in RECEIVERS}


def outcome(connector: Connector, headers: dict[str, str], body: bytes) -> int:
    """The HTTP status the receiver leads to: 202 (accepted, and the stored delivery parses)
    or the 4xx of its refusal. Anything else raises, and fails the test."""
    req = request(connector.name, headers, body, CLOCK)
    try:
        connector.verify_webhook(req)
    except WebhookRejected as refused:
        assert 400 <= refused.status < 500, refused.reason
        return refused.status
    parse(connector, req)  # what the inbox will do with the stored row: must not raise
    return 202


@st.composite
def bodies(draw: st.DrawFn, name: str) -> bytes:
    _, valid = valid_delivery(name, draw(st.integers(0, 10**6)), CLOCK)
    return draw(
        st.one_of(
            st.binary(max_size=600),
            json_values.map(lambda v: json.dumps(v).encode()),
            st.integers(0, len(valid)).map(lambda cut: valid[:cut]),  # truncated
            st.just(valid + b" " * 1_100_000),  # huge (past the 1 MiB default limit)
            st.integers(1, 300_000).map(lambda d: b"[" * d + b"]" * d),  # deep
            st.just(valid),
        )
    )


@pytest.mark.parametrize("name", RECEIVERS)
def test_any_headers_and_body_get_4xx_or_parse(receivers: dict[str, Connector], name: str) -> None:
    @FUZZ
    @given(
        headers=st.dictionaries(
            st.sampled_from([*KNOWN_HEADERS[name], "content-type"]), latin1_text, max_size=6
        ),
        body=bodies(name),
        signed=st.booleans(),
    )
    def check(headers: dict[str, str], body: bytes, signed: bool) -> None:
        if signed:  # a valid signature over whatever the body is
            headers = sign(name, headers, body, CLOCK)
        outcome(receivers[name], headers, body)

    check()


@pytest.mark.parametrize("name", RECEIVERS)
def test_invalid_deliveries_are_refused_with_4xx(
    receivers: dict[str, Connector], name: str
) -> None:
    """Bad, missing or non-ASCII signatures; truncated, wrongly typed, non-UTF-8, scalar or
    too deep bodies under a valid signature; stale HubSpot timestamps: all refused."""

    @FUZZ
    @given(seed=st.integers(0, 2**32), kind=st.sampled_from(INVALID_KINDS), n=st.integers(0, 10**6))
    def check(seed: int, kind: str, n: int) -> None:
        if (kind == "stale" and name != "hubspot") or (kind == "wrong_type" and name == "github"):
            return
        headers, body, _ = invalid_delivery(name, n, random.Random(seed), CLOCK, kind)
        status = outcome(receivers[name], headers, body)
        assert 400 <= status < 500, f"{kind} delivery accepted"

    check()


@pytest.mark.parametrize("name", RECEIVERS)
def test_valid_deliveries_are_accepted(receivers: dict[str, Connector], name: str) -> None:
    for n in range(20):
        headers, body = valid_delivery(name, n, CLOCK)
        assert outcome(receivers[name], headers, body) == 202
