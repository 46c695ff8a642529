"""Rate limits and budgets that hold under concurrency, in one process or across many.

    limiter = open_limiter(redis_url="redis://127.0.0.1:6379/0")   # open_limiter() keeps them in memory
    key = SubjectLimits.for_key(record)                            # rpm, tpm, parallel, budget of a key
    team = SubjectLimits("team:research", max_budget=500.0, budget_period=BudgetPeriod("1mo"))
    result = await limiter.admit([key, team], tokens=1200, cost=0.03)
    if not result.allowed:
        return error_429(result.message, rate_limit_headers(result.decision))
    try:
        response = await call_model()
    except Exception:
        await limiter.release(result)
        raise
    await limiter.settle(result, response.cost, actual_tokens=response.usage.total_tokens)

- **Rate limits** (rpm, tpm) are GCRA buckets (see :mod:`llmswitch.limits.gcra` for why); tokens are
  reserved from an estimate and settled to the real usage.
- **Parallel requests** are slots held by the request and given back when it ends.
- **Budgets** are reserved before the call and settled to the real cost after. A budget admits while
  ``spent + reserved < max_budget``, atomically, so concurrent requests overshoot it by at most one
  request. Periods reset when ``budget_reset_at`` passes (:class:`BudgetPeriod`).
- Every reservation and slot is a lease with a TTL: a process that dies holding one cannot leak it.
- Money is counted in whole nano-dollars, in integers (:mod:`llmswitch.limits.money`), so budgets
  add and compare exactly: ten requests of $0.005 spend a $0.05 budget, not 0.049999999999999996 of it.

Backends are found by name and imported on first use: ``"memory"`` (one process, no I/O) and
``"redis"`` (every process of a deployment, one atomic Lua script per operation, degrading to local
limits when Redis does not answer). Nothing here is imported by ``import llmswitch``; redis-py is
imported only when the Redis backend is opened.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from llmswitch.errors import ConfigError
from llmswitch.limits.base import Limiter, SpendLoader
from llmswitch.limits.errors import LimiterError, LimiterUnavailableError
from llmswitch.limits.headers import rate_limit_headers
from llmswitch.limits.periods import BudgetPeriod
from llmswitch.limits.results import BudgetState, Decision, LimitRef, Refusal, Reservation, Window
from llmswitch.limits.spec import LimitKind, SubjectLimits
from llmswitch.limits.urls import redis_url_from

__all__ = [
    "BudgetPeriod",
    "BudgetState",
    "Decision",
    "LimitKind",
    "LimitRef",
    "Limiter",
    "LimiterError",
    "LimiterUnavailableError",
    "Refusal",
    "Reservation",
    "SpendLoader",
    "SubjectLimits",
    "Window",
    "open_limiter",
    "rate_limit_headers",
    "redis_url_from",
    "register_backend",
]

# name -> "module:factory"; a factory takes (redis_url, **options) and returns a Limiter
_BACKENDS: dict[str, str | Callable[..., Limiter]] = {
    "memory": "llmswitch.limits.backends:open_memory",
    "redis": "llmswitch.limits.backends:open_redis",
}


def register_backend(name: str, backend: str | Callable[..., Limiter]) -> None:
    """Make ``open_limiter(backend=name)`` use ``backend(redis_url, **options)``.

    Give the factory itself, or ``"module:function"`` to import it only when the backend is opened.
    """
    _BACKENDS[name] = backend


def open_limiter(
    backend: str | None = None,
    *,
    redis_url: str | None = None,
    redis_host: str | None = None,
    redis_port: int | str | None = None,
    redis_password: str | None = None,
    redis_db: int | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> Limiter:
    """The limiter for these settings: Redis if they (or ``REDIS_URL``/``REDIS_HOST``) name one, else memory.

    ``options`` go to the backend: ``clock``, ``lease_ttl_s``, ``spend_loader`` for every one; for
    Redis also ``prefix``, ``timeout_s``, ``deadline_s``, ``cooldown_s``, ``degraded`` (a
    :class:`~llmswitch.limits.degraded.DegradedPolicy`: what one process may admit while Redis is away;
    by default from ``LLMSWITCH_DEGRADED_BUDGETS`` and ``LLMSWITCH_DEGRADED_SHARE``), and ``fallback=False`` to
    get the bare :class:`~llmswitch.limits.redis_limiter.RedisLimiter` that raises instead of
    degrading.

        >>> open_limiter(env={}).name
        'memory'
        >>> open_limiter(redis_url="redis://127.0.0.1:6379/0").name     # nothing connects until first use
        'fallback'
    """
    url = redis_url_from(
        redis_url,
        redis_host=redis_host,
        redis_port=redis_port,
        redis_password=redis_password,
        redis_db=redis_db,
        env=env,
    )
    name = backend or ("redis" if url else "memory")
    target = _BACKENDS.get(name)
    if target is None:
        raise ConfigError(f"unknown limits backend {name!r}; known: {', '.join(sorted(_BACKENDS))}")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = _BACKENDS[name] = getattr(importlib.import_module(module), attr)
    limiter: Limiter = target(url, **options)
    return limiter
