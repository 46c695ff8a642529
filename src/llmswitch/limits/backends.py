"""The factories behind ``open_limiter``'s built-in backend names; each imports only what it needs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from llmswitch.errors import ConfigError
from llmswitch.limits.base import DEFAULT_LEASE_TTL_S, Limiter, SpendLoader
from llmswitch.limits.degraded import DegradedPolicy
from llmswitch.limits.memory import MemoryLimiter


def open_memory(redis_url: str | None = None, *, allowances: bool | None = None, **options: Any) -> Limiter:
    """Limits in this process only; ``redis_url`` is ignored (so the backend can be forced to memory), and
    so are ``allowances`` (a shared backend's)."""
    return MemoryLimiter(**options)


def open_redis(
    redis_url: str | None,
    *,
    fallback: bool = True,
    cooldown_s: float = 5.0,
    monotonic: Callable[[], float] = time.monotonic,
    clock: Callable[[], float] = time.time,
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    spend_loader: SpendLoader | None = None,
    degraded: DegradedPolicy | None = None,
    allowances: bool | None = None,
    **redis_options: Any,
) -> Limiter:
    """Limits in Redis, falling back to this process's memory while Redis does not answer, as far as
    ``degraded`` allows (by default from ``LLMSWITCH_DEGRADED_BUDGETS`` / ``LLMSWITCH_DEGRADED_SHARE``).

    With ``allowances`` (by default unless ``LLMSWITCH_LIMITS_ALLOWANCES`` is ``0``/``off``),
    ``admit_nowait`` admits requests far from their limits from allowances taken from Redis in blocks
    (:mod:`llmswitch.limits.allowance`); ``admit`` always asks Redis."""
    from llmswitch.limits.fallback import FallbackLimiter
    from llmswitch.limits.redis_limiter import RedisLimiter

    if not redis_url:
        raise ConfigError("the redis limits backend needs redis_url, or REDIS_URL / REDIS_HOST in the environment")
    deadline = os.environ.get("LLMSWITCH_LIMITS_DEADLINE_S")
    if deadline and "deadline_s" not in redis_options:
        # how long one limits call may wait for Redis before the process falls back (0.25 s by default;
        # redis-py's socket timeout then too); a benchmark under valgrind, ~50x slower, needs longer
        try:
            redis_options["deadline_s"] = float(deadline)
        except ValueError:
            raise ConfigError(f"LLMSWITCH_LIMITS_DEADLINE_S must be a number of seconds, got {deadline!r}") from None
        redis_options.setdefault("timeout_s", redis_options["deadline_s"])
    if not fallback:
        return RedisLimiter(redis_url, clock=clock, lease_ttl_s=lease_ttl_s, spend_loader=spend_loader, **redis_options)
    primary = RedisLimiter(redis_url, clock=clock, lease_ttl_s=lease_ttl_s, **redis_options)
    local = MemoryLimiter(clock=clock, lease_ttl_s=lease_ttl_s)
    policy = degraded or DegradedPolicy.from_env()
    if allowances is None:
        allowances = os.environ.get("LLMSWITCH_LIMITS_ALLOWANCES", "1").strip().lower() not in (
            "0",
            "off",
            "false",
            "no",
        )
    return FallbackLimiter(
        primary,
        local,
        cooldown_s=cooldown_s,
        monotonic=monotonic,
        spend_loader=spend_loader,
        policy=policy,
        allowances=allowances,
    )
