"""The `harness` fixture: every contract test runs once per connector."""

from __future__ import annotations

import pytest

from tests.contract.harnesses import HARNESSES, Harness


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Harness:
    return HARNESSES[request.param](request)
