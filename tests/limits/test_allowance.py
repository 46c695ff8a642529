"""Allowances: requests far from their limits admitted in memory from blocks taken from Redis at once.

Real Redis (the shared one; a redis-server of the test's own where it is frozen). Two limiters on one
Redis stand for two gateway processes. Lease expiry runs on an injected clock.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from limits_helpers import REDIS_URL, FakeClock, RedisProcess, back_from_frozen
from test_fallback import Monotonic

from llmswitch.limits import Reservation, SubjectLimits, open_limiter
from llmswitch.limits.allowance import Allowances, Allowed
from llmswitch.limits.fallback import FallbackLimiter
from llmswitch.limits.redis_limiter import RedisLimiter

WIDE = SubjectLimits("key:wide", rpm_limit=1_000_000, tpm_limit=100_000_000, max_budget=1000.0)


def shared(
    prefix: str, *, url: str = REDIS_URL, hold_s: float = 30.0, clock: FakeClock | None = None, **options: Any
) -> FallbackLimiter:
    """One gateway process's limiter on the Redis at ``url``, under ``prefix``; allowances held ``hold_s``."""
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    # these tests judge exactness across processes, not how soon Redis answers: on a loaded machine a
    # reply can come after the production 250 ms deadline, and the limiter then (rightly) counts on its
    # own, which would fail an exactness test for nothing it checks
    options.setdefault("timeout_s", 2.0)
    options.setdefault("deadline_s", 5.0)
    limiter = open_limiter(redis_url=url, prefix=prefix, monotonic=Monotonic(), **extra, **options)
    assert isinstance(limiter, FallbackLimiter) and limiter.allowances is not None  # on by default
    limiter.allowances = Allowances(limiter, hold_s=hold_s)
    return limiter


async def admit(limiter: FallbackLimiter, limits: Any, tokens: int = 10, cost: float = 0.001) -> Any:
    """As the gateway admits: from an allowance if one covers it, else in Redis."""
    result = limiter.admit_nowait(limits, tokens=tokens, cost=cost)
    if result is None:
        result = await limiter.admit(limits, tokens=tokens, cost=cost)
    return result


async def settle(limiter: FallbackLimiter, res: Reservation, cost: float, tokens: int | None = None) -> None:
    if not limiter.settle_nowait(res, cost, actual_tokens=tokens):
        await limiter.settle_soon(res, cost, actual_tokens=tokens)


def allowances(limiter: FallbackLimiter) -> Allowances:
    assert limiter.allowances is not None
    return limiter.allowances


def test_requests_far_from_their_limits_are_admitted_in_memory_and_counted_in_redis(prefix: str) -> None:
    async def body() -> None:
        async with shared(prefix, clock=FakeClock()) as limiter:  # the buckets do not refill meanwhile
            first = await admit(limiter, [WIDE])
            assert isinstance(first, Reservation) and not isinstance(first, Allowed)  # asked Redis
            await allowances(limiter).idle()  # the allowance it asked for meanwhile
            admitted = [await admit(limiter, [WIDE]) for _ in range(2)]  # half of it: no next one yet
            assert all(isinstance(r, Allowed) for r in admitted)
            state = await limiter.budget("key:wide")
            # the first request's estimate, and the allowance of 4 requests at 0.001 each, reserved in Redis
            assert state is not None and state.reserved == pytest.approx(0.001 + 4 * 0.001)
            for res in [first, *admitted]:
                await settle(limiter, res, 0.0005, tokens=12)
            allowances(limiter).retire()
            await allowances(limiter).idle()
            state = await limiter.budget("key:wide")
            assert state is not None and state.spent == pytest.approx(3 * 0.0005) and state.reserved == 0.0
            # an allowance of 4 requests, 2 used: two requests and the unused tokens went back
            check = await limiter.admit([WIDE], tokens=0)
            assert isinstance(check, Reservation)
            window = check.decision.requests
            assert window is not None and window.remaining == 1_000_000 - 4  # 3 admitted, and this one
            tokens = check.decision.tokens
            assert tokens is not None and tokens.remaining == 100_000_000 - 3 * 12

    asyncio.run(body())


def test_allowances_grow_while_used_up_and_nothing_is_lost(prefix: str) -> None:
    async def body() -> None:
        async with shared(prefix) as limiter:
            held: list[Reservation] = []
            from_memory = 0
            for _ in range(300):
                res = await admit(limiter, [WIDE], cost=0.001)
                from_memory += isinstance(res, Allowed)
                held.append(res)
                await asyncio.sleep(0)  # the grant asked for in the background
            assert from_memory > 250  # after the first few, from allowances of 4, 8, 16, ...
            for res in held:
                await settle(limiter, res, 0.002)  # each cost more than estimated
            allowances(limiter).retire()
            await allowances(limiter).idle()
            state = await limiter.budget("key:wide")
            assert state is not None and state.spent == pytest.approx(300 * 0.002) and state.reserved == 0.0

    asyncio.run(body())


