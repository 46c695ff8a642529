"""Retry policy: which failures are transient, full-jitter backoff, and the provider's own hints."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from llmswitch.router.retry import RetryPolicy, backoff, is_transient


def status_error(cls: type[APIStatusError], status: int, **kw: object) -> APIStatusError:
    return cls("x", status_code=status, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (status_error(RateLimitError, 429), True),
        (status_error(InternalServerError, 500), True),
        (status_error(InternalServerError, 502), True),
        (status_error(ServiceUnavailableError, 529), True),
        (status_error(APIStatusError, 408), True),
        (status_error(APIStatusError, 409), True),
        (APIConnectionError("reset"), True),
        (APITimeoutError("slow"), True),
        (status_error(BadRequestError, 400), False),
        (status_error(ContextWindowExceededError, 400), False),
        (status_error(AuthenticationError, 401), False),
        (status_error(PermissionDeniedError, 403), False),
        (status_error(NotFoundError, 404), False),
        (APIResponseValidationError("garbage"), False),
        (ConfigError("bad model"), False),
        (ValueError("not ours"), False),
        (TimeoutError(), False),  # only our own errors: transport wraps the built-ins first
        # the provider's x-should-retry overrides the class
        (status_error(RateLimitError, 429, should_retry=False), False),
        (status_error(BadRequestError, 400, should_retry=True), True),
        (status_error(InternalServerError, 500, should_retry=None), True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


@settings(deadline=None)
@given(st.integers(0, 12), st.floats(0.01, 5), st.floats(0.01, 60), st.floats(0, 1, exclude_max=True))
def test_backoff_is_a_uniform_draw_below_the_capped_exponential(
    attempt: int, base: float, cap: float, u: float
) -> None:
    ceiling = min(cap, base * 2**attempt)
    assert backoff(attempt, base, cap, rng=lambda: u) == pytest.approx(u * ceiling)
    assert 0 <= backoff(attempt, base, cap, rng=lambda: u) <= ceiling


def test_backoff_uses_full_jitter() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        draws = [backoff(attempt, 0.5, 8.0, rng.random) for _ in range(2000)]
        assert all(0 <= d <= ceiling for d in draws)
        # full jitter spreads over the whole range: near zero and near the ceiling both happen
        assert min(draws) < 0.02 * ceiling
        assert max(draws) > 0.98 * ceiling
        assert sum(draws) / len(draws) == pytest.approx(ceiling / 2, rel=0.06)


def test_policy_delay_without_a_hint_is_backoff_with_the_policy_rng() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, rng=lambda: 1.0)
    err = status_error(InternalServerError, 500)
    assert [policy.delay(err, a) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert RetryPolicy(rng=lambda: 0.0).delay(err, 3) == 0.0


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [(3.0, 3.0), (0.25, 0.25), (59.0, 59.0), (60.0, 60.0), (3600.0, 60.0), (0.0, 0.5), (None, 0.5), (-1.0, 0.5)],
)
def test_retry_after_wins_and_is_capped(retry_after: float | None, delay: float) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, max_retry_after=60.0, rng=lambda: 1.0)
    err = status_error(RateLimitError, 429, retry_after=retry_after)
    # attempt 5 would back off for 8 s: a provider's own hint replaces that, even when it is longer
    assert policy.delay(err, 0) == delay
    if retry_after and retry_after > 0:
        assert policy.delay(err, 5) == min(retry_after, 60.0)


def test_connection_errors_have_no_retry_after_and_back_off() -> None:
    policy = RetryPolicy(base_delay=1.0, rng=lambda: 0.5)
    assert policy.delay(APIConnectionError("reset"), 1) == 1.0


@pytest.mark.parametrize("num_retries", [0, 1, 3])
def test_should_retry_respects_num_retries(num_retries: int) -> None:
    policy = RetryPolicy(num_retries=num_retries)
    err = status_error(RateLimitError, 429)
    assert [policy.should_retry(err, a) for a in range(5)] == [a < num_retries for a in range(5)]


def test_should_retry_respects_the_class_and_x_should_retry() -> None:
    policy = RetryPolicy(num_retries=3)
    assert not policy.should_retry(status_error(BadRequestError, 400), 0)
    assert policy.should_retry(status_error(BadRequestError, 400, should_retry=True), 0)
    assert not policy.should_retry(status_error(ServiceUnavailableError, 503, should_retry=False), 0)
    assert not policy.should_retry(status_error(BadRequestError, 400, should_retry=True), 3)


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.num_retries, policy.base_delay, policy.max_delay, policy.max_retry_after) == (2, 0.5, 8.0, 60.0)
