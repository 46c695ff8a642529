"""rpm and tpm on both backends: exact at the edges, refilling continuously, settled from real usage."""

from __future__ import annotations

from typing import Any

from limits_helpers import FakeClock, RunLimiter

from llmswitch.limits import Limiter, Refusal, Reservation, SubjectLimits, Window, rate_limit_headers


def test_rpm_admits_exactly_the_limit_then_names_the_wait(run_limiter: RunLimiter, clock: FakeClock) -> None:
    key = [SubjectLimits("key:a", rpm_limit=3)]

    async def body(limiter: Limiter) -> None:
        remaining = [(await limiter.check_and_consume(key)).remaining for _ in range(3)]
        assert remaining == [2, 1, 0]
        refused = await limiter.check_and_consume(key)
        assert not refused.allowed
        assert refused.retry_after_s == 20.0
        assert (refused.limit, refused.remaining, refused.reset_s) == (3, 0, 60.0)
        assert refused.which_limit is not None and str(refused.which_limit) == "rpm_limit of key:a"
        clock.advance(20.0 - 1e-6)
        assert not (await limiter.check_and_consume(key)).allowed  # a microsecond early
        clock.advance(1e-6)
        admitted = await limiter.check_and_consume(key)
        assert admitted.allowed and admitted.remaining == 0

    run_limiter(body)


def test_capacity_comes_back_continuously_not_at_a_window_boundary(run_limiter: RunLimiter, clock: FakeClock) -> None:
    key = [SubjectLimits("key:a", rpm_limit=60)]

    async def body(limiter: Limiter) -> None:
        for _ in range(60):
            assert (await limiter.check_and_consume(key)).allowed
        clock.advance(30)  # half a minute: half of the requests are available again
        results = [(await limiter.check_and_consume(key)).allowed for _ in range(31)]
        assert results == [True] * 30 + [False]

    run_limiter(body)


def test_tpm_counts_the_estimate_and_refuses_what_does_not_fit(run_limiter: RunLimiter, clock: FakeClock) -> None:
    key = [SubjectLimits("key:a", tpm_limit=1000)]

    async def body(limiter: Limiter) -> None:
        first = await limiter.check_and_consume(key, 600)
        assert first.allowed and first.tokens == Window(1000, 400, 36.0)
        refused = await limiter.check_and_consume(key, 401)
        assert not refused.allowed
        assert refused.retry_after_s == 0.06  # one token drains every 60 ms
        assert (await limiter.check_and_consume(key, 400)).allowed  # exactly what is left still fits

    run_limiter(body)


def test_settling_tokens_gives_back_the_overestimate(run_limiter: RunLimiter) -> None:
    key = [SubjectLimits("key:a", tpm_limit=1000)]

    async def body(limiter: Limiter) -> None:
        assert (await limiter.check_and_consume(key, 900)).allowed
        assert not (await limiter.check_and_consume(key, 500)).allowed
        await limiter.settle_tokens("key:a", estimate=900, actual=100)
        decision = await limiter.check_and_consume(key, 500)
        assert decision.allowed and decision.tokens is not None and decision.tokens.remaining == 400

    run_limiter(body)


def test_settling_more_tokens_than_estimated_makes_later_requests_wait(run_limiter: RunLimiter) -> None:
    key = [SubjectLimits("key:a", tpm_limit=1000)]

    async def body(limiter: Limiter) -> None:
        assert (await limiter.check_and_consume(key, 100)).allowed
        await limiter.settle_tokens("key:a", estimate=100, actual=1600)  # the real usage overran the limit
        refused = await limiter.check_and_consume(key, 1)
        # 1600 tokens owed: 601 must drain before one more fits
        assert not refused.allowed and refused.retry_after_s == 36.06

    run_limiter(body)


def test_a_request_bigger_than_the_whole_tpm_limit_never_fits(run_limiter: RunLimiter) -> None:
    key = [SubjectLimits("key:a", tpm_limit=1000)]

    async def body(limiter: Limiter) -> None:
        result = await limiter.admit(key, tokens=1001)
        assert isinstance(result, Refusal)
        assert result.retry_after_s is None and result.requested == 1001
        assert result.message.endswith("needs about 1001 tokens, more than the whole tpm_limit=1000 per minute")
        assert "retry-after" not in rate_limit_headers(result.decision)

    run_limiter(body)


