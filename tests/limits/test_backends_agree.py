"""The memory backend and the Redis script give the same answer to every sequence of operations.

Both implement the same rules twice (Python for one process, Lua for many), so a random walk of
admissions, settlements, releases, token corrections, seeds and clock moves is run on both, on the
same clock, and every answer is compared: decisions, windows, refusals and budgets, to the last bit.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits_helpers import REDIS_URL, T0, FakeClock

from llmswitch.limits import BudgetPeriod, Limiter, Refusal, Reservation, SubjectLimits
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.limits.redis_limiter import RedisLimiter

START = datetime.fromtimestamp(T0, UTC)


@st.composite
def subject_limits(draw: st.DrawFn, subject: str) -> SubjectLimits:
    period = draw(st.sampled_from([None, "1m", "2h"]))
    offset = draw(st.integers(1, 7200))
    return SubjectLimits(
        subject,
        rpm_limit=draw(st.one_of(st.none(), st.integers(0, 5))),
        tpm_limit=draw(st.one_of(st.none(), st.integers(1, 2000))),
        max_parallel_requests=draw(st.one_of(st.none(), st.integers(1, 3))),
        max_budget=draw(st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 2.5]))),
        budget_period=BudgetPeriod(period, START + timedelta(seconds=offset)) if period else None,
    )


money = st.sampled_from([0.0, 0.01, 0.1, 0.25, 0.3, 0.7, 1.3])
operation = st.one_of(
    st.tuples(st.just("admit"), st.sampled_from([(0,), (1,), (0, 1), (1, 0)]), st.integers(0, 2500), money),
    st.tuples(st.just("settle"), st.integers(0, 30), money, st.one_of(st.none(), st.integers(0, 3000))),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("tokens"), st.integers(0, 1), st.integers(0, 1000), st.integers(0, 3000)),
    st.tuples(st.just("advance"), st.sampled_from([0.001, 0.5, 6.0, 20.0, 61.0, 3600.0])),
    st.tuples(st.just("seed"), st.integers(0, 1), money),
)


def outcome(result: Reservation | Refusal) -> Any:
    if isinstance(result, Reservation):
        return ("ok", result.decision, result.budgets)
    return (
        "refused",
        result.which_limit,
        result.limit,
        result.used,
        result.retry_after_s,
        result.decision,
        result.budget,
    )


async def apply(limiter: Limiter, limits: list[SubjectLimits], ops: list[Any], clock: FakeClock) -> list[Any]:
    held: list[Reservation] = []
    answers: list[Any] = []
    for op in ops:
        kind = op[0]
        if kind == "admit":
            result = await limiter.admit([limits[i] for i in op[1]], tokens=op[2], cost=op[3])
            if isinstance(result, Reservation):
                held.append(result)
            answers.append(outcome(result))
        elif kind in ("settle", "release") and held:
            res = held.pop(op[1] % len(held))
            if kind == "settle":
                await limiter.settle(res, op[2], actual_tokens=op[3])
            else:
                await limiter.release(res)
        elif kind == "tokens":
            await limiter.settle_tokens(limits[op[1]].subject, op[2], op[3])
        elif kind == "advance":
            clock.advance(op[1])
        elif kind == "seed":
            answers.append(await limiter.seed_spend(limits[op[1]].subject, op[2]))
        for lim in limits:
            answers.append(await limiter.budget(lim.subject))
    return answers


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=subject_limits("key:a"),
    second=subject_limits("team:t"),
    ops=st.lists(operation, min_size=1, max_size=40),
    lease_ttl=st.sampled_from([30.0, 900.0]),
)
def test_memory_and_redis_agree(
    redis_server: str, first: SubjectLimits, second: SubjectLimits, ops: list[Any], lease_ttl: float
) -> None:
    prefix = f"llmswitch-test:{uuid.uuid4().hex[:12]}"
    limits = [first, second]

    async def both() -> tuple[list[Any], list[Any]]:
        memory_clock, redis_clock = FakeClock(), FakeClock()
        memory = MemoryLimiter(clock=memory_clock, lease_ttl_s=lease_ttl)
        # periods cache their end per object; give each backend its own copies so neither warms the other's
        copies = [
            SubjectLimits(
                lim.subject, lim.rpm_limit, lim.tpm_limit, lim.max_parallel_requests, lim.max_budget,
                BudgetPeriod(lim.budget_period.duration, lim.budget_period.reset_at) if lim.budget_period else None,
            )
            for lim in limits
        ]  # fmt: skip
        async with RedisLimiter(REDIS_URL, prefix=prefix, clock=redis_clock, lease_ttl_s=lease_ttl) as shared:
            return await apply(memory, limits, ops, memory_clock), await apply(shared, copies, ops, redis_clock)

    try:
        from_memory, from_redis = asyncio.run(both())
    finally:
        client = redis.Redis.from_url(redis_server)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    assert from_memory == from_redis
