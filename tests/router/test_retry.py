"""Retry policy: which failures are transient, full-jitter backoff, and the provider's own hints."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from llmswitch.router.retry import (
    RetryPolicy,
    backoff,
    classify,
    error_class,
    is_transient,
    parse_duration,
    retry_after_of,
)


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


# ---------------------------------------------------------------- the provider's wait, in every form


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("12ms", 0.012),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        ("250us", 0.00025),
        ("2", 2.0),
        ("0.25", 0.25),
        (" 7s ", 7.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("5 s", None),
        ("1s2", None),
        ("-1", 0.0),
    ],
)
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_of_prefers_the_errors_own_value() -> None:
    err = status_error(RateLimitError, 429, retry_after=3.0, headers={"x-ratelimit-reset-requests": "9s"})
    assert retry_after_of(err) == 3.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        # the exhausted limit's reset wins, even when the other resets sooner
        (
            {
                "x-ratelimit-reset-requests": "6m0s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "12ms",
                "x-ratelimit-remaining-tokens": "4000",
            },
            360.0,
        ),
        (
            {
                "x-ratelimit-reset-requests": "6m0s",
                "x-ratelimit-remaining-requests": "12",
                "x-ratelimit-reset-tokens": "12ms",
                "x-ratelimit-remaining-tokens": "0",
            },
            0.012,
        ),
        # nothing says which ran out: the soonest reset
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}, 1.0),
        ({"x-ratelimit-reset-tokens": "20ms"}, 0.02),
        ({"x-ratelimit-reset-tokens": "garbage"}, None),
        ({"content-type": "application/json"}, None),
        ({}, None),
    ],
)
def test_retry_after_of_reads_openai_reset_headers(headers: dict[str, str], seconds: float | None) -> None:
    err = status_error(RateLimitError, 429, headers=headers)
    assert retry_after_of(err) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_of_reads_anthropic_reset_moments() -> None:
    now = 1_750_000_000.0
    when = datetime.fromtimestamp(now + 42, tz=UTC).isoformat().replace("+00:00", "Z")
    err = status_error(
        RateLimitError,
        429,
        headers={"anthropic-ratelimit-requests-reset": when, "anthropic-ratelimit-requests-remaining": "0"},
    )
    assert retry_after_of(err, now=now) == pytest.approx(42.0)


def test_connection_errors_have_no_provider_wait() -> None:
    assert retry_after_of(APIConnectionError("reset")) is None
    assert retry_after_of(ValueError("x")) is None


def test_policy_delay_honours_the_reset_headers() -> None:
    policy = RetryPolicy(rng=lambda: 1.0)
    err = status_error(RateLimitError, 429, headers={"x-ratelimit-reset-requests": "2s"})
    assert policy.delay(err, 4) == 2.0


# ---------------------------------------------------------------- what the router does about a failure


@pytest.mark.parametrize(
    ("exc", "action", "klass"),
    [
        (status_error(RateLimitError, 429), "failover", "RateLimitError"),
        (status_error(AuthenticationError, 401), "failover", "AuthenticationError"),
        (status_error(PermissionDeniedError, 403), "failover", "AuthenticationError"),
        (NotFoundError("no such model", status_code=404, provider="openai"), "failover", "BadRequestError"),
        (NotFoundError("no such group", status_code=404, provider="llmswitch"), "fail", "BadRequestError"),
        (status_error(InternalServerError, 500), "retry", "InternalServerError"),
        (status_error(ServiceUnavailableError, 529), "retry", "InternalServerError"),
        (status_error(APIStatusError, 408), "retry", "TimeoutError"),
        (APIConnectionError("reset"), "retry", "InternalServerError"),
        (APITimeoutError("slow"), "retry", "TimeoutError"),
        (status_error(BadRequestError, 400), "fail", "BadRequestError"),
        (status_error(ContextWindowExceededError, 400), "fail", "BadRequestError"),
        (status_error(ContentPolicyViolationError, 400), "fail", "ContentPolicyViolationError"),
        (APIResponseValidationError("garbage"), "fail", "InternalServerError"),
        # the provider's x-should-retry: false keeps a 500 from being retried where it failed, not elsewhere
        (status_error(InternalServerError, 500, should_retry=False), "failover", "InternalServerError"),
        (status_error(BadRequestError, 400, should_retry=True), "retry", "BadRequestError"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_classify_and_error_class(exc: APIError, action: str, klass: str) -> None:
    assert classify(exc) == action
    assert error_class(exc) == klass


def test_per_class_limits_and_explicit_classes() -> None:
    policy = RetryPolicy(num_retries=1, per_class={"RateLimitErrorRetries": 4, "BadRequestErrorRetries": 2})
    assert policy.limit(status_error(RateLimitError, 429)) == 4
    assert policy.limit(status_error(InternalServerError, 500)) == 1
    # a class named in the policy is retried even though it is not transient (as LiteLLM does)
    bad = status_error(BadRequestError, 400)
    assert policy.explicit(bad)
    assert [policy.should_retry(bad, a) for a in range(3)] == [True, True, False]
    assert not RetryPolicy().explicit(bad)
    assert not RetryPolicy(per_class={"BadRequestErrorRetries": 0}).explicit(bad)
