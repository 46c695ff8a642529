"""The synchronous path the gateway takes on every request (``admit_nowait``, ``settle_nowait``): the same
answers as the asynchronous API, and ``None``/``False`` whenever only the asynchronous API can answer."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from limits_helpers import FakeClock

from llmswitch.limits import Refusal, Reservation, SubjectLimits
from llmswitch.limits.admission import judge
from llmswitch.limits.fallback import FallbackLimiter
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.limits.redis_limiter import RedisLimiter

KEY = SubjectLimits("key:a", rpm_limit=5, tpm_limit=400, max_parallel_requests=3, max_budget=1.0)
TEAM = SubjectLimits("team:t", rpm_limit=7, max_budget=2.5)


def _outcome(result: Reservation | Refusal) -> Any:
    """Everything a caller can read of an admission."""
    if isinstance(result, Refusal):
        return ("refused", result.which_limit, result.limit, result.used, result.retry_after_s, result.decision)
    return ("admitted", result.decision, result.budgets, result.tokens, result.cost)


def test_nowait_answers_as_the_async_api_does_over_a_random_run() -> None:
    rng = random.Random(7)
    sync_clock, async_clock = FakeClock(), FakeClock()
    sync, async_ = MemoryLimiter(clock=sync_clock, lease_ttl_s=30), MemoryLimiter(clock=async_clock, lease_ttl_s=30)
    held: list[tuple[Reservation, Reservation]] = []

    async def body() -> None:
        for _ in range(600):
            step = rng.random()
            if step < 0.55:
                limits = rng.choice([[KEY], [KEY, TEAM], [TEAM]])
                tokens, cost = rng.randint(0, 150), rng.choice([0.0, 0.05, 0.3])
                a = sync.admit_nowait(limits, tokens=tokens, cost=cost)
                b = await async_.admit(limits, tokens=tokens, cost=cost)
                assert a is not None
                assert _outcome(a) == _outcome(b)
                if isinstance(a, Reservation) and isinstance(b, Reservation):
                    held.append((a, b))
            elif step < 0.85 and held:
                a, b = held.pop(rng.randrange(len(held)))
                cost, tokens = rng.choice([0.0, 0.01, 0.2]), rng.choice([None, 0, 90])
                assert sync.settle_nowait(a, cost, actual_tokens=tokens)
                await async_.settle(b, cost, actual_tokens=tokens)
                assert a.settled and b.settled
            else:
                seconds = rng.choice([0.5, 3.0, 20.0])
                sync_clock.advance(seconds)
                async_clock.advance(seconds)
            for subject in ("key:a", "team:t"):
                assert await sync.budget(subject) == await async_.budget(subject)

    asyncio.run(body())


def test_a_budget_the_limiter_must_load_first_is_left_to_admit() -> None:
    loaded: list[str] = []

    async def loader(subject: str) -> tuple[float, None]:
        loaded.append(subject)
        return 0.75, None

    limiter = MemoryLimiter(clock=FakeClock(), spend_loader=loader)

    async def body() -> None:
        assert limiter.admit_nowait([KEY], tokens=10, cost=0.1) is None  # nothing consumed ...
        assert await limiter.budget("key:a") is None
        result = await limiter.admit([KEY], tokens=10, cost=0.1)  # ... until admit loads the spend
        assert isinstance(result, Reservation) and loaded == ["key:a"]
        again = limiter.admit_nowait([KEY], tokens=10, cost=0.1)
        assert isinstance(again, Reservation) and again.budgets[0].spent == 0.75

    asyncio.run(body())


def test_settling_twice_or_a_reservation_of_another_limiter() -> None:
    one, other = MemoryLimiter(clock=FakeClock()), MemoryLimiter(clock=FakeClock())
    res = one.admit_nowait([KEY], cost=0.5)
    assert isinstance(res, Reservation)
    assert not other.settle_nowait(res, 0.5)  # not its reservation: the caller awaits settle instead
    assert one.settle_nowait(res, 0.25) and one.settle_nowait(res, 0.25)  # the second does nothing
    state = asyncio.run(one.budget("key:a"))
    assert state is not None and state.spent == 0.25 and state.reserved == 0.0
    with pytest.raises(ValueError, match="finite non-negative"):
        one.settle_nowait(res, float("nan"))
    with pytest.raises(ValueError, match="non-negative integers"):
        one.admit_nowait([KEY], tokens=-1)


def test_limiters_that_need_io_always_send_the_caller_to_the_async_api() -> None:
    redis = RedisLimiter("redis://127.0.0.1:1/0")  # never connected: nothing here may try
    fallback = FallbackLimiter(redis, MemoryLimiter())
    for limiter in (redis, fallback):
        assert limiter.admit_nowait([KEY], tokens=1, cost=0.1) is None
    res = MemoryLimiter().admit_nowait([KEY])
    assert isinstance(res, Reservation)
    assert not redis.settle_nowait(res, 0.0) and not fallback.settle_nowait(res, 0.0)


def test_an_admissions_decision_is_worked_out_when_read_and_matches_the_numbers() -> None:
    limiter = MemoryLimiter(clock=FakeClock())
    res = limiter.admit_nowait([KEY, TEAM], tokens=40, cost=0.2)
    assert isinstance(res, Reservation)
    assert res._decision is None  # nothing computed yet: most reservations are settled unread
    assert res._raw is not None
    outcome = judge(res._request, res._raw)
    assert not isinstance(outcome, Refusal)
    assert (res.decision, res.budgets) == outcome
    assert res.decision.requests is not None and res.decision.requests.remaining == 4
    assert [b.reserved for b in res.budgets] == [0.2, 0.2]
