"""What only the Redis backend has to prove: every key it writes expires, and one request is one call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from limits_helpers import REDIS_URL, T0, FakeClock, redis_keys

from llmswitch.limits import BudgetPeriod, Reservation, SubjectLimits
from llmswitch.limits.redis_limiter import RedisLimiter


def test_every_key_expires_except_a_lifetime_budget(prefix: str) -> None:
    now = datetime.fromtimestamp(T0, UTC)
    key = SubjectLimits(
        "key:a", rpm_limit=10, tpm_limit=1000, max_parallel_requests=2, max_budget=5.0,
        budget_period=BudgetPeriod("1d", now + timedelta(hours=2)),
    )  # fmt: skip
    lifetime = SubjectLimits("team:t", max_budget=50.0)

    async def body() -> None:
        async with RedisLimiter(REDIS_URL, prefix=prefix, clock=FakeClock(), lease_ttl_s=120) as limiter:
            res = await limiter.admit([key, lifetime], tokens=100, cost=0.5)
            assert isinstance(res, Reservation)

    asyncio.run(body())
    stored = redis_keys(prefix)
    ttl = {key.removeprefix(prefix + ":"): ms for key, (_, ms) in stored.items()}
    assert set(ttl) == {
        "rate:key:a", "slots:key:a", "budget:key:a", "leases:key:a", "budget:team:t", "leases:team:t",
    }  # fmt: skip
    assert 120_000 < ttl["rate:key:a"] <= 126_000  # drained in 6 s, plus the lease TTL for a late settle
    assert 119_000 < ttl["slots:key:a"] <= 120_000
    assert 119_000 < ttl["leases:key:a"] <= 120_000
    assert 7_319_000 < ttl["budget:key:a"] <= 7_320_000  # the period's end, plus the lease TTL
    assert ttl["budget:team:t"] == -1  # a lifetime budget lives as long as the key
    budget, _ = stored[f"{prefix}:budget:key:a"]
    # money in whole nano-dollars, marked so an older llmswitch's float USD is never read as such
    assert budget == {
        "spent": "0", "reserved": "500000000", "reset_at": str(int((T0 + 7200) * 1e6)), "seeded": "1", "unit": "nusd",
    }  # fmt: skip


def test_one_request_for_three_subjects_is_one_script_call(prefix: str) -> None:
    subjects = [
        SubjectLimits(f"{kind}:x", rpm_limit=10, tpm_limit=1000, max_budget=9.0) for kind in ("key", "user", "team")
    ]
    calls: list[str] = []

    async def body() -> None:
        async with RedisLimiter(REDIS_URL, prefix=prefix) as limiter:
            pipe = limiter._pipe
            assert pipe is not None  # a plain redis:// URL takes the lean client
            original = pipe.call

            def counting(command: bytes, *, first: bool = False) -> Any:
                calls.append(command.split(b"\r\n")[2].decode())
                return original(command, first=first)

            pipe.call = counting  # type: ignore[method-assign]
            res = await limiter.admit(subjects, tokens=100, cost=0.1)
            assert isinstance(res, Reservation) and len(res.budgets) == 3
            await limiter.settle(res, 0.05, actual_tokens=60)
            assert await limiter.check_and_consume(subjects, 10)

    asyncio.run(body())
    assert calls == ["EVALSHA"] * 3  # admit, settle, check: one script call each


def test_a_budget_in_float_usd_from_an_older_version_is_loaded_again(prefix: str) -> None:
    # an older llmswitch kept spend as float USD: read as nano-dollars, $0.04 would be 0.04 of one
    old = redis.Redis.from_url(REDIS_URL)
    old.hset(f"{prefix}:budget:key:a", mapping={"spent": "0.04", "reserved": "0", "reset_at": "0", "seeded": "1"})
    old.zadd(f"{prefix}:leases:key:a", {"old-lease:0.01": (T0 + 60) * 1e6})
    old.close()

    async def loader(subject: str) -> tuple[float, None]:
        return 0.04, None

    async def body() -> None:
        async with RedisLimiter(REDIS_URL, prefix=prefix, clock=FakeClock(), spend_loader=loader) as limiter:
            res = await limiter.admit([SubjectLimits("key:a", max_budget=0.05)], cost=0.002)
            assert isinstance(res, Reservation)
            assert res.budgets[0].spent == 0.04 and res.budgets[0].reserved == 0.002

    asyncio.run(body())
    budget, _ = redis_keys(prefix)[f"{prefix}:budget:key:a"]
    assert budget["spent"] == "40000000" and budget["unit"] == "nusd"