def test_near_a_limit_every_request_is_admitted_in_redis_and_two_processes_stay_exact(prefix: str) -> None:
    # 16 allowances of 4 would not fit a limit of 40: no allowance is granted, each request asks Redis
    tight = SubjectLimits("key:tight", rpm_limit=40)

    async def body() -> None:
        async with shared(prefix) as one, shared(prefix) as other:
            results = []
            for i in range(60):
                results.append(await admit(one if i % 2 else other, [tight]))
                await asyncio.sleep(0)
            await allowances(one).idle()
            await allowances(other).idle()
            assert not any(isinstance(r, Allowed) for r in results)
            assert sum(r.allowed for r in results) == 40

    asyncio.run(body())


def test_two_processes_with_allowances_never_admit_past_a_rate_limit(prefix: str) -> None:
    limits = [SubjectLimits("key:burst", rpm_limit=2000)]
    clock = FakeClock()  # the bucket does not refill while the test runs

    async def body() -> None:
        async with shared(prefix, clock=clock) as one, shared(prefix, clock=clock) as other:

            async def burst(limiter: FallbackLimiter) -> list[Any]:
                out = []
                for _ in range(1500):
                    out.append(await admit(limiter, limits, cost=0))
                    await asyncio.sleep(0)
                return out

            a, b = await asyncio.gather(burst(one), burst(other))
            admitted = sum(r.allowed for r in a + b)
            assert any(isinstance(r, Allowed) for r in a) and any(isinstance(r, Allowed) for r in b)
            assert admitted <= 2000  # never more than the bucket
            for limiter in (one, other):
                allowances(limiter).retire()
                await allowances(limiter).idle()
            # what an allowance held unused at the end went back: the bucket has what was not admitted
            check = await one.admit(limits)
            left = 2000 - admitted
            assert check.allowed == (left > 0)
            if isinstance(check, Reservation):
                assert check.decision.requests is not None and check.decision.requests.remaining == left - 1

    asyncio.run(body())


def test_a_budget_is_never_overshot_by_allowances_of_two_processes(prefix: str) -> None:
    # $10 at $0.01 a request: 1000 requests' worth, spent from allowances and in Redis by two processes
    limits = [SubjectLimits("key:budget", max_budget=10.0)]

    async def body() -> None:
        async with shared(prefix) as one, shared(prefix) as other:

            async def spend(limiter: FallbackLimiter) -> int:
                answered = 0
                for _ in range(800):
                    res = await admit(limiter, limits, cost=0.01)
                    if res.allowed:
                        answered += 1
                        await settle(limiter, res, 0.01)
                    await asyncio.sleep(0)
                return answered

            answered = sum(await asyncio.gather(spend(one), spend(other)))
            for limiter in (one, other):
                allowances(limiter).retire()
                await allowances(limiter).idle()
            state = await one.budget("key:budget")
            assert state is not None and state.reserved == 0.0
            assert state.spent == pytest.approx(answered * 0.01) and state.spent <= 10.0 + 1e-9
            # near the end every request asked Redis: the budget was spent to the last request
            assert answered >= 990

    asyncio.run(body())


def test_a_request_that_costs_more_than_its_allowance_holds_reaches_redis_before_settle_returns(prefix: str) -> None:
    async def body() -> None:
        async with shared(prefix) as limiter:
            await admit(limiter, [WIDE], cost=0.001)
            await allowances(limiter).idle()
            res = await admit(limiter, [WIDE], cost=0.001)
            assert isinstance(res, Allowed)
            primary = limiter.primary
            assert isinstance(primary, RedisLimiter) and primary._pipe is not None
            sent: list[bytes] = []
            proto = primary._pipe._lean.live() if primary._pipe._lean is not None else None
            assert proto is not None
            original = proto.send_many

            def record(data: bytes, waiters: list[Any]) -> bool:
                sent.append(data)
                return original(data, waiters)

            proto.send_many = record  # type: ignore[method-assign]
            assert limiter.settle_nowait(res, 0.5)  # far past the 4 x 0.001 the allowance holds
            # written before settle_nowait returned: the answer that follows cannot overtake it
            assert len(sent) == 1 and primary._settle_script.sha.encode() in sent[0]
            await allowances(limiter).idle()
            state = await limiter.budget("key:wide")
            assert state is not None and state.spent == pytest.approx(0.5)

    asyncio.run(body())


