"""RetryPolicy and backoff_seconds: exponential backoff with jitter, capped, never sooner than
Retry-After."""

from __future__ import annotations

from syncd.retry import RetryPolicy, backoff_seconds


def test_delay_doubles_from_the_base_without_jitter() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=3600, jitter_seconds=0)
    assert [policy.delay(n) for n in range(1, 6)] == [10, 20, 40, 80, 160]


def test_jitter_stays_within_its_bound() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=3600, jitter_seconds=5)
    for attempt in range(1, 6):
        floor = 10 * 2 ** (attempt - 1)
        for _ in range(20):
            assert floor <= policy.delay(attempt) <= floor + 5


def test_delay_grows_with_attempts_despite_jitter() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=10_000, jitter_seconds=5)
    delays = [policy.delay(n) for n in range(1, 8)]
    assert delays == sorted(delays)
    assert delays[-1] > 10 * delays[0]


def test_delay_is_capped() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=300, jitter_seconds=5)
    assert [policy.delay(n) for n in (6, 7, 20, 200, 5000)] == [300] * 5


def test_attempt_zero_or_less_counts_as_the_first() -> None:
    policy = RetryPolicy(base_seconds=10, jitter_seconds=0)
    assert policy.delay(0) == policy.delay(-3) == policy.delay(1) == 10


def test_retry_after_is_a_lower_bound() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=3600, jitter_seconds=0)
    assert policy.delay(1, retry_after=120) == 120
    assert policy.delay(5, retry_after=3) == 160  # the backoff is longer: keep it
    assert policy.delay(1, retry_after=7200) == 7200  # the server's word beats the cap
    assert policy.delay(1, retry_after=None) == 10


def test_exhausted_at_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (0, 1, 2, 3, 4)] == [False, False, False, True, True]


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_seconds, policy.max_seconds) == (8, 10.0, 3600.0)
    assert not policy.exhausted(7)
    assert policy.exhausted(8)


def test_backoff_is_a_pure_function_of_its_arguments() -> None:
    assert [backoff_seconds(n, base=10, cap=3600, jitter=2.5) for n in (1, 2, 3)] == [
        12.5,
        22.5,
        42.5,
    ]
    assert backoff_seconds(3, base=10, cap=3600, jitter=2.5) == backoff_seconds(
        3, base=10, cap=3600, jitter=2.5
    )


def test_backoff_caps_the_jitter_too_and_survives_huge_attempts() -> None:
    assert backoff_seconds(9, base=10, cap=300, jitter=4) == 300
    assert backoff_seconds(10**9, base=10, cap=300) == 300


def test_backoff_never_sooner_than_retry_after() -> None:
    assert backoff_seconds(1, base=10, cap=60, retry_after=600) == 600
    assert backoff_seconds(4, base=10, cap=3600, retry_after=5) == 80
