"""Redis unreachable: local limits within a bounded time, one warning, and recovery when it is back.

Outages are real: a port where nothing listens, and a redis-server of the test's own that is stopped
(SIGSTOP: it still accepts connections but never answers) or killed and restarted. The shared Redis
is never touched. Only the circuit's cooldown runs on an injected clock; the time bounds are real.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from limits_helpers import FakeClock, RedisProcess, free_port

from llmswitch.limits import Limiter, LimiterUnavailableError, Refusal, Reservation, SubjectLimits, open_limiter
from llmswitch.limits.degraded import DegradedPolicy
from llmswitch.limits.fallback import FallbackLimiter
from llmswitch.limits.redis_limiter import RedisLimiter

T = TypeVar("T")
BOUND_S = 0.5  # no request may wait longer than this on a dead Redis
KEY = SubjectLimits("key:a", rpm_limit=100, max_budget=1.0)


class Monotonic(FakeClock):
    def __init__(self) -> None:
        super().__init__(0.0)


def fallback_limiter(url: str, mono: Monotonic, **options: Any) -> FallbackLimiter:
    # these tests are about falling back and coming back; what is admitted meanwhile under each policy is
    # tests/limits/test_fallback_degraded.py's
    options.setdefault("degraded", DegradedPolicy("local"))
    limiter = open_limiter(redis_url=url, monotonic=mono, prefix=f"llmswitch-test:{uuid.uuid4().hex[:12]}", **options)
    assert isinstance(limiter, FallbackLimiter)
    return limiter


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await call
    return result, time.perf_counter() - start


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmswitch.limits" and r.levelno == logging.WARNING]


def test_nothing_listening_falls_back_at_once_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    mono = Monotonic()
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    async def body() -> None:
        async with fallback_limiter(url, mono) as limiter:
            first, elapsed = await timed(limiter.admit([KEY], cost=0.5))
            assert isinstance(first, Reservation) and elapsed < BOUND_S
            assert limiter.degraded
            # during the cooldown Redis is not even tried
            for _ in range(20):
                result, elapsed = await timed(limiter.admit([KEY], cost=0.1))
                assert elapsed < 0.01
            assert isinstance(result, Refusal)  # local budget: 0.5 + 0.1 * 5 in flight used it up
            mono.advance(5.0)  # the next request probes Redis, fails as fast, stays local
            _, elapsed = await timed(limiter.check_and_consume([KEY]))
            assert elapsed < BOUND_S and limiter.degraded

    with caplog.at_level(logging.INFO, logger="llmswitch.limits"):
        asyncio.run(body())
    warnings = warnings_of(caplog)
    assert len(warnings) == 1
    assert "is unreachable" in warnings[0] and "enforcing rate limits and budgets in this process" in warnings[0]
    assert "hunter2" not in caplog.text  # the password is masked


def test_a_bare_redis_limiter_raises_instead(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with RedisLimiter(f"redis://127.0.0.1:{free_port()}/0") as limiter:
            with pytest.raises(LimiterUnavailableError, match="is unreachable"):
                await limiter.admit([KEY])
            assert not await limiter.ping()

    asyncio.run(body())


def test_a_frozen_redis_costs_one_bounded_wait_then_recovers(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    mono = Monotonic()

    async def body() -> None:
        async with fallback_limiter(own_redis.url, mono) as limiter:
            before = await limiter.admit([KEY], cost=0.6)  # shared: Redis answers
            assert isinstance(before, Reservation) and not limiter.degraded
            await limiter.settle(before, 0.6)
            in_flight = await limiter.admit([KEY], cost=0.1)  # held by Redis across the outage
            assert isinstance(in_flight, Reservation)

            own_redis.freeze()
            degraded, elapsed = await timed(limiter.admit([KEY], cost=0.4))
            assert elapsed < BOUND_S, f"waited {elapsed:.3f} s on a frozen Redis"
            assert isinstance(degraded, Reservation) and limiter.degraded
            # the local budget starts from the spend Redis reported (0.6), not from zero
            refused = await limiter.admit([KEY], cost=0.01)
            assert isinstance(refused, Refusal) and refused.budget is not None and refused.budget.spent == 0.6
            await limiter.settle(degraded, 0.25)  # charged locally, replayed later
            await limiter.settle(in_flight, 0.05)  # Redis's reservation: its settlement waits too
            assert limiter.deferred == 2

            own_redis.thaw()
            mono.advance(5.0)
            after = await limiter.admit([SubjectLimits("key:b", rpm_limit=1)])
            assert isinstance(after, Reservation) and not limiter.degraded
            assert await limiter.flush() == 0
            state = await limiter.budget("key:a")
            assert state is not None
            assert state.spent == pytest.approx(0.6 + 0.25 + 0.05) and state.reserved == 0.0

    with caplog.at_level(logging.INFO, logger="llmswitch.limits"):
        asyncio.run(body())
    assert len(warnings_of(caplog)) == 1
    assert "no answer in time" in warnings_of(caplog)[0]
    assert any("answers again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_a_restarted_redis_is_refilled_from_the_store_once(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    mono = Monotonic()
    store_spend = {"key:a": 0.0}

    async def loader(subject: str) -> tuple[float, None]:
        return store_spend[subject], None

    async def body() -> None:
        async with fallback_limiter(own_redis.url, mono, spend_loader=loader) as limiter:
            res = await limiter.admit([KEY], cost=0.7)
            assert isinstance(res, Reservation)
            await limiter.settle(res, 0.7)
            store_spend["key:a"] = 0.7  # the gateway's journal got it to the store

            own_redis.stop()  # and its memory is gone: --save "" keeps nothing
            down, elapsed = await timed(limiter.admit([KEY], cost=0.2))
            assert elapsed < BOUND_S and isinstance(down, Reservation) and limiter.degraded
            await limiter.settle(down, 0.2)  # deferred for Redis; journaled, and shipped to the store meanwhile
            store_spend["key:a"] = 0.9

            own_redis.start()  # empty
            mono.advance(5.0)
            again = await limiter.admit([KEY], cost=0.05)
            assert isinstance(again, Reservation) and not limiter.degraded
            assert await limiter.flush() == 0
            # the lost budget was loaded from the store (0.9, the outage's 0.2 in it) and the replay of that
            # 0.2 was not added on top, in whichever order the two reached Redis
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == 0.9 and state.reserved == 0.05
            assert isinstance(await limiter.admit([KEY], cost=0.06), Reservation)  # 0.95 in: admitted
            assert isinstance(await limiter.admit([KEY], cost=0.01), Refusal)  # 1.01 in: exhausted

    with caplog.at_level(logging.INFO, logger="llmswitch.limits"):
        asyncio.run(body())
    assert len(warnings_of(caplog)) == 1


def test_redis_going_down_under_load_never_hangs_a_request(own_redis: RedisProcess) -> None:
    mono = Monotonic()

    async def body() -> None:
        async with fallback_limiter(own_redis.url, mono) as limiter:

            async def request(i: int) -> float:
                start = time.perf_counter()
                res = await limiter.admit([SubjectLimits(f"key:{i % 7}", rpm_limit=1000, max_budget=100.0)], cost=0.01)
                if isinstance(res, Reservation):
                    await limiter.settle(res, 0.01)
                return time.perf_counter() - start

            first = asyncio.gather(*(request(i) for i in range(200)))
            await asyncio.sleep(0)
            own_redis.freeze()
            durations = await first
            more = await asyncio.gather(*(request(i) for i in range(200)))
            # an admit and a settle each wait one deadline at most
            assert max(durations + more) < 2 * BOUND_S
            assert limiter.degraded

    asyncio.run(body())


def test_every_operation_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    mono = Monotonic()
    url = f"redis://127.0.0.1:{free_port()}/0"
    operations: list[Callable[[Limiter], Awaitable[Any]]] = [
        lambda lim: lim.check_and_consume([KEY], 10),
        lambda lim: lim.settle_tokens("key:a", 10, 5),
        lambda lim: lim.seed_spend("key:a", 0.5),
        lambda lim: lim.set_spend("key:a", 0.25),
        lambda lim: lim.budget("key:a"),
        lambda lim: lim.acquire_slot("key:a", 3),
    ]

    async def body() -> None:
        for op in operations:
            async with fallback_limiter(url, mono) as limiter:
                _, elapsed = await timed(op(limiter))
                assert elapsed < BOUND_S and limiter.degraded

    with caplog.at_level(logging.INFO, logger="llmswitch.limits"):
        asyncio.run(body())
    outages = [w for w in warnings_of(caplog) if "is unreachable" in w]
    assert len(outages) == len(operations)  # once per limiter
    # the admin's set could not reach Redis, and closing says so rather than dropping it silently; a load
    # from the store is not kept for later (the store is asked again once Redis answers)
    assert sum("closing with 1 settlements not replayed" in w for w in warnings_of(caplog)) == 1


def test_leases_are_renewed_through_the_fallback_in_redis_and_locally() -> None:
    """Renewal reaches where the reservation lives: Redis while it answers, this process's memory for one
    admitted while it did not."""
    from limits_helpers import REDIS_URL

    slot = SubjectLimits("key:renew", max_parallel_requests=1)
    for url in (REDIS_URL, f"redis://127.0.0.1:{free_port()}/0"):
        clock = FakeClock()
        mono = Monotonic()

        async def body(url: str = url, clock: FakeClock = clock, mono: Monotonic = mono) -> None:
            async with fallback_limiter(url, mono, clock=clock, lease_ttl_s=60) as limiter:
                held = await limiter.admit([slot])
                assert isinstance(held, Reservation)
                clock.advance(50)
                await limiter.renew(held)
                clock.advance(50)  # past the first lease, within the renewed one
                assert isinstance(await limiter.admit([slot]), Refusal)
                await limiter.settle(held, 0.0)
                assert isinstance(await limiter.admit([slot]), Reservation)

        asyncio.run(body())