def test_a_process_that_dies_holding_an_allowance_never_gets_its_budget_back(prefix: str) -> None:
    clock = FakeClock()

    async def body() -> None:
        dead = shared(prefix, clock=clock, lease_ttl_s=60)
        await admit(dead, [WIDE], cost=0.25)
        await allowances(dead).idle()
        used = await admit(dead, [WIDE], cost=0.25)
        assert isinstance(used, Allowed)
        dead.settle_nowait(used, 0.25)  # answered and settled into the allowance, never reported: killed
        async with shared(prefix, clock=clock, lease_ttl_s=60) as alive:
            state = await alive.budget("key:wide")
            assert state is not None and state.reserved == pytest.approx(0.25 + 4 * 0.25)
            clock.advance(61)  # the dead process's leases expire
            state = await alive.budget("key:wide")
            # its allowance counts as spent in full (the settled 0.25 within it is not lost); the first
            # request's plain reservation is given back as any expired reservation is
            assert state is not None and state.spent == pytest.approx(4 * 0.25) and state.reserved == 0.0
            res = await alive.admit([WIDE], cost=0.25)
            assert isinstance(res, Reservation)
            await alive.settle(res, 0.25)
            state = await alive.budget("key:wide")
            assert state is not None and state.spent == pytest.approx(5 * 0.25)
            # a report that arrives after all (a process only paused) charges nothing more
            allowances(dead).retire()
            await allowances(dead).idle()
            state = await alive.budget("key:wide")
            assert state is not None and state.spent == pytest.approx(5 * 0.25) and state.reserved == 0.0
        await dead.aclose()

    asyncio.run(body())


def test_limits_with_parallel_requests_or_budgets_without_estimates_are_always_admitted_in_redis(prefix: str) -> None:
    parallel = [SubjectLimits("key:par", rpm_limit=1_000_000, max_parallel_requests=1000)]
    budget = [SubjectLimits("key:free", max_budget=100.0)]

    async def body() -> None:
        async with shared(prefix) as limiter:
            for limits, cost in ((parallel, 0.01), (budget, 0.0)):
                for _ in range(20):
                    res = await admit(limiter, limits, cost=cost)
                    assert isinstance(res, Reservation) and not isinstance(res, Allowed)
                    await asyncio.sleep(0)
                    await settle(limiter, res, 0.0)

    asyncio.run(body())


def test_a_key_loaded_again_keeps_its_allowance(prefix: str) -> None:
    async def body() -> None:
        async with shared(prefix) as limiter:
            await admit(limiter, [WIDE])
            await allowances(limiter).idle()
            # the key's record was loaded again (its spend changed): new objects, the same limits
            again = SubjectLimits("key:wide", rpm_limit=1_000_000, tpm_limit=100_000_000, max_budget=1000.0)
            assert isinstance(await admit(limiter, [again]), Allowed)
            changed = SubjectLimits("key:wide", rpm_limit=5_000_000, tpm_limit=100_000_000, max_budget=1000.0)
            assert not isinstance(await admit(limiter, [changed]), Allowed)  # other limits: another book

    asyncio.run(body())


def test_an_allowance_reported_while_redis_is_frozen_is_replayed_once(own_redis: RedisProcess) -> None:
    prefix = f"llmswitch-test:{uuid.uuid4().hex[:12]}"
    mono = Monotonic()

    async def body() -> None:
        limiter = open_limiter(redis_url=own_redis.url, prefix=prefix, monotonic=mono, deadline_s=0.3)
        assert isinstance(limiter, FallbackLimiter)
        limiter.allowances = Allowances(limiter, hold_s=30.0)
        async with limiter:
            first = await admit(limiter, [WIDE], cost=0.01)
            await allowances(limiter).idle()
            res = await admit(limiter, [WIDE], cost=0.01)
            assert isinstance(res, Allowed)
            assert limiter.settle_nowait(res, 0.004) and limiter.settle_nowait(first, 0.0) is False
            await limiter.settle(first, 0.006)
            own_redis.freeze()
            allowances(limiter).retire()  # its report is written and not answered
            await allowances(limiter).idle()
            assert limiter.degraded and limiter.deferred == 1
            # no allowance is granted while Redis is away: requests go to the fallback's own limits
            assert limiter.admit_nowait([WIDE], cost=0.01) is None
            await back_from_frozen(own_redis, limiter, mono)
            state = await limiter.budget("key:wide")
            assert state is not None and state.spent == pytest.approx(0.01) and state.reserved == 0.0

    asyncio.run(body())


def test_allowances_can_be_turned_off(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_LIMITS_ALLOWANCES", "off")
    limiter = open_limiter(redis_url=REDIS_URL, prefix=prefix)
    assert isinstance(limiter, FallbackLimiter) and limiter.allowances is None
    asyncio.run(limiter.aclose())


def test_a_caller_outside_an_event_loop_is_sent_to_redis(prefix: str) -> None:
    limiter = shared(prefix)
    assert limiter.admit_nowait([WIDE], tokens=1, cost=0.01) is None  # no loop to ask for an allowance on
    asyncio.run(limiter.aclose())
