"""What one process admits while Redis is away, under each degraded policy, and what Redis holds when it is back.

Redis is a redis-server of the test's own, stopped (nothing listens), frozen (SIGSTOP: it keeps its state but
never answers) or restarted empty. The store is a loader that answers what the gateway's journal shipped.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from limits_helpers import FakeClock, RedisProcess

from llmswitch.errors import ConfigError
from llmswitch.limits import Refusal, Reservation, SubjectLimits, open_limiter
from llmswitch.limits.degraded import DegradedPolicy
from llmswitch.limits.errors import BudgetsUnavailableError
from llmswitch.limits.fallback import FallbackLimiter

BUDGET = SubjectLimits("key:a", max_budget=1.0)


def limiter_on(url: str, mono: FakeClock, policy: DegradedPolicy, **options: Any) -> FallbackLimiter:
    options.setdefault("prefix", f"llmswitch-test:{uuid.uuid4().hex[:12]}")
    limiter = open_limiter(redis_url=url, monotonic=mono, degraded=policy, **options)
    assert isinstance(limiter, FallbackLimiter)
    return limiter


async def admitted(limiter: FallbackLimiter, limits: list[SubjectLimits], cost: float, most: int = 100) -> int:
    """How many requests of ``cost`` are admitted one after another (each settled at its estimate)."""
    n = 0
    while n < most:
        res = await limiter.admit(limits, cost=cost)
        if isinstance(res, Refusal):
            return n
        await limiter.settle(res, cost)
        n += 1
    return n


def test_the_policy_comes_from_the_environment() -> None:
    assert DegradedPolicy.from_env({}) == DegradedPolicy("closed", 0.5)
    assert DegradedPolicy.from_env({"LLMSWITCH_DEGRADED_BUDGETS": "Share", "LLMSWITCH_DEGRADED_SHARE": "0.25"}) == (
        DegradedPolicy("share", 0.25)
    )
    for env in (
        {"LLMSWITCH_DEGRADED_BUDGETS": "open"},
        {"LLMSWITCH_DEGRADED_SHARE": "0"},
        {"LLMSWITCH_DEGRADED_SHARE": "x"},
    ):
        with pytest.raises(ConfigError):
            DegradedPolicy.from_env(env)
    # open_limiter reads it too
    limiter = open_limiter(redis_url="redis://127.0.0.1:1/0")
    assert isinstance(limiter, FallbackLimiter) and limiter.policy.budgets == "closed"


def test_closed_refuses_budgets_and_shares_rates_until_redis_is_back(own_redis: RedisProcess) -> None:
    mono = FakeClock(0.0)
    rpm = SubjectLimits("key:r", rpm_limit=10)

    async def body() -> None:
        async with limiter_on(own_redis.url, mono, DegradedPolicy()) as limiter:
            assert await admitted(limiter, [BUDGET], 0.1, most=2) == 2
            own_redis.freeze()
            with pytest.raises(BudgetsUnavailableError) as caught:
                await limiter.admit([BUDGET], cost=0.1)
            assert limiter.degraded and 0 < caught.value.retry_after_s <= 5.0
            # a key without a budget is served, at half its rpm (two processes by default)
            served = [await limiter.check_and_consume([rpm]) for _ in range(10)]
            assert [d.allowed for d in served] == [True] * 5 + [False] * 5
            own_redis.thaw()
            mono.advance(5.0)
            res = await limiter.admit([BUDGET], cost=0.1)
            assert isinstance(res, Reservation) and not limiter.degraded
            assert res.budgets[0].spent == pytest.approx(0.2)

    asyncio.run(body())


def test_share_starts_from_the_store_and_spends_a_share_of_what_is_left(own_redis: RedisProcess) -> None:
    mono = FakeClock(0.0)
    store = {"key:a": 0.0}

    async def loader(subject: str) -> tuple[float, None]:
        return store[subject], None

    async def body() -> None:
        async with limiter_on(own_redis.url, mono, DegradedPolicy("share", 0.5), spend_loader=loader) as limiter:
            assert await admitted(limiter, [BUDGET], 0.2, most=1) == 1  # this process last saw 0.2 spent
            store["key:a"] = 0.6  # other processes spent 0.4 more since
            own_redis.stop()
            # what is left is 0.4; this process's half of it is 0.2: four requests of 0.05
            assert await admitted(limiter, [BUDGET], 0.05) == 4
            assert limiter.degraded

    asyncio.run(body())


def test_share_keeps_a_spent_budget_spent_though_this_process_saw_it_fresh(own_redis: RedisProcess) -> None:
    mono = FakeClock(0.0)
    store = {"key:a": 0.0}

    async def loader(subject: str) -> tuple[float, None]:
        return store[subject], None

    async def body() -> None:
        async with limiter_on(own_redis.url, mono, DegradedPolicy("share", 1.0), spend_loader=loader) as limiter:
            assert await admitted(limiter, [BUDGET], 0.01, most=1) == 1
            store["key:a"] = 1.0  # another process spent it all
            own_redis.stop()
            assert await admitted(limiter, [BUDGET], 0.01) == 0

    asyncio.run(body())


def test_share_fails_closed_when_the_store_cannot_say(own_redis: RedisProcess) -> None:
    mono = FakeClock(0.0)

    async def loader(subject: str) -> tuple[float, None]:
        raise OSError("database unreachable")

    async def body() -> None:
        async with limiter_on(own_redis.url, mono, DegradedPolicy("share"), spend_loader=loader) as limiter:
            own_redis.stop()
            with pytest.raises(BudgetsUnavailableError):
                await limiter.admit([BUDGET], cost=0.01)

    asyncio.run(body())


def test_settlements_of_an_outage_reach_a_redis_that_kept_its_state(own_redis: RedisProcess) -> None:
    mono = FakeClock(0.0)
    store = {"key:a": 0.0}

    async def loader(subject: str) -> tuple[float, None]:
        return store[subject], None

    async def body() -> None:
        async with limiter_on(own_redis.url, mono, DegradedPolicy("share", 1.0), spend_loader=loader) as limiter:
            res = await limiter.admit([BUDGET], cost=0.3)
            assert isinstance(res, Reservation)
            own_redis.freeze()  # away, but keeps what it holds
            await limiter.settle(res, 0.3)  # admitted through Redis, settled during the outage
            assert limiter.degraded
            assert await admitted(limiter, [BUDGET], 0.1, most=2) == 2
            store["key:a"] = 0.5  # all journaled and shipped
            own_redis.thaw()
            mono.advance(5.0)
            state = await limiter.budget("key:a")
            assert state is not None and not limiter.degraded
            assert await limiter.flush() == 0
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == 0.5 and state.reserved == 0

    asyncio.run(body())


def test_a_flushed_redis_is_loaded_from_the_store_once_however_the_outage_replays(own_redis: RedisProcess) -> None:
    mono = FakeClock(0.0)
    store = {"key:a": 0.0}
    loads: list[str] = []

    async def loader(subject: str) -> tuple[float, None]:
        loads.append(subject)
        return store[subject], None

    async def body() -> None:
        policy = DegradedPolicy("share", 1.0)
        prefix = f"llmswitch-test:{uuid.uuid4().hex[:12]}"  # two processes of one deployment
        async with (
            limiter_on(own_redis.url, mono, policy, spend_loader=loader, prefix=prefix) as a,
            limiter_on(own_redis.url, mono, policy, spend_loader=loader, prefix=prefix) as b,
        ):
            assert await admitted(a, [BUDGET], 0.1, most=3) == 3
            store["key:a"] = 0.3
            own_redis.stop()
            assert await admitted(a, [BUDGET], 0.1, most=1) == 1
            assert await admitted(b, [BUDGET], 0.1, most=1) == 1
            store["key:a"] = 0.5  # both processes' journals shipped the outage's spend
            own_redis.start()  # empty
            mono.advance(5.0)
            loads.clear()
            for limiter in (a, b):
                res = await limiter.admit([BUDGET], cost=0.1)
                assert isinstance(res, Reservation) and not limiter.degraded
                await limiter.release(res)
                assert await limiter.flush() == 0
            state = await a.budget("key:a")
            assert state is not None and state.spent == 0.5 and state.reserved == 0  # max_budget - store spend
            assert loads == ["key:a"]  # once, by whichever process came first
            # exactly the rest is admitted: five more requests of 0.1, no false refusal
            assert await admitted(a, [BUDGET], 0.1) == 5

    asyncio.run(body())


def test_an_admin_reset_during_an_outage_keeps_the_spend_that_came_after_it(own_redis: RedisProcess) -> None:
    mono = FakeClock(0.0)
    clock = FakeClock()

    async def body() -> None:
        limiter = limiter_on(own_redis.url, mono, DegradedPolicy("local"), clock=clock)
        async with limiter:
            assert await admitted(limiter, [BUDGET], 0.4, most=1) == 1
            own_redis.freeze()
            clock.advance(1)
            await limiter.set_spend("key:a", 0.0)  # an admin resets the spend: replayed when Redis is back
            clock.advance(1)
            assert await admitted(limiter, [BUDGET], 0.3, most=1) == 1  # spent after the reset
            own_redis.thaw()
            mono.advance(5.0)
            clock.advance(1)
            assert await limiter.budget("key:a") is not None and not limiter.degraded
            assert await limiter.flush() == 0
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == 0.3 and state.reserved == 0

    asyncio.run(body())
