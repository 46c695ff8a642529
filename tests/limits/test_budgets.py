"""Budgets on both backends: reserve, settle, release, periods, lease expiry, seeding from the store."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from limits_helpers import T0, FakeClock, RunLimiter

from llmswitch import ir
from llmswitch.cost import Price, cost_decimal, cost_of, per_million
from llmswitch.limits import BudgetPeriod, BudgetState, Limiter, Refusal, Reservation, SubjectLimits
from llmswitch.limits.memory import MemoryLimiter

NOW = datetime.fromtimestamp(T0, UTC)


def test_reserve_settle_release(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        res = await limiter.reserve("key:a", 0.30, max_budget=1.0)
        assert isinstance(res, Reservation)
        assert res.budgets == (BudgetState("key:a", 1.0, 0.0, 0.30, 0),)
        failed = await limiter.reserve("key:a", 0.50, max_budget=1.0)
        assert isinstance(failed, Reservation)
        await limiter.release(failed)  # the call failed: nothing charged
        await limiter.settle(res, 0.12)  # the real cost replaces the estimate
        assert await limiter.budget("key:a") == BudgetState("key:a", None, 0.12, 0.0, 0)

    run_limiter(body)


def test_a_budget_admits_while_not_exhausted_counting_requests_in_flight(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        a = await limiter.reserve("key:a", 0.6, max_budget=1.0)
        b = await limiter.reserve("key:a", 0.6, max_budget=1.0)  # 0.6 < 1.0: admitted, may end at 1.2
        c = await limiter.reserve("key:a", 0.01, max_budget=1.0)  # 1.2 in flight: exhausted
        assert isinstance(a, Reservation) and isinstance(b, Reservation)
        assert isinstance(c, Refusal)
        assert (c.limit, c.used, c.requested) == (1.0, 1.2, 0.01)
        await limiter.release(b)
        assert isinstance(await limiter.reserve("key:a", 0.01, max_budget=1.0), Reservation)

    run_limiter(body)


def test_the_refusal_names_subject_max_spent_and_reset(run_limiter: RunLimiter) -> None:
    period = BudgetPeriod("30d", reset_at=NOW + timedelta(days=3))

    async def body(limiter: Limiter) -> None:
        res = await limiter.reserve("key:a", 2.0, max_budget=2.5, period=period)
        assert isinstance(res, Reservation)
        await limiter.settle(res, 2.75)
        refused = await limiter.reserve("key:a", 0.1, max_budget=2.5, period=period)
        assert isinstance(refused, Refusal)
        assert refused.budget is not None
        assert (refused.budget.subject, refused.budget.spent, refused.budget.reset_at) == (
            "key:a", 2.75, NOW + timedelta(days=3),
        )  # fmt: skip
        assert refused.retry_after_s == 3 * 86400
        assert refused.message == (
            "Budget has been exceeded! key:a: current cost 2.75, max_budget 2.5; resets at 2025-06-18T15:06:40+00:00"
        )

    run_limiter(body)


def test_spend_resets_when_the_period_ends(run_limiter: RunLimiter, clock: FakeClock) -> None:
    period = BudgetPeriod("1d", reset_at=NOW + timedelta(hours=1))

    async def body(limiter: Limiter) -> None:
        res = await limiter.reserve("key:a", 1.0, max_budget=1.0, period=period)
        assert isinstance(res, Reservation)
        await limiter.settle(res, 1.0)
        clock.advance(3600 - 1e-6)
        assert isinstance(await limiter.reserve("key:a", 0.1, max_budget=1.0, period=period), Refusal)
        clock.advance(1e-6)  # reset_at reached: a new window [reset_at, reset_at + 1d)
        fresh = await limiter.reserve("key:a", 0.1, max_budget=1.0, period=period)
        assert isinstance(fresh, Reservation)
        assert fresh.budgets[0].spent == 0.0 and fresh.budgets[0].reset_at == NOW + timedelta(hours=25)
        await limiter.settle(fresh, 0.1)
        clock.advance(86400 * 2)  # two more periods pass unseen: one reset, to the current window
        state = await limiter.reserve("key:a", 0.1, max_budget=1.0, period=period)
        assert isinstance(state, Reservation)
        assert state.budgets[0].spent == 0.0 and state.budgets[0].reset_at == NOW + timedelta(hours=73)

    run_limiter(body)


def test_a_request_in_flight_across_the_reset_is_charged_to_the_new_period(
    run_limiter: RunLimiter, clock: FakeClock
) -> None:
    period = BudgetPeriod("1d", reset_at=NOW + timedelta(minutes=1))

    async def body(limiter: Limiter) -> None:
        res = await limiter.reserve("key:a", 0.5, max_budget=1.0, period=period)
        assert isinstance(res, Reservation)
        clock.advance(120)
        await limiter.settle(res, 0.4)
        state = await limiter.budget("key:a")
        assert state is not None and (state.spent, state.reserved) == (0.4, 0.0)

    run_limiter(body)


def test_a_reservation_never_settled_expires_with_its_lease(run_limiter: RunLimiter, clock: FakeClock) -> None:
    async def body(limiter: Limiter) -> None:
        lost = await limiter.reserve("key:a", 0.96, max_budget=1.0)  # its process dies
        kept = await limiter.reserve("key:a", 0.05, max_budget=1.0)
        assert isinstance(lost, Reservation) and isinstance(kept, Reservation)
        assert isinstance(await limiter.reserve("key:a", 0.05, max_budget=1.0), Refusal)
        clock.advance(299)
        await limiter.settle(kept, 0.05)
        assert isinstance(await limiter.reserve("key:a", 0.01, max_budget=1.0), Refusal)
        clock.advance(1)  # 300 s after it was taken, the lost reservation is gone
        state = await limiter.budget("key:a")
        assert state is not None and (state.spent, state.reserved) == (0.05, 0.0)
        assert isinstance(await limiter.reserve("key:a", 0.5, max_budget=1.0), Reservation)
        # settling the expired one late still charges its cost, without freeing anything twice
        await limiter.settle(lost, 0.2)
        state = await limiter.budget("key:a")
        assert state is not None and (state.spent, state.reserved) == (0.25, 0.5)

    run_limiter(body, lease_ttl_s=300)


def test_budgets_of_several_subjects_are_all_or_nothing(run_limiter: RunLimiter) -> None:
    key = SubjectLimits("key:a", max_budget=10.0)
    team = SubjectLimits("team:t", max_budget=1.0)

    async def body(limiter: Limiter) -> None:
        res = await limiter.admit([key, team], cost=1.0)
        assert isinstance(res, Reservation) and [b.reserved for b in res.budgets] == [1.0, 1.0]
        refused = await limiter.admit([key, team], cost=1.0)
        assert isinstance(refused, Refusal) and refused.which_limit.subject == "team:t"
        await limiter.settle(res, 0.7)
        key_state, team_state = await limiter.budget("key:a"), await limiter.budget("team:t")
        assert key_state is not None and (key_state.spent, key_state.reserved) == (0.7, 0.0)
        assert team_state is not None and team_state.spent == 0.7

    run_limiter(body)


def test_a_budget_refusal_wins_over_a_rate_refusal(run_limiter: RunLimiter) -> None:
    key = SubjectLimits("key:a", rpm_limit=1, max_budget=0.0)

    async def body(limiter: Limiter) -> None:
        refused = await limiter.admit([key])
        assert isinstance(refused, Refusal) and refused.which_limit.kind == "max_budget"
        assert refused.retry_after_s is None  # a lifetime budget never resets

    run_limiter(body)


def test_seed_spend_only_raises_within_a_period_and_is_idempotent(run_limiter: RunLimiter) -> None:
    reset_at = NOW + timedelta(days=10)

    async def body(limiter: Limiter) -> None:
        seeded = await limiter.seed_spend("key:a", 4.0, reset_at, duration="30d")
        assert seeded == BudgetState("key:a", None, 4.0, 0.0, int((T0 + 10 * 86400) * 1e6))
        assert await limiter.seed_spend("key:a", 4.0, reset_at, duration="30d") == seeded
        assert (await limiter.seed_spend("key:a", 3.0, reset_at, duration="30d")) == seeded  # never lowers
        res = await limiter.reserve("key:a", 1.0, 10.0, BudgetPeriod("30d", reset_at))
        assert isinstance(res, Reservation)
        await limiter.settle(res, 1.0)
        # the store has not heard of that request yet: its older figure does not undo it
        state = await limiter.seed_spend("key:a", 4.5, reset_at, duration="30d")
        assert state is not None and state.spent == 5.0
        state = await limiter.seed_spend("key:a", 6.0, reset_at, duration="30d")
        assert state is not None and state.spent == 6.0

    run_limiter(body)


def test_seeded_spend_of_an_ended_period_counts_for_nothing(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        # the store has not rolled its reset_at yet: that spend belongs to the window that ended
        state = await limiter.seed_spend("key:a", 9.0, NOW - timedelta(hours=1), duration="1d")
        assert state is not None and state.spent == 0.0
        assert state.reset_at == NOW + timedelta(hours=23)

    run_limiter(body)


def test_spend_settled_into_a_lost_budget_is_added_to_the_seed(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        before = await MemoryLimiter().reserve("key:a", 0.5, 10.0)  # admitted before the state was lost
        assert isinstance(before, Reservation)
        await limiter.settle(before, 0.3)  # reaches a limiter that holds no budget for key:a
        state = await limiter.seed_spend("key:a", 2.0)
        assert state is not None and state.spent == pytest.approx(2.3)
        again = await limiter.seed_spend("key:a", 2.0)  # seeded now: raising only, idempotent
        assert again is not None and again.spent == state.spent

    run_limiter(body)


def test_a_spend_loader_is_asked_about_a_budget_only_settlements_wrote(run_limiter: RunLimiter) -> None:
    calls: list[str] = []

    async def loader(subject: str) -> tuple[float, None]:
        calls.append(subject)
        return 2.0, None

    async def body(limiter: Limiter) -> None:
        before = await MemoryLimiter().reserve("key:a", 0.5, 10.0)
        assert isinstance(before, Reservation)
        await limiter.settle(before, 0.3)
        res = await limiter.admit([SubjectLimits("key:a", max_budget=10.0)], cost=0.1)
        assert isinstance(res, Reservation) and res.budgets[0].spent == pytest.approx(2.3)
        assert calls == ["key:a"]

    run_limiter(body, spend_loader=loader)


def test_set_spend_overwrites(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        await limiter.seed_spend("key:a", 9.0)
        res = await limiter.reserve("key:a", 0.5, 10.0)
        state = await limiter.set_spend("key:a", 0.0)  # an admin reset the key's spend
        assert state is not None and (state.spent, state.reserved) == (0.0, 0.5)
        assert isinstance(res, Reservation)

    run_limiter(body)


def test_budget_reads_change_nothing(run_limiter: RunLimiter, clock: FakeClock) -> None:
    period = BudgetPeriod("1h", reset_at=NOW + timedelta(minutes=5))

    async def body(limiter: Limiter) -> None:
        assert await limiter.budget("key:a") is None
        res = await limiter.reserve("key:a", 0.5, 10.0, period)
        assert isinstance(res, Reservation)
        await limiter.settle(res, 0.5)
        clock.advance(600)
        view = await limiter.budget("key:a")
        # the period is over, so the view shows no spend, but the stored period is not rolled by reading
        assert view is not None and view.spent == 0.0 and view.reset_at == NOW + timedelta(minutes=5)

    run_limiter(body)


def test_spend_is_kept_exactly_in_nano_dollars(run_limiter: RunLimiter) -> None:
    # binary floats would make 0.1 + 0.2 = 0.30000000000000004; the limiters add whole nano-dollars,
    # and round a cost with digits below a nano-dollar to the nearest one (123.456789012345 -> ...012)
    costs: list[float | Decimal] = [0.1, 0.2, 1e-9, 123.456789012345, 3.3e-7, Decimal("0.0000000015")]

    async def body(limiter: Limiter) -> None:
        for cost in costs:
            res = await limiter.reserve("key:a", cost, 1e9)
            assert isinstance(res, Reservation)
            await limiter.settle(res, cost)
        state = await limiter.budget("key:a")
        assert state is not None and state.reserved == 0.0
        assert Decimal(repr(state.spent)) == Decimal("123.756789345")

    run_limiter(body)


def test_a_spend_loader_fills_a_budget_before_its_first_request(run_limiter: RunLimiter) -> None:
    calls: list[str] = []

    async def loader(subject: str) -> tuple[float, datetime | None]:
        calls.append(subject)
        return 9.5, NOW + timedelta(days=1)

    key = SubjectLimits("key:a", max_budget=10.0, budget_period=BudgetPeriod("30d", NOW + timedelta(days=1)))
    team = SubjectLimits("team:t", max_budget=100.0)

    async def body(limiter: Limiter) -> None:
        first = await limiter.admit([key, team], cost=1.0)
        assert isinstance(first, Reservation)
        assert [(b.subject, b.spent) for b in first.budgets] == [("key:a", 9.5), ("team:t", 9.5)]
        refused = await limiter.admit([key, team], cost=1.0)
        assert isinstance(refused, Refusal) and refused.which_limit.subject == "key:a"
        assert calls == ["key:a", "team:t"]  # once per subject, not per request

    run_limiter(body, spend_loader=loader)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True])
def test_invalid_costs_are_rejected(run_limiter: RunLimiter, bad: float) -> None:
    async def body(limiter: Limiter) -> None:
        with pytest.raises(ValueError, match="costs must be finite non-negative numbers"):
            await limiter.reserve("key:a", bad, 1.0)

    run_limiter(body)


def test_a_budget_of_ten_requests_answers_exactly_ten(run_limiter: RunLimiter) -> None:
    # 10 x 0.005 in binary floats is 0.049999999999999996 < 0.05: an eleventh request got through
    async def body(limiter: Limiter) -> int:
        key = SubjectLimits("key:a", max_budget=0.05)
        answered = 0
        for _ in range(20):
            res = await limiter.admit([key], cost=0.005)
            if isinstance(res, Refusal):
                assert res.budget is not None and res.budget.spent == 0.05 and res.decision.remaining == 0.0
                break
            await limiter.settle(res, 0.005)
            answered += 1
        return answered

    assert run_limiter(body) == 10


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cost=st.integers(1, 10**8),  # nano-dollars: up to $0.10 a request
    afforded=st.integers(0, 30),
    rest=st.integers(0, 10**8),
)
def test_sequential_requests_spend_a_budget_exactly(
    run_limiter: RunLimiter, cost: int, afforded: int, rest: int
) -> None:
    # a budget of exactly N requests' cost answers N; with anything left over (less than one request)
    # one more is admitted, as a budget admits while spend < max_budget (LiteLLM's rule)
    rest %= cost
    budget = Decimal(afforded * cost + rest).scaleb(-9)
    price = float(Decimal(cost).scaleb(-9))  # the float a caller passes: read as the decimal it was written as

    async def body(limiter: Limiter) -> int:
        key = SubjectLimits(f"key:{uuid.uuid4().hex}", max_budget=float(budget))  # the Redis prefix is per test
        answered = 0
        while answered <= afforded + 1:
            res = await limiter.admit([key], cost=price)
            if isinstance(res, Refusal):
                break
            await limiter.settle(res, price)
            answered += 1
        return answered

    assert run_limiter(body) == afforded + (1 if rest else 0)


def test_a_budget_too_large_for_any_spend_admits(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        key = SubjectLimits("key:huge", max_budget=1e308)
        res = await limiter.admit([key], cost=12.5)
        assert isinstance(res, Reservation) and res.budgets[0].reserved == 12.5
        await limiter.settle(res, 12.5)
        assert isinstance(await limiter.admit([key], cost=1.0), Reservation)

    run_limiter(body)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    input_per_million=st.decimals(min_value="0.005", max_value="75", places=3),
    output_per_million=st.decimals(min_value="0", max_value="150", places=3),
    tokens_in=st.integers(1, 20_000),
    tokens_out=st.integers(0, 4_000),
    afforded=st.integers(0, 20),
    left_over=st.one_of(st.just(0), st.integers(1, 10**9)),
)
def test_sequential_requests_priced_from_a_table_spend_a_budget_exactly(
    run_limiter: RunLimiter,
    input_per_million: Decimal,
    output_per_million: Decimal,
    tokens_in: int,
    tokens_out: int,
    afforded: int,
    left_over: int,
) -> None:
    # a price as a config writes it, the cost as the gateway computes it (a float from exact decimals),
    # a budget of some requests' worth plus maybe part of one: the answers are what exact arithmetic says
    price = Price(model="m", input=per_million(input_per_million), output=per_million(output_per_million))
    usage = ir.Usage(input_tokens=tokens_in, output_tokens=tokens_out)
    cost = cost_of(usage, price)
    exact = cost_decimal(usage, price)
    part = Decimal(left_over % int(exact.scaleb(9))).scaleb(-9)  # less than one request
    budget = afforded * exact + part
    assume(budget > 0)
    expected = math.ceil(budget / exact)

    async def body(limiter: Limiter) -> int:
        key = SubjectLimits(f"key:{uuid.uuid4().hex}", max_budget=float(budget))
        answered = 0
        while answered <= expected:
            res = await limiter.admit([key], cost=cost)
            if isinstance(res, Refusal):
                break
            await limiter.settle(res, cost)
            answered += 1
        return answered

    assert run_limiter(body) == expected