def test_settling_a_reservation_moves_its_tokens(run_limiter: RunLimiter) -> None:
    key = [SubjectLimits("key:a", rpm_limit=10, tpm_limit=1000)]

    async def body(limiter: Limiter) -> None:
        res = await limiter.admit(key, tokens=800)
        assert isinstance(res, Reservation)
        await limiter.settle(res, 0.0, actual_tokens=300)
        after = await limiter.check_and_consume(key, 0)
        assert after.tokens == Window(1000, 700, 18.0)
        other = await limiter.admit(key, tokens=500)
        assert isinstance(other, Reservation)
        await limiter.release(other)  # a failed call used no tokens
        assert (await limiter.check_and_consume(key, 0)).tokens == Window(1000, 700, 18.0)

    run_limiter(body)


def test_headers_report_the_tightest_subject_and_the_refusal_the_longest_wait(run_limiter: RunLimiter) -> None:
    key = SubjectLimits("key:a", rpm_limit=100, tpm_limit=10_000)
    team = SubjectLimits("team:t", rpm_limit=2, tpm_limit=1_000_000)

    async def body(limiter: Limiter) -> None:
        decision = await limiter.check_and_consume([key, team], 100)
        assert decision.requests == Window(2, 1, 30.0)  # the team's rpm is the tighter
        assert decision.tokens == Window(10_000, 9_900, 0.6)  # the key's tpm is
        headers = rate_limit_headers(decision)
        assert headers["x-ratelimit-remaining-requests"] == "1"
        assert headers["x-ratelimit-limit-tokens"] == "10000"
        # the team's 2 rpm is closer to refusing (1 of 2 left) than the key's tokens (99%)
        assert decision.which_limit is not None and decision.which_limit.subject == "team:t"
        await limiter.check_and_consume([key, team], 100)
        refused = await limiter.check_and_consume([key, team], 9_900)
        # both refuse: the key's tokens need 0.6 s (one request's worth drained), the team's rpm 30 s
        assert not refused.allowed and refused.retry_after_s == 30.0
        assert refused.which_limit is not None and str(refused.which_limit) == "rpm_limit of team:t"

    run_limiter(body)


def test_a_refused_request_consumes_nothing_on_any_subject(run_limiter: RunLimiter) -> None:
    key = SubjectLimits("key:a", rpm_limit=10)
    team = SubjectLimits("team:t", rpm_limit=1)

    async def body(limiter: Limiter) -> None:
        assert (await limiter.check_and_consume([key, team])).allowed
        for _ in range(5):
            assert not (await limiter.check_and_consume([key, team])).allowed
        # the key was charged only for the one admitted request
        assert (await limiter.check_and_consume([key])).requests == Window(10, 8, 12.0)

    run_limiter(body)


def test_check_and_consume_applies_only_rate_limits(run_limiter: RunLimiter) -> None:
    key = SubjectLimits("key:a", rpm_limit=5, max_parallel_requests=0, max_budget=0.0)

    async def body(limiter: Limiter) -> None:
        assert (await limiter.check_and_consume([key])).allowed
        assert await limiter.budget("key:a") is None  # no budget state was started either
        refused = await limiter.admit([key])
        assert isinstance(refused, Refusal) and refused.which_limit.kind == "max_budget"

    run_limiter(body)


def test_a_zero_limit_blocks_for_good(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        decision = await limiter.check_and_consume([SubjectLimits("key:a", rpm_limit=0)])
        assert not decision.allowed and decision.retry_after_s is None

    run_limiter(body)


def test_no_limits_admit_without_headers(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> Any:
        res = await limiter.admit([SubjectLimits("key:a")], tokens=10, cost=1.0)
        assert isinstance(res, Reservation) and res.decision.requests is None
        assert rate_limit_headers(res.decision) == {}
        await limiter.settle(res, 1.0, actual_tokens=5)

    run_limiter(body)


def test_refusal_message_names_the_limit_and_wait(run_limiter: RunLimiter) -> None:
    key = [SubjectLimits("key:a", rpm_limit=1)]

    async def body(limiter: Limiter) -> None:
        await limiter.admit(key)
        refused = await limiter.admit(key)
        assert isinstance(refused, Refusal)
        assert refused.message == "Rate limit reached for key:a: rpm_limit=1 per minute; retry in 60 s"
        assert (refused.limit, refused.used, refused.requested) == (1, 1, 1)

    run_limiter(body)
